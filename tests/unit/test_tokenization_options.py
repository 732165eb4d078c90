"""EncodeOptions: the keywords of an encode call, checked once into a frozen dataclass; the split of base.py."""

from __future__ import annotations

import dataclasses

import pytest
from tokenizer_fixtures import bloom_tokenizer_dir

from tongues.tokenization import (
    EncodeOptions,
    PaddingStrategy,
    PreTrainedTokenizer,
    PreTrainedTokenizerFast,
    TensorType,
    TruncationStrategy,
)
from tongues.tokenization.options import VERY_LARGE_INTEGER


class Words(PreTrainedTokenizer):
    """Whitespace words over a fixed vocabulary; no special tokens around sequences."""

    def __init__(self, **kwargs):
        self.encoder = {"<pad>": 0, "<unk>": 1, "a": 2, "b": 3, "c": 4}
        super().__init__(pad_token="<pad>", unk_token="<unk>", **kwargs)

    @property
    def vocab_size(self):
        return len(self.encoder)

    def get_vocab(self):
        return dict(self.encoder, **self.added_tokens_encoder)

    def _tokenize(self, text):
        return text.split()

    def _convert_token_to_id(self, token):
        return self.encoder.get(token, 1)

    def _convert_id_to_token(self, index):
        return {i: t for t, i in self.encoder.items()}.get(index, "<unk>")


def test_options_are_frozen():
    options = EncodeOptions(padding=True, extra={"lang": "en"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.padding = False
    with pytest.raises(TypeError):
        options.extra["lang"] = "fr"  # a read-only view of the keywords
    assert hash(options) == hash(EncodeOptions(padding="longest"))  # extra is left out of the hash
    assert options == EncodeOptions(padding="longest", extra={"lang": "en"})


def test_user_spellings_become_canonical():
    options = EncodeOptions(padding=True, truncation="only_second", max_length=8, return_tensors="pt")
    assert options.padding is PaddingStrategy.LONGEST
    assert options.truncation is TruncationStrategy.ONLY_SECOND
    assert options.return_tensors is TensorType.PYTORCH
    defaults = EncodeOptions()
    assert defaults.padding is PaddingStrategy.DO_NOT_PAD and defaults.truncation is TruncationStrategy.DO_NOT_TRUNCATE
    assert EncodeOptions(padding=None, truncation=False).truncation is TruncationStrategy.DO_NOT_TRUNCATE
    assert EncodeOptions(truncation=True).truncation is TruncationStrategy.LONGEST_FIRST
    # A bare max_length means "truncate to it"; with truncation=False it does not.
    assert EncodeOptions(max_length=4).truncation is TruncationStrategy.LONGEST_FIRST
    assert EncodeOptions(max_length=4, truncation=False).truncation is TruncationStrategy.DO_NOT_TRUNCATE
    # Canonical values survive dataclasses.replace, which runs the checks again.
    again = dataclasses.replace(options, padding=PaddingStrategy.MAX_LENGTH)
    assert again.padding is PaddingStrategy.MAX_LENGTH and again.truncation is TruncationStrategy.ONLY_SECOND


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"padding": "longer"}, ValueError, r"padding='longer' is not valid; expected one of 'longest'"),
        ({"padding": 3}, ValueError, r"padding=3 is not valid"),
        ({"truncation": "first_only"}, ValueError, r"truncation='first_only' is not valid"),
        ({"max_length": -1}, ValueError, r"max_length must be a non-negative int, got -1"),
        ({"max_length": "8"}, ValueError, r"max_length must be a non-negative int, got '8'"),
        ({"stride": -2}, ValueError, r"stride must be a non-negative int, got -2"),
        ({"pad_to_multiple_of": -8}, ValueError, r"pad_to_multiple_of must be a non-negative int or None, got -8"),
        ({"padding_side": "middle"}, ValueError, r"padding_side must be 'left' or 'right', got 'middle'"),
        ({"return_tensors": "jax"}, ValueError, r"return_tensors='jax' is not valid; expected one of 'pt', 'np'"),
        (
            {"padding": "max_length", "truncation": True, "max_length": 10, "pad_to_multiple_of": 8},
            ValueError,
            r"max_length=10 is not a multiple of pad_to_multiple_of=8",
        ),
        ({"extra": ["lang"]}, TypeError, r"extra must be a mapping"),
    ],
)
def test_bad_values_name_the_argument(kwargs, error, message):
    with pytest.raises(error, match=message):
        EncodeOptions(**kwargs)
    if "extra" not in kwargs:  # the same checks guard the keyword path and replace()
        with pytest.raises(error, match=message):
            EncodeOptions.from_kwargs(kwargs)
        with pytest.raises(error, match=message):
            dataclasses.replace(EncodeOptions(), **kwargs)


def test_from_kwargs_keeps_unknown_keywords_and_applies_the_model_limit():
    kwargs = {"padding": "max_length", "truncation": True, "lang": "fr"}
    options = EncodeOptions.from_kwargs(kwargs, model_max_length=16)
    assert options.max_length == 16 and dict(options.extra) == {"lang": "fr"}
    assert "lang" not in EncodeOptions.names() and "extra" not in EncodeOptions.names()
    assert len(EncodeOptions.names()) == 17
    # An unbounded model switches padding="max_length" and truncation off instead.
    unbounded = EncodeOptions.from_kwargs({"padding": "max_length", "truncation": True}, VERY_LARGE_INTEGER)
    assert unbounded.padding is PaddingStrategy.DO_NOT_PAD and unbounded.max_length is None
    assert unbounded.truncation is TruncationStrategy.DO_NOT_TRUNCATE
    # An explicit max_length wins over the model's.
    assert EncodeOptions.from_kwargs({"truncation": True, "max_length": 3}, model_max_length=16).max_length == 3
    # The pad_to_multiple_of check sees the model's length too.
    with pytest.raises(ValueError, match="max_length=10 is not a multiple of pad_to_multiple_of=4"):
        EncodeOptions.from_kwargs({"padding": "max_length", "truncation": True, "pad_to_multiple_of": 4}, 10)


def test_padding_true_with_max_length_warns(caplog):
    with caplog.at_level("WARNING"):
        EncodeOptions(padding=True, max_length=5, truncation=False)
        EncodeOptions(padding=True, max_length=5, truncation=False, verbose=False)
    assert sum("max_length is ignored" in record.message for record in caplog.records) == 1


def test_unknown_keywords_are_errors_naming_them():
    fast = PreTrainedTokenizerFast.from_pretrained(bloom_tokenizer_dir())
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['paddding'\]"):
        fast("text", paddding=True)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['extra'\]"):
        fast.encode("text", extra={})
    slow = Words()
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['lang'\]"):
        slow("a b", lang="en")
    with pytest.raises(TypeError, match=r"keyword arguments \['lang'\] that only apply to text"):
        slow([[2, 3], [4]], lang="en")  # ids never reach tokenize(), so the keyword would be ignored
    with pytest.raises(TypeError, match=r"prepare_for_model\(\) got unexpected keyword arguments \['lang'\]"):
        slow.prepare_for_model([2, 3], lang="en")
    with pytest.raises(NotImplementedError, match="return_offsets_mapping needs a fast tokenizer"):
        slow.prepare_for_model([2, 3], return_offsets_mapping=True)


def test_every_entry_point_takes_the_options():
    slow = Words()
    assert slow.encode("a b c", max_length=2) == [2, 3]
    assert slow("a b c", padding="max_length", max_length=5, padding_side="left")["input_ids"] == [0, 0, 2, 3, 4]
    rows = slow(["a", "a b c"], padding=True, pad_to_multiple_of=4, return_length=True, return_tensors="np")
    assert rows["input_ids"].tolist() == [[2, 0, 0, 0], [2, 3, 4, 0]] and rows["length"].tolist() == [1, 3]
    model_inputs = slow.prepare_for_model([2, 3, 4], truncation=True, max_length=2, return_overflowing_tokens=True)
    assert model_inputs["input_ids"] == [2, 3] and model_inputs["overflowing_tokens"] == [4]
    with pytest.raises(ValueError, match="padding='sideways'"):
        slow.pad({"input_ids": [[2], [2, 3]]}, padding="sideways")
    with pytest.raises(ValueError, match="padding='sideways'"):
        slow.encode("a", padding="sideways")


def test_old_base_names_still_import():
    from tongues.tokenization import base

    names = [
        "ADDED_TOKENS_FILE", "BatchEncoding", "CHAT_TEMPLATE_DIR", "CHAT_TEMPLATE_FILE", "CharSpan", "LARGE_INTEGER",
        "PaddingStrategy", "PreTrainedTokenizerBase", "SPECIAL_TOKENS_ATTRIBUTES", "SPECIAL_TOKENS_MAP_FILE",
        "TOKENIZER_CONFIG_FILE", "TOKENIZER_FILE", "TensorType", "TokenSpan", "TokenizerFileError",
        "TruncationStrategy", "VERY_LARGE_INTEGER", "check_encodable", "is_torch_tensor", "read_json_file",
        "read_text_file", "resolve_tokenizer_files", "to_py_obj",
    ]
    assert [name for name in names if not hasattr(base, name)] == []
