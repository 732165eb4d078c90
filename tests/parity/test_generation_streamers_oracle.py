"""TextStreamer releases the same pieces as the oracle's, on byte-level streams of UDHR text."""

from __future__ import annotations

import os

import pytest
import torch
import transformers

from tongues.generation import TextStreamer

UDHR = os.path.join(os.path.dirname(__file__), "..", "data", "udhr")


class ByteTokenizer:
    def decode(self, ids, skip_special_tokens=False):
        return bytes(ids).decode("utf-8", errors="replace")


def collect(base):
    class Collecting(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.pieces = []

        def on_finalized_text(self, text, stream_end=False):
            self.pieces.append((text, stream_end))

    return Collecting


@pytest.mark.parametrize("language", ["fra", "rus", "cmn_hans", "cmn_hant", "jpn", "kor", "hin", "tha", "arb"])
@pytest.mark.parametrize("skip_prompt", [False, True])
def test_same_pieces_as_oracle(language, skip_prompt):
    with open(os.path.join(UDHR, f"{language}.txt"), encoding="utf-8") as f:
        data = f.read()[:300].encode("utf-8")
    g = torch.Generator().manual_seed(0)
    streamers = [collect(TextStreamer)(ByteTokenizer(), skip_prompt), collect(transformers.TextStreamer)(ByteTokenizer(), skip_prompt)]
    for streamer in streamers:
        streamer.put(torch.tensor([list(data[:20])]))
    # Tokens of one to four bytes, as a byte-level BPE would produce.
    position = 20
    while position < len(data):
        size = int(torch.randint(1, 5, (1,), generator=g))
        chunk = torch.tensor(list(data[position : position + size]))
        for streamer in streamers:
            streamer.put(chunk)
        position += size
    for streamer in streamers:
        streamer.end()
    ours, ref = streamers
    assert ours.pieces == ref.pieces
