"""Properties of BLOOM beyond the shared runner (test_model_properties.py): legacy caches, head masks,
sharded and .bin files, dtypes, tying, resizing."""

from __future__ import annotations

import torch

from oracle import assert_close
from tongues import BloomConfig, BloomForCausalLM, BloomModel, DynamicCache

VOCAB = 61


def model(**kwargs):
    config = BloomConfig(vocab_size=VOCAB, hidden_size=32, n_layer=2, n_head=4, pad_token_id=0, **kwargs)
    return BloomForCausalLM.from_config(config).eval()


@torch.no_grad()
def test_legacy_tuple_cache_equals_cache_object_and_keeps_its_format():
    m = model()
    ids = torch.randint(1, VOCAB, (2, 6))
    first = m(ids[:, :4], use_cache=True)
    legacy = first.past_key_values.to_legacy_cache()
    assert isinstance(legacy, tuple) and len(legacy) == 2 and legacy[0][0].shape == (2, 4, 4, 8)
    from_legacy = m(ids[:, 4:], past_key_values=legacy)
    from_object = m(ids[:, 4:], past_key_values=DynamicCache.from_legacy_cache(legacy))
    assert isinstance(from_legacy.past_key_values, tuple)
    assert isinstance(from_object.past_key_values, DynamicCache)
    assert_close(from_legacy.logits, from_object.logits)


@torch.no_grad()
def test_head_mask_of_ones_changes_nothing_and_zeros_silence_heads():
    m = BloomModel(BloomConfig(vocab_size=VOCAB, hidden_size=32, n_layer=2, n_head=4)).eval()
    ids = torch.randint(0, VOCAB, (2, 5))
    base = m(ids).last_hidden_state
    assert_close(m(ids, head_mask=torch.ones(4)).last_hidden_state, base)
    head_mask = torch.ones(2, 4)
    head_mask[1, 2] = 0
    out = m(ids, head_mask=head_mask, output_attentions=True)
    assert torch.count_nonzero(out.attentions[1][:, 2]) == 0
    assert torch.count_nonzero(out.attentions[1][:, 1]) > 0
    assert not torch.allclose(out.last_hidden_state, base)


def test_save_load_round_trip_sharded(tmp_path):
    m = model()
    m.save_pretrained(tmp_path, max_shard_size="20KB")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "model.safetensors.index.json" in files and sum(f.endswith(".safetensors") for f in files) > 1
    loaded = BloomForCausalLM.from_pretrained(tmp_path)
    ids = torch.randint(0, VOCAB, (2, 5))
    with torch.no_grad():
        assert_close(loaded(ids).logits, m(ids).logits, atol=0, rtol=0)
    # Saving again unsharded removes the stale shards and index.
    m.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if "safetensors" in p.name) == ["model.safetensors"]


def test_bin_checkpoint_loads(tmp_path):
    m = model()
    m.save_pretrained(tmp_path)
    state = m.state_dict_to_save()
    (tmp_path / "model.safetensors").unlink()
    torch.save(state, tmp_path / "pytorch_model.bin")
    loaded = BloomForCausalLM.from_pretrained(tmp_path)
    for key, value in m.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    ids = torch.randint(0, VOCAB, (1, 4))
    m.prepare_for_decode()  # the kernels from_pretrained chose, so the same sums in the same order
    with torch.no_grad():
        assert_close(loaded(ids).logits, m(ids).logits, atol=0, rtol=0)


def test_dtype_auto_and_explicit(tmp_path):
    m = model()
    m.to(torch.bfloat16).save_pretrained(tmp_path)
    assert BloomForCausalLM.from_pretrained(tmp_path).dtype == torch.bfloat16  # "auto": config's dtype
    assert BloomForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).dtype == torch.float32
    assert BloomForCausalLM.from_pretrained(tmp_path, torch_dtype="float16").dtype == torch.float16


def test_tied_lm_head_shares_storage_after_load(tmp_path):
    m = model()
    m.save_pretrained(tmp_path)
    loaded = BloomForCausalLM.from_pretrained(tmp_path)
    assert loaded.lm_head.weight is loaded.transformer.word_embeddings.weight


def test_resize_token_embeddings_keeps_old_rows_and_ties():
    m = model()
    old = m.transformer.word_embeddings.weight.detach().clone()
    m.resize_token_embeddings(VOCAB + 5)
    assert m.config.vocab_size == VOCAB + 5
    assert m.transformer.word_embeddings.weight.shape == (VOCAB + 5, 32)
    assert m.lm_head.weight is m.transformer.word_embeddings.weight
    torch.testing.assert_close(m.transformer.word_embeddings.weight[:VOCAB], old)
    torch.testing.assert_close(m.transformer.word_embeddings.weight[VOCAB], old.mean(0))
    m.resize_token_embeddings(VOCAB + 5, pad_to_multiple_of=8)
    assert m.config.vocab_size == 72
    with torch.no_grad():
        assert m(torch.tensor([[71]])).logits.shape == (1, 1, 72)


def test_input_embeddings_accessors():
    m = model()
    emb = torch.nn.Embedding(VOCAB, 32)
    m.set_input_embeddings(emb)
    assert m.get_input_embeddings() is emb
    assert m.get_output_embeddings() is m.lm_head
