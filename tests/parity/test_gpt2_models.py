"""GPT-2 (the fifth family, mGPT's architecture) against the oracle (transformers 5.23): every head, padded
batches, losses, caches, generation, round trips and the tokenizer."""

from __future__ import annotations

import json

import pytest
import torch
import transformers

from oracle import assert_close, left_padded, right_padded, run_both
from tongues import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DynamicCache,
    GPT2ForSequenceClassification,
    GPT2ForTokenClassification,
    GPT2LMHeadModel,
    GPT2Model,
)

VOCAB = 89
CONFIGS = {
    "base": dict(n_embd=32, n_layer=2, n_head=4),
    "inner-relu-inverse-layer-scale": dict(n_embd=48, n_layer=3, n_head=6, n_inner=40, activation_function="relu",
                                           scale_attn_by_inverse_layer_idx=True),
    "unscaled-untied": dict(n_embd=32, n_layer=2, n_head=2, scale_attn_weights=False, tie_word_embeddings=False),
}
PAIRS = [
    (transformers.GPT2Model, GPT2Model),
    (transformers.GPT2LMHeadModel, GPT2LMHeadModel),
    (transformers.GPT2ForSequenceClassification, GPT2ForSequenceClassification),
    (transformers.GPT2ForTokenClassification, GPT2ForTokenClassification),
]


def oracle_config(**overrides):
    kwargs = dict(vocab_size=VOCAB, n_positions=40, pad_token_id=0, bos_token_id=1, eos_token_id=2, num_labels=3,
                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    kwargs.update(overrides)
    return transformers.GPT2Config(**kwargs)


def pair(tmp_path, ref_cls, ours_cls, **cfg):
    torch.manual_seed(0)
    ref = ref_cls(oracle_config(**cfg)).eval()
    ref.save_pretrained(tmp_path)
    return ref, ours_cls.from_pretrained(tmp_path).eval()


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("ref_cls,ours_cls", PAIRS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("padding", ["left", "right"])
def test_outputs_match_oracle(tmp_path, name, ref_cls, ours_cls, padding):
    ref, ours = pair(tmp_path, ref_cls, ours_cls, **CONFIGS[name])
    ids, mask = (left_padded if padding == "left" else right_padded)(3, 7, VOCAB, [0, 2, 4])
    kwargs = dict(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    if ours_cls is GPT2LMHeadModel:
        # Only tokens predicted from a real position count (a pad's logits are unspecified).
        predicted_from_real = torch.nn.functional.pad(mask, (1, 0))[:, :-1]
        kwargs["labels"] = ids.masked_fill((mask == 0) | (predicted_from_real == 0), -100)
    elif ours_cls is GPT2ForSequenceClassification:
        kwargs["labels"] = torch.tensor([0, 2, 1])
    elif ours_cls is GPT2ForTokenClassification:
        kwargs["labels"] = torch.randint(0, 3, ids.shape).masked_fill(mask == 0, -100)
    with torch.no_grad():
        r, o = ref(**kwargs), ours(**kwargs)
    assert list(o.keys()) == list(r.keys())
    # A padded position sees no real key; what it holds is unspecified, so real tokens are compared.
    real_queries = mask[:, None, :, None].to(torch.float32)  # (B, 1, T, 1)
    for key in r.keys():
        if key in ("hidden_states", "attentions"):
            for a, b in zip(o[key], r[key]):
                if key == "attentions":
                    assert_close(a * real_queries, b * real_queries)
                else:
                    assert_close(a, b, mask=mask)
        elif key == "past_key_values":
            ref_layers = [(layer.keys, layer.values) for layer in r[key].layers]
            for (ka, va), (kb, vb) in zip(o[key].to_legacy_cache(), ref_layers, strict=True):
                assert_close(ka * real_queries, kb * real_queries)
                assert_close(va * real_queries, vb * real_queries)
        elif key == "cross_attentions":
            assert o[key] == r[key] == ()
        elif torch.is_tensor(r[key]) and r[key].dim() >= 2 and tuple(r[key].shape[:2]) == tuple(mask.shape):
            assert_close(o[key], r[key], mask=mask)
        else:
            assert_close(o[key], r[key])


@pytest.mark.parametrize("name", CONFIGS)
def test_state_dict_keys_and_shapes_match_oracle(tmp_path, name):
    ref, ours = pair(tmp_path, transformers.GPT2LMHeadModel, GPT2LMHeadModel, **CONFIGS[name])
    ref_state = {k: v.shape for k, v in ref.state_dict().items() if not k.endswith((".attn.bias", ".masked_bias"))}
    assert {k: v.shape for k, v in ours.state_dict().items()} == ref_state  # Conv1D weights stay (in, out)


def test_save_pretrained_loads_in_the_oracle(tmp_path):
    ref, ours = pair(tmp_path / "a", transformers.GPT2LMHeadModel, GPT2LMHeadModel, **CONFIGS["base"])
    ours.save_pretrained(tmp_path / "b")
    back = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "b").eval()
    ids = torch.randint(1, VOCAB, (2, 6))
    with torch.no_grad():
        assert_close(back(ids).logits, ref(ids).logits)


@torch.no_grad()
def test_cached_steps_match_oracle(tmp_path):
    ref, ours = pair(tmp_path, transformers.GPT2LMHeadModel, GPT2LMHeadModel, **CONFIGS["base"])
    ids = torch.randint(1, VOCAB, (2, 9))
    r = ref(ids[:, :5], use_cache=True)
    o = ours(ids[:, :5], use_cache=True)
    assert isinstance(o.past_key_values, DynamicCache)
    r2 = ref(ids[:, 5:], past_key_values=r.past_key_values)
    o2 = ours(ids[:, 5:], past_key_values=o.past_key_values)
    assert_close(o2.logits, r2.logits)


@pytest.mark.parametrize("name", CONFIGS)
def test_greedy_and_beam_tokens_identical(tmp_path, name):
    ref, ours = pair(tmp_path, transformers.GPT2LMHeadModel, GPT2LMHeadModel, **CONFIGS[name])
    ids, mask = left_padded(3, 6, VOCAB, [0, 1, 3], low=3)
    for kwargs in (dict(do_sample=False), dict(do_sample=False, num_beams=3)):
        got, want = run_both((ref, ours), ids, attention_mask=mask, max_new_tokens=8, pad_token_id=0, **kwargs)
        assert torch.equal(got, want)


def test_auto_classes_and_learned_position_limit(tmp_path):
    ref, _ = pair(tmp_path, transformers.GPT2LMHeadModel, GPT2LMHeadModel, **CONFIGS["base"])
    ours = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert type(ours) is GPT2LMHeadModel
    with pytest.raises(ValueError, match="n_positions"):
        ours(torch.randint(1, VOCAB, (1, 41)))


def test_fast_tokenizer_matches_oracle_from_vocab_and_merges(tmp_path):
    vocab = {t: i for i, t in enumerate(["<|endoftext|>", "H", "e", "l", "o", "Ġ", "w", "r", "d", "!", "He", "ll",
                                         "llo", "Hello", "Ġw", "or", "ld", "Ġwor", "Ġworld", "1", "2", "'", "s"])}
    merges = ["H e", "l l", "ll o", "He llo", "Ġ w", "o r", "l d", "Ġw or", "Ġwor ld"]
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    ref = transformers.GPT2TokenizerFast.from_pretrained(tmp_path)
    ref.save_pretrained(tmp_path / "saved")  # tokenizer.json + tokenizer_config.json
    for ours in (AutoTokenizer.from_pretrained(tmp_path / "saved"),
                 type(AutoTokenizer.from_pretrained(tmp_path / "saved"))(vocab_file=str(tmp_path / "vocab.json"),
                                                                          merges_file=str(tmp_path / "merges.txt"))):
        for text in ["Hello world!", "Hello  world 12's", "Hello<|endoftext|>world"]:
            assert ours(text)["input_ids"] == ref(text)["input_ids"]
            assert ours.decode(ours(text)["input_ids"]) == ref.decode(ref(text)["input_ids"])
        assert ours.eos_token == "<|endoftext|>" and ours.pad_token is None
