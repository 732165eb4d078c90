"""Every task and language of ``tongues eval`` builds the requests lm-eval 0.4.13 builds from its own YAMLs.

The model-level parity tests (test_lm_eval_parity.py) score one language per task family; here no
model runs at all, so every language is covered: lm-eval's ``simple_evaluate`` runs with a model that
records each (context, continuation) it is asked for, and tongues' ``build_requests`` must produce the
same pairs, in the same order, for each document, at 0 and 2 few-shot examples. xcopa and xwinograd
read the data tongues ships; xstorycloze, xnli and paws-x read small documents written here (their
templates, per-language words and detokenisation are what is compared).
"""

from __future__ import annotations

import lm_eval  # the `eval` extra, part of the `test` extra
import pytest
from eval_helpers import data_dir_task_configs, shipped_task_configs
from lm_eval.api.model import LM

from tongues.eval.evaluator import build_requests
from tongues.eval.tasks import GROUPS

LIMIT = 3


class RecordingLM(LM):
    """Answers every log-likelihood request with (0, False) and keeps nothing else: the requests are in
    lm-eval's logged samples ("arguments")."""

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        return [(0.0, False) for _ in requests]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise AssertionError("no task here asks for rolling log-likelihoods")

    def generate_until(self, requests, disable_tqdm: bool = False):
        raise AssertionError("no task here generates")


@pytest.mark.parametrize("num_fewshot", [0, 2])
def test_every_task_and_language_builds_lm_evals_requests(num_fewshot, tmp_path):
    from lm_eval.tasks import TaskManager

    shipped = GROUPS["xcopa"] + GROUPS["xwinograd"]
    names = dict(zip(shipped, shipped_task_configs(tmp_path, shipped)))
    data_dir = GROUPS["xstorycloze"] + GROUPS["xnli"] + GROUPS["pawsx"]
    names.update(zip(data_dir, data_dir_task_configs(tmp_path, data_dir, count=6)))
    out = lm_eval.simple_evaluate(model=RecordingLM(), tasks=list(names.values()),
                                  task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False),
                                  limit=LIMIT, num_fewshot=num_fewshot, log_samples=True, bootstrap_iters=0)
    ours = build_requests(list(names), num_fewshot=num_fewshot, limit=LIMIT, data_dir=tmp_path / "data")
    assert len(names) == 11 + 6 + 11 + 15 + 7
    for task, name in names.items():
        theirs = sorted(out["samples"][name], key=lambda sample: sample["doc_id"])
        mine = [document for document in ours if document["task"] == task]
        assert len(mine) == len(theirs) == LIMIT, task
        for document, sample in zip(mine, theirs):
            expected = [tuple(arguments) for arguments in sample["arguments"]]
            assert document["requests"] == expected, (task, document["doc_id"])
            if not document["task"].startswith("xwinograd"):  # xwinograd's target is its shared continuation
                assert str(document["gold"]) == str(sample["target"]), (task, document["doc_id"])
