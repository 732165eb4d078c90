"""Run tasks through a ``Scorer`` and aggregate lm-eval's metrics: acc, acc_norm and their stderrs.

Per document (``ConfigurableTask.process_results``): ``pred`` is the first argmax of the summed
log-probabilities, ``pred_norm`` that of log-probability per character of each choice; ``acc`` and
``acc_norm`` compare them with the gold index. Per task the mean and its standard error
(sample standard deviation / sqrt(n), ``lm_eval.api.metrics.mean_stderr``); per group the mean
weighted by task size and the pooled standard error (``pooled_sample_stderr``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .scoring import Scorer, progress_bar
from .tasks import FewshotSampler, get_task, resolve_tasks


def mean_stderr(values: list[float]) -> float | None:
    """Sample standard deviation over sqrt(n); None for fewer than two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((x - mean) ** 2 for x in values) / (len(values) - 1)) / math.sqrt(len(values))


def pooled_stderr(stderrs: list[float], sizes: list[int]) -> float | None:
    """lm-eval's stderr of a size-weighted group mean (pooled variance over the tasks)."""
    if sum(sizes) - len(sizes) <= 0 or any(stderr is None for stderr in stderrs):
        return None
    variance = sum((size - 1) * stderr ** 2 * size for size, stderr in zip(sizes, stderrs)) / (sum(sizes) - len(sizes))
    return math.sqrt(variance / sum(sizes))


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


def build_requests(task_names: list[str], num_fewshot: int = 0, limit: int | None = None,
                   data_dir: str | Path | None = None, seed: int | None = 1234) -> list[dict[str, Any]]:
    """One entry per document: task, doc_id, doc, choices, gold and its (context, continuation) requests."""
    documents = []
    for name in task_names:
        task = get_task(name)
        docs = task.docs(task.eval_split, Path(data_dir) if data_dir else None)
        if limit is not None:
            docs = docs[:limit]
        sampler = FewshotSampler(task.docs(task.fewshot_split, Path(data_dir) if data_dir else None), seed) \
            if num_fewshot > 0 else None
        for doc_id, doc in enumerate(docs):
            examples = sampler.sample(num_fewshot, doc if task.exclude_eval_doc else None) if sampler else []
            documents.append({"task": name, "doc_id": doc_id, "doc": doc, "choices": task.doc_to_choice(doc),
                              "gold": task.gold(doc), "requests": task.requests(doc, examples)})
    return documents


def score_documents(scorer: Scorer, documents: list[dict[str, Any]], progress: bool = True) -> list[dict[str, Any]]:
    """Score every request of every document in one sorted, batched pass; returns the per-document samples."""
    flat = [request for document in documents for request in document["requests"]]
    bar, advance = progress_bar(len(flat), "eval", progress)
    try:
        scores = scorer.loglikelihood(flat, advance)
    finally:
        if bar is not None:
            bar.close()
    samples, position = [], 0
    for document in documents:
        count = len(document["requests"])
        logprobs = [score for score, _ in scores[position:position + count]]
        greedy = [flag for _, flag in scores[position:position + count]]
        position += count
        lengths = [float(len(choice)) for choice in document["choices"]]
        pred = _argmax(logprobs)
        pred_norm = _argmax([logprob / length for logprob, length in zip(logprobs, lengths)])
        gold = document["gold"]
        samples.append({"task": document["task"], "doc_id": document["doc_id"], "loglikelihoods": logprobs,
                        "is_greedy": greedy, "pred": pred, "pred_norm": pred_norm, "gold": gold,
                        "acc": float(pred == gold), "acc_norm": float(pred_norm == gold)})
    return samples


def aggregate(samples: list[dict[str, Any]], task_names: list[str], groups: dict[str, list[str]]) -> dict[str, dict]:
    """{task or group: {"acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "n"}}."""
    results: dict[str, dict] = {}
    for name in task_names:
        rows = [sample for sample in samples if sample["task"] == name]
        entry: dict[str, Any] = {}
        for metric in ("acc", "acc_norm"):
            values = [row[metric] for row in rows]
            entry[metric] = sum(values) / len(values) if values else None
            entry[f"{metric}_stderr"] = mean_stderr(values)
        entry["n"] = len(rows)
        results[name] = entry
    for group, members in groups.items():
        sizes = [results[m]["n"] for m in members]
        entry = {}
        for metric in ("acc", "acc_norm"):
            entry[metric] = sum(results[m][metric] * results[m]["n"] for m in members) / sum(sizes)
            entry[f"{metric}_stderr"] = pooled_stderr([results[m][f"{metric}_stderr"] for m in members], sizes)
        entry["n"] = sum(sizes)
        results[group] = entry
    return results


def evaluate(scorer: Scorer, tasks: list[str], num_fewshot: int = 0, limit: int | None = None,
             data_dir: str | Path | None = None, seed: int | None = 1234, progress: bool = True
             ) -> tuple[dict[str, dict], list[dict[str, Any]]]:
    """(results per task and group, samples per document) for task or group names such as ``["xcopa"]``.

    ``num_fewshot`` examples per document are drawn as lm-eval draws them with ``fewshot_random_seed``
    ``seed`` (1234, lm-eval's default); ``limit`` keeps the first documents of each task.
    """
    task_names, groups = resolve_tasks(tasks)
    documents = build_requests(task_names, num_fewshot, limit, data_dir, seed)
    samples = score_documents(scorer, documents, progress)
    return aggregate(samples, task_names, groups), samples


def markdown_table(results: dict[str, dict]) -> str:
    """The results as a markdown table: task, n, acc ± stderr, acc_norm ± stderr."""
    def cell(entry, metric):
        value, stderr = entry.get(metric), entry.get(f"{metric}_stderr")
        if value is None:
            return "-"
        return f"{100 * value:.2f}" + (f" ± {100 * stderr:.2f}" if stderr is not None else "")

    lines = ["| task | n | acc | acc_norm |", "|---|---:|---:|---:|"]
    for name, entry in results.items():
        if "acc" in entry:
            lines.append(f"| {name} | {entry['n']} | {cell(entry, 'acc')} | {cell(entry, 'acc_norm')} |")
    return "\n".join(lines)
