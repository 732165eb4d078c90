"""``PreTrainedTokenizerFast``: a tokenizer whose work is done by the Rust ``tokenizers`` library.

The backend (a ``tokenizers.Tokenizer``, usually read from ``tokenizer.json``) normalizes, splits,
applies the model and the post-processor (special tokens), pads and truncates. This class sets the
backend's padding/truncation for each call from the usual arguments, restores the backend's own
settings afterwards, and turns the ``tokenizers.Encoding`` results into a ``BatchEncoding`` (which
keeps them for offsets, word ids and the other alignments).

When the backend has no post-processor, or ``add_bos_token``/``add_eos_token`` are passed, a
template post-processor is installed that adds exactly those tokens (the behaviour of the
Transformers 5 fast tokenizer this class mirrors).
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from tokenizers import AddedToken, Tokenizer, processors

from .base import PreTrainedTokenizerBase
from .encoding import BatchEncoding, PaddingStrategy, TruncationStrategy
from .files import TOKENIZER_FILE, TokenizerFileError
from .options import EncodeOptions

# decode() keywords of other tokenizer versions that have no effect here.
_IGNORED_DECODE_KWARGS = frozenset({"use_source_tokenizer", "spaces_between_special_tokens"})


def load_backend(tokenizer_file: str | os.PathLike) -> Tokenizer:
    """Read a ``tokenizer.json``; errors name the file."""
    path = os.fspath(tokenizer_file)
    if not os.path.isfile(path):
        raise TokenizerFileError(f"The tokenizer file {path} does not exist.")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as err:
        raise TokenizerFileError(f"Could not read the tokenizer file {path}: {err}.") from None
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        raise TokenizerFileError(
            f"The tokenizer file {path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})."
        ) from None
    try:
        return Tokenizer.from_str(text)
    except Exception as err:  # the Rust side raises a bare Exception describing the bad field
        raise TokenizerFileError(f"The tokenizer file {path} is not a valid tokenizers serialization: {err}.") from None


def pipeline_components(pre_tokenizer_state: dict | None, decoder_state: dict | None):
    """Build a pre-tokenizer and a decoder from their JSON states (as found in ``tokenizer.json``).

    They are deserialized through a tokenizer with an empty vocabulary, so no pickle is involved
    and nothing large is parsed. Returns ``(pre_tokenizer, decoder)``.
    """
    minimal = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": pre_tokenizer_state,
        "post_processor": None,
        "decoder": decoder_state,
        "model": {"type": "BPE", "vocab": {}, "merges": []},
    }
    backend = Tokenizer.from_str(json.dumps(minimal))
    return backend.pre_tokenizer, backend.decoder


def component_state(component) -> dict | None:
    """The JSON state of a pre-tokenizer, decoder or post-processor (``None`` for none)."""
    if component is None:
        return None
    return json.loads(component.__getstate__())


class PreTrainedTokenizerFast(PreTrainedTokenizerBase):
    """A tokenizer backed by a ``tokenizers.Tokenizer``.

    Args:
        tokenizer_object: a ``tokenizers.Tokenizer`` to use (copied).
        tokenizer_file: path of a ``tokenizer.json``.
        add_bos_token / add_eos_token: rebuild the post-processor to add exactly these tokens.
        **kwargs: the common arguments of ``PreTrainedTokenizerBase`` (special tokens, padding_side...).
    """

    vocab_files_names = {"tokenizer_file": TOKENIZER_FILE}

    def __init__(self, *, tokenizer_object: Tokenizer | None = None, tokenizer_file: str | None = None, **kwargs):
        if tokenizer_object is not None:
            if not isinstance(tokenizer_object, Tokenizer):
                raise TypeError(
                    f"tokenizer_object must be a tokenizers.Tokenizer, got {type(tokenizer_object).__name__}."
                )
            backend = Tokenizer.from_str(tokenizer_object.to_str())
        elif tokenizer_file is not None:
            backend = load_backend(tokenizer_file)
        else:
            backend = self._backend_without_tokenizer_file(kwargs)
            if backend is None:
                raise ValueError(
                    f"{type(self).__name__} needs a backend: pass tokenizer_file= (a tokenizer.json), "
                    f"tokenizer_object= (a tokenizers.Tokenizer), or use from_pretrained(folder)."
                )
        self._tokenizer = backend

        added_tokens_decoder = kwargs.pop("added_tokens_decoder", None) or {}
        explicit_bos_eos = "add_bos_token" in kwargs or "add_eos_token" in kwargs
        self._add_bos_token = bool(kwargs.pop("add_bos_token", False))
        self._add_eos_token = bool(kwargs.pop("add_eos_token", False))
        super().__init__(**kwargs)
        self._tokenizer.encode_special_tokens = self.split_special_tokens

        # Added tokens of the config, then special tokens the backend does not know yet.
        to_add = [token for _, token in sorted(added_tokens_decoder.items())]
        known = set(self.added_tokens_encoder) | {str(token) for token in to_add}
        named = {str(value) for value in self._special_tokens_map.values() if value is not None}
        for value in [*self._special_tokens_map.values(), *self._additional_special_tokens]:
            if value is None or str(value) in known:
                continue
            if isinstance(value, str):
                value = AddedToken(value, special=True)
            elif not value.special and value.content in named:
                value = AddedToken(
                    value.content,
                    single_word=value.single_word,
                    lstrip=value.lstrip,
                    rstrip=value.rstrip,
                    normalized=value.normalized,
                    special=True,
                )
            to_add.append(value)
            known.add(str(value))
        if to_add:
            self._tokenizer.add_tokens(to_add)
        if explicit_bos_eos or self._tokenizer.post_processor is None:
            self.update_post_processor()

    @classmethod
    def _can_build_without_tokenizer_file(cls, init_kwargs: dict[str, Any]) -> bool:
        return False

    def _backend_without_tokenizer_file(self, kwargs: dict[str, Any]) -> Tokenizer | None:
        """A backend built from other vocabulary files (subclasses); ``None`` when impossible."""
        return None

    @classmethod
    def _check_loadable(cls, init_kwargs: dict[str, Any], source: str) -> None:
        if init_kwargs.get("tokenizer_file") or init_kwargs.get("tokenizer_object"):
            return
        if cls._can_build_without_tokenizer_file(init_kwargs):
            return
        others = sorted(name for key, name in cls.vocab_files_names.items() if key != "tokenizer_file")
        alternative = f" (or {', '.join(others)})" if others else ""
        raise TokenizerFileError(f"{source} has no {TOKENIZER_FILE}{alternative}, which {cls.__name__} needs.")

    # -- backend access --------------------------------------------------------------------------

    @property
    def is_fast(self) -> bool:
        return True

    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The ``tokenizers.Tokenizer`` doing the work."""
        return self._tokenizer

    @property
    def decoder(self):
        return self._tokenizer.decoder

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self._tokenizer.get_vocab(with_added_tokens=True)

    @property
    def vocab(self) -> dict[str, int]:
        return self.get_vocab()

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        return dict(sorted(self._tokenizer.get_added_tokens_decoder().items()))

    def _save_added_tokens_decoder(self) -> bool:
        return False  # tokenizer.json records them

    def _add_tokens(self, new_tokens: list[str | AddedToken], special_tokens: bool = False) -> int:
        if special_tokens:
            return self._tokenizer.add_special_tokens(new_tokens)
        return self._tokenizer.add_tokens(new_tokens)

    def _convert_token_to_id_with_added_voc(self, token: str) -> int:
        index = self._tokenizer.token_to_id(token)
        if index is None and token != self.unk_token:  # (an unknown unk_token must not recurse)
            return self.unk_token_id
        return index

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        if isinstance(ids, int):
            return self._tokenizer.id_to_token(ids)
        skipped = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._tokenizer.id_to_token(int(index)) for index in ids if int(index) not in skipped]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        if self._tokenizer.decoder is None:
            return " ".join(tokens)
        return self._tokenizer.decoder.decode(tokens)

    # -- special tokens added by the post-processor ----------------------------------------------

    @property
    def add_bos_token(self) -> bool:
        return self._add_bos_token

    @add_bos_token.setter
    def add_bos_token(self, value: bool) -> None:
        self._add_bos_token = bool(value)
        self.update_post_processor()

    @property
    def add_eos_token(self) -> bool:
        return self._add_eos_token

    @add_eos_token.setter
    def add_eos_token(self, value: bool) -> None:
        self._add_eos_token = bool(value)
        self.update_post_processor()

    def update_post_processor(self) -> None:
        """Install a post-processor adding ``bos_token`` first / ``eos_token`` last when asked for."""
        bos, eos = self.bos_token, self.eos_token
        add_bos = self._add_bos_token and bos is not None
        add_eos = self._add_eos_token and eos is not None
        single = f"{bos + ':0 ' if add_bos else ''}$A:0{' ' + eos + ':0' if add_eos else ''}"
        pair = f"{single}{' ' + bos + ':1' if add_bos else ''} $B:1{' ' + eos + ':1' if add_eos else ''}"
        special_tokens = []
        if add_bos:
            special_tokens.append((bos, self.bos_token_id))
        if add_eos:
            special_tokens.append((eos, self.eos_token_id))
        self._tokenizer.post_processor = processors.TemplateProcessing(
            single=single, pair=pair, special_tokens=special_tokens
        )

    def _layout(self, pair: bool) -> list[tuple[str, Any, int]]:
        """The post-processor's output as pieces ``(kind, ids, type_id)``, kind ``"A"``, ``"B"`` or ``"special"``."""
        default = [("A", None, 0)] + ([("B", None, 1)] if pair else [])
        state = component_state(self._tokenizer.post_processor)
        processors_states = [] if state is None else state.get("processors", [state])
        layout = default
        for processor in processors_states:
            kind = processor.get("type")
            if kind == "ByteLevel":
                continue  # offsets only
            if kind == "TemplateProcessing":
                layout = []
                for piece in processor["pair" if pair else "single"]:
                    if "Sequence" in piece:
                        layout.append((piece["Sequence"]["id"], None, piece["Sequence"]["type_id"]))
                    else:
                        token = piece["SpecialToken"]
                        ids = processor["special_tokens"][token["id"]]["ids"]
                        layout.append(("special", list(ids), token["type_id"]))
            elif kind in ("BertProcessing", "RobertaProcessing"):
                cls_id, sep_id = processor["cls"][1], processor["sep"][1]
                second_type = 1 if kind == "BertProcessing" else 0
                layout = [("special", [cls_id], 0), ("A", None, 0), ("special", [sep_id], 0)]
                if pair:
                    if kind == "RobertaProcessing":
                        layout.append(("special", [sep_id], 0))
                    layout += [("B", None, second_type), ("special", [sep_id], second_type)]
            else:
                raise NotImplementedError(
                    f"{type(self).__name__} cannot lay out special tokens for a {kind} post-processor."
                )
        return layout

    def _apply_layout(self, token_ids_0, token_ids_1=None) -> tuple[list[int], list[int], list[int]]:
        ids, type_ids, special = [], [], []
        for kind, payload, type_id in self._layout(pair=token_ids_1 is not None):
            if kind == "special":
                pieces, flag = payload, 1
            else:
                pieces, flag = (token_ids_0 if kind == "A" else token_ids_1), 0
            ids += list(pieces)
            type_ids += [type_id] * len(pieces)
            special += [flag] * len(pieces)
        return ids, type_ids, special

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None) -> list[int]:
        """The ids the post-processor would produce around ``token_ids_0`` (and ``token_ids_1``)."""
        return self._apply_layout(token_ids_0, token_ids_1)[0]

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None) -> list[int]:
        return self._apply_layout(token_ids_0, token_ids_1)[1]

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False) -> list[int]:
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        return self._apply_layout(token_ids_0, token_ids_1)[2]

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._tokenizer.num_special_tokens_to_add(pair)

    def _leading_special_text(self) -> str:
        """The text of the special tokens the post-processor puts before the first sequence ("" if none)."""
        text = ""
        for kind, payload, _ in self._layout(pair=False):
            if kind != "special":
                break
            text += "".join(self._tokenizer.id_to_token(i) or "" for i in payload)
        return text

    def _strip_leading_specials(self, inputs: list) -> list[int]:
        """Drop from each text a prefix the post-processor is about to add anyway; return the chars dropped.

        # A chat prompt rendered by its template already starts with the checkpoint's prefix (GLM-4's
        # "[gMASK]<sop>"); encoding it with special tokens would otherwise repeat that prefix.
        """
        prefix = self._leading_special_text()
        shifts = [0] * len(inputs)
        if not prefix:
            return shifts
        for i, value in enumerate(inputs):
            first = value[0] if isinstance(value, tuple) else value
            if isinstance(first, str) and first.startswith(prefix):
                stripped = first[len(prefix):]
                inputs[i] = (stripped, value[1]) if isinstance(value, tuple) else stripped
                shifts[i] = len(prefix)
        return shifts

    # -- encoding --------------------------------------------------------------------------------

    def _check_pretokenized_input(self, is_split_into_words: bool) -> None:
        """Subclasses refuse pre-split words when their pre-tokenizer cannot handle them."""

    @contextlib.contextmanager
    def _backend_configured(self, options: EncodeOptions):
        # The backend keeps padding/truncation as state; set them for this call, then put back its own.
        backend = self._tokenizer
        saved_truncation, saved_padding = backend.truncation, backend.padding
        try:
            if options.truncation == TruncationStrategy.DO_NOT_TRUNCATE:
                backend.no_truncation()
            else:
                backend.enable_truncation(
                    options.max_length,
                    stride=options.stride,
                    strategy=options.truncation.value,
                    direction=self.truncation_side,
                )
            if options.padding == PaddingStrategy.DO_NOT_PAD:
                backend.no_padding()
            else:
                backend.enable_padding(
                    length=options.max_length if options.padding == PaddingStrategy.MAX_LENGTH else None,
                    direction=options.padding_side if options.padding_side is not None else self.padding_side,
                    pad_id=self.pad_token_id,
                    pad_type_id=self.pad_token_type_id,
                    pad_token=self.pad_token,
                    pad_to_multiple_of=options.pad_to_multiple_of,
                )
            yield backend
        finally:
            if saved_truncation is None:
                backend.no_truncation()
            else:
                backend.enable_truncation(**saved_truncation)
            if saved_padding is None:
                backend.no_padding()
            else:
                backend.enable_padding(**saved_padding)

    def _encode(self, items, is_batched, options: EncodeOptions) -> BatchEncoding:
        if options.extra:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments {sorted(options.extra)}.")
        self._check_pretokenized_input(options.is_split_into_words)
        inputs = []
        for first, second in items:
            for value in (first, second):
                if isinstance(value, list) and value and isinstance(value[0], int):
                    raise TypeError(
                        f"{type(self).__name__} encodes text, not token ids; pass ids to pad() or "
                        f"build_inputs_with_special_tokens() instead."
                    )
            inputs.append(first if second is None else (first, second))

        shifts = [0] * len(inputs)
        if options.add_special_tokens and not options.is_split_into_words:
            shifts = self._strip_leading_specials(inputs)
        split_special_tokens = options.split_special_tokens
        if split_special_tokens is None:
            split_special_tokens = self.split_special_tokens
        self._tokenizer.encode_special_tokens = split_special_tokens
        with self._backend_configured(options) as backend:
            try:
                encodings = backend.encode_batch(
                    inputs, add_special_tokens=options.add_special_tokens, is_pretokenized=options.is_split_into_words
                )
            except Exception as err:  # tokenizers raises bare Exceptions (e.g. truncation impossible)
                raise ValueError(f"{type(self).__name__} could not encode the input: {err}") from err
        self._tokenizer.encode_special_tokens = self.split_special_tokens

        return_token_type_ids = options.return_token_type_ids
        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        return_attention_mask = options.return_attention_mask
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        return_overflowing_tokens = options.return_overflowing_tokens

        rows, sample_of_row = [], []
        for sample, encoding in enumerate(encodings):
            windows = [encoding] + (list(encoding.overflowing) if return_overflowing_tokens else [])
            rows += windows
            sample_of_row += [sample] * len(windows)
        data: dict[str, list] = {"input_ids": [row.ids for row in rows]}
        if return_token_type_ids:
            data["token_type_ids"] = [row.type_ids for row in rows]
        if return_attention_mask:
            data["attention_mask"] = [row.attention_mask for row in rows]
        if options.return_special_tokens_mask:
            data["special_tokens_mask"] = [row.special_tokens_mask for row in rows]
        if options.return_offsets_mapping:
            data["offset_mapping"] = [
                [(a + shifts[sample], b + shifts[sample]) if seq == 0 else (a, b)
                 for (a, b), seq in zip(row.offsets, row.sequence_ids)]
                for row, sample in zip(rows, sample_of_row)
            ]
        if options.return_length:
            data["length"] = [len(row.ids) for row in rows]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample_of_row
        for ids in data["input_ids"]:
            self._eventual_warn_about_too_long_sequence(ids, options.max_length, options.verbose)

        if not is_batched and options.return_tensors is None and not return_overflowing_tokens:
            # One text in, one row out: drop the batch level of the per-token lists.
            data = {key: value[0] if value and isinstance(value[0], list) else value for key, value in data.items()}
            return BatchEncoding(data, rows)
        return BatchEncoding(data, rows, tensor_type=options.return_tensors)

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs) -> list[str]:
        """The token strings of ``text`` (and ``pair``)."""
        return self(text, pair, add_special_tokens=add_special_tokens, **kwargs).tokens()

    # -- decoding --------------------------------------------------------------------------------

    def _decode(
        self, token_ids: list[int], skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs
    ) -> str:
        unknown = set(kwargs) - _IGNORED_DECODE_KWARGS
        if unknown:
            raise TypeError(f"{type(self).__name__}.decode() got unexpected keyword arguments {sorted(unknown)}.")
        text = self._tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens)
        return self._clean_up_if_asked(text, clean_up_tokenization_spaces)

    # -- saving ----------------------------------------------------------------------------------

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write ``tokenizer.json`` (the whole backend, added tokens included)."""
        path = os.path.join(save_directory, (f"{filename_prefix}-" if filename_prefix else "") + TOKENIZER_FILE)
        self._tokenizer.save(path)
        return (path,)
