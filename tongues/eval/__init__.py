"""Few-shot evaluation with lm-evaluation-harness 0.4's tasks and scoring rules (``tongues eval``).

* ``Scorer`` (scoring.py): log-likelihoods of (context, continuation) pairs and of whole texts.
* ``evaluate`` (evaluator.py): xcopa, xwinograd, xstorycloze, xnli, pawsx and their languages.
* ``LMEvalModel`` (lm_eval_model.py): tongues as an lm-eval model; needs ``pip install 'tongues[eval]'``.

Example::

    from tongues.eval import Scorer, evaluate
    results, samples = evaluate(Scorer(model, tokenizer), ["xcopa_zh"], limit=50)
"""

from __future__ import annotations

_NAMES = {
    "Scorer": "scoring", "resolve_max_length": "scoring", "rolling_windows": "scoring", "strided_windows": "scoring",
    "evaluate": "evaluator", "markdown_table": "evaluator", "build_requests": "evaluator",
    "score_documents": "evaluator", "aggregate": "evaluator",
    "TASKS": "tasks", "GROUPS": "tasks", "get_task": "tasks", "resolve_tasks": "tasks", "TaskDataError": "tasks",
    "LMEvalModel": "lm_eval_model",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        import importlib

        module = importlib.import_module(f"{__name__}.{_NAMES[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
