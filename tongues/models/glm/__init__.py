"""GLM-4 (THUDM/glm-4-9b, glm-4-9b-chat): the ``-hf`` layout natively, THUDM's ``chatglm`` layout converted on load."""

from .configuration_glm import GlmConfig

CONFIG = "GlmConfig"
MODELS = {
    "base": "GlmModel",
    "causal-lm": "GlmForCausalLM",
    "sequence-classification": "GlmForSequenceClassification",
    "token-classification": "GlmForTokenClassification",
}
# The original layout's tiktoken tokenizer (tokenizer.model) and the -hf layout's tokenizer.json.
TOKENIZERS = ("ChatGLM4Tokenizer", "PreTrainedTokenizerFast")

_MODELING = (*MODELS.values(), "GlmPreTrainedModel")


def __getattr__(name):
    # Model and tokenizer classes import torch / tokenizers: load them on first use only.
    if name in _MODELING:
        from . import modeling_glm

        return getattr(modeling_glm, name)
    if name == "ChatGLM4Tokenizer":
        from .tokenization_chatglm4 import ChatGLM4Tokenizer

        return ChatGLM4Tokenizer
    if name == "PreTrainedTokenizerFast":
        from ...tokenization.fast import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
