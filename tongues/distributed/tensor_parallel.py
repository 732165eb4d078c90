"""Megatron-style tensor parallelism over ``torch.distributed``: shard named weights, all-reduce after
row-split layers.

A family declares, on its bare model and heads, a ``tp_plan``: module-name globs mapped to a style.

- ``"colwise"``: the output features are split (q/k/v, MLP up-projections); bias split alike.
  ``("colwise", k)`` splits each of ``k`` fused blocks (GLM's ``gate_up_proj`` is gate and up).
- ``"kv_colwise"``: key/value projections of grouped-query attention, split by the key/value heads
  that serve the rank's query heads (replicated when there are more ranks than key/value heads).
- ``"rowwise"``: the input features are split (attention output, MLP down); the partial products
  are summed over ranks with ``all_reduce``, then the bias is added once.
- ``"vocab_embedding"``: vocabulary rows are split; ids outside a rank's rows give zeros; all-reduce.
- ``"vocab_head"``: the LM head's vocabulary rows are split; the logits are all-gathered.

Anything else (norms, positions, small classifiers) is replicated. The parent of a colwise layer
that has a head count (``num_heads``, ``n_heads``, ``num_kv_heads``) gets its local count, and a
bare model with ``alibi_heads`` gets the rank's ALiBi slopes.

Sharding happens on the meta device before loading (``shard_meta_model``), so a rank allocates and
reads only its part: :func:`shard_tensor` cuts each checkpoint tensor as it is read.

Example (under ``torchrun --nproc-per-node 2``)::

    model = AutoModelForCausalLM.from_pretrained(path, tp_plan="auto")
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

STYLES = ("colwise", "kv_colwise", "rowwise", "vocab_embedding", "vocab_head")
HEAD_COUNTS = ("num_heads", "n_heads")
KV_HEAD_COUNTS = ("num_kv_heads", "num_key_value_heads")


@dataclass(frozen=True)
class Shard:
    """How one parameter is cut: along ``dim``, the rows/columns ``index`` (a list of ranges)."""

    dim: int
    ranges: tuple[tuple[int, int], ...]
    full: int  # the unsharded size along ``dim``

    def take(self, tensor: torch.Tensor) -> torch.Tensor:
        parts = [tensor.narrow(self.dim, lo, hi - lo) for lo, hi in self.ranges]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=self.dim)

    @property
    def size(self) -> int:
        return sum(hi - lo for lo, hi in self.ranges)


@dataclass
class Traffic:
    """Bytes handed to the collectives of a sharded model (``model.tp_traffic``), by kind."""

    all_reduce_calls: int = 0
    all_reduce_bytes: int = 0
    all_gather_calls: int = 0
    all_gather_bytes: int = 0  # this rank's part of each gathered tensor

    def reset(self) -> None:
        self.all_reduce_calls = self.all_reduce_bytes = self.all_gather_calls = self.all_gather_bytes = 0

    def all_reduce(self, tensor: torch.Tensor, group) -> None:
        self.all_reduce_calls += 1
        self.all_reduce_bytes += tensor.numel() * tensor.element_size()
        dist.all_reduce(tensor, group=group)

    def all_gather(self, parts: list[torch.Tensor], tensor: torch.Tensor, group) -> None:
        self.all_gather_calls += 1
        self.all_gather_bytes += tensor.numel() * tensor.element_size()
        dist.all_gather(parts, tensor, group=group)


def collect_plan(model: nn.Module) -> dict[str, object]:
    """The model's plan with full module-name globs: every sub-model's ``tp_plan`` under its path."""
    plan: dict[str, object] = {}
    for path, module in model.named_modules():
        for pattern, style in (getattr(type(module), "tp_plan", None) or {}).items():
            plan[f"{path}.{pattern}" if path else pattern] = style
    return plan


def style_of(module_name: str, plan: dict[str, object]) -> tuple[str, int] | None:
    """``(style, fused blocks)`` for a module name, or ``None`` (replicated)."""
    for pattern, style in plan.items():
        if fnmatch.fnmatchcase(module_name, pattern):
            return (style, 1) if isinstance(style, str) else (style[0], int(style[1]))
    return None


def _even(total: int, world: int, rank: int, what: str) -> tuple[int, int]:
    if total % world:
        raise ValueError(f"{what} ({total}) does not divide over {world} tensor-parallel ranks; "
                         f"use a world size that divides it")
    step = total // world
    return rank * step, (rank + 1) * step


def heads_of_rank(num_heads: int, world: int, rank: int) -> tuple[int, int]:
    """The query heads ``[lo, hi)`` rank ``rank`` computes."""
    return _even(num_heads, world, rank, "the number of attention heads")


def kv_heads_of_rank(num_heads: int, num_kv_heads: int, world: int, rank: int) -> tuple[int, int]:
    """The key/value heads serving the rank's query heads (each kept whole; shared when ranks > KV heads)."""
    lo, hi = heads_of_rank(num_heads, world, rank)
    group = num_heads // num_kv_heads
    return lo // group, (hi - 1) // group + 1


def plan_shards(model: nn.Module, world: int, rank: int) -> dict[str, Shard]:
    """Parameter name -> :class:`Shard` for every parameter the plan splits (module shapes untouched)."""
    plan = collect_plan(model)
    config = model.config
    heads = getattr(config, "num_attention_heads", None)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    if heads:
        heads_of_rank(heads, world, rank)  # every head whole on one rank: the count must divide
    shards: dict[str, Shard] = {}
    for name, module in model.named_modules():
        found = style_of(name, plan)
        if found is None:
            continue
        style, blocks = found
        if style not in STYLES:
            raise ValueError(f"{type(model).__name__}.tp_plan gives {name!r} the unknown style {style!r}; "
                             f"known: {', '.join(STYLES)}")
        for pname, param in module.named_parameters(recurse=False):
            out_features = param.shape[0]
            if style == "rowwise":
                if pname != "weight":
                    continue  # the bias is added once, after the all-reduce
                lo, hi = _even(param.shape[1], world, rank, f"the input features of {name}")
                shards[f"{name}.{pname}"] = Shard(1, ((lo, hi),), param.shape[1])
                continue
            if style == "kv_colwise":
                lo, hi = kv_heads_of_rank(heads, kv_heads, world, rank)
                width = out_features // kv_heads
                shards[f"{name}.{pname}"] = Shard(0, ((lo * width, hi * width),), out_features)
                continue
            if style in ("vocab_embedding", "vocab_head"):
                lo, hi = _even(out_features, world, rank, f"the vocabulary of {name}")
                shards[f"{name}.{pname}"] = Shard(0, ((lo, hi),), out_features)
                continue
            # colwise, possibly of several fused blocks: the rank takes its part of each block
            block = out_features // blocks
            lo, hi = _even(block, world, rank, f"the output features of {name}")
            shards[f"{name}.{pname}"] = Shard(0, tuple((b * block + lo, b * block + hi) for b in range(blocks)),
                                              out_features)
    return shards


def shard_meta_model(model: nn.Module, group=None) -> dict[str, Shard]:
    """Shrink ``model`` (built on the meta device) to this rank's part and wire its collectives.

    Returns the shards, which :func:`shard_tensor` applies to the checkpoint's tensors at load.
    """
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    shards = plan_shards(model, world, rank)
    config = model.config
    heads = getattr(config, "num_attention_heads", None)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    plan = collect_plan(model)
    traffic = Traffic()
    touched_parents, wired = set(), set()
    for name, shard in shards.items():
        module_name, pname = name.rsplit(".", 1)
        module = model.get_submodule(module_name)
        param = getattr(module, pname)
        shape = list(param.shape)
        shape[shard.dim] = shard.size
        setattr(module, pname, nn.Parameter(torch.empty(shape, dtype=param.dtype, device="meta"),
                                            requires_grad=param.requires_grad))
        style, _ = style_of(module_name, plan)
        if isinstance(module, nn.Linear):
            module.in_features, module.out_features = module.weight.shape[1], module.weight.shape[0]
        if module_name not in wired:  # once per module, not per parameter
            wired.add(module_name)
            _wire(module, style, shards.get(f"{module_name}.weight", shard), group, traffic)
        if style in ("colwise", "kv_colwise") and heads:
            touched_parents.add(module_name.rsplit(".", 1)[0])
    for parent_name in touched_parents:
        parent = model.get_submodule(parent_name)
        lo, hi = heads_of_rank(heads, world, rank)
        for attribute in HEAD_COUNTS:
            if hasattr(parent, attribute):
                setattr(parent, attribute, hi - lo)
        kv_lo, kv_hi = kv_heads_of_rank(heads, kv_heads, world, rank)
        for attribute in KV_HEAD_COUNTS:
            if hasattr(parent, attribute):
                setattr(parent, attribute, kv_hi - kv_lo)
    for module in model.modules():
        if hasattr(module, "alibi_heads") and heads:
            module.alibi_heads = slice(*heads_of_rank(heads, world, rank))
    model.tp_group, model.tp_world_size, model.tp_traffic = group, world, traffic
    return shards


def shard_tensor(shards: dict[str, Shard], key: str, tensor: torch.Tensor) -> torch.Tensor:
    """This rank's part of checkpoint tensor ``key`` (the model's name for it); unsplit tensors pass."""
    shard = shards.get(key)
    if shard is None or tensor.shape[shard.dim] != shard.full:
        return tensor
    return shard.take(tensor).clone(memory_format=torch.contiguous_format)  # frees the whole tensor


# -- collectives wired onto the sharded modules --------------------------------------------------

def _wire(module: nn.Module, style: str, shard: Shard, group, traffic: Traffic) -> None:
    if style == "rowwise":
        module.tp_reduce_group = group  # quantisers take a row's scale over every rank's slice of it
        module.register_forward_pre_hook(_HideBias())
        module.register_forward_hook(_RowwiseSum(group, traffic))
    elif style == "vocab_embedding":
        lo, hi = shard.ranges[0]
        module.register_forward_pre_hook(_LocalIds(lo, hi))
        module.register_forward_hook(_VocabSum(group, traffic))
    elif style == "vocab_head":
        module.register_forward_hook(_GatherLogits(group, traffic))


class _HideBias:
    """Before a row-split layer runs: set its bias aside, so each rank's partial product has none."""

    def __call__(self, module, args):
        module._tp_bias = module._parameters.get("bias")
        if module._tp_bias is not None:
            module._parameters["bias"] = None


class _RowwiseSum:
    """After a row-split layer: sum the partial products over ranks, then add the bias once."""

    def __init__(self, group, traffic: Traffic) -> None:
        self.group, self.traffic = group, traffic

    def __call__(self, module, args, out):
        out = out.contiguous()
        self.traffic.all_reduce(out, self.group)
        bias = getattr(module, "_tp_bias", None)
        if bias is not None:
            module._parameters["bias"] = bias
            out = out + bias
        return out


class _LocalIds:
    """Before a vocabulary-split embedding: ids outside ``[lo, hi)`` look up row 0 (zeroed afterwards)."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def __call__(self, module, args):
        (ids, *rest) = args
        module._tp_outside = (ids < self.lo) | (ids >= self.hi)
        return ((ids - self.lo).masked_fill(module._tp_outside, 0), *rest)


class _VocabSum:
    """After a vocabulary-split embedding: zero the rows of ids other ranks hold, sum over ranks."""

    def __init__(self, group, traffic: Traffic) -> None:
        self.group, self.traffic = group, traffic

    def __call__(self, module, args, out):
        out = out.masked_fill(module._tp_outside[..., None], 0).contiguous()
        self.traffic.all_reduce(out, self.group)
        return out


class _GatherLogits:
    """After a vocabulary-split head: every rank gets the whole vocabulary's logits."""

    def __init__(self, group, traffic: Traffic) -> None:
        self.group, self.traffic = group, traffic

    def __call__(self, module, args, out):
        out = out.contiguous()
        parts = [torch.empty_like(out) for _ in range(dist.get_world_size(self.group))]
        self.traffic.all_gather(parts, out, self.group)
        return torch.cat(parts, dim=-1)


def broadcast_from_rank0(read):
    """``read()`` on rank 0, its result (any picklable value, or the error it raised) on every rank."""
    box = [None]
    if dist.get_rank() == 0:
        try:
            box[0] = ("value", read())
        except Exception as err:  # noqa: BLE001 - re-raised on every rank
            box[0] = ("error", err)
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise value
    return value


def init_from_env(backend: str | None = None):
    """Join the process group torchrun describes (``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``...), once.

    gloo on CPU, nccl when CUDA is available. Returns the default group.
    """
    if not dist.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return dist.group.WORLD


__all__ = ["Shard", "Traffic", "broadcast_from_rank0", "collect_plan", "heads_of_rank", "init_from_env", "kv_heads_of_rank", "plan_shards",
           "shard_meta_model", "shard_tensor", "style_of"]
