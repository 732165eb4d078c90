"""Read a sentencepiece ``.model`` file and rebuild it as a ``tokenizers`` Unigram pipeline.

A ``.model`` file is a serialized ``ModelProto`` (sentencepiece's ``sentencepiece_model.proto``).
Only a few fields matter for conversion, so they are read straight from the protobuf wire format
here (no ``protobuf`` dependency, nothing executed):

- ``ModelProto.pieces`` (1): ``piece`` (1, string), ``score`` (2, float), ``type`` (3, enum:
  1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte);
- ``ModelProto.trainer_spec`` (2): ``model_type`` (3: 1 unigram, 2 BPE, 3 word, 4 char),
  ``byte_fallback`` (35);
- ``ModelProto.normalizer_spec`` (3): ``name`` (1), ``precompiled_charsmap`` (2),
  ``add_dummy_prefix`` (3), ``remove_extra_whitespaces`` (4).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from ...tokenization.base import TokenizerFileError

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNIGRAM, BPE = 1, 2


@dataclass
class SentencePieceModel:
    """The parts of a sentencepiece model that conversion needs."""

    pieces: list[tuple[str, float, int]] = field(default_factory=list)  # (piece, score, type)
    model_type: int = UNIGRAM
    byte_fallback: bool = False
    normalizer_name: str = ""
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True


def _varint(data: bytes, pos: int, where: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise TokenizerFileError(f"{where}: truncated or malformed varint in the sentencepiece model")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes, where: str):
    """Yield ``(field_number, wire_type, value)`` of one protobuf message; value is int or bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos, where)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos, where)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos, where)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise TokenizerFileError(f"{where}: unsupported protobuf wire type {wire} (field {number}); "
                                     "is this a sentencepiece .model file?")
        if pos > len(data):
            raise TokenizerFileError(f"{where}: the sentencepiece model is truncated (field {number})")
        yield number, wire, value


def read_sentencepiece_model(path: str | os.PathLike) -> SentencePieceModel:
    """Parse the sentencepiece ``.model`` at ``path``; :class:`TokenizerFileError` names the file when it is not one."""
    where = os.fspath(path)
    try:
        with open(where, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise TokenizerFileError(f"Could not read the sentencepiece model {where}: {err}") from None
    model = SentencePieceModel()
    try:
        for number, wire, value in _fields(data, where):
            if number == 1 and wire == 2:
                piece, score, kind = "", 0.0, NORMAL
                for n, w, v in _fields(value, where):
                    if n == 1 and w == 2:
                        piece = v.decode("utf-8")
                    elif n == 2 and w == 5:
                        score = struct.unpack("<f", v)[0]
                    elif n == 3 and w == 0:
                        kind = v
                model.pieces.append((piece, score, kind))
            elif number == 2 and wire == 2:
                for n, w, v in _fields(value, where):
                    if n == 3 and w == 0:
                        model.model_type = v
                    elif n == 35 and w == 0:
                        model.byte_fallback = bool(v)
            elif number == 3 and wire == 2:
                for n, w, v in _fields(value, where):
                    if n == 1 and w == 2:
                        model.normalizer_name = v.decode("utf-8")
                    elif n == 2 and w == 2:
                        model.precompiled_charsmap = bytes(v)
                    elif n == 3 and w == 0:
                        model.add_dummy_prefix = bool(v)
                    elif n == 4 and w == 0:
                        model.remove_extra_whitespaces = bool(v)
    except UnicodeDecodeError:
        raise TokenizerFileError(f"{where}: a piece is not UTF-8; is this a sentencepiece .model file?") from None
    if not model.pieces:
        raise TokenizerFileError(f"{where} holds no sentencepiece pieces; is it a sentencepiece .model file?")
    return model


def bpe_merges(pieces: list[tuple[str, float, int]], vocab_scores: list[tuple[str, float]]) -> list[tuple[str, str]]:
    """The merge list of a sentencepiece BPE model, for a ``tokenizers`` BPE over ``vocab_scores``.

    Rebuilt as the reference's sentencepiece converter does (``SentencePieceExtractor.extract`` in
    transformers' ``convert_slow_tokenizer.py``): every split ``left + right`` of a token whose two
    halves are pieces of the model is a merge, ranked by the token's score, highest first (BPE pieces
    score ``-rank``), then by the lengths of its halves, longest first.
    """
    ids = {piece: i for i, (piece, _, _) in enumerate(pieces)}
    merges = []
    for token, score in dict(vocab_scores).items():
        splits = [(token[:i], token[i:], score) for i in range(1, len(token)) if token[:i] in ids and token[i:] in ids]
        merges.extend(sorted(splits, key=lambda split: (ids[split[0]], ids[split[1]])))
    # Highest score first; among one token's splits, the longer left piece first (as the reference orders them).
    merges.sort(key=lambda merge: (merge[2], len(merge[0]), len(merge[1])), reverse=True)
    return [(left, right) for left, right, _ in merges]
