"""Streamers: text is released only when final, never as a partial UTF-8 character."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
import torch

from tongues.generation import AsyncTextIteratorStreamer, BaseStreamer, TextIteratorStreamer, TextStreamer

UDHR = os.path.join(os.path.dirname(__file__), "..", "data", "udhr")
LANGUAGES = ["fra", "rus", "cmn_hans", "jpn", "kor", "hin", "arb", "tha"]


class ByteTokenizer:
    """One token per UTF-8 byte: a multi-byte character arrives over several tokens (U+FFFD until complete)."""

    def decode(self, ids, skip_special_tokens=False):
        return bytes(ids).decode("utf-8", errors="replace")


class Collecting(TextStreamer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pieces = []
        self.ended = 0

    def on_finalized_text(self, text, stream_end=False):
        self.pieces.append(text)
        self.ended += stream_end


def stream_bytes(streamer, data: bytes, prompt: bytes = b"") -> None:
    streamer.put(torch.tensor([list(prompt) or [32]]))
    for byte in data:
        streamer.put(torch.tensor([byte]))
    streamer.end()


def udhr_sample(language: str, size: int = 400) -> bytes:
    with open(os.path.join(UDHR, f"{language}.txt"), encoding="utf-8") as f:
        return f.read()[:size].encode("utf-8")


@pytest.mark.parametrize("language", LANGUAGES)
def test_never_emits_a_partial_character(language):
    data = udhr_sample(language)
    streamer = Collecting(ByteTokenizer(), skip_prompt=True)
    stream_bytes(streamer, data)
    assert all("\ufffd" not in piece for piece in streamer.pieces)
    assert "".join(streamer.pieces) == data.decode("utf-8")
    assert streamer.ended == 1


def test_words_are_released_at_spaces_and_lines_at_newlines():
    streamer = Collecting(ByteTokenizer())
    streamer.put(torch.tensor([list(b"Hi")]))  # the prompt
    for chunk in (b" the", b"re wor", b"ld\n", b"ok"):
        streamer.put(torch.tensor(list(chunk)))
    streamer.end()
    assert streamer.pieces == ["", "Hi ", "there ", "world\n", "", "ok"]


def test_cjk_characters_are_released_one_by_one():
    streamer = Collecting(ByteTokenizer(), skip_prompt=True)
    streamer.put(torch.tensor([[32]]))
    released = []
    for char in "世界人权":
        data = char.encode("utf-8")
        for byte in data[:-1]:
            streamer.put(torch.tensor([byte]))
            assert streamer.pieces[-1] == ""  # incomplete: held back
        streamer.put(torch.tensor([data[-1]]))
        released.append(streamer.pieces[-1])
    assert released == list("世界人权")


def test_skip_prompt_and_batch_error():
    streamer = Collecting(ByteTokenizer(), skip_prompt=True)
    stream_bytes(streamer, b"a b ", prompt=b"PROMPT ")
    assert "".join(streamer.pieces) == "a b "
    with pytest.raises(ValueError, match="batch of 2"):
        streamer.put(torch.tensor([[1, 2], [3, 4]]))


def test_text_streamer_prints(capsys):
    stream_bytes(TextStreamer(ByteTokenizer(), skip_prompt=True), "héllo wörld".encode())
    assert capsys.readouterr().out == "héllo wörld\n"


def test_iterator_streamer_from_another_thread():
    data = udhr_sample("rus", 200)
    streamer = TextIteratorStreamer(ByteTokenizer(), skip_prompt=True, timeout=10)
    worker = threading.Thread(target=stream_bytes, args=(streamer, data))
    worker.start()
    text = "".join(streamer)
    worker.join()
    assert text == data.decode("utf-8")


def test_async_iterator_streamer():
    async def main():
        streamer = AsyncTextIteratorStreamer(ByteTokenizer(), skip_prompt=True, timeout=10)
        worker = threading.Thread(target=stream_bytes, args=(streamer, "déjà vu".encode()))
        worker.start()
        pieces = [piece async for piece in streamer]
        worker.join()
        return "".join(pieces)

    assert asyncio.run(main()) == "déjà vu"


def test_base_streamer_is_abstract():
    with pytest.raises(NotImplementedError, match="put"):
        BaseStreamer().put(torch.tensor([1]))
