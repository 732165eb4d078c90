"""XLMTokenizer against the oracle's, on the BPE vocabulary learned from UDHR texts (tests/data/xlm)."""

from __future__ import annotations

import json
import os
import sys
import types

import pytest

transformers = pytest.importorskip("transformers")

from tongues.models.xlm.tokenization_xlm import MissingSegmenterError, XLMTokenizer  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "data")
VOCAB = os.path.join(DATA, "xlm", "vocab.json")
MERGES = os.path.join(DATA, "xlm", "merges.txt")
# UDHR key -> language code; the first ones were used to learn the vocabulary, the last ones were not.
LANGUAGES = {"eng": "en", "fra": "fr", "deu_1996": "de", "spa": "es", "ron_1993": "ro", "rus": "ru",
             "ell_monotonic": "el", "tur": "tr", "vie": "vi", "arb": "ar", "hin": "hi", "pol": "pl",
             "ita": "it", "ces": "cs", "ukr": "uk", "heb": "he", "kor": "ko", "swh": "sw"}


def udhr(key: str, lines: int = 6) -> list[str]:
    with open(os.path.join(DATA, "udhr", f"{key}.txt"), encoding="utf-8") as f:
        return [line.strip() for _, line in zip(range(lines), f)]


@pytest.fixture(scope="module", params=[True, False], ids=["lowercased", "cased"])
def pair(request):
    lower = request.param
    return (XLMTokenizer(VOCAB, MERGES, do_lowercase_and_remove_accent=lower),
            transformers.XLMTokenizer(VOCAB, MERGES, do_lowercase_and_remove_accent=lower))


@pytest.mark.parametrize("key", list(LANGUAGES))
def test_language_specific_tokens_match(pair, key):
    ours, ref = pair
    lang = LANGUAGES[key]
    for line in udhr(key):
        # The reference's tokenize() drops `lang` (it always applies English rules); its _tokenize honours it.
        assert ours.tokenize(line, lang=lang) == ref._tokenize(line, lang=lang)


@pytest.mark.parametrize("key", list(LANGUAGES))
def test_ids_and_decoding_match(pair, key):
    ours, ref = pair
    lines = udhr(key)
    mine, theirs = ours(lines), ref(lines)
    assert mine["input_ids"] == theirs["input_ids"]
    assert mine["attention_mask"] == theirs["attention_mask"]
    for ids in theirs["input_ids"]:
        assert ours.decode(ids) == ref.decode(ids)
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)
        assert ours.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(ids)


def test_pairs_token_types_special_masks_and_padding(pair):
    ours, ref = pair
    first, second = udhr("eng", 3), udhr("fra", 3)
    options = dict(return_token_type_ids=True, return_special_tokens_mask=True, padding=True)
    mine, theirs = ours(first, second, **options), ref(first, second, **options)
    assert dict(mine) == dict(theirs)
    single = dict(return_token_type_ids=True, return_special_tokens_mask=True)
    assert dict(ours(first[0], **single)) == dict(ref(first[0], **single))
    ids = ref(first[1])["input_ids"]
    assert ours.get_special_tokens_mask(ids, already_has_special_tokens=True) == ref.get_special_tokens_mask(
        ids, already_has_special_tokens=True)
    a, b = [20, 21, 22], [30, 31]
    assert ours.build_inputs_with_special_tokens(a, b) == ref.build_inputs_with_special_tokens(a, b) == [
        0, 20, 21, 22, 1, 30, 31, 1]
    assert ours.create_token_type_ids_from_sequences(a, b) == [0, 0, 0, 0, 0, 1, 1, 1]
    truncated = dict(truncation=True, max_length=12)
    assert ours(first, second, **truncated)["input_ids"] == ref(first, second, **truncated)["input_ids"]


def test_special_tokens_and_vocabulary(pair):
    ours, ref = pair
    for name in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        assert getattr(ours, name) == getattr(ref, name), name
        assert getattr(ours, name + "_id") == getattr(ref, name + "_id"), name
    assert ours.all_special_ids == ref.all_special_ids
    assert ours.get_vocab() == ref.get_vocab()
    assert len(ours) == len(ref) and ours.vocab_size == ref.vocab_size
    text = "<special1> is the mask, <s> and </s> stay whole; unknown: 你好 ☃"
    assert ours(text)["input_ids"] == ref(text)["input_ids"]
    assert ours.tokenize(text) == ref.tokenize(text)


def test_bypass_and_romanian_preprocessing(pair):
    ours, ref = pair
    text = "Orice persoană are dreptul la viaţă , ştiinţă şi ŞŢIINŢĂ"
    assert ours.tokenize(text, bypass_tokenizer=True) == ref._tokenize(text, bypass_tokenizer=True)
    assert ours.tokenize(text, lang="ro") == ref._tokenize(text, lang="ro")
    assert ours.words(text, "ro")[-3:] == (["stiinta", "si", "stiinta"] if ours.do_lower_case
                                           else ["stiinta", "si", "STIINTA"])


def test_unicode_punctuation_and_non_printing_characters(pair):
    ours, ref = pair
    text = "「Ｈｅｌｌｏ」，世界。 Tab\there\u200b zero-width…（１２３）？％ “quoted” ‘single’"
    assert ours.tokenize(text) == ref._tokenize(text)
    assert ours(text)["input_ids"] == ref(text)["input_ids"]


def test_save_and_load_both_ways(tmp_path):
    lang2id = {"en": 0, "fr": 1, "ro": 2}
    ours = XLMTokenizer(VOCAB, MERGES, lang2id=lang2id, id2lang={0: "en", 1: "fr", 2: "ro"})
    ours.save_pretrained(str(tmp_path / "ours"))
    assert {"merges.txt", "tokenizer_config.json", "vocab.json"} <= set(os.listdir(tmp_path / "ours"))
    ref = transformers.XLMTokenizer.from_pretrained(str(tmp_path / "ours"))
    text = udhr("fra", 2)
    assert ours(text)["input_ids"] == ref(text)["input_ids"]
    assert ref.lang2id == lang2id
    with open(tmp_path / "ours" / "vocab.json", encoding="utf-8") as f:
        assert json.load(f) == ours.encoder
    ref.save_pretrained(str(tmp_path / "ref"))
    again = XLMTokenizer.from_pretrained(str(tmp_path / "ref"))
    assert again(text)["input_ids"] == ref(text)["input_ids"]
    assert again.lang2id == lang2id and again.id2lang == {0: "en", 1: "fr", 2: "ro"}
    with open(tmp_path / "ours" / "merges.txt", encoding="utf-8") as a, open(MERGES, encoding="utf-8") as b:
        assert a.read() == b.read()


def _stub_module(monkeypatch, name, **attributes):
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)


def test_chinese_and_thai_segmenters_are_used_like_the_reference(monkeypatch):
    ours, ref = XLMTokenizer(VOCAB, MERGES), transformers.XLMTokenizer(VOCAB, MERGES)
    _stub_module(monkeypatch, "rjieba", cut=lambda text: list(text.replace(" ", "")))
    _stub_module(monkeypatch, "pythainlp", word_tokenize=lambda text: text.split("x"))
    zh, th = "人人生而自由，在尊严和权利上一律平等。", "ab x cd x e"
    assert ours.tokenize(zh, lang="zh") == ref._tokenize(zh, lang="zh")
    assert ours.tokenize(th, lang="th") == ref._tokenize(th, lang="th")


def test_japanese_segmenter_is_used(monkeypatch, tmp_path):
    model = tmp_path / "local" / "share" / "kytea" / "model.bin"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"")
    monkeypatch.setenv("HOME", str(tmp_path))
    seen = {}

    class Kytea:
        def __init__(self, options):
            seen["options"] = options

        def getWS(self, text):
            return text.split("の")

    _stub_module(monkeypatch, "Mykytea", Mykytea=Kytea)
    ours = XLMTokenizer(VOCAB, MERGES)
    assert ours.words("Ab の cd", lang="ja") == ["ab", "cd"]
    assert ours.tokenize("ab の cd", lang="ja") == ours.bpe("ab") + ours.bpe("cd")
    assert seen["options"] == f"-model {model}"


@pytest.mark.parametrize("lang, package", [("zh", "rjieba"), ("th", "pythainlp"), ("ja", "Mykytea")])
def test_missing_segmenter_gives_an_install_hint(monkeypatch, lang, package):
    monkeypatch.setitem(sys.modules, package, None)  # makes the import fail, installed or not
    tokenizer = XLMTokenizer(VOCAB, MERGES)
    with pytest.raises(MissingSegmenterError, match=f"lang='{lang}'.*(pip install|kytea)"):
        tokenizer.tokenize("text", lang=lang)
    assert issubclass(MissingSegmenterError, ImportError)


def test_pickle_round_trip():
    import pickle

    ours = XLMTokenizer(VOCAB, MERGES)
    ours.tokenize("warm the caches", lang="fr")
    again = pickle.loads(pickle.dumps(ours))
    assert again.tokenize("L'ami de Marie", lang="fr") == ours.tokenize("L'ami de Marie", lang="fr")
