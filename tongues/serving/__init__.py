"""``tongues serve``'s engine and HTTP server: continuous batching over one :class:`~tongues.slot_cache.SlotCache`.

The engine is usable from Python without HTTP; the files divide the work as nano-vllm does:

- ``sampling.py``: :class:`SamplingParams` (one request's settings, validated) and the per-row sampler;
- ``sequence.py``: :class:`Sequence`, one generated continuation (tokens, text, finish reason);
- ``detokenize.py``: streaming detokenisation that holds back an incomplete UTF-8 tail;
- ``scheduler.py``: which sequences prefill (in chunks) and decode each step, and in which cache rows;
- ``model_runner.py``: runs a prefill chunk or a batched decode on the model and its cache;
- ``engine.py``: :class:`Engine`, the thread that owns the model and loops scheduler -> runner -> sampler;
- ``distributed.py``: under torchrun, rank 0 broadcasts each runner step and the other ranks replay it;
- ``api_server.py``, ``protocol.py``, ``metrics.py``: the OpenAI-compatible HTTP layer (extra ``serve``).

Example::

    from tongues.serving import Engine, SamplingParams
    engine = Engine(model, tokenizer).start()
    result = engine.generate("Tous les êtres humains", SamplingParams(max_tokens=20, temperature=0))
    print(result[0].text)
    engine.shutdown()
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "Engine": "engine", "RequestOutput": "engine", "QueueFull": "engine", "EngineStopped": "engine",
    "RequestFailed": "engine",
    "SamplingParams": "sampling", "ParameterError": "sampling",
    "detokenize_incrementally": "detokenize",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):  # keep `import tongues.serving` free of torch until a name is used
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
