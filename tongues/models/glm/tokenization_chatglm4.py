"""GLM-4's tokenizer in THUDM's original layout: ``tokenizer.model`` (tiktoken BPE ranks) + tokenizer_config.json.

The original ``ChatGLM4Tokenizer`` is remote code around ``tiktoken``; this is tongues' own, with
the same pre-tokenization pattern, the same 14 special tokens after the 151,329 ranks and the
same ``[gMASK]<sop>`` prefix. Text is split by :data:`GLM4_PATTERN`, and every piece is merged
byte pair by byte pair, lowest rank first, as tiktoken does.

Tokens are shown as byte-level strings (GPT-2's byte -> printable character table), the form a
``tokenizer.json`` of the ``-hf`` layout uses, so both layouts agree on ``convert_ids_to_tokens``.
:meth:`ChatGLM4Tokenizer.to_fast` builds that ``tokenizer.json`` (a byte-level BPE of the
``tokenizers`` library whose merges are recovered from the ranks).

Example::

    tokenizer = ChatGLM4Tokenizer.from_pretrained("THUDM/glm-4-9b-chat")      # no remote code
    tokenizer("你好").input_ids                                                # [151331, 151333, 109377]
    tokenizer.to_fast().save_pretrained("glm-4-9b-chat-hf-tokenizer")         # tokenizer.json layout
"""

from __future__ import annotations

import base64
import binascii
import os
from functools import lru_cache
from typing import Any

import regex

from ...tokenization.files import TokenizerFileError
from ...tokenization.slow import PreTrainedTokenizer

VOCAB_FILE = "tokenizer.model"

# The pre-tokenizer of THUDM's tokenization_chatglm.py (GPT-4's cl100k pattern with \p{N}{1,3}).
GLM4_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)

# Special tokens, in id order right after the ranks (151329 ... 151342 for glm-4-9b).
GLM4_SPECIAL_TOKENS = (
    "<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>",
    "<|assistant|>", "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>",
    "<|end_of_video|>",
)

# Every GLM-4 input starts with these two (the chat template writes them too).
PREFIX_TOKENS = ("[gMASK]", "<sop>")

_MERGE_CACHE_SIZE = 100_000


@lru_cache(maxsize=1)
def byte_to_char() -> tuple[str, ...]:
    """GPT-2's table: byte value -> a printable character standing for it in byte-level BPE vocabularies.

    Printable Latin-1 bytes stand for themselves; the other 68 bytes take the characters from
    U+0100 upwards, in byte order.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return tuple(table[b] for b in range(256))


@lru_cache(maxsize=1)
def char_to_byte() -> dict[str, int]:
    return {char: byte for byte, char in enumerate(byte_to_char())}


@lru_cache(maxsize=1)
def _latin1_to_byte_char() -> dict[int, str]:
    return dict(enumerate(byte_to_char()))


def bytes_to_token(data: bytes) -> str:
    """Raw bytes -> their byte-level string."""
    # Latin-1 maps each byte to the code point of its value; translate then swaps in the table's characters.
    return data.decode("latin-1").translate(_latin1_to_byte_char())


def read_tiktoken_ranks(path: str | os.PathLike) -> dict[bytes, int]:
    """Read a tiktoken BPE file: one ``<base64 token bytes> <rank>`` line per token.

    Raises:
        TokenizerFileError: a malformed line, a repeated token or rank, or ranks that are not
            ``0 .. n-1`` (the message names the file and line).
    """
    ranks: dict[bytes, int] = {}
    try:
        with open(path, "rb") as handle:
            lines = handle.read().splitlines()
    except OSError as err:
        raise TokenizerFileError(f"cannot read the tiktoken vocabulary {path}: {err}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            if len(fields) != 2:
                raise ValueError
            token, rank = base64.b64decode(fields[0], validate=True), int(fields[1])
        except (ValueError, binascii.Error):
            raise TokenizerFileError(f"{path}, line {number}: expected '<base64 token> <rank>', "
                                     f"found {line[:60]!r}") from None
        if token in ranks:
            raise TokenizerFileError(f"{path}, line {number}: token {token!r} is listed twice")
        ranks[token] = rank
    if not ranks:
        raise TokenizerFileError(f"{path} holds no tokens; is it a tiktoken BPE file (tokenizer.model)?")
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise TokenizerFileError(f"{path}: ranks must be 0 .. {len(ranks) - 1}, each once")
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise TokenizerFileError(f"{path}: the vocabulary lacks {len(missing)} single bytes (e.g. {missing[0]:#04x}); "
                                 "byte-level BPE needs all 256 to encode any text")
    return ranks


def write_tiktoken_ranks(ranks: dict[bytes, int], path: str | os.PathLike) -> None:
    """Write ``ranks`` in the format :func:`read_tiktoken_ranks` reads, in rank order."""
    with open(path, "wb") as handle:
        for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
            handle.write(base64.b64encode(token) + b" " + str(rank).encode() + b"\n")


def bpe_merge(piece: bytes, ranks: dict[bytes, int]) -> list[bytes]:
    """Split ``piece`` into vocabulary tokens the way tiktoken does.

    A piece that is itself a token stays whole; otherwise start from single bytes and repeatedly
    merge the adjacent pair whose concatenation has the lowest rank (the leftmost on a tie).
    """
    if piece in ranks:
        return [piece]
    parts = [piece[i:i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best, best_rank = -1, None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best_rank is None or rank < best_rank):
                best, best_rank = i, rank
        if best_rank is None:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return parts


def byte_level_bpe_backend(ranks: dict[bytes, int], pattern: str, special_tokens: dict[str, int]):
    """A ``tokenizers.Tokenizer`` that encodes like tiktoken over ``ranks`` with ``pattern``.

    The vocabulary is the ranks as byte-level strings; the merges are every split ``a + b`` of a
    token into two tokens, ordered by the rank of the token they make (tiktoken merges the pair
    whose result ranks lowest). ``ignore_merges`` keeps a pre-token that is itself in the
    vocabulary whole, as tiktoken does. ``special_tokens`` (content -> id) are added as special tokens.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    strings = {rank: bytes_to_token(token) for token, rank in ranks.items()}
    merges = []  # (rank of the result, rank of the left part, rank of the right part)
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left = ranks.get(token[:cut])
            if left is not None:
                right = ranks.get(token[cut:])
                if right is not None:
                    merges.append((rank, left, right))
    merges.sort()
    model = models.BPE(vocab={string: rank for rank, string in strings.items()},
                       merges=[(strings[left], strings[right]) for _, left, right in merges],
                       ignore_merges=True, fuse_unk=False, byte_fallback=False)
    backend = Tokenizer(model)
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    backend.decoder = decoders.ByteLevel()
    for content, index in sorted(special_tokens.items(), key=lambda item: item[1]):
        if index != backend.get_vocab_size(with_added_tokens=True):
            raise ValueError(f"special token {content!r} has id {index}, but the next free id is "
                             f"{backend.get_vocab_size(with_added_tokens=True)}; special ids must follow the ranks")
        backend.add_special_tokens([AddedToken(content, special=True, normalized=False)])
    return backend


class ChatGLM4Tokenizer(PreTrainedTokenizer):
    """GLM-4's tokenizer, read from THUDM's ``tokenizer.model``.

    Args:
        vocab_file: path of ``tokenizer.model`` (tiktoken ranks, base64 bytes and rank per line).
        padding_side: "left" (the original's default, so generation appends to real tokens).
        encode_special_tokens: read special tokens' text as plain text (the original's flag; same as
            ``split_special_tokens``).
        **kwargs: the usual tokenizer arguments (``eos_token``, ``pad_token``, ``chat_template``...).

    ``tokenizer(text)`` prepends ``[gMASK]<sop>`` unless the text already starts with them (a
    rendered chat template does), so the prefix is never doubled.

    Raises:
        TokenizerFileError: ``tokenizer.model`` is missing or malformed (the message names the file and line).
    """

    vocab_files_names = {"vocab_file": VOCAB_FILE}
    padding_side = "left"

    def __init__(self, vocab_file: str | None = None, encode_special_tokens: bool = False, **kwargs: Any) -> None:
        if vocab_file is None:
            raise TokenizerFileError(f"ChatGLM4Tokenizer needs its {VOCAB_FILE} (tiktoken ranks): pass vocab_file= "
                                     "or load a folder that has one with from_pretrained")
        self.vocab_file = os.fspath(vocab_file)
        self.ranks = read_tiktoken_ranks(self.vocab_file)
        self.encoder = {bytes_to_token(token): rank for token, rank in self.ranks.items()}
        self.decoder = {rank: token for token, rank in self.encoder.items()}
        self.pattern = regex.compile(GLM4_PATTERN)
        self._merged: dict[bytes, list[bytes]] = {}  # piece -> its tokens; words repeat, so this saves most merging
        if not kwargs.get("added_tokens_decoder"):
            # A bare tokenizer.model: the special tokens follow the ranks, as the original defines them.
            first = len(self.ranks)
            kwargs["added_tokens_decoder"] = {first + i: _special(t) for i, t in enumerate(GLM4_SPECIAL_TOKENS)}
            kwargs.setdefault("additional_special_tokens", list(GLM4_SPECIAL_TOKENS))
        kwargs.setdefault("eos_token", "<|endoftext|>")
        kwargs.setdefault("pad_token", "<|endoftext|>")
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        if encode_special_tokens:
            kwargs["split_special_tokens"] = True
        super().__init__(**kwargs)
        for token in PREFIX_TOKENS:
            if token not in self.added_tokens_encoder:
                raise TokenizerFileError(f"{self.vocab_file}: GLM-4's special token {token!r} is not defined; "
                                         "tokenizer_config.json's added_tokens_decoder must list it")

    # -- vocabulary ------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of BPE ranks (special tokens excluded; ``len(tokenizer)`` counts them)."""
        return len(self.ranks)

    def get_vocab(self) -> dict[str, int]:
        vocab = dict(self.encoder)
        vocab.update(self.added_tokens_encoder)
        return vocab

    def _tokenize(self, text: str) -> list[str]:
        tokens: list[str] = []
        for piece in self.pattern.findall(text):
            data = piece.encode("utf-8")
            parts = self._merged.get(data)
            if parts is None:
                if len(self._merged) >= _MERGE_CACHE_SIZE:
                    self._merged.clear()
                parts = self._merged[data] = bpe_merge(data, self.ranks)
            tokens.extend(bytes_to_token(part) for part in parts)
        return tokens

    def _convert_token_to_id(self, token: str) -> int:
        index = self.encoder.get(token)
        if index is None:
            raise KeyError(f"{token!r} is not a token of GLM-4's vocabulary (tokens are byte-level strings, "
                           "as convert_ids_to_tokens returns them)")
        return index

    def _convert_id_to_token(self, index: int) -> str:
        token = self.decoder.get(index)
        if token is None:
            raise ValueError(f"token id {index} is outside GLM-4's vocabulary (0 .. {len(self) - 1})")
        return token

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Byte-level tokens are joined as bytes and decoded as UTF-8 (an incomplete character becomes
        U+FFFD); added tokens are kept as their text."""
        table = char_to_byte()
        added = self._added_tokens_encoder
        text, pending = [], bytearray()
        for token in tokens:
            if token in added:
                text.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
                text.append(token)
            else:
                pending.extend(table[char] for char in token)
        text.append(pending.decode("utf-8", errors="replace"))
        return "".join(text)

    # -- special-token layout --------------------------------------------------------------------

    def _prefix_ids(self, token_ids_0: list[int]) -> list[int]:
        prefix = [self.added_tokens_encoder[token] for token in PREFIX_TOKENS]
        # A rendered chat template already starts with the prefix: never add it twice.
        return [] if list(token_ids_0[: len(prefix)]) == prefix else prefix

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None) -> list[int]:
        """``[gMASK] <sop> A`` (prefix not repeated), and ``[gMASK] <sop> A B <|endoftext|>`` for a pair."""
        ids = self._prefix_ids(token_ids_0) + list(token_ids_0)
        if token_ids_1 is not None:
            ids += list(token_ids_1) + [self.eos_token_id]
        return ids

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None) -> list[int]:
        first = len(self._prefix_ids(token_ids_0)) + len(token_ids_0)
        return [0] * first + ([] if token_ids_1 is None else [1] * (len(token_ids_1) + 1))

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False) -> list[int]:
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        mask = [1] * len(self._prefix_ids(token_ids_0)) + [0] * len(token_ids_0)
        return mask + ([] if token_ids_1 is None else [0] * len(token_ids_1) + [1])

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return len(PREFIX_TOKENS) + (1 if pair else 0)

    # -- saving and the tokenizer.json layout ----------------------------------------------------

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write ``tokenizer.model`` (the ranks, in the original format)."""
        path = os.path.join(save_directory, (f"{filename_prefix}-" if filename_prefix else "") + VOCAB_FILE)
        write_tiktoken_ranks(self.ranks, path)
        return (path,)

    def backend_tokenizer(self):
        """This tokenizer as a ``tokenizers.Tokenizer`` (byte-level BPE, GLM-4 pattern, special tokens, and
        the ``[gMASK]<sop>`` prefix as a template post-processor)."""
        from tokenizers import processors

        backend = byte_level_bpe_backend(self.ranks, GLM4_PATTERN, self.added_tokens_encoder)
        prefix = [(token, self.added_tokens_encoder[token]) for token in PREFIX_TOKENS]
        eos = self.eos_token
        backend.post_processor = processors.TemplateProcessing(
            single=" ".join(f"{token}:0" for token, _ in prefix) + " $A:0",
            pair=" ".join(f"{token}:0" for token, _ in prefix) + f" $A:0 $B:1 {eos}:1",
            special_tokens=[*prefix, (eos, self.eos_token_id)],
        )
        return backend

    def to_fast(self):
        """The same tokenizer in the ``-hf`` layout: a ``PreTrainedTokenizerFast`` over :meth:`backend_tokenizer`,
        with this one's special tokens, chat template and settings; ``save_pretrained`` on it writes
        ``tokenizer.json``."""
        from ...tokenization.fast import PreTrainedTokenizerFast

        named = {name: str(value) for name, value in self._special_tokens_map.items() if value is not None}
        return PreTrainedTokenizerFast(
            tokenizer_object=self.backend_tokenizer(),
            additional_special_tokens=list(self.additional_special_tokens),
            chat_template=self.chat_template,
            padding_side=self.padding_side,
            truncation_side=self.truncation_side,
            model_max_length=self.model_max_length,
            clean_up_tokenization_spaces=self.clean_up_tokenization_spaces,
            name_or_path=self.name_or_path,
            **named,
        )


def _special(content: str):
    from tokenizers import AddedToken

    return AddedToken(content, lstrip=False, rstrip=False, single_word=False, normalized=False, special=True)
