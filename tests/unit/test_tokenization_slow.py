"""PreTrainedTokenizer (the pure-Python base) against transformers' PreTrainedTokenizer.

One toy word-level tokenizer is written once as a mixin and mounted on both bases, so every
difference comes from the base classes: added-token splitting (lstrip/rstrip/single_word), special
tokens, truncation strategies with strides and overflow, padding, tensors, decoding, save/load.
"""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch
import transformers
from tokenizer_fixtures import udhr_lines
from tokenizers import AddedToken

from tongues.tokenization import PreTrainedTokenizer, TokenizerFileError, Trie

SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]
LANGUAGES = ["eng", "fra", "rus", "hin", "cmn_hans", "arb"]


def _words() -> list[str]:
    words = []
    for language in LANGUAGES:
        for line in udhr_lines(language, count=4, start=1):
            words += line.split()
    return sorted(set(words))


VOCAB = {token: index for index, token in enumerate(SPECIALS + _words()[:300])}


class WordLevelToy:
    """Whitespace words; unknown words become <unk>; <s> A </s> (</s> B </s>) around sequences."""

    vocab_files_names = {"vocab_file": "vocab.json"}

    def __init__(self, vocab_file=None, vocab=None, **kwargs):
        if vocab_file is not None:
            with open(vocab_file, encoding="utf-8") as handle:
                vocab = json.load(handle)
        self.encoder = dict(vocab)
        self.decoder = {index: token for token, index in self.encoder.items()}
        kwargs.setdefault("bos_token", "<s>")
        kwargs.setdefault("eos_token", "</s>")
        kwargs.setdefault("unk_token", "<unk>")
        kwargs.setdefault("pad_token", "<pad>")
        super().__init__(**kwargs)

    @property
    def vocab_size(self):
        return len(self.encoder)

    def get_vocab(self):
        return dict(self.encoder, **self.added_tokens_encoder)

    def _tokenize(self, text, **kwargs):
        return text.split()

    def _convert_token_to_id(self, token):
        return self.encoder.get(token, self.encoder["<unk>"])

    def _convert_id_to_token(self, index):
        return self.decoder.get(index, "<unk>")

    def convert_tokens_to_string(self, tokens):
        return " ".join(tokens)

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        bos, eos = [self.bos_token_id], [self.eos_token_id]
        if token_ids_1 is None:
            return bos + token_ids_0 + eos
        return bos + token_ids_0 + eos + eos + token_ids_1 + eos

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1, 1] + [0] * len(token_ids_1) + [1]

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None):
        if token_ids_1 is None:
            return [0] * (len(token_ids_0) + 2)
        return [0] * (len(token_ids_0) + 2) + [1] * (len(token_ids_1) + 2)

    def save_vocabulary(self, save_directory, filename_prefix=None):
        path = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + "vocab.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.encoder, handle, ensure_ascii=False)
        return (path,)


class OursToy(WordLevelToy, PreTrainedTokenizer):
    pass


class TheirsToy(WordLevelToy, transformers.PreTrainedTokenizer):
    pass


def pair_of(**kwargs):
    return OursToy(vocab=VOCAB, **kwargs), TheirsToy(vocab=VOCAB, **kwargs)


def assert_same(a, b):
    assert set(a.keys()) == set(b.keys()), (sorted(a.keys()), sorted(b.keys()))
    for key in a.keys():
        left, right = a[key], b[key]
        if isinstance(left, torch.Tensor):
            assert torch.equal(left, right), key
        elif isinstance(left, np.ndarray):
            np.testing.assert_array_equal(left, right, err_msg=key)
        else:
            assert left == right, key


TEXTS = [line for language in LANGUAGES for line in udhr_lines(language, count=2, start=1)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        dict(add_special_tokens=False),
        dict(padding=True, return_special_tokens_mask=True, return_token_type_ids=True, return_length=True),
        dict(padding=True, padding_side="left", return_tensors="pt"),
        dict(padding="max_length", max_length=80, truncation=True, pad_to_multiple_of=16, return_tensors="np"),
        dict(truncation=True, max_length=9, return_special_tokens_mask=True),
        dict(max_length=7),  # a bare max_length truncates
    ],
    ids=lambda kwargs: ",".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults",
)
def test_call_matches_oracle(kwargs):
    ours, theirs = pair_of()
    assert_same(ours(TEXTS, **kwargs), theirs(TEXTS, **kwargs))
    assert_same(ours(TEXTS[0], **kwargs), theirs(TEXTS[0], **kwargs))


def test_overflow_matches_oracle():
    ours, theirs = pair_of()
    kwargs = dict(truncation=True, max_length=9, stride=2, return_overflowing_tokens=True)
    long_texts = [text for text in TEXTS if len(text.split()) > 8]
    assert_same(ours(long_texts, **kwargs), theirs(long_texts, **kwargs))
    assert_same(ours(long_texts[0], **kwargs), theirs(long_texts[0], **kwargs))
    # transformers 5 fails on a batch where only some rows overflow; here the others report an empty overflow
    batch = ours(["All human beings", long_texts[0]], **kwargs)
    assert batch["overflowing_tokens"][0] == [] and batch["num_truncated_tokens"][0] == 0
    assert batch["overflowing_tokens"][1] == ours(long_texts[0], **kwargs)["overflowing_tokens"]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("strategy", ["longest_first", "only_first", "only_second"])
def test_pair_truncation_matches_oracle(strategy, side):
    ours, theirs = pair_of(truncation_side=side)
    pairs = list(zip(TEXTS[::2], TEXTS[1::2]))
    kwargs = dict(truncation=strategy, max_length=30, return_token_type_ids=True, return_special_tokens_mask=True)
    assert_same(ours(pairs, padding=True, **kwargs), theirs(pairs, padding=True, **kwargs))
    first, second = zip(*pairs)
    assert_same(ours(list(first), list(second), **kwargs), theirs(list(first), list(second), **kwargs))
    if strategy != "longest_first":
        kwargs.update(stride=3, return_overflowing_tokens=True)
        assert_same(ours(*pairs[0], **kwargs), theirs(*pairs[0], **kwargs))
    else:
        with pytest.raises(ValueError, match="only_first"):
            ours(*pairs[0], return_overflowing_tokens=True, **kwargs)


def test_pretokenized_and_ids_inputs():
    ours, theirs = pair_of()
    words = [text.split() for text in TEXTS[:3]]
    assert_same(ours(words, is_split_into_words=True), theirs(words, is_split_into_words=True))
    assert_same(ours(words[0], is_split_into_words=True), theirs(words[0], is_split_into_words=True))
    ids = ours.convert_tokens_to_ids(TEXTS[0].split())
    assert ours.encode(ids) == theirs.encode(ids)
    assert ours.encode(TEXTS[0], TEXTS[1]) == theirs.encode(TEXTS[0], TEXTS[1])


def test_added_tokens_split_like_oracle():
    ours, theirs = pair_of()
    added = [
        AddedToken("<L>", lstrip=True),
        AddedToken("<R>", rstrip=True),
        AddedToken("mot", single_word=True),
        "<plain>",
        "<plain_longer>",
    ]
    for tokenizer in (ours, theirs):
        assert tokenizer.add_tokens(added) == 5
        assert tokenizer.add_special_tokens({"additional_special_tokens": ["<sep2>"]}) == 1
    assert ours.get_vocab() == theirs.get_vocab()
    assert len(ours) == len(theirs)
    texts = [
        "All human   <L>  beings <R>   are born",
        "motif mot <plain_longer> <plain><plain_longer>x free",
        "un mot, motmot mot<sep2>mot",
        "<s> Tous les êtres</s><pad>",
    ]
    for text in texts:
        assert ours.tokenize(text) == theirs.tokenize(text)
        assert ours.tokenize(text, split_special_tokens=True) == theirs.tokenize(text, split_special_tokens=True)
    assert_same(ours(texts, padding=True), theirs(texts, padding=True))
    ids = ours(texts[2])["input_ids"]
    for skip in (False, True):
        assert ours.decode(ids, skip_special_tokens=skip) == theirs.decode(ids, skip_special_tokens=skip)
    assert ours.all_special_tokens == theirs.all_special_tokens
    assert ours.additional_special_tokens == theirs.extra_special_tokens == ["<sep2>"]


def test_special_tokens_outside_vocab_are_appended():
    ours, theirs = pair_of(mask_token="<mask>", additional_special_tokens=["<x1>", "<x2>"])
    assert ours.get_vocab() == theirs.get_vocab()
    assert ours.mask_token_id == theirs.mask_token_id == len(VOCAB)
    assert ours.additional_special_tokens_ids == [len(VOCAB) + 1, len(VOCAB) + 2]
    assert ours.all_special_ids == theirs.all_special_ids
    word = list(VOCAB)[10]
    assert ours.decode(ours.encode(f"<x1> {word} <mask>"), skip_special_tokens=True) == word


def test_decode_and_batch_decode_match_oracle():
    ours, theirs = pair_of()
    batch = ours(TEXTS, padding=True, return_tensors="pt")["input_ids"]
    for skip in (False, True):
        assert ours.batch_decode(batch, skip_special_tokens=skip) == theirs.batch_decode(batch, skip_special_tokens=skip)
        assert ours.decode(batch[0], skip_special_tokens=skip) == theirs.decode(batch[0], skip_special_tokens=skip)
    text = "Hello , world . do n't"
    ids = ours.encode(text, add_special_tokens=False)
    assert ours.decode(ids, clean_up_tokenization_spaces=True) == theirs.decode(ids, clean_up_tokenization_spaces=True)


def test_pad_matches_oracle():
    ours, theirs = pair_of()
    rows = [ours(text, return_special_tokens_mask=True) for text in TEXTS[:4]]
    for kwargs in (
        dict(),
        dict(padding="max_length", max_length=90),
        dict(pad_to_multiple_of=8, padding_side="left"),
        dict(return_tensors="pt"),
    ):
        assert_same(ours.pad([dict(row) for row in rows], **kwargs), theirs.pad([dict(row) for row in rows], **kwargs))
    as_tensors = ours(TEXTS[:1], return_tensors="pt")
    assert isinstance(ours.pad(as_tensors)["input_ids"], torch.Tensor)


def test_save_and_load_round_trip(tmp_path):
    ours, theirs = pair_of(model_max_length=128, padding_side="left")
    ours.add_tokens([AddedToken("<L>", lstrip=True), "<plain>"])
    ours.add_special_tokens({"additional_special_tokens": ["<sep2>"]})
    ours.save_pretrained(tmp_path / "ours")
    assert sorted(os.listdir(tmp_path / "ours")) == ["special_tokens_map.json", "tokenizer_config.json", "vocab.json"]
    text = "All <L> human <plain> beings<sep2>"
    for loaded in (OursToy.from_pretrained(tmp_path / "ours"), TheirsToy.from_pretrained(tmp_path / "ours")):
        assert (loaded.model_max_length, loaded.padding_side) == (128, "left")
        assert loaded.tokenize(text) == ours.tokenize(text)
        assert loaded(text)["input_ids"] == ours(text)["input_ids"]
        assert loaded.decode(ours.encode(text), skip_special_tokens=True) == ours.decode(
            ours.encode(text), skip_special_tokens=True
        )
    theirs.add_tokens([AddedToken("<L>", lstrip=True), "<plain>"])
    theirs.add_special_tokens({"additional_special_tokens": ["<sep2>"]})
    theirs.save_pretrained(tmp_path / "theirs")
    loaded = OursToy.from_pretrained(tmp_path / "theirs")
    assert loaded.tokenize(text) == theirs.tokenize(text)
    assert loaded(text)["input_ids"] == theirs(text)["input_ids"]
    assert loaded.additional_special_tokens == ["<sep2>"]


def test_offsets_need_a_fast_tokenizer():
    ours, _ = pair_of()
    with pytest.raises(NotImplementedError, match="fast tokenizer"):
        ours("All human beings", return_offsets_mapping=True)


def test_unknown_keyword_is_refused():
    ours, _ = pair_of()
    with pytest.raises(TypeError, match="not_an_option"):
        ours("All human beings", not_an_option=True)


def test_missing_vocabulary_file_is_named(tmp_path):
    ours, _ = pair_of()
    ours.save_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text('{"padding_side": "left",}')
    with pytest.raises(TokenizerFileError, match=r"tokenizer_config\.json.*line 1"):
        OursToy.from_pretrained(tmp_path)


# -- the trie ---------------------------------------------------------------------------------


def test_trie_examples():
    trie = Trie(["[CLS]", "extra_id_1", "extra_id_100"])
    assert trie.split("[CLS] This is a extra_id_100") == ["[CLS]", " This is a ", "extra_id_100"]
    assert trie.split("extra_id_1extra_id_100x") == ["extra_id_1", "extra_id_100", "x"]
    assert Trie(["ab", "bcd"]).split("abcd") == ["ab", "cd"]
    assert Trie(["abcd", "bc"]).split("abcx") == ["a", "bc", "x"]
    assert Trie().split("nothing") == ["nothing"]
    assert Trie(["a"]).split("") == []


def test_trie_matches_oracle_on_random_strings():
    rng = random.Random(0)
    alphabet = "ab<>/ "
    for _ in range(300):
        words = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 5))}
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        expected = transformers.tokenization_python.Trie()
        for word in words:
            expected.add(word)
        assert Trie(words).split(text) == expected.split(text), (words, text)
