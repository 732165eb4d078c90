"""BloomForCausalLM.generate against the oracle's, on a tiny random checkpoint the oracle saved."""

from __future__ import annotations

import pytest
import torch
import transformers

from oracle import left_padded, run_both
from tongues import BloomForCausalLM

VOCAB = 97


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models on a shared 2-core machine: intra-op threads only add contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    torch.manual_seed(42)
    # A large init gives peaked distributions, so no near-ties make argmax depend on rounding.
    config = transformers.BloomConfig(vocab_size=VOCAB, hidden_size=32, n_layer=2, n_head=4, bos_token_id=1,
                                      eos_token_id=2, pad_token_id=3, initializer_range=0.3)
    ref = transformers.BloomForCausalLM(config).eval()
    path = tmp_path_factory.mktemp("bloom")
    ref.save_pretrained(path)
    ours = BloomForCausalLM.from_pretrained(path)
    return ref, ours


def left_padded_prompts(pad_id=3):
    return left_padded(3, 7, VOCAB, [0, 3, 5], pad_id, low=4, generator=torch.Generator().manual_seed(5))


def test_generation_config_loaded(pair):
    ref, ours = pair
    assert (ours.generation_config.bos_token_id, ours.generation_config.eos_token_id) == (1, 2)


@pytest.mark.parametrize("batch", ["single", "left-padded", "pad-inferred"])
def test_greedy(pair, batch):
    ids, mask = left_padded_prompts()
    if batch == "single":
        ref, got = run_both(pair, ids[:1], max_new_tokens=12)
    elif batch == "left-padded":
        ref, got = run_both(pair, ids, attention_mask=mask, max_new_tokens=12)
    else:  # the mask comes from pad_token_id
        ref, got = run_both(pair, ids, max_new_tokens=12)
    assert torch.equal(got, ref)


def test_greedy_scores_and_eos_padding(pair):
    ref_model, _ = pair
    ids, mask = left_padded_prompts()
    first = ref_model.generate(ids, attention_mask=mask, max_new_tokens=6)[:, ids.shape[1]:]
    eos = [int(first[0, 2]), int(first[2, 3])]
    ref, got = run_both(pair, ids, attention_mask=mask, max_new_tokens=10, eos_token_id=eos,
                        return_dict_in_generate=True, output_scores=True, output_logits=True)
    assert torch.equal(got.sequences, ref.sequences)
    for a, b in zip(got.logits, ref.logits):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for a, b in zip(got.scores, ref.scores):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kwargs", [
    dict(num_beams=3),
    dict(num_beams=4, num_return_sequences=2, length_penalty=0.6, early_stopping=True),
    dict(num_beams=3, num_return_sequences=3, early_stopping="never", no_repeat_ngram_size=2),
])
def test_beam_search(pair, kwargs):
    ids, mask = left_padded_prompts()
    ref, got = run_both(pair, ids, attention_mask=mask, max_new_tokens=8, return_dict_in_generate=True,
                        output_scores=True, **kwargs)
    assert torch.equal(got.sequences, ref.sequences)
    assert torch.equal(got.beam_indices, ref.beam_indices)
    torch.testing.assert_close(got.sequences_scores, ref.sequences_scores, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(), dict(top_k=10, top_p=0.9, temperature=0.8), dict(num_return_sequences=2)])
def test_sampling(pair, kwargs):
    ids, mask = left_padded_prompts()
    for seed in (0, 1):
        ref, got = run_both(pair, ids, attention_mask=mask, max_new_tokens=10, do_sample=True, seed=seed, **kwargs)
        assert torch.equal(got, ref)


def test_bos_start_and_repetition_penalty(pair):
    ref, got = run_both(pair, max_new_tokens=8, repetition_penalty=1.5)
    assert torch.equal(got, ref)
