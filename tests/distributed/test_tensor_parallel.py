"""Tensor parallelism on gloo with 2 processes: every family matches one process.

Each case is saved by one process, then loaded by ``torch.distributed.run --nproc-per-node 2`` with
``tp_plan="auto"`` (tests/distributed/tp_worker.py); fp32 logits must be within 1e-5 of the
unsharded model's, greedy tokens identical, and each rank's memory must hold about half the weights.
"""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

import tongues
from tongues.distributed.tensor_parallel import heads_of_rank, kv_heads_of_rank, plan_shards

WORKER = os.path.join(os.path.dirname(__file__), "tp_worker.py")


def tiny(cls_name: str, **config):
    config_class = getattr(tongues, cls_name.split("For")[0].replace("WithLMHeadModel", "") + "Config")
    torch.manual_seed(0)
    return getattr(tongues, cls_name)(config_class(**config)).eval()


CASES = {
    "BloomForCausalLM": dict(vocab_size=128, hidden_size=32, n_layer=2, n_head=4),
    # one key/value head for two ranks: each rank keeps a replica of it
    "GlmForCausalLM": dict(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=1, intermediate_size=64, head_dim=8, pad_token_id=0, eos_token_id=1),
    "XGLMForCausalLM": dict(vocab_size=128, d_model=32, num_layers=2, attention_heads=4, ffn_dim=64),
    "XLMWithLMHeadModel": dict(vocab_size=128, emb_dim=32, n_layers=2, n_heads=4),
    "BloomForSequenceClassification": dict(vocab_size=128, hidden_size=32, n_layer=2, n_head=4, num_labels=3,
                                           pad_token_id=0),
}
# Quantised: each rank's slice of a row-split layer (256 / 2, 1024 / 2 inputs) holds whole int4 groups of 128.
QUANTIZED_CASE = dict(vocab_size=256, hidden_size=256, n_layer=2, n_head=4)
# Big enough that half the weights is far from all of them: 6 blocks of 512 wide, a 4096-token vocabulary.
MEMORY_CASE = ("BloomForCausalLM", dict(vocab_size=4096, hidden_size=512, n_layer=6, n_head=8))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_tp(cases: list[dict], tmp_path, nproc: int = 2) -> None:
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr",
           "127.0.0.1", "--master-port", str(free_port()), WORKER, str(spec)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tp")
    ids = torch.randint(5, 128, (2, 7), generator=torch.Generator().manual_seed(1))
    cases, expected = [], {}
    for name, config in CASES.items():
        model = tiny(name, **config)
        path = tmp / name
        model.save_pretrained(path)
        with torch.no_grad():
            logits = model(ids).logits
        tokens = model.generate(ids, max_new_tokens=5, do_sample=False) if "CausalLM" in name else None
        expected[name] = (logits, tokens)
        cases.append({"class": name, "checkpoint": str(path), "ids": ids.tolist(),
                      "max_new_tokens": 5 if tokens is not None else 0})
    quantized = tiny("BloomForCausalLM", **QUANTIZED_CASE)
    quantized.save_pretrained(tmp / "quantized")
    for method in ("int8", "int4"):
        one = tongues.BloomForCausalLM.from_pretrained(tmp / "quantized", quantization=method)
        with torch.no_grad():
            expected[method] = (one(ids).logits, one.generate(ids, max_new_tokens=5, do_sample=False))
        if method == "int8":
            layer = one.transformer.h[0].mlp.dense_4h_to_h
            expected["int8-rowwise"] = (layer.qweight, layer.scale)
        cases.append({"class": "BloomForCausalLM", "checkpoint": str(tmp / "quantized"), "ids": ids.tolist(),
                      "max_new_tokens": 5, "quantization": method})
    name, config = MEMORY_CASE
    big = tiny(name, **config)
    big.save_pretrained(tmp / "memory")
    weights = sum(p.numel() * p.element_size() for p in big.parameters())
    largest = max(p.numel() * p.element_size() for p in big.parameters())
    cases.append({"class": name, "checkpoint": str(tmp / "memory"), "ids": [[5, 6, 7]], "max_new_tokens": 0})
    run_tp(cases, tmp)
    got = {}
    for c in cases:
        key = c.get("quantization") or (c["class"] if c["checkpoint"] != str(tmp / "memory") else "memory")
        got[key] = [torch.load(f"{c['checkpoint']}/tp_result{c.get('quantization') or ''}.{r}.pt") for r in range(2)]
    return expected, got, (weights, largest)


@pytest.mark.parametrize("name", sorted(CASES))
def test_sharded_logits_and_greedy_tokens_equal_one_process(results, name):
    expected, got, _ = results
    logits, tokens = expected[name]
    for rank in got[name]:
        torch.testing.assert_close(rank["logits"], logits, rtol=1e-5, atol=1e-5)
        if tokens is not None:
            assert rank["tokens"].tolist() == tokens.tolist()


@pytest.mark.parametrize("name", ["BloomForCausalLM", "GlmForCausalLM", "XGLMForCausalLM"])
def test_bytes_communicated_equal_the_plan(results, name):
    from tongues.distributed.plan import plan

    _, got, _ = results
    with torch.device("meta"):
        model = tiny(name, **CASES[name])
    rows = 2 * 7  # the forward's batch x tokens
    expected = plan(model, tp=2, dtype_bytes=4, rows=rows)
    vocab = model.config.vocab_size
    for rank in got[name]:
        traffic = rank["traffic"]
        assert traffic["all_reduce_calls"] == expected.allreduces_per_token
        assert traffic["all_reduce_bytes"] == expected.allreduces_per_token * expected.allreduce_payload_bytes
        assert traffic["all_gather_calls"] == 1
        assert traffic["all_gather_bytes"] == rows * vocab // 2 * 4
        assert expected.allgather_sent_bytes_per_token == traffic["all_gather_bytes"]  # (N-1)/N of all = 1/2


@pytest.mark.parametrize("method", ["int8", "int4"])
def test_quantised_sharded_model_matches_the_one_process_quantised_model(results, method):
    expected, got, _ = results
    logits, tokens = expected[method]
    for rank in got[method]:
        # The same integers and scales (int8 row scales are the whole row's maximum over the ranks); the
        # packed kernels round each rank's partial sums to bf16 before the all-reduce adds them.
        torch.testing.assert_close(rank["logits"].float(), logits.float(), rtol=2e-2, atol=2e-2)
        assert rank["tokens"].tolist() == tokens.tolist()
    if method == "int8":
        qweight, scale = expected["int8-rowwise"]
        half = qweight.shape[1] // 2
        for r, rank in enumerate(got[method]):
            assert torch.equal(rank["rowwise"]["scale"], scale)
            assert torch.equal(rank["rowwise"]["qweight"], qweight[:, r * half:(r + 1) * half])


def test_each_rank_holds_about_half_the_weights(results):
    _, got, (weights, largest) = results
    for rank in got["memory"]:
        grown = rank["peak"] - rank["rss_before"]
        # 1/N of the weights plus one whole tensor (read once, then cut), with 10% for allocator slack
        assert grown <= weights / 2 + largest + 0.1 * weights, (grown, weights, largest)
        assert grown < weights, (grown, weights)


def test_heads_split_evenly_and_kv_heads_are_replicated_past_their_count():
    assert [heads_of_rank(8, 4, r) for r in range(4)] == [(0, 2), (2, 4), (4, 6), (6, 8)]
    # 8 query heads in groups of 4 over 2 key/value heads; 4 ranks: two ranks share each key/value head
    assert [kv_heads_of_rank(8, 2, 4, r) for r in range(4)] == [(0, 1), (0, 1), (1, 2), (1, 2)]
    assert [kv_heads_of_rank(8, 4, 2, r) for r in range(2)] == [(0, 2), (2, 4)]


def test_heads_or_vocabulary_that_do_not_divide_are_named():
    model = tiny("BloomForCausalLM", vocab_size=128, hidden_size=24, n_layer=1, n_head=3)
    with pytest.raises(ValueError, match="does not divide over 2"):
        plan_shards(model, world=2, rank=0)
    model = tiny("BloomForCausalLM", vocab_size=129, hidden_size=32, n_layer=1, n_head=4)
    with pytest.raises(ValueError, match="vocabulary"):
        plan_shards(model, world=2, rank=0)


def test_a_sharded_model_refuses_to_save(tmp_path):
    model = tiny("BloomForCausalLM", vocab_size=128, hidden_size=32, n_layer=1, n_head=4)
    model.tp_world_size = 2
    with pytest.raises(ValueError, match="tensor-parallel"):
        model.save_pretrained(tmp_path)
