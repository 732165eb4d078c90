"""``attend``: the attention kernel, against a hand-written softmax(q kᵀ s + b) v."""

from __future__ import annotations

import pytest
import torch

from tongues.layers.attention import attend, layer_head_masks, repeat_kv


def reference(q, k, v, bias=None, scale=None):
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.einsum("bhqd,bhkd->bhqk", q.double(), k.double()) * scale
    if bias is not None:
        scores = scores + bias.double()
    probs = scores.softmax(-1)
    return torch.einsum("bhqk,bhkd->bhqd", probs, v.double()).float(), probs.float()


def qkv(B=2, H=4, H_kv=4, Tq=3, Tk=5, D=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, Tq, D, generator=g), torch.randn(B, H_kv, Tk, D, generator=g),
            torch.randn(B, H_kv, Tk, D, generator=g))


@pytest.mark.parametrize("output_attentions", [False, True], ids=["sdpa", "eager"])
@pytest.mark.parametrize("scale", [None, 0.3])
def test_matches_the_formula_on_both_paths(output_attentions, scale):
    q, k, v = qkv()
    bias = torch.randn(2, 1, 3, 5)
    out, probs = attend(q, k, v, bias=bias, scale=scale, output_attentions=output_attentions)
    want, want_probs = reference(q, k, v, bias, scale)
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    if output_attentions:
        torch.testing.assert_close(probs, want_probs, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(probs.sum(-1), torch.ones(2, 4, 3))
    else:
        assert probs is None


def test_grouped_query_heads_share_their_key_value_head():
    q, k, v = qkv(H=6, H_kv=2)
    out, _ = attend(q, k, v, output_attentions=True)
    want, _ = reference(q, repeat_kv(k, 3), repeat_kv(v, 3))
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    assert torch.equal(repeat_kv(k, 3)[:, 0], repeat_kv(k, 3)[:, 2])  # heads 0..2 read kv head 0
    with pytest.raises(ValueError, match="multiple of key/value heads"):
        attend(*qkv(H=4, H_kv=3))


def test_masked_keys_get_no_weight_and_a_fully_masked_row_is_finite():
    q, k, v = qkv(B=1, H=2, H_kv=2, Tq=2, Tk=4)
    bias = torch.zeros(1, 1, 2, 4)
    bias[..., 0, 1:] = torch.finfo(torch.float32).min  # query 0 sees key 0 only
    bias[..., 1, :] = torch.finfo(torch.float32).min  # query 1 sees nothing
    out, probs = attend(q, k, v, bias=bias, output_attentions=True)
    assert torch.equal(probs[0, :, 0], torch.tensor([[1.0, 0, 0, 0]] * 2))
    torch.testing.assert_close(out[0, :, 0], v[0, :, 0])
    assert torch.isfinite(out).all() and torch.isfinite(probs).all()


def test_head_mask_multiplies_each_heads_probabilities():
    q, k, v = qkv()
    plain, probs = attend(q, k, v, output_attentions=True)
    masked, masked_probs = attend(q, k, v, head_mask=torch.tensor([1.0, 0.0, 0.5, 1.0]), output_attentions=True)
    assert torch.count_nonzero(masked_probs[:, 1]) == 0 and torch.count_nonzero(masked[:, 1]) == 0
    torch.testing.assert_close(masked_probs[:, 2], probs[:, 2] * 0.5)
    torch.testing.assert_close(masked[:, 0], plain[:, 0])


def test_half_precision_softmax_is_computed_in_float32():
    q, k, v = (t.to(torch.bfloat16) * 20 for t in qkv())
    out, probs = attend(q, k, v, output_attentions=True)
    assert out.dtype == probs.dtype == torch.bfloat16 and torch.isfinite(out).all()
    want, _ = reference(q.float(), k.float(), v.float())
    torch.testing.assert_close(out.float(), want, atol=0.5, rtol=0.05)


def test_dropout_only_in_training():
    q, k, v = qkv()
    a, _ = attend(q, k, v, dropout_p=0.5, training=False)
    b, _ = attend(q, k, v)
    torch.testing.assert_close(a, b)
    torch.manual_seed(0)
    c, _ = attend(q, k, v, dropout_p=0.5, training=True, output_attentions=True)
    assert not torch.allclose(c, b)


def test_layer_head_masks_split_and_check_shapes():
    assert layer_head_masks(None, 3, 4) == [None] * 3
    per_layer = layer_head_masks(torch.ones(4), 3, 4)
    assert len(per_layer) == 3 and all(m.shape == (4,) for m in per_layer)
    assert [m.tolist() for m in layer_head_masks(torch.eye(2), 2, 2)] == [[1.0, 0.0], [0.0, 1.0]]
    with pytest.raises(ValueError, match="one per head"):
        layer_head_masks(torch.ones(5), 3, 4)
    with pytest.raises(ValueError, match=r"\(num_layers, num_heads\) = \(3, 4\)"):
        layer_head_masks(torch.ones(2, 4), 3, 4)


def test_zero_scale_averages_the_values():
    q, k, v = qkv()
    out, _ = attend(q, k, v, scale=0.0)
    torch.testing.assert_close(out, v.mean(dim=2, keepdim=True).expand_as(out), atol=1e-6, rtol=1e-5)
