"""What a tokenizer call returns: ``BatchEncoding``, and the enums and spans that describe it.

``BatchEncoding`` is a dict of model inputs (``input_ids``, ``attention_mask``...) that converts
itself to torch tensors or numpy arrays and, for fast tokenizers, answers alignment questions
(token <-> word <-> character) through the ``tokenizers.Encoding`` of each row.

Nothing here imports torch: ``"pt"`` tensors import it on demand.
"""

from __future__ import annotations

import sys
from collections import UserDict
from collections.abc import Mapping
from enum import Enum
from typing import Any, NamedTuple

import numpy as np


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


def parse_enum(enum_cls: type[Enum], value: Any, argument: str) -> Enum:
    """``value`` as a member of ``enum_cls``; a ValueError naming ``argument`` and the allowed values."""
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
        tensor_type = parse_enum(TensorType, tensor_type, "return_tensors")

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
