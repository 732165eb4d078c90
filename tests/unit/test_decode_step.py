"""The lean decode step's pieces against the plain computations they replace.

- ``decode_attend`` (one query per row over the cache, grouped heads without repeating keys, bf16
  widened to fp32) against explicit ``softmax(q kᵀ · scale + bias) v`` with repeated keys;
- ``gelu_tanh`` (torch's fused tanh GELU) against BLOOM's nine-op formula;
- ``apply_rotary`` (pairs, queries and keys rotated together) against the doubled-cos/sin formula.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tongues.layers.activations import gelu_tanh, gelu_tanh_unfused
from tongues.layers.alibi import alibi_bias
from tongues.layers.attention import attend, decode_attend, repeat_kv
from tongues.layers.masks import causal_bias
from tongues.layers.rotary import apply_rotary, rotary_cos_sin


def plain_attention(q, k, v, bias, scale):
    """fp32 reference: keys repeated per group, explicit scores and softmax."""
    groups = q.shape[1] // k.shape[1]
    q, k, v = q.double(), repeat_kv(k, groups).double(), repeat_kv(v, groups).double()
    scores = q @ k.transpose(-1, -2) * scale
    if bias is not None:
        scores = scores + bias.double()
    return (scores.softmax(-1) @ v).float()


def padded_bias(lengths, width, heads, dtype, alibi):
    """A decode step's bias over a SlotView: each row sees its own first ``length`` columns."""
    mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long()  # (B, width)
    bias = causal_bias(mask, len(lengths), 1, width - 1, dtype, torch.device("cpu"))
    if alibi:
        bias = alibi_bias(mask, heads, dtype) + bias
    return bias


@pytest.mark.parametrize("heads,kv_heads,alibi", [(4, 4, True), (4, 4, False), (6, 2, False), (8, 1, True), (3, 3, False)])
def test_decode_attend_equals_plain_fp32(heads, kv_heads, alibi):
    torch.manual_seed(0)
    B, D, width = 3, 10, 9
    q = torch.randn(B, heads, 1, D)
    k, v = torch.randn(B, kv_heads, width, D), torch.randn(B, kv_heads, width, D)
    bias = padded_bias([9, 4, 1], width, heads, torch.float32, alibi)  # mixed lengths, one row with one key
    got = decode_attend(q, k, v, bias, D**-0.5)
    assert got.shape == (B, heads, 1, D) and got.dtype == torch.float32
    torch.testing.assert_close(got, plain_attention(q, k, v, bias, D**-0.5), atol=1e-6, rtol=1e-6)
    # attend routes a single query through it; no bias at all works too
    torch.testing.assert_close(attend(q, k, v, bias=bias)[0], got, atol=0, rtol=0)
    torch.testing.assert_close(decode_attend(q, k, v, None, 0.3), plain_attention(q, k, v, None, 0.3),
                               atol=1e-6, rtol=1e-6)


def test_decode_attend_hides_unused_columns():
    """A row's columns past its length (stale keys of a reused slot) change nothing."""
    torch.manual_seed(1)
    q = torch.randn(2, 4, 1, 8)
    k, v = torch.randn(2, 2, 6, 8), torch.randn(2, 2, 6, 8)
    bias = padded_bias([6, 3], 6, 4, torch.float32, alibi=False)
    k2, v2 = k.clone(), v.clone()
    k2[1, :, 3:], v2[1, :, 3:] = 1e4, -1e4
    a, b = decode_attend(q, k, v, bias, 0.35), decode_attend(q, k2, v2, bias, 0.35)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    torch.testing.assert_close(a[1:], decode_attend(q[1:], k[1:, :, :3], v[1:, :, :3], None, 0.35), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("heads,kv_heads", [(16, 16), (16, 2)])
def test_decode_attend_bf16_within_bound(heads, kv_heads):
    """bf16 inputs: widened to fp32, one rounding of the output -> within bf16's half ulp of the exact result."""
    torch.manual_seed(2)
    D, width = 64, 33
    q = torch.randn(2, heads, 1, D).bfloat16()
    k, v = torch.randn(2, kv_heads, width, D).bfloat16(), torch.randn(2, kv_heads, width, D).bfloat16()
    bias = padded_bias([33, 20], width, heads, torch.bfloat16, alibi=True)
    got = decode_attend(q, k, v, bias, D**-0.5)
    assert got.dtype == torch.bfloat16
    exact = plain_attention(q, k, v, bias, D**-0.5)
    # bound: 2^-8 relative (bf16 rounding of the output) plus fp32 accumulation noise
    torch.testing.assert_close(got.float(), exact, atol=1e-3, rtol=2**-8)


def test_decode_attend_not_used_for_probs_head_mask_or_several_queries():
    torch.manual_seed(3)
    q, k, v = torch.randn(1, 2, 1, 4), torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4)
    out, probs = attend(q, k, v, output_attentions=True)
    assert probs.shape == (1, 2, 1, 5)
    out2, _ = attend(q, k, v, head_mask=torch.tensor([1.0, 0.0]))
    assert torch.all(out2[:, 1] == 0)
    q3 = torch.randn(1, 2, 3, 4)
    torch.testing.assert_close(attend(q3, k[:, :, :3], v[:, :, :3])[0],
                               F.scaled_dot_product_attention(q3, k[:, :, :3], v[:, :, :3]), atol=1e-6, rtol=1e-6)


def test_gelu_tanh_equals_bloom_formula():
    x = torch.linspace(-12, 12, 20001)
    torch.testing.assert_close(gelu_tanh(x), gelu_tanh_unfused(x), atol=1e-6, rtol=1e-6)
    xb = x.bfloat16()
    # the fused op rounds once; the formula after each of its nine ops: within two bf16 ulps
    torch.testing.assert_close(gelu_tanh(xb).float(), gelu_tanh_unfused(xb).float(), atol=2e-2, rtol=2**-7)
    torch.testing.assert_close(gelu_tanh(xb).float(), gelu_tanh_unfused(x), atol=1e-2, rtol=2**-8)


def rotate_plain(x, cos, sin, interleaved):
    """The doubled-cos/sin formula: x * cos + rotate(x) * sin on the first rotary_dim channels."""
    rd = 2 * cos.shape[-1]
    if interleaved:
        cos2, sin2 = cos.repeat_interleave(2, -1)[:, None], sin.repeat_interleave(2, -1)[:, None]
        rotated = torch.stack((-x[..., 1:rd:2], x[..., 0:rd:2]), -1).flatten(-2)
    else:
        cos2, sin2 = torch.cat((cos, cos), -1)[:, None], torch.cat((sin, sin), -1)[:, None]
        a, b = x[..., : rd // 2], x[..., rd // 2 : rd]
        rotated = torch.cat((-b, a), -1)
    return torch.cat((x[..., :rd] * cos2 + rotated * sin2, x[..., rd:]), -1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("interleaved", [True, False])
@pytest.mark.parametrize("B,H,H_kv,T,D,rd", [(2, 4, 2, 5, 16, 8), (1, 16, 2, 1, 64, 32), (3, 3, 3, 7, 10, 10)])
def test_apply_rotary_equals_plain_formula(dtype, interleaved, B, H, H_kv, T, D, rd):
    torch.manual_seed(4)
    q, k = torch.randn(B, H, T, D, dtype=dtype), torch.randn(B, H_kv, T, D, dtype=dtype)
    cos, sin = rotary_cos_sin(torch.randint(0, 300, (B, T)), rd, 10000.0, dtype)
    got_q, got_k = apply_rotary(q, k, cos, sin, interleaved=interleaved)
    # the same roundings, op for op: bit-identical in every dtype
    assert torch.equal(got_q, rotate_plain(q, cos, sin, interleaved))
    assert torch.equal(got_k, rotate_plain(k, cos, sin, interleaved))


def test_apply_rotary_keys_of_another_length():
    """Keys that cannot be stacked with the queries (other length) are rotated on their own."""
    torch.manual_seed(5)
    q, k = torch.randn(1, 2, 1, 8), torch.randn(1, 2, 1, 6)
    cos, sin = rotary_cos_sin(torch.tensor([[3]]), 6, 10000.0)
    got_q, got_k = apply_rotary(q, k, cos, sin, interleaved=True)
    assert torch.equal(got_q, rotate_plain(q, cos, sin, True)) and torch.equal(got_k, rotate_plain(k, cos, sin, True))


# -- the widened cache ----------------------------------------------------------------------------

def tiny_models():
    from tongues import BloomConfig, BloomForCausalLM, GlmConfig, GlmForCausalLM, XGLMConfig, XGLMForCausalLM

    return {
        "bloom": BloomForCausalLM(BloomConfig(vocab_size=100, hidden_size=32, n_layer=2, n_head=4)),
        "xglm": XGLMForCausalLM(XGLMConfig(vocab_size=100, d_model=32, num_layers=2, attention_heads=4, ffn_dim=64)),
        "glm": GlmForCausalLM(GlmConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                        num_key_value_heads=2, intermediate_size=64, head_dim=8, pad_token_id=0,
                                        eos_token_id=1)),
    }


def mixed_length_steps(model, cache, prompts) -> list:
    """Each prompt prefilled alone into its row of ``cache``, then three decode steps over all rows at their
    own lengths: every step's logits."""
    from tongues.slot_cache import forward_step

    steps = []
    with torch.no_grad():
        for row, prompt in enumerate(prompts):
            steps.append(forward_step(model, prompt, cache.view(row, row + 1)))
        ids = torch.tensor([[int(s[0].argmax())] for s in steps])
        for _ in range(3):
            out = forward_step(model, ids, cache.view(0, len(prompts)))
            steps.append(out)
            ids = out.argmax(-1, keepdim=True)
    return steps


@pytest.mark.parametrize("family", ["bloom", "xglm", "glm"])
def test_bf16_slot_cache_widened_or_not_gives_the_same_logits(family, monkeypatch):
    """Keys stored widened to fp32 are the same numbers: prefill and mixed-length decode steps are bit-identical.
    (The PyTorch decode path; with tongues.native loaded, bf16 keys are not widened: tests/unit/test_native.py.)"""
    from tongues import native
    from tongues.slot_cache import SlotCache

    monkeypatch.setattr(native, "loaded", lambda: None)
    torch.manual_seed(6)
    model = tiny_models()[family].to(torch.bfloat16).eval()
    prompts = [torch.randint(3, 100, (1, n)) for n in (5, 2, 7)]
    logits = {}
    for widen in (True, False):
        cache = SlotCache(slots=3, capacity=16, widen=widen)
        steps = mixed_length_steps(model, cache, prompts)
        assert cache.keys[0].dtype == (torch.float32 if widen else torch.bfloat16)
        legacy = cache.view(0, 3).to_legacy_cache()
        assert legacy[0][0].dtype == torch.bfloat16  # the legacy form comes back in the model's dtype
        logits[widen] = steps
    for a, b in zip(logits[True], logits[False]):
        assert torch.equal(a, b)
