"""``PreTrainedTokenizer``: the base of tokenizers written in Python (sentencepiece, Moses + BPE...).

A subclass implements the model-specific steps:

- ``_tokenize(text)``: split plain text (no added tokens in it) into vocabulary tokens;
- ``_convert_token_to_id(token)`` / ``_convert_id_to_token(index)``;
- ``convert_tokens_to_string(tokens)``;
- ``vocab_size`` and ``get_vocab()`` (base vocabulary plus ``self.added_tokens_encoder``);
- ``save_vocabulary(save_directory, filename_prefix)``;
- optionally ``build_inputs_with_special_tokens``, ``get_special_tokens_mask``,
  ``create_token_type_ids_from_sequences`` (the defaults add no special tokens) and
  ``prepare_for_tokenization`` (text clean-up before splitting; it consumes its own keyword arguments).

The subclass must load its vocabulary *before* calling ``super().__init__(**kwargs)``: the base adds
special tokens missing from the vocabulary at its end, which needs ``get_vocab()``.

The base handles added tokens the way Hugging Face tokenizers do: they are matched whole in the
input (leftmost, then longest), honour their ``lstrip``/``rstrip``/``single_word`` flags, and never
reach ``_tokenize``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tokenizers import AddedToken

from .base import PreTrainedTokenizerBase, check_encodable
from .encoding import BatchEncoding, PaddingStrategy, TruncationStrategy
from .options import EncodeOptions

_END = ""  # marks the end of a word in the trie's nested dicts


class Trie:
    """The added tokens, for splitting a text around them in one pass.

    >>> trie = Trie(["<s>", "extra_id_1", "extra_id_100"])
    >>> trie.split("<s> a extra_id_100")
    ['<s>', ' a ', 'extra_id_100']
    """

    def __init__(self, words=()):
        self.data: dict = {}
        self._tokens: set[str] = set()
        for word in words:
            self.add(word)

    def add(self, word: str) -> None:
        if not word or word in self._tokens:
            return
        self._tokens.add(word)
        node = self.data
        for char in word:
            node = node.setdefault(char, {})
        node[_END] = True

    def split(self, text: str) -> list[str]:
        """``text`` cut around every added token: at each position the leftmost match wins, and the
        longest word among those starting there (as the ``tokenizers`` library matches added tokens)."""
        pieces: list[str] = []
        start = position = 0
        length = len(text)
        while position < length:
            node, cursor, match_end = self.data, position, -1
            while cursor < length and text[cursor] in node:
                node = node[text[cursor]]
                cursor += 1
                if _END in node:
                    match_end = cursor
            if match_end < 0:
                position += 1
                continue
            if start < position:
                pieces.append(text[start:position])
            pieces.append(text[position:match_end])
            start = position = match_end
        if start < length:
            pieces.append(text[start:])
        return pieces


class PreTrainedTokenizer(PreTrainedTokenizerBase):
    """Base class of pure-Python tokenizers; see the module docstring for what a subclass provides."""

    def __init__(self, **kwargs):
        self.tokens_trie = Trie()
        if not hasattr(self, "_added_tokens_decoder"):
            self._added_tokens_decoder: dict[int, AddedToken] = {}
        for index, token in (kwargs.pop("added_tokens_decoder", None) or {}).items():
            if isinstance(token, dict):
                token = AddedToken(**token)
            elif isinstance(token, str):
                token = AddedToken(token)
            if not isinstance(token, AddedToken):
                raise TypeError(f"added_tokens_decoder[{index}] must be an AddedToken, got {type(token).__name__}.")
            self._added_tokens_decoder[int(index)] = token
        self._added_tokens_encoder: dict[str, int] = {
            token.content: index for index, token in self._added_tokens_decoder.items()
        }
        super().__init__(**kwargs)
        # Special tokens the vocabulary lacks are appended to it, named ones first.
        specials = [
            value
            for value in [*self._special_tokens_map.values(), *self._additional_special_tokens]
            if value is not None and str(value) not in self._added_tokens_encoder
        ]
        self._add_tokens(specials, special_tokens=True)
        self._update_trie()

    @property
    def is_fast(self) -> bool:
        return False

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        return dict(sorted(self._added_tokens_decoder.items()))

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        return {token.content: index for index, token in sorted(self._added_tokens_decoder.items())}

    def __len__(self) -> int:
        return len(self.get_vocab())

    def _add_tokens(self, new_tokens: list[str | AddedToken], special_tokens: bool = False) -> int:
        vocab = dict(self.get_vocab())
        next_index = len(vocab)
        added = 0
        for token in new_tokens:
            if str(token) == "":
                continue
            if isinstance(token, str):
                if token in self._added_tokens_encoder:
                    continue
                is_special = special_tokens or token in self.all_special_tokens
                token = AddedToken(token, rstrip=False, lstrip=False, normalized=not is_special, special=is_special)
            elif special_tokens and not token.special:
                token = AddedToken(
                    token.content,
                    single_word=token.single_word,
                    lstrip=token.lstrip,
                    rstrip=token.rstrip,
                    normalized=token.normalized,
                    special=True,
                )
            if token.content in vocab:
                index = vocab[token.content]
            else:
                index = next_index + added
                vocab[token.content] = index
                added += 1
            if token.special and token.content not in self.all_special_tokens:
                # So that decode(skip_special_tokens=True) drops it too.
                self._additional_special_tokens.append(token)
            self._added_tokens_decoder[index] = token
            self._added_tokens_encoder[token.content] = index
        self._update_trie()
        return added

    def _update_trie(self) -> None:
        for token in self._added_tokens_decoder.values():
            self.tokens_trie.add(token.content)

    # -- text -> tokens --------------------------------------------------------------------------

    def prepare_for_tokenization(self, text: str, is_split_into_words: bool = False, **kwargs) -> tuple[str, dict]:
        """Adjust ``text`` before splitting; return it with the keyword arguments not consumed."""
        return text, kwargs

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs) -> list[str]:
        """Split ``text`` into tokens: added tokens whole, the rest through ``_tokenize``.

        ``pair`` and ``add_special_tokens`` are accepted for signature parity with fast tokenizers;
        with either, the tokens of the full model input (pair and special tokens included) are returned.
        """
        if pair is not None or add_special_tokens:
            ids = self.encode(text, pair, add_special_tokens=add_special_tokens, **kwargs)
            return self.convert_ids_to_tokens(ids)
        if isinstance(text, str):
            check_encodable(text)
        split_special_tokens = kwargs.pop("split_special_tokens", self.split_special_tokens)
        text, unused = self.prepare_for_tokenization(text, **kwargs)
        if unused:
            raise TypeError(f"{type(self).__name__}.tokenize() got unexpected keyword arguments {sorted(unused)}.")
        if split_special_tokens:
            return self._tokenize(text)

        pieces = self.tokens_trie.split(text)
        for i, piece in enumerate(pieces):
            index = self._added_tokens_encoder.get(piece)
            if index is None:
                continue
            token = self._added_tokens_decoder[index]
            left = pieces[i - 1] if i > 0 else None
            right = pieces[i + 1] if i < len(pieces) - 1 else None
            if token.rstrip and right:
                pieces[i + 1] = right.lstrip()
            if token.lstrip and left:
                pieces[i - 1] = left.rstrip()
            if token.single_word:
                # Inside a word the token is not a token: glue it back to its neighbour.
                if left and left[-1] != " ":
                    pieces[i - 1] += piece
                    pieces[i] = ""
                elif right and right[0] != " ":
                    pieces[i + 1] = piece + pieces[i + 1]
                    pieces[i] = ""

        tokens: list[str] = []
        for piece in pieces:
            if not piece:
                continue
            if piece in self._added_tokens_encoder:
                tokens.append(piece)
            else:
                tokens.extend(self._tokenize(piece))
        return tokens

    def _tokenize(self, text: str) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} must implement _tokenize(text).")

    def _convert_token_to_id_with_added_voc(self, token: str) -> int:
        if token in self._added_tokens_encoder:
            return self._added_tokens_encoder[token]
        return self._convert_token_to_id(token)

    def _convert_token_to_id(self, token: str) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement _convert_token_to_id(token).")

    def _convert_id_to_token(self, index: int) -> str:
        raise NotImplementedError(f"{type(self).__name__} must implement _convert_id_to_token(index).")

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        if isinstance(ids, int):
            return self._token_of(ids)
        skipped = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._token_of(int(index)) for index in ids if int(index) not in skipped]

    def _token_of(self, index: int) -> str:
        if index in self._added_tokens_decoder:
            return self._added_tokens_decoder[index].content
        return self._convert_id_to_token(index)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def _decode(
        self, token_ids: list[int], skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs
    ) -> str:
        if kwargs:
            raise TypeError(f"{type(self).__name__}.decode() got unexpected keyword arguments {sorted(kwargs)}.")
        tokens = self.convert_ids_to_tokens(token_ids, skip_special_tokens=skip_special_tokens)
        return self._clean_up_if_asked(self.convert_tokens_to_string(tokens), clean_up_tokenization_spaces)

    # -- ids -> model inputs ---------------------------------------------------------------------

    def _encode(self, items, is_batched, options: EncodeOptions) -> BatchEncoding:
        self._refuse_offsets(options)
        tokenize_kwargs = dict(options.extra)
        if options.split_special_tokens is not None:
            tokenize_kwargs["split_special_tokens"] = options.split_special_tokens

        tokenized = []  # inputs given as text (not ids): tokenize() reads options.extra for them

        def ids_of(value) -> list[int]:
            if value and isinstance(value[0], int):
                return list(value)  # already ids
            tokenized.append(value)
            if isinstance(value, str):
                return self.convert_tokens_to_ids(self.tokenize(value, **tokenize_kwargs))
            if options.is_split_into_words:
                words = [self.tokenize(word, is_split_into_words=True, **tokenize_kwargs) for word in value]
                return self.convert_tokens_to_ids([token for tokens in words for token in tokens])
            return self.convert_tokens_to_ids(list(value))

        pairs = [(ids_of(first), None if second is None else ids_of(second)) for first, second in items]
        if options.extra and not tokenized:
            raise TypeError(
                f"{type(self).__name__}() got keyword arguments {sorted(options.extra)} that only apply to text, "
                f"but no input is text."
            )
        if not is_batched:
            ids, pair_ids = pairs[0]
            return self._prepare_for_model(ids, pair_ids, options, prepend_batch_axis=True)

        # Rows are built as lists; the batch is padded and converted to tensors as a whole below.
        row_options = dataclasses.replace(
            options,
            padding=PaddingStrategy.DO_NOT_PAD,
            pad_to_multiple_of=None,
            padding_side=None,
            return_tensors=None,
            return_attention_mask=False,
        )
        rows = [self._prepare_for_model(ids, pair_ids, row_options) for ids, pair_ids in pairs]
        batch: dict[str, list] = {key: [] for row in rows for key in row}
        # Only truncated rows report an overflow; the others get an empty one so that every key has a value per row.
        defaults = {"overflowing_tokens": [], "num_truncated_tokens": 0}
        for row in rows:
            for key in batch:
                batch[key].append(row[key] if key in row else defaults[key])
        if options.return_tensors and options.return_overflowing_tokens:
            # Overflow lists differ in length per row, so they cannot become one tensor.
            batch.pop("overflowing_tokens", None)
            batch.pop("num_truncated_tokens", None)
        if not items:
            batch = {"input_ids": []}
        padded = self.pad(
            batch,
            padding=options.padding,
            max_length=options.max_length,
            pad_to_multiple_of=options.pad_to_multiple_of,
            padding_side=options.padding_side,
            return_attention_mask=options.return_attention_mask,
        )
        return BatchEncoding(dict(padded), tensor_type=options.return_tensors)

    def _refuse_offsets(self, options: EncodeOptions) -> None:
        if options.return_offsets_mapping:
            raise NotImplementedError(
                f"return_offsets_mapping needs a fast tokenizer; {type(self).__name__} is pure Python."
            )

    def prepare_for_model(
        self, ids: list[int], pair_ids: list[int] | None = None, prepend_batch_axis: bool = False, **options
    ) -> BatchEncoding:
        """Model inputs from ids: truncate, add special tokens, build the masks, pad.

        ``options`` are those of ``__call__`` (``EncodeOptions``); keywords that are not options are
        refused by name.
        """
        encode_options = self._encode_options(**options)
        if encode_options.extra:
            raise TypeError(
                f"{type(self).__name__}.prepare_for_model() got unexpected keyword arguments "
                f"{sorted(encode_options.extra)}."
            )
        self._refuse_offsets(encode_options)
        return self._prepare_for_model(ids, pair_ids, encode_options, prepend_batch_axis=prepend_batch_axis)

    def _prepare_for_model(
        self, ids: list[int], pair_ids: list[int] | None, options: EncodeOptions, prepend_batch_axis: bool = False
    ) -> BatchEncoding:
        truncation, max_length = options.truncation, options.max_length
        longest_first = truncation == TruncationStrategy.LONGEST_FIRST
        if options.return_overflowing_tokens and longest_first and pair_ids is not None:
            raise ValueError(
                "return_overflowing_tokens=True cannot be used with truncation='longest_first' on a pair of "
                "sequences; use truncation='only_first' or 'only_second'."
            )
        return_token_type_ids = options.return_token_type_ids
        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        return_attention_mask = options.return_attention_mask
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names

        add_special_tokens = options.add_special_tokens
        num_special = self.num_special_tokens_to_add(pair=pair_ids is not None) if add_special_tokens else 0
        total_length = len(ids) + len(pair_ids or []) + num_special
        overflowing: list[int] = []
        if truncation != TruncationStrategy.DO_NOT_TRUNCATE and max_length and total_length > max_length:
            ids, pair_ids, overflowing = self.truncate_sequences(
                ids,
                pair_ids=pair_ids,
                num_tokens_to_remove=total_length - max_length,
                truncation_strategy=truncation,
                stride=options.stride,
            )

        if add_special_tokens:
            sequence = self.build_inputs_with_special_tokens(ids, pair_ids)
            token_type_ids = self.create_token_type_ids_from_sequences(ids, pair_ids)
        else:
            sequence = list(ids) + list(pair_ids or [])
            token_type_ids = [0] * len(sequence)

        encoded: dict[str, Any] = {"input_ids": sequence}
        if return_token_type_ids:
            encoded["token_type_ids"] = token_type_ids
        if options.return_special_tokens_mask:
            encoded["special_tokens_mask"] = (
                self.get_special_tokens_mask(ids, pair_ids) if add_special_tokens else [0] * len(sequence)
            )
        if options.return_overflowing_tokens and not options.return_tensors and overflowing:
            encoded["overflowing_tokens"] = overflowing
            encoded["num_truncated_tokens"] = total_length - max_length if max_length else 0
        self._eventual_warn_about_too_long_sequence(sequence, max_length, options.verbose)

        if options.padding != PaddingStrategy.DO_NOT_PAD or return_attention_mask:
            encoded = dict(
                self.pad(
                    encoded,
                    padding=options.padding,
                    max_length=max_length,
                    pad_to_multiple_of=options.pad_to_multiple_of,
                    padding_side=options.padding_side,
                    return_attention_mask=return_attention_mask,
                )
            )
        if options.return_length:
            encoded["length"] = len(encoded["input_ids"])
        return BatchEncoding(encoded, tensor_type=options.return_tensors, prepend_batch_axis=prepend_batch_axis)

    def truncate_sequences(
        self,
        ids: list[int],
        pair_ids: list[int] | None = None,
        num_tokens_to_remove: int = 0,
        truncation_strategy: str | TruncationStrategy = "longest_first",
        stride: int = 0,
    ) -> tuple[list[int], list[int] | None, list[int]]:
        """Remove ``num_tokens_to_remove`` tokens on ``truncation_side``; return ``(ids, pair_ids, overflow)``.

        ``overflow`` holds the removed tokens plus ``stride`` tokens of context (``only_first``,
        ``only_second``, or ``longest_first`` on a single sequence). ``longest_first`` on a pair takes
        tokens from the longer sequence first, then from both alternately, and returns no overflow.
        """
        if num_tokens_to_remove <= 0:
            return ids, pair_ids, []
        strategy = TruncationStrategy(truncation_strategy)
        right = self.truncation_side == "right"
        if strategy == TruncationStrategy.ONLY_FIRST or (
            strategy == TruncationStrategy.LONGEST_FIRST and pair_ids is None
        ):
            window = min(len(ids), stride + num_tokens_to_remove)
            if right:
                return ids[:-num_tokens_to_remove], pair_ids, ids[-window:]
            return ids[num_tokens_to_remove:], pair_ids, ids[:window]
        if strategy == TruncationStrategy.LONGEST_FIRST:
            first_length, second_length = len(ids), len(pair_ids)
            from_longer = min(abs(first_length - second_length), num_tokens_to_remove)
            from_both = num_tokens_to_remove - from_longer
            if first_length > second_length:
                cut_first, cut_second = from_longer + from_both // 2, from_both - from_both // 2
            else:
                cut_first, cut_second = from_both // 2, from_longer + from_both - from_both // 2
            if right:
                ids = ids[:-cut_first] if cut_first else ids
                pair_ids = pair_ids[:-cut_second] if cut_second else pair_ids
            else:
                ids, pair_ids = ids[cut_first:], pair_ids[cut_second:]
            return ids, pair_ids, []
        if strategy == TruncationStrategy.ONLY_SECOND and pair_ids:
            window = min(len(pair_ids), stride + num_tokens_to_remove)
            if right:
                return ids, pair_ids[:-num_tokens_to_remove], pair_ids[-window:]
            return ids, pair_ids[num_tokens_to_remove:], pair_ids[:window]
        return ids, pair_ids, []

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        raise NotImplementedError(f"{type(self).__name__} must implement save_vocabulary(save_directory, prefix).")
