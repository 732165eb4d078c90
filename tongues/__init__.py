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


def _family_exports() -> dict[str, str]:
    # Each family folder declares its public names (CONFIG, MODELS, TOKENIZERS, TF/Flax twins,
    # EXPORTS); the registry finds the folders. Importing them loads configs only, never torch.
    from .registry import exports

    return exports()


def __getattr__(name: str):
    if name == "__all__":
        return sorted({*_EXPORTS, *_family_exports()})
    module = _EXPORTS.get(name) or (_family_exports().get(name) if name[:1].isupper() else None)
    if module is None:
        raise AttributeError(f"module 'tongues' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS, *_family_exports()})
