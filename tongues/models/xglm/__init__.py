"""XGLM (facebook/xglm-*): fairseq decoder with sinusoidal positions and a sentencepiece vocabulary."""

from .configuration_xglm import XGLMConfig

CONFIG = "XGLMConfig"
MODELS = {"base": "XGLMModel", "causal-lm": "XGLMForCausalLM"}
TOKENIZERS = ("XGLMTokenizer", "XGLMTokenizerFast")
TF_MODELS = {"base": "TFXGLMModel", "causal-lm": "TFXGLMForCausalLM"}
FLAX_MODELS = {"base": "FlaxXGLMModel", "causal-lm": "FlaxXGLMForCausalLM"}

_LAZY = {
    "XGLMModel": "modeling_xglm",
    "XGLMForCausalLM": "modeling_xglm",
    "XGLMPreTrainedModel": "modeling_xglm",
    "XGLMTokenizer": "tokenization_xglm",
    "XGLMTokenizerFast": "tokenization_xglm_fast",
    "TFXGLMModel": "modeling_tf_xglm",
    "TFXGLMForCausalLM": "modeling_tf_xglm",
    "FlaxXGLMModel": "modeling_flax_xglm",
    "FlaxXGLMForCausalLM": "modeling_flax_xglm",
}


def __getattr__(name):
    # Models import torch, tokenizers import sentencepiece / tokenizers: load them on first use only.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
