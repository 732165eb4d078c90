"""XLM models against the oracle (transformers 5.23): tiny random checkpoints saved by it, loaded by us."""

from __future__ import annotations

import pytest
import torch
from oracle import assert_close
from xlm_helpers import PAD, VARIANTS, WORDS, batch, oracle_and_ours

transformers = pytest.importorskip("transformers")

VARIANT_NAMES = list(VARIANTS)


def model_inputs(variant: str, **kw) -> dict:
    ids, mask, langs, token_types = batch(n_langs=VARIANTS[variant].get("n_langs", 1), **kw)
    return dict(input_ids=ids, attention_mask=mask, langs=langs, token_type_ids=token_types)


def compare_attentions(ours, ref, mask):
    # Padded query rows may differ in causal mode (we also hide padded keys there); real rows must match.
    real_rows = mask.bool()[:, None, :, None].expand_as(ref)
    assert_close(ours[real_rows], ref[real_rows])


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_base_model_hidden_states_and_attentions(variant, tmp_path):
    oracle, ours = oracle_and_ours("XLMModel", tmp_path, **VARIANTS[variant])
    kw = model_inputs(variant)
    with torch.no_grad():
        ref = oracle(**kw, output_hidden_states=True, output_attentions=True)
        out = ours(**kw, output_hidden_states=True, output_attentions=True)
    assert_close(out.last_hidden_state, ref.last_hidden_state)
    assert len(out.hidden_states) == len(ref.hidden_states) == 3
    for a, b in zip(out.hidden_states, ref.hidden_states):
        assert_close(a, b)
    for a, b in zip(out.attentions, ref.attentions):
        compare_attentions(a, b, kw["attention_mask"])
    ref_tuple = oracle(**kw, return_dict=False)
    our_tuple = ours(**kw, return_dict=False)
    assert len(our_tuple) == len(ref_tuple) == 1


@pytest.mark.parametrize("variant", ["mono_mlm", "causal_clm"])
def test_position_ids_lengths_and_inputs_embeds(variant, tmp_path):
    oracle, ours = oracle_and_ours("XLMModel", tmp_path, **VARIANTS[variant])
    kw = model_inputs(variant)
    mask = kw.pop("attention_mask")
    positions = torch.randint(0, 40, kw["input_ids"].shape)
    lengths = mask.sum(1)
    embeds = oracle.embeddings(kw["input_ids"]).detach()
    with torch.no_grad():
        # position_ids, and lengths instead of the mask
        assert_close(ours(**kw, position_ids=positions, lengths=lengths).last_hidden_state,
                     oracle(**kw, position_ids=positions, lengths=lengths).last_hidden_state)
        # no mask and no lengths: lengths come from the pad ids
        assert_close(ours(**kw).last_hidden_state, oracle(**kw).last_hidden_state)
        # inputs_embeds instead of ids (all positions real)
        rest = {k: v for k, v in kw.items() if k != "input_ids"}
        assert_close(ours(inputs_embeds=embeds, **rest).last_hidden_state,
                     oracle(inputs_embeds=embeds, **rest).last_hidden_state)


def test_head_mask_matches_zeroed_output_columns(tmp_path):
    """The reference dropped head_mask; zeroing a head's probabilities == zeroing its columns of out_lin."""
    oracle, ours = oracle_and_ours("XLMModel", tmp_path, n_langs=1)
    kw = model_inputs("mono_mlm")
    head_mask = torch.ones(2, 4)
    head_mask[0, 1] = 0
    head_mask[1, 3] = 0
    D = 32 // 4
    with torch.no_grad():
        oracle.attentions[0].out_lin.weight[:, 1 * D:2 * D] = 0
        oracle.attentions[1].out_lin.weight[:, 3 * D:4 * D] = 0
        ref = oracle(**kw).last_hidden_state
        out = ours(**kw, head_mask=head_mask, output_attentions=True)
    assert_close(out.last_hidden_state, ref)
    assert torch.all(out.attentions[0][:, 1] == 0) and torch.all(out.attentions[1][:, 3] == 0)


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_lm_head_logits_and_loss(variant, tmp_path):
    oracle, ours = oracle_and_ours("XLMWithLMHeadModel", tmp_path, **VARIANTS[variant])
    kw = model_inputs(variant)
    labels = kw["input_ids"].masked_fill(kw["attention_mask"] == 0, -100)
    with torch.no_grad():
        ref = oracle(**kw, labels=labels, output_hidden_states=True)
        out = ours(**kw, labels=labels, output_hidden_states=True)
        assert_close(out.logits, ref.logits)
        assert_close(out.loss, ref.loss)
        for a, b in zip(out.hidden_states, ref.hidden_states):
            assert_close(a, b)
        ref_tuple, our_tuple = oracle(**kw, labels=labels, return_dict=False), ours(**kw, labels=labels, return_dict=False)
        assert len(our_tuple) == len(ref_tuple) == 2
        assert_close(ours(**kw, logits_to_keep=1).logits, ref.logits[:, -1:])
    assert ours.pred_layer.proj.weight is ours.transformer.embeddings.weight


SUMMARIES = [
    dict(summary_type="first"),
    dict(summary_type="last", summary_activation="tanh"),
    dict(summary_type="mean", summary_proj_to_labels=False),
    dict(summary_type="cls_index"),
    dict(summary_type="first", summary_use_proj=False),
]


@pytest.mark.parametrize("summary", SUMMARIES, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_sequence_classification_summaries(summary, tmp_path):
    oracle, ours = oracle_and_ours("XLMForSequenceClassification", tmp_path, num_labels=3, n_langs=2, **summary)
    kw = model_inputs("causal_clm")
    labels = torch.tensor([0, 2, 1])
    if summary.get("summary_use_proj") is False or summary.get("summary_proj_to_labels") is False:
        labels = None  # the logits are hidden-sized: no classification loss to compare
    with torch.no_grad():
        ref, out = oracle(**kw, labels=labels), ours(**kw, labels=labels)
    assert_close(out.logits, ref.logits)
    if labels is not None:
        assert_close(out.loss, ref.loss)


@pytest.mark.parametrize("problem", ["regression", "single_label_classification", "multi_label_classification"])
def test_sequence_classification_losses(problem, tmp_path):
    num_labels = 1 if problem == "regression" else 3
    oracle, ours = oracle_and_ours("XLMForSequenceClassification", tmp_path, num_labels=num_labels)
    kw = model_inputs("mono_mlm")
    labels = {"regression": torch.randn(3), "single_label_classification": torch.tensor([2, 0, 1]),
              "multi_label_classification": torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 0]])}[problem]
    with torch.no_grad():
        ref, out = oracle(**kw, labels=labels), ours(**kw, labels=labels)
    assert_close(out.logits, ref.logits)
    assert_close(out.loss, ref.loss)
    assert ours.config.problem_type == oracle.config.problem_type == problem


@pytest.mark.parametrize("variant", ["mono_mlm", "causal_clm", "multi_mlm_sinusoidal_relu"])
def test_multiple_choice(variant, tmp_path):
    oracle, ours = oracle_and_ours("XLMForMultipleChoice", tmp_path, num_labels=3, **VARIANTS[variant])
    flat = model_inputs(variant, B=6, pads=(0, 1, 2, 3, 0, 4))
    kw = {k: v.view(2, 3, -1) for k, v in flat.items()}
    labels = torch.tensor([2, 0])
    with torch.no_grad():
        ref, out = oracle(**kw, labels=labels), ours(**kw, labels=labels)
    assert out.logits.shape == (2, 3)
    assert_close(out.logits, ref.logits)
    assert_close(out.loss, ref.loss)


@pytest.mark.parametrize("variant", ["mono_mlm", "causal_sinusoidal_relu"])
def test_token_classification(variant, tmp_path):
    oracle, ours = oracle_and_ours("XLMForTokenClassification", tmp_path, num_labels=5, **VARIANTS[variant])
    kw = model_inputs(variant)
    labels = torch.randint(0, 5, kw["input_ids"].shape).masked_fill(kw["attention_mask"] == 0, -100)
    with torch.no_grad():
        ref, out = oracle(**kw, labels=labels), ours(**kw, labels=labels)
    assert_close(out.logits, ref.logits)
    assert_close(out.loss, ref.loss)


@pytest.mark.parametrize("variant", ["mono_mlm", "causal_clm"])
def test_question_answering_simple(variant, tmp_path):
    oracle, ours = oracle_and_ours("XLMForQuestionAnsweringSimple", tmp_path, **VARIANTS[variant])
    kw = model_inputs(variant)
    starts, ends = torch.tensor([1, 0, 2]), torch.tensor([3, 9, 2])  # 9 is outside: clamped and ignored
    with torch.no_grad():
        ref = oracle(**kw, start_positions=starts, end_positions=ends)
        out = ours(**kw, start_positions=starts, end_positions=ends)
    assert_close(out.start_logits, ref.start_logits)
    assert_close(out.end_logits, ref.end_logits)
    assert_close(out.loss, ref.loss)


@pytest.mark.parametrize("variant", ["mono_mlm", "causal_clm"])
@pytest.mark.parametrize("with_masks", [False, True])
def test_question_answering_beam_candidates(variant, with_masks, tmp_path):
    oracle, ours = oracle_and_ours("XLMForQuestionAnswering", tmp_path, **VARIANTS[variant])
    kw = model_inputs(variant)
    extra = {}
    if with_masks:
        p_mask = torch.zeros(3, 7)
        p_mask[:, 0] = 1
        p_mask[0, 5] = 1
        extra = dict(p_mask=p_mask, cls_index=torch.tensor([0, 1, 2]))
    with torch.no_grad():
        ref = oracle(**kw, **extra)
        out = ours(**kw, **extra)
    assert torch.equal(out.start_top_index, ref.start_top_index)
    assert torch.equal(out.end_top_index, ref.end_top_index)
    # We return log-probabilities, as the spec names them; the reference returns probabilities.
    assert_close(out.start_top_log_probs.exp(), ref.start_top_log_probs)
    assert_close(out.end_top_log_probs.exp(), ref.end_top_log_probs)
    assert_close(out.cls_logits, ref.cls_logits)
    assert out.start_top_index.shape == (3, 3) and out.end_top_index.shape == (3, 6)
    assert out.loss is None


@pytest.mark.parametrize("answerability", [False, True])
def test_question_answering_beam_training_loss(answerability, tmp_path):
    oracle, ours = oracle_and_ours("XLMForQuestionAnswering", tmp_path)
    kw = model_inputs("mono_mlm")
    extra = dict(start_positions=torch.tensor([1, 0, 2]), end_positions=torch.tensor([3, 4, 2]))
    if answerability:
        extra.update(is_impossible=torch.tensor([0.0, 1.0, 0.0]), cls_index=torch.tensor([0, 0, 1]))
    with torch.no_grad():
        ref = oracle(**kw, **{k: v.clone() for k, v in extra.items()})
        out = ours(**kw, **extra)
    assert_close(out.loss, ref.loss)
    assert out.start_top_index is None and out.cls_logits is None
    assert len(ours(**kw, **extra, return_dict=False)) == 1


@pytest.mark.parametrize("variant", ["causal_clm", "mono_mlm"])
def test_greedy_generation_matches(variant, tmp_path):
    overrides = dict(VARIANTS[variant], lang_id=1 if VARIANTS[variant].get("n_langs", 1) > 1 else 0)
    oracle, ours = oracle_and_ours("XLMWithLMHeadModel", tmp_path, **overrides)
    prompt = torch.randint(*WORDS, (2, 4), generator=torch.Generator().manual_seed(3))
    expected = oracle.generate(prompt, max_new_tokens=6, do_sample=False)
    assert torch.equal(ours.generate(prompt, max_new_tokens=6, do_sample=False), expected)


def test_beam_generation_matches(tmp_path):
    oracle, ours = oracle_and_ours("XLMWithLMHeadModel", tmp_path, **VARIANTS["causal_clm"])
    prompt = torch.randint(*WORDS, (2, 4), generator=torch.Generator().manual_seed(4))
    expected = oracle.generate(prompt, max_new_tokens=5, num_beams=3, do_sample=False)
    assert torch.equal(ours.generate(prompt, max_new_tokens=5, num_beams=3, do_sample=False), expected)


@pytest.mark.parametrize("class_name", ["XLMWithLMHeadModel", "XLMForQuestionAnswering", "XLMForMultipleChoice"])
def test_save_then_oracle_load_round_trip(class_name, tmp_path):
    oracle, ours = oracle_and_ours(class_name, tmp_path, **VARIANTS["multi_mlm_sinusoidal_relu"])
    assert set(ours.state_dict()) == set(oracle.state_dict()) - {"transformer.position_ids"}
    ours.save_pretrained(str(tmp_path / "ours"))
    again = getattr(transformers, class_name).from_pretrained(str(tmp_path / "ours")).eval()
    kw = model_inputs("multi_mlm_sinusoidal_relu")
    if class_name == "XLMForMultipleChoice":
        kw = {k: v[None] for k, v in kw.items()}
    with torch.no_grad():
        ref, out = again(**kw), ours(**kw)
    for key in ref.keys():
        assert_close(out[key] if key not in ("start_top_log_probs", "end_top_log_probs") else out[key].exp(),
                     ref[key].to(out[key].dtype))


def test_config_round_trip(tmp_path):
    import tongues

    config = transformers.XLMConfig(vocab_size=50, emb_dim=16, n_layers=1, n_heads=2, n_langs=4, causal=True,
                                    summary_type="mean", start_n_top=2, lang_id=3, mask_token_id=5)
    config.save_pretrained(str(tmp_path))
    ours = tongues.XLMConfig.from_pretrained(str(tmp_path))
    for key in ("vocab_size", "emb_dim", "n_layers", "n_heads", "n_langs", "causal", "summary_type", "start_n_top",
                "lang_id", "mask_token_id", "pad_token_id", "bos_token_id", "eos_token_id", "embed_init_std",
                "layer_norm_eps", "gelu_activation", "sinusoidal_embeddings", "asm", "use_lang_emb", "is_encoder"):
        assert getattr(ours, key) == getattr(config, key), key
    assert ours.hidden_size == 16 and ours.num_hidden_layers == 1 and ours.n_words == 50 and ours.pad_index == PAD
    ours.save_pretrained(str(tmp_path / "back"))
    back = transformers.XLMConfig.from_pretrained(str(tmp_path / "back"))
    assert back.n_langs == 4 and back.summary_type == "mean" and back.lang_id == 3
    defaults = tongues.XLMConfig()
    reference = transformers.XLMConfig()
    for key in ("vocab_size", "emb_dim", "n_layers", "n_heads", "dropout", "max_position_embeddings", "embed_init_std",
                "init_std", "unk_index", "mask_index", "summary_first_dropout", "start_n_top", "end_n_top",
                "mask_token_id", "lang_id", "pad_token_id", "bos_token_id", "eos_token_id"):
        assert getattr(defaults, key) == getattr(reference, key), key
