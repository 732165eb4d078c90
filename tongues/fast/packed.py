"""Weights packed for inference (``kernels="packed"``): tongues.native's own layouts where it is loaded, else
bf16 weights in oneDNN's blocked layout.

**tongues.native's layouts** (tongues/native/packed_rows.h): output channels in blocks of 32, each block one
stretch of memory ordered by input: fp32 "blocks" (per input, the block's 32 weights; AVX-512 CPUs) and bf16
"pairs" (per pair of inputs, each channel's two weights side by side, for AVX-512 BF16's vdpbf16ps). One kernel
serves every row count, prefill included: each thread reads whole blocks in order (one sequential stream) and
reuses each row's input for 32 channels. On the 2-core Zen 4 VM, against oneDNN on BLOOM-560m's block matrices
(``benchmarks/native.py``): bf16 1.25x at one row, 1.3x at 8, 0.96x at 128; fp32 1.13x at one row, 1.8x at 8,
1.09x at 128 (docs/performance.md, "Session 8"). :func:`pack_blocks` / :func:`pack_pairs` make them in PyTorch.

**oneDNN's layout** (where tongues.native is not loaded, for bf16 on CPUs where oneDNN multiplies bf16 natively,
:func:`~tongues.fast.kernels.native_bf16`): torch's bf16 ``F.linear`` hands oneDNN the weight in its plain (N, K)
layout; ``torch.ops.mkldnn._reorder_linear_weight`` copies it once into the blocked layout oneDNN's bf16 kernel
walks, and ``_linear_pointwise`` multiplies by that copy: the same kernel, so the same sums bit for bit
(tests/unit/test_fast_packed.py), only faster (a whole BLOOM-560m step: 89 -> 71 ms at one row, 160 -> 105 ms at
16 rows; docs/performance.md, "Session 5"). A layer packed so repacks itself into pairs on its first product
after tongues.native is loaded.

The packed copy replaces the plain weight (the memory stays that of the model): :class:`PackedLinear`
is for inference only. Its ``state_dict`` still gives the plain weight (unpacked on the fly, exactly),
so saving works; ``prepare_for_decode("auto")`` or ``("none")`` turns it back into a plain layer.
Weights another module also uses (an LM head tied to the embeddings) stay plain, and so do weights of
:data:`~tongues.fast.kernels.LARGE_WEIGHT` elements or more, which the compiled kernel reads faster at
the few rows of a decode step. Those keep their :class:`~tongues.fast.linear.FastLinear`, which builds
a packed copy beside the plain weight the first time it multiplies more rows than the compiled kernel
takes (a batched decode step of 5 rows or more, or scoring many positions in bf16; as vLLM's CPU
backend keeps a tied head's weight beside its packed copy): it costs the weight's bytes again, only
in processes that do that (BLOOM-560m's head: 513 MB; 41 -> 25 ms at 16 rows, 12.4 -> 20.4 GB/s).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from .. import native
from ..layers.linear import plain_linear
from .kernels import LARGE_WEIGHT, native_bf16, rows_product

# tongues.native's packed layouts (see tongues/native/packed_rows.h) hold the output channels in blocks of this
# many: fp32 "blocks" per input, bf16 "pairs" per pair of inputs.
PAIRS_BLOCK = 32


def pack_pairs(weight: torch.Tensor) -> torch.Tensor:
    """A bf16 (N, K) weight in tongues.native's "pairs" layout: a flat bf16 tensor of
    ceil(N / 32) * ceil(K / 2) * 64 values, zeros where N and K are padded."""
    N, K = weight.shape
    blocks, pairs = -(-N // PAIRS_BLOCK), -(-K // 2)
    padded = weight.new_zeros(blocks * PAIRS_BLOCK, pairs * 2)
    padded[:N, :K] = weight.detach()
    return padded.view(blocks, PAIRS_BLOCK, pairs, 2).transpose(1, 2).contiguous().view(-1)


def unpack_pairs(packed: torch.Tensor, N: int, K: int) -> torch.Tensor:
    """The (N, K) weight :func:`pack_pairs` packed (exactly)."""
    blocks, pairs = -(-N // PAIRS_BLOCK), -(-K // 2)
    grid = packed.view(blocks, pairs, PAIRS_BLOCK, 2).transpose(1, 2).reshape(blocks * PAIRS_BLOCK, pairs * 2)
    return grid[:N, :K].contiguous()


def pack_blocks(weight: torch.Tensor) -> torch.Tensor:
    """An fp32 (N, K) weight in tongues.native's "blocks" layout: a flat fp32 tensor of ceil(N / 32) * K * 32
    values (per block of 32 channels, per input, the 32 weights), zeros where N is padded."""
    N, K = weight.shape
    blocks = -(-N // PAIRS_BLOCK)
    padded = weight.new_zeros(blocks * PAIRS_BLOCK, K)
    padded[:N] = weight.detach()
    return padded.view(blocks, PAIRS_BLOCK, K).transpose(1, 2).contiguous().view(-1)


def unpack_blocks(packed: torch.Tensor, N: int, K: int) -> torch.Tensor:
    """The (N, K) weight :func:`pack_blocks` packed (exactly)."""
    blocks = -(-N // PAIRS_BLOCK)
    return packed.view(blocks, K, PAIRS_BLOCK).transpose(1, 2).reshape(blocks * PAIRS_BLOCK, K)[:N].contiguous()


def blocks_module():
    """tongues.native's module where it is loaded and this CPU runs its fp32 blocks kernel (AVX-512), else ``None``."""
    module = native.loaded()
    return module if module is not None and module.fp32_blocks_supported() else None


def pairs_module():
    """tongues.native's module where it is loaded and this CPU runs its bf16 pairs kernel (AVX-512 BF16), else ``None``."""
    module = native.loaded()
    return module if module is not None and module.bf16_pairs_supported() else None


def pack_for(weight: torch.Tensor) -> tuple[str, torch.Tensor]:
    """``(layout, packed)``: a CPU fp32 or bf16 (N, K) weight in the layout this process multiplies fastest:
    tongues.native's "blocks" (fp32) or "pairs" (bf16) where it is loaded, else oneDNN's (bf16)."""
    if weight.dtype == torch.float32:
        if blocks_module() is None:
            raise ValueError("fp32 weights are packed only for tongues.native's blocks kernel, which is not loaded here")
        return "blocks", pack_blocks(weight)
    if pairs_module() is not None:
        return "pairs", pack_pairs(weight)
    return "onednn", pack(weight)


def unpack(layout: str, packed: torch.Tensor, N: int, K: int) -> torch.Tensor:
    """The plain (N, K) weight of ``packed`` (exactly)."""
    if layout == "pairs":
        return unpack_pairs(packed.detach(), N, K)
    if layout == "blocks":
        return unpack_blocks(packed.detach(), N, K)
    return packed.to_dense()


def multiply(x: torch.Tensor, layout: str, packed: torch.Tensor, N: int, K: int,
             bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` with ``(layout, packed) = pack_for(weight)``, in ``x``'s dtype: blocks in fp32,
    pairs and oneDNN's layout in bf16 (as torch's bf16 ``F.linear``)."""
    if layout == "onednn":
        return packed_linear(x, packed, bias)
    module = blocks_module() if layout == "blocks" else pairs_module()
    dtype = torch.float32 if layout == "blocks" else torch.bfloat16
    if module is None:  # the kernel hidden (tests do it): torch's product, the same up to rounding
        b = None if bias is None else bias.to(dtype)
        return F.linear(x.to(dtype), unpack(layout, packed, N, K), b).to(x.dtype)
    run = module.fp32_blocks_rows if layout == "blocks" else module.bf16_pairs_rows
    b = None if bias is None else bias.to(dtype)  # rounded as F.linear in that dtype would
    return rows_product(lambda x2, b32: run(x2, packed, N, b32), x, N, dtype, b)


@functools.cache
def can_pack() -> bool:
    """Whether this torch and CPU have oneDNN's packed bf16 linear (so ``kernels="packed"`` packs)."""
    if not native_bf16():
        return False
    try:
        weight = torch.ones(8, 8, dtype=torch.bfloat16)
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, 1)
        out = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 8, dtype=torch.bfloat16), packed, None, "none", [], "")
        return bool(out.float().eq(8).all())
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


class PackedLinear(nn.Module):
    """A bf16 (or fp32) linear layer whose weight is held packed (inference only).

    Where tongues.native is loaded, a bf16 weight is in its "pairs" layout (:func:`pack_pairs`, AVX-512 BF16
    CPUs) and every product runs on its ``bf16_pairs_rows``, an fp32 one in its "blocks" layout
    (:func:`pack_blocks`, AVX-512 CPUs; fp32 layers are packed only there) on ``fp32_blocks_rows``; otherwise a
    bf16 weight is in oneDNN's blocked layout, multiplied by oneDNN's bf16 matmul. A layer packed for oneDNN
    repacks itself into pairs the first time it runs after tongues.native was loaded (once). ``weight`` is a
    ``Parameter`` over the packed tensor, without gradient; ``bias`` is the layer's own bias parameter. Inputs of
    any float dtype go in (multiplied in the weight's dtype, as ``F.linear`` in that dtype does); the output
    has the input's dtype.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        if linear.weight.device.type != "cpu" or not (
                linear.weight.dtype == torch.bfloat16 or (linear.weight.dtype == torch.float32 and blocks_module())):
            raise ValueError(f"PackedLinear packs CPU bf16 weights, and fp32 ones where tongues.native is loaded on an "
                             f"AVX-512 CPU; got {linear.weight.dtype} on {linear.weight.device}")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self._set_weight(linear.weight)
        self.bias = linear.bias
        self.train(linear.training)

    def _set_weight(self, weight: torch.Tensor) -> None:
        """Pack the plain (N, K) ``weight`` into the layout this process multiplies fastest."""
        self.layout, packed = pack_for(weight)
        self.weight = nn.Parameter(packed, requires_grad=False)

    def dense_weight(self) -> torch.Tensor:
        """The plain (N, K) weight, unpacked (exactly)."""
        return unpack(self.layout, self.weight, self.out_features, self.in_features)

    def as_linear(self) -> nn.Linear:
        """A plain ``nn.Linear`` with the weight unpacked (exactly) and the same bias parameter."""
        weight = nn.Parameter(self.dense_weight(), requires_grad=False)
        return plain_linear(self.in_features, self.out_features, weight, self.bias, self.training)

    @property
    def kernel(self) -> str:
        if self.layout == "pairs":
            return "bfloat16: tongues.native bf16_pairs_rows on the weight packed in its pairs layout (inference only)"
        if self.layout == "blocks":
            return "float32: tongues.native fp32_blocks_rows on the weight packed in its blocks layout (inference only)"
        return "bfloat16: oneDNN's bf16 matmul on the weight packed in its blocked layout (inference only)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError(
                "this layer's weight is packed for inference (kernels='packed') and has no gradient; call "
                "model.prepare_for_decode('auto') before training"
            )
        if self.layout == "onednn" and pairs_module() is not None:
            self._set_weight(self.weight.to_dense())  # tongues.native was loaded after this layer was packed
        return multiply(x, self.layout, self.weight, self.out_features, self.in_features, self.bias)

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        destination[prefix + "weight"] = self.dense_weight()
        if self.bias is not None:
            destination[prefix + "bias"] = self.bias if keep_vars else self.bias.detach()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        key = prefix + "weight"
        if key in state_dict:
            weight = state_dict[key]
            if tuple(weight.shape) != (self.out_features, self.in_features):
                error_msgs.append(f"size mismatch for {key}: copying a param with shape {tuple(weight.shape)}, "
                                  f"the packed layer holds ({self.out_features}, {self.in_features})")
            else:
                self._set_weight(weight.to(torch.float32 if self.layout == "blocks" else torch.bfloat16))
        elif strict:
            missing_keys.append(key)
        if self.bias is not None:
            if prefix + "bias" in state_dict:
                with torch.no_grad():
                    self.bias.copy_(state_dict[prefix + "bias"])
            elif strict:
                missing_keys.append(prefix + "bias")

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"packed ({self.layout})")


def pack(weight: torch.Tensor) -> torch.Tensor:
    """A CPU bf16 (N, K) weight copied into oneDNN's blocked layout (an mkldnn tensor)."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), 16)


def packed_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` in bf16 with ``packed = pack(weight)``; the result in ``x``'s dtype."""
    bias = None if bias is None else bias.to(torch.bfloat16)
    return torch.ops.mkldnn._linear_pointwise(x.to(torch.bfloat16), packed, bias, "none", [], "").to(x.dtype)


def shared_weights(model: nn.Module) -> set[int]:
    """ids of the parameters that more than one module of ``model`` holds (an LM head tied to the
    embeddings): packing one holder's copy would leave the other with nothing to read."""
    holders: dict[int, int] = {}
    for module in model.modules():  # each module once, however often it is used
        for param in module.parameters(recurse=False):
            holders[id(param)] = holders.get(id(param), 0) + 1
    return {key for key, count in holders.items() if count > 1}


def packs_bf16(weight: torch.Tensor) -> bool:
    """Whether oneDNN can multiply by a packed copy of ``weight`` here: a CPU bf16 weight where :func:`can_pack`."""
    return weight.dtype == torch.bfloat16 and weight.device.type == "cpu" and can_pack()


def packs_fp32(weight: torch.Tensor) -> bool:
    """Whether ``weight`` is a CPU fp32 weight and tongues.native's fp32 blocks kernel is there to multiply it packed."""
    return weight.dtype == torch.float32 and weight.device.type == "cpu" and blocks_module() is not None


def packs(weight: torch.Tensor) -> bool:
    """Whether this process can multiply a packed copy of ``weight`` (:func:`packs_bf16` or :func:`packs_fp32`)."""
    return packs_bf16(weight) or packs_fp32(weight)


def packable(linear: nn.Linear, shared: set[int]) -> bool:
    """Whether ``kernels="packed"`` replaces ``linear``'s weight by its packed copy: a bf16 weight where oneDNN or
    tongues.native packs it, or an fp32 one where tongues.native is loaded; below
    :data:`~tongues.fast.kernels.LARGE_WEIGHT` elements and held by no other module (``shared``)."""
    weight = linear.weight
    return packs(weight) and weight.numel() < LARGE_WEIGHT and id(weight) not in shared


def build_packed_copies(model: nn.Module) -> int:
    """Build now the packed copies that ``kernels="packed"`` layers would build on their first batch
    (see the module docstring); returns how many. ``tongues serve`` calls it at load, so that the
    first burst of requests does not pay for it (BLOOM-560m's head: about a quarter of a second)."""
    built = 0
    for module in model.modules():
        if getattr(module, "copy_packed", False):
            module.packed_copy()
            built += 1
    return built
