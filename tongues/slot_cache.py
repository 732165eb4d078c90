"""A preallocated key/value cache of many sequences, each at its own length.

:class:`SlotCache` is the cache of the decode path: ``generate`` decodes into it, and the serving
engine keeps one for all running requests. It stores, per layer, keys and values shaped
``(slots, H_kv, capacity, D)``, allocated on the first ``update`` of each layer from the shapes the
layer hands in (so it needs no family-specific sizes up front), zero-filled so that unused
positions are finite under a mask. Each slot (row) has its own length.

A forward runs over a contiguous range of slots through a :class:`SlotView` (``cache.view(a, b)``),
which is itself a :class:`~tongues.cache.Cache`. ``update`` on a view writes each row's new
keys/values at that row's own length and returns the keys/values up to the longest row:

- rows of equal length may add any number of tokens (prefill, or ``generate``'s uniform batch);
  the returned width is ``length + T`` and the model's usual causal mask is right;
- rows of different lengths add one token each (a batched decode step); the returned width is
  ``max(length) + 1`` and the caller's attention mask hides each row's unused columns
  (:meth:`SlotView.attention_mask` builds it). The new token is the last query, so the causal mask
  lets it see every column, and the padding mask does the rest.

Positions that depend on the row (rotary, sinusoidal, learned) come from
:meth:`SlotView.position_ids`; ALiBi reads them from the attention mask.

On CPU, the decode step's attention computes in fp32 (:func:`~tongues.layers.attention.decode_attend`).
Where tongues' compiled kernels are built (:mod:`tongues.native`), bf16 keys and values are stored as
they come and the kernel widens them as it reads them (exactly: every bf16 value is an fp32 value), so
a step reads half the bytes. Otherwise keys and values that arrive in bf16 or fp16 are stored widened
to fp32, since widening each token once when it is written costs far less than widening the whole
cache in every layer of every step; the price is twice the cache memory. ``update`` returns the
stored keys/values, and :meth:`SlotView.layers` (the legacy format) gives them back in the dtype they
came in. ``SlotCache(..., widen=False)`` stores them as they come.

Each layer keeps its own row lengths and advances them as it writes, so every layer of one forward
sees the same past without the cache knowing the number of layers; between forwards all layers
agree, and :attr:`SlotCache.lengths` reads them.

Example::

    cache = SlotCache(slots=4, capacity=256)
    view = cache.view(0, 1)                           # slot 0 alone: prefill its prompt
    model(prompt_ids, past_key_values=view, use_cache=True)
    view = cache.view(0, 3)                           # slots 0..2, each at its own length
    mask, positions = view.attention_mask(1), view.position_ids(1)
    model(next_ids, attention_mask=mask, position_ids=positions, past_key_values=view, use_cache=True)
"""

from __future__ import annotations

import torch

from . import native
from .cache import Cache, check_memory


class SlotCache:
    """Keys/values of ``slots`` sequences, ``capacity`` positions each (grows by doubling if exceeded).

    Args:
        slots: number of rows (sequences) the cache holds.
        capacity: positions reserved per row before the first growth.
        growable: when ``False``, writing past ``capacity`` raises instead of growing.
        widen: store bf16/fp16 keys and values of CPU layers as fp32 (see the module's docstring).
    """

    def __init__(self, slots: int, capacity: int, growable: bool = True, widen: bool = True) -> None:
        for name, value in (("slots", slots), ("capacity", capacity)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SlotCache needs a positive integer {name}; got {value!r}")
        self.slots = slots
        self.capacity = capacity
        self.growable = growable
        self.widen = widen
        self.dtypes: list[torch.dtype] = []  # per layer, the dtype keys/values arrive in
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        # Per layer, the filled positions of each row, as Python ints: a decode step reads and advances
        # them once per layer, and tensor ops there cost more than the step's attention at batch 1.
        self.row_lengths: list[list[int]] = []

    @property
    def lengths(self) -> torch.Tensor:
        """(slots,) filled positions of each row (between forwards every layer agrees)."""
        return torch.tensor(self.row_lengths[0] if self.row_lengths else [0] * self.slots, dtype=torch.long)

    @property
    def layer_lengths(self) -> list[torch.Tensor]:
        """Per layer, (slots,) filled positions of each row."""
        return [torch.tensor(lengths, dtype=torch.long) for lengths in self.row_lengths]

    # -- storage ------------------------------------------------------------------------------
    def storage_dtype(self, dtype: torch.dtype, device: torch.device) -> torch.dtype:
        """The dtype keys/values of ``dtype`` on ``device`` are stored in."""
        if self.widen and device.type == "cpu" and dtype in (torch.bfloat16, torch.float16):
            if dtype == torch.bfloat16 and native.loaded() is not None:
                return dtype  # the compiled decode attention widens bf16 as it reads it
            return torch.float32
        return dtype

    def _allocate(self, key: torch.Tensor, value: torch.Tensor, capacity: int) -> tuple[torch.Tensor, torch.Tensor]:
        _, H, _, D = key.shape
        dtype = self.storage_dtype(key.dtype, key.device)
        element = torch.empty((), dtype=dtype).element_size()
        check_memory(element * self.slots * capacity * (H * D + value.shape[1] * value.shape[-1]),
                     f"a KV cache layer of {self.slots} rows x {capacity} positions", key.device)
        keys = torch.zeros(self.slots, H, capacity, D, dtype=dtype, device=key.device)
        values = torch.zeros(self.slots, value.shape[1], capacity, value.shape[-1], dtype=dtype, device=value.device)
        return keys, values

    def _ensure(self, layer_idx: int, key: torch.Tensor, value: torch.Tensor, needed: int) -> None:
        if needed > self.capacity and not self.growable:
            raise ValueError(
                f"SlotCache holds {self.capacity} positions per row; {needed} are needed. Allocate a larger capacity."
            )
        if layer_idx == len(self.keys):
            keys, values = self._allocate(key, value, max(self.capacity, needed))
            self.keys.append(keys)
            self.values.append(values)
            self.dtypes.append(key.dtype)
            # A layer first written now starts where layer 0 started this forward (all rows empty).
            self.row_lengths.append([0] * self.slots)
            return
        if layer_idx > len(self.keys):
            raise IndexError(f"SlotCache has {len(self.keys)} layers; cannot update layer {layer_idx} first")
        capacity = self.keys[layer_idx].shape[2]
        if needed <= capacity:
            return
        keys, values = self._allocate(key, value, max(2 * capacity, needed))
        keys[:, :, :capacity].copy_(self.keys[layer_idx])
        values[:, :, :capacity].copy_(self.values[layer_idx])
        self.keys[layer_idx], self.values[layer_idx] = keys, values

    def _write(self, layer_idx: int, start: int, stop: int, key: torch.Tensor, value: torch.Tensor):
        """Write ``key``/``value`` (stop - start, H, T, D) for rows ``start:stop``; return their keys/values."""
        rows = stop - start
        if key.shape[0] != rows:
            raise ValueError(f"the cache view covers {rows} rows but the layer wrote keys for {key.shape[0]}")
        T = key.shape[2]
        lengths = self.row_lengths[layer_idx][start:stop] if layer_idx < len(self.row_lengths) else [0] * rows
        low, high = min(lengths), max(lengths)
        if low != high and T != 1:
            raise ValueError(
                f"rows {start}..{stop - 1} have different lengths ({low}..{high}); they can only add one token "
                f"each per forward, not {T}. Prefill rows of different lengths separately."
            )
        self._ensure(layer_idx, key, value, high + T)
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        if low == high:  # one slice for every row
            keys[start:stop, :, low : low + T].copy_(key)
            values[start:stop, :, low : low + T].copy_(value)
        else:  # one token per row, each at its own column
            index = torch.arange(start, stop, device=keys.device)
            columns = torch.tensor(lengths, device=keys.device)
            keys[index, :, columns] = key[:, :, 0].to(keys.dtype)
            values[index, :, columns] = value[:, :, 0].to(values.dtype)
        self.row_lengths[layer_idx][start:stop] = [n + T for n in lengths]
        return keys[start:stop, :, : high + T], values[start:stop, :, : high + T]

    # -- rows ---------------------------------------------------------------------------------
    def view(self, start: int, stop: int) -> "SlotView":
        """A :class:`~tongues.cache.Cache` over rows ``start:stop`` (sharing this storage)."""
        if not (0 <= start < stop <= self.slots):
            raise ValueError(f"rows {start}:{stop} are outside the cache's {self.slots} slots")
        return SlotView(self, start, stop)

    def reset(self, row: int) -> None:
        """Free ``row``: its length becomes 0 (its old keys stay, finite, until overwritten)."""
        for lengths in self.row_lengths:
            lengths[row] = 0

    def move(self, src: int, dst: int) -> None:
        """Copy row ``src`` (keys, values, length) into row ``dst``: keeps running rows contiguous."""
        if src == dst:
            return
        n = self.row_lengths[0][src] if self.row_lengths else 0
        for keys, values, lengths in zip(self.keys, self.values, self.row_lengths):
            keys[dst, :, :n].copy_(keys[src, :, :n])
            values[dst, :, :n].copy_(values[src, :, :n])
            lengths[dst] = n


class SlotView(Cache):
    """Rows ``start:stop`` of a :class:`SlotCache`, passed to a model as ``past_key_values``."""

    is_static = True

    def __init__(self, cache: SlotCache, start: int, stop: int) -> None:
        self.cache, self.start, self.stop = cache, start, stop

    @property
    def lengths(self) -> torch.Tensor:
        """(rows,) filled positions of each row."""
        return self.cache.lengths[self.start : self.stop]

    def update(self, key, value, layer_idx):
        return self.cache._write(layer_idx, self.start, self.stop, key, value)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        layers = self.cache.row_lengths
        if not layers:
            return 0
        return max(layers[layer_idx if layer_idx < len(layers) else 0][self.start : self.stop])

    def get_max_length(self) -> int | None:
        return None

    def crop(self, max_length: int) -> None:
        """Forget positions beyond ``max_length`` in every row of the view."""
        for lengths in self.cache.row_lengths:
            lengths[self.start : self.stop] = [min(n, max_length) for n in lengths[self.start : self.stop]]

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Rows of the view become rows ``beam_idx`` (indices within the view), in place."""
        order = [int(i) for i in beam_idx]
        rows = slice(self.start, self.stop)
        for keys, values, lengths in zip(self.cache.keys, self.cache.values, self.cache.row_lengths):
            index = torch.tensor(order, device=keys.device)
            keys[rows] = keys[rows].index_select(0, index)
            values[rows] = values[rows].index_select(0, index)
            old = lengths[rows]
            lengths[rows] = [old[i] for i in order]

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError(
            "a SlotCache view has a fixed number of rows and cannot repeat them; generate with the cache's own "
            "batch size, or pass a DynamicCache"
        )

    def attention_mask(self, new_tokens: int) -> torch.Tensor:
        """(rows, max(length) + new_tokens) padding mask: 1 on each row's own filled and new columns."""
        lengths = self.lengths
        width = int(lengths.max()) + new_tokens
        columns = torch.arange(width)[None, :]
        return (columns < (lengths[:, None] + new_tokens)).long()

    def position_ids(self, new_tokens: int) -> torch.Tensor:
        """(rows, new_tokens) absolute positions of the new tokens: each row continues from its length."""
        return self.lengths[:, None] + torch.arange(new_tokens)[None, :]

    def __len__(self) -> int:
        return len(self.cache.keys)

    def layers(self):
        for keys, values, dtype in zip(self.cache.keys, self.cache.values, self.cache.dtypes):
            n = self.get_seq_length()
            yield keys[self.start : self.stop, :, :n].to(dtype), values[self.start : self.stop, :, :n].to(dtype)


def forward_step(model, input_ids: torch.Tensor, view: SlotView) -> torch.Tensor:
    """One forward of ``model`` over the rows of ``view``: the last position's logits, (rows, vocab).

    ``input_ids`` is (rows, T): T tokens per row (rows of one length), or one token per row at
    their own lengths. The attention mask and positions come from the rows' lengths, so ALiBi,
    rotary and sinusoidal positions continue each row where it stands. This is the step that
    ``generate`` and the serving engine both run.
    """
    T = input_ids.shape[1]
    out = model(input_ids, attention_mask=view.attention_mask(T).to(input_ids.device),
                position_ids=view.position_ids(T).to(input_ids.device), past_key_values=view, use_cache=True,
                logits_to_keep=1, return_dict=True)
    return out.logits[:, -1]
