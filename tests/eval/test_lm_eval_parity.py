"""``tongues eval`` against lm-eval 0.4.13's own ``hf`` backend (transformers) on the same checkpoints and documents:
per-document log-likelihoods within 1e-4, predictions and accuracy identical."""

from __future__ import annotations

import math

import lm_eval  # the `eval` extra, part of the `test` extra
import pytest
import torch
from eval_helpers import FAMILIES, data_dir_task_configs, shipped_task_configs

import tongues
from tongues.eval import Scorer, evaluate


def hf_backend(path: str, **kwargs):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=path, batch_size=3, device="cpu", dtype="float32", **kwargs)


def run_lm_eval(model, tasks: list[str], folder, limit: int, num_fewshot: int) -> dict[str, dict]:
    """{task: {"lls": [[...] per doc], "acc": ...}} from lm_eval.simple_evaluate on local task configs."""
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(folder), include_defaults=False)
    out = lm_eval.simple_evaluate(model=model, tasks=tasks, task_manager=manager, limit=limit,
                                  num_fewshot=num_fewshot, log_samples=True, bootstrap_iters=0)
    results = {}
    for task in tasks:
        samples = sorted(out["samples"][task], key=lambda sample: sample["doc_id"])
        results[task.removeprefix("local_")] = {
            "lls": [[float(ll) for ll, _ in sample["filtered_resps"]] for sample in samples],
            "greedy": [[bool(g) for _, g in sample["filtered_resps"]] for sample in samples],
            "acc": out["results"][task]["acc,none"]}
    return results


def load_ours(path: str):
    return tongues.AutoModelForCausalLM.from_pretrained(path).eval(), tongues.AutoTokenizer.from_pretrained(path)


def assert_same(theirs: dict[str, dict], results: dict, samples: list[dict]):
    for task, reference in theirs.items():
        rows = [sample for sample in samples if sample["task"] == task]
        assert len(rows) == len(reference["lls"]) > 0
        for row, lls, greedy in zip(rows, reference["lls"], reference["greedy"]):
            torch.testing.assert_close(torch.tensor(row["loglikelihoods"], dtype=torch.float64),
                                       torch.tensor(lls, dtype=torch.float64), atol=1e-4, rtol=0)
            assert row["pred"] == max(range(len(lls)), key=lambda i: (lls[i], -i))
            assert row["is_greedy"] == greedy
        assert results[task]["acc"] == reference["acc"]


@pytest.mark.parametrize("family", FAMILIES)
def test_shipped_tasks_match_lm_eval_hf(family, checkpoint, tmp_path):
    path = checkpoint(family)
    tasks = ["xcopa_zh", "xwinograd_en"]
    num_fewshot = 2 if family == "embedded" else 0
    theirs = run_lm_eval(hf_backend(path), shipped_task_configs(tmp_path, tasks), tmp_path, 4, num_fewshot)
    model, tokenizer = load_ours(path)
    results, samples = evaluate(Scorer(model, tokenizer, batch_size=3), tasks, num_fewshot=num_fewshot, limit=4,
                                progress=False)
    assert_same(theirs, results, samples)


def test_data_dir_tasks_and_fewshot_match_lm_eval_hf(checkpoint, tmp_path):
    """xstorycloze, xnli and paws-x read from --data-dir, one few-shot example drawn as lm-eval draws it."""
    tasks = ["xstorycloze_en", "xnli_fr", "paws_de"]
    names = data_dir_task_configs(tmp_path, tasks)
    path = checkpoint("embedded")
    theirs = run_lm_eval(hf_backend(path), names, tmp_path, 4, 1)
    model, tokenizer = load_ours(path)
    results, samples = evaluate(Scorer(model, tokenizer, batch_size=3), tasks, num_fewshot=1, limit=4,
                                data_dir=tmp_path / "data", progress=False)
    assert_same(theirs, results, samples)


def test_lm_eval_adapter_runs_lm_eval_tasks_like_hf(checkpoint, tmp_path):
    from tongues.eval import LMEvalModel

    path = checkpoint("bloom")
    names = shipped_task_configs(tmp_path, ["xcopa_sw"])
    theirs = run_lm_eval(hf_backend(path), names, tmp_path, 4, 1)
    ours = run_lm_eval(LMEvalModel(path, batch_size=2), names, tmp_path, 4, 1)
    for task in theirs:
        torch.testing.assert_close(torch.tensor(ours[task]["lls"], dtype=torch.float64),
                                   torch.tensor(theirs[task]["lls"], dtype=torch.float64), atol=1e-4, rtol=0)
        assert ours[task]["greedy"] == theirs[task]["greedy"] and ours[task]["acc"] == theirs[task]["acc"]


@pytest.mark.parametrize("family", ["bloom", "xglm"])
def test_rolling_loglikelihood_matches_lm_eval_hf(family, checkpoint):
    """Texts longer than the window: disjoint windows, each token scored once, as HFLM.loglikelihood_rolling."""
    from lm_eval.api.instance import Instance

    path = checkpoint(family)
    # No trailing space: tongues' XGLM tokenizer drops one that transformers 5.23's keeps as "▁" (reported).
    texts = [("Tous les êtres humains naissent libres et égaux en dignité et en droits. " * 3).strip(),
             "人人生而自由，在尊严和权利上一律平等。", "a"]
    reference = hf_backend(path, max_length=16).loglikelihood_rolling(
        [Instance("loglikelihood_rolling", {}, (text,), 0) for text in texts], disable_tqdm=True)
    model, tokenizer = load_ours(path)
    scorer = Scorer(model, tokenizer, batch_size=4, max_length=16)
    torch.testing.assert_close(torch.tensor(scorer.loglikelihood_rolling(texts), dtype=torch.float64),
                               torch.tensor(reference, dtype=torch.float64), atol=1e-4, rtol=0)
    # Strided perplexity with stride == window is the same sum.
    summary = scorer.perplexity(texts[0])
    assert math.isclose(summary["logprob"], reference[0], abs_tol=1e-4)
