"""Tensor/pipeline parallelism on paper for BLOOM-176B, and the bytes a sharded model really sends.

    python benchmarks/scaling.py            # the plans, then a measured run on 2 and 4 processes (gloo)

Part 1 builds BLOOM-176B on the meta device (no memory) and prints, for TP=8 and TP=8 x PP=2,
what each rank holds and sends per generated token (tongues.distributed.plan), and the expected
batch-1 latency on 8xA100-80GB (HBM 2.0 TB/s, NVLink 300 GB/s one way; ~15 us per small NCCL
all-reduce; 25 GB/s InfiniBand between two nodes).

Part 2 shards a small BLOOM the same way on 2 and 4 local processes, decodes one token after a
prompt, and compares the bytes handed to all_reduce / all_gather (``model.tp_traffic``) with the plan.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile

import torch

BLOOM_176B = dict(vocab_size=250880, hidden_size=14336, n_layer=70, n_head=112)
SMALL = dict(vocab_size=4096, hidden_size=256, n_layer=4, n_head=8)


def paper() -> None:
    from tongues import BloomConfig, BloomForCausalLM
    from tongues.distributed.plan import expected_ms_per_token, plan

    with torch.device("meta"):
        model = BloomForCausalLM(BloomConfig(**BLOOM_176B))
    params = sum(p.numel() for p in model.parameters())
    print(f"BLOOM-176B: {params / 1e9:.2f} B parameters, fp16 weights {params * 2 / 2**30:.0f} GiB")
    print("| plan | weights/rank GiB | KV/token/rank KiB | all-reduces/token | bytes sent/token/rank (all-reduce + gather) "
          "| weights ms | collectives ms | pipeline ms | total ms/token |")
    print("|---|---|---|---|---|---|---|---|---|")
    for tp, pp in ((8, 1), (8, 2)):
        p = plan(model, tp, pp, dtype_bytes=2)
        t = expected_ms_per_token(p, memory_gbps=2039, link_gbps=300, collective_latency_us=15,
                                  inter_node_gbps=25, inter_node_latency_us=10)
        sent = p.allreduce_sent_bytes_per_token + p.allgather_sent_bytes_per_token
        print(f"| TP={tp} x PP={pp} | {p.weight_bytes_per_rank / 2**30:.1f} | {p.kv_bytes_per_token_per_rank / 2**10:.0f} "
              f"| {p.allreduces_per_token} | {sent / 2**20:.2f} MiB | {t['weights_ms']:.1f} | {t['collectives_ms']:.2f} "
              f"| {t['pipeline_ms']:.3f} | {t['total_ms']:.1f} |")


def worker(checkpoint: str, out: str) -> None:
    import tongues
    from tongues.distributed.tensor_parallel import init_from_env

    init_from_env()
    model = tongues.BloomForCausalLM.from_pretrained(checkpoint, tp_plan="auto")
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        past = model(ids, use_cache=True).past_key_values
        model.tp_traffic.reset()
        model(torch.tensor([[9]]), past_key_values=past, use_cache=True)
    if torch.distributed.get_rank() == 0:
        json.dump(vars(model.tp_traffic), open(out, "w"))
    torch.distributed.destroy_process_group()


def measured() -> None:
    from tongues import BloomConfig, BloomForCausalLM
    from tongues.distributed.plan import plan

    tmp = tempfile.mkdtemp()
    torch.manual_seed(0)
    model = BloomForCausalLM(BloomConfig(**SMALL))
    model.save_pretrained(tmp)
    print(f"\nSmall BLOOM {SMALL}, fp32, one decoded token (batch 1) after a 4-token prompt:")
    print("| ranks | all-reduces measured / plan | all-reduce bytes measured / plan | all-gather bytes (rank's part) measured / plan |")
    print("|---|---|---|---|")
    for world in (2, 4):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        out = os.path.join(tmp, f"traffic{world}.json")
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(world),
                        "--master-addr", "127.0.0.1", "--master-port", str(port), __file__, "--worker", tmp, out],
                       check=True, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True)
        got = json.load(open(out))
        p = plan(model, world, dtype_bytes=4)
        gather = SMALL["vocab_size"] // world * 4
        print(f"| {world} | {got['all_reduce_calls']} / {p.allreduces_per_token} "
              f"| {got['all_reduce_bytes']} / {p.allreduces_per_token * p.allreduce_payload_bytes} "
              f"| {got['all_gather_bytes']} / {gather} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], sys.argv[3])
    else:
        paper()
        measured()
