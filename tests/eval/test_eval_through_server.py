"""lm-eval 0.4.13's ``local-completions`` model against ``tongues serve``: the same per-document log-likelihoods,
``is_greedy`` flags, predictions and accuracy as ``tongues eval`` on the same checkpoint and documents.

``tongues serve`` runs as a real subprocess on a free loopback port. lm-eval sends each (context + continuation)
as token ids with ``echo: true, max_tokens: 1, logprobs: 1`` and reads ``choices[i].logprobs.token_logprobs
[ctxlen:-1]`` and ``top_logprobs`` (``LocalCompletionsAPI.parse_logprobs``); with ``tokenizer_backend=remote``
it tokenizes through the server's ``/tokenize`` and reads ``/tokenizer_info``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests
import torch
from eval_helpers import data_dir_task_configs, shipped_task_configs
from test_lm_eval_parity import load_ours, run_lm_eval

from tongues.eval import Scorer, evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TASKS = ["xcopa_zh", "xcopa_sw"]
LIMIT = 4


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServeProcess:
    """``python -m tongues serve --model DIR`` on a free loopback port, until closed."""

    def __init__(self, model_dir: str, name: str, log_path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "TONGUES_API_KEY": ""}
        self.log = open(log_path, "w+", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tongues", "serve", "--model", model_dir, "--port", str(self.port),
             "--served-model-name", name, "--dtype", "float32", "--max-running", "4", "--threads", "1"],
            stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if requests.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.close()
        raise RuntimeError(f"tongues serve did not become ready: {open(log_path, encoding='utf-8').read()}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.log.close()


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    """serve(model_dir, name) -> a running server (one per checkpoint for the module)."""
    servers: dict[str, ServeProcess] = {}

    def start(model_dir: str, name: str) -> ServeProcess:
        if model_dir not in servers:
            servers[model_dir] = ServeProcess(model_dir, name, tmp_path_factory.mktemp("serve") / "stderr.txt")
        return servers[model_dir]

    yield start
    for server in servers.values():
        server.close()


def local_completions(server: ServeProcess, name: str, **kwargs):
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    return LocalCompletionsAPI(base_url=server.url + "/v1/completions", model=name, num_concurrent=2, max_retries=1,
                               timeout=60, **kwargs)


def ours(path: str, num_fewshot: int, tasks: list[str] = TASKS, **kwargs) -> tuple[dict, list[dict]]:
    model, tokenizer = load_ours(path)
    return evaluate(Scorer(model, tokenizer, batch_size=3), tasks, num_fewshot=num_fewshot, limit=LIMIT,
                    progress=False, **kwargs)


def assert_same_as_tongues_eval(theirs: dict[str, dict], results: dict, samples: list[dict]) -> None:
    for task, reference in theirs.items():
        rows = [sample for sample in samples if sample["task"] == task]
        assert len(rows) == len(reference["lls"]) == LIMIT
        for row, lls, greedy in zip(rows, reference["lls"], reference["greedy"]):
            torch.testing.assert_close(torch.tensor(lls, dtype=torch.float64),
                                       torch.tensor(row["loglikelihoods"], dtype=torch.float64), atol=1e-4, rtol=0)
            assert max(range(len(lls)), key=lambda i: (lls[i], -i)) == row["pred"]
            assert greedy == row["is_greedy"]
        assert reference["acc"] == results[task]["acc"]


@pytest.mark.parametrize("num_fewshot", [0, 1])
def test_local_completions_with_the_remote_tokenizer_equals_tongues_eval_on_bloom(num_fewshot, checkpoint, serve,
                                                                                  tmp_path):
    """BLOOM adds no special tokens, so lm-eval tokenizing through the server's /tokenize is lm-eval's own rule."""
    path = checkpoint("bloom")
    server = serve(path, "tiny-bloom")
    theirs = run_lm_eval(local_completions(server, "tiny-bloom", tokenizer_backend="remote"),
                         shipped_task_configs(tmp_path, TASKS), tmp_path, LIMIT, num_fewshot)
    assert_same_as_tongues_eval(theirs, *ours(path, num_fewshot))
    # lm-eval's default tokenizer_backend="auto" finds the server's tokenizer endpoints and picks "remote".
    from lm_eval.utils import check_remote_tokenizer_support

    assert check_remote_tokenizer_support(server.url + "/v1/completions")


def test_an_empty_context_is_the_prefix_token_through_the_remote_tokenizer(checkpoint, serve, tmp_path):
    """XNLI at 0 shots has an empty context: lm-eval sends BOS, which it finds by /tokenize of /tokenizer_info's
    bos_token; tongues eval uses the tokenizer's BOS id. Here lm-eval sends 3 prompts per request (batch_size)."""
    path = checkpoint("bloom")
    server = serve(path, "tiny-bloom")
    names = data_dir_task_configs(tmp_path, ["xnli_fr"])
    theirs = run_lm_eval(local_completions(server, "tiny-bloom", tokenizer_backend="remote", batch_size=3), names,
                         tmp_path, LIMIT, 0)
    assert_same_as_tongues_eval(theirs, *ours(path, 0, ["xnli_fr"], data_dir=tmp_path / "data"))


@pytest.mark.parametrize("family", ["glm", "xglm"])
def test_local_completions_with_the_checkpoints_tokenizer_and_add_bos_token_equals_tongues_eval(family, checkpoint,
                                                                                               serve, tmp_path):
    """GLM-4's tokenizer starts every text with [gMASK]<sop> and XGLM's with </s>, which lm-eval's `hf` model (and
    tongues eval) keep. local-completions encodes without special tokens (its remote tokenizer always does), so
    these need the Hugging Face tokenizer of the checkpoint with ``add_bos_token=True``."""
    path = checkpoint(family)
    server = serve(path, f"tiny-{family}")
    theirs = run_lm_eval(local_completions(server, f"tiny-{family}", tokenizer_backend="huggingface", tokenizer=path,
                                           add_bos_token=True),
                         shipped_task_configs(tmp_path, TASKS), tmp_path, LIMIT, 0)
    assert_same_as_tongues_eval(theirs, *ours(path, 0))
