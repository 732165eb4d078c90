"""XLM properties beyond the shared runner (test_model_properties.py): the dict cache, right padding of
bidirectional models, generation, save -> load of every head, sinusoids, resizing, adaptive softmax."""

from __future__ import annotations

import pytest
import torch
from oracle import assert_close
from xlm_helpers import PAD, WORDS, config_kwargs

import tongues
from tongues.cache import DynamicCache
from tongues.layers.sinusoidal import interleaved_sinusoidal_table


def model(cls=tongues.XLMModel, **overrides):
    torch.manual_seed(0)
    return cls(tongues.XLMConfig(**config_kwargs(**overrides))).eval()


def ids(B, S, seed=0):
    return torch.randint(*WORDS, (B, S), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("make_cache", [dict, DynamicCache], ids=["spec-dict", "DynamicCache"])
def test_cached_equals_uncached_for_causal_models(make_cache):
    m = model(causal=True, n_langs=2)
    x = ids(2, 9)
    langs = torch.randint(0, 2, x.shape)
    with torch.no_grad():
        full = m(x, langs=langs).last_hidden_state
        cache = make_cache()
        first = m(x[:, :4], langs=langs[:, :4], cache=cache).last_hidden_state
        assert_close(first, full[:, :4])
        for end in range(5, 10):
            # The whole sequence goes in; only the positions after the cached ones are computed.
            step = m(x[:, :end], langs=langs[:, :end], cache=cache).last_hidden_state
            assert step.shape == (2, 1, 32)
            assert_close(step[:, 0], full[:, end - 1])
    if isinstance(cache, dict):
        assert cache["slen"] == 9 and sorted(k for k in cache if k != "slen") == [0, 1]
        assert cache[0][0].shape == (2, 4, 9, 8)


def test_cache_accepts_new_only_langs_positions_and_token_types():
    m = model(causal=True, n_langs=3)
    x = ids(2, 6)
    langs, types = torch.randint(0, 3, x.shape), torch.randint(0, 2, x.shape)
    positions = torch.arange(6).expand(2, 6) + 3
    with torch.no_grad():
        full = m(x, langs=langs, token_type_ids=types, position_ids=positions).last_hidden_state
        cache = {}
        m(x[:, :4], langs=langs[:, :4], token_type_ids=types[:, :4], position_ids=positions[:, :4], cache=cache)
        tail = m(x, langs=langs[:, 4:], token_type_ids=types[:, 4:], position_ids=positions[:, 4:], cache=cache)
    assert_close(tail.last_hidden_state, full[:, 4:])


@pytest.mark.parametrize("causal", [False, True])
def test_batch_equals_rows_with_right_padding(causal):
    m = model(causal=causal)
    x = ids(3, 6)
    lengths = [6, 4, 2]
    mask = torch.zeros(3, 6, dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
        x[b, n:] = PAD
    with torch.no_grad():
        batch = m(x, attention_mask=mask).last_hidden_state
        for b, n in enumerate(lengths):
            assert_close(batch[b, :n], m(x[b:b + 1, :n]).last_hidden_state[0])
            assert torch.all(batch[b, n:] == 0)  # padded positions are zeroed, as in XLM


def test_left_padded_generation_equals_rows():
    m = model(tongues.XLMWithLMHeadModel, causal=True)
    a, b = ids(1, 5, seed=1), ids(1, 3, seed=2)
    batch = torch.cat([a, torch.cat([torch.full((1, 2), PAD), b], dim=1)])
    mask = (batch != PAD).long()
    out = m.generate(batch, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=PAD)
    assert torch.equal(out[0, 5:], m.generate(a, max_new_tokens=4, do_sample=False)[0, 5:])
    assert torch.equal(out[1, 5:], m.generate(b, max_new_tokens=4, do_sample=False)[0, 3:])


def test_generation_appends_the_mask_token_and_language():
    m = model(tongues.XLMWithLMHeadModel, causal=True, n_langs=3, lang_id=2, mask_token_id=5)
    x = ids(2, 4)
    inputs = m.prepare_inputs_for_generation(x)
    assert torch.equal(inputs["input_ids"][:, :4], x) and torch.all(inputs["input_ids"][:, 4] == 5)
    assert torch.all(inputs["langs"] == 2)


@pytest.mark.parametrize("cls_name", ["XLMWithLMHeadModel", "XLMForSequenceClassification",
                                      "XLMForQuestionAnswering", "XLMForTokenClassification"])
def test_save_load_same_outputs(cls_name, tmp_path):
    m = model(getattr(tongues, cls_name), sinusoidal_embeddings=True, n_langs=2)
    m.save_pretrained(str(tmp_path))
    loaded = getattr(tongues, cls_name).from_pretrained(str(tmp_path))
    x = ids(2, 6)
    with torch.no_grad():
        a, b = m(x), loaded(x)
    for key in a.keys():
        assert_close(b[key].float(), a[key].float())
    assert set(loaded.state_dict()) == set(m.state_dict())
    assert not loaded.transformer.position_embeddings.weight.requires_grad


def test_sinusoidal_table_is_fixed_and_rebuilt_when_missing(tmp_path):
    m = model(sinusoidal_embeddings=True)
    table = interleaved_sinusoidal_table(40, 32)
    assert torch.equal(m.position_embeddings.weight, table)
    assert not m.position_embeddings.weight.requires_grad
    from safetensors.torch import save_file

    m.config.save_pretrained(str(tmp_path))
    state = {k: v for k, v in m.state_dict().items() if k != "position_embeddings.weight"}
    save_file(state, str(tmp_path / "model.safetensors"))
    loaded = tongues.XLMModel.from_pretrained(str(tmp_path))
    assert torch.equal(loaded.position_embeddings.weight, table)


def test_gradient_checkpointing_refuses_the_cache():
    m = model(tongues.XLMWithLMHeadModel, causal=True)
    m.train()
    m.gradient_checkpointing_enable()
    with pytest.raises(ValueError, match="cache cannot be used while training with gradient checkpointing"):
        m(ids(2, 6), cache={})


def test_resize_token_embeddings_keeps_tying_and_bias():
    m = model(tongues.XLMWithLMHeadModel)
    bias = m.pred_layer.proj.bias.detach().clone()
    m.resize_token_embeddings(110)
    assert m.pred_layer.proj.weight is m.transformer.embeddings.weight
    assert m.pred_layer.proj.bias.shape == (110,) and torch.equal(m.pred_layer.proj.bias[:99], bias)
    assert m(ids(1, 4)).logits.shape == (1, 4, 110) and m.config.vocab_size == 110


# -- adaptive softmax (config.asm) ---------------------------------------------------------------

ASM = dict(asm=True, asm_cutoffs=[20, 50], asm_div_value=2.0)


def test_adaptive_softmax_predicts_like_its_full_log_softmax():
    m = model(tongues.XLMWithLMHeadModel, **ASM)
    x = ids(3, 7)
    with torch.no_grad():
        out = m(x, output_hidden_states=True)
        hidden = out.hidden_states[-1].reshape(-1, 32)
        assert_close(out.logits.logsumexp(-1), torch.zeros(3, 7), atol=1e-5, rtol=0)  # log-probabilities
        assert torch.equal(out.logits.argmax(-1).reshape(-1), m.pred_layer.proj.predict(hidden))
        labels = x.clone()
        labels[0, :3] = -100
        loss = m(x, labels=labels).loss
        keep = labels.reshape(-1) != -100
        assert_close(loss, m.pred_layer.proj(hidden[keep], labels.reshape(-1)[keep]).loss)
    assert m.tied_weights == {} and "pred_layer.proj.head.weight" in m.state_dict()


def test_adaptive_softmax_trains():
    m = model(tongues.XLMWithLMHeadModel, **ASM)
    m.train()
    x = ids(4, 8)
    optimizer = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = m(x, labels=x).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_adaptive_softmax_save_load(tmp_path):
    m = model(tongues.XLMWithLMHeadModel, **ASM)
    m.save_pretrained(str(tmp_path))
    loaded = tongues.XLMWithLMHeadModel.from_pretrained(str(tmp_path), output_loading_info=True)
    loaded, info = loaded
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    x = ids(2, 5)
    with torch.no_grad():
        assert_close(loaded(x).logits, m(x).logits)


# -- attention pooling summary -------------------------------------------------------------------

def test_attention_summary_ignores_padding():
    m = model(tongues.XLMForSequenceClassification, summary_type="attn", num_labels=3)
    x = ids(2, 6)
    x[1, 4:] = PAD
    mask = (x != PAD).long()
    with torch.no_grad():
        batch = m(x, attention_mask=mask).logits
        row = m(x[1:, :4]).logits
    assert batch.shape == (2, 3)
    assert_close(batch[1], row[0])
