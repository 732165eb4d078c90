"""The tokenizer API shared by the pure-Python and the ``tokenizers``-backed classes.

``PreTrainedTokenizerBase`` owns everything that does not depend on how text becomes tokens:
argument parsing for ``__call__`` (batches, pairs, padding, truncation), padding, tensor
conversion, special-token bookkeeping, decoding entry points, and the ``tokenizer_config.json`` /
``special_tokens_map.json`` round trip. Subclasses provide ``_encode`` (ids for a batch of inputs),
``_decode``, vocabulary lookups and ``save_vocabulary``.

Behaviour follows the Hugging Face tokenizers that users know (same argument names, same outputs);
the code is our own. Nothing here imports torch: ``return_tensors="pt"`` imports it on demand.
"""

from __future__ import annotations

import copy
import glob
import json
import logging
import os
import sys
from collections import UserDict
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, NamedTuple

import numpy as np
from tokenizers import AddedToken

from ..checkpoint.files import CheckpointError, resolve_file, staged_directory
from .chat import ChatTemplateMixin

logger = logging.getLogger(__name__)

# A model without a length limit gets this as model_max_length (the value the Hugging Face files carry).
VERY_LARGE_INTEGER = int(1e30)
LARGE_INTEGER = int(1e20)

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"
TOKENIZER_FILE = "tokenizer.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
CHAT_TEMPLATE_DIR = "additional_chat_templates"

SPECIAL_TOKENS_ATTRIBUTES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)

# Keys a tokenizer_config.json may carry that describe where files were, not how to tokenize.
# They are dropped on load and never written back.
_BOOKKEEPING_KEYS = frozenset(
    {
        "name_or_path",
        "special_tokens_map_file",
        "tokenizer_file",
        "vocab_file",
        "merges_file",
        "tokenizer_object",
        "files_loaded",
        "is_local",
        "local_files_only",
        "backend",
        "device_map",
        "slow_tokenizer_class",
        "auto_map",
        "tokenizer_class",
        "init_inputs",
        "added_tokens_decoder",
        "chat_template",
    }
)


# Of the bookkeeping keys, these are read back by from_pretrained.
_KEPT_ON_LOAD = frozenset({"added_tokens_decoder", "chat_template"})

_MISSING = object()


class TokenizerFileError(CheckpointError):
    """A tokenizer file is missing, unreadable or malformed; the message names the file."""


class PaddingStrategy(str, Enum):
    LONGEST = "longest"
    MAX_LENGTH = "max_length"
    DO_NOT_PAD = "do_not_pad"


class TruncationStrategy(str, Enum):
    ONLY_FIRST = "only_first"
    ONLY_SECOND = "only_second"
    LONGEST_FIRST = "longest_first"
    DO_NOT_TRUNCATE = "do_not_truncate"


class TensorType(str, Enum):
    PYTORCH = "pt"
    NUMPY = "np"


class CharSpan(NamedTuple):
    """Characters ``[start, end)`` of the original string."""

    start: int
    end: int


class TokenSpan(NamedTuple):
    """Tokens ``[start, end)`` of an encoded sequence."""

    start: int
    end: int


def _parse_enum(enum_cls: type[Enum], value: Any, argument: str) -> Enum:
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in enum_cls)
        raise ValueError(f"{argument}={value!r} is not valid; expected one of {allowed}.") from None


def is_torch_tensor(value: Any) -> bool:
    """True for a torch.Tensor, without importing torch when nobody else has."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def to_py_obj(value: Any) -> Any:
    """Lists of Python numbers from tensors, arrays and nested containers of them."""
    if is_torch_tensor(value) or isinstance(value, (np.ndarray, np.number)):
        return value.tolist()
    if isinstance(value, Mapping):
        return {key: to_py_obj(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_py_obj(item) for item in value]
    return value


def _flat_length(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        return sum(_flat_length(item) for item in value)
    return 1


class BatchEncoding(UserDict):
    """What a tokenizer call returns: a dict (``input_ids``, ``attention_mask``, ...) with extras.

    Keys are also attributes (``enc.input_ids``). Outputs of fast tokenizers keep the
    ``tokenizers.Encoding`` of each row, which answer alignment questions: ``tokens(i)``,
    ``word_ids(i)``, ``sequence_ids(i)``, ``token_to_chars``, ``char_to_token``...

    Args:
        data: the named outputs, lists (one row) or lists of lists (a batch).
        encoding: one ``tokenizers.Encoding`` or one per row (fast tokenizers only).
        tensor_type: ``"pt"`` or ``"np"`` converts the values at once; ``None`` keeps lists.
        prepend_batch_axis: wrap each value in a batch of one before converting.
        n_sequences: 1 for single sequences, 2 for pairs, ``None`` when unknown.
    """

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        encoding: Any = None,
        tensor_type: str | TensorType | None = None,
        prepend_batch_axis: bool = False,
        n_sequences: int | None = None,
    ):
        super().__init__(data)
        if encoding is not None and not isinstance(encoding, (list, tuple)):
            encoding = [encoding]
        self._encodings = list(encoding) if encoding is not None else None
        if n_sequences is None and self._encodings:
            n_sequences = self._encodings[0].n_sequences
        self._n_sequences = n_sequences
        self.convert_to_tensors(tensor_type=tensor_type, prepend_batch_axis=prepend_batch_axis)

    @property
    def n_sequences(self) -> int | None:
        return self._n_sequences

    @property
    def is_fast(self) -> bool:
        return self._encodings is not None

    @property
    def encodings(self) -> list | None:
        return self._encodings

    def __getitem__(self, item):
        if isinstance(item, str):
            return self.data[item]
        if self._encodings is not None and isinstance(item, int):
            return self._encodings[item]
        if isinstance(item, slice):
            return {key: value[item] for key, value in self.data.items()}
        raise KeyError(
            f"BatchEncoding keys are output names (str), row indices (int, fast tokenizers only) or slices; "
            f"got {item!r}."
        )

    def __getattr__(self, item: str):
        # UserDict keeps everything in self.data; guard it so copy/pickle never recurse here.
        if item.startswith("__") or item in ("data", "_encodings", "_n_sequences"):
            raise AttributeError(item)
        try:
            return self.data[item]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no output named {item!r}; it has {list(self.data)}.") from None

    def __getstate__(self):
        return {"data": self.data, "encodings": self._encodings, "n_sequences": self._n_sequences}

    def __setstate__(self, state):
        self.data = state["data"]
        self._encodings = state["encodings"]
        self._n_sequences = state.get("n_sequences")

    # -- alignment, fast tokenizers only ---------------------------------------------------------

    def _encoding(self, batch_index: int, method: str):
        if not self._encodings:
            raise ValueError(f"{method}() needs the output of a fast tokenizer (PreTrainedTokenizerFast).")
        return self._encodings[batch_index]

    def _batch_and_index(self, batch_or_index: int, index: int | None) -> tuple[int, int]:
        # Called as f(index) for a batch of one, or f(batch_index, index).
        if index is None:
            return 0, batch_or_index
        return batch_or_index, index

    def tokens(self, batch_index: int = 0) -> list[str]:
        """The token strings of row ``batch_index``."""
        return self._encoding(batch_index, "tokens").tokens

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token of row ``batch_index``, the index of its word (``None`` for added special tokens)."""
        return self._encoding(batch_index, "word_ids").word_ids

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token, 0 or 1 for the first or second sequence of a pair, ``None`` for special tokens."""
        return self._encoding(batch_index, "sequence_ids").sequence_ids

    def token_to_sequence(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        batch_index, token_index = self._batch_and_index(batch_or_token_index, token_index)
        encoding = self._encoding(batch_index, "token_to_sequence")
        if token_index < 0:
            token_index += len(encoding.ids)
        return encoding.token_to_sequence(token_index)

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        batch_index, token_index = self._batch_and_index(batch_or_token_index, token_index)
        encoding = self._encoding(batch_index, "token_to_word")
        if token_index < 0:
            token_index += len(encoding.ids)
        return encoding.token_to_word(token_index)

    def word_to_tokens(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> TokenSpan | None:
        batch_index, word_index = self._batch_and_index(batch_or_word_index, word_index)
        span = self._encoding(batch_index, "word_to_tokens").word_to_tokens(word_index, sequence_index)
        return TokenSpan(*span) if span is not None else None

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None) -> CharSpan | None:
        batch_index, token_index = self._batch_and_index(batch_or_token_index, token_index)
        span = self._encoding(batch_index, "token_to_chars").token_to_chars(token_index)
        return CharSpan(*span) if span is not None else None

    def char_to_token(self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0):
        batch_index, char_index = self._batch_and_index(batch_or_char_index, char_index)
        return self._encoding(batch_index, "char_to_token").char_to_token(char_index, sequence_index)

    def word_to_chars(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> CharSpan | None:
        batch_index, word_index = self._batch_and_index(batch_or_word_index, word_index)
        span = self._encoding(batch_index, "word_to_chars").word_to_chars(word_index, sequence_index)
        return CharSpan(*span) if span is not None else None

    def char_to_word(self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0):
        batch_index, char_index = self._batch_and_index(batch_or_char_index, char_index)
        return self._encoding(batch_index, "char_to_word").char_to_word(char_index, sequence_index)

    # -- tensors ---------------------------------------------------------------------------------

    def convert_to_tensors(self, tensor_type: str | TensorType | None = None, prepend_batch_axis: bool = False):
        """Turn every value into a torch tensor (``"pt"``) or numpy array (``"np"``), in place.

        Rows of different lengths cannot be stacked into a torch tensor: pass ``padding=True``
        (and ``truncation=True``) to the tokenizer call for batches. Returns ``self``.
        """
        if tensor_type is None:
            return self
        tensor_type = _parse_enum(TensorType, tensor_type, "return_tensors")

        if tensor_type == TensorType.PYTORCH:
            import torch

            def as_tensor(value):
                if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
                    return torch.from_numpy(np.array(value))
                if _flat_length(value) == 0:
                    return torch.tensor(value, dtype=torch.int64)
                return torch.tensor(value)

            def is_tensor(value):
                return isinstance(value, torch.Tensor)

        else:

            def as_tensor(value):
                if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple, np.ndarray)):
                    if len({len(row) for row in value}) > 1:
                        # Ragged rows (e.g. overflowing windows) stay an array of arrays.
                        ragged = np.empty(len(value), dtype=object)
                        ragged[:] = [np.asarray(row) for row in value]
                        return ragged
                if _flat_length(value) == 0:
                    return np.asarray(value, dtype=np.int64)
                return np.asarray(value)

            def is_tensor(value):
                return isinstance(value, np.ndarray)

        for key, value in list(self.items()):
            if prepend_batch_axis:
                value = [value]
            if is_tensor(value):
                continue
            try:
                self[key] = as_tensor(value)
            except (ValueError, TypeError, RuntimeError) as err:
                raise ValueError(
                    f"Could not make a {tensor_type.value!r} tensor of {key!r}: its rows have different lengths "
                    f"or nest too deeply. Pass padding=True (and truncation=True) to batch sequences of "
                    f"different lengths."
                ) from err
        return self

    def to(self, device, *, non_blocking: bool = False) -> BatchEncoding:
        """Move every torch tensor to ``device`` (a str, int or torch.device); returns ``self``."""
        import torch

        if not isinstance(device, (str, int, torch.device)):
            raise TypeError(
                f"BatchEncoding.to() takes a device (str, int or torch.device), got {type(device).__name__}; "
                f"token ids must keep their integer dtype."
            )
        self.data = {
            key: value.to(device=device, non_blocking=non_blocking) if isinstance(value, torch.Tensor) else value
            for key, value in self.data.items()
        }
        return self


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

    def _get_padding_truncation_strategies(
        self, padding=False, truncation=None, max_length=None, pad_to_multiple_of=None, verbose=True
    ) -> tuple[PaddingStrategy, TruncationStrategy, int | None]:
        """Turn the user's ``padding``/``truncation``/``max_length`` into strategies and a length."""
        # A bare max_length means "truncate to it", as it always has in this API.
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"

        if padding is True:
            if verbose and max_length is not None and truncation in (None, False, "do_not_truncate"):
                logger.warning(
                    "max_length is ignored when padding=True and truncation is off; use padding='max_length' "
                    "to pad to max_length."
                )
            padding_strategy = PaddingStrategy.LONGEST
        elif padding is False or padding is None:
            padding_strategy = PaddingStrategy.DO_NOT_PAD
        else:
            padding_strategy = _parse_enum(PaddingStrategy, padding, "padding")

        if truncation is True:
            truncation_strategy = TruncationStrategy.LONGEST_FIRST
        elif truncation is False or truncation is None:
            truncation_strategy = TruncationStrategy.DO_NOT_TRUNCATE
        else:
            truncation_strategy = _parse_enum(TruncationStrategy, truncation, "truncation")

        if max_length is None:
            # Without an explicit length, the model's limit applies; an unlimited model disables both.
            if padding_strategy == PaddingStrategy.MAX_LENGTH:
                if self.model_max_length > LARGE_INTEGER:
                    padding_strategy = PaddingStrategy.DO_NOT_PAD
                else:
                    max_length = self.model_max_length
            if truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE:
                if self.model_max_length > LARGE_INTEGER:
                    truncation_strategy = TruncationStrategy.DO_NOT_TRUNCATE
                else:
                    max_length = self.model_max_length
        elif not isinstance(max_length, int) or max_length < 0:
            raise ValueError(f"max_length must be a non-negative int, got {max_length!r}.")

        if padding_strategy != PaddingStrategy.DO_NOT_PAD and (self.pad_token is None or self.pad_token_id < 0):
            raise ValueError(
                "Padding was requested but the tokenizer has no pad_token. Set one, e.g. "
                "tokenizer.pad_token = tokenizer.eos_token, or tokenizer.add_special_tokens({'pad_token': '<pad>'})."
            )
        if (
            truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE
            and padding_strategy != PaddingStrategy.DO_NOT_PAD
            and pad_to_multiple_of is not None
            and max_length is not None
            and max_length % pad_to_multiple_of != 0
        ):
            raise ValueError(
                f"Truncation and padding are both on, but max_length={max_length} is not a multiple of "
                f"pad_to_multiple_of={pad_to_multiple_of}."
            )
        return padding_strategy, truncation_strategy, max_length

    def __call__(
        self,
        text=None,
        text_pair=None,
        text_target=None,
        text_pair_target=None,
        add_special_tokens: bool = True,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | str | TruncationStrategy | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | TensorType | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        **kwargs,
    ) -> BatchEncoding:
        """Tokenize one text, a pair, or a batch of either, into model inputs.

        Args:
            text: a str, a list of str (a batch, or one pre-split text with ``is_split_into_words``),
                or a list of lists of words. Batch items may be ``(text, pair)`` tuples.
            text_pair: the second sequences, shaped like ``text``.
            text_target / text_pair_target: texts whose ``input_ids`` become ``labels``.
            add_special_tokens: add the model's special tokens (e.g. BOS/EOS) around the sequences.
            padding: ``True``/``"longest"`` (to the longest row), ``"max_length"``, or ``False``.
            truncation: ``True``/``"longest_first"``, ``"only_first"``, ``"only_second"``, or ``False``.
            max_length: the length to truncate/pad to (default: ``model_max_length`` when bounded).
            stride: overlap between overflowing windows (with ``return_overflowing_tokens``).
            is_split_into_words: the text is already split into words.
            pad_to_multiple_of: round padded lengths up to a multiple of this.
            padding_side: ``"left"`` or ``"right"`` for this call (default ``self.padding_side``).
            return_tensors: ``"pt"`` (torch), ``"np"`` (numpy) or ``None`` (lists).
            return_token_type_ids / return_attention_mask: default to what ``model_input_names`` lists.
            return_overflowing_tokens, return_special_tokens_mask, return_offsets_mapping, return_length:
                extra outputs (offsets need a fast tokenizer).

        Returns:
            A ``BatchEncoding``: ``input_ids`` and ``attention_mask`` (plus the requested extras); lists
            for one text, lists of rows for a batch, ``(B, T)`` tensors with ``return_tensors``.
        """
        if text is None and text_target is None:
            raise ValueError("The tokenizer needs `text` (or `text_target`) to encode; both are None.")
        split_special_tokens = kwargs.pop("split_special_tokens", self.split_special_tokens)
        padding_strategy, truncation_strategy, max_length = self._get_padding_truncation_strategies(
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            verbose=verbose,
        )
        if padding_side is not None and padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}.")
        if return_tensors is not None:
            _parse_enum(TensorType, return_tensors, "return_tensors")
        options = dict(
            add_special_tokens=add_special_tokens,
            padding_strategy=padding_strategy,
            truncation_strategy=truncation_strategy,
            max_length=max_length,
            stride=stride,
            is_split_into_words=is_split_into_words,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_tensors=return_tensors,
            return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask,
            return_overflowing_tokens=return_overflowing_tokens,
            return_special_tokens_mask=return_special_tokens_mask,
            return_offsets_mapping=return_offsets_mapping,
            return_length=return_length,
            verbose=verbose,
            split_special_tokens=split_special_tokens,
            **kwargs,
        )
        encodings = None
        if text is not None:
            items, is_batched = _batch_items(text, text_pair, is_split_into_words, "text", "text_pair")
            encodings = self._encode(items, is_batched, **options)
        if text_target is None:
            return encodings
        items, is_batched = _batch_items(
            text_target, text_pair_target, is_split_into_words, "text_target", "text_pair_target"
        )
        target_encodings = self._encode(items, is_batched, **options)
        if encodings is None:
            return target_encodings
        encodings["labels"] = target_encodings["input_ids"]
        return encodings

    def _encode(self, items: list[tuple[Any, Any]], is_batched: bool, **options) -> BatchEncoding:
        """Encode ``items`` (``(first, second_or_None)`` per row); see ``__call__`` for ``options``."""
        raise NotImplementedError

    def encode(
        self,
        text,
        text_pair=None,
        add_special_tokens: bool = True,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | str | TruncationStrategy | None = None,
        max_length: int | None = None,
        stride: int = 0,
        padding_side: str | None = None,
        return_tensors: str | TensorType | None = None,
        **kwargs,
    ):
        """The ``input_ids`` of ``self(text, text_pair, ...)``: a list of ids for one text."""
        return self(
            text,
            text_pair=text_pair,
            add_special_tokens=add_special_tokens,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            stride=stride,
            padding_side=padding_side,
            return_tensors=return_tensors,
            **kwargs,
        )["input_ids"]

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

        padding_strategy, _, max_length = self._get_padding_truncation_strategies(
            padding=padding, max_length=max_length, verbose=verbose
        )
        required = encoded_inputs[main_name]
        if required and not isinstance(required[0], (list, tuple)):
            padded = self._pad(
                encoded_inputs,
                max_length=max_length,
                padding_strategy=padding_strategy,
                pad_to_multiple_of=pad_to_multiple_of,
                padding_side=padding_side,
                return_attention_mask=return_attention_mask,
            )
            return BatchEncoding(padded, tensor_type=return_tensors)

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
                pad_to_multiple_of=pad_to_multiple_of,
                padding_side=padding_side,
                return_attention_mask=return_attention_mask,
            )
            for key, value in row.items():
                batch.setdefault(key, []).append(value)
        return BatchEncoding(batch, tensor_type=return_tensors)

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

    # -- saving ----------------------------------------------------------------------------------

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write the vocabulary files of this tokenizer into ``save_directory``; return their paths."""
        raise NotImplementedError

    def _config_to_save(self) -> dict[str, Any]:
        """The tokenizer_config.json content: init arguments with their current values."""
        config = copy.deepcopy(self.init_kwargs)
        for key in list(config):
            if key in _BOOKKEEPING_KEYS or key in self.vocab_files_names:
                config.pop(key)
                continue
            # An init argument kept as an attribute is saved with its current value.
            current = getattr(self, key, _MISSING)
            if current is not _MISSING and not callable(current):
                config[key] = copy.deepcopy(current)
        # Token properties live in added_tokens_decoder / tokenizer.json; the config names them.
        for name in SPECIAL_TOKENS_ATTRIBUTES:
            config.pop(name, None)
            if self._special_tokens_map.get(name) is not None:
                config[name] = str(self._special_tokens_map[name])
        config.pop("additional_special_tokens", None)
        config.pop("extra_special_tokens", None)
        if self._additional_special_tokens:
            config["additional_special_tokens"] = self.additional_special_tokens
        config["model_max_length"] = self.model_max_length
        config["padding_side"] = self.padding_side
        config["truncation_side"] = self.truncation_side
        config["clean_up_tokenization_spaces"] = self.clean_up_tokenization_spaces
        if self.split_special_tokens:
            config["split_special_tokens"] = True
        if self.model_input_names != type(self).model_input_names:
            config["model_input_names"] = list(self.model_input_names)
        config["tokenizer_class"] = type(self).__name__
        return config

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
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        config = self._config_to_save()
        if self._save_added_tokens_decoder():
            config["added_tokens_decoder"] = {
                str(index): _added_token_state(token) for index, token in self.added_tokens_decoder.items()
            }
        named_templates: dict[str, str] = {}
        template_text = None
        if isinstance(self.chat_template, dict):
            if save_jinja_files:
                named_templates = {k: v for k, v in self.chat_template.items() if k != "default"}
                template_text = self.chat_template.get("default")
            else:
                config["chat_template"] = [{"name": k, "template": v} for k, v in self.chat_template.items()]
        elif self.chat_template is not None:
            if save_jinja_files:
                template_text = self.chat_template
            else:
                config["chat_template"] = self.chat_template
        for name in named_templates:
            if os.path.basename(name) != name or name.startswith("."):
                raise ValueError(f"Chat template name {name!r} cannot be used as a file name.")

        special_tokens_map = {
            name: str(value) for name, value in self._special_tokens_map.items() if value is not None
        }
        if self._additional_special_tokens:
            special_tokens_map["additional_special_tokens"] = self.additional_special_tokens

        save_directory = os.path.abspath(os.fspath(save_directory))
        written: list[str] = []
        with staged_directory(save_directory) as staging:
            files = {
                prefix + TOKENIZER_CONFIG_FILE: _to_json(_serializable(config)),
                prefix + SPECIAL_TOKENS_MAP_FILE: _to_json(special_tokens_map),
            }
            if template_text is not None:
                files[prefix + CHAT_TEMPLATE_FILE] = template_text
            for name, content in files.items():
                with open(os.path.join(staging, name), "w", encoding="utf-8") as handle:
                    handle.write(content)
                written.append(os.path.join(save_directory, name))
            for path in self.save_vocabulary(staging, filename_prefix=filename_prefix):
                written.append(os.path.join(save_directory, os.path.relpath(path, staging)))
        if named_templates:
            # Sub-folders cannot be swapped in by the staging rename, so each template is replaced alone.
            from ..checkpoint.files import atomic_write_text

            template_dir = os.path.join(save_directory, prefix + CHAT_TEMPLATE_DIR)
            os.makedirs(template_dir, exist_ok=True)
            for name, template in named_templates.items():
                path = os.path.join(template_dir, f"{name}.jinja")
                atomic_write_text(path, template)
                written.append(path)
        return tuple(written)

    # -- loading ---------------------------------------------------------------------------------

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
        hub_kwargs = _hub_kwargs(cache_dir, force_download, local_files_only, token, revision, subfolder)
        source = os.fspath(pretrained_model_name_or_path)
        file_ids = {
            **cls.vocab_files_names,
            "tokenizer_config_file": TOKENIZER_CONFIG_FILE,
            "special_tokens_map_file": SPECIAL_TOKENS_MAP_FILE,
            "added_tokens_file": ADDED_TOKENS_FILE,
            "chat_template_file": CHAT_TEMPLATE_FILE,
        }
        if os.path.isfile(source):
            # A single vocabulary file: the folder around it supplies nothing else.
            file_id = "tokenizer_file" if source.endswith(".json") else "vocab_file"
            if file_id not in cls.vocab_files_names:
                raise TokenizerFileError(
                    f"{cls.__name__}.from_pretrained got the file {source}, but this class loads from a folder "
                    f"with {sorted(cls.vocab_files_names.values())}; pass the folder instead."
                )
            resolved = dict.fromkeys(file_ids)
            resolved[file_id] = source
        else:
            resolved = resolve_tokenizer_files(source, file_ids, **hub_kwargs)
        resolved["chat_template_dir_files"] = _local_named_templates(source, subfolder)
        return cls._from_resolved_files(resolved, source, init_inputs, kwargs)

    @classmethod
    def _from_resolved_files(cls, resolved: dict[str, Any], source: str, init_inputs: tuple, kwargs: dict):
        config_file = resolved.pop("tokenizer_config_file", None)
        init_kwargs = read_json_file(config_file, "tokenizer configuration") if config_file else {}
        if not isinstance(init_kwargs, dict):
            raise TokenizerFileError(f"{config_file} must hold a JSON object, found {type(init_kwargs).__name__}.")
        saved_inputs = init_kwargs.pop("init_inputs", ())
        init_inputs = init_inputs or tuple(saved_inputs)
        # Bookkeeping of whoever saved the folder is dropped; in particular paths inside a config never
        # point at files (only files found next to it are used), and auto_map code is never imported.
        for key in list(init_kwargs):
            if key in cls.vocab_files_names or (key in _BOOKKEEPING_KEYS and key not in _KEPT_ON_LOAD):
                init_kwargs.pop(key)

        templates: dict[str, str] = {}
        template_file = resolved.pop("chat_template_file", None)
        if template_file is not None:
            templates["default"] = read_text_file(template_file, "chat template")
        for name, path in resolved.pop("chat_template_dir_files", {}).items():
            templates[name] = read_text_file(path, "chat template")
        if list(templates) == ["default"]:
            init_kwargs["chat_template"] = templates["default"]
        elif templates:
            init_kwargs["chat_template"] = templates

        added_tokens_file = resolved.pop("added_tokens_file", None)
        special_tokens_map_file = resolved.pop("special_tokens_map_file", None)
        added_tokens_decoder: dict[int, AddedToken] = {}
        if "added_tokens_decoder" in init_kwargs:
            for index, state in init_kwargs.pop("added_tokens_decoder").items():
                added_tokens_decoder[int(index)] = _added_token_from_state(state, config_file)
        else:
            if special_tokens_map_file is not None:
                special_map = read_json_file(special_tokens_map_file, "special tokens map")
                if not isinstance(special_map, dict):
                    raise TokenizerFileError(f"{special_tokens_map_file} must hold a JSON object.")
                for key, value in special_map.items():
                    if kwargs.get(key):
                        continue
                    if isinstance(value, dict):
                        value = _added_token_from_state({**value, "special": True}, special_tokens_map_file)
                    elif isinstance(value, list):
                        value = [
                            _added_token_from_state({**item, "special": True}, special_tokens_map_file)
                            if isinstance(item, dict)
                            else item
                            for item in value
                        ]
                    init_kwargs[key] = value
            if added_tokens_file is not None:
                added_vocab = read_json_file(added_tokens_file, "added tokens")
                if not isinstance(added_vocab, dict):
                    raise TokenizerFileError(f"{added_tokens_file} must map tokens to ids.")
                specials = {str(init_kwargs[name]) for name in SPECIAL_TOKENS_ATTRIBUTES if init_kwargs.get(name)}
                for content, index in added_vocab.items():
                    is_special = content in specials
                    added_tokens_decoder[int(index)] = AddedToken(
                        content, rstrip=False, lstrip=False, normalized=not is_special, special=is_special
                    )
        init_kwargs = _decode_added_token_values(init_kwargs, config_file)

        init_kwargs.update(kwargs)
        for file_id, path in resolved.items():
            if kwargs.get(file_id) is None:
                init_kwargs[file_id] = path
        init_kwargs["added_tokens_decoder"] = added_tokens_decoder
        # Named special tokens take the properties of their entry in added_tokens_decoder.
        by_content = {token.content: token for token in added_tokens_decoder.values()}
        for name in SPECIAL_TOKENS_ATTRIBUTES:
            value = init_kwargs.get(name)
            if isinstance(value, str) and value in by_content:
                init_kwargs[name] = by_content[value]
        init_kwargs["name_or_path"] = source
        cls._check_loadable(init_kwargs, source)
        return cls(*init_inputs, **init_kwargs)

    @classmethod
    def _check_loadable(cls, init_kwargs: dict[str, Any], source: str) -> None:
        """Raise a clear error when the files this class needs were not found in ``source``."""


def _as_special_added_token(token: str | AddedToken) -> AddedToken:
    if isinstance(token, AddedToken):
        return token
    return AddedToken(token, rstrip=False, lstrip=False, normalized=False, special=True)


def _added_token_state(token: AddedToken) -> dict[str, Any]:
    return {
        "content": token.content,
        "lstrip": token.lstrip,
        "normalized": token.normalized,
        "rstrip": token.rstrip,
        "single_word": token.single_word,
        "special": token.special,
    }


_ADDED_TOKEN_FIELDS = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")


def _added_token_from_state(state: Any, source: str | None) -> AddedToken:
    if isinstance(state, AddedToken):
        return state
    if isinstance(state, str):
        return AddedToken(state, special=True, normalized=False)
    if not isinstance(state, dict) or "content" not in state:
        raise TokenizerFileError(f"{source}: an added token must be an object with a 'content' field, got {state!r}.")
    fields = {key: value for key, value in state.items() if key in _ADDED_TOKEN_FIELDS}
    return AddedToken(**fields)


def _decode_added_token_values(value: Any, source: str | None) -> Any:
    """Turn the ``{"__type": "AddedToken", ...}`` objects of a config back into AddedTokens."""
    if isinstance(value, dict):
        if value.get("__type") == "AddedToken":
            return _added_token_from_state(value, source)
        return {key: _decode_added_token_values(item, source) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode_added_token_values(item, source) for item in value]
    return value


def _serializable(value: Any) -> Any:
    """JSON-ready copy of a config: AddedTokens become tagged objects, tuples lists."""
    if isinstance(value, AddedToken):
        return {"__type": "AddedToken", **_added_token_state(value)}
    if isinstance(value, Mapping):
        return {str(key): _serializable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_serializable(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value


def _to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def read_json_file(path: str, what: str) -> Any:
    """Parse the JSON file ``path``; errors name the file and the position of the fault."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise TokenizerFileError(
            f"The {what} file {path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})."
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise TokenizerFileError(f"Could not read the {what} file {path}: {err}.") from None


def read_text_file(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as err:
        raise TokenizerFileError(f"Could not read the {what} file {path}: {err}.") from None


def _hub_kwargs(cache_dir, force_download, local_files_only, token, revision, subfolder) -> dict[str, Any]:
    hub_kwargs: dict[str, Any] = {}
    if cache_dir is not None:
        hub_kwargs["cache_dir"] = os.fspath(cache_dir)
    if force_download:
        hub_kwargs["force_download"] = True
    if local_files_only:
        hub_kwargs["local_files_only"] = True
    if token is not None:
        hub_kwargs["token"] = token
    if revision is not None:
        hub_kwargs["revision"] = revision
    if subfolder:
        hub_kwargs["subfolder"] = subfolder
    return hub_kwargs


def resolve_tokenizer_files(source: str, file_ids: dict[str, str], **hub_kwargs) -> dict[str, str | None]:
    """Path of each file (``file_id -> filename``) in a local folder or hub repo; ``None`` when absent.

    Raises ``TokenizerFileError`` when ``source`` is neither an existing folder nor a reachable hub
    repo holding at least one of the files.
    """
    folder = source
    subfolder = hub_kwargs.get("subfolder")
    if os.path.isdir(source) and subfolder:
        folder = os.path.join(source, subfolder)
    if os.path.isdir(folder):
        return {
            file_id: (os.path.join(folder, name) if os.path.isfile(os.path.join(folder, name)) else None)
            for file_id, name in file_ids.items()
        }
    resolved: dict[str, str | None] = {}
    first_error: CheckpointError | None = None
    for file_id, name in file_ids.items():
        try:
            resolved[file_id] = resolve_file(source, name, required=False, **hub_kwargs)
        except CheckpointError as err:
            # Offline, a hub file that was never cached is "absent"; all absent is an error below.
            first_error = first_error or err
            resolved[file_id] = None
    if not any(resolved.values()):
        detail = f": {first_error}" if first_error else ""
        raise TokenizerFileError(
            f"Could not load a tokenizer from {source!r}: it is not a local directory, and no tokenizer files "
            f"({', '.join(sorted(set(file_ids.values())))}) could be fetched for it as a hub repo{detail}"
        )
    return resolved


def _local_named_templates(source: str, subfolder: str | None) -> dict[str, str]:
    folder = os.path.join(source, subfolder) if subfolder else source
    if not os.path.isdir(os.path.join(folder, CHAT_TEMPLATE_DIR)):
        return {}
    paths = sorted(glob.glob(os.path.join(folder, CHAT_TEMPLATE_DIR, "*.jinja")))
    return {os.path.basename(path)[: -len(".jinja")]: path for path in paths}


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
