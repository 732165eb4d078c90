"""``EncodeOptions``: the keyword arguments of one encode call, checked once.

``tokenizer(text, ...)``, ``encode``, ``prepare_for_model`` and ``pad`` take the same options
(``padding``, ``truncation``, ``max_length``, ``return_tensors``...). They are read here, once per
call, into a frozen dataclass that the slow and fast ``_encode`` only read. A bad value fails here,
with an error naming the argument, before any text is tokenized.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .encoding import PaddingStrategy, TensorType, TruncationStrategy, parse_enum

logger = logging.getLogger(__name__)

# A model without a length limit gets this as model_max_length (the value the Hugging Face files carry).
VERY_LARGE_INTEGER = int(1e30)
# A model_max_length above this counts as unlimited: padding="max_length" and truncation are then off.
LARGE_INTEGER = int(1e20)


@dataclass(frozen=True)
class EncodeOptions:
    """How a tokenizer call turns texts into model inputs: the keywords of ``tokenizer(...)``.

    Construction checks every value and puts it in canonical form, so code reading the fields never
    sees user spellings: ``padding`` is a ``PaddingStrategy`` (``True`` -> longest, ``False``/``None``
    -> do_not_pad), ``truncation`` a ``TruncationStrategy`` (``True`` -> longest_first), and
    ``return_tensors`` a ``TensorType`` or ``None``. As in the Hugging Face API, a bare ``max_length``
    (no padding, ``truncation`` unset) means "truncate to it". ``from_kwargs`` builds the options of a
    call and applies the model's ``model_max_length`` where no ``max_length`` is given.

    Fields:
        add_special_tokens: add the model's special tokens (e.g. BOS/EOS) around the sequences.
        padding: ``"longest"``, ``"max_length"`` or ``"do_not_pad"``.
        truncation: ``"longest_first"``, ``"only_first"``, ``"only_second"`` or ``"do_not_truncate"``.
        max_length: the length to truncate / pad to (``None``: the model's limit, if bounded).
        stride: overlap between overflowing windows (with ``return_overflowing_tokens``).
        is_split_into_words: the texts are lists of words.
        pad_to_multiple_of: round padded lengths up to a multiple of this.
        padding_side: ``"left"`` or ``"right"`` for this call; ``None`` for the tokenizer's.
        return_tensors: ``"pt"`` (torch), ``"np"`` (numpy) or ``None`` (lists).
        return_token_type_ids / return_attention_mask: ``None`` follows ``model_input_names``.
        return_overflowing_tokens, return_special_tokens_mask, return_offsets_mapping, return_length:
            extra outputs (offsets need a fast tokenizer).
        verbose: warn about ignored settings and too-long sequences.
        split_special_tokens: tokenize special tokens' text as plain text (``None``: the tokenizer's setting).
        extra: the call's keywords that are not options, read-only. The tokenizer consumes them (a slow
            tokenizer's ``prepare_for_tokenization``, e.g. XLM's ``lang``) or refuses them by name.

    Raises:
        ValueError / TypeError naming the argument, e.g. ``padding='longer' is not valid``.

    Example:
        >>> options = EncodeOptions.from_kwargs({"padding": True, "truncation": True}, model_max_length=512)
        >>> options.padding, options.truncation, options.max_length
        (<PaddingStrategy.LONGEST: 'longest'>, <TruncationStrategy.LONGEST_FIRST: 'longest_first'>, 512)
    """

    add_special_tokens: bool = True
    padding: bool | str | PaddingStrategy | None = False
    truncation: bool | str | TruncationStrategy | None = None
    max_length: int | None = None
    stride: int = 0
    is_split_into_words: bool = False
    pad_to_multiple_of: int | None = None
    padding_side: str | None = None
    return_tensors: str | TensorType | None = None
    return_token_type_ids: bool | None = None
    return_attention_mask: bool | None = None
    return_overflowing_tokens: bool = False
    return_special_tokens_mask: bool = False
    return_offsets_mapping: bool = False
    return_length: bool = False
    verbose: bool = True
    split_special_tokens: bool | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        padding, truncation, max_length = self.padding, self.truncation, self.max_length
        # A bare max_length means "truncate to it", as it always has in this API.
        if max_length is not None and padding is False and truncation is None:
            truncation = TruncationStrategy.LONGEST_FIRST

        if padding is True:
            if self.verbose and max_length is not None and truncation in (None, False, "do_not_truncate"):
                logger.warning(
                    "max_length is ignored when padding=True and truncation is off; use padding='max_length' "
                    "to pad to max_length."
                )
            padding = PaddingStrategy.LONGEST
        elif padding is False or padding is None:
            padding = PaddingStrategy.DO_NOT_PAD
        else:
            padding = parse_enum(PaddingStrategy, padding, "padding")

        if truncation is True:
            truncation = TruncationStrategy.LONGEST_FIRST
        elif truncation is False or truncation is None:
            truncation = TruncationStrategy.DO_NOT_TRUNCATE
        else:
            truncation = parse_enum(TruncationStrategy, truncation, "truncation")

        if max_length is not None and (not isinstance(max_length, int) or max_length < 0):
            raise ValueError(f"max_length must be a non-negative int, got {max_length!r}.")
        if not isinstance(self.stride, int) or self.stride < 0:
            raise ValueError(f"stride must be a non-negative int, got {self.stride!r}.")
        multiple = self.pad_to_multiple_of
        if multiple is not None and (not isinstance(multiple, int) or multiple < 0):
            raise ValueError(f"pad_to_multiple_of must be a non-negative int or None, got {multiple!r}.")
        if (
            truncation != TruncationStrategy.DO_NOT_TRUNCATE
            and padding != PaddingStrategy.DO_NOT_PAD
            and multiple
            and max_length is not None
            and max_length % multiple != 0
        ):
            raise ValueError(
                f"Truncation and padding are both on, but max_length={max_length} is not a multiple of "
                f"pad_to_multiple_of={multiple}."
            )
        if self.padding_side is not None and self.padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {self.padding_side!r}.")
        return_tensors = self.return_tensors
        if return_tensors is not None:
            return_tensors = parse_enum(TensorType, return_tensors, "return_tensors")
        if not isinstance(self.extra, Mapping):
            raise TypeError(f"extra must be a mapping of keyword arguments, got {type(self.extra).__name__}.")

        # Frozen: the canonical values are set once, here.
        object.__setattr__(self, "padding", padding)
        object.__setattr__(self, "truncation", truncation)
        object.__setattr__(self, "return_tensors", return_tensors)
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    @classmethod
    def names(cls) -> frozenset[str]:
        """The option keywords (every field but ``extra``)."""
        return frozenset(option.name for option in dataclasses.fields(cls) if option.name != "extra")

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], model_max_length: int = VERY_LARGE_INTEGER) -> EncodeOptions:
        """The options of a call's keyword arguments, bounded by ``model_max_length``.

        Keywords that are not options go to ``extra``. Without ``max_length``, ``padding="max_length"``
        and truncation use ``model_max_length``, or are switched off when the model is unbounded
        (``model_max_length`` above ``LARGE_INTEGER``).
        """
        names = cls.names()
        options = cls(
            **{key: value for key, value in kwargs.items() if key in names},
            extra={key: value for key, value in kwargs.items() if key not in names},
        )
        return options.bounded_by(model_max_length)

    def bounded_by(self, model_max_length: int) -> EncodeOptions:
        """These options with ``model_max_length`` as the length when none was given (see ``from_kwargs``)."""
        if self.max_length is not None:
            return self
        padding, truncation, max_length = self.padding, self.truncation, None
        unbounded = model_max_length > LARGE_INTEGER
        if padding == PaddingStrategy.MAX_LENGTH:
            if unbounded:
                padding = PaddingStrategy.DO_NOT_PAD
            else:
                max_length = model_max_length
        if truncation != TruncationStrategy.DO_NOT_TRUNCATE:
            if unbounded:
                truncation = TruncationStrategy.DO_NOT_TRUNCATE
            else:
                max_length = model_max_length
        return dataclasses.replace(self, padding=padding, truncation=truncation, max_length=max_length)
