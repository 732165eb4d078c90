"""Every logits processor against the oracle's on random scores, and the builder's order."""

from __future__ import annotations

import pytest
import torch
import transformers
import transformers.generation.logits_process as ref

from tongues.generation import GenerationConfig, processors as ours
from tongues.generation.configuration import GENERATION_DEFAULTS

B, V, T = 4, 50, 9


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models on a shared 2-core machine: intra-op threads only add contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_case(seed: int, with_inf: bool = False):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(B, V, generator=g) * 3
    # A few exact ties, so "keep ties with the k-th best" is exercised.
    scores[:, 10] = scores[:, 11]
    if with_inf:
        scores[0, :5] = -float("inf")
    input_ids = torch.randint(0, V, (B, T), generator=g)
    input_ids[1, -3:] = input_ids[1, 2:5]  # a repeated trigram for the n-gram ban
    return input_ids, scores


PAIRS = [
    (lambda: ours.TemperatureLogitsWarper(0.7), lambda: ref.TemperatureLogitsWarper(0.7)),
    (lambda: ours.TopKLogitsWarper(5), lambda: ref.TopKLogitsWarper(5)),
    (lambda: ours.TopKLogitsWarper(3, min_tokens_to_keep=6), lambda: ref.TopKLogitsWarper(3, min_tokens_to_keep=6)),
    (lambda: ours.TopKLogitsWarper(500), lambda: ref.TopKLogitsWarper(500)),
    (lambda: ours.TopPLogitsWarper(0.8), lambda: ref.TopPLogitsWarper(0.8)),
    (lambda: ours.TopPLogitsWarper(0.3, min_tokens_to_keep=3), lambda: ref.TopPLogitsWarper(0.3, min_tokens_to_keep=3)),
    (lambda: ours.TopPLogitsWarper(0.0), lambda: ref.TopPLogitsWarper(0.0)),
    (lambda: ours.MinPLogitsWarper(0.1, min_tokens_to_keep=2), lambda: ref.MinPLogitsWarper(0.1, min_tokens_to_keep=2)),
    (lambda: ours.TypicalLogitsWarper(0.6), lambda: ref.TypicalLogitsWarper(0.6)),
    (lambda: ours.TypicalLogitsWarper(0.2, min_tokens_to_keep=4), lambda: ref.TypicalLogitsWarper(0.2, min_tokens_to_keep=4)),
    (lambda: ours.EpsilonLogitsWarper(0.03), lambda: ref.EpsilonLogitsWarper(0.03)),
    (lambda: ours.EtaLogitsWarper(0.05, min_tokens_to_keep=2), lambda: ref.EtaLogitsWarper(0.05, min_tokens_to_keep=2)),
    (lambda: ours.TopHLogitsWarper(0.4), lambda: ref.TopHLogitsWarper(0.4)),
    (lambda: ours.RepetitionPenaltyLogitsProcessor(1.7), lambda: ref.RepetitionPenaltyLogitsProcessor(1.7)),
    (lambda: ours.RepetitionPenaltyLogitsProcessor(0.5, prompt_ignore_length=3),
     lambda: ref.RepetitionPenaltyLogitsProcessor(0.5, prompt_ignore_length=3)),
    (lambda: ours.RepetitionPenaltyLogitsProcessor(1.3, prompt_ignore_length=torch.tensor([0, 2, 5, 9])),
     lambda: ref.RepetitionPenaltyLogitsProcessor(1.3, prompt_ignore_length=torch.tensor([0, 2, 5, 9]))),
    (lambda: ours.NoRepeatNGramLogitsProcessor(1), lambda: ref.NoRepeatNGramLogitsProcessor(1)),
    (lambda: ours.NoRepeatNGramLogitsProcessor(2), lambda: ref.NoRepeatNGramLogitsProcessor(2)),
    (lambda: ours.NoRepeatNGramLogitsProcessor(3), lambda: ref.NoRepeatNGramLogitsProcessor(3)),
    (lambda: ours.NoRepeatNGramLogitsProcessor(20), lambda: ref.NoRepeatNGramLogitsProcessor(20)),
    (lambda: ours.MinLengthLogitsProcessor(12, [2, 3]), lambda: ref.MinLengthLogitsProcessor(12, [2, 3])),
    (lambda: ours.MinLengthLogitsProcessor(5, 2), lambda: ref.MinLengthLogitsProcessor(5, 2)),
    (lambda: ours.MinNewTokensLengthLogitsProcessor(4, 6, [1, 2]),
     lambda: ref.MinNewTokensLengthLogitsProcessor(4, 6, [1, 2])),
    (lambda: ours.NoBadWordsLogitsProcessor([[7], [3, 4], [1, 2, 8], [2]], eos_token_id=2),
     lambda: ref.NoBadWordsLogitsProcessor([[7], [3, 4], [1, 2, 8], [2]], eos_token_id=2)),
    (lambda: ours.SequenceBiasLogitsProcessor({(5,): 2.0, (1, 6): -3.0, (9, 9, 4): 1.5}),
     lambda: ref.SequenceBiasLogitsProcessor({(5,): 2.0, (1, 6): -3.0, (9, 9, 4): 1.5})),
    (lambda: ours.SequenceBiasLogitsProcessor([[[5], 2.0], [[1, 6], -3.0]]),
     lambda: ref.SequenceBiasLogitsProcessor([[[5], 2.0], [[1, 6], -3.0]])),
    (lambda: ours.ForcedBOSTokenLogitsProcessor(3), lambda: ref.ForcedBOSTokenLogitsProcessor(3)),
    (lambda: ours.ForcedEOSTokenLogitsProcessor(10, [2, 4]), lambda: ref.ForcedEOSTokenLogitsProcessor(10, [2, 4])),
    (lambda: ours.InfNanRemoveLogitsProcessor(), lambda: ref.InfNanRemoveLogitsProcessor()),
    (lambda: ours.ExponentialDecayLengthPenalty((3, 1.4), [2, 3], 4),
     lambda: ref.ExponentialDecayLengthPenalty((3, 1.4), [2, 3], 4)),
    (lambda: ours.LogitNormalization(), lambda: ref.LogitNormalization()),
    (lambda: ours.SuppressTokensLogitsProcessor([1, 4, 9]), lambda: ref.SuppressTokensLogitsProcessor([1, 4, 9])),
    (lambda: ours.SuppressTokensAtBeginLogitsProcessor([1, 4], T), lambda: ref.SuppressTokensAtBeginLogitsProcessor([1, 4], T)),
]


@pytest.mark.parametrize("index", range(len(PAIRS)))
@pytest.mark.parametrize("with_inf", [False, True])
def test_processor_matches_reference(index, with_inf):
    make_ours, make_ref = PAIRS[index]
    for seed in range(3):
        input_ids, scores = random_case(seed, with_inf)
        for length in (1, T):  # length-dependent processors switch on and off
            ids = input_ids[:, :length]
            expected = make_ref()(ids, scores.clone())
            got = make_ours()(ids, scores.clone())
            torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True)


def test_inf_nan_removal_on_nan():
    scores = torch.tensor([[float("nan"), float("inf"), -float("inf"), 1.0]])
    ids = torch.zeros(1, 1, dtype=torch.long)
    torch.testing.assert_close(ours.InfNanRemoveLogitsProcessor()(ids, scores), ref.InfNanRemoveLogitsProcessor()(ids, scores))


def test_prefix_constrained_matches_reference():
    input_ids, scores = random_case(0)

    def allowed(batch_id, row):
        return [int(row[-1]) % V, batch_id + 1]

    expected = ref.PrefixConstrainedLogitsProcessor(allowed, 2)(input_ids, scores)
    torch.testing.assert_close(ours.PrefixConstrainedLogitsProcessor(allowed, 2)(input_ids, scores), expected)
    # Constraint already impossible: the allowed tokens are forced at 0.
    blocked = scores.clone()
    blocked[:] = -float("inf")
    expected = ref.PrefixConstrainedLogitsProcessor(allowed, 2)(input_ids, blocked)
    torch.testing.assert_close(ours.PrefixConstrainedLogitsProcessor(allowed, 2)(input_ids, blocked), expected)


@pytest.mark.parametrize(
    "settings",
    [
        dict(),
        dict(do_sample=True),
        dict(do_sample=True, temperature=0.5, top_k=0, top_p=0.9, min_p=0.05, typical_p=0.9, epsilon_cutoff=0.01,
             eta_cutoff=0.02, top_h=0.3, renormalize_logits=True),
        dict(do_sample=True, num_beams=3, top_k=4, top_p=0.7),
        dict(repetition_penalty=1.2, no_repeat_ngram_size=3, bad_words_ids=[[5]], min_length=8, min_new_tokens=2,
             sequence_bias={(4,): 1.0}, forced_bos_token_id=3, forced_eos_token_id=2, remove_invalid_values=True,
             exponential_decay_length_penalty=(2, 1.1), suppress_tokens=[7], begin_suppress_tokens=[8],
             renormalize_logits=True),
    ],
)
def test_builder_order_matches_reference(settings):
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=V, n_embd=8, n_layer=1, n_head=2))
    hf_config = transformers.GenerationConfig(**{**GENERATION_DEFAULTS, **settings, "eos_token_id": [2, 6]})
    hf_config._eos_token_tensor = torch.tensor([2, 6])
    expected = gpt2._get_logits_processor(hf_config, input_ids_seq_length=T, model_kwargs={})
    config = GenerationConfig(**{**GENERATION_DEFAULTS, **settings, "eos_token_id": [2, 6]})
    got = ours.build_logits_processors(config, T, torch.tensor([2, 6]))
    assert [type(p).__name__ for p in got] == [type(p).__name__ for p in expected]
    input_ids, scores = random_case(1)
    torch.testing.assert_close(got(input_ids, scores.clone()), expected(input_ids, scores.clone()), rtol=0, atol=0)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ours.TemperatureLogitsWarper(0.0), "temperature"),
        (lambda: ours.TopKLogitsWarper(0), "top_k"),
        (lambda: ours.TopPLogitsWarper(1.5), "top_p"),
        (lambda: ours.TopPLogitsWarper(0.5, min_tokens_to_keep=0), "min_tokens_to_keep"),
        (lambda: ours.TypicalLogitsWarper(1.0), "typical_p"),
        (lambda: ours.RepetitionPenaltyLogitsProcessor(0.0), "repetition_penalty"),
        (lambda: ours.NoRepeatNGramLogitsProcessor(0), "no_repeat_ngram_size"),
        (lambda: ours.MinLengthLogitsProcessor(-1, 2), "min_length"),
        (lambda: ours.NoBadWordsLogitsProcessor([[1], [-2]]), "bad_words_ids"),
        (lambda: ours.SequenceBiasLogitsProcessor({(1,): 1}), "sequence_bias"),
        (lambda: ours.EpsilonLogitsWarper(1.0), "epsilon_cutoff"),
        (lambda: ours.ForcedEOSTokenLogitsProcessor(5, [-1]), "forced_eos_token_id"),
    ],
)
def test_bad_processor_arguments_name_the_culprit(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_biased_token_outside_vocabulary():
    input_ids, scores = random_case(0)
    with pytest.raises(ValueError, match="outside"):
        ours.SequenceBiasLogitsProcessor({(V + 3,): 1.0})(input_ids, scores)
