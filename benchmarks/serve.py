"""Serving benchmark: `tongues serve` (and `transformers serve`) under 1, 4, 16 and 32 streaming clients.

    python benchmarks/serve.py [--backends tongues,tongues-torch,transformers,transformers-cb] [--dtypes bf16,int8]
                               [--clients 1,4,16,32] [--requests 2] [--max-tokens 16] [--threads 2] [--chunk-size 64]

One checkpoint folder serves every backend (built once, reused: ``--checkpoint``): random weights of
the BLOOM-560m shape (24 layers, hidden 1024, vocabulary 250880; torch seed 0) saved in bf16, with a
word-level ``tokenizer.json`` in which token i is the word ``w{i}`` (random weights sample the whole
vocabulary, so each token is one word of text and one SSE event; the model's compute is
BLOOM-560m's, the text is not). Each backend runs as its own CLI in a subprocess on that folder:
``tongues serve --model DIR`` (``--quantization int8`` for int8: fp32 activations, int8 weight-only
linears) and ``transformers serve DIR --device cpu`` (bf16 only: its 8-bit path is bitsandbytes,
CUDA only). The clients are one asyncio process (aiohttp; streaming, a light SSE parser): each
client sends ``--requests`` completions one after another, a random 32-word prompt (as text, since
`transformers serve` takes only strings), ``--max-tokens`` new tokens, temperature 0 (tongues also
gets ``ignore_eos``; `transformers serve` refuses that field, and a random model's end id comes once
in ~250k tokens). Per level: aggregate generated tok/s over the level's wall time (tokens from
each stream's ``usage``), time to first token (p50/p99), inter-token latency (p50/p99: gaps between
text events), and the CPU seconds the server and the clients used per wall second (on 2 cores the
clients compete with the server).

``--soak SECONDS`` instead runs `tongues serve` (the CLI, on the embedded demonstration model) under
32 clients sending mixed requests (streamed and not, n up to 3, random lengths), a quarter of them
dropping the connection after the first event; it prints the status codes, the requests that did
not end properly, and the server's RSS after a warm-up and at the end.

Not a test: pytest does not collect this folder. Results go to docs/serving.md by hand, with the
machine line this prints.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOOM_560M = dict(hidden_size=1024, n_layer=24, n_head=16, vocab_size=250880, bos_token_id=1, eos_token_id=2,
                  pad_token_id=3)
SPECIAL = ("<unk>", "<s>", "</s>", "<pad>")  # ids 0..3, as BLOOM's


def make_checkpoint(path: str) -> None:
    """Random BLOOM-560m-shaped weights (bf16) and a word-level tokenizer (token i = "w{i}") in ``path``."""
    sys.path.insert(0, ROOT)
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers

    from tongues import BloomConfig, BloomForCausalLM

    torch.manual_seed(0)
    model = BloomForCausalLM(BloomConfig(**BLOOM_560M)).to(torch.bfloat16)
    partial = path + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    vocab = {token: i for i, token in enumerate(SPECIAL)}
    vocab.update((f"w{i}", i) for i in range(len(SPECIAL), BLOOM_560M["vocab_size"]))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(os.path.join(partial, "tokenizer.json"))
    with open(os.path.join(partial, "tokenizer_config.json"), "w") as f:
        json.dump(dict(tokenizer_class="PreTrainedTokenizerFast", unk_token="<unk>", bos_token="<s>",
                       eos_token="</s>", pad_token="<pad>", model_max_length=2048), f)
    os.replace(partial, path)


def wait_ready(url: str, server: subprocess.Popen, what: str) -> None:
    """Poll ``/health`` until the server answers 200; stop the benchmark if the server process exits first."""
    import requests

    while True:
        try:
            if requests.get(url + "/health", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"{what} server exited with {server.returncode}")
        time.sleep(0.5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_command(backend: str, dtype: str, checkpoint: str, port: int, args) -> list[str]:
    if backend.startswith("tongues"):
        command = [sys.executable, "-m", "tongues", "serve", "--model", checkpoint, "--dtype", "bfloat16",
                   "--port", str(port), "--threads", str(args.threads), "--max-running", str(args.max_running),
                   "--max-queue", "256", "--chunk-size", str(args.chunk_size), "--served-model-name", "bench"]
        command += ["--kernels", "none"] if backend == "tongues-torch" else []
        command += args.server_args.split()
        return command + (["--quantization", "int8"] if dtype == "int8" else [])
    command = [shutil.which("transformers") or os.path.join(os.path.dirname(sys.executable), "transformers"),
               "serve", checkpoint, "--device", "cpu", "--dtype", "bfloat16", "--port", str(port)]
    return command + (["--continuous-batching"] if backend == "transformers-cb" else [])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its children that were waited for."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def stream_one(session, url: str, body: dict) -> tuple[float, list[float], int]:
    """(time to first token, inter-token gaps, generated tokens) of one streaming completion."""
    start = time.perf_counter()
    times: list[float] = []
    tokens = None
    async with session.post(url + "/v1/completions", json=body) as response:
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {(await response.text())[:200]}")
        async for line in response.content:
            if not line.startswith(b"data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0].get("text"):
                times.append(time.perf_counter())
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    if not times:
        raise RuntimeError("the stream had no text")
    gaps = [b - a for a, b in zip(times, times[1:])]
    return times[0] - start, gaps, tokens if tokens is not None else len(times)


async def level(url: str, backend: str, model: str, clients: int, requests_each: int, max_tokens: int,
                seed: int) -> dict:
    import aiohttp

    rng = random.Random(seed)
    prompts = [" ".join(f"w{rng.randrange(5, 250000)}" for _ in range(32)) for _ in range(clients * requests_each)]
    ttft, itl, tokens, errors = [], [], [0], []

    async def client(session, k: int) -> None:
        for r in range(requests_each):
            body = {"model": model, "prompt": prompts[k * requests_each + r], "max_tokens": max_tokens,
                    "temperature": 0, "stream": True}
            if backend.startswith("tongues"):
                body.update(ignore_eos=True, stream_options={"include_usage": True})
            try:
                first, gaps, count = await stream_one(session, url, body)
            except Exception as err:  # noqa: BLE001 - reported, not hidden
                errors.append(repr(err))
                continue
            ttft.append(first)
            itl.extend(gaps)
            tokens[0] += count

    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(session, k) for k in range(clients)))
        wall = time.perf_counter() - start
    return dict(clients=clients, tokens=tokens[0], wall_s=wall, tok_s=tokens[0] / wall,
                ttft_p50=percentile(ttft, 50), ttft_p99=percentile(ttft, 99), itl_p50=percentile(itl, 50),
                itl_p99=percentile(itl, 99), errors=len(errors), first_error=errors[0] if errors else None)


def served_name(backend: str, checkpoint: str) -> str:
    return "bench" if backend.startswith("tongues") else checkpoint  # transformers serve answers to its folder's path


def measure(url: str, backend: str, pid: int, clients: int, args) -> dict:
    server_cpu, own = cpu_seconds(pid), resource.getrusage(resource.RUSAGE_SELF)
    row = asyncio.run(level(url, backend, served_name(backend, args.checkpoint), clients, args.requests,
                            args.max_tokens, seed=clients))
    after = resource.getrusage(resource.RUSAGE_SELF)
    row["server_cpu"] = (cpu_seconds(pid) - server_cpu) / row["wall_s"]
    row["client_cpu"] = (after.ru_utime + after.ru_stime - own.ru_utime - own.ru_stime) / row["wall_s"]
    return row


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def soak(seconds: float, clients: int, threads: int) -> None:
    """`tongues serve` under mixed traffic with random disconnects: status codes, lost requests, RSS."""
    import random

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    server = subprocess.Popen([sys.executable, "-m", "tongues", "serve", "--port", str(port), "--max-running", "16",
                               "--max-queue", "256", "--threads", str(threads)], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    statuses: dict[int, int] = {}
    lost: list[str] = []
    lock = threading.Lock()
    try:
        wait_ready(url, server, "the soak")

        def traffic(seed: int, until: float) -> None:
            rng = random.Random(seed)
            while time.monotonic() < until:
                body = {"prompt": rng.choice(["Tous les êtres humains", "Article 1", "Everyone has", "Kila mtu"]),
                        "max_tokens": rng.randint(1, 64), "temperature": rng.choice([0, 0.8]),
                        "n": rng.choice([1, 1, 2, 3]), "seed": rng.randrange(1 << 30)}
                stream, drop = rng.random() < 0.5, rng.random() < 0.25
                try:
                    with requests.post(url + "/v1/completions", json={**body, "stream": stream}, stream=stream,
                                       timeout=120) as r:
                        ok = True
                        if r.status_code == 200 and stream:
                            lines = r.iter_lines()
                            if drop:
                                next(lines)
                            else:
                                ok = [line for line in lines if line][-1] == b"data: [DONE]"
                        elif r.status_code == 200:
                            ok = all(c["finish_reason"] for c in r.json()["choices"])
                    with lock:
                        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                        if not ok:
                            lost.append(json.dumps(body))
                except Exception as err:  # noqa: BLE001 - a lost request, reported
                    with lock:
                        lost.append(repr(err))

        def run_for(duration: float) -> None:
            until = time.monotonic() + duration
            pool = [threading.Thread(target=traffic, args=(k + int(duration), until)) for k in range(clients)]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()

        run_for(min(20.0, seconds / 4))  # warm-up
        warm = rss_mib(server.pid)
        run_for(seconds)
        end = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    print(f"soak: {seconds:.0f} s, {clients} clients, statuses {dict(sorted(statuses.items()))}, "
          f"lost {len(lost)}, server RSS after warm-up {warm:.0f} MiB, at the end {end:.0f} MiB "
          f"({(end / warm - 1) * 100:+.1f} %)")
    for line in lost[:5]:
        print("  lost:", line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tongues,tongues-torch,transformers,transformers-cb",
                        help="tongues, tongues-torch (tongues serve --kernels none: torch's F.linear), transformers "
                             "(transformers serve), transformers-cb (transformers serve --continuous-batching)")
    parser.add_argument("--dtypes", default="bf16,int8", help="bf16, int8 (int8: tongues only)")
    parser.add_argument("--clients", default="1,4,16,32")
    parser.add_argument("--requests", type=int, default=2, help="requests per client, one after another")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--max-running", type=int, default=32)
    parser.add_argument("--chunk-size", type=int, default=64, help="as tongues serve's default (64)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--checkpoint", default=os.path.join("/tmp", "tongues-bench-bloom-560m-random"),
                        help="the benchmark checkpoint folder (made once if missing)")
    parser.add_argument("--tongues-path", default=ROOT,
                        help="the tongues tree the tongues server imports (another checkout, for A/B runs)")
    parser.add_argument("--server-args", default="",
                        help="more flags for tongues serve, as one string (e.g. \"--arrival-window-ms 0\")")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--soak", type=float, default=None, metavar="SECONDS",
                        help="run the soak test (32 clients, random disconnects) instead of the table")
    args = parser.parse_args()
    if args.soak is not None:
        return soak(args.soak, 32, args.threads)

    import requests

    if not os.path.isdir(args.checkpoint):
        print(f"making the benchmark checkpoint in {args.checkpoint} ...", flush=True)
        make_checkpoint(args.checkpoint)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"machine: {os.uname().machine}, {os.cpu_count()} cpus, threads={args.threads}, commit {commit}, "
          f"load average {os.getloadavg()[0]:.1f}; BLOOM-560m shape, random weights, prompt 32, max_tokens "
          f"{args.max_tokens}, {args.requests} requests per client, max_running {args.max_running}, chunk "
          f"{args.chunk_size}; tongues from {os.path.abspath(args.tongues_path)}")
    tongues_path = os.path.abspath(args.tongues_path)
    env = {**os.environ, "PYTHONPATH": tongues_path + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": str(args.threads)}
    results = []
    for backend in args.backends.split(","):
        for dtype in args.dtypes.split(","):
            if backend == "tongues-torch" and dtype == "int8":
                print(f"\n{backend} {dtype}: not run (quantised layers keep their kernels: the same as tongues int8)")
                continue
            if not backend.startswith("tongues") and dtype != "bf16":
                print(f"\n{backend} {dtype}: not run (transformers serve's 8-bit path is bitsandbytes, CUDA only)")
                continue
            port = free_port()
            server = subprocess.Popen(server_command(backend, dtype, args.checkpoint, port, args), env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            try:
                wait_ready(url, server, f"the {backend} {dtype}")
                # A warm-up request (transformers serve also loads the model on the first one).
                asyncio.run(level(url, backend, served_name(backend, args.checkpoint), 1, 1, 4, seed=0))
                print(f"\n{backend} {dtype}: clients  tok/s  (x one client)  TTFT p50/p99 ms  ITL p50/p99 ms  "
                      f"errors  CPU/s server+clients  load", flush=True)
                single = None
                for clients in [int(c) for c in args.clients.split(",")]:
                    row = measure(url, backend, server.pid, clients, args)
                    row.update(backend=backend, dtype=dtype, load=os.getloadavg()[0])
                    single = single or row["tok_s"] or float("nan")
                    results.append(row)
                    print(f"{backend:>12} {dtype:>5} {clients:>4} {row['tok_s']:7.1f} {row['tok_s'] / single:6.1f}x "
                          f"{row['ttft_p50'] * 1e3:7.0f}/{row['ttft_p99'] * 1e3:.0f} "
                          f"{row['itl_p50'] * 1e3:6.0f}/{row['itl_p99'] * 1e3:.0f} {row['errors']:>4} "
                          f"{row['server_cpu']:5.2f}+{row['client_cpu']:.2f} {row['load']:5.1f}", flush=True)
                    if row["first_error"]:
                        print("    first error:", row["first_error"])
            finally:
                server.terminate()
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(commit=commit, threads=args.threads, results=results), f, indent=1)


if __name__ == "__main__":
    main()
