"""GLM-4 models against the oracle (transformers 5.23): tiny random configs saved by the oracle, loaded by tongues."""

import pytest
import torch

from glm_helpers import VARIANTS, left_pad, mask_positions, random_ids, right_pad, saved_pair

from tongues import GlmForCausalLM, GlmModel

close = torch.testing.assert_close
IDS = [name for name, _ in VARIANTS]


@pytest.fixture(params=VARIANTS, ids=IDS)
def lm_pair(request, tmp_path):
    return saved_pair(tmp_path, "GlmForCausalLM", **request.param[1])


@torch.no_grad()
def test_causal_lm_logits_and_loss(lm_pair):
    ref, ours = lm_pair
    ids = random_ids(2, 9)
    labels = ids.clone()
    labels[0, :3] = -100
    a, b = ref(ids, labels=labels), ours(ids, labels=labels)
    close(b.logits, a.logits, atol=1e-5, rtol=1e-5)
    close(b.loss, a.loss, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_bare_model_hidden_states(tmp_path):
    ref, ours = saved_pair(tmp_path, "GlmModel", num_key_value_heads=2)
    assert isinstance(ours, GlmModel)
    ids = random_ids(3, 7)
    a = ref(ids, output_hidden_states=True)
    b = ours(ids, output_hidden_states=True)
    close(b.last_hidden_state, a.last_hidden_state, atol=1e-5, rtol=1e-5)
    assert len(b.hidden_states) == len(a.hidden_states) == 3
    for x, y in zip(b.hidden_states, a.hidden_states):
        close(x, y, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_attentions_match_eager_oracle(tmp_path):
    ref, ours = saved_pair(tmp_path, "GlmForCausalLM", attn="eager", num_key_value_heads=1)
    ids, mask = right_pad(random_ids(2, 8), [0, 3])
    a = ref(ids, attention_mask=mask, output_attentions=True)
    b = ours(ids, attention_mask=mask, output_attentions=True)
    for x, y in zip(b.attentions, a.attentions):
        close(x[mask.bool()[:, None, :, None].expand_as(x)], y[mask.bool()[:, None, :, None].expand_as(y)],
              atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_right_padded_batch(lm_pair):
    ref, ours = lm_pair
    ids, mask = right_pad(random_ids(3, 10), [0, 4, 7])
    a, b = ref(ids, attention_mask=mask).logits, ours(ids, attention_mask=mask).logits
    close(b[mask.bool()], a[mask.bool()], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_left_padded_batch_with_mask_positions(lm_pair):
    # The oracle counts positions from column 0 unless told; tongues counts from each row's first real token,
    # so the oracle gets those positions explicitly (see docs/models/glm.md).
    ref, ours = lm_pair
    ids, mask = left_pad(random_ids(3, 10), [0, 4, 7])
    a = ref(ids, attention_mask=mask, position_ids=mask_positions(mask)).logits
    b = ours(ids, attention_mask=mask).logits
    close(b[mask.bool()], a[mask.bool()], atol=1e-5, rtol=1e-5)
    # Explicit position_ids are used as given, like the oracle.
    c = ours(ids, attention_mask=mask, position_ids=torch.arange(10)[None].expand(3, 10)).logits
    d = ref(ids, attention_mask=mask).logits
    close(c[mask.bool()], d[mask.bool()], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_cached_decode_and_legacy_cache(lm_pair):
    ref, ours = lm_pair
    ids, mask = left_pad(random_ids(2, 9), [0, 3])
    full = ref(ids, attention_mask=mask, position_ids=mask_positions(mask)).logits
    first = ours(ids[:, :6], attention_mask=mask[:, :6], use_cache=True)
    step = ours(ids[:, 6:], attention_mask=mask, past_key_values=first.past_key_values, use_cache=True)
    close(step.logits, full[:, 6:], atol=1e-5, rtol=1e-5)
    # The legacy tuple format in gives a tuple out, with the same numbers.
    legacy = ours(ids[:, :6], attention_mask=mask[:, :6], use_cache=True).past_key_values.to_legacy_cache()
    out = ours(ids[:, 6:], attention_mask=mask, past_key_values=legacy, use_cache=True)
    assert isinstance(out.past_key_values, tuple) and len(out.past_key_values) == 2
    k, v = out.past_key_values[0]
    config = ours.config
    assert k.shape == v.shape == (2, config.num_key_value_heads, 9, config.head_dim)
    close(out.logits, step.logits, atol=1e-6, rtol=1e-6)


@torch.no_grad()
def test_cache_position_and_logits_to_keep(tmp_path):
    ref, ours = saved_pair(tmp_path, "GlmForCausalLM", num_key_value_heads=2)
    ids = random_ids(2, 8)
    full = ref(ids).logits
    first = ours(ids[:, :5], use_cache=True, cache_position=torch.arange(5))
    step = ours(ids[:, 5:], past_key_values=first.past_key_values, cache_position=torch.arange(5, 8))
    close(step.logits, full[:, 5:], atol=1e-5, rtol=1e-5)
    close(ours(ids, num_logits_to_keep=2).logits, full[:, -2:], atol=1e-5, rtol=1e-5)
    close(ours(ids, logits_to_keep=1).logits, ref(ids, logits_to_keep=1).logits, atol=1e-5, rtol=1e-5)
    assert ours(ids, num_logits_to_keep=0).logits.shape == full.shape


@torch.no_grad()
def test_inputs_embeds(tmp_path):
    ref, ours = saved_pair(tmp_path, "GlmForCausalLM")
    embeds = torch.randn(2, 6, 32)
    close(ours(inputs_embeds=embeds).logits, ref(inputs_embeds=embeds).logits, atol=1e-5, rtol=1e-5)


@torch.no_grad()
@pytest.mark.parametrize("problem", ["single_label_classification", "regression", "multi_label_classification"])
def test_sequence_classification(tmp_path, problem):
    num_labels = 1 if problem == "regression" else 3
    ref, ours = saved_pair(tmp_path, "GlmForSequenceClassification", num_labels=num_labels, problem_type=problem,
                           num_key_value_heads=2)
    ids, mask = left_pad(random_ids(3, 8), [0, 2, 5])
    ids[1, -1] = 0  # right padding too, in one row: the rightmost non-pad token is pooled either way
    mask[1, -1] = 0
    if problem == "single_label_classification":
        labels = torch.tensor([0, 2, 1])
    elif problem == "regression":
        labels = torch.randn(3)
    else:
        labels = torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 0]])
    positions = mask_positions(mask)
    a = ref(ids, attention_mask=mask, position_ids=positions, labels=labels)
    b = ours(ids, attention_mask=mask, labels=labels)
    close(b.logits, a.logits, atol=1e-5, rtol=1e-5)
    close(b.loss, a.loss, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_token_classification(tmp_path):
    ref, ours = saved_pair(tmp_path, "GlmForTokenClassification", num_labels=5, num_key_value_heads=1)
    assert "score.bias" in ours.state_dict()
    ids, mask = right_pad(random_ids(2, 7), [0, 2])
    labels = torch.randint(0, 5, (2, 7)).masked_fill(mask == 0, -100)
    a = ref(ids, attention_mask=mask, labels=labels)
    b = ours(ids, attention_mask=mask, labels=labels)
    close(b.logits[mask.bool()], a.logits[mask.bool()], atol=1e-5, rtol=1e-5)
    close(b.loss, a.loss, atol=1e-5, rtol=1e-5)


def test_loss_backward_matches(tmp_path):
    ref, ours = saved_pair(tmp_path, "GlmForCausalLM", num_key_value_heads=2)
    ids = random_ids(2, 6)
    ref(ids, labels=ids).loss.backward()
    ours(ids, labels=ids).loss.backward()
    for name, param in ours.named_parameters():
        close(param.grad, ref.get_parameter(name).grad, atol=1e-5, rtol=1e-4)


@torch.no_grad()
@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_left_padded_matches_oracle(tmp_path, num_beams):
    ref, ours = saved_pair(tmp_path, "GlmForCausalLM", num_key_value_heads=2)
    ids, mask = left_pad(random_ids(3, 7, low=1, high=80), [0, 2, 4])
    kwargs = dict(attention_mask=mask, max_new_tokens=6, do_sample=False, num_beams=num_beams, pad_token_id=0)
    close(ours.generate(ids, **kwargs), ref.generate(ids, **kwargs), atol=0, rtol=0)


@torch.no_grad()
def test_generate_stops_on_any_eos_per_row(tmp_path):
    ref, ours = saved_pair(tmp_path, "GlmForCausalLM", num_key_value_heads=1)
    ids, mask = left_pad(random_ids(4, 5, low=1, high=80), [0, 1, 2, 3])
    free = ours.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False, eos_token_id=None,
                         pad_token_id=0)[:, 5:]
    # Three end ids, like GLM-4's generation_config.json: tokens the rows do produce, at different steps.
    eos = sorted({int(free[0, 2]), int(free[1, 4]), int(free[2, 6])})
    ours.generation_config.eos_token_id = eos
    ref.generation_config.eos_token_id = eos
    a = ref.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=0)
    b = ours.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=0)
    close(b, a, atol=0, rtol=0)
    for row in b[:, 5:]:
        hits = [i for i, t in enumerate(row.tolist()) if t in eos]
        if hits:  # everything after the first end id is padding
            assert (row[hits[0] + 1:] == 0).all()


@torch.no_grad()
def test_save_round_trip_to_oracle(tmp_path):
    import transformers

    ref, ours = saved_pair(tmp_path / "a", "GlmForCausalLM", num_key_value_heads=2, tie_word_embeddings=True)
    ours.save_pretrained(tmp_path / "b")
    back = transformers.GlmForCausalLM.from_pretrained(tmp_path / "b").eval()
    ids = random_ids(2, 6)
    close(back(ids).logits, ref(ids).logits, atol=0, rtol=0)
    assert back.config.num_key_value_heads == 2 and back.config.tie_word_embeddings
    assert back.config.rope_parameters["partial_rotary_factor"] == 0.5


def test_state_dict_keys_equal_reference(tmp_path):
    for cls in ("GlmModel", "GlmForCausalLM", "GlmForSequenceClassification", "GlmForTokenClassification"):
        ref, ours = saved_pair(tmp_path / cls, cls, num_key_value_heads=2, tie_word_embeddings=False)
        assert set(ours.state_dict()) == set(ref.state_dict()), cls


def test_fresh_model_init_like_reference():
    from tongues import GlmConfig

    config = GlmConfig(**{**dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                 num_attention_heads=4, head_dim=8, pad_token_id=0)})
    model = GlmForCausalLM(config)
    assert torch.all(model.model.embed_tokens.weight[0] == 0)  # padding row
    assert torch.all(model.model.norm.weight == 1)
    assert torch.all(model.model.layers[0].self_attn.q_proj.bias == 0)
    assert abs(float(model.lm_head.weight.detach().std()) - 0.02) < 0.005
    assert model.lm_head.weight is not model.model.embed_tokens.weight  # GLM-4 unties by default
