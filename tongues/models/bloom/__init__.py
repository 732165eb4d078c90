"""BLOOM (bigscience/bloom-*): ALiBi decoder."""

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


def __getattr__(name):
    # Model and tokenizer classes import torch / tokenizers: load them on first use only.
    if name in MODELS.values() or name == "BloomPreTrainedModel":
        from . import modeling_bloom

        return getattr(modeling_bloom, name)
    if name in FLAX_MODELS.values() or name == "FlaxBloomPreTrainedModel":
        from . import modeling_flax_bloom

        return getattr(modeling_flax_bloom, name)
    if name == "BloomTokenizerFast":
        from .tokenization_bloom_fast import BloomTokenizerFast

        return BloomTokenizerFast
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
