"""Fine-tuning with FSDP2 (``torch.distributed.fsdp.fully_shard``) under ``torchrun``.

Every block of the family's decoder becomes one FSDP unit and the whole model the root, so a rank
holds 1/N of the parameters, gradients and optimizer state between a block's all-gather and its
reduce-scatter. Each rank trains on its slice of the global batch; FSDP averages the gradients, so
a step equals a one-process step on the whole batch (fp32, within rounding). Checkpoints are
gathered to rank 0 and written as ordinary safetensors that any loader reads.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from .tensor_parallel import init_from_env


def shard_for_training(model: nn.Module) -> nn.Module:
    """Wrap each decoder block, then the model, with ``fully_shard``; returns ``model`` (changed in place)."""
    from torch.distributed.fsdp import fully_shard

    init_from_env()
    base = getattr(model, getattr(model, "base_model_prefix", ""), model)
    blocks = base.blocks() if hasattr(base, "blocks") else None
    if blocks is None:
        raise ValueError(f"{type(model).__name__} has no decoder blocks to shard with FSDP")
    for block in blocks:
        fully_shard(block)
    fully_shard(model)
    return model


def rank_rows(rows: torch.Tensor) -> torch.Tensor:
    """This rank's share of a global batch's row indices (the batch must divide evenly)."""
    world, rank = dist.get_world_size(), dist.get_rank()
    if len(rows) % world:
        raise ValueError(f"batch_size={len(rows)} does not divide over {world} FSDP ranks; use a multiple of {world}")
    per = len(rows) // world
    return rows[rank * per:(rank + 1) * per]


def mean_over_ranks(value: float) -> float:
    """The mean of ``value`` over every rank (for the loss the progress bar and history report)."""
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor.item()) / dist.get_world_size()


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded state dict on every rank's CPU (a collective: every rank must call it)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def full_optimizer_state(model: nn.Module, optimizer) -> dict:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True,
                                                                                cpu_offload=True))


def load_full_state(model: nn.Module, optimizer, model_state: dict, optimizer_state: dict | None) -> None:
    """Scatter an unsharded model (and optimizer) state into the sharded model on every rank."""
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                         set_optimizer_state_dict)

    options = StateDictOptions(full_state_dict=True)
    set_model_state_dict(model, model_state, options=options)
    if optimizer_state is not None:
        set_optimizer_state_dict(model, optimizer, optimizer_state, options=options)


def is_main_process() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0
