"""Loading a checkpoint straight into a tensor-parallel model: each rank keeps only its part.

``from_pretrained(..., tp_plan="auto" | device_mesh=mesh)`` calls :func:`shard_for_loading` on the
model built on the meta device; the loader then cuts every checkpoint tensor with
:func:`~tongues.distributed.tensor_parallel.shard_tensor` before keeping it. Tensors are read
through a buffer, not mapped, so a rank's memory holds its shard plus at most one whole tensor.
"""

from __future__ import annotations

import torch.distributed as dist

from .tensor_parallel import init_from_env, shard_meta_model


def shard_for_loading(model, tp_plan, device_mesh, quantization=None) -> None:
    """Check the arguments, join the process group and shard ``model`` (on the meta device) in place."""
    if tp_plan is not None and tp_plan != "auto":
        raise ValueError(f"tp_plan={tp_plan!r} is not supported: use tp_plan='auto' (the family's own plan)")
    if device_mesh is not None:
        if device_mesh.ndim != 1:
            raise ValueError(f"device_mesh must be 1-D (one tensor-parallel dimension); got {device_mesh.ndim}-D")
        group = device_mesh.get_group()
        if dist.get_world_size(group) != device_mesh.size():
            raise ValueError(f"device_mesh has {device_mesh.size()} devices but its process group has "
                             f"{dist.get_world_size(group)} ranks")
    else:
        group = init_from_env()
    if not getattr(type(model), "tp_plan", None) and not any(getattr(type(m), "tp_plan", None)
                                                             for m in model.modules()):
        raise ValueError(f"{type(model).__name__} declares no tp_plan: it cannot be loaded tensor-parallel")
    model.tp_shards = shard_meta_model(model, group)
