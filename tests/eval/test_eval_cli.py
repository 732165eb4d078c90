"""``tongues eval`` from the command line (a subprocess, the embedded model), its errors, and the scoring rules
that need no model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tongues.eval.evaluator import mean_stderr, pooled_stderr
from tongues.eval.scoring import rolling_windows, strided_windows
from tongues.eval.tasks import GROUPS, TASKS, get_task, resolve_tasks, xwinograd_docs


def tongues_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [os.getcwd(), os.environ.get("PYTHONPATH")] if p))
    return subprocess.run([sys.executable, "-m", "tongues", "eval", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_cli_writes_results_samples_and_table(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("Tous les êtres humains naissent libres et égaux en dignité et en droits.\n", encoding="utf-8")
    out = tongues_cli("--tasks", "xcopa_zh,xwinograd_fr", "--limit", "3", "--num-fewshot", "1", "--batch-size", "4",
                      "--output", str(tmp_path / "results.json"), "--log-samples", str(tmp_path / "samples.jsonl"),
                      "--perplexity", str(text), "--max-length", "64", "--stride", "16")
    assert out.returncode == 0, out.stderr
    assert "| xcopa_zh | 3 |" in out.stdout and "| xwinograd_fr | 3 |" in out.stdout
    assert "embedded demonstration model" in out.stderr
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    entry = results["results"]["xcopa_zh"]
    assert set(entry) >= {"acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "n"} and entry["n"] == 3
    assert results["config"]["num_fewshot"] == 1 and results["config"]["max_length"] == 64
    assert results["results"][f"perplexity:{text}"]["tokens"] > 0
    samples = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(samples) == 6
    for sample in samples:
        assert {"task", "doc_id", "loglikelihoods", "is_greedy", "pred", "gold"} <= set(sample)
        assert len(sample["loglikelihoods"]) == len(sample["is_greedy"]) == 2
        assert sample["pred"] == max(range(2), key=lambda i: (sample["loglikelihoods"][i], -i))
    assert entry["acc"] == sum(s["pred"] == s["gold"] for s in samples if s["task"] == "xcopa_zh") / 3


@pytest.mark.parametrize("args, culprit", [
    (["--tasks", "xcopa_xx"], "unknown task 'xcopa_xx'; known tasks and groups: xcopa, xwinograd"),
    (["--tasks", "xnli_en"], "--data-dir"),
    (["--tasks", "paws_en", "--data-dir", "NOWHERE"], "NOWHERE/pawsx/en/test.jsonl: no such file"),
    ([], "nothing to evaluate"),
    (["--tasks", "xcopa_zh", "--perplexity", "missing.txt"], "--perplexity missing.txt: no such file"),
    (["--tasks", "xcopa_zh", "--model", "no/such/dir/here"], "no such directory"),
])
def test_cli_errors_name_the_culprit(args, culprit, tmp_path):
    out = tongues_cli(*args, cwd=tmp_path)
    assert out.returncode == 1
    assert culprit in out.stderr and "Traceback" not in out.stderr


def test_malformed_data_file_names_the_line(tmp_path):
    folder = tmp_path / "xnli" / "en"
    folder.mkdir(parents=True)
    (folder / "validation.jsonl").write_text('{"premise": "a", "hypothesis": "b", "label": 0}\n{oops\n')
    out = tongues_cli("--tasks", "xnli_en", "--data-dir", str(tmp_path))
    assert out.returncode == 1 and "validation.jsonl, line 2: not JSON" in out.stderr


@pytest.mark.parametrize("layout", ["validation.parquet", "validation-00000-of-00002.parquet",
                                    "validation/0000.parquet"])
def test_data_dir_reads_the_datasets_parquet_files(layout, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    docs = [{"premise": f"premise {i}", "hypothesis": f"hypothesis {i}", "label": i % 3} for i in range(5)]
    target = tmp_path / "xnli" / "en" / layout
    target.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(docs[:3]), target)
    if layout.startswith("validation-"):  # the next shard, read after the first
        pq.write_table(pa.Table.from_pylist(docs[3:]), target.with_name("validation-00001-of-00002.parquet"))
    else:
        docs = docs[:3]
    assert get_task("xnli_en").docs("validation", tmp_path) == docs
    (tmp_path / "xnli" / "en" / "validation.jsonl").write_text(json.dumps(docs[0]) + "\n", encoding="utf-8")
    assert get_task("xnli_en").docs("validation", tmp_path) == docs[:1]  # a JSON Lines file comes first


def test_damaged_parquet_file_is_named(tmp_path):
    folder = tmp_path / "pawsx" / "de"
    folder.mkdir(parents=True)
    (folder / "test.parquet").write_bytes(b"not parquet at all")
    out = tongues_cli("--tasks", "paws_de", "--data-dir", str(tmp_path))
    assert out.returncode == 1 and "test.parquet: not a readable Parquet file" in out.stderr


def test_task_registry_counts_and_groups():
    assert {group: len(members) for group, members in GROUPS.items()} == {
        "xcopa": 11, "xwinograd": 6, "xstorycloze": 11, "xnli": 15, "pawsx": 7}
    assert set(TASKS) == {task for members in GROUPS.values() for task in members}
    names, groups = resolve_tasks(["xcopa", "xcopa_zh", "xwinograd_en"])
    assert names == GROUPS["xcopa"] + ["xwinograd_en"] and list(groups) == ["xcopa"]
    assert len(get_task("xcopa_et").docs("test")) == 500 and len(get_task("xcopa_et").docs("validation")) == 100


def test_xwinograd_rows_become_fill_in_the_blank_documents():
    counts = {language: len(xwinograd_docs(language)) for language in ("en", "fr", "jp", "pt", "ru", "zh")}
    assert counts == {"en": 2325, "fr": 83, "jp": 959, "pt": 263, "ru": 315, "zh": 16}
    first = xwinograd_docs("en")[0]
    assert first == {"sentence": "The city councilmen refused the demonstrators a permit because _ feared violence.",
                     "option1": "The city councilmen", "option2": "the demonstrators", "answer": "1"}
    assert all(doc["sentence"].count("_") == 1 for language in counts for doc in xwinograd_docs(language))


def test_windows_follow_lm_eval_rolling_rule():
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    for length in (0, 1, 5, 16, 17, 40):
        tokens = list(range(100, 100 + length))
        theirs = [tuple(map(list, make_disjoint_window(w))) for w in get_rolling_token_windows(tokens, 7, 8, 1)]
        assert [tuple(w) for w in rolling_windows(tokens, 7, 8)] == theirs
        # stride == window: the model sees the same inputs (context + continuation cut to the window) and scores the same tokens.
        def seen(windows):
            return [((list(c) + list(x))[-9:][:-1], list(x)) for c, x in windows]

        assert seen(strided_windows(tokens, 7, 8, 8)) == seen(theirs)
        # A smaller stride scores every token once too.
        assert [t for _, x in strided_windows(tokens, 7, 8, 3) for t in x] == tokens


def test_stderrs_follow_lm_eval():
    from lm_eval.api.metrics import mean_stderr as theirs_mean_stderr
    from lm_eval.api.metrics import pooled_sample_stderr

    values = [1.0, 0.0, 1.0, 1.0, 0.0]
    assert mean_stderr(values) == pytest.approx(theirs_mean_stderr(values))
    assert mean_stderr([1.0]) is None
    assert pooled_stderr([0.1, 0.2], [10, 30]) == pytest.approx(float(pooled_sample_stderr([0.1, 0.2], [10, 30])))
