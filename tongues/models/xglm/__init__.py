"""XGLM (facebook/xglm-*): fairseq decoder with sinusoidal positions and a sentencepiece vocabulary."""

from .. import lazy_names
from .configuration_xglm import XGLMConfig

CONFIG = "XGLMConfig"
MODELS = {"base": "XGLMModel", "causal-lm": "XGLMForCausalLM"}
TOKENIZERS = ("XGLMTokenizer", "XGLMTokenizerFast")
TF_MODELS = {"base": "TFXGLMModel", "causal-lm": "TFXGLMForCausalLM"}
FLAX_MODELS = {"base": "FlaxXGLMModel", "causal-lm": "FlaxXGLMForCausalLM"}
EXPORTS = ("XGLMPreTrainedModel",)

# Models import torch, tokenizers import sentencepiece / tokenizers: load them on first use only.
__getattr__ = lazy_names(__name__, {
    "modeling_xglm": (*MODELS.values(), "XGLMPreTrainedModel"),
    "tokenization_xglm": ("XGLMTokenizer",),
    "tokenization_xglm_fast": ("XGLMTokenizerFast",),
    "modeling_tf_xglm": tuple(TF_MODELS.values()),
    "modeling_flax_xglm": tuple(FLAX_MODELS.values()),
})
