"""XLM's tokenizer: Moses pre-processing and word splitting, then BPE with ``</w>`` word ends.

The pipeline for a language code ``lang`` (default ``"en"``), as facebookresearch/XLM prepared its data:

1. Unicode punctuation to ASCII (Moses ``replace-unicode-punctuation.perl``), Moses punctuation
   normalisation for ``lang``, removal of non-printing characters (``remove-non-printing-char.perl``);
2. ``ro`` only: Sennrich's WMT16 Romanian normalisation and diacritic removal;
3. words: the Moses tokenizer, or for Chinese (``zh``), Thai (``th``) and Japanese (``ja``) the
   segmenters rjieba, PyThaiNLP and KyTea -- optional packages, imported on first use;
4. with ``do_lowercase_and_remove_accent``: lowercase and drop combining marks (NFD, category Mn);
5. BPE over each word, whose last symbol carries ``</w>``.

``bypass_tokenizer=True`` skips steps 1-4 (the text is already tokenized; it is split on spaces).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import unicodedata
from typing import Any

from ...tokenization.slow import PreTrainedTokenizer

logger = logging.getLogger("tongues")

VOCAB_FILES_NAMES = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}

# Moses replace-unicode-punctuation.perl: full-width and CJK punctuation and digits to ASCII.
_UNICODE_PUNCT = str.maketrans({
    "，": ",", "、": ",", "”": '"', "“": '"', "∶": ":", "：": ":", "？": "?", "《": '"', "》": '"', "）": ")",
    "！": "!", "（": "(", "；": ";", "」": '"', "「": '"', "～": "~", "’": "'", "…": "...", "━": "-",
    "〈": "<", "〉": ">", "【": "[", "】": "]", "％": "%",
    **{chr(0xFF10 + d): str(d) for d in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)},
})
# The ideographic and full-width full stops also swallow the spaces after them.
_FULL_STOP = re.compile(r"[。．]\s*")

# rsennrich/wmt16-scripts: normalise-romanian.py (cedilla -> comma below), then remove-diacritics.py.
_ROMANIAN = str.maketrans({
    "\u015e": "S", "\u015f": "s", "\u0162": "T", "\u0163": "t",  # cedilla forms
    "\u0218": "S", "\u0219": "s", "\u021a": "T", "\u021b": "t",  # comma-below forms
    "\u0102": "A", "\u0103": "a", "\u00c2": "A", "\u00e2": "a", "\u00ce": "I", "\u00ee": "i",
})

_SEGMENTER_HINTS = {
    "zh": "Chinese text is segmented with rjieba: pip install rjieba",
    "th": "Thai text is segmented with PyThaiNLP: pip install pythainlp",
    "ja": ("Japanese text is segmented with KyTea and its model ~/local/share/kytea/model.bin: build KyTea "
           "(https://github.com/neubig/kytea: autoreconf -i && ./configure --prefix=$HOME/local && make && "
           "make install), then pip install kytea"),
}


class MissingSegmenterError(ImportError):
    """The word segmenter a language needs is not installed; the message says how to install it."""


def replace_unicode_punctuation(text: str) -> str:
    """Full-width / CJK punctuation and digits to their ASCII forms (Moses ``replace-unicode-punctuation``)."""
    return _FULL_STOP.sub(". ", text).translate(_UNICODE_PUNCT)


def remove_non_printing_characters(text: str) -> str:
    """Drop every character of a Unicode "C" category (controls, format, unassigned, private use)."""
    return "".join(char for char in text if not unicodedata.category(char).startswith("C"))


def normalize_romanian(text: str) -> str:
    """WMT16 Romanian pre-processing of xlm-mlm-enro-1024: unify ş/ţ forms, then strip the diacritics."""
    return text.translate(_ROMANIAN)


def lowercase_and_remove_accents(text: str) -> str:
    """Lowercase, decompose (NFD) and drop combining marks (category Mn), as XLM's ``lowercase_and_remove_accent.py``."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(char for char in decomposed if unicodedata.category(char) != "Mn").lower()


def _import_segmenter(lang: str, module: str):
    if sys.modules.get(module) is not None:
        return sys.modules[module]
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as err:
        raise MissingSegmenterError(f"XLMTokenizer(lang={lang!r}): {_SEGMENTER_HINTS[lang]} ({err})") from None


class XLMTokenizer(PreTrainedTokenizer):
    """XLM's BPE tokenizer, reading ``vocab.json`` (token -> id) and ``merges.txt`` (one ``a b`` merge per line).

    Args:
        vocab_file, merges_file: the two vocabulary files.
        unk_token, bos_token, sep_token, pad_token, cls_token, mask_token: special tokens
            (``<unk>``, ``<s>``, ``</s>``, ``<pad>``, ``</s>``, ``<special1>``).
        additional_special_tokens: ``<special0>`` ... ``<special9>``.
        lang2id, id2lang: language code <-> language id of multilingual checkpoints (either may be
            derived from the other).
        do_lowercase_and_remove_accent: lowercase and strip accents before BPE (True).

    Encoding takes ``lang=`` (default ``"en"``) and ``bypass_tokenizer=`` keywords::

        tokenizer("Bonjour le monde", lang="fr")
        tokenizer.lang2id["fr"]        # the language id to pass to the model as langs

    Sequences are ``<s> X </s>`` and ``<s> A </s> B </s>``; token types are 0 up to the first
    ``</s>`` and 1 after it.

    Raises:
        ValueError: unreadable or malformed vocabulary files, inconsistent language maps.
        MissingSegmenterError: Chinese, Thai or Japanese text without the segmenter installed.
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file, merges_file, unk_token="<unk>", bos_token="<s>", sep_token="</s>",
                 pad_token="<pad>", cls_token="</s>", mask_token="<special1>",
                 additional_special_tokens=tuple(f"<special{i}>" for i in range(10)), lang2id=None, id2lang=None,
                 do_lowercase_and_remove_accent=True, **kwargs):
        try:
            import sacremoses
        except ImportError:
            raise ImportError("XLMTokenizer needs sacremoses (Moses pre-processing): pip install sacremoses") from None
        self._moses = sacremoses
        self._normalizers: dict[str, Any] = {}
        self._word_splitters: dict[str, Any] = {}
        self._kytea = None
        self.do_lowercase_and_remove_accent = do_lowercase_and_remove_accent
        self.lang2id, self.id2lang = _language_maps(lang2id, id2lang)
        self.encoder = _read_vocab(vocab_file)
        self.decoder = {index: token for token, index in self.encoder.items()}
        self.bpe_ranks = _read_merges(merges_file)
        self._bpe_cache: dict[str, list[str]] = {}
        self._lang, self._bypass = "en", False
        super().__init__(unk_token=unk_token, bos_token=bos_token, sep_token=sep_token, pad_token=pad_token,
                         cls_token=cls_token, mask_token=mask_token,
                         additional_special_tokens=list(additional_special_tokens), lang2id=self.lang2id,
                         id2lang=self.id2lang, do_lowercase_and_remove_accent=do_lowercase_and_remove_accent,
                         **kwargs)

    @property
    def do_lower_case(self) -> bool:
        return self.do_lowercase_and_remove_accent

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def get_vocab(self) -> dict[str, int]:
        return {**self.encoder, **self.added_tokens_encoder}

    # -- text -> words ---------------------------------------------------------------------------
    def prepare_for_tokenization(self, text, is_split_into_words=False, lang="en", bypass_tokenizer=False, **kwargs):
        # The base class calls _tokenize(text) alone, once per piece between added tokens: the options of
        # this tokenize() call are kept on the instance for those calls (one call at a time per tokenizer).
        self._lang, self._bypass = lang or "en", bypass_tokenizer
        if lang and self.lang2id and lang not in self.lang2id:
            logger.warning("XLMTokenizer: language %r is not one of this model's languages %s", lang,
                           sorted(self.lang2id))
        return text, kwargs

    def moses_pipeline(self, text: str, lang: str) -> str:
        """Unicode punctuation to ASCII, Moses punctuation normalisation, non-printing characters removed."""
        normalizer = self._normalizers.get(lang)
        if normalizer is None:
            normalizer = self._normalizers[lang] = self._moses.MosesPunctNormalizer(lang=lang)
        return remove_non_printing_characters(normalizer.normalize(replace_unicode_punctuation(text)))

    def moses_tokenize(self, text: str, lang: str) -> list[str]:
        splitter = self._word_splitters.get(lang)
        if splitter is None:
            splitter = self._word_splitters[lang] = self._moses.MosesTokenizer(lang=lang)
        return splitter.tokenize(text, return_str=False, escape=False)

    def words(self, text: str, lang: str = "en") -> list[str]:
        """The words XLM applies BPE to: steps 1-4 of the module docstring."""
        if lang == "zh":
            rjieba = _import_segmenter(lang, "rjieba")
            words = self.moses_pipeline(" ".join(rjieba.cut(text)), lang).split()
        elif lang == "th":
            pythainlp = _import_segmenter(lang, "pythainlp")
            words = pythainlp.word_tokenize(self.moses_pipeline(text, lang))
        elif lang == "ja":
            words = list(self._japanese_segmenter().getWS(self.moses_pipeline(text, lang)))
        else:
            text = self.moses_pipeline(text, lang)
            if lang == "ro":
                text = normalize_romanian(text)
            words = self.moses_tokenize(text, lang)
        # Segmenters may return words holding spaces (PyThaiNLP keeps whitespace tokens): spaces separate words.
        text = " ".join(words)
        if self.do_lowercase_and_remove_accent:
            text = lowercase_and_remove_accents(text)
        return [word for word in text.split(" ") if word]

    def _japanese_segmenter(self):
        if self._kytea is None:
            Mykytea = _import_segmenter("ja", "Mykytea")
            model = os.path.expanduser("~/local/share/kytea/model.bin")
            if not os.path.isfile(model):
                raise MissingSegmenterError(f"XLMTokenizer(lang='ja'): KyTea's model {model} is missing. "
                                            f"{_SEGMENTER_HINTS['ja']}")
            self._kytea = Mykytea.Mykytea(f"-model {model}")
        return self._kytea

    # -- words -> BPE ----------------------------------------------------------------------------
    def bpe(self, word: str) -> list[str]:
        """Split one word into BPE symbols: apply the lowest-ranked merge present, everywhere, until none is left."""
        cached = self._bpe_cache.get(word)
        if cached is not None:
            return cached
        symbols = [*word[:-1], word[-1] + "</w>"]
        ranks = self.bpe_ranks
        while len(symbols) > 1:
            pairs = {(a, b) for a, b in zip(symbols, symbols[1:])}
            best = min(pairs, key=lambda pair: ranks.get(pair, float("inf")))
            if best not in ranks:
                break
            merged, i = [], 0
            while i < len(symbols):
                if i < len(symbols) - 1 and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        if len(self._bpe_cache) >= 200_000:  # bound the memory of long-running tokenizers
            self._bpe_cache.clear()
        self._bpe_cache[word] = symbols
        return symbols

    def _tokenize(self, text: str) -> list[str]:
        words = text.split() if self._bypass else self.words(text, self._lang)
        return [symbol for word in words if word for symbol in self.bpe(word)]

    def _convert_token_to_id(self, token: str) -> int:
        return self.encoder.get(token, self.encoder.get(str(self.unk_token)))

    def _convert_id_to_token(self, index: int) -> str:
        return self.decoder.get(index, str(self.unk_token))

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(tokens).replace("</w>", " ").strip()

    # -- special tokens --------------------------------------------------------------------------
    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        """``<s> X </s>`` or ``<s> A </s> B </s>``."""
        bos, sep = [self.bos_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return bos + list(token_ids_0) + sep
        return bos + list(token_ids_0) + sep + list(token_ids_1) + sep

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1] + [0] * len(token_ids_1) + [1]

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None):
        """0 for ``<s> A </s>``, 1 for ``B </s>``."""
        first = [0] * (len(token_ids_0) + 2)
        return first if token_ids_1 is None else first + [1] * (len(token_ids_1) + 1)

    # -- files -----------------------------------------------------------------------------------
    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"XLMTokenizer.save_vocabulary: {save_directory} is not a directory")
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        vocab_path = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_file"])
        merges_path = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["merges_file"])
        with open(vocab_path, "w", encoding="utf-8") as f:
            f.write(json.dumps(self.encoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        with open(merges_path, "w", encoding="utf-8") as f:
            for a, b in sorted(self.bpe_ranks, key=self.bpe_ranks.__getitem__):
                f.write(f"{a} {b}\n")
        return vocab_path, merges_path

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_moses"] = None  # a module does not pickle; re-imported on load
        state["_kytea"] = None
        return state

    def __setstate__(self, state):
        self.__dict__ = state
        import sacremoses

        self._moses = sacremoses


def _read_vocab(path) -> dict[str, int]:
    try:
        with open(path, encoding="utf-8") as f:
            vocab = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"XLMTokenizer: cannot read the vocabulary {path}: {err}") from None
    if not isinstance(vocab, dict) or not all(isinstance(i, int) and not isinstance(i, bool) for i in vocab.values()):
        raise ValueError(f"XLMTokenizer: {path} must hold a JSON object mapping tokens to integer ids")
    return vocab


def _read_merges(path) -> dict[tuple[str, str], int]:
    """Merge ranks from ``merges.txt``: line i (``first second [count]``) has rank i; a repeated merge keeps its last."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")[:-1]
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"XLMTokenizer: cannot read the merges {path}: {err}") from None
    ranks: dict[tuple[str, str], int] = {}
    for rank, line in enumerate(lines):
        fields = line.split()
        if len(fields) < 2:
            raise ValueError(f"XLMTokenizer: {path} line {rank + 1} is {line!r}; expected two symbols 'first second'")
        ranks[fields[0], fields[1]] = rank
    return ranks


def _language_maps(lang2id, id2lang) -> tuple[dict[str, int] | None, dict[int, str] | None]:
    """Validate the language maps; JSON turns id2lang's keys into strings, which are turned back into ints."""
    if id2lang is not None:
        try:
            id2lang = {int(index): lang for index, lang in id2lang.items()}
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"XLMTokenizer: id2lang must map integer ids to language codes; got {id2lang!r}") from None
    if lang2id is not None and not isinstance(lang2id, dict):
        raise ValueError(f"XLMTokenizer: lang2id must map language codes to ids; got {lang2id!r}")
    if lang2id is not None and id2lang is None:
        id2lang = {index: lang for lang, index in lang2id.items()}
    if id2lang is not None and lang2id is None:
        lang2id = {lang: index for index, lang in id2lang.items()}
    if lang2id is not None and {v: k for k, v in lang2id.items()} != id2lang:
        raise ValueError(f"XLMTokenizer: lang2id {lang2id} and id2lang {id2lang} do not describe the same languages")
    return lang2id, id2lang
