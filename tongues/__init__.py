"""tongues: a fast, exact home for multilingual language models (XGLM, XLM, BLOOM, GLM-4).

Every public class is importable from here; importing ``tongues`` itself loads neither torch nor
any framework, each name is resolved on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {}


def _export(module: str, *names: str) -> None:
    for name in names:
        _EXPORTS[name] = module


_export("tongues.configuration", "PretrainedConfig", "ConfigError")
_export("tongues.checkpoint.files", "CheckpointError")
_export("tongues.modeling", "PreTrainedModel")
_export("tongues.cache", "Cache", "DynamicCache", "StaticCache", "EncoderDecoderCache")
_export("tongues.generation", "GenerationConfig", "GenerationMixin", "TextStreamer", "TextIteratorStreamer")
_export("tongues.tokenization", "PreTrainedTokenizer", "PreTrainedTokenizerFast", "BatchEncoding")
_export("tongues.auto", "AutoConfig", "AutoModel", "AutoModelForCausalLM", "AutoModelForMaskedLM",
        "AutoModelForSequenceClassification", "AutoModelForTokenClassification", "AutoModelForQuestionAnswering",
        "AutoModelForMultipleChoice", "AutoTokenizer")
_export("tongues.models.bloom", "BloomConfig", "BloomModel", "BloomForCausalLM", "BloomForSequenceClassification",
        "BloomForTokenClassification", "BloomForQuestionAnswering", "BloomTokenizerFast", "BloomPreTrainedModel",
        "FlaxBloomModel", "FlaxBloomForCausalLM")
_export("tongues.models.xglm", "XGLMConfig", "XGLMTokenizer", "XGLMTokenizerFast", "XGLMModel", "XGLMForCausalLM",
        "XGLMPreTrainedModel", "TFXGLMModel", "TFXGLMForCausalLM", "FlaxXGLMModel", "FlaxXGLMForCausalLM")
_export("tongues.models.xlm", "XLMConfig", "XLMTokenizer", "XLMForQuestionAnsweringOutput", "XLMModel",
        "XLMWithLMHeadModel", "XLMForSequenceClassification", "XLMForQuestionAnsweringSimple",
        "XLMForQuestionAnswering", "XLMForTokenClassification", "XLMForMultipleChoice", "XLMPreTrainedModel",
        "TFXLMModel", "TFXLMWithLMHeadModel", "TFXLMForSequenceClassification", "TFXLMForMultipleChoice",
        "TFXLMForTokenClassification", "TFXLMForQuestionAnsweringSimple", "TFXLMWithLMHeadModelOutput")
_export("tongues.models.glm", "GlmConfig", "GlmModel", "GlmForCausalLM", "GlmForSequenceClassification",
        "GlmForTokenClassification", "GlmPreTrainedModel", "ChatGLM4Tokenizer")


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tongues' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
