"""PreTrainedTokenizerFast (generic, any tokenizers backend) against transformers' PreTrainedTokenizerFast."""

from __future__ import annotations

import json

import pytest
import transformers
from tokenizer_fixtures import bloom_tokenizer_dir, train_bloom_backend, udhr_lines
from tokenizers import Tokenizer, processors

from tongues.tokenization import PreTrainedTokenizerFast, TokenizerFileError

TEXTS = udhr_lines("deu_1996") + udhr_lines("ell_monotonic") + udhr_lines("heb")
ALL_OUTPUTS = dict(
    return_offsets_mapping=True, return_special_tokens_mask=True, return_token_type_ids=True, return_length=True
)
SPECIALS = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>")


def both(backend: Tokenizer, **kwargs):
    return (
        PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs),
        transformers.PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs),
    )


def assert_same_call(ours, theirs, *args, **kwargs):
    a, b = ours(*args, **kwargs), theirs(*args, **kwargs)
    assert dict(a) == dict(b)
    return a, b


POST_PROCESSORS = {
    "template": processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s>:1 $B:1 </s>:1", special_tokens=[("<s>", 1), ("</s>", 2)]
    ),
    "bert": processors.BertProcessing(("</s>", 2), ("<s>", 1)),
    "roberta": processors.RobertaProcessing(("</s>", 2), ("<s>", 1), trim_offsets=False),
    "sequence": processors.Sequence(
        [processors.ByteLevel(trim_offsets=False), processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])]
    ),
}


@pytest.mark.parametrize("name", sorted(POST_PROCESSORS))
def test_post_processors_and_special_token_layout(name):
    backend = train_bloom_backend()
    backend.post_processor = POST_PROCESSORS[name]
    ours, theirs = both(backend, **SPECIALS)
    assert_same_call(ours, theirs, TEXTS, **ALL_OUTPUTS)
    assert_same_call(ours, theirs, TEXTS[0], TEXTS[1], **ALL_OUTPUTS)
    assert_same_call(ours, theirs, ["Kurz", "Short"], TEXTS[2:4], truncation="only_second", max_length=20, padding=True)
    # the layout helpers agree with what the backend produces
    first, second = ours.encode(TEXTS[0], add_special_tokens=False), ours.encode(TEXTS[1], add_special_tokens=False)
    for pair in (None, second):
        full = ours(TEXTS[0], None if pair is None else TEXTS[1], **ALL_OUTPUTS)
        assert ours.build_inputs_with_special_tokens(first, pair) == full["input_ids"]
        assert ours.create_token_type_ids_from_sequences(first, pair) == full["token_type_ids"]
        assert ours.get_special_tokens_mask(first, pair) == full["special_tokens_mask"]
        assert ours.num_special_tokens_to_add(pair is not None) == len(full["input_ids"]) - len(first) - len(pair or [])


def test_missing_post_processor_gets_a_template_like_oracle():
    backend = train_bloom_backend()
    backend.post_processor = None
    ours, theirs = both(backend, **SPECIALS)
    assert_same_call(ours, theirs, TEXTS[0], TEXTS[1], **ALL_OUTPUTS)
    ours, theirs = both(backend, add_bos_token=True, add_eos_token=True, **SPECIALS)
    assert_same_call(ours, theirs, TEXTS, padding=True, **ALL_OUTPUTS)
    assert_same_call(ours, theirs, TEXTS[0], TEXTS[1], **ALL_OUTPUTS)
    ours.add_eos_token = False
    theirs.add_eos_token = False
    assert_same_call(ours, theirs, TEXTS[0], **ALL_OUTPUTS)
    assert ours(TEXTS[0])["input_ids"][0] == ours.bos_token_id


def test_special_tokens_missing_from_backend_are_added_like_oracle():
    backend = train_bloom_backend()
    ours, theirs = both(backend, mask_token="<mask>", additional_special_tokens=["<x>"], **SPECIALS)
    assert ours.get_vocab() == theirs.get_vocab()
    assert ours.mask_token_id == theirs.mask_token_id == 2000
    assert_same_call(ours, theirs, "a <mask> b<x>c", **ALL_OUTPUTS)
    ids = ours.encode("a <mask> b<x>c")
    assert ours.decode(ids, skip_special_tokens=True) == theirs.decode(ids, skip_special_tokens=True)


def test_split_special_tokens():
    backend = train_bloom_backend()
    ours, theirs = both(backend, **SPECIALS)
    for split in (False, True):
        assert_same_call(ours, theirs, "<s>text</s>", split_special_tokens=split)
    assert ours.tokenize("<s>x")[0] == "<s>"
    assert ours.tokenize("<s>x", split_special_tokens=True)[0] != "<s>"
    assert ours.backend_tokenizer.encode_special_tokens is False  # restored after the call


def test_backend_settings_are_restored_and_saved(tmp_path):
    backend = train_bloom_backend()
    backend.enable_truncation(max_length=5)
    backend.enable_padding(pad_id=3, pad_token="<pad>", length=7)
    ours = PreTrainedTokenizerFast(tokenizer_object=backend, **SPECIALS)
    assert len(ours(max(TEXTS, key=len))["input_ids"]) > 7  # per-call settings win over the saved ones
    assert ours.backend_tokenizer.truncation["max_length"] == 5
    assert ours.backend_tokenizer.padding["length"] == 7
    ours(TEXTS, padding=True, truncation=True, max_length=12)
    assert ours.backend_tokenizer.truncation["max_length"] == 5
    ours.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "tokenizer.json").read_text())
    assert saved["truncation"]["max_length"] == 5 and saved["padding"]["strategy"] == {"Fixed": 7}


def test_tokenizer_file_argument_and_single_file_from_pretrained():
    path = f"{bloom_tokenizer_dir()}/tokenizer.json"
    direct = PreTrainedTokenizerFast(tokenizer_file=path, **SPECIALS)
    loaded = PreTrainedTokenizerFast.from_pretrained(path, **SPECIALS)
    assert direct(TEXTS)["input_ids"] == loaded(TEXTS)["input_ids"]
    assert direct.padding_side == "right"  # the folder's config is not read for a single file


def test_batch_encoding_alignment_helpers():
    ours = PreTrainedTokenizerFast.from_pretrained(bloom_tokenizer_dir())
    theirs = transformers.PreTrainedTokenizerFast.from_pretrained(bloom_tokenizer_dir())
    a, b = assert_same_call(ours, theirs, ["Hello world again", "Bonjour"], ["second part", "deux"])
    for method, args in (
        ("token_to_sequence", (0, 3)),
        ("token_to_word", (0, 1)),
        ("word_to_tokens", (0, 1)),
        ("token_to_chars", (0, 1)),
        ("char_to_token", (0, 7)),
        ("word_to_chars", (1, 0)),
        ("char_to_word", (1, 3)),
        ("word_to_tokens", (0, 0, 1)),
    ):
        assert getattr(a, method)(*args) == getattr(b, method)(*args), method
    assert a.n_sequences == 2 and a.is_fast
    assert a[0].ids == a["input_ids"][0]


def test_errors_name_the_culprit(tmp_path):
    with pytest.raises(ValueError, match="tokenizer_file="):
        PreTrainedTokenizerFast()
    with pytest.raises(TypeError, match="tokenizers.Tokenizer"):
        PreTrainedTokenizerFast(tokenizer_object="not a tokenizer")
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"version": "1.0", "model": ')
    with pytest.raises(TokenizerFileError, match=r"tokenizer\.json is not valid JSON"):
        PreTrainedTokenizerFast(tokenizer_file=str(bad))
    bad.write_text('{"version": "1.0", "model": {"type": "Nope"}}')
    with pytest.raises(TokenizerFileError, match=r"tokenizer\.json is not a valid tokenizers serialization"):
        PreTrainedTokenizerFast(tokenizer_file=str(bad))
    with pytest.raises(TokenizerFileError, match="does not exist"):
        PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "missing.json"))

    ours = PreTrainedTokenizerFast.from_pretrained(bloom_tokenizer_dir())
    with pytest.raises(TypeError, match="not token ids"):
        ours([5, 6, 7])
    with pytest.raises(TypeError, match="no_such_option"):
        ours("text", no_such_option=1)
    with pytest.raises(TypeError, match="no_such_option"):
        ours.decode([5, 6], no_such_option=1)
    with pytest.raises(ValueError, match="could not encode"):
        ours("a longer text here", "and a pair", truncation="only_first", max_length=2)


@pytest.mark.parametrize("side", ["left", "right"])
def test_truncation_side_matches_oracle(side):
    ours, theirs = both(train_bloom_backend(), truncation_side=side, **SPECIALS)
    for strategy in ("longest_first", "only_second"):
        kwargs = dict(truncation=strategy, max_length=24, stride=4, return_overflowing_tokens=strategy != "longest_first")
        assert_same_call(ours, theirs, ["Kurz", "Short"], TEXTS[2:4], **kwargs, **ALL_OUTPUTS)
    assert_same_call(ours, theirs, TEXTS, truncation=True, max_length=7, padding="max_length", **ALL_OUTPUTS)


def test_text_target_and_unknown_tokens():
    ours, theirs = both(train_bloom_backend(), **SPECIALS)
    assert_same_call(ours, theirs, TEXTS[:2], text_target=TEXTS[2:4], padding=True)
    assert_same_call(ours, theirs, text_target=TEXTS[0])
    assert ours.convert_tokens_to_ids(["<s>", "not-a-token"]) == [1, 0]
    ours.unk_token = "<never-seen>"
    assert ours.unk_token_id is None
