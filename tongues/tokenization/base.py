"""``PreTrainedTokenizerBase``: the tokenizer API shared by the pure-Python and ``tokenizers``-backed classes.

The base owns everything that does not depend on how text becomes tokens: the entry points
(``__call__``, ``encode``, ``pad``, ``decode``), special-token bookkeeping, the special-token layout
hooks, and ``from_pretrained`` / ``save_pretrained``. Subclasses provide ``_encode`` (ids for a batch
of inputs, given the call's ``EncodeOptions``), ``_decode``, vocabulary lookups and ``save_vocabulary``.

Its neighbours hold the rest: ``encoding.py`` the ``BatchEncoding`` a call returns, ``options.py`` the
``EncodeOptions`` every encode call is checked into once, ``files.py`` the reading and writing of
tokenizer files. The names this module used to define are re-exported here for old imports.

Behaviour follows the Hugging Face tokenizers that users know (same argument names, same outputs);
the code is our own. Nothing here imports torch: ``return_tensors="pt"`` imports it on demand.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tokenizers import AddedToken

from .chat import ChatTemplateMixin
from .encoding import (  # noqa: F401  (CharSpan, TokenSpan, TruncationStrategy: re-exported for old imports)
    BatchEncoding,
    CharSpan,
    PaddingStrategy,
    TensorType,
    TokenSpan,
    TruncationStrategy,
    is_torch_tensor,
    to_py_obj,
)
from .files import (  # noqa: F401  (file names and readers: re-exported for old imports)
    ADDED_TOKENS_FILE,
    CHAT_TEMPLATE_DIR,
    CHAT_TEMPLATE_FILE,
    SPECIAL_TOKENS_ATTRIBUTES,
    SPECIAL_TOKENS_MAP_FILE,
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_FILE,
    TokenizerFileError,
    find_tokenizer_files,
    hub_download_kwargs,
    init_kwargs_from_files,
    read_json_file,
    read_text_file,
    resolve_tokenizer_files,
    save_tokenizer_files,
)
from .options import LARGE_INTEGER, VERY_LARGE_INTEGER, EncodeOptions  # noqa: F401

logger = logging.getLogger(__name__)


def _special_token_property(name: str) -> property:
    def getter(self) -> str | None:
        value = self._special_tokens_map.get(name)
        return None if value is None else str(value)

    def setter(self, value) -> None:
        if value is not None and not isinstance(value, (str, AddedToken)):
            raise TypeError(f"{name} must be a str or tokenizers.AddedToken, got {type(value).__name__}.")
        self._special_tokens_map[name] = value

    return property(getter, setter, doc=f"The {name.replace('_', ' ')} (a str), or None when unset.")


def _special_token_id_property(name: str) -> property:
    def getter(self) -> int | None:
        token = getattr(self, name)
        return None if token is None else self.convert_tokens_to_ids(token)

    def setter(self, value) -> None:
        setattr(self, name, None if value is None else self.convert_ids_to_tokens(int(value)))

    return property(getter, setter, doc=f"The id of the {name.replace('_', ' ')}, or None when unset.")


class PreTrainedTokenizerBase(ChatTemplateMixin):
    """Common base of ``PreTrainedTokenizer`` (pure Python) and ``PreTrainedTokenizerFast``.

    Keyword arguments (all optional; unknown ones are kept in ``init_kwargs`` and saved back):
        model_max_length: longest input the model accepts (default: unlimited).
        padding_side / truncation_side: ``"right"`` or ``"left"``.
        model_input_names: the outputs the model takes (default ``["input_ids", "attention_mask"]``).
        bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token: special tokens.
        additional_special_tokens (alias ``extra_special_tokens``): more tokens to treat as special.
        clean_up_tokenization_spaces: default for ``decode``'s clean-up of spaces before punctuation.
        split_special_tokens: tokenize special tokens' text like any other text.
        chat_template: a Jinja template (str) or named templates (dict, or list of {name, template}).
    """

    vocab_files_names: dict[str, str] = {}
    model_input_names: list[str] = ["input_ids", "attention_mask"]
    padding_side: str = "right"
    truncation_side: str = "right"
    slow_tokenizer_class = None
    SPECIAL_TOKENS_ATTRIBUTES = SPECIAL_TOKENS_ATTRIBUTES

    bos_token = _special_token_property("bos_token")
    eos_token = _special_token_property("eos_token")
    unk_token = _special_token_property("unk_token")
    sep_token = _special_token_property("sep_token")
    pad_token = _special_token_property("pad_token")
    cls_token = _special_token_property("cls_token")
    mask_token = _special_token_property("mask_token")
    bos_token_id = _special_token_id_property("bos_token")
    eos_token_id = _special_token_id_property("eos_token")
    unk_token_id = _special_token_id_property("unk_token")
    sep_token_id = _special_token_id_property("sep_token")
    pad_token_id = _special_token_id_property("pad_token")
    cls_token_id = _special_token_id_property("cls_token")
    mask_token_id = _special_token_id_property("mask_token")

    def __init__(self, **kwargs):
        self.init_inputs = ()
        self.init_kwargs = copy.deepcopy(kwargs)
        self.name_or_path = kwargs.pop("name_or_path", "")
        self.verbose = kwargs.pop("verbose", False)
        self._pad_token_type_id = 0

        self._special_tokens_map: dict[str, str | AddedToken | None] = dict.fromkeys(SPECIAL_TOKENS_ATTRIBUTES)
        for name in SPECIAL_TOKENS_ATTRIBUTES:
            value = kwargs.pop(name, None)
            if value is not None:
                setattr(self, name, value)
        additional = kwargs.pop("additional_special_tokens", None)
        extra = kwargs.pop("extra_special_tokens", None)
        self._additional_special_tokens: list[str | AddedToken] = []
        for argument, value in (("additional_special_tokens", additional), ("extra_special_tokens", extra)):
            if value is None:
                continue
            if isinstance(value, Mapping):  # named extra tokens ({"image_token": "<image>"}) are kept as extras
                value = list(value.values())
            if not isinstance(value, (list, tuple)) or not all(isinstance(t, (str, AddedToken)) for t in value):
                raise TypeError(f"{argument} must be a list of str or AddedToken, got {value!r}.")
            for token in value:
                if str(token) not in self.additional_special_tokens:
                    self._additional_special_tokens.append(token)

        model_max_length = kwargs.pop("model_max_length", kwargs.pop("max_len", None))
        self.model_max_length = model_max_length if model_max_length is not None else VERY_LARGE_INTEGER
        self.padding_side = kwargs.pop("padding_side", type(self).padding_side)
        if self.padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {self.padding_side!r}.")
        self.truncation_side = kwargs.pop("truncation_side", type(self).truncation_side)
        if self.truncation_side not in ("right", "left"):
            raise ValueError(f"truncation_side must be 'right' or 'left', got {self.truncation_side!r}.")
        self.model_input_names = list(kwargs.pop("model_input_names", type(self).model_input_names))
        self.clean_up_tokenization_spaces = kwargs.pop("clean_up_tokenization_spaces", False)
        self.split_special_tokens = kwargs.pop("split_special_tokens", False)

        chat_template = kwargs.pop("chat_template", None)
        if isinstance(chat_template, (list, tuple)):
            # tokenizer_config.json stores several templates as [{"name": ..., "template": ...}].
            chat_template = {entry["name"]: entry["template"] for entry in chat_template}
        self.chat_template = chat_template

    # -- special tokens --------------------------------------------------------------------------

    @property
    def additional_special_tokens(self) -> list[str]:
        """Special tokens beyond the named ones (skipped by ``decode(skip_special_tokens=True)``)."""
        return [str(token) for token in self._additional_special_tokens]

    @additional_special_tokens.setter
    def additional_special_tokens(self, value) -> None:
        if value is not None and not isinstance(value, (list, tuple)):
            raise TypeError(f"additional_special_tokens must be a list, got {type(value).__name__}.")
        self._additional_special_tokens = list(value or [])

    @property
    def additional_special_tokens_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.additional_special_tokens)

    # The Transformers 5 name of the same list.
    extra_special_tokens = additional_special_tokens
    extra_special_tokens_ids = additional_special_tokens_ids

    @property
    def pad_token_type_id(self) -> int:
        return self._pad_token_type_id

    @property
    def special_tokens_map(self) -> dict[str, str | list[str]]:
        """The set special tokens by attribute name (``additional_special_tokens`` when non-empty)."""
        named: dict[str, str | list[str]] = {
            name: str(value) for name, value in self._special_tokens_map.items() if value is not None
        }
        if self._additional_special_tokens:
            named["additional_special_tokens"] = self.additional_special_tokens
        return named

    @property
    def all_special_tokens(self) -> list[str]:
        """Every special token once: the named ones in attribute order, then the additional ones."""
        tokens: list[str] = []
        for value in [*self._special_tokens_map.values(), *self._additional_special_tokens]:
            if value is not None and str(value) not in tokens:
                tokens.append(str(value))
        return tokens

    @property
    def all_special_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    def add_special_tokens(
        self, special_tokens_dict: Mapping[str, Any], replace_additional_special_tokens: bool = True
    ) -> int:
        """Set special tokens by name (``{"pad_token": "<pad>"}``) and add new ones to the vocabulary.

        Keys are the named attributes or ``additional_special_tokens`` (a list; it replaces the current
        list unless ``replace_additional_special_tokens=False``). Returns how many tokens were new to the
        vocabulary: resize the model's embeddings to ``len(tokenizer)`` after adding any.
        """
        if not special_tokens_dict:
            return 0
        to_add: list[AddedToken] = []
        for key, value in special_tokens_dict.items():
            if key in ("additional_special_tokens", "extra_special_tokens"):
                if not isinstance(value, (list, tuple)) or not all(isinstance(t, (str, AddedToken)) for t in value):
                    raise TypeError(f"{key} must be a list of str or AddedToken, got {value!r}.")
                tokens = [_as_special_added_token(token) for token in value]
                if replace_additional_special_tokens:
                    self._additional_special_tokens = list(tokens)
                else:
                    self._additional_special_tokens.extend(
                        token for token in tokens if str(token) not in self.additional_special_tokens
                    )
                to_add.extend(tokens)
            elif key in SPECIAL_TOKENS_ATTRIBUTES:
                if not isinstance(value, (str, AddedToken)):
                    raise TypeError(f"{key} must be a str or AddedToken, got {type(value).__name__}.")
                token = _as_special_added_token(value)
                setattr(self, key, token)
                to_add.append(token)
            else:
                allowed = ", ".join([*SPECIAL_TOKENS_ATTRIBUTES, "additional_special_tokens"])
                raise ValueError(f"add_special_tokens got the unknown key {key!r}; allowed keys: {allowed}.")
        return self.add_tokens(to_add, special_tokens=True)

    def add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """Add tokens (str or AddedToken) missing from the vocabulary, at its end; returns how many were new.

        Added tokens are matched whole in the input before the model's own splitting.
        """
        if not new_tokens:
            return 0
        if not isinstance(new_tokens, (list, tuple)):
            new_tokens = [new_tokens]
        for token in new_tokens:
            if not isinstance(token, (str, AddedToken)):
                raise TypeError(f"add_tokens takes str or AddedToken, got {type(token).__name__}: {token!r}.")
        return self._add_tokens(list(new_tokens), special_tokens=special_tokens)

    def _add_tokens(self, new_tokens: list[str | AddedToken], special_tokens: bool = False) -> int:
        raise NotImplementedError

    # -- vocabulary (subclasses) -----------------------------------------------------------------

    @property
    def is_fast(self) -> bool:
        return False

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary, without added tokens."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def get_vocab(self) -> dict[str, int]:
        """Token -> id for the whole vocabulary, added tokens included."""
        raise NotImplementedError

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        raise NotImplementedError

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        return {token.content: index for index, token in sorted(self.added_tokens_decoder.items())}

    def get_added_vocab(self) -> dict[str, int]:
        return self.added_tokens_encoder

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Id of one token (``unk_token_id`` when unknown), or the ids of a list of tokens."""
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._convert_token_to_id_with_added_voc(tokens)
        return [self._convert_token_to_id_with_added_voc(token) for token in tokens]

    def _convert_token_to_id_with_added_voc(self, token: str) -> int:
        raise NotImplementedError

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """Token of one id, or the tokens of a list of ids (special ones dropped if asked)."""
        raise NotImplementedError

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        raise NotImplementedError

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs) -> list[str]:
        raise NotImplementedError

    def __repr__(self) -> str:
        added = "".join(f"\n\t{index}: {token!r}," for index, token in self.added_tokens_decoder.items())
        if added:
            added += "\n"
        return (
            f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
            f"model_max_length={self.model_max_length}, padding_side={self.padding_side!r}, "
            f"truncation_side={self.truncation_side!r}, special_tokens={self.special_tokens_map}, "
            f"added_tokens_decoder={{{added}}})"
        )

    # -- special-token layout (subclasses refine) ------------------------------------------------

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        """The model input for one sequence or a pair: here their concatenation (no special tokens)."""
        return list(token_ids_0) if token_ids_1 is None else list(token_ids_0) + list(token_ids_1)

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        """Segment ids matching ``build_inputs_with_special_tokens``: 0 for the first sequence, 1 for the second."""
        if token_ids_1 is None:
            return [0] * len(token_ids_0)
        return [0] * len(token_ids_0) + [1] * len(token_ids_1)

    def get_special_tokens_mask(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None, already_has_special_tokens: bool = False
    ) -> list[int]:
        """1 for special tokens, 0 for sequence tokens, laid out like ``build_inputs_with_special_tokens``.

        With ``already_has_special_tokens=True``, ``token_ids_0`` is a finished sequence and membership
        in ``all_special_ids`` decides.
        """
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError(
                    "get_special_tokens_mask: token_ids_1 must be None when already_has_special_tokens=True "
                    "(the sequence is already a finished model input)."
                )
            special_ids = set(self.all_special_ids)
            return [1 if token_id in special_ids else 0 for token_id in token_ids_0]
        return [0] * (len(token_ids_0) + len(token_ids_1 or []))

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many special tokens ``build_inputs_with_special_tokens`` adds to one sequence or a pair."""
        return len(self.build_inputs_with_special_tokens([], [] if pair else None))

    @property
    def max_len_single_sentence(self) -> int:
        return self.model_max_length - self.num_special_tokens_to_add(pair=False)

    @property
    def max_len_sentences_pair(self) -> int:
        return self.model_max_length - self.num_special_tokens_to_add(pair=True)

    # -- encoding --------------------------------------------------------------------------------

    def _encode_options(self, **kwargs) -> EncodeOptions:
        """The keywords of one encode call, checked once and bounded by ``model_max_length``."""
        options = EncodeOptions.from_kwargs(kwargs, model_max_length=self.model_max_length)
        if options.padding != PaddingStrategy.DO_NOT_PAD and (self.pad_token is None or self.pad_token_id < 0):
            raise ValueError(
                "Padding was requested but the tokenizer has no pad_token. Set one, e.g. "
                "tokenizer.pad_token = tokenizer.eos_token, or tokenizer.add_special_tokens({'pad_token': '<pad>'})."
            )
        return options

    def __call__(self, text=None, text_pair=None, text_target=None, text_pair_target=None, **options) -> BatchEncoding:
        """Tokenize one text, a pair, or a batch of either, into model inputs.

        Args:
            text: a str, a list of str (a batch, or one pre-split text with ``is_split_into_words``),
                or a list of lists of words. Batch items may be ``(text, pair)`` tuples.
            text_pair: the second sequences, shaped like ``text``.
            text_target / text_pair_target: texts whose ``input_ids`` become ``labels``.
            **options: the fields of ``EncodeOptions``, checked before any text is tokenized:
                add_special_tokens (default True); padding (``True``/``"longest"``, ``"max_length"``,
                ``False``); truncation (``True``/``"longest_first"``, ``"only_first"``,
                ``"only_second"``, ``False``); max_length (default: ``model_max_length`` when bounded);
                stride; is_split_into_words; pad_to_multiple_of; padding_side (``"left"``/``"right"``);
                return_tensors (``"pt"``, ``"np"`` or ``None`` for lists); return_token_type_ids and
                return_attention_mask (default: what ``model_input_names`` lists);
                return_overflowing_tokens, return_special_tokens_mask, return_offsets_mapping (fast
                tokenizers), return_length; verbose; split_special_tokens. Other keywords go to the
                tokenizer (a slow tokenizer's ``prepare_for_tokenization``), which refuses unknown ones
                by name.

        Returns:
            A ``BatchEncoding``: ``input_ids`` and ``attention_mask`` (plus the requested extras); lists
            for one text, lists of rows for a batch, ``(B, T)`` tensors with ``return_tensors``.
        """
        if text is None and text_target is None:
            raise ValueError("The tokenizer needs `text` (or `text_target`) to encode; both are None.")
        encode_options = self._encode_options(**options)
        split = encode_options.is_split_into_words
        encodings = None
        if text is not None:
            items, is_batched = _batch_items(text, text_pair, split, "text", "text_pair")
            encodings = self._encode(items, is_batched, encode_options)
        if text_target is None:
            return encodings
        items, is_batched = _batch_items(text_target, text_pair_target, split, "text_target", "text_pair_target")
        target_encodings = self._encode(items, is_batched, encode_options)
        if encodings is None:
            return target_encodings
        encodings["labels"] = target_encodings["input_ids"]
        return encodings

    def _encode(self, items: list[tuple[Any, Any]], is_batched: bool, options: EncodeOptions) -> BatchEncoding:
        """Encode ``items`` (``(first, second_or_None)`` per row) as ``options`` say."""
        raise NotImplementedError

    def encode(self, text, text_pair=None, **options):
        """The ``input_ids`` of ``self(text, text_pair, **options)``: a list of ids for one text."""
        return self(text, text_pair=text_pair, **options)["input_ids"]

    def _eventual_warn_about_too_long_sequence(self, ids: list[int], max_length: int | None, verbose: bool):
        if max_length is None and len(ids) > self.model_max_length and verbose:
            if not getattr(self, "_warned_too_long", False):
                logger.warning(
                    f"A sequence of {len(ids)} tokens is longer than model_max_length={self.model_max_length} "
                    f"of {type(self).__name__}; the model may fail on it. Pass truncation=True to cut it."
                )
                self._warned_too_long = True

    # -- padding ---------------------------------------------------------------------------------

    def pad(
        self,
        encoded_inputs,
        padding: bool | str | PaddingStrategy = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | TensorType | None = None,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Pad one encoded input or a batch (a dict of lists, or a list of dicts as a data collator gets).

        Pads ``input_ids`` with ``pad_token_id``, ``attention_mask`` with 0, ``token_type_ids`` with
        ``pad_token_type_id`` and ``special_tokens_mask`` with 1, on ``padding_side``. Tensor inputs
        come back as the same kind of tensor unless ``return_tensors`` says otherwise.
        """
        if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and isinstance(encoded_inputs[0], Mapping):
            encoded_inputs = {key: [row[key] for row in encoded_inputs] for key in encoded_inputs[0].keys()}
        if not isinstance(encoded_inputs, Mapping):
            raise TypeError(
                f"pad() takes a BatchEncoding, a dict of lists or a list of dicts, got {type(encoded_inputs).__name__}."
            )
        main_name = self.model_input_names[0]
        if main_name not in encoded_inputs:
            raise ValueError(f"pad() needs {main_name!r} among the inputs, got keys {list(encoded_inputs.keys())}.")
        encoded_inputs = dict(encoded_inputs)
        required = encoded_inputs[main_name]
        if required is None or (hasattr(required, "__len__") and len(required) == 0):
            if return_attention_mask:
                encoded_inputs["attention_mask"] = []
            return BatchEncoding(encoded_inputs)

        first = required[0]
        if isinstance(first, (list, tuple)):
            first = next((row[0] for row in required if len(row)), None)
        if first is not None and not isinstance(first, (int, list, tuple)):
            if is_torch_tensor(first):
                return_tensors = "pt" if return_tensors is None else return_tensors
            elif isinstance(first, (np.ndarray, np.number)):
                return_tensors = "np" if return_tensors is None else return_tensors
            else:
                raise TypeError(f"pad() got {main_name} items of type {type(first).__name__}; expected ints.")
            encoded_inputs = {key: to_py_obj(value) for key, value in encoded_inputs.items()}

        # pad() never truncates; the options check the other arguments as a tokenizer call would.
        options = self._encode_options(
            padding=padding,
            truncation=False,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_attention_mask=return_attention_mask,
            return_tensors=return_tensors,
            verbose=verbose,
        )
        padding_strategy, max_length = options.padding, options.max_length
        row_options = dict(
            pad_to_multiple_of=options.pad_to_multiple_of,
            padding_side=options.padding_side,
            return_attention_mask=options.return_attention_mask,
        )
        required = encoded_inputs[main_name]
        if required and not isinstance(required[0], (list, tuple)):
            padded = self._pad(encoded_inputs, max_length=max_length, padding_strategy=padding_strategy, **row_options)
            return BatchEncoding(padded, tensor_type=options.return_tensors)

        batch_size = len(required)
        for key, value in encoded_inputs.items():
            if len(value) != batch_size:
                raise ValueError(f"pad(): {key!r} has {len(value)} rows but {main_name!r} has {batch_size}.")
        if padding_strategy == PaddingStrategy.LONGEST:
            max_length = max(len(row) for row in required)
            padding_strategy = PaddingStrategy.MAX_LENGTH
        batch: dict[str, list] = {}
        for i in range(batch_size):
            row = self._pad(
                {key: value[i] for key, value in encoded_inputs.items()},
                max_length=max_length,
                padding_strategy=padding_strategy,
                **row_options,
            )
            for key, value in row.items():
                batch.setdefault(key, []).append(value)
        return BatchEncoding(batch, tensor_type=options.return_tensors)

    def _pad(
        self,
        encoded_inputs: dict[str, Any],
        max_length: int | None = None,
        padding_strategy: PaddingStrategy = PaddingStrategy.DO_NOT_PAD,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
    ) -> dict[str, Any]:
        """Pad one row (a dict of lists) to ``max_length`` (rounded up to ``pad_to_multiple_of``)."""
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        main_name = self.model_input_names[0]
        required = list(encoded_inputs[main_name])
        if padding_strategy == PaddingStrategy.LONGEST:
            max_length = len(required)
        if max_length is not None and pad_to_multiple_of is not None and max_length % pad_to_multiple_of != 0:
            max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of

        if return_attention_mask and "attention_mask" not in encoded_inputs:
            encoded_inputs["attention_mask"] = [1] * len(required)
        if padding_strategy == PaddingStrategy.DO_NOT_PAD or len(required) >= (max_length or 0):
            return encoded_inputs

        difference = max_length - len(required)
        side = padding_side if padding_side is not None else self.padding_side
        if side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {side!r}.")
        fills = {main_name: self.pad_token_id, "token_type_ids": self.pad_token_type_id, "special_tokens_mask": 1}
        if return_attention_mask:
            fills["attention_mask"] = 0
        for key, fill in fills.items():
            if key not in encoded_inputs:
                continue
            values = list(encoded_inputs[key])
            pad = [fill] * difference
            encoded_inputs[key] = values + pad if side == "right" else pad + values
        return encoded_inputs

    # -- decoding --------------------------------------------------------------------------------

    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs):
        """Text of a sequence of ids (a list, array or tensor); a list of texts for a batch of sequences.

        Args:
            skip_special_tokens: leave out special tokens.
            clean_up_tokenization_spaces: remove spaces before punctuation and English contractions
                (default ``self.clean_up_tokenization_spaces``).
        """
        token_ids = to_py_obj(token_ids)
        if isinstance(token_ids, (list, tuple)) and token_ids and isinstance(token_ids[0], (list, tuple)):
            return [
                self._decode(
                    list(row),
                    skip_special_tokens=skip_special_tokens,
                    clean_up_tokenization_spaces=clean_up_tokenization_spaces,
                    **kwargs,
                )
                for row in token_ids
            ]
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        if not isinstance(token_ids, (list, tuple)) or not all(isinstance(i, int) for i in token_ids):
            raise TypeError(f"decode() takes token ids (ints, a list, an array or a tensor), got {token_ids!r}.")
        return self._decode(
            list(token_ids),
            skip_special_tokens=skip_special_tokens,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            **kwargs,
        )

    def batch_decode(
        self, sequences, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs
    ) -> list[str]:
        """``decode`` for each sequence of a batch; always a list of str."""
        sequences = to_py_obj(sequences)
        return [
            self.decode(
                sequence,
                skip_special_tokens=skip_special_tokens,
                clean_up_tokenization_spaces=clean_up_tokenization_spaces,
                **kwargs,
            )
            for sequence in sequences
        ]

    def _decode(
        self, token_ids: list[int], skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs
    ) -> str:
        raise NotImplementedError

    def _clean_up_if_asked(self, text: str, clean_up_tokenization_spaces: bool | None) -> str:
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        return self.clean_up_tokenization(text) if clean_up_tokenization_spaces else text

    @staticmethod
    def clean_up_tokenization(text: str) -> str:
        """Undo word-level tokenization spaces: ``"a , b"`` -> ``"a, b"``, ``"do n't"`` -> ``"don't"``."""
        for spaced, joined in (
            (" .", "."),
            (" ?", "?"),
            (" !", "!"),
            (" ,", ","),
            (" ' ", "'"),
            (" n't", "n't"),
            (" 'm", "'m"),
            (" 's", "'s"),
            (" 've", "'ve"),
            (" 're", "'re"),
        ):
            text = text.replace(spaced, joined)
        return text

    # -- saving and loading (the file work is in files.py) ---------------------------------------

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write the vocabulary files of this tokenizer into ``save_directory``; return their paths."""
        raise NotImplementedError

    def _save_added_tokens_decoder(self) -> bool:
        """Whether tokenizer_config.json must list the added tokens (the slow tokenizers' only record)."""
        return True

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        legacy_format: bool | None = None,
        filename_prefix: str | None = None,
        save_jinja_files: bool = True,
        **kwargs,
    ) -> tuple[str, ...]:
        """Write everything ``from_pretrained`` needs into ``save_directory``; return the file paths.

        Files: tokenizer_config.json, special_tokens_map.json, the vocabulary files of the class
        (``save_vocabulary``), and chat_template.jinja when a template is set (``save_jinja_files=False``
        keeps it inside tokenizer_config.json instead). Every file is staged and then moved into place,
        so a failed save leaves the directory as it was. ``legacy_format`` is accepted for compatibility
        and has no effect: the files written are always those the class loads from.
        """
        if kwargs.pop("push_to_hub", False):
            raise ValueError("save_pretrained(push_to_hub=True) is not supported by tongues; upload the folder yourself.")
        if kwargs:
            raise TypeError(f"save_pretrained() got unexpected keyword arguments: {sorted(kwargs)}.")
        return save_tokenizer_files(
            self, save_directory, filename_prefix=filename_prefix, save_jinja_files=save_jinja_files
        )

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *init_inputs,
        cache_dir: str | os.PathLike | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        revision: str | None = None,
        subfolder: str | None = None,
        trust_remote_code: bool = False,
        **kwargs,
    ):
        """Load a tokenizer saved by ``save_pretrained`` (or by Hugging Face) from a folder or hub repo.

        ``pretrained_model_name_or_path`` is a local directory, the path of a ``tokenizer.json``, or a hub
        id (``"org/name"``, fetched with huggingface_hub). Keyword arguments override the saved
        configuration (``padding_side="left"``, ``pad_token="<pad>"``...). Remote code is never run:
        ``trust_remote_code=True`` is refused.
        """
        if trust_remote_code:
            raise ValueError(
                "trust_remote_code=True is refused: tongues never runs code downloaded with a checkpoint. "
                "Load a tokenizer class that tongues implements instead."
            )
        hub_kwargs = hub_download_kwargs(cache_dir, force_download, local_files_only, token, revision, subfolder)
        source = os.fspath(pretrained_model_name_or_path)
        resolved = find_tokenizer_files(cls, source, **hub_kwargs)
        init_inputs, init_kwargs = init_kwargs_from_files(cls, resolved, source, init_inputs, kwargs)
        cls._check_loadable(init_kwargs, source)
        return cls(*init_inputs, **init_kwargs)

    @classmethod
    def _check_loadable(cls, init_kwargs: dict[str, Any], source: str) -> None:
        """Raise a clear error when the files this class needs were not found in ``source``."""



def _as_special_added_token(token: str | AddedToken) -> AddedToken:
    if isinstance(token, AddedToken):
        return token
    return AddedToken(token, rstrip=False, lstrip=False, normalized=False, special=True)



def check_encodable(text: str, name: str = "text") -> str:
    """``text`` unchanged, or a ValueError naming the first lone surrogate (U+D800..U+DFFF).

    # A lone surrogate is not Unicode text (it has no UTF-8 form): backends would otherwise fail
    # with unrelated messages (a pybind cast error, a type error) or silently drop it.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"{name} holds a lone surrogate U+{ord(text[err.start]):04X} at index {err.start}: it is not valid "
            "Unicode and cannot be tokenized (decode bytes with errors='replace', or remove it)"
        ) from None
    return text


def _batch_items(text, text_pair, is_split_into_words: bool, text_name: str, pair_name: str):
    """Normalise ``__call__`` inputs to ``([(first, second_or_None), ...], is_batched)``."""

    def is_words(value) -> bool:
        return isinstance(value, (list, tuple)) and all(isinstance(word, str) for word in value)

    def is_ids(value) -> bool:
        return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(i, int) for i in value)

    def check_single(value, name):
        if isinstance(value, str):
            if is_split_into_words:
                raise ValueError(
                    f"{name} is a str but is_split_into_words=True expects a list of words (or a batch of them)."
                )
            return check_encodable(value, name)
        if is_split_into_words and is_words(value):
            return [check_encodable(word, f"{name}[{i}]") for i, word in enumerate(value)]
        if is_ids(value):
            return list(value)
        raise TypeError(
            f"{name} must be a str, a list of str (a batch, or words with is_split_into_words=True), or a list of "
            f"lists of words; got {_describe(value)}."
        )

    if isinstance(text, str) or (is_split_into_words and is_words(text) and text) or is_ids(text):
        first = check_single(text, text_name)
        second = None if text_pair is None else check_single(text_pair, pair_name)
        return [(first, second)], False

    if not isinstance(text, (list, tuple)):
        raise TypeError(f"{text_name} must be a str or a list (a batch); got {_describe(text)}.")
    if text_pair is not None:
        if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)):
            raise TypeError(f"{text_name} is a batch, so {pair_name} must be a list of the same length.")
        if len(text_pair) != len(text):
            raise ValueError(f"{text_name} has {len(text)} items but {pair_name} has {len(text_pair)}.")
    items = []
    for index, item in enumerate(text):
        name = f"{text_name}[{index}]"
        if text_pair is not None:
            items.append((check_single(item, name), check_single(text_pair[index], f"{pair_name}[{index}]")))
            continue
        if isinstance(item, tuple) and len(item) == 2 and not (is_split_into_words and is_words(item)):
            # A (first, second) pair inside a batch.
            items.append((check_single(item[0], name + "[0]"), check_single(item[1], name + "[1]")))
        elif isinstance(item, list) and len(item) == 2 and not is_split_into_words and all(
            isinstance(part, str) for part in item
        ):
            items.append((item[0], item[1]))
        else:
            items.append((check_single(item, name), None))
    return items, True


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"
