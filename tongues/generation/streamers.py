"""Streamers: receive token ids as ``generate`` produces them and turn them into text.

``generate`` calls ``streamer.put(ids)`` once with the prompt, then once per new token, and
``streamer.end()`` at the end. :class:`TextStreamer` decodes everything seen since the last
flush and releases only text that cannot change any more: up to the last space, a whole line, or
a CJK character (CJK text has no spaces to wait for). Text ending in U+FFFD -- the replacement
character a byte-level tokenizer yields for the first bytes of a multi-byte character -- is
held back until the character is complete, so no partial character is ever emitted.

Example::

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
    Thread(target=model.generate, kwargs=dict(input_ids=ids, streamer=streamer)).start()
    for piece in streamer:
        print(piece, end="")
"""

from __future__ import annotations

from queue import Queue
from typing import Any

REPLACEMENT_CHARACTER = "\ufffd"

# CJK Unified Ideographs and their extensions / compatibility blocks: printed per character.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def is_cjk_character(codepoint: int) -> bool:
    """True for a CJK ideograph (not Hangul or kana, which are written with spaces)."""
    return any(low <= codepoint <= high for low, high in _CJK_RANGES)


class BaseStreamer:
    """Interface ``generate`` calls: ``put(ids)`` for each new chunk of ids, ``end()`` once at the end."""

    def put(self, value) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement put(value)")

    def end(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement end()")


class TextStreamer(BaseStreamer):
    """Print text to stdout as soon as it is final.

    Args:
        tokenizer: anything with ``decode(ids, **decode_kwargs) -> str``.
        skip_prompt: do not print the prompt (the first ``put``).
        **decode_kwargs: passed to ``tokenizer.decode`` (e.g. ``skip_special_tokens=True``).

    Raises:
        ValueError: ``put`` received more than one row (streaming is for a batch of one).
    """

    def __init__(self, tokenizer, skip_prompt: bool = False, **decode_kwargs: Any) -> None:
        self.tokenizer = tokenizer
        self.skip_prompt = skip_prompt
        self.decode_kwargs = decode_kwargs
        self.token_cache: list[int] = []
        self.print_len = 0
        self.next_tokens_are_prompt = True

    def put(self, value) -> None:
        if len(value.shape) > 1 and value.shape[0] > 1:
            raise ValueError(f"{type(self).__name__} streams one sequence; got a batch of {value.shape[0]} rows.")
        if len(value.shape) > 1:
            value = value[0]
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.token_cache.extend(value.tolist())
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith("\n"):
            # A finished line: release it and start decoding afresh.
            printable = text[self.print_len :]
            self.token_cache = []
            self.print_len = 0
        elif text and is_cjk_character(ord(text[-1])):
            printable = text[self.print_len :]
            self.print_len += len(printable)
        else:
            # Up to the last space: the word being written may still change with the next token. This
            # also holds back a trailing U+FFFD (an incomplete character), which is never followed by
            # a space yet.
            printable = text[self.print_len : text.rfind(" ") + 1]
            self.print_len += len(printable)
        self.on_finalized_text(printable)

    def end(self) -> None:
        if self.token_cache:
            text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
            printable = text[self.print_len :]
            self.token_cache = []
            self.print_len = 0
        else:
            printable = ""
        self.next_tokens_are_prompt = True
        self.on_finalized_text(printable, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        """Where final text goes: stdout here; subclasses redirect it."""
        print(text, flush=True, end=None if stream_end else "")


class TextIteratorStreamer(TextStreamer):
    """Collect final text in a queue and iterate over it (run ``generate`` in another thread).

    Args:
        timeout: seconds each queue operation waits before raising ``queue.Empty``; None waits forever.
    """

    def __init__(self, tokenizer, skip_prompt: bool = False, timeout: float | None = None, **decode_kwargs: Any):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue: Queue = Queue()
        self.stop_signal = None
        self.timeout = timeout

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.text_queue.put(text, timeout=self.timeout)
        if stream_end:
            self.text_queue.put(self.stop_signal, timeout=self.timeout)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)
        if value == self.stop_signal:
            raise StopIteration()
        return value


class AsyncTextIteratorStreamer(TextStreamer):
    """Like :class:`TextIteratorStreamer` for ``async for``; create it inside the running event loop."""

    def __init__(self, tokenizer, skip_prompt: bool = False, timeout: float | None = None, **decode_kwargs: Any):
        import asyncio

        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue = asyncio.Queue()
        self.stop_signal = None
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.loop.call_soon_threadsafe(self.text_queue.put_nowait, text)
        if stream_end:
            self.loop.call_soon_threadsafe(self.text_queue.put_nowait, self.stop_signal)

    def __aiter__(self):
        return self

    async def __anext__(self) -> str:
        import asyncio

        value = await asyncio.wait_for(self.text_queue.get(), self.timeout)
        if value == self.stop_signal:
            raise StopAsyncIteration()
        return value
