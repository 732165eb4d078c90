"""Serving benchmark: `tongues serve`'s engine under 1, 4, 16 and 32 concurrent streaming clients.

    python benchmarks/serve.py [--dtypes bf16,int8] [--clients 1,4,16,32] [--requests 2] [--max-tokens 32]

The server runs in a subprocess (the engine and uvicorn, as `tongues serve` wires them) on a random
BLOOM-560m-shaped model (24 layers, hidden 1024, vocabulary 250880; fixed seed), in the given dtype
("int8": fp32 activations, int8 weight-only linears). Random weights sample tokens from the whole
vocabulary, so the server uses a one-letter-per-token tokenizer (every token is one character of
text, one SSE event): the model's compute is BLOOM-560m's, the text is not. Each client sends
``--requests`` streaming completions one after another: a random 32-token prompt, ``--max-tokens``
new tokens, EOS ignored, temperature 0. Per level: aggregate generated tok/s over the level's wall
time, time to first token (p50/p99) and inter-token latency (p50/p99), from the client side.

``--soak SECONDS`` instead runs `tongues serve` (the CLI, on the embedded demonstration model) under
32 clients sending mixed requests (streamed and not, n up to 3, random lengths), a quarter of them
dropping the connection after the first event; it prints the status codes, the requests that did
not end properly, and the server's RSS after a warm-up and at the end.

Not a test: pytest does not collect this folder. Results go to docs/serving.md by hand, with the
machine line this prints.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOOM_560M = dict(hidden_size=1024, n_layer=24, n_head=16, vocab_size=250880, bos_token_id=1, eos_token_id=2,
                  pad_token_id=3)


class LetterTokenizer:
    """Token i is the letter chr(97 + i % 26): a text for every id of a random model."""

    chat_template = None
    eos_token = bos_token = pad_token = unk_token = None

    def decode(self, ids, skip_special_tokens: bool = True, **kwargs) -> str:
        return "".join(chr(97 + i % 26) for i in ids)

    def encode(self, text: str, add_special_tokens: bool = True):
        return [ord(c) % 26 + 26 * 100 for c in text]


def serve(args) -> None:
    """The server process: build the model, start the engine, run uvicorn on --port."""
    sys.path.insert(0, ROOT)
    import torch
    import uvicorn

    from tongues import BloomConfig, BloomForCausalLM
    from tongues.serving import Engine
    from tongues.serving.api_server import attach, create_app

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = BloomForCausalLM(BloomConfig(**BLOOM_560M)).eval()
    if args.dtype == "bf16":  # "fp32" (or anything else) keeps the fp32 weights
        model = model.to(torch.bfloat16)
    elif args.dtype == "int8":
        from tongues.quantization import quantize_model

        quantize_model(model, "int8")
    app = create_app("bloom-560m-random")
    attach(app, Engine(model, LetterTokenizer(), max_running=args.max_running, max_queue=256,
                       chunk_size=args.chunk_size).start())
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


def stream_one(url: str, prompt: list[int], max_tokens: int) -> tuple[float, list[float], int]:
    """(time to first token, inter-token gaps, tokens) of one streaming request."""
    import requests

    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True, "stream": True}
    start = time.perf_counter()
    times = []
    with requests.post(url + "/v1/completions", json=body, stream=True, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith(b"data: {"):
                chunk = json.loads(line[6:])
                if chunk["choices"] and chunk["choices"][0]["text"]:
                    times.extend([time.perf_counter()] * len(chunk["choices"][0]["text"]))
    gaps = [b - a for a, b in zip(times, times[1:])]
    return times[0] - start, gaps, len(times)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def level(url: str, clients: int, requests_each: int, max_tokens: int, seed: int) -> dict:
    import random

    rng = random.Random(seed)
    prompts = [[rng.randrange(5, 250000) for _ in range(32)] for _ in range(clients * requests_each)]
    ttft, itl, tokens, errors = [], [], [0], []
    lock = threading.Lock()

    def client(k: int) -> None:
        for r in range(requests_each):
            try:
                first, gaps, count = stream_one(url, prompts[k * requests_each + r], max_tokens)
            except Exception as err:  # noqa: BLE001 - reported, not hidden
                errors.append(repr(err))
                continue
            with lock:
                ttft.append(first)
                itl.extend(gaps)
                tokens[0] += count

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return dict(clients=clients, tokens=tokens[0], wall_s=wall, tok_s=tokens[0] / wall,
                ttft_p50=percentile(ttft, 50), ttft_p99=percentile(ttft, 99), itl_p50=percentile(itl, 50),
                itl_p99=percentile(itl, 99), errors=len(errors))


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
        while True:
            try:
                if requests.get(url + "/health", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)

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
    parser.add_argument("--dtypes", default="bf16,int8")
    parser.add_argument("--clients", default="1,4,16,32")
    parser.add_argument("--requests", type=int, default=2, help="requests per client, one after another")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--max-running", type=int, default=32)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--soak", type=float, default=None, metavar="SECONDS",
                        help="run the soak test (32 clients, random disconnects) instead of the table")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="bf16", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args)

    if args.soak is not None:
        return soak(args.soak, 32, args.threads)

    import requests

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"machine: {os.uname().machine}, {os.cpu_count()} cpus, threads={args.threads}, commit {commit}; "
          f"BLOOM-560m shape, random weights, prompt 32, max_tokens {args.max_tokens}, "
          f"{args.requests} requests per client, max_running {args.max_running}")
    results = []
    for dtype in args.dtypes.split(","):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", "--dtype", dtype,
                                   "--port", str(port), "--threads", str(args.threads), "--max-running",
                                   str(args.max_running), "--chunk-size", str(args.chunk_size)])
        url = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    if requests.get(url + "/health", timeout=5).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                if server.poll() is not None:
                    raise SystemExit(f"the {dtype} server exited with {server.returncode}")
                time.sleep(0.5)
            stream_one(url, list(range(100, 132)), 4)  # warm-up
            print(f"\n{dtype}: clients  tok/s  (x one client)  TTFT p50/p99 ms  ITL p50/p99 ms  errors")
            single = None
            for clients in [int(c) for c in args.clients.split(",")]:
                row = level(url, clients, args.requests, args.max_tokens, seed=clients)
                row["dtype"] = dtype
                single = single or row["tok_s"]
                results.append(row)
                print(f"{dtype:>6} {clients:>8} {row['tok_s']:7.1f} {row['tok_s'] / single:8.1f}x "
                      f"{row['ttft_p50'] * 1e3:8.0f}/{row['ttft_p99'] * 1e3:.0f} "
                      f"{row['itl_p50'] * 1e3:8.0f}/{row['itl_p99'] * 1e3:.0f} {row['errors']:>8}", flush=True)
        finally:
            server.terminate()
            server.wait(30)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(commit=commit, threads=args.threads, results=results), f, indent=1)


if __name__ == "__main__":
    main()
