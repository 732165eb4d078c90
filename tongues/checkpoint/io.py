"""Reading and writing weights: safetensors (single or sharded) and torch ``.bin`` (weights only).

Reading is lazy and zero-copy for safetensors: the file is memory-mapped copy-on-write and each
tensor is a view on the map until the model casts or moves it, so a checkpoint is never held in
memory twice. ``.bin`` files go through ``torch.load(weights_only=True)``, which refuses pickles
that would run code.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import struct
import warnings
from typing import Iterator

import torch

from .files import CheckpointError, atomic_write_text, resolve_file

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
WEIGHTS_NAME = "pytorch_model.bin"
WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"

_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsFile:
    """A memory-mapped safetensors file whose header has been checked against the file's size.

    ``keys()`` lists tensor names; ``get(name)`` returns a tensor viewing the map (copy-on-write).
    Raises :class:`CheckpointError` naming the file for a truncated, corrupt or empty file.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            size = os.path.getsize(path)
        except OSError as err:
            raise CheckpointError(f"cannot read {path}: {err}") from None
        if size < 8:
            raise CheckpointError(f"{path} is not a safetensors file: it is {size} bytes long (empty or truncated)")
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > min(_MAX_HEADER, size - 8):
                raise CheckpointError(
                    f"{path} is corrupt or truncated: its header claims {header_len} bytes but the file has {size}"
                )
            raw = f.read(header_len)
        try:
            header = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"{path} is corrupt: its safetensors header is not valid JSON") from None
        if not isinstance(header, dict):
            raise CheckpointError(f"{path} is corrupt: its safetensors header is not a JSON object")
        self.metadata = header.pop("__metadata__", None) or {}
        self.data_start = 8 + header_len
        data_len = size - self.data_start
        self.entries: dict[str, tuple[torch.dtype, tuple[int, ...], int, int]] = {}
        for name, info in header.items():
            try:
                dtype_name, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            except (KeyError, TypeError, ValueError):
                raise CheckpointError(f"{path}: header entry {name!r} is malformed") from None
            if dtype_name not in _SAFETENSORS_DTYPES:
                raise CheckpointError(
                    f"{path}: tensor {name!r} has dtype {dtype_name!r}, which tongues does not read "
                    f"(supported: {', '.join(_SAFETENSORS_DTYPES)})"
                )
            dtype = _SAFETENSORS_DTYPES[dtype_name]
            if not all(isinstance(d, int) and d >= 0 for d in shape):
                raise CheckpointError(f"{path}: tensor {name!r} has an invalid shape {shape!r}")
            numel = 1
            for d in shape:
                numel *= d
            nbytes = numel * torch.empty((), dtype=dtype).element_size()
            if not (isinstance(begin, int) and isinstance(end, int)) or end - begin != nbytes or begin < 0:
                raise CheckpointError(
                    f"{path}: tensor {name!r} of shape {tuple(shape)} and dtype {dtype_name} needs {nbytes} bytes "
                    f"but its offsets span {begin}..{end}"
                )
            if end > data_len:
                raise CheckpointError(
                    f"{path} is truncated: tensor {name!r} ends at byte {end} of the data but the file holds "
                    f"only {data_len} data bytes"
                )
            self.entries[name] = (dtype, tuple(shape), begin, end)
        self._map: mmap.mmap | None = None
        self._stage: bytearray | None = None

    def keys(self) -> list[str]:
        return list(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name][1]

    def get(self, name: str, cast_to: torch.dtype | None = None) -> torch.Tensor:
        """The tensor ``name``: a view on the map, or (floating tensors, ``cast_to`` given and different)
        a new tensor of that dtype, read and cast slice by slice (see :meth:`_read_cast`)."""
        dtype, shape, begin, end = self.entries[name]
        if end == begin:
            return torch.empty(shape, dtype=dtype)
        numel = (end - begin) // _itemsize(dtype)
        if cast_to is not None and cast_to != dtype and dtype.is_floating_point:
            return self._read_cast(dtype, numel, cast_to, self.data_start + begin).view(shape)
        if self._map is None:
            with open(self.path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the map is writable (copy-on-write); torch warns anyway on some builds
            flat = torch.frombuffer(self._map, dtype=dtype, count=numel, offset=self.data_start + begin)
        return flat.view(shape)

    def release(self, name: str) -> None:
        """Drop the mapped pages of ``name`` from this process's memory (they are re-read from the file
        if a view on them is used again): for callers that keep only part of each tensor."""
        if self._map is None:
            return
        _, _, begin, end = self.entries[name]
        page = mmap.PAGESIZE
        start = (self.data_start + begin) // page * page
        stop = min(len(self._map), -(-(self.data_start + end) // page) * page)
        if stop > start:
            self._map.madvise(mmap.MADV_DONTNEED, start, stop - start)

    def _read_cast(self, dtype: torch.dtype, numel: int, cast_to: torch.dtype, offset: int) -> torch.Tensor:
        """Read ``numel`` elements of ``dtype`` at byte ``offset`` into a new ``cast_to`` tensor, a slice at a
        time through one reused buffer.

        Not through the map: mapped file pages count in the process's RSS, so casting a 2.2 GB fp32
        checkpoint to bf16 from the map would peak at the bf16 weights + the whole file. Reading
        copies from the page cache into a buffer of at most 16 MiB: the peak is the cast weights + one
        slice, and no page of the file is mapped into the process.
        """
        out = torch.empty(numel, dtype=cast_to)
        size = _itemsize(dtype)
        step = max(1, _SLICE_BYTES // size)
        if self._stage is None:  # one buffer for every tensor of the file
            self._stage = bytearray(_SLICE_BYTES + 16)
        buffer = self._stage
        staged = torch.frombuffer(buffer, dtype=dtype, count=min(numel, step))
        with open(self.path, "rb", buffering=0) as f:
            for lo in range(0, numel, step):
                hi = min(numel, lo + step)
                _read_exactly(f, memoryview(buffer)[: (hi - lo) * size], offset + lo * size, self.path)
                out[lo:hi].copy_(staged[: hi - lo])
        return out


def _read_exactly(f, view: memoryview, offset: int, path: str) -> None:
    f.seek(offset)
    while len(view):
        n = f.readinto(view)
        if not n:
            raise CheckpointError(f"{path} is truncated: expected {len(view)} more bytes at offset {offset}")
        view, offset = view[n:], offset + n


# Bytes read per slice when casting: small next to any model, large enough that the loop costs nothing.
_SLICE_BYTES = 16 * 2**20


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def find_weight_files(pretrained: str, **hub_kwargs) -> tuple[list[str], str]:
    """The weight files of a checkpoint and their format (``"safetensors"`` or ``"bin"``).

    Looks for, in order: ``model.safetensors``, its sharded index, ``pytorch_model.bin``, its index.
    For an index, checks that every shard it names exists and that no key is named twice.
    """
    for name, index_name, fmt in (
        (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, "safetensors"),
        (WEIGHTS_NAME, WEIGHTS_INDEX_NAME, "bin"),
    ):
        single = resolve_file(pretrained, name, required=False, **hub_kwargs)
        if single is not None:
            return [single], fmt
        index = resolve_file(pretrained, index_name, required=False, **hub_kwargs)
        if index is not None:
            return _shards_of_index(pretrained, index, **hub_kwargs), fmt
    raise CheckpointError(
        f"{pretrained} holds no weights: expected {SAFE_WEIGHTS_NAME}, {SAFE_WEIGHTS_INDEX_NAME}, "
        f"{WEIGHTS_NAME} or {WEIGHTS_INDEX_NAME}"
    )


def read_index(index_path: str) -> dict[str, str]:
    """The ``weight_map`` of a sharded index, validated (a JSON object of key -> shard file name)."""
    try:
        with open(index_path, encoding="utf-8") as f:
            raw = f.read()
        pairs = json.loads(raw, object_pairs_hook=lambda kv: kv)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{index_path} is not valid JSON: {err}") from None
    top = dict(pairs) if isinstance(pairs, list) else None
    if not isinstance(top, dict) or not isinstance(top.get("weight_map"), list):
        raise CheckpointError(f"{index_path} has no 'weight_map' object")
    weight_map: dict[str, str] = {}
    for key, shard in top["weight_map"]:
        if key in weight_map:
            raise CheckpointError(f"{index_path} names the key {key!r} twice")
        if not isinstance(shard, str) or not shard or "/" in shard or "\\" in shard or shard.startswith("."):
            raise CheckpointError(f"{index_path}: key {key!r} maps to an invalid shard name {shard!r}")
        weight_map[key] = shard
    return weight_map


def _shards_of_index(pretrained: str, index_path: str, **hub_kwargs) -> list[str]:
    weight_map = read_index(index_path)
    shards = []
    for shard in dict.fromkeys(weight_map.values()):
        path = resolve_file(pretrained, shard, required=False, **hub_kwargs)
        if path is None:
            raise CheckpointError(f"{index_path} names the shard {shard}, which is missing from {pretrained}")
        shards.append(path)
    return shards


def iter_checkpoint(files: list[str], fmt: str, cast_to: torch.dtype | None = None,
                    release: bool = False) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(key, tensor)`` over every file, one tensor at a time; floating tensors cast to ``cast_to``
    if given (safetensors: slice by slice, so peak memory stays near the cast weights). With
    ``release``, a mapped tensor's pages leave memory once the caller has taken the next one (for
    callers that keep a copy of part of each tensor)."""
    seen: dict[str, str] = {}
    for path in files:
        if fmt == "safetensors":
            reader = SafetensorsFile(path)
            items = ((k, lambda k=k: reader.get(k, cast_to)) for k in reader.keys())
        else:
            state = load_bin(path)
            items = ((k, lambda v=v: v) for k, v in state.items())
        for key, get in items:
            if key in seen:
                raise CheckpointError(f"the key {key!r} is in both {seen[key]} and {path}")
            seen[key] = path
            yield key, get()
            if release and fmt == "safetensors":
                reader.release(key)


def checkpoint_shapes(files: list[str], fmt: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape without reading tensor data (safetensors); reads ``.bin`` files."""
    if fmt == "safetensors":
        out = {}
        for path in files:
            out.update({k: entry[1] for k, entry in SafetensorsFile(path).entries.items()})
        return out
    return {k: tuple(v.shape) for k, v in iter_checkpoint(files, fmt)}


def load_bin(path: str) -> dict[str, torch.Tensor]:
    """``torch.load`` with ``weights_only=True``: a pickle that would run code is refused, never run."""
    import zipfile

    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): an interrupted download or copy?")
    try:
        # Memory-map the zip format; the legacy (pre-1.6) format cannot be mapped but is still read
        # weights-only.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as err:  # noqa: BLE001 - every failure becomes one clear error naming the file
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path} could not be loaded safely (weights only; no code is executed): {first_line}"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise CheckpointError(f"{path} does not hold a dict of name -> tensor")
    return state


def load_state_dict(pretrained: str, **hub_kwargs) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint directory (or hub id) as a dict (memory-mapped for safetensors)."""
    files, fmt = find_weight_files(pretrained, **hub_kwargs)
    return dict(iter_checkpoint(files, fmt))


# -- writing ---------------------------------------------------------------------------------

_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(size: int | str) -> int:
    """``"5GB"`` -> 5_000_000_000; ints pass through. Raises ValueError naming the bad value."""
    if isinstance(size, int) and not isinstance(size, bool):
        if size <= 0:
            raise ValueError(f"max_shard_size must be positive; got {size}")
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(size))
    if not match or match.group(2).upper() not in _SIZE_UNITS:
        raise ValueError(f"max_shard_size must be an int or a size like '5GB' or '500MiB'; got {size!r}")
    value = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])
    if value <= 0:
        raise ValueError(f"max_shard_size must be positive; got {size!r}")
    return value


def shard_state_dict(state: dict[str, torch.Tensor], max_shard_size: int) -> list[dict[str, torch.Tensor]]:
    """Split into shards of at most ``max_shard_size`` bytes each (a single larger tensor gets its own)."""
    shards: list[dict[str, torch.Tensor]] = [{}]
    current = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and current + nbytes > max_shard_size:
            shards.append({})
            current = 0
        shards[-1][key] = tensor
        current += nbytes
    return shards


def write_safetensors(state: dict[str, torch.Tensor], directory: str, max_shard_size: int | str) -> list[str]:
    """Write ``state`` as ``model.safetensors`` or shards plus index into ``directory``; return file names."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    shards = shard_state_dict(state, parse_size(max_shard_size))
    if len(shards) == 1:
        save_file(shards[0], os.path.join(directory, SAFE_WEIGHTS_NAME), metadata={"format": "pt"})
        return [SAFE_WEIGHTS_NAME]
    names = []
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, os.path.join(directory, name), metadata={"format": "pt"})
        names.append(name)
        weight_map.update({k: name for k in shard})
    total = sum(v.numel() * v.element_size() for v in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    atomic_write_text(os.path.join(directory, SAFE_WEIGHTS_INDEX_NAME), json.dumps(index, indent=2) + "\n")
    return names + [SAFE_WEIGHTS_INDEX_NAME]


WEIGHT_FILE_PATTERN = re.compile(
    r"^(model(-\d{5}-of-\d{5})?\.safetensors|pytorch_model(-\d{5}-of-\d{5})?\.bin)(\.index\.json)?$"
)


def remove_stale_weights(directory: str, keep: list[str]) -> None:
    """Delete weight files of an earlier save that the new save did not write."""
    for name in os.listdir(directory):
        if WEIGHT_FILE_PATTERN.match(name) and name not in keep:
            os.remove(os.path.join(directory, name))
