"""Fixed sinusoidal position tables (no learned weights; never stored in checkpoints)."""

from __future__ import annotations

import math

import torch


def sinusoidal_table(num_positions: int, dim: int, padding_idx: int | None = None) -> torch.Tensor:
    """The fairseq / tensor2tensor sinusoidal table: (num_positions, dim), in the default dtype.

    Row ``p`` is ``[sin(p·f_0) … sin(p·f_{h-1}), cos(p·f_0) … cos(p·f_{h-1})]`` with ``h = dim // 2``
    and ``f_i = 10000^(-i / (h - 1))``: all sines first, then all cosines (tensor2tensor's layout,
    not the interleaved one of "Attention Is All You Need", Section 3.5). An odd ``dim`` gets a
    trailing zero column. Row ``padding_idx``, when given, is all zeros (fairseq reserves it).

    Every row depends only on its own position, so a longer table starts with the shorter one:
    callers may grow a table by rebuilding it larger.

    Args:
        num_positions: rows of the table (> 0).
        dim: width of each row (>= 4, so that ``h - 1 > 0``).
        padding_idx: a row to zero, in ``[0, num_positions)``; ``None`` for none.

    Raises:
        ValueError: ``num_positions`` < 1, ``dim`` < 4 or ``padding_idx`` outside the table.

    Example::

        table = sinusoidal_table(2048 + 2, 1024, padding_idx=1)   # XGLM: positions start at 2
        table.shape                                                # (2050, 1024)
    """
    if not isinstance(num_positions, int) or num_positions < 1:
        raise ValueError(f"sinusoidal_table: num_positions must be a positive integer; got {num_positions!r}")
    if not isinstance(dim, int) or dim < 4:
        raise ValueError(f"sinusoidal_table: dim must be an integer >= 4 (half of it minus one divides); got {dim!r}")
    if padding_idx is not None and not 0 <= padding_idx < num_positions:
        raise ValueError(f"sinusoidal_table: padding_idx {padding_idx} is outside the table of {num_positions} rows")
    half = dim // 2
    # Computed in fp32 then cast, as fairseq does, so tables agree bit for bit across default dtypes.
    # Always on the CPU, even inside a `with torch.device("meta")` model build: the table is cheap,
    # and torch's meta kernels for these ops import torch._dynamo (1.5-2 s on a first load).
    step = math.log(10000) / (half - 1)
    frequencies = torch.exp(torch.arange(half, dtype=torch.int64, device="cpu").float() * -step)  # (h,)
    angles = torch.arange(num_positions, dtype=torch.int64, device="cpu").float()[:, None] * frequencies[None, :]
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (N, 2h)
    if dim % 2:
        table = torch.cat([table, torch.zeros(num_positions, 1, device="cpu")], dim=1)  # (N, dim)
    if padding_idx is not None:
        table[padding_idx] = 0
    return table.to(torch.get_default_dtype())


def interleaved_sinusoidal_table(num_positions: int, dim: int) -> torch.Tensor:
    """The sinusoidal table of "Attention Is All You Need" (Section 3.5), as XLM builds it: (num_positions, dim).

    Column ``j`` of row ``p`` is ``sin(p / 10000^(2⌊j/2⌋ / dim))`` for even ``j`` and ``cos`` of the same
    angle for odd ``j``: sines and cosines interleaved, unlike :func:`sinusoidal_table`'s halves, and
    with the exponent divided by ``dim`` rather than ``dim/2 - 1``. Computed in float64, then cast to
    the default dtype, as facebookresearch/XLM (``create_sinusoidal_embeddings``) does with numpy.

    Args:
        num_positions: rows of the table (> 0).
        dim: width of each row (> 0; odd widths end with a sine column).

    Raises:
        ValueError: ``num_positions`` or ``dim`` is not a positive integer.

    Example::

        table = interleaved_sinusoidal_table(512, 1024)   # XLM with sinusoidal_embeddings=True
        table[0, 1::2]                                     # all ones: cos(0)
    """
    for name, value in (("num_positions", num_positions), ("dim", dim)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"interleaved_sinusoidal_table: {name} must be a positive integer; got {value!r}")
    # On the CPU for the same reason as sinusoidal_table.
    exponents = (2 * (torch.arange(dim, dtype=torch.int64, device="cpu") // 2)).double() / dim  # (dim,)
    positions = torch.arange(num_positions, dtype=torch.float64, device="cpu")[:, None]
    angles = positions / torch.pow(torch.tensor(10000.0, dtype=torch.float64, device="cpu"), exponents)[None, :]
    table = torch.empty(num_positions, dim, dtype=torch.float64, device="cpu")
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.to(torch.get_default_dtype())
