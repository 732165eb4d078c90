"""Record the seed-era XGLM tokenizers' answers on the test sentencepiece model (golden.json).

transformers 5.x dropped the sentencepiece-backed ``XGLMTokenizer`` and mis-converts a bare .model
file (it loses fairseq's +1 id offset), so the oracle for the slow tokenizer is transformers
4.57.6, run in its own virtualenv (no torch needed)::

    python3 -m venv /work/venv457
    /work/venv457/bin/pip install transformers==4.57.6 sentencepiece tokenizers protobuf
    /work/venv457/bin/python tests/data/xglm/make_golden.py

It reads tests/data/xglm/sentencepiece.bpe.model (see train_spm.py) and, per UDHR language,
its first line and a slice of its fourth (so each language has a heading and running text), and
writes tests/data/xglm/golden.json with the versions it ran with. For every text it records the
ids of ``XGLMTokenizer`` (with special tokens) and of ``XGLMTokenizerFast`` converted from the
same .model, and the decoded strings; plus special-token layouts, pairs and padding. (The fast
tokenizer of 4.57.6 runs on tokenizers 0.22, whose Precompiled normalizer decomposes a few Indic
vowel signs that sentencepiece keeps whole; ``fast_ids`` records where that shows.)
"""

from __future__ import annotations

import json
import pathlib

import sentencepiece
import tokenizers
import transformers
from transformers import XGLMTokenizer, XGLMTokenizerFast

HERE = pathlib.Path(__file__).parent
UDHR = HERE.parent / "udhr"
MODEL = HERE / "sentencepiece.bpe.model"
MAX_CHARS = 80

# Edge cases: whitespace runs, specials written in text, unknown characters, empty input.
EDGE_CASES = [
    "",
    " ",
    "Hello world",
    "  Hello   world  ",
    "\tTabs\tand\nnewlines\n",
    "<s> inside </s> text <pad> <unk>",
    "<madeupword0> and <madeupword6>",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ and ﬁ ligature",
    "emoji 😀🚀 and math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "Mixed: Привет, 世界! مرحبا 123.45",
    "e\u0301 combining vs \u00e9 precomposed",
]
PAIRS = [("Article 1", "All human beings are born free."), ("", "second only"), ("first only", "")]


def texts_of(path: pathlib.Path) -> list[str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    picked = [lines[0][:MAX_CHARS]]
    if len(lines) > 3:
        picked.append(lines[3][:MAX_CHARS])
    return picked


def record(slow, fast, text: str) -> dict:
    """Ids and decodings of ``text``. To keep the file small, ``decoded`` is stored only when it is not
    ``"</s> " + text``, ``decoded_skip_special`` only when it is not ``decoded`` without that ``"</s> "``,
    and ``fast_ids`` / ``fast_decoded`` / ``fast_decoded_skip_special`` only when the fast tokenizer
    disagrees with the slow one."""
    ids = slow(text)["input_ids"]
    decoded = slow.decode(ids)
    skipped = slow.decode(ids, skip_special_tokens=True)
    entry = {"text": text, "ids": ids}
    if decoded != "</s> " + text:
        entry["decoded"] = decoded
    if skipped != decoded.removeprefix("</s> "):
        entry["decoded_skip_special"] = skipped
    fast_ids = fast(text)["input_ids"]
    if fast_ids != ids:
        entry["fast_ids"] = fast_ids
    fast_decoded = fast.decode(fast_ids)
    if fast_decoded != decoded:
        entry["fast_decoded"] = fast_decoded
    fast_skipped = fast.decode(fast_ids, skip_special_tokens=True)
    if fast_skipped != skipped:
        entry["fast_decoded_skip_special"] = fast_skipped
    return entry


def main() -> None:
    slow = XGLMTokenizer(str(MODEL))
    fast = XGLMTokenizerFast(vocab_file=str(MODEL))
    golden = {
        "versions": {
            "transformers": transformers.__version__,
            "sentencepiece": sentencepiece.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "model": MODEL.name,
        "vocab_size": slow.vocab_size,
        "len": len(slow),
        "fast_len": len(fast),
        "first_and_last_tokens": {
            str(i): slow.convert_ids_to_tokens(i) for i in [*range(8), *range(slow.vocab_size - 9, slow.vocab_size)]
        },
        "special_ids": {name: getattr(slow, f"{name}_id") for name in ("bos_token", "eos_token", "sep_token",
                                                                       "cls_token", "unk_token", "pad_token")},
        "all_special_ids": slow.all_special_ids,
        "edge_cases": [record(slow, fast, text) | {"tokens": slow.tokenize(text)} for text in EDGE_CASES],
        "pairs": [
            {
                "text": a,
                "text_pair": b,
                **{k: v for k, v in slow(a, b, return_token_type_ids=True, return_special_tokens_mask=True).items()},
                "fast_ids": fast(a, b)["input_ids"],
            }
            for a, b in PAIRS
        ],
        "special_tokens_mask_already": slow.get_special_tokens_mask([2, 10, 11, 2, 2, 12, 1, 0],
                                                                     already_has_special_tokens=True),
        "batch_padded": dict(slow(["short", "a much longer sentence here"], padding=True)),
        "languages": {path.stem: [record(slow, fast, t) for t in texts_of(path)] for path in sorted(UDHR.glob("*.txt"))},
    }
    out = HERE / "golden.json"
    out.write_text(json.dumps(golden, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n", encoding="utf-8")
    n_fast_diff = sum("fast_ids" in e for entries in golden["languages"].values() for e in entries)
    print(f"wrote {out} ({out.stat().st_size} bytes); fast != slow on {n_fast_diff} UDHR texts; "
          f"versions {golden['versions']}")


if __name__ == "__main__":
    main()
