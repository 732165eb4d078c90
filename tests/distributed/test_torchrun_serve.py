"""``torchrun --nproc-per-node 2 -m tongues serve``: rank 0 serves, rank 1 replays its steps; texts equal one process.

The embedded model (BLOOM, 4 heads, a vocabulary of 4096) is sharded over 2 gloo ranks on the CPU.
The same greedy requests go to the sharded server and to an in-process engine over the whole model:
one at a time, two at once of different lengths (prefill chunks and a batched decode of 2 rows),
``n=2`` (a cache row copied) and ``echo`` with prompt log-probabilities (a prefill keeping every
position's logits). Stopping rank 0 sends the followers STOP: both ranks exit and torchrun exits 0; terminating
torchrun itself ends both ranks too.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests


ROOT = Path(__file__).resolve().parents[2]

REQUESTS = [
    {"prompt": "Tous les êtres humains naissent libres", "max_tokens": 12},
    {"prompt": "Article 1", "max_tokens": 7, "n": 2},
    {"prompt": "Everyone has the right to life, liberty and security of person.", "max_tokens": 9, "echo": True,
     "logprobs": 1},
]
# Sent together: different prompt lengths (one prefilled in 3 chunks of 4) and different output lengths.
TOGETHER = [
    {"prompt": "Nul ne sera tenu en esclavage ni en servitude", "max_tokens": 10},
    {"prompt": "Toute personne a droit", "max_tokens": 4},
]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (held open together, so the kernel cannot hand one out twice)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def rank_of(pid: int) -> int | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in environ:
        if item.startswith(b"RANK="):
            return int(item[5:])
    return None


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def one_process_texts() -> list[list[str]]:
    from tongues import AutoModelForCausalLM
    from tongues.assets import default_model_path
    from tongues.serving import Engine, SamplingParams
    from tongues.tokenization import AutoTokenizer

    path = default_model_path()
    engine = Engine(AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path), max_running=4,
                    chunk_size=4).start()
    try:
        texts = []
        for request in REQUESTS + TOGETHER:
            params = SamplingParams(max_tokens=request["max_tokens"], temperature=0, repetition_penalty=1.3,
                                    n=request.get("n", 1),
                                    prompt_logprobs=1 if request.get("echo") else None)
            prefix = request["prompt"] if request.get("echo") else ""
            texts.append([prefix + out.text for out in engine.generate(request["prompt"], params, timeout=120)])
        return texts
    finally:
        engine.shutdown()


def complete(url: str, request: dict) -> list[str]:
    # The penalty is the checkpoint's default too; it is given so that both sides plainly use it.
    body = {"model": "tongues-default", "temperature": 0, "repetition_penalty": 1.3, **request}
    reply = requests.post(url + "/v1/completions", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    return [choice["text"] for choice in sorted(reply.json()["choices"], key=lambda c: c["index"])]


def start_server(tmp_path) -> tuple[subprocess.Popen, int, dict[int, int]]:
    """torchrun with 2 ranks serving the embedded model, once /health is 200: (launcher, port, {rank: pid})."""
    port, master_port = free_ports(2)
    # PYTHONFAULTHANDLER: should a rank abort, its stderr (shown by the assertions) holds every thread's stack.
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(tmp_path / "stderr.txt", "w") as log:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
             "--master-port", str(master_port), "-m", "tongues", "serve", "--port", str(port), "--max-running", "4",
             "--chunk-size", "4"], stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=tmp_path)
    deadline = time.monotonic() + 180
    status = None
    while time.monotonic() < deadline and launcher.poll() is None:
        try:
            status = requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code
        except requests.ConnectionError:
            status = None
        if status == 200:
            break
        time.sleep(0.2)
    if status != 200:
        stop(launcher)
    assert status == 200, (tmp_path / "stderr.txt").read_text()[-3000:]
    ranks = {rank_of(pid): pid for pid in children(launcher.pid)}
    assert set(ranks) == {0, 1}, ranks
    return launcher, port, ranks


def stop(launcher: subprocess.Popen) -> None:
    if launcher.poll() is None:
        launcher.terminate()
        launcher.wait(60)


def assert_exited(ranks: dict[int, int]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(pid) for pid in ranks.values()):
        time.sleep(0.2)
    assert not any(alive(pid) for pid in ranks.values())


def test_torchrun_serve_answers_like_one_process_and_stops_every_rank(tmp_path):
    launcher, port, ranks = start_server(tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        sharded = [complete(url, request) for request in REQUESTS]
        together: list = [None] * len(TOGETHER)

        def send(i: int) -> None:
            together[i] = complete(url, TOGETHER[i])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(TOGETHER))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(150)
        assert sharded + together == one_process_texts()
        assert sharded[1][0] == sharded[1][1]  # greedy: both continuations of n=2 agree

        os.kill(ranks[0], signal.SIGTERM)  # the server stops; rank 0 broadcasts STOP and rank 1 returns
        assert launcher.wait(120) == 0, (tmp_path / "stderr.txt").read_text()[-3000:]
    finally:
        stop(launcher)
    assert_exited(ranks)


def test_terminating_torchrun_ends_both_ranks(tmp_path):
    launcher, port, ranks = start_server(tmp_path)
    try:
        assert len(complete(f"http://127.0.0.1:{port}", TOGETHER[1])) == 1
    finally:
        launcher.terminate()  # torchrun passes SIGTERM to every rank
        launcher.wait(90)
    assert_exited(ranks)


class RecordingChannel:
    """Stands in for rank 0's CommandChannel in one process: keeps what would be broadcast."""

    rank = 0

    def __init__(self) -> None:
        self.sent = []

    def send(self, command) -> None:
        self.sent.append(command)


def recording(runner) -> list:
    """Keep every output of ``runner.execute`` (logits, or None for cache moves) in the returned list."""
    outputs, execute = [], runner.execute

    def record(command):
        outputs.append(execute(command))
        return outputs[-1]

    runner.execute = record
    return outputs


@pytest.mark.parametrize("family", ["bloom", "xlm"])
def test_replaying_rank_0s_commands_gives_its_logits_and_cache(family):
    # What a follower does, without torchrun: the recorded commands, run on a second runner over the
    # same weights, give rank 0's logits and leave exactly its cache (n=2 copies a row; echo keeps every
    # position's logits). XLM reruns whole sequences: one command per forward, no cache.
    import torch

    from tongues.assets import default_model_path
    from tongues.serving import Engine, SamplingParams
    from tongues.serving.distributed import DECODE, IDLE, MOVE, PREFILL_ALL, RECOMPUTE, STOP, follow
    from tongues.serving.model_runner import make_runner
    from tongues.tokenization import AutoTokenizer

    sys.path.insert(0, str(ROOT / "tests" / "serving"))
    from helpers import tiny

    channel = RecordingChannel()
    engine = Engine(tiny(family), AutoTokenizer.from_pretrained(default_model_path()), max_running=3, chunk_size=3,
                    channel=channel)
    engine.runner.idle_seconds = 0.01  # heartbeats while idle, quickly
    ours = recording(engine.runner)
    engine.start()
    try:
        engine.generate([5, 6, 7, 8, 9, 10, 11], SamplingParams(max_tokens=4, temperature=0, n=2), timeout=60)
        if family == "bloom":
            engine.generate([12, 13], SamplingParams(max_tokens=3, temperature=0, prompt_logprobs=1), timeout=60)
        time.sleep(0.1)
    finally:
        engine.shutdown()
    ops = [command.op for command in channel.sent]
    assert ops[-1] == STOP and IDLE in ops and engine.runner.channel is None
    assert {MOVE, PREFILL_ALL, DECODE} <= set(ops) if family == "bloom" else RECOMPUTE in ops

    class Replay:
        def __init__(self, commands) -> None:
            self.commands = iter(commands)

        def receive(self):
            return next(self.commands)

    follower = make_runner(tiny(family), 3, engine.max_model_len)
    theirs = recording(follower)
    assert follow(follower, Replay(channel.sent)) == len(channel.sent) - 1 == len(theirs)
    theirs = [out for out, op in zip(theirs, ops) if op != IDLE]  # heartbeats: sent by rank 0, not run there
    assert len(ours) == len(theirs)
    for mine, replayed in zip(ours, theirs):
        assert (mine is None) == (replayed is None)
        if mine is not None:
            torch.testing.assert_close(mine, replayed, rtol=0, atol=0)
    if family == "bloom":
        for mine, replayed in zip(engine.runner.cache.keys + engine.runner.cache.values,
                                  follower.cache.keys + follower.cache.values):
            torch.testing.assert_close(mine, replayed, rtol=0, atol=0)
        assert engine.runner.cache.row_lengths == follower.cache.row_lengths
