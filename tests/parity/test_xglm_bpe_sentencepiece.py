"""XGLMTokenizerFast converts sentencepiece models of BPE type, as the reference's converter does.

The BPE model is trained here, with the sentencepiece package, on three UDHR texts (seconds). Oracles:
sentencepiece itself under fairseq's id offset (what the slow XGLMTokenizer does), the reference's
merge generation (``transformers.tokenization_utils_base.generate_merges``; transformers 5.23's own
XGLM converter fails on BPE models, and its XGLMTokenizer reads Unigram tokenizer.json files only).
"""

from __future__ import annotations

import pytest
import sentencepiece as spm
from transformers.tokenization_utils_base import generate_merges

from tongues import XGLMTokenizer, XGLMTokenizerFast
from tongues.models.xglm.sentencepiece_model import BPE, read_sentencepiece_model
from xglm_helpers import DATA

UDHR = DATA.parent / "udhr"
TEXTS = ["fra", "eng", "rus"]
# fairseq's ids: <s> 0, <pad> 1, </s> 2, <unk> 3, then sentencepiece's pieces 3.. shifted by one.
FAIRSEQ = {0: 3, 1: 0, 2: 2}


@pytest.fixture(scope="module")
def bpe_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("xglm-bpe")
    spm.SentencePieceTrainer.train(
        input=",".join(str(UDHR / f"{name}.txt") for name in TEXTS), model_prefix=str(folder / "bpe"),
        model_type="bpe", vocab_size=500, character_coverage=1.0,
        num_threads=1, input_sentence_size=0, shuffle_input_sentence=False, minloglevel=2)
    model = folder / "sentencepiece.bpe.model"
    (folder / "bpe.model").rename(model)
    return model


def lines():
    out = []
    for name in ["fra", "eng", "rus", "deu_1996", "cmn_hans", "arb"]:  # the last three hold unknown characters
        out += (UDHR / f"{name}.txt").read_text(encoding="utf-8").splitlines()[:25]
    return out + ["", "  two  spaces  ", "Tous les êtres humains naissent libres et égaux.\n"]


def test_bpe_model_is_converted_like_sentencepiece(bpe_model):
    assert read_sentencepiece_model(bpe_model).model_type == BPE
    processor = spm.SentencePieceProcessor(model_file=str(bpe_model))
    fast, slow = XGLMTokenizerFast(vocab_file=str(bpe_model)), XGLMTokenizer(str(bpe_model))
    for text in lines():
        expected = [2] + [FAIRSEQ.get(i, i + 1) for i in processor.encode(text)]
        assert fast(text)["input_ids"] == expected == slow(text)["input_ids"], text


def test_merges_are_the_reference_converters(bpe_model):
    processor = spm.SentencePieceProcessor(model_file=str(bpe_model))
    pieces = {processor.id_to_piece(i): i for i in range(processor.get_piece_size())}
    fast = XGLMTokenizerFast(vocab_file=str(bpe_model))
    import json

    saved = json.loads(fast.backend_tokenizer.to_str())["model"]
    vocab_scores = [(p, 0.0) for p in ("<s>", "<pad>", "</s>", "<unk>")]
    vocab_scores += [(processor.id_to_piece(i), processor.get_score(i)) for i in range(3, len(pieces))]
    vocab_scores += [(f"<madeupword{i}>", 0.0) for i in range(7)]
    assert saved["type"] == "BPE"
    assert [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in saved["merges"]] == \
        generate_merges(pieces, vocab_scores)


def test_saved_conversion_loads_back(bpe_model, tmp_path):
    # transformers 5.23's XGLMTokenizer builds a Unigram model only, so it cannot read a BPE tokenizer.json:
    # the round trip is checked on our side, against sentencepiece's ids.
    XGLMTokenizerFast(vocab_file=str(bpe_model)).save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    ours = XGLMTokenizerFast.from_pretrained(tmp_path)
    processor = spm.SentencePieceProcessor(model_file=str(bpe_model))
    for text in lines():
        assert ours(text)["input_ids"] == [2] + [FAIRSEQ.get(i, i + 1) for i in processor.encode(text)], text
