"""Tensor- and pipeline-parallel plans on paper: what each rank holds and sends per generated token.

A plan is computed from a model built on the meta device (so exact parameter counts, no memory)
and the family's ``tp_plan`` (module-name pattern -> ``"colwise"``, ``"rowwise"``,
``"vocab_embedding"`` or ``"vocab_head"``; anything else is replicated). The same plan drives the
sharding in :mod:`tongues.distributed.tensor_parallel`, so the bytes it predicts are the bytes the
sharded model moves (checked by ``benchmarks/tp_bytes.py``).

Per generated token and row, Megatron-style tensor parallelism all-reduces the ``hidden``-wide
activation after every row-split layer (two per block) and after the vocabulary-split embedding,
and all-gathers the vocabulary-split logits. A ring all-reduce of ``S`` bytes sends
``2 (N - 1) / N * S`` bytes from each rank; an all-gather sends ``(N - 1) / N * S``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .tensor_parallel import collect_plan, plan_shards, style_of


@dataclass
class RankPlan:
    tp: int
    pp: int
    layers_per_stage: int
    weight_bytes_per_rank: int
    replicated_bytes_per_rank: int
    kv_bytes_per_token_per_rank: int
    allreduces_per_token: int  # in the whole model, one after another
    allreduce_payload_bytes: int  # one all-reduce's tensor
    allreduce_sent_bytes_per_token: float  # by one rank (its stage's all-reduces), ring algorithm
    allgather_sent_bytes_per_token: float  # logits, by one rank of the last stage
    pipeline_sends_per_token: int
    pipeline_send_bytes: int

    def as_dict(self) -> dict:
        return asdict(self)


def plan(model, tp: int, pp: int = 1, dtype_bytes: int = 2, rows: int = 1) -> RankPlan:
    """The per-rank figures of sharding ``model`` (built on the meta device) ``tp`` ways within a
    stage and over ``pp`` pipeline stages, with weights and cache of ``dtype_bytes`` per element."""
    config = model.config
    layers = config.num_hidden_layers
    if layers % pp:
        raise ValueError(f"{layers} layers do not split into {pp} pipeline stages evenly")
    shards = plan_shards(model, tp, 0)  # raises when heads or vocabulary do not divide
    tp_plan = collect_plan(model)
    sharded = replicated = 0
    allreduces, gathers = 0, 0
    for name, param in model.named_parameters():
        module = name.rsplit(".", 1)[0]
        style = style_of(module, tp_plan)
        if name in shards or (style is not None and style[0] == "rowwise"):
            sharded += param.numel() * dtype_bytes if name in shards else 0
            replicated += 0 if name in shards else param.numel() * dtype_bytes  # a row-split layer's bias
        else:
            replicated += param.numel() * dtype_bytes
        if name.endswith(".weight") and style is not None:
            allreduces += style[0] in ("rowwise", "vocab_embedding")
            gathers += style[0] == "vocab_head"
    if gathers == 0 and any(style_of(n.rsplit(".", 1)[0], tp_plan) == ("vocab_head", 1)
                            for n, _ in model.named_parameters(remove_duplicate=False)):
        gathers = 1  # a head tied to the embedding shares its parameter, so it is not listed twice
    # Pipeline stages split the blocks; embeddings and head sit on the end stages (counted with one).
    weight = sharded // (tp * pp) + replicated // pp
    hidden = config.hidden_size
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    local_kv_heads = max(1, kv_heads // tp)  # fewer KV heads than ranks: each rank keeps a replica of one
    kv = 2 * (layers // pp) * local_kv_heads * head_dim * dtype_bytes
    payload = rows * hidden * dtype_bytes
    ring = 2 * (tp - 1) / tp
    gather = (tp - 1) / tp * rows * config.vocab_size * dtype_bytes * gathers
    return RankPlan(tp=tp, pp=pp, layers_per_stage=layers // pp, weight_bytes_per_rank=int(weight),
                    replicated_bytes_per_rank=int(replicated // pp), kv_bytes_per_token_per_rank=kv,
                    allreduces_per_token=allreduces, allreduce_payload_bytes=payload,
                    allreduce_sent_bytes_per_token=ring * payload * allreduces / pp,
                    allgather_sent_bytes_per_token=gather, pipeline_sends_per_token=pp - 1,
                    pipeline_send_bytes=payload)


def expected_ms_per_token(p: RankPlan, memory_gbps: float, link_gbps: float, collective_latency_us: float,
                          inter_node_gbps: float | None = None, inter_node_latency_us: float = 0.0) -> dict:
    """Batch-1 latency model: each stage reads its weights once (memory bound), pays every collective's
    latency plus its bytes over the link, and stages run one after another (a pipeline does not help
    a single sequence)."""
    read = p.pp * p.weight_bytes_per_rank / (memory_gbps * 1e9) * 1e3  # the stages run one after another
    collectives = p.allreduces_per_token + (1 if p.allgather_sent_bytes_per_token else 0)
    sent = p.pp * p.allreduce_sent_bytes_per_token + p.allgather_sent_bytes_per_token
    comm = collectives * collective_latency_us * 1e-3 + sent / (link_gbps * 1e9) * 1e3
    hop = 0.0
    if p.pp > 1:
        bandwidth = (inter_node_gbps or link_gbps) * 1e9
        hop = p.pipeline_sends_per_token * (inter_node_latency_us * 1e-3 + p.pipeline_send_bytes / bandwidth * 1e3)
    return {"weights_ms": read, "collectives_ms": comm, "pipeline_ms": hop, "total_ms": read + comm + hop}
