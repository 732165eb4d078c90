"""XLM (FacebookAI/xlm-*): post-LayerNorm encoder with language embeddings; MLM, TLM and CLM checkpoints."""

from .configuration_xlm import XLMConfig

CONFIG = "XLMConfig"
MODELS = {
    "base": "XLMModel",
    # XLM's LM head serves both: CLM checkpoints generate with it, MLM checkpoints fill masks.
    "causal-lm": "XLMWithLMHeadModel",
    "masked-lm": "XLMWithLMHeadModel",
    "sequence-classification": "XLMForSequenceClassification",
    "token-classification": "XLMForTokenClassification",
    "question-answering": "XLMForQuestionAnsweringSimple",
    "multiple-choice": "XLMForMultipleChoice",
}
TOKENIZERS = ("XLMTokenizer", None)
TF_MODELS = {
    "base": "TFXLMModel",
    "causal-lm": "TFXLMWithLMHeadModel",
    "masked-lm": "TFXLMWithLMHeadModel",
    "sequence-classification": "TFXLMForSequenceClassification",
    "token-classification": "TFXLMForTokenClassification",
    "question-answering": "TFXLMForQuestionAnsweringSimple",
    "multiple-choice": "TFXLMForMultipleChoice",
}

_MODELING = {*MODELS.values(), "XLMPreTrainedModel", "XLMForQuestionAnswering", "XLMForQuestionAnsweringOutput"}
_TF_MODELING = {*TF_MODELS.values(), "TFXLMWithLMHeadModelOutput", "TFXLMPreTrainedModel", "TFXLMMainLayer"}


def __getattr__(name):
    # Model and tokenizer classes import torch / sacremoses / tensorflow: load them on first use only.
    if name in _MODELING:
        from . import modeling_xlm

        return getattr(modeling_xlm, name)
    if name == "XLMTokenizer":
        from .tokenization_xlm import XLMTokenizer

        return XLMTokenizer
    if name in _TF_MODELING:
        from . import modeling_tf_xlm

        return getattr(modeling_tf_xlm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
