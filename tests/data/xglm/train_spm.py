"""Train the small sentencepiece model the XGLM tokenizer tests use (run once; the .model is committed).

    python tests/data/xglm/train_spm.py

Input: every tests/data/udhr/*.txt (128 UDHR translations), in sorted order. Output:
tests/data/xglm/sentencepiece.bpe.model, named like facebook/xglm-*'s file so a folder holding it
loads with XGLMTokenizer.from_pretrained. The layout is sentencepiece's default, which is XGLM's:
<unk>=0, <s>=1, </s>=2, no pad piece (fairseq puts <pad> at id 1 itself). Unigram, like XGLM's
own model, with the default nmt_nfkc normalizer (so the fast tokenizer's Precompiled normalizer is
exercised). One thread and the whole input (no sampling) keep training deterministic.
"""

from __future__ import annotations

import os
import pathlib

import sentencepiece as spm

HERE = pathlib.Path(__file__).parent
UDHR = HERE.parent / "udhr"
VOCAB_SIZE = 3000


def main() -> None:
    # The trainer records its input paths and model prefix in the model file: relative paths from
    # this folder keep the file byte-identical wherever the repository is checked out.
    os.chdir(HERE)
    files = sorted(f"../udhr/{p.name}" for p in UDHR.glob("*.txt"))
    prefix = "xglm_udhr_training"
    try:
        spm.set_random_generator_seed(1234)
        spm.SentencePieceTrainer.train(
            input=",".join(files),
            model_prefix=prefix,
            model_type="unigram",
            vocab_size=VOCAB_SIZE,
            character_coverage=0.995,
            normalization_rule_name="nmt_nfkc",
            num_threads=1,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            max_sentence_length=8192,
            minloglevel=2,
        )
        data = pathlib.Path(f"{prefix}.model").read_bytes()
    finally:
        for suffix in (".model", ".vocab"):
            if os.path.exists(prefix + suffix):
                os.remove(prefix + suffix)
    (HERE / "sentencepiece.bpe.model").write_bytes(data)
    print(f"wrote {HERE / 'sentencepiece.bpe.model'} ({len(data)} bytes, sentencepiece {spm.__version__})")


if __name__ == "__main__":
    main()
