"""Text generation: configuration, logits processors, decoding loops, streamers, ``GenerationMixin``.

``GenerationConfig`` (``configuration``) is torch-free and imported at once, so the TF and Flax twins
can use it without torch; every other name loads its module (and torch) on first use.
"""

import importlib

from .configuration import GENERATION_CONFIG_NAME, GENERATION_DEFAULTS, GenerationConfig, GenerationConfigError

# public name -> submodule that defines it
_LAZY: dict[str, str] = {}


def _export(module: str, *names: str) -> None:
    _LAZY.update(dict.fromkeys(names, module))


_export("mixin", "GenerationMixin")
_export("outputs", "BeamSampleDecoderOnlyOutput", "BeamSearchDecoderOnlyOutput",
        "GenerateBeamDecoderOnlyOutput", "GenerateDecoderOnlyOutput", "GreedySearchDecoderOnlyOutput",
        "SampleDecoderOnlyOutput")
_export("processors", "EpsilonLogitsWarper", "EtaLogitsWarper", "ExponentialDecayLengthPenalty",
        "ForcedBOSTokenLogitsProcessor", "ForcedEOSTokenLogitsProcessor", "InfNanRemoveLogitsProcessor",
        "LogitNormalization", "LogitsProcessor", "LogitsProcessorList", "LogitsWarper",
        "MinLengthLogitsProcessor", "MinNewTokensLengthLogitsProcessor", "MinPLogitsWarper",
        "NoBadWordsLogitsProcessor", "NoRepeatNGramLogitsProcessor", "PrefixConstrainedLogitsProcessor",
        "RepetitionPenaltyLogitsProcessor", "SequenceBiasLogitsProcessor",
        "SuppressTokensAtBeginLogitsProcessor", "SuppressTokensLogitsProcessor", "TemperatureLogitsWarper",
        "TopHLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper", "TypicalLogitsWarper",
        "build_logits_processors")
_export("stopping", "EosTokenCriteria", "MaxLengthCriteria", "MaxTimeCriteria", "StoppingCriteria",
        "StoppingCriteriaList")
_export("streamers", "AsyncTextIteratorStreamer", "BaseStreamer", "TextIteratorStreamer", "TextStreamer")


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)


def __dir__():
    return sorted([*globals(), *_LAZY])


__all__ = [
    "GENERATION_CONFIG_NAME",
    "GENERATION_DEFAULTS",
    "GenerationConfig",
    "GenerationConfigError",
    "GenerationMixin",
    "GenerateDecoderOnlyOutput",
    "GenerateBeamDecoderOnlyOutput",
    "GreedySearchDecoderOnlyOutput",
    "SampleDecoderOnlyOutput",
    "BeamSearchDecoderOnlyOutput",
    "BeamSampleDecoderOnlyOutput",
    "LogitsProcessor",
    "LogitsWarper",
    "LogitsProcessorList",
    "MinLengthLogitsProcessor",
    "MinNewTokensLengthLogitsProcessor",
    "TemperatureLogitsWarper",
    "RepetitionPenaltyLogitsProcessor",
    "TopKLogitsWarper",
    "TopPLogitsWarper",
    "TopHLogitsWarper",
    "MinPLogitsWarper",
    "TypicalLogitsWarper",
    "EpsilonLogitsWarper",
    "EtaLogitsWarper",
    "NoRepeatNGramLogitsProcessor",
    "SequenceBiasLogitsProcessor",
    "NoBadWordsLogitsProcessor",
    "PrefixConstrainedLogitsProcessor",
    "ForcedBOSTokenLogitsProcessor",
    "ForcedEOSTokenLogitsProcessor",
    "InfNanRemoveLogitsProcessor",
    "ExponentialDecayLengthPenalty",
    "LogitNormalization",
    "SuppressTokensLogitsProcessor",
    "SuppressTokensAtBeginLogitsProcessor",
    "build_logits_processors",
    "StoppingCriteria",
    "StoppingCriteriaList",
    "MaxLengthCriteria",
    "MaxTimeCriteria",
    "EosTokenCriteria",
    "BaseStreamer",
    "TextStreamer",
    "TextIteratorStreamer",
    "AsyncTextIteratorStreamer",
]
