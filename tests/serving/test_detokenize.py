"""Streaming detokenisation over every UDHR script: the pieces concatenate to the whole, none splits a character."""

import os

import pytest

from tests.glm_helpers import glm4_slow
from tongues.assets import default_model_path
from tongues.serving import detokenize_incrementally

UDHR = os.path.join(os.path.dirname(__file__), "..", "data", "udhr")
TEXTS = sorted(name for name in os.listdir(UDHR) if name.endswith(".txt"))


def tokenizers():
    from tongues.tokenization import AutoTokenizer

    return {"bloom-bytes": AutoTokenizer.from_pretrained(str(default_model_path())), "glm4-tiktoken": glm4_slow()}


@pytest.fixture(scope="module")
def loaded():
    return tokenizers()


def stream(tokenizer, context, ids):
    """The pieces a client would see, fed one token at a time after ``context``."""
    all_ids = list(context)
    read = len(all_ids)
    prefix = max(0, read - 5)
    pieces = []
    for token in ids:
        all_ids.append(token)
        piece, prefix, read = detokenize_incrementally(tokenizer, all_ids, prefix, read)
        pieces.append(piece)
    piece, prefix, read = detokenize_incrementally(tokenizer, all_ids, prefix, read, final=True)
    pieces.append(piece)
    return pieces


@pytest.mark.parametrize("name", ["bloom-bytes", "glm4-tiktoken"])
def test_every_script_streams_whole_characters(loaded, name):
    tokenizer = loaded[name]
    checked = split = 0
    for file in TEXTS:
        with open(os.path.join(UDHR, file), encoding="utf-8") as f:
            text = f.read()[:300]
        ids = tokenizer.encode(text, add_special_tokens=False)
        context, rest = ids[:3], ids[3:]
        pieces = stream(tokenizer, context, rest)
        whole = tokenizer.decode(ids)
        assert "".join(pieces) == whole[len(tokenizer.decode(context)):], file
        assert not any("\ufffd" in piece for piece in pieces if "\ufffd" not in text), file
        # A token-by-token decode would have split characters here: the hold-back did work.
        split += sum("\ufffd" in tokenizer.decode([t]) for t in rest)
        checked += 1
    assert checked == len(TEXTS) > 100 and split > 0


def test_an_unfinished_character_is_held_back_then_released(loaded):
    tokenizer = loaded["bloom-bytes"]
    ids = tokenizer.encode("ok 😀", add_special_tokens=False)
    pieces = stream(tokenizer, [], ids)
    assert "".join(pieces) == "ok 😀"
    assert all("\ufffd" not in piece for piece in pieces)
    # Cut short inside the character (generation stopped there): the tail comes out at the end, as is.
    partial = ids[:-1]  # the emoji's last byte is missing
    assert tokenizer.decode(partial).endswith("\ufffd")
    pieces = stream(tokenizer, [], partial)
    assert all("\ufffd" not in piece for piece in pieces[:-1])
    assert "".join(pieces) == tokenizer.decode(partial) and "\ufffd" in pieces[-1]
