"""BLOOM (bigscience/bloom-*): ALiBi decoder."""

from .. import lazy_names
from .configuration_bloom import BloomConfig

CONFIG = "BloomConfig"
MODELS = {
    "base": "BloomModel",
    "causal-lm": "BloomForCausalLM",
    "sequence-classification": "BloomForSequenceClassification",
    "token-classification": "BloomForTokenClassification",
    "question-answering": "BloomForQuestionAnswering",
}
TOKENIZERS = (None, "BloomTokenizerFast")
FLAX_MODELS = {"base": "FlaxBloomModel", "causal-lm": "FlaxBloomForCausalLM"}
EXPORTS = ("BloomPreTrainedModel",)

# Model and tokenizer classes import torch / flax / tokenizers: load them on first use only.
__getattr__ = lazy_names(__name__, {
    "modeling_bloom": (*MODELS.values(), "BloomPreTrainedModel"),
    "modeling_flax_bloom": (*FLAX_MODELS.values(), "FlaxBloomPreTrainedModel"),
    "tokenization_bloom_fast": ("BloomTokenizerFast",),
})
