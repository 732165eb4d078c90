"""The primitives moved out of the XLM and XGLM modeling files: padding_mask, VocabProjection, FeedForward,
CrossAttention and prepare_encoder_decoder_cache."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tongues.cache import DynamicCache, EncoderDecoderCache
from tongues.layers.attention import attend
from tongues.layers.cross_attention import CrossAttention
from tongues.layers.feed_forward import FeedForward
from tongues.layers.inputs import prepare_encoder_decoder_cache
from tongues.layers.masks import padding_mask
from tongues.layers.vocab_projection import VocabProjection

CPU = torch.device("cpu")


# -- padding_mask ---------------------------------------------------------------------------------
def test_padding_mask_prefers_the_mask_then_lengths_then_pad_ids():
    ids = torch.tensor([[5, 6, 7, 1], [5, 1, 1, 1]])
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 0, 0]])
    assert padding_mask(ids, mask, torch.tensor([1, 1]), 1, 0, 0, CPU) is mask
    assert padding_mask(ids, None, [2, 4], 1, 0, 0, CPU).tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert padding_mask(ids, None, None, 1, 0, 0, CPU).tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    assert padding_mask(None, None, None, 1, 2, 3, CPU).tolist() == [[1, 1, 1], [1, 1, 1]]  # embeddings given


@pytest.mark.parametrize("kwargs, message", [
    (dict(attention_mask=torch.ones(2, 3)), r"attention_mask has shape \(2, 3\), expected \(2, 4\)"),
    (dict(lengths=torch.tensor([1, 2, 3])), r"lengths has shape \(3,\), expected \(2,\)"),
    (dict(lengths=torch.tensor([1, 5])), r"lengths holds \[1, 5\]; each must lie in \[0, 4\]"),
])
def test_padding_mask_names_the_bad_input(kwargs, message):
    args = dict(attention_mask=None, lengths=None) | kwargs
    with pytest.raises(ValueError, match=message):
        padding_mask(torch.ones(2, 4, dtype=torch.long), args["attention_mask"], args["lengths"], 0, 2, 4, CPU)


# -- VocabProjection ------------------------------------------------------------------------------
def test_linear_projection_scores_and_unshifted_loss():
    torch.manual_seed(0)
    out = VocabProjection(8, 30)
    hidden, labels = torch.randn(2, 5, 8), torch.randint(0, 30, (2, 5))
    labels[0, 0] = -100
    scores, loss = out(hidden, labels)
    torch.testing.assert_close(scores, out.proj(hidden))
    torch.testing.assert_close(loss, F.cross_entropy(scores.reshape(-1, 30), labels.reshape(-1), ignore_index=-100))
    assert out(hidden)[1] is None


def test_adaptive_projection_gives_log_probabilities_and_their_nll():
    torch.manual_seed(0)
    out = VocabProjection(8, 30, cutoffs=[10, 20], div_value=2.0)
    assert isinstance(out.proj, nn.AdaptiveLogSoftmaxWithLoss)
    hidden, labels = torch.randn(2, 5, 8), torch.randint(0, 30, (2, 5))
    scores, loss = out(hidden, labels)
    assert scores.shape == (2, 5, 30)
    torch.testing.assert_close(scores.exp().sum(-1), torch.ones(2, 5))
    torch.testing.assert_close(loss, F.nll_loss(scores.reshape(-1, 30), labels.reshape(-1)))
    with pytest.raises(ValueError, match=r"labels has shape \(2, 4\), expected \(2, 5\)"):
        out(hidden, labels[:, :4])
    with pytest.raises(ValueError, match="adaptive softmax cannot be resized"):
        out.resize_bias(40)


def test_resize_bias_keeps_old_entries_and_zeroes_new_ones():
    out = VocabProjection(4, 6)
    old = out.proj.bias.detach().clone()
    out.resize_bias(9)
    assert out.proj.bias.shape == (9,) and out.proj.out_features == 9
    assert torch.equal(out.proj.bias[:6], old) and not out.proj.bias[6:].any()
    out.resize_bias(3)
    assert torch.equal(out.proj.bias, old[:3])


# -- FeedForward ----------------------------------------------------------------------------------
def test_feed_forward_uses_the_declared_names():
    class Named(FeedForward):
        names = ("lin1", "lin2")

    torch.manual_seed(0)
    ffn = Named(nn.Linear(4, 8), nn.Linear(8, 4), F.relu, dropout=0.5).eval()
    assert [n for n, _ in ffn.named_parameters()] == ["lin1.weight", "lin1.bias", "lin2.weight", "lin2.bias"]
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(ffn(x), ffn.lin2(F.relu(ffn.lin1(x))))  # no dropout in eval
    assert not torch.equal(ffn.train()(x), ffn.eval()(x))


# -- CrossAttention and its cache -----------------------------------------------------------------
def test_cross_attention_attends_over_the_encoder_and_caches_its_keys_once():
    torch.manual_seed(0)
    attn = CrossAttention(8, 2, layer_idx=0).eval()
    x, enc = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    q, k, v = attn.split_heads(x, 0), attn.split_heads(enc, 1), attn.split_heads(enc, 2)
    expected = attn.out_proj(attend(q, k, v, scale=4**-0.5)[0].transpose(1, 2).reshape(2, 3, 8))
    cache = EncoderDecoderCache()
    out, _ = attn(x, cache, key_value_states=enc)
    torch.testing.assert_close(out, expected)
    assert cache.has_cross(0) and cache.get_seq_length() == 0  # the self-attention part is untouched
    # Later steps read the cached keys/values: other encoder states would not change the result.
    torch.testing.assert_close(attn(x, cache, key_value_states=torch.zeros_like(enc))[0], expected)
    self_out, _ = attn(x, DynamicCache())  # without key_value_states it is self-attention
    assert self_out.shape == (2, 3, 8)


def test_prepare_encoder_decoder_cache_keeps_cross_entries():
    k = torch.zeros(1, 2, 3, 4)
    cache, legacy = prepare_encoder_decoder_cache(((k, k, k, k),), use_cache=True, cross=False)
    assert legacy and isinstance(cache, EncoderDecoderCache) and cache.has_cross(0)
    assert len(cache.to_legacy_cache()[0]) == 4
    cache, legacy = prepare_encoder_decoder_cache(((k, k),), use_cache=True, cross=False)
    assert legacy and isinstance(cache, DynamicCache)
    assert isinstance(prepare_encoder_decoder_cache(None, True, cross=True)[0], EncoderDecoderCache)
    assert type(prepare_encoder_decoder_cache(None, True, cross=False)[0]) is DynamicCache
    assert prepare_encoder_decoder_cache(None, False, cross=True) == (None, False)
