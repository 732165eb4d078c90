"""XGLM's sentencepiece tokenizer, with fairseq's id layout.

fairseq's dictionary and the sentencepiece model disagree on the first ids, so ids are shifted::

    id        0      1       2       3       4          5   ...   n + 1      n + 2 .. n + 8
    fairseq   <s>    <pad>   </s>    <unk>   piece 3    piece 4   piece n    <madeupword0..6>
    spm       <unk>  <s>     </s>    piece 3 piece 4 ...

(``n + 1`` = the number of sentencepiece pieces). Sentencepiece piece ``i`` has id ``i + 1``; the
seven ``<madeupword>`` fillers, which pad fairseq's dictionary, come last.

Special tokens follow the model, not the XLM-RoBERTa prose of the documentation: one sequence is
``</s> X`` and a pair ``</s> A </s> </s> B`` (XGLM was trained with ``</s>`` opening each document).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import sentencepiece as spm

from ...tokenization.files import TokenizerFileError
from ...tokenization.slow import PreTrainedTokenizer

SPIECE_UNDERLINE = "▁"
VOCAB_FILES_NAMES = {"vocab_file": "sentencepiece.bpe.model"}
NUM_MADEUP_WORDS = 7
# fairseq's own dictionary starts with these four, before the sentencepiece pieces.
FAIRSEQ_SPECIALS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
# Piece i of the sentencepiece model has fairseq id i + 1 (fairseq inserts <pad> before the pieces).
FAIRSEQ_OFFSET = 1


def madeup_words() -> list[str]:
    return [f"<madeupword{i}>" for i in range(NUM_MADEUP_WORDS)]


def with_madeup_words(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the ``<madeupword0..6>`` fillers appended to ``additional_special_tokens``."""
    extra = list(kwargs.get("additional_special_tokens") or [])
    extra += [word for word in madeup_words() if word not in {str(t) for t in extra}]
    kwargs["additional_special_tokens"] = extra
    return kwargs


class XGLMTokenizer(PreTrainedTokenizer):
    """XGLM tokenizer over a sentencepiece model (``sentencepiece.bpe.model``).

    Args:
        vocab_file: path of the sentencepiece model.
        bos_token, eos_token, sep_token, cls_token, unk_token, pad_token: ``<s>``, ``</s>``, ``</s>``,
            ``<s>``, ``<unk>``, ``<pad>``. ``sep_token`` opens every sequence.
        sp_model_kwargs: passed to ``sentencepiece.SentencePieceProcessor`` -- e.g.
            ``{"enable_sampling": True, "nbest_size": -1, "alpha": 0.1}`` for subword regularization.

    Attributes:
        sp_model: the ``SentencePieceProcessor`` doing the splitting.

    Example::

        tokenizer = XGLMTokenizer("sentencepiece.bpe.model")
        tokenizer("Hello world")["input_ids"]      # [2, ...]: </s> first, as XGLM was trained
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file=None, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                 unk_token="<unk>", pad_token="<pad>", sp_model_kwargs: dict[str, Any] | None = None, **kwargs) -> None:
        if vocab_file is None:
            raise TokenizerFileError("XGLMTokenizer needs vocab_file, the path of a sentencepiece model "
                                     f"({VOCAB_FILES_NAMES['vocab_file']}).")
        if sp_model_kwargs is not None and not isinstance(sp_model_kwargs, dict):
            raise TypeError(f"sp_model_kwargs must be a dict of SentencePieceProcessor options; got {sp_model_kwargs!r}")
        self.sp_model_kwargs = dict(sp_model_kwargs or {})
        self.vocab_file = os.fspath(vocab_file)
        self.sp_model = self._load_sp_model(self.vocab_file, self.sp_model_kwargs)
        self.fairseq_offset = FAIRSEQ_OFFSET
        self.num_madeup_words = NUM_MADEUP_WORDS
        sp_size = len(self.sp_model)
        self.fairseq_tokens_to_ids = dict(FAIRSEQ_SPECIALS)
        self.fairseq_tokens_to_ids.update({w: sp_size + FAIRSEQ_OFFSET + i for i, w in enumerate(madeup_words())})
        self.fairseq_ids_to_tokens = {i: t for t, i in self.fairseq_tokens_to_ids.items()}
        super().__init__(bos_token=bos_token, eos_token=eos_token, sep_token=sep_token, cls_token=cls_token,
                         unk_token=unk_token, pad_token=pad_token, sp_model_kwargs=self.sp_model_kwargs,
                         **with_madeup_words(kwargs))

    @staticmethod
    def _load_sp_model(path: str, options: dict[str, Any]) -> spm.SentencePieceProcessor:
        try:
            processor = spm.SentencePieceProcessor(**options)
        except TypeError as err:
            raise TypeError(f"sp_model_kwargs {options!r} are not SentencePieceProcessor options: {err}") from None
        if not os.path.isfile(path):
            raise TokenizerFileError(f"The sentencepiece model {path} does not exist.")
        try:
            processor.Load(path)
        except (OSError, RuntimeError) as err:
            raise TokenizerFileError(f"{path} is not a sentencepiece model: {err}") from None
        return processor

    # The processor is a C++ object: pickle its serialized model instead.
    def __getstate__(self):
        state = self.__dict__.copy()
        state["sp_model"] = None
        state["sp_model_proto"] = self.sp_model.serialized_model_proto()
        return state

    def __setstate__(self, state):
        proto = state.pop("sp_model_proto")
        self.__dict__ = state
        self.sp_model = spm.SentencePieceProcessor(**self.sp_model_kwargs)
        self.sp_model.LoadFromSerializedProto(proto)

    # -- vocabulary ------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self.sp_model) + FAIRSEQ_OFFSET + NUM_MADEUP_WORDS

    def get_vocab(self) -> dict[str, int]:
        vocab = {self._convert_id_to_token(i): i for i in range(self.vocab_size)}
        vocab.update(self.added_tokens_encoder)
        return vocab

    def _tokenize(self, text: str) -> list[str]:
        return self.sp_model.encode(text, out_type=str)

    def _convert_token_to_id(self, token: str) -> int:
        if token in self.fairseq_tokens_to_ids:
            return self.fairseq_tokens_to_ids[token]
        spm_id = self.sp_model.PieceToId(token)
        # sentencepiece answers 0 (its <unk>) for unknown pieces; fairseq's <unk> is 3.
        return spm_id + FAIRSEQ_OFFSET if spm_id else self.fairseq_tokens_to_ids["<unk>"]

    def _convert_id_to_token(self, index: int) -> str:
        if index in self.fairseq_ids_to_tokens:
            return self.fairseq_ids_to_tokens[index]
        if not 0 <= index - FAIRSEQ_OFFSET < len(self.sp_model):
            raise IndexError(f"token id {index} is outside the vocabulary of {self.vocab_size} ids")
        return self.sp_model.IdToPiece(index - FAIRSEQ_OFFSET)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(tokens).replace(SPIECE_UNDERLINE, " ").strip()

    # -- special tokens --------------------------------------------------------------------------

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        """``</s> A`` for one sequence, ``</s> A </s> </s> B`` for a pair (XGLM's documents start with ``</s>``)."""
        sep = [self.sep_token_id]
        if token_ids_1 is None:
            return sep + list(token_ids_0)
        return sep + list(token_ids_0) + sep + sep + list(token_ids_1)

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        """1 where :meth:`build_inputs_with_special_tokens` puts a special token, 0 on sequence tokens."""
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0)
        return [1] + [0] * len(token_ids_0) + [1, 1] + [0] * len(token_ids_1)

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int],
                                             token_ids_1: list[int] | None = None) -> list[int]:
        """All zeros (XGLM has no token types), as long as the sequence with its special tokens."""
        return [0] * len(self.build_inputs_with_special_tokens(token_ids_0, token_ids_1))

    # -- saving ----------------------------------------------------------------------------------

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write the sentencepiece model as ``[prefix-]sentencepiece.bpe.model``."""
        if not os.path.isdir(save_directory):
            raise TokenizerFileError(f"save_vocabulary needs an existing directory; {save_directory} is not one.")
        name = (f"{filename_prefix}-" if filename_prefix else "") + VOCAB_FILES_NAMES["vocab_file"]
        out = os.path.join(save_directory, name)
        if os.path.isfile(self.vocab_file):
            if os.path.abspath(self.vocab_file) != os.path.abspath(out):
                shutil.copyfile(self.vocab_file, out)
        else:  # the source file is gone (e.g. unpickled elsewhere): the processor still has the model
            with open(out, "wb") as handle:
                handle.write(self.sp_model.serialized_model_proto())
        return (out,)
