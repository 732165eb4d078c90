"""Where checkpoint files come from (local folder or hub) and how they are written (atomically)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Iterator


class CheckpointError(ValueError):
    """A checkpoint file is missing, malformed or does not fit the model; the message names it."""


def _hub_download(repo_id: str, filename: str, **hub_kwargs) -> str | None:
    """Fetch ``filename`` from the hub; ``None`` when the repo exists but lacks the file."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        raise CheckpointError(f"{repo_id!r} is not a local directory and huggingface_hub is not installed") from None
    try:
        return hf_hub_download(repo_id, filename, **hub_kwargs)
    except EntryNotFoundError:
        return None
    except LocalEntryNotFoundError as err:
        raise CheckpointError(
            f"{repo_id!r} is not a local directory, and {filename} could not be fetched from the hub "
            f"(offline or not cached): {err}"
        ) from None
    except Exception as err:  # hub errors (repo not found, network) become one clear error
        raise CheckpointError(f"could not fetch {filename} for {repo_id!r}: {type(err).__name__}: {err}") from None


def looks_like_hub_id(name: str) -> bool:
    """``name`` or ``org/name`` made of hub-legal characters, and not an existing local path."""
    parts = name.split("/")
    legal = all(p and all(c.isalnum() or c in "-_." for c in p) and not p.startswith(".") for p in parts)
    return 1 <= len(parts) <= 2 and legal and not os.path.exists(name)


def resolve_file(pretrained: str | os.PathLike, filename: str, required: bool = True, **hub_kwargs) -> str | None:
    """Path of ``filename`` inside a local directory, or downloaded from the hub repo ``pretrained``.

    ``pretrained`` may also be the path of the file itself. Returns ``None`` for an absent optional file.
    """
    pretrained = os.fspath(pretrained)
    if os.path.isfile(pretrained):
        # A config may be given as its own file under any name; every other file is looked up beside it.
        if os.path.basename(pretrained) == filename or (filename == "config.json" and pretrained.endswith(".json")):
            return pretrained
        pretrained = os.path.dirname(pretrained)
    if os.path.isdir(pretrained):
        path = os.path.join(pretrained, filename)
        if os.path.isfile(path):
            return path
        if required:
            raise CheckpointError(f"{pretrained} has no {filename}")
        return None
    if not looks_like_hub_id(pretrained):
        raise CheckpointError(f"{pretrained} is neither a directory nor a hub id (expected 'org/name')")
    path = _hub_download(pretrained, filename, **hub_kwargs)
    if path is None and required:
        raise CheckpointError(f"hub repo {pretrained!r} has no {filename}")
    return path


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers never see half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def staged_directory(save_directory: str | os.PathLike) -> Iterator[str]:
    """Stage files for ``save_directory`` in a hidden sibling folder; move them in only on success.

    Files written under the yielded folder replace their namesakes in ``save_directory`` when the
    block ends without an error. On an error nothing in ``save_directory`` changes.
    """
    save_directory = os.path.abspath(os.fspath(save_directory))
    if os.path.isfile(save_directory):
        raise CheckpointError(f"save_directory {save_directory} is a file, not a directory")
    os.makedirs(save_directory, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".staging-", dir=save_directory)
    try:
        yield staging
        for name in os.listdir(staging):
            os.replace(os.path.join(staging, name), os.path.join(save_directory, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
