"""XGLM's tokenizer on the ``tokenizers`` library: read from ``tokenizer.json``, or converted from the
sentencepiece model when a checkpoint has none. Ids equal :class:`XGLMTokenizer`'s."""

from __future__ import annotations

import os
import shutil

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE as BPEModel
from tokenizers.models import Unigram

from ...tokenization.base import TokenizerFileError
from ...tokenization.fast import PreTrainedTokenizerFast
from .sentencepiece_model import BPE, CONTROL, UNIGRAM, UNKNOWN, USER_DEFINED, bpe_merges, read_sentencepiece_model
from .tokenization_xglm import FAIRSEQ_SPECIALS, SPIECE_UNDERLINE, XGLMTokenizer, madeup_words, with_madeup_words

VOCAB_FILES_NAMES = {"vocab_file": "sentencepiece.bpe.model", "tokenizer_file": "tokenizer.json"}


def xglm_backend_from_sentencepiece(vocab_file: str | os.PathLike) -> Tokenizer:
    """The ``tokenizers`` pipeline equivalent to :class:`XGLMTokenizer` over ``vocab_file``.

    - model: Unigram (or, for a sentencepiece BPE model, BPE with the merges its scores rank) over
      fairseq's ids -- the four fairseq specials, sentencepiece pieces 3.. (so piece ``i`` gets id
      ``i + 1``), then the seven ``<madeupword>``; unknown pieces give ``<unk>`` (3);
    - normalizer: the model's precompiled character map (its NFKC rules), then, like sentencepiece's
      ``remove_extra_whitespaces``, trailing spaces stripped and runs of spaces collapsed;
    - pre-tokenizer / decoder: Metaspace ``▁`` with a prefix space, as sentencepiece's dummy prefix;
    - post-processor: ``</s> $A`` and ``</s> $A </s> </s> $B``.

    Raises:
        TokenizerFileError: the file is not a sentencepiece model, or one of type word or char.
    """
    path = os.fspath(vocab_file)
    model = read_sentencepiece_model(path)
    if model.model_type not in (UNIGRAM, BPE):
        raise TokenizerFileError(
            f"{path} is a sentencepiece model of type {model.model_type}; XGLMTokenizerFast converts unigram "
            "(type 1) and BPE (type 2) models. Use XGLMTokenizer (the sentencepiece one) for it."
        )
    vocab = [(token, 0.0) for token in FAIRSEQ_SPECIALS]
    vocab += [(piece, score) for piece, score, _ in model.pieces[3:]]  # sentencepiece's own 0..2 are <unk> <s> </s>
    vocab += [(word, 0.0) for word in madeup_words()]
    if model.model_type == UNIGRAM:
        backend = Tokenizer(Unigram(vocab, unk_id=FAIRSEQ_SPECIALS["<unk>"], byte_fallback=False))
    else:
        unk = next((piece for piece, _, kind in model.pieces if kind == UNKNOWN), "<unk>")
        backend = Tokenizer(BPEModel({token: i for i, (token, _) in enumerate(vocab)}, bpe_merges(model.pieces, vocab),
                                     unk_token=unk, fuse_unk=True, byte_fallback=False, dropout=None))
    # Control and user-defined pieces are matched whole, before normalization, as sentencepiece does.
    backend.add_tokens([AddedToken(piece, normalized=False, special=kind == CONTROL)
                        for piece, _, kind in model.pieces if kind in (CONTROL, USER_DEFINED)])
    steps = [normalizers.Strip(left=False, right=True), normalizers.Replace(Regex(" {2,}"), SPIECE_UNDERLINE)]
    if model.precompiled_charsmap:
        steps.insert(0, normalizers.Precompiled(model.precompiled_charsmap))
    backend.normalizer = normalizers.Sequence(steps)
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(
        single="</s> $A", pair="</s> $A </s> </s> $B",
        special_tokens=[("<s>", FAIRSEQ_SPECIALS["<s>"]), ("</s>", FAIRSEQ_SPECIALS["</s>"])],
    )
    return backend


class XGLMTokenizerFast(PreTrainedTokenizerFast):
    """XGLM tokenizer backed by ``tokenizers``.

    Args:
        vocab_file: the sentencepiece model, converted when no ``tokenizer_file`` is given (and kept
            so ``save_pretrained`` can write it for the slow tokenizer).
        tokenizer_file: a ``tokenizer.json``.
        bos_token, eos_token, sep_token, cls_token, unk_token, pad_token: as :class:`XGLMTokenizer`.
        additional_special_tokens: more special tokens; the seven ``<madeupword>`` are always added.

    Example::

        tokenizer = XGLMTokenizerFast(vocab_file="sentencepiece.bpe.model")
        tokenizer("Hello world")["input_ids"]      # the same ids as XGLMTokenizer
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]
    slow_tokenizer_class = XGLMTokenizer

    def __init__(self, vocab_file=None, tokenizer_file=None, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                 cls_token="<s>", unk_token="<unk>", pad_token="<pad>", **kwargs) -> None:
        self.vocab_file = None if vocab_file is None else os.fspath(vocab_file)
        super().__init__(tokenizer_file=tokenizer_file, bos_token=bos_token, eos_token=eos_token,
                         sep_token=sep_token, cls_token=cls_token, unk_token=unk_token, pad_token=pad_token,
                         **with_madeup_words(kwargs))

    @classmethod
    def _can_build_without_tokenizer_file(cls, init_kwargs) -> bool:
        return init_kwargs.get("vocab_file") is not None or init_kwargs.get("tokenizer_object") is not None

    def _backend_without_tokenizer_file(self, kwargs) -> Tokenizer | None:
        if self.vocab_file is None:
            return None
        return xglm_backend_from_sentencepiece(self.vocab_file)

    @property
    def can_save_slow_tokenizer(self) -> bool:
        return self.vocab_file is not None and os.path.isfile(self.vocab_file)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write ``tokenizer.json``, and the sentencepiece model too when it is known (for the slow tokenizer)."""
        written = super().save_vocabulary(save_directory, filename_prefix)
        if self.can_save_slow_tokenizer:
            name = (f"{filename_prefix}-" if filename_prefix else "") + VOCAB_FILES_NAMES["vocab_file"]
            out = os.path.join(save_directory, name)
            if os.path.abspath(self.vocab_file) != os.path.abspath(out):
                shutil.copyfile(self.vocab_file, out)
            written += (out,)
        return written
