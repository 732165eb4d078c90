"""llama.cpp as a peer of benchmarks/run.py (``--peer llama.cpp``): the same random-weight checkpoint,
converted to GGUF, decoded greedily through llama-cpp-python's low-level API.

    pip install -e '.[bench]'      # llama-cpp-python builds llama.cpp from source: many minutes
    python benchmarks/run.py --models bloom --peer llama.cpp

Conversion (once per checkpoint, cached beside it in ``<checkpoint>-gguf/``):

- ``convert_hf_to_gguf.py`` of the llama.cpp that the installed llama-cpp-python vendors, taken from
  that version's sdist (``pip download --no-binary :all:``, extracted into ``--cache-dir``), writes
  f32, bf16 and q8_0; q4_0 is ``llama_model_quantize`` of the f32 file with llama.cpp's default
  mix for that type (the tied embedding / LM head in q6_K, as users get it) and ``pure`` off.
- The random checkpoint has no tokenizer, so tongues' demonstration BPE (tongues/assets/default-model:
  BLOOM's pre-tokenizer regex, 8,192 tokens; the rest of the 250,880 ids become padding entries) is
  put beside it, and the converter is told its pre-tokenizer is BLOOM's (its table knows only the
  hashes of published tokenizers). Token ids are fed directly: tokenization never runs.

Measurement (one subprocess per GGUF file, like run.py's workers): the prompts of run.py
(``make_prompts``); prefill of ``--prefill`` tokens with logits at every position (best of
``--repeats``; their argmax is compared with tongues' fp32); then for each batch size a context
with one sequence per row, each row's prompt prefilled, and ``--new`` greedy steps of one token per
row (one ``llama_decode`` of B tokens, then the argmax of each row's logits, EOS never stops it).
Decode tok/s counts the steps after the first two new tokens, as run.py's streamer clock does:
``B * (steps - 1) / (time from the end of the 2nd step to the end of the last)``. Bandwidth is
measured in the same worker before the model loads; weights read per step are the GGUF tensors'
bytes (the token embedding only when it is also the output layer, as in BLOOM).

Not a test: pytest does not collect this folder.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("bloom",)  # the shapes of run.py whose architecture llama.cpp's converter takes (not XGLM; GLM: not wired)
OUTTYPES = {"fp32": "f32", "bf16": "bf16", "int8": "q8_0", "int4": "q4_0"}
LLAMA_FTYPE_MOSTLY_Q4_0 = 2  # llama.h
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
SDIST_PATHS = ("vendor/llama.cpp/convert_hf_to_gguf.py", "vendor/llama.cpp/conversion/", "vendor/llama.cpp/gguf-py/")


def installed_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        return None


def unavailable() -> str | None:
    """Why the peer cannot run here, in one line; None when it can."""
    import importlib.util

    if installed_version() is None or importlib.util.find_spec("llama_cpp") is None:
        return ("llama-cpp-python is not installed (pip install -e '.[bench]' builds it from source; "
                "CMAKE_ARGS=-DGGML_NATIVE=ON for this CPU)")
    return None


def converter_dir(cache_dir: str) -> str:
    """The folder holding convert_hf_to_gguf.py, conversion/ and gguf-py/ of the installed llama-cpp-python's
    llama.cpp: extracted from that version's sdist on first use."""
    version = installed_version()
    folder = os.path.join(cache_dir, f"llama.cpp-{version}")
    if os.path.exists(os.path.join(folder, "convert_hf_to_gguf.py")):
        return folder
    print(f"  fetching convert_hf_to_gguf.py from the llama-cpp-python {version} sdist into {folder}",
          file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        f"llama-cpp-python=={version}", "-d", tmp], check=True, capture_output=True)
        (sdist,) = glob.glob(os.path.join(tmp, "*.tar.gz"))
        with tarfile.open(sdist) as tar:
            prefix = tar.getnames()[0].split("/")[0] + "/"
            members = [m for m in tar.getmembers()
                       if any(m.name == prefix + p or (p.endswith("/") and m.name.startswith(prefix + p))
                              for p in SDIST_PATHS) and (m.isfile() or m.isdir())]
            tar.extractall(tmp, members=members, filter="data")
        shutil.copytree(os.path.join(tmp, prefix, "vendor/llama.cpp"), folder + ".tmp")
        os.replace(folder + ".tmp", folder)
    return folder


def gguf_file(checkpoint: str, dtype: str, cache_dir: str) -> str:
    """The GGUF file of ``checkpoint`` in ``dtype``'s llama.cpp type, converted on first use (and again
    when the checkpoint's files are newer than it)."""
    folder = checkpoint.rstrip("/") + "-gguf"
    path = os.path.join(folder, f"{OUTTYPES[dtype]}.gguf")
    newest = max(os.path.getmtime(os.path.join(checkpoint, name)) for name in os.listdir(checkpoint))
    if os.path.exists(path) and os.path.getmtime(path) >= newest:
        return path
    os.makedirs(folder, exist_ok=True)
    log = os.path.join(folder, f"{OUTTYPES[dtype]}.log")
    tmp = path[:-len(".gguf")] + ".tmp.gguf"
    start = time.perf_counter()
    if dtype == "int4":
        source = gguf_file(checkpoint, "fp32", cache_dir)
        cmd = [sys.executable, __file__, "--quantize", source, "--outfile", tmp]
    else:
        cmd = [sys.executable, __file__, "--convert", hf_folder(checkpoint, folder), "--outtype", OUTTYPES[dtype],
               "--outfile", tmp, "--converter", converter_dir(cache_dir)]
    print(f"  converting {checkpoint} to {path} (log: {log})", file=sys.stderr, flush=True)
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=folder)
    if proc.returncode or not os.path.exists(tmp):
        with open(log) as f:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{f.read()[-2000:]}")
    os.replace(tmp, path)
    print(f"  converted in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return path


def hf_folder(checkpoint: str, folder: str) -> str:
    """The checkpoint's files (linked) plus the stand-in tokenizer: what the converter reads."""
    hf = os.path.join(folder, "hf")
    os.makedirs(hf, exist_ok=True)
    for name in os.listdir(checkpoint):
        if not os.path.exists(os.path.join(hf, name)):
            os.symlink(os.path.abspath(os.path.join(checkpoint, name)), os.path.join(hf, name))
    assets = os.path.join(ROOT, "tongues", "assets", "default-model")
    for name in TOKENIZER_FILES:
        shutil.copyfile(os.path.join(assets, name), os.path.join(hf, name))
    return hf


def convert(args) -> None:
    """Run llama.cpp's converter in this process, with the stand-in tokenizer declared BLOOM's."""
    sys.path.insert(0, args.converter)
    sys.argv = ["convert_hf_to_gguf.py", args.convert, "--outtype", args.outtype, "--outfile", args.outfile]
    import convert_hf_to_gguf
    from conversion import base

    base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "bloom"
    convert_hf_to_gguf.main()


def quantize(args) -> None:
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = LLAMA_FTYPE_MOSTLY_Q4_0
    params.nthread = os.cpu_count() or 1
    if llama_cpp.llama_model_quantize(args.quantize.encode(), args.outfile.encode(), ctypes.byref(params)) != 0:
        raise SystemExit(f"llama_model_quantize failed on {args.quantize}")


# -- the measurement (runs in a subprocess) -----------------------------------------------------
def weight_bytes(gguf_path: str, converter: str | None) -> int:
    """Bytes of the GGUF's tensors read per decode step: all of them, except a token embedding that is only
    looked up (a model with its own output.weight)."""
    if converter:
        sys.path.insert(0, os.path.join(converter, "gguf-py"))
    from gguf import GGUFReader

    tensors = {t.name: int(t.n_bytes) for t in GGUFReader(gguf_path).tensors}
    if "output.weight" in tensors:
        tensors.pop("token_embd.weight", None)
    return sum(tensors.values())


class Engine:
    """A llama.cpp model and the contexts the measurement needs, on the low-level API."""

    def __init__(self, llama_cpp, gguf_path: str, threads: int) -> None:
        self.L = llama_cpp
        llama_cpp.llama_backend_init()
        self.model = llama_cpp.llama_model_load_from_file(gguf_path.encode(), llama_cpp.llama_model_default_params())
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {gguf_path}")
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self.model))
        self.threads = threads

    def context(self, sequences: int, length: int, batch: int):
        params = self.L.llama_context_default_params()
        params.n_seq_max = sequences
        params.n_ctx = sequences * (-(-(length + 8) // 256) * 256)
        params.n_batch = max(batch, sequences)
        params.n_ubatch = min(params.n_batch, 512)
        params.n_threads = params.n_threads_batch = self.threads
        ctx = self.L.llama_init_from_model(self.model, params)
        if not ctx:
            raise RuntimeError("llama.cpp could not create a context")
        return ctx

    def decode(self, ctx, entries: list[tuple[int, int, int, bool]]) -> None:
        """One llama_decode of (token, position, sequence, wants logits) entries."""
        batch = self.L.llama_batch_init(len(entries), 0, 1)
        try:
            batch.n_tokens = len(entries)
            for i, (token, pos, seq, logits) in enumerate(entries):
                batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, logits
                batch.seq_id[i][0] = seq
            status = self.L.llama_decode(ctx, batch)
            if status != 0:
                raise RuntimeError(f"llama_decode returned {status}")
        finally:
            self.L.llama_batch_free(batch)

    def argmax(self, ctx, index: int) -> int:
        import numpy as np

        return int(np.ctypeslib.as_array(self.L.llama_get_logits_ith(ctx, index), shape=(self.n_vocab,)).argmax())


def measure(args) -> dict:
    t0 = time.perf_counter()
    import llama_cpp

    t_import = time.perf_counter() - t0
    import torch

    sys.path.insert(0, ROOT)
    from benchmarks.run import make_prompts, peak_rss_mib, read_bandwidth_gbs

    torch.set_num_threads(args.threads)
    result = dict(impl="llama.cpp", model=args.model, dtype=args.dtype, gguf=os.path.basename(args.gguf),
                  llama_cpp_python=installed_version(), threads=args.threads, import_pkg_s=t_import, import_s=t_import)
    converter = os.path.join(args.cache_dir, f"llama.cpp-{installed_version()}") if args.cache_dir else None
    converter = converter if converter and os.path.isdir(converter) else None
    result["weights_mib"] = weight_bytes(args.gguf, converter) / 2**20
    result["rss_before_load_mib"] = peak_rss_mib()
    t = time.perf_counter()
    engine = Engine(llama_cpp, args.gguf, args.threads)
    result["load_s"] = time.perf_counter() - t
    result["peak_rss_load_mib"] = peak_rss_mib()
    # After the load (its 512 MiB buffer would count as load RSS), before llama.cpp computes anything.
    result["bandwidth_gbs"] = read_bandwidth_gbs()
    prompt512, prompt128 = make_prompts(engine.n_vocab, args.prefill, args.prompt)
    prompt512, prompt128 = prompt512.tolist(), prompt128.tolist()

    ctx = engine.context(1, max(args.prefill, 32), max(args.prefill, 32))
    engine.decode(ctx, [(tok, pos, 0, pos == 31) for pos, tok in enumerate(prompt128[0][:32])])  # warm-up
    if args.prefill:
        best = float("inf")
        for _ in range(args.repeats):
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
            t = time.perf_counter()
            engine.decode(ctx, [(tok, pos, 0, True) for pos, tok in enumerate(prompt512[0])])
            best = min(best, time.perf_counter() - t)
        result["prefill_tok_s"] = args.prefill / best
        result["argmax"] = [engine.argmax(ctx, i) for i in range(args.prefill)]
    llama_cpp.llama_free(ctx)

    for rows in args.batches:
        ctx = engine.context(rows, args.prompt + args.new, rows * args.prompt)
        engine.decode(ctx, [(tok, pos, seq, pos == args.prompt - 1)
                            for seq in range(rows) for pos, tok in enumerate(prompt128[seq])])
        tokens = [[engine.argmax(ctx, seq * args.prompt + args.prompt - 1)] for seq in range(rows)]
        times = []
        for step in range(args.new - 1):
            engine.decode(ctx, [(tokens[seq][-1], args.prompt + step, seq, True) for seq in range(rows)])
            for seq in range(rows):
                tokens[seq].append(engine.argmax(ctx, seq))
            times.append(time.perf_counter())
        steps = times[1:]  # as run.py: after the prompt's token and the first step's
        result[f"decode_b{rows}_tok_s"] = rows * (len(steps) - 1) / (steps[-1] - steps[0])
        if rows == 1:
            result["greedy_b1"] = tokens[0]
        llama_cpp.llama_free(ctx)
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gguf", help="measure this GGUF file")
    parser.add_argument("--convert", help="convert this HF-layout folder (with --outtype, --outfile, --converter)")
    parser.add_argument("--quantize", help="quantise this GGUF file to q4_0 (with --outfile)")
    parser.add_argument("--outtype")
    parser.add_argument("--outfile")
    parser.add_argument("--converter")
    parser.add_argument("--model", default="bloom")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--prefill", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--cache-dir", default=os.path.expanduser("~/.cache/tongues-bench"))
    args = parser.parse_args()
    if args.convert:
        convert(args)
    elif args.quantize:
        quantize(args)
    elif args.gguf:
        args.batches = [int(b) for b in args.batches.split(",")]
        print(json.dumps(measure(args)))
    else:
        parser.error("give --gguf, --convert or --quantize")


if __name__ == "__main__":
    main()
