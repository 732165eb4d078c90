"""SlotCache: rows at their own lengths, prefilled one by one, decoded together, equal generate row by row."""

import pytest
import torch

from tongues import BloomConfig, BloomForCausalLM, GlmConfig, GlmForCausalLM, XGLMConfig, XGLMForCausalLM
from tongues.slot_cache import SlotCache

FAMILIES = {
    "bloom": lambda: BloomForCausalLM(BloomConfig(vocab_size=100, hidden_size=32, n_layer=2, n_head=4)),
    "xglm": lambda: XGLMForCausalLM(XGLMConfig(vocab_size=100, d_model=32, num_layers=2, attention_heads=4,
                                               ffn_dim=64)),
    "glm": lambda: GlmForCausalLM(GlmConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                            num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                                            head_dim=8, pad_token_id=0, eos_token_id=1)),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_rows_of_different_lengths_decode_together_as_generate_does_alone(family):
    model = FAMILIES[family]().eval()
    prompts = [torch.randint(3, 100, (1, n)) for n in (5, 2, 7)]
    steps = 6
    expected = [model.generate(p, max_new_tokens=steps, do_sample=False, eos_token_id=None,
                               pad_token_id=0)[0, p.shape[1]:].tolist() for p in prompts]
    cache = SlotCache(slots=4, capacity=8)  # capacity 8 < 7 + 6: the cache must grow mid-decode
    got = []
    with torch.no_grad():
        for row, prompt in enumerate(prompts):
            out = model(prompt, past_key_values=cache.view(row, row + 1), use_cache=True)
            got.append([int(out.logits[0, -1].argmax())])
        for _ in range(steps - 1):
            view = cache.view(0, 3)
            ids = torch.tensor([[tokens[-1]] for tokens in got])
            out = model(ids, attention_mask=view.attention_mask(1), position_ids=view.position_ids(1),
                        past_key_values=view, use_cache=True)
            for row in range(3):
                got[row].append(int(out.logits[row, -1].argmax()))
    assert got == expected
    assert cache.lengths.tolist() == [5 + steps - 1, 2 + steps - 1, 7 + steps - 1, 0]


def test_move_and_reset_keep_rows_contiguous():
    cache = SlotCache(slots=3, capacity=4)
    view = cache.view(0, 3)
    key = torch.arange(3 * 2 * 2 * 1, dtype=torch.float32).view(3, 2, 2, 1)
    view.update(key, key + 100, 0)
    cache.move(2, 0)
    cache.reset(2)
    assert cache.lengths.tolist() == [2, 2, 0]
    assert torch.equal(cache.keys[0][0, :, :2], key[2])
    assert torch.equal(cache.values[0][0, :, :2], key[2] + 100)


def test_rows_of_different_lengths_cannot_add_several_tokens():
    cache = SlotCache(slots=2, capacity=4)
    cache.view(0, 1).update(torch.zeros(1, 1, 2, 1), torch.zeros(1, 1, 2, 1), 0)
    with pytest.raises(ValueError, match="different lengths"):
        cache.view(0, 2).update(torch.zeros(2, 1, 2, 1), torch.zeros(2, 1, 2, 1), 0)


def test_fixed_capacity_refuses_to_grow_and_bad_sizes_are_named():
    cache = SlotCache(slots=1, capacity=2, growable=False)
    with pytest.raises(ValueError, match="larger capacity"):
        cache.view(0, 1).update(torch.zeros(1, 1, 3, 1), torch.zeros(1, 1, 3, 1), 0)
    with pytest.raises(ValueError, match="slots"):
        SlotCache(slots=0, capacity=2)
    with pytest.raises(ValueError, match="outside"):
        cache.view(0, 2)


def test_forward_step_prefills_then_decodes_mixed_rows():
    from tongues.slot_cache import forward_step

    model = FAMILIES["bloom"]().eval()
    prompts = [torch.randint(3, 100, (1, n)) for n in (4, 1)]
    expected = [model.generate(p, max_new_tokens=3, do_sample=False, eos_token_id=None,
                               pad_token_id=0)[0, p.shape[1]:].tolist() for p in prompts]
    cache = SlotCache(slots=2, capacity=16)
    with torch.no_grad():
        got = [[int(forward_step(model, p, cache.view(i, i + 1)).argmax(-1))] for i, p in enumerate(prompts)]
        for _ in range(2):
            logits = forward_step(model, torch.tensor([[g[-1]] for g in got]), cache.view(0, 2))
            for row, token in enumerate(logits.argmax(-1).tolist()):
                got[row].append(token)
    assert got == expected


def test_view_is_a_cache_whose_legacy_form_holds_each_rows_filled_prefix():
    cache = SlotCache(slots=3, capacity=4)
    key = torch.arange(2 * 2 * 3 * 1, dtype=torch.float32).view(2, 2, 3, 1)
    for layer in range(2):
        cache.view(0, 2).update(key, -key, layer)
    view = cache.view(0, 2)
    assert len(view) == 2 and view.get_seq_length() == 3 and view.lengths.tolist() == [3, 3]
    legacy = view.to_legacy_cache()
    assert len(legacy) == 2 and torch.equal(legacy[1][0], key) and torch.equal(legacy[1][1], -key)
    cache.view(2, 3).update(key[:1, :, :1], key[:1, :, :1], 0)  # row 2 alone, one position
    mixed = cache.view(0, 3)
    assert mixed.attention_mask(1).tolist() == [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0]]
    assert mixed.position_ids(1).tolist() == [[3], [3], [1]]


def test_crop_and_reorder_act_on_the_views_rows_only():
    cache = SlotCache(slots=3, capacity=4)
    key = torch.arange(3 * 1 * 2 * 1, dtype=torch.float32).view(3, 1, 2, 1)
    cache.view(0, 3).update(key, key, 0)
    view = cache.view(1, 3)
    view.reorder_cache(torch.tensor([1, 1]))
    assert torch.equal(cache.keys[0][:, :, :2], key[[0, 2, 2]])
    view.crop(1)
    assert cache.lengths.tolist() == [2, 1, 1]
    with pytest.raises(NotImplementedError, match="fixed number of rows"):
        view.batch_repeat_interleave(2)
