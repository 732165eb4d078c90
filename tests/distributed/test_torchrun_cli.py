"""``torchrun --nproc-per-node 2 -m tongues generate|score`` shards the model and prints what one process prints."""

import os
import subprocess
import sys

from test_tensor_parallel import free_port


def run(args: list[str], nproc: int = 1, stdin: str | None = None) -> subprocess.CompletedProcess:
    if nproc == 1:
        cmd = [sys.executable, "-m", "tongues", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr",
               "127.0.0.1", "--master-port", str(free_port()), "-m", "tongues", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=400,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


def test_torchrun_generate_prints_the_one_process_output():
    # The embedded model (BLOOM, 4 heads, a vocabulary of 4096) shards over 2 ranks; greedy tokens must agree.
    args = ["generate", "--temperature", "0", "--max-new-tokens", "12", "--json"]
    alone = run(args + ["Tous les êtres humains"])
    sharded = run(args + ["Tous les êtres humains"], nproc=2)
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert sharded.returncode == 0, sharded.stderr[-2000:]
    assert sharded.stdout == alone.stdout  # printed once, by rank 0


def test_torchrun_reads_stdin_on_rank_0_and_scores_like_one_process():
    alone = run(["score", "-"], stdin="Everyone has the right to life.")
    sharded = run(["score", "-"], nproc=2, stdin="Everyone has the right to life.")
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert sharded.returncode == 0, sharded.stderr[-2000:]
    assert sharded.stdout.split() == alone.stdout.split()


def test_torchrun_train_fsdp_fine_tunes_into_a_loadable_checkpoint(tmp_path):
    from tongues.assets import default_model_path

    out = tmp_path / "run"
    args = ["train", "--data", os.path.join(os.path.dirname(__file__), "..", "data", "udhr", "fra.txt"),
            "--model", str(default_model_path()), "--output", str(out), "--steps", "2", "--batch-size", "2",
            "--block-size", "32", "--warmup", "1", "--fsdp"]
    done = run(args, nproc=2)
    assert done.returncode == 0, done.stderr[-3000:]
    from tongues import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(out / "final").config.model_type == "bloom"


def test_fsdp_outside_torchrun_says_how_to_launch(tmp_path):
    done = run(["train", "--data", "x.txt", "--model", "m", "--output", str(tmp_path / "o"), "--fsdp"])
    assert done.returncode == 1
    assert "torchrun --nproc-per-node N -m tongues train --fsdp" in done.stderr
