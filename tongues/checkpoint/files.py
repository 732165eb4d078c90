"""Where checkpoint files come from (local folder or hub) and how they are written (atomically)."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import tempfile
import urllib.parse
from typing import Iterator


class CheckpointError(ValueError):
    """A checkpoint file is missing, malformed or does not fit the model; the message names it."""


_TRUE = ("1", "on", "yes", "true")


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set: use the local cache only, never the network."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


@functools.cache
def hub_unreachable(endpoint: str, timeout: float = 3.0) -> str | None:
    """Why ``endpoint`` cannot be reached (one TCP connect, ``timeout`` seconds), or ``None`` when it can.

    Checked once per process so an offline machine fails in a moment, instead of after
    huggingface_hub's retries (about 25 s per file).
    """
    url = urllib.parse.urlsplit(endpoint)
    host = url.hostname or endpoint
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        return f"{host}:{port}: {err.strerror or err or type(err).__name__}"
    return None


def _behind_proxy() -> bool:
    """A proxy is configured: a direct connection says nothing about reaching the hub, so do not probe."""
    return any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                                                  "ALL_PROXY", "all_proxy"))


def _hub_download(repo_id: str, filename: str, required: bool = True, **hub_kwargs) -> str | None:
    """Fetch ``filename`` from the hub (or its local cache); ``None`` when the repo exists but lacks the file."""
    try:
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        raise CheckpointError(f"{repo_id!r} is not a local directory and huggingface_hub is not installed") from None
    unreachable = None
    if hub_offline():
        unreachable = "HF_HUB_OFFLINE is set"
    elif not hub_kwargs.get("local_files_only") and not _behind_proxy():
        unreachable = hub_unreachable(constants.ENDPOINT)
    if unreachable is not None:
        hub_kwargs["local_files_only"] = True
    try:
        return hf_hub_download(repo_id, filename, **hub_kwargs)
    except LocalEntryNotFoundError:  # a subclass of EntryNotFoundError: test it first
        if not required:
            return None  # offline, an optional file is taken as absent (as the reference does)
        why = unreachable or "local_files_only=True"
        raise CheckpointError(
            f"{repo_id!r} is not a local directory and the hub could not be reached ({why}); its {filename} is "
            f"not in the local cache either. Connect to the network, or pass a local checkpoint directory."
        ) from None
    except EntryNotFoundError:
        return None
    except Exception as err:  # hub errors (repo not found, network) become one clear error
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(f"could not fetch {filename} of hub repo {repo_id!r}: {type(err).__name__}: {message}") \
            from None


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
    path = _hub_download(pretrained, filename, required, **hub_kwargs)
    if path is None and required:
        raise CheckpointError(f"hub repo {pretrained!r} has no {filename}")
    return path


def current_umask() -> int:
    """The process umask, read without changing it where ``/proc`` allows (``os.umask`` sets it to read it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers never see half a file.

    The file gets the mode ``open()`` would give it (0666 less the umask, so 0644 under umask 022):
    ``mkstemp`` creates owner-only files, which would lock other users out of shared model folders.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
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


def _honour_umask(folder: str) -> None:
    """Give every file under ``folder`` 0666 and every folder 0777, less the umask (writers such as
    safetensors' ``save_file`` create owner-only files)."""
    mask = current_umask()
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~mask)


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
        _honour_umask(staging)
        for name in os.listdir(staging):
            os.replace(os.path.join(staging, name), os.path.join(save_directory, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
