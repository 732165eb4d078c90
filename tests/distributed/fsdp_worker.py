"""Run in each of N processes by tests/distributed/test_fsdp.py: train with FSDP2, write rank 0's history."""

import json
import os
import sys

import torch


def main(spec_path: str) -> None:
    from tongues import BloomConfig, BloomForCausalLM
    from tongues.training.trainer import Trainer, TrainingArguments

    spec = json.load(open(spec_path))
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = BloomForCausalLM(BloomConfig(**spec["config"]))
    blocks = torch.load(spec["blocks"])
    args = TrainingArguments(fsdp=True, progress=False, **spec["args"])
    result = Trainer(model, args, blocks).train(resume_from=spec.get("resume_from"))
    if torch.distributed.get_rank() == 0:
        with open(spec["history"], "w") as file:
            json.dump(result.history, file)
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
    # As the tongues executable does under torchrun (tongues.cli.entry): skip the interpreter's
    # finalization, during which a gloo thread releasing a collective's tensors can abort the process.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
