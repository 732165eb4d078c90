"""Learn the small XLM-format BPE vocabulary in this folder from UDHR texts (see PROVENANCE.md).

    python tests/data/xlm/make_vocab.py        # rewrites vocab.json and merges.txt beside this file

Pre-processing is XLM's (tongues.models.xlm.tokenization_xlm: Moses punctuation and word splitting,
Romanian normalisation, lowercasing and accent removal); BPE is learned as fastBPE does: words end
with ``</w>``, the most frequent adjacent pair is merged each round (ties: the smallest pair).
The vocabulary is XLM's 14 special tokens, then every symbol of the segmented corpus by frequency.
"""

from __future__ import annotations

import collections
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", ".."))

import sacremoses  # noqa: E402

from tongues.models.xlm.tokenization_xlm import (  # noqa: E402
    lowercase_and_remove_accents,
    normalize_romanian,
    remove_non_printing_characters,
    replace_unicode_punctuation,
)

# UDHR file key -> Moses language code.
LANGUAGES = {"eng": "en", "fra": "fr", "deu_1996": "de", "spa": "es", "ron_1993": "ro", "rus": "ru",
             "ell_monotonic": "el", "tur": "tr", "vie": "vi", "arb": "ar", "hin": "hi", "pol": "pl"}
NUM_MERGES = 2000
SPECIALS = ["<s>", "</s>", "<pad>", "<unk>"] + [f"<special{i}>" for i in range(10)]


def words_of(text: str, lang: str) -> list[str]:
    text = sacremoses.MosesPunctNormalizer(lang=lang).normalize(replace_unicode_punctuation(text))
    text = remove_non_printing_characters(text)
    if lang == "ro":
        text = normalize_romanian(text)
    words = sacremoses.MosesTokenizer(lang=lang).tokenize(text, return_str=False, escape=False)
    return [w for w in (lowercase_and_remove_accents(w) for w in words) if w]


def learn(word_counts: dict[str, int], num_merges: int) -> list[tuple[str, str]]:
    words = [[*w[:-1], w[-1] + "</w>"] for w in word_counts]
    counts = list(word_counts.values())
    pair_counts: collections.Counter = collections.Counter()
    where: dict[tuple[str, str], set[int]] = collections.defaultdict(set)
    for i, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += counts[i]
            where[pair].add(i)
    merges = []
    for _ in range(num_merges):
        if not pair_counts:
            break
        best = min(pair_counts, key=lambda p: (-pair_counts[p], p))
        if pair_counts[best] <= 0:
            break
        merges.append(best)
        for i in list(where[best]):
            symbols = words[i]
            for pair in zip(symbols, symbols[1:]):
                pair_counts[pair] -= counts[i]
            merged, j = [], 0
            while j < len(symbols):
                if j < len(symbols) - 1 and (symbols[j], symbols[j + 1]) == best:
                    merged.append(symbols[j] + symbols[j + 1])
                    j += 2
                else:
                    merged.append(symbols[j])
                    j += 1
            words[i] = merged
            for pair in zip(merged, merged[1:]):
                pair_counts[pair] += counts[i]
                where[pair].add(i)
        del pair_counts[best]
        for pair in [p for p, c in pair_counts.items() if c <= 0]:
            del pair_counts[pair]
    symbol_counts: collections.Counter = collections.Counter()
    for symbols, count in zip(words, counts):
        for symbol in symbols:
            symbol_counts[symbol] += count
    return merges, symbol_counts


def main() -> None:
    word_counts: collections.Counter = collections.Counter()
    for key, lang in LANGUAGES.items():
        with open(os.path.join(HERE, "..", "udhr", f"{key}.txt"), encoding="utf-8") as f:
            for line in f:
                word_counts.update(words_of(line, lang))
    merges, symbol_counts = learn(dict(sorted(word_counts.items())), NUM_MERGES)
    ordered = sorted(symbol_counts, key=lambda s: (-symbol_counts[s], s))
    vocab = {token: index for index, token in enumerate(SPECIALS + ordered)}
    with open(os.path.join(HERE, "vocab.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(vocab, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    with open(os.path.join(HERE, "merges.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{a} {b}\n" for a, b in merges)
    print(f"{len(word_counts)} distinct words, {len(merges)} merges, {len(vocab)} tokens")


if __name__ == "__main__":
    main()
