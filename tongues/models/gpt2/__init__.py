"""GPT-2 (openai-community/gpt2, ai-forever/mGPT): pre-LayerNorm decoder with learned positions."""

from .. import lazy_names
from .configuration_gpt2 import GPT2Config

CONFIG = "GPT2Config"
MODELS = {
    "base": "GPT2Model",
    "causal-lm": "GPT2LMHeadModel",
    "sequence-classification": "GPT2ForSequenceClassification",
    "token-classification": "GPT2ForTokenClassification",
}
TOKENIZERS = (None, "GPT2TokenizerFast")
EXPORTS = ("GPT2PreTrainedModel",)

# Model and tokenizer classes import torch / tokenizers: load them on first use only.
__getattr__ = lazy_names(__name__, {
    "modeling_gpt2": (*MODELS.values(), "GPT2PreTrainedModel"),
    "tokenization_gpt2_fast": ("GPT2TokenizerFast",),
})
