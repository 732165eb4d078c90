"""tongues' C++ CPU kernels (the ``.cpp``/``.h`` files beside this one): compiled once per machine and torch installation, loaded on demand.

The sources are built with torch's own extension builder (``torch.utils.cpp_extension.load``: the
C++ compiler found as ``$CXX`` or ``c++``, and ninja, a dependency of tongues) the first time a
process asks for them, into ``$TONGUES_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/tongues/kernels``, else
``~/.cache/tongues/kernels``. The folder's name carries a hash of the sources and of the torch
installation (version and path), so an upgrade or another virtualenv builds its own instead of
loading a stale one; it compiles copies of the sources kept in that folder, so another checkout of
the same sources in the same virtualenv finds the build current. A build takes about 30 s and says so
on stderr first; later processes load it in under two seconds.

The code splits its work with ``at::parallel_for``, so it runs on torch's own OpenMP threads (the
library is linked against the ``libgomp`` torch already loaded: one thread pool, not two). Its hot
loops are hand-written for AVX-512 (with BF16 where the CPU has it) and AVX2+FMA, with plain C++
(vectorised by GCC, ``target_clones``) for other shapes and CPUs; the CPU it runs on picks among them
at run time, so a build made on one machine class runs on the other.

What they hold: decoding's weight products (each thread reading its weights as one sequential stream:
``dense_rows`` for plain fp32/bf16 weights, the packed layouts' ``fp32_blocks_rows`` / ``bf16_pairs_rows``,
``int8_rows``, ``int4_rows``), the decode attention over the cache, and ``argmax_rows``.

Who builds them: ``tongues serve`` before it loads the model, ``generate`` before it decodes two or more
rows, the benchmarks, or you (``tongues.native.load()``). A batch-1 ``generate`` and
``prepare_for_decode("packed")`` call ``load(build=False)``, which imports a finished build of the current
sources (a fraction of a second) and never starts one; so the README's first ``tongues generate`` does not
wait 30 s, and later ones use the build. The decode path only asks whether they are loaded (:func:`loaded`).

Without a compiler, or when the build fails, or with ``TONGUES_CPP_KERNELS=0``, :func:`load` returns
``None`` (after one warning, for a failure) and every caller keeps its PyTorch path, which gives the
same results within float rounding (tests/unit/test_native.py compares both). :func:`status` says
which it is.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
import warnings
from pathlib import Path

SOURCES = ("module.cpp",)
HEADERS = ("argmax.h", "common.h", "decode_attention.h", "dense_rows.h", "int4_rows.h", "int8_rows.h", "packed_rows.h")
CFLAGS = ("-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math")
LDFLAGS = ("-fopenmp",)

_lock = threading.Lock()
_state: dict = {"module": None, "reason": "not loaded yet", "tried": False}


def source_dir() -> Path:
    return Path(__file__).resolve().parent


def cache_root() -> Path:
    """Where builds live (see the module's docstring)."""
    explicit = os.environ.get("TONGUES_KERNEL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tongues" / "kernels"


def build_name() -> str:
    """The extension's name: a hash of the sources, the flags and the torch installation (version and path)."""
    import torch

    digest = hashlib.sha256()
    for name in SOURCES + HEADERS:
        digest.update((source_dir() / name).read_bytes())
    digest.update(" ".join(CFLAGS + LDFLAGS).encode())
    # The torch it builds against, by version and place: each virtualenv compiles against its own torch's
    # headers, and a build command naming other include paths would make ninja rebuild.
    digest.update(torch.__version__.encode())
    digest.update(os.path.dirname(os.path.abspath(torch.__file__)).encode())
    return f"tongues_cpu_{digest.hexdigest()[:12]}"


def _turned_off() -> str | None:
    """Why no build can be used here at all (``None``: one can)."""
    if os.environ.get("TONGUES_CPP_KERNELS", "1").strip().lower() in ("0", "false", "no", "off"):
        return "turned off by TONGUES_CPP_KERNELS=0"
    if sys.platform != "linux":
        return f"built only on Linux (this is {sys.platform})"
    return None


def _why_not() -> str | None:
    """Why no build can be attempted here (``None``: it can)."""
    off = _turned_off()
    if off is not None:
        return off
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return f"no C++ compiler ({compiler!r} is not on PATH; install g++, or set CXX)"
    from torch.utils import cpp_extension

    if not cpp_extension.is_ninja_available():
        return "ninja is not installed (pip install ninja)"
    return None


def load(build: bool = True):
    """The compiled module (building it first if this machine has no build yet), or ``None``.

    ``build=False``: load a finished build of the current sources if there is one (a fraction of a second:
    no compiler or ninja runs), else return ``None`` and leave a later ``load()`` free to build. A process
    looks once: later ``build=False`` calls return ``None`` at once until a ``load()`` builds."""
    if _state["tried"]:
        return _state["module"]
    with _lock:
        if _state["tried"]:
            return _state["module"]
        if not build:
            # no compiler or ninja check (importing torch's extension builder alone takes a second): a finished
            # build is imported or nothing, and only once per process
            module = None if _state.get("looked") or _turned_off() else _finished_build()
            _state["looked"] = True
            if module is None:
                return None
            reason = None
        else:
            reason = _why_not()
            module = None
        if reason is None and module is None:
            try:
                module = _build()
            except Exception as err:  # noqa: BLE001 - any build failure leaves the PyTorch path in place
                first = str(err).strip().splitlines()
                reason = f"the build failed ({type(err).__name__}: {first[-1] if first else ''})"
                warnings.warn(f"tongues: the C++ CPU kernels could not be built, so the PyTorch path is used "
                              f"instead (same results, slower decoding): {reason}", RuntimeWarning, stacklevel=2)
        _state.update(module=module, reason=reason or "loaded", tried=True)
        return module


def _finished_build():
    """The module of a finished build whose source copies equal the current sources, imported directly; else ``None``."""
    name = build_name()
    folder = cache_root() / name
    library = folder / f"{name}.so"
    try:
        if not library.is_file() or any((folder / "src" / file).read_bytes() != (source_dir() / file).read_bytes()
                                        for file in SOURCES + HEADERS):
            return None
        import importlib.util

        spec = importlib.util.spec_from_file_location(name, library)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    except (OSError, ImportError):  # an unreadable or half-written build: a full load() rebuilds it
        return None


def _build():
    from torch.utils import cpp_extension

    name = build_name()
    folder = cache_root() / name
    copies = folder / "src"
    copies.mkdir(parents=True, exist_ok=True)
    # The build compiles copies kept beside it, so that another checkout of the same sources in this
    # virtualenv finds the build up to date instead of rebuilding: ninja compares the source paths it was given.
    for file in SOURCES + HEADERS:
        text = (source_dir() / file).read_bytes()
        target = copies / file
        if not target.exists() or target.read_bytes() != text:
            temporary = copies / f".{file}.{os.getpid()}"
            temporary.write_bytes(text)
            os.replace(temporary, target)
    if not (folder / f"{name}.so").exists():
        print(f"tongues: compiling the C++ CPU kernels once for this machine and torch installation (about 30 s) "
              f"into {folder}", file=sys.stderr, flush=True)
    return cpp_extension.load(name=name, sources=[str(copies / s) for s in SOURCES],
                              extra_cflags=list(CFLAGS), extra_ldflags=list(LDFLAGS), build_directory=str(folder),
                              verbose=False)


def status() -> str:
    """"loaded", "not loaded yet", or why the PyTorch path is used."""
    return _state["reason"]


def loaded():
    """The module if this process has loaded it, else ``None``; never builds (the decode path asks this)."""
    return _state["module"]


def argmax(scores):
    """``torch.argmax(scores, dim=-1)`` (the first of equal maxima; NaN counts as the maximum), on the compiled
    kernel where it is loaded and ``scores`` are CPU fp32 or bf16: torch's own runs a scalar loop over a long
    row (210 us for 250,880 fp32 logits against about 40)."""
    import torch

    module = _state["module"]
    if (module is None or scores.device.type != "cpu" or scores.dtype not in (torch.float32, torch.bfloat16)
            or scores.dim() == 0 or scores.shape[-1] == 0 or scores.numel() == 0 or scores.requires_grad):
        return torch.argmax(scores, dim=-1)
    flat = scores.reshape(-1, scores.shape[-1])
    if flat.stride(-1) != 1:
        flat = flat.contiguous()
    return module.argmax_rows(flat).reshape(scores.shape[:-1])
