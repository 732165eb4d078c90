"""Streaming detokenisation: text arrives as soon as it is complete, never a split UTF-8 character.

Byte-level vocabularies (BLOOM, GLM-4) cut characters across tokens, and sentencepiece
vocabularies (XGLM) drop a word's leading space when a token is decoded alone. Both are handled
by decoding a short window of tokens already shown (the *prefix*) together with the new ones, and
returning only the difference, held back while it ends in U+FFFD (an incomplete character). The
idea is vLLM's ``detokenize_incrementally`` and llama.cpp's ``validate_utf8``; the code is ours.
"""

from __future__ import annotations

from typing import Sequence

REPLACEMENT = "\ufffd"


def detokenize_incrementally(tokenizer, ids: Sequence[int], prefix_offset: int, read_offset: int,
                             skip_special_tokens: bool = True, final: bool = False) -> tuple[str, int, int]:
    """The new text of ``ids[read_offset:]``, decoded in the context of ``ids[prefix_offset:read_offset]``.

    Args:
        tokenizer: any tongues tokenizer (``decode``).
        ids: every token so far (a prompt tail may lead, to give the first new token its context).
        prefix_offset / read_offset: ``ids[prefix_offset:read_offset]`` were already shown;
            start with ``read_offset = len(context)`` and ``prefix_offset`` a few tokens before it.
        final: no more tokens will come, so an incomplete tail is released as it is.

    Returns:
        ``(new_text, prefix_offset, read_offset)``: the offsets to pass next time. When the new
        tokens end inside a character, ``new_text`` is ``""`` and the offsets do not move.
    """
    prefix_text = tokenizer.decode(ids[prefix_offset:read_offset], skip_special_tokens=skip_special_tokens)
    full_text = tokenizer.decode(ids[prefix_offset:], skip_special_tokens=skip_special_tokens)
    if len(full_text) > len(prefix_text) and (final or not full_text.endswith(REPLACEMENT)):
        return full_text[len(prefix_text):], read_offset, len(ids)
    if final:
        return "", read_offset, len(ids)
    return "", prefix_offset, read_offset
