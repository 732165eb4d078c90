"""TF XGLM and XLM against tongues' PyTorch models: same weights, same outputs (fp32), same tokens."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf_keras")

from tongues.checkpoint.files import CheckpointError  # noqa: E402
from tongues.generation.configuration import GenerationConfig  # noqa: E402
from tongues.models.xglm import XGLMConfig  # noqa: E402
from tongues.models.xglm.modeling_tf_xglm import TFXGLMForCausalLM, TFXGLMModel  # noqa: E402
from tongues.models.xglm.modeling_xglm import XGLMForCausalLM  # noqa: E402
from tongues.models.xlm import modeling_tf_xlm as tfxlm  # noqa: E402
from tongues.models.xlm import modeling_xlm as ptxlm  # noqa: E402
from tongues.models.xlm.configuration_xlm import XLMConfig  # noqa: E402
from twin_helpers import IDS, MASK, POS, REAL, close, cross_attention_reference, saved_pytorch  # noqa: E402

XLM_IDS = np.array([[5, 6, 7, 8, 2, 2], [9, 10, 11, 12, 13, 14]])
XLM_MASK = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])  # row 0 right-padded (pad id 2)
LANGS = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])


@pytest.fixture(scope="module")
def xglm(tmp_path_factory):
    config = XGLMConfig(vocab_size=96, d_model=32, ffn_dim=64, num_layers=2, attention_heads=4,
                        max_position_embeddings=64, dropout=0.1, attention_dropout=0.0)
    path, pt = saved_pytorch(XGLMForCausalLM, config, tmp_path_factory.mktemp("xglm"))
    return path, pt, TFXGLMForCausalLM.from_pretrained(path)


def xlm_config(**kwargs):
    base = dict(vocab_size=50, emb_dim=32, n_layers=2, n_heads=4, n_langs=2, max_position_embeddings=40, dropout=0.0,
                attention_dropout=0.0, num_labels=2, pad_token_id=2)
    return XLMConfig(**{**base, **kwargs})


def pt_and_tf(name, config, tmp_path):
    torch.manual_seed(0)
    pt = getattr(ptxlm, name)(config).eval()
    pt.save_pretrained(tmp_path)
    return pt, getattr(tfxlm, "TF" + name).from_pretrained(tmp_path)


# ---------------------------------------------------------------- XGLM


def test_xglm_logits_loss_hidden_states_match_pytorch(xglm):
    _, pt, model = xglm
    with torch.no_grad():
        ref = pt(torch.tensor(IDS), attention_mask=torch.tensor(MASK), position_ids=torch.tensor(POS),
                 labels=torch.tensor(IDS), output_hidden_states=True, output_attentions=True)
    out = model(IDS, attention_mask=MASK, position_ids=POS, labels=IDS, output_hidden_states=True,
                output_attentions=True)
    close(out.logits, ref.logits, REAL)
    close(out.loss[0], ref.loss)
    assert out.loss.shape == (1,)
    for ours, theirs in zip(out.hidden_states, ref.hidden_states):
        close(ours, theirs, REAL)
    close(out.attentions[1][1], ref.attentions[1][1])


def test_xglm_three_input_formats_agree(xglm):
    model = xglm[2]
    by_keyword = model(input_ids=IDS, attention_mask=MASK, position_ids=POS).logits
    as_list = model([IDS, MASK, POS]).logits
    as_dict = model({"input_ids": IDS, "attention_mask": MASK, "position_ids": POS}).logits
    close(as_list, by_keyword, atol=0)
    close(as_dict, by_keyword, atol=0)
    with pytest.raises(ValueError, match="unknown input names"):
        model({"input_ids": IDS, "attention_masks": MASK})


def test_xglm_cached_steps_equal_full_forward(xglm):
    model = xglm[2]
    full = model(IDS, attention_mask=MASK, position_ids=POS).logits
    out = model(IDS[:, :4], attention_mask=MASK[:, :4], position_ids=POS[:, :4], use_cache=True)
    assert len(out.past_key_values) == 2 and out.past_key_values[0][0].shape == (2, 4, 4, 8)
    for t in (4, 5):
        out = model(IDS[:, t:t + 1], attention_mask=MASK[:, :t + 1], position_ids=POS[:, t:t + 1],
                    past_key_values=out.past_key_values, use_cache=True)
        close(out.logits[:, 0], full[:, t])


def test_xglm_greedy_generation_token_identical_to_pytorch(xglm):
    _, pt, model = xglm
    with torch.no_grad():
        ref = pt.generate(torch.tensor(IDS), attention_mask=torch.tensor(MASK), max_new_tokens=5,
                          do_sample=False).numpy()
    np.testing.assert_array_equal(model.generate(IDS, attention_mask=MASK, max_new_tokens=5).numpy(), ref)
    a = model.generate(IDS, attention_mask=MASK, max_new_tokens=3, do_sample=True, top_k=5, seed=1)
    b = model.generate(IDS, attention_mask=MASK, generation_config=GenerationConfig(do_sample=True, top_k=5),
                       max_new_tokens=3, seed=1)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    given = model.generate(IDS, attention_mask=MASK, generation_config=GenerationConfig(max_new_tokens=5))
    np.testing.assert_array_equal(given.numpy(), ref)
    with pytest.raises(TypeError, match=r"TF generate does not support num_beams=2"):
        model.generate(IDS, num_beams=2)
    # Every id of a list-valued eos_token_id ends a row, as in PyTorch.
    stop = int(ref[0, IDS.shape[1]])
    with torch.no_grad():
        ref = pt.generate(torch.tensor(IDS), attention_mask=torch.tensor(MASK), max_new_tokens=5, do_sample=False,
                          eos_token_id=[95, stop], pad_token_id=1).numpy()
    ends = model.generate(IDS, attention_mask=MASK, max_new_tokens=5, eos_token_id=[95, stop], pad_token_id=1)
    assert (ref[0, IDS.shape[1] + 1:] == 1).all()
    np.testing.assert_array_equal(ends.numpy(), ref)


def test_xglm_h5_round_trip_and_base_model(xglm, tmp_path):
    path, pt, model = xglm
    model.save_pretrained(tmp_path)
    assert (tmp_path / "tf_model.h5").exists()
    again = TFXGLMForCausalLM.from_pretrained(tmp_path)
    close(again(IDS, attention_mask=MASK).logits, model(IDS, attention_mask=MASK).logits, atol=0)
    base = TFXGLMModel.from_pretrained(tmp_path)  # head h5 -> base model
    with torch.no_grad():
        ref = pt.model(torch.tensor(IDS), attention_mask=torch.tensor(MASK)).last_hidden_state
    close(base(IDS, attention_mask=MASK).last_hidden_state, ref, REAL)
    close(base(IDS, attention_mask=MASK, return_dict=False)[0], ref, REAL)


def test_xglm_dropout_only_in_training(xglm):
    model = xglm[2]
    a = model(IDS, attention_mask=MASK, training=False).logits
    b = model(IDS, attention_mask=MASK, training=True).logits
    close(model(IDS, attention_mask=MASK).logits, a, atol=0)
    assert not np.allclose(a.numpy(), b.numpy())


def test_xglm_cross_attention_matches_pytorch(tmp_path):
    enc, enc_mask, ref = cross_attention_reference(tmp_path)
    model = TFXGLMModel.from_pretrained(tmp_path)
    out = model(IDS, attention_mask=MASK, encoder_hidden_states=enc, encoder_attention_mask=enc_mask,
                output_attentions=True)
    close(out.last_hidden_state, ref.last_hidden_state, REAL)
    close(out.cross_attentions[0][1], ref.cross_attentions[0][1])


def test_xglm_bad_inputs_name_the_culprit(xglm, tmp_path):
    model = xglm[2]
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(IDS, attention_mask=MASK[:, :3])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(IDS + 100)
    with pytest.raises(TypeError, match="unexpected arguments"):
        model(IDS, attention_masks=MASK)
    with pytest.raises(ValueError, match="cross-attention"):
        model(IDS, encoder_hidden_states=np.zeros((2, 2, 32), np.float32))
    XGLMConfig(vocab_size=32, d_model=16, ffn_dim=16, num_layers=1, attention_heads=2).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        TFXGLMModel.from_pretrained(tmp_path)


# ---------------------------------------------------------------- XLM


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name", ["XLMModel", "XLMWithLMHeadModel", "XLMForSequenceClassification",
                                  "XLMForTokenClassification", "XLMForQuestionAnsweringSimple"])
def test_xlm_heads_match_pytorch(name, causal, tmp_path):
    pt, model = pt_and_tf(name, xlm_config(causal=causal), tmp_path)
    with torch.no_grad():
        ref = pt(torch.tensor(XLM_IDS), attention_mask=torch.tensor(XLM_MASK), langs=torch.tensor(LANGS),
                 output_hidden_states=True, return_dict=False)
    out = model(XLM_IDS, attention_mask=XLM_MASK, langs=LANGS, output_hidden_states=True, return_dict=False)
    assert len(out) == len(ref)
    for ours, theirs in zip(out[:-1], ref[:-1]):
        close(ours, theirs)
    for ours, theirs in zip(out[-1], ref[-1]):  # hidden states
        close(ours, theirs)


def test_xlm_lengths_token_types_and_pad_derived_mask_match_pytorch(tmp_path):
    pt, model = pt_and_tf("XLMModel", xlm_config(), tmp_path)
    types = np.array([[0, 0, 0, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        by_lengths = pt(torch.tensor(XLM_IDS), lengths=torch.tensor([4, 6]), token_type_ids=torch.tensor(types))
        by_pad = pt(torch.tensor(XLM_IDS))
    close(model(XLM_IDS, lengths=np.array([4, 6]), token_type_ids=types).last_hidden_state,
          by_lengths.last_hidden_state)
    close(model(XLM_IDS).last_hidden_state, by_pad.last_hidden_state)


def test_xlm_losses_match_pytorch(tmp_path):
    config = xlm_config()
    cases = [
        ("XLMForSequenceClassification", {"labels": np.array([1, 0])}),
        ("XLMForTokenClassification", {"labels": np.array([[0, 1, 1, 0, -100, -100], [1, 1, 0, 0, 1, 0]])}),
        ("XLMForQuestionAnsweringSimple", {"start_positions": np.array([1, 2]), "end_positions": np.array([3, 9])}),
    ]
    for i, (name, labels) in enumerate(cases):
        pt, model = pt_and_tf(name, config, tmp_path / str(i))
        with torch.no_grad():
            ref = pt(torch.tensor(XLM_IDS), attention_mask=torch.tensor(XLM_MASK),
                     **{k: torch.tensor(v) for k, v in labels.items()}).loss
        close(model(XLM_IDS, attention_mask=XLM_MASK, **labels).loss[0], ref)


def test_xlm_multiple_choice_matches_pytorch(tmp_path):
    pt, model = pt_and_tf("XLMForMultipleChoice", xlm_config(), tmp_path)
    ids, mask = np.stack([XLM_IDS, XLM_IDS[::-1]]), np.stack([XLM_MASK, XLM_MASK[::-1]])  # (2 rows, 2 choices, 6)
    with torch.no_grad():
        ref = pt(torch.tensor(ids), attention_mask=torch.tensor(mask), labels=torch.tensor([1, 0]))
    out = model(ids, attention_mask=mask, labels=np.array([1, 0]))
    close(out.logits, ref.logits)
    close(out.loss[0], ref.loss)
    with pytest.raises(ValueError, match="choices"):
        model(XLM_IDS)


def test_xlm_dict_cache_steps_equal_full_forward(tmp_path):
    pt, model = pt_and_tf("XLMWithLMHeadModel", xlm_config(causal=True), tmp_path)
    full = model(XLM_IDS[1:]).logits
    cache = {}
    model(XLM_IDS[1:, :4], cache=cache)
    assert cache["slen"] == 4
    step = model(XLM_IDS[1:, :5], cache=cache).logits  # the whole sequence; only position 4 is computed
    close(step[:, 0], full[:, 4])
    with pytest.raises(ValueError, match="cache already holds"):
        model(XLM_IDS[1:, :5], cache=cache)


def test_xlm_h5_round_trip_list_and_dict_inputs(tmp_path):
    pt, model = pt_and_tf("XLMWithLMHeadModel", xlm_config(), tmp_path / "pt")
    model.save_pretrained(tmp_path / "tf")
    again = tfxlm.TFXLMWithLMHeadModel.from_pretrained(tmp_path / "tf")
    ref = model(XLM_IDS, attention_mask=XLM_MASK, langs=LANGS).logits
    close(again([XLM_IDS, XLM_MASK, LANGS]).logits, ref, atol=0)
    close(again({"input_ids": XLM_IDS, "attention_mask": XLM_MASK, "langs": LANGS}).logits, ref, atol=0)
    names = {w.name.split("/", 1)[1] for w in again.weights}
    assert {"pred_layer_._proj/bias:0", "transformer/attentions_._1/q_lin/kernel:0",
            "transformer/position_embeddings/embeddings:0"} <= names
    base = tfxlm.TFXLMModel.from_pretrained(tmp_path / "tf")
    with torch.no_grad():
        theirs = pt.transformer(torch.tensor(XLM_IDS), attention_mask=torch.tensor(XLM_MASK)).last_hidden_state
    close(base(XLM_IDS, attention_mask=XLM_MASK).last_hidden_state, theirs)


def test_xlm_bad_inputs_name_the_culprit(tmp_path):
    model = tfxlm.TFXLMModel(xlm_config())
    with pytest.raises(ValueError, match="lengths has shape"):
        model(XLM_IDS, lengths=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(XLM_IDS, attention_mask=XLM_MASK[:, :2])
    with pytest.raises(ValueError, match="num_labels == 2"):
        tfxlm.TFXLMForQuestionAnsweringSimple(xlm_config(num_labels=3))
    with pytest.raises(ValueError, match="adaptive softmax"):
        tfxlm.TFXLMWithLMHeadModel(xlm_config(asm=True, asm_cutoffs=[10, 20]))
