"""The embedded demonstration model: it loads offline, beats a unigram baseline on held-out UDHR text by the
margin docs/default-model.md states, and continues Article 1 in the prompt's own script."""

import math
import unicodedata
from pathlib import Path

import pytest
import torch

from tongues.assets import default_model_path
from tongues.auto import AutoModelForCausalLM
from tongues.tokenization import AutoTokenizer
from tongues.training import evaluate, read_documents, split_held_out, tokenize_and_pack

UDHR = Path(__file__).resolve().parents[1] / "data" / "udhr"
# docs/default-model.md: on these languages' held-out slices the model's perplexity is at most this
# fraction of the unigram baseline's (the full held-out split measures the same; see the docs' table).
# Measured 0.018 (63.5 vs 3493) when the 1,500-step model was trained; 0.03 leaves slack for other CPUs and
# torch builds (the previous 500-step model measured 0.067, so this fails if it came back).
MAX_PERPLEXITY_RATIO = 0.03
LANGUAGES = ("eng", "fra", "rus", "cmn_hans", "arb", "hin")
# Chinese is left out: after 5.3 epochs the model still often splits a CJK character's three UTF-8 bytes
# across tokens it has not learnt to compose, and its Chinese continuations contain broken bytes
# (U+FFFD; docs/default-model.md).
ARTICLE_1 = {
    "fra": ("Tous les êtres humains naissent", "LATIN"),
    "rus": ("Все люди рождаются", "CYRILLIC"),
    "arb": ("يولد جميع الناس", "ARABIC"),
    "hin": ("सभी मनुष्यों को", "DEVANAGARI"),
}


@pytest.fixture(scope="module")
def model_and_tokenizer():
    path = default_model_path()
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    return model, AutoTokenizer.from_pretrained(path)


def test_it_ships_small_and_loads_offline(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    size = sum(p.stat().st_size for p in default_model_path().iterdir())
    assert size <= 25_000_000
    assert model.config.model_type == "bloom" and len(tokenizer) == model.config.vocab_size
    assert not model.training


def test_held_out_perplexity_beats_the_unigram_baseline(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    documents = read_documents(sorted(UDHR.glob("*.txt")))  # the split of scripts/train_default_model.py
    train, _ = split_held_out(documents, 0.1)
    _, held = split_held_out(read_documents([UDHR / f"{key}.txt" for key in LANGUAGES]), 0.1)
    train_blocks = tokenize_and_pack(train, tokenizer, 128)
    held_blocks = tokenize_and_pack(held, tokenizer, 128)
    counts = torch.bincount(train_blocks.flatten(), minlength=model.config.vocab_size).double() + 1
    unigram_loss = -(counts / counts.sum()).log()[held_blocks[:, 1:].flatten()].mean().item()
    model_loss = evaluate(model, held_blocks, batch_size=16)["eval_loss"]
    ratio = math.exp(model_loss) / math.exp(unigram_loss)
    assert ratio <= MAX_PERPLEXITY_RATIO, (math.exp(model_loss), math.exp(unigram_loss))


@pytest.mark.parametrize("language", sorted(ARTICLE_1))
def test_it_continues_article_1_in_the_prompts_script(model_and_tokenizer, language):
    model, tokenizer = model_and_tokenizer
    prompt, script = ARTICLE_1[language]
    inputs = tokenizer(prompt, return_tensors="pt")
    torch.manual_seed(0)
    # Sampled, as docs/default-model.md shows it: greedy decoding of so small a model loops on punctuation.
    output = model.generate(**inputs, max_new_tokens=16, do_sample=True, temperature=0.8, top_p=0.9,
                            repetition_penalty=1.3)
    continuation = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    letters = [c for c in continuation if c.isalpha()]
    assert len(letters) >= 4, repr(continuation)
    same_script = sum(unicodedata.name(c, "").startswith(script) for c in letters)
    assert same_script / len(letters) >= 0.8, continuation
