"""FSDP2 fine-tuning on gloo with 2 processes equals one process on the same global batch.

The loss of every step must match within 1e-5; the checkpoint it writes is an ordinary safetensors
directory the reference loads; resuming from a mid-run checkpoint continues the run exactly.
"""

import json
import os
import subprocess
import sys

import torch

from tongues import BloomConfig, BloomForCausalLM
from tongues.training.trainer import Trainer, TrainingArguments

from test_tensor_parallel import free_port

WORKER = os.path.join(os.path.dirname(__file__), "fsdp_worker.py")
CONFIG = dict(vocab_size=64, hidden_size=32, n_layer=2, n_head=4)
ARGS = dict(max_steps=3, batch_size=4, block_size=8, learning_rate=1e-2, warmup_steps=1, seed=3)


def run_fsdp(tmp_path, name: str, **extra) -> list[dict]:
    blocks = tmp_path / "blocks.pt"
    if not blocks.exists():
        torch.save(torch.randint(0, 64, (16, 8), generator=torch.Generator().manual_seed(0)), blocks)
    spec = {"config": CONFIG, "blocks": str(blocks), "history": str(tmp_path / f"{name}.json"), **extra}
    spec["args"] = {**ARGS, "output_dir": str(tmp_path / name), **extra.get("args", {})}
    (tmp_path / f"{name}.spec.json").write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(free_port()), WORKER, str(tmp_path / f"{name}.spec.json")]
    done = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((tmp_path / f"{name}.json").read_text())


def one_process(tmp_path):
    torch.manual_seed(0)
    model = BloomForCausalLM(BloomConfig(**CONFIG))
    blocks = torch.load(tmp_path / "blocks.pt")
    args = TrainingArguments(output_dir=str(tmp_path / "single"), progress=False, **ARGS)
    return model, Trainer(model, args, blocks).train().history


def test_fsdp_steps_equal_one_process_and_save_a_checkpoint_the_reference_loads(tmp_path):
    sharded = run_fsdp(tmp_path, "fsdp")
    model, single = one_process(tmp_path)
    assert [r["step"] for r in sharded] == [1, 2, 3]
    for a, b in zip(sharded, single):
        assert abs(a["loss"] - b["loss"]) <= 1e-5, (a, b)

    import transformers

    saved = tmp_path / "fsdp" / "checkpoint-3"
    reference = transformers.BloomForCausalLM.from_pretrained(saved).eval()
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        torch.testing.assert_close(reference(ids).logits, model.eval()(ids).logits, rtol=1e-5, atol=1e-5)


def test_fsdp_resume_continues_the_run(tmp_path):
    whole = run_fsdp(tmp_path, "whole")
    run_fsdp(tmp_path, "first", args={"max_steps": 2})
    resumed = run_fsdp(tmp_path, "resumed", resume_from=str(tmp_path / "first" / "checkpoint-2"))
    assert [r["step"] for r in resumed] == [1, 2, 3]
    assert abs(resumed[-1]["loss"] - whole[-1]["loss"]) <= 1e-6
