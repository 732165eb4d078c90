"""Which files hold a checkpoint's weights: one file or a sharded index, checked; no torch needed.

The PyTorch loader (``checkpoint/io.py``) and the TF/Flax loaders (``tongues/frameworks``) both find
their files here, so a missing shard, a key named twice, or a shard name that leaves the checkpoint's
folder is refused the same way everywhere.
"""

from __future__ import annotations

import json

from .files import CheckpointError, resolve_file

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
WEIGHTS_NAME = "pytorch_model.bin"
WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"

# format -> (single file, sharded index), in the order they are looked for.
WEIGHT_FILES = {
    "safetensors": (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME),
    "bin": (WEIGHTS_NAME, WEIGHTS_INDEX_NAME),
}


def find_weight_files(pretrained: str, formats: tuple[str, ...] = ("safetensors", "bin"), advice: str = "",
                      **hub_kwargs) -> tuple[list[str], str]:
    """The weight files of a checkpoint and their format, the first of ``formats`` present.

    For each format looks for the single file, then its sharded index (``model.safetensors``, then
    ``model.safetensors.index.json``, ...). An index is read with :func:`read_index` and every shard it
    names must exist. Raises :class:`CheckpointError` naming the files looked for (and ``advice``, a
    sentence the caller adds) when none is there.

    Example: ``find_weight_files("ckpt/")`` -> ``(["ckpt/model.safetensors"], "safetensors")``.
    """
    unknown = [fmt for fmt in formats if fmt not in WEIGHT_FILES]
    if unknown or not formats:
        raise ValueError(f"formats must name some of {', '.join(WEIGHT_FILES)}; got {formats!r}")
    for fmt in formats:
        name, index_name = WEIGHT_FILES[fmt]
        single = resolve_file(pretrained, name, required=False, **hub_kwargs)
        if single is not None:
            return [single], fmt
        index = resolve_file(pretrained, index_name, required=False, **hub_kwargs)
        if index is not None:
            return shards_of_index(pretrained, index, **hub_kwargs), fmt
    expected = [name for fmt in formats for name in WEIGHT_FILES[fmt]]
    message = f"{pretrained} holds no weights: expected {', '.join(expected[:-1])} or {expected[-1]}"
    raise CheckpointError(f"{message}: {advice}" if advice else message)


def read_index(index_path: str) -> dict[str, str]:
    """The ``weight_map`` of a sharded index, validated: a JSON object of key -> shard file name.

    Raises :class:`CheckpointError` naming the index for invalid JSON, a missing ``weight_map``, a key
    named twice, or a shard name that is not a plain file name beside the index (``../x``, ``a/b``,
    ``.hidden``: it would read outside the checkpoint).
    """
    try:
        with open(index_path, encoding="utf-8") as f:
            raw = f.read()
        # Objects are kept as their (key, value) pairs, so a key written twice is seen, not silently merged.
        top = json.loads(raw, object_pairs_hook=_Pairs)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{index_path} is not valid JSON: {err}") from None
    top = dict(top) if isinstance(top, _Pairs) else None
    if top is None or not isinstance(top.get("weight_map"), _Pairs):
        raise CheckpointError(f"{index_path} has no 'weight_map' object")
    weight_map: dict[str, str] = {}
    for key, shard in top["weight_map"]:
        if key in weight_map:
            raise CheckpointError(f"{index_path} names the key {key!r} twice")
        if not isinstance(shard, str) or not shard or "/" in shard or "\\" in shard or shard.startswith("."):
            raise CheckpointError(f"{index_path}: key {key!r} maps to an invalid shard name {shard!r}")
        weight_map[key] = shard
    return weight_map


class _Pairs(list):
    """A JSON object as the list of its (key, value) pairs (told apart from a JSON array)."""


def shards_of_index(pretrained: str, index_path: str, **hub_kwargs) -> list[str]:
    """Paths of the shards an index names, each once, in the order first named; a missing one raises."""
    shards = []
    for shard in dict.fromkeys(read_index(index_path).values()):
        path = resolve_file(pretrained, shard, required=False, **hub_kwargs)
        if path is None:
            raise CheckpointError(f"{index_path} names the shard {shard}, which is missing from {pretrained}")
        shards.append(path)
    return shards


def claim_key(owners: dict[str, str], key: str, path: str) -> None:
    """Record that ``path`` holds ``key``; raise :class:`CheckpointError` when another file already does."""
    if key in owners:
        raise CheckpointError(f"the key {key!r} is in both {owners[key]} and {path}")
    owners[key] = path
