"""Every bad input of the XLM config, models and tokenizer gets an error naming the culprit."""

from __future__ import annotations

import os

import pytest
import torch
from xlm_helpers import WORDS, config_kwargs

import tongues
from tongues.configuration import ConfigError
from tongues.models.xlm.tokenization_xlm import XLMTokenizer

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "xlm")


def model(cls=tongues.XLMModel, **overrides):
    return cls(tongues.XLMConfig(**config_kwargs(**overrides))).eval()


@pytest.mark.parametrize("overrides, match", [
    (dict(emb_dim=30, n_heads=4), "emb_dim=30 must be divisible by n_heads=4"),
    (dict(summary_type="pooled"), "summary_type must be one of"),
    (dict(n_langs=0), "n_langs must be a positive integer"),
    (dict(dropout=1.5), "dropout must be a probability"),
    (dict(asm=True), r"asm_cutoffs must increase strictly and lie in \[1, vocab_size - 1\]"),
    (dict(asm=True, asm_cutoffs=[30, 20]), "asm_cutoffs must increase"),
    (dict(asm=True, asm_cutoffs="10,20"), "asm_cutoffs must be a non-empty list of integers"),
    (dict(asm=True, asm_cutoffs=[10], asm_div_value=0), "asm_div_value must be a positive number"),
])
def test_config_errors(overrides, match):
    with pytest.raises(ConfigError, match=match):
        tongues.XLMConfig(**config_kwargs(**overrides))


def test_decoder_config_is_refused():
    with pytest.raises(ConfigError, match="is_encoder=False"):
        model(is_encoder=False)


def test_config_aliases_and_old_names():
    config = tongues.XLMConfig(n_words=77, emb_dim=16, n_heads=2, eos_index=4)
    assert config.vocab_size == 77 and config.n_words == 77 and config.eos_token_id == 4 and config.eos_index == 4
    assert config.hidden_size == 16 and config.num_attention_heads == 2


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(), ValueError, "exactly one of input_ids or inputs_embeds"),
    (dict(input_ids=torch.tensor([[6, 7, 200]])), ValueError, "token id 200, outside the vocabulary"),
    (dict(input_ids=torch.ones(2, 5, dtype=torch.long) * 6, attention_mask=torch.ones(2, 4)), ValueError,
     r"attention_mask has shape \(2, 4\), expected \(2, 5\)"),
    (dict(input_ids=torch.ones(2, 5, dtype=torch.long) * 6, lengths=torch.tensor([5])), ValueError,
     r"lengths has shape \(1,\), expected \(2,\)"),
    (dict(input_ids=torch.ones(2, 5, dtype=torch.long) * 6, lengths=torch.tensor([5, 6])), ValueError,
     r"lengths holds \[5, 6\]; each must lie in \[0, 5\]"),
    (dict(input_ids=torch.ones(1, 5, dtype=torch.long) * 6, langs=torch.full((1, 5), 3)), ValueError,
     r"language id 3, outside \[0, 3\)"),
    (dict(input_ids=torch.ones(1, 5, dtype=torch.long) * 6, langs=torch.zeros(1, 4, dtype=torch.long)), ValueError,
     r"langs has shape \(1, 4\), expected \(1, 5\)"),
    (dict(input_ids=torch.ones(1, 5, dtype=torch.long) * 6, token_type_ids=torch.zeros(1, 5)), TypeError,
     "token_type_ids must hold integer indices"),
    (dict(input_ids=torch.ones(1, 5, dtype=torch.long) * 6, token_type_ids=torch.full((1, 5), 99)), ValueError,
     r"token_type_ids index the word embeddings and must lie in \[0, 99\)"),
    (dict(input_ids=torch.ones(1, 5, dtype=torch.long) * 6, position_ids=torch.full((1, 5), 40)), ValueError,
     r"position_ids must lie in \[0, 40\)"),
    (dict(input_ids=torch.ones(1, 41, dtype=torch.long) * 6), ValueError, "position table has 40"),
    (dict(input_ids=torch.ones(1, 5, dtype=torch.long) * 6, head_mask=torch.ones(3)), ValueError,
     "head_mask of shape"),
    (dict(input_ids=torch.ones(1, 5, dtype=torch.long) * 6, cache=[1]), TypeError, "cache must be a dict"),
    (dict(input_ids=torch.ones(1, 5, dtype=torch.long) * 6, cache={"slen": -1}), ValueError,
     r'cache\["slen"\] must be a non-negative integer'),
    (dict(input_ids=torch.ones(1, 5, dtype=torch.long) * 6, cache={"slen": 5}), ValueError,
     "the cache already holds 5 positions but the input has 5"),
])
def test_forward_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        model(n_langs=3)(**kwargs)


def test_head_errors():
    x = torch.randint(*WORDS, (2, 4))
    with pytest.raises(ValueError, match="needs config.num_labels == 2"):
        model(tongues.XLMForQuestionAnsweringSimple, num_labels=3)(x)
    with pytest.raises(ValueError, match="start_n_top=3 / end_n_top=2 exceed the sequence length 2"):
        model(tongues.XLMForQuestionAnswering)(x[:, :2])
    with pytest.raises(ValueError, match=r"p_mask has shape \(2, 3\), expected"):
        model(tongues.XLMForQuestionAnswering)(x, p_mask=torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"position index holds 0\.\.7, outside the sequence \[0, 4\)"):
        model(tongues.XLMForQuestionAnswering)(x, cls_index=torch.tensor([0, 7]))
    with pytest.raises(ValueError, match=r"multiple-choice inputs must be \(batch, choices, sequence\)"):
        model(tongues.XLMForMultipleChoice, num_labels=3)(x)
    asm = model(tongues.XLMWithLMHeadModel, asm=True, asm_cutoffs=[20])
    with pytest.raises(ValueError, match="not supported with an adaptive softmax"):
        asm.resize_token_embeddings(120)
    with pytest.raises(ValueError, match=r"labels has shape \(2, 3\), expected \(2, 4\)"):
        asm(x, labels=x[:, :3])


def test_multiple_choice_lengths():
    m = model(tongues.XLMForMultipleChoice, num_labels=3)
    x = torch.randint(*WORDS, (2, 3, 5))
    x[:, :, 4] = 2
    with torch.no_grad():
        by_lengths = m(x, lengths=torch.full((2, 3), 4)).logits
        by_pads = m(x).logits
        ignored = m(x, lengths=torch.tensor([5, 5])).logits
    torch.testing.assert_close(by_lengths, by_pads)
    torch.testing.assert_close(ignored, by_pads)


def test_tokenizer_errors(tmp_path):
    vocab, merges = os.path.join(DATA, "vocab.json"), os.path.join(DATA, "merges.txt")
    bad_vocab = tmp_path / "vocab.json"
    bad_vocab.write_text('{"a": "x"}', encoding="utf-8")
    with pytest.raises(ValueError, match="must hold a JSON object mapping tokens to integer ids"):
        XLMTokenizer(str(bad_vocab), merges)
    with pytest.raises(ValueError, match="cannot read the vocabulary"):
        XLMTokenizer(str(tmp_path / "missing.json"), merges)
    bad_merges = tmp_path / "merges.txt"
    bad_merges.write_text("a b\nlonely\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 2 is 'lonely'; expected two symbols"):
        XLMTokenizer(vocab, str(bad_merges))
    with pytest.raises(ValueError, match="do not describe the same languages"):
        XLMTokenizer(vocab, merges, lang2id={"en": 0, "fr": 1}, id2lang={0: "en", 1: "de"})
    with pytest.raises(ValueError, match="id2lang must map integer ids"):
        XLMTokenizer(vocab, merges, id2lang={"x": "en"})
    tokenizer = XLMTokenizer(vocab, merges, lang2id={"en": 0})
    assert tokenizer.id2lang == {0: "en"}
    with pytest.raises(TypeError, match="unexpected keyword arguments"):
        tokenizer.tokenize("hello", langue="fr")
