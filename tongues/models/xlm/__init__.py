"""XLM (FacebookAI/xlm-*): post-LayerNorm encoder with language embeddings; MLM, TLM and CLM checkpoints."""

from .. import lazy_names
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
EXPORTS = ("XLMForQuestionAnsweringOutput", "XLMForQuestionAnswering", "XLMPreTrainedModel",
           "TFXLMWithLMHeadModelOutput")

# Model and tokenizer classes import torch / sacremoses / tensorflow: load them on first use only.
__getattr__ = lazy_names(__name__, {
    "modeling_xlm": (*MODELS.values(), "XLMPreTrainedModel", "XLMForQuestionAnswering",
                     "XLMForQuestionAnsweringOutput"),
    "tokenization_xlm": ("XLMTokenizer",),
    "modeling_tf_xlm": (*TF_MODELS.values(), "TFXLMWithLMHeadModelOutput", "TFXLMPreTrainedModel", "TFXLMMainLayer"),
})
