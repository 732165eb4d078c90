"""Our decoding loops against the oracle's ``generate``, on the oracle's own tiny GPT-2 weights.

``OracleAdapter`` runs the oracle model's forward under the tongues model contract (a tongues
``DynamicCache`` in and out), so both ``generate`` implementations drive the very same forward and
any difference in tokens, scores or beam bookkeeping comes from the generation code alone.
"""

from __future__ import annotations

import types
import warnings

import pytest
import torch
import transformers
from torch import nn

from oracle import left_padded, run_both
from tongues.generation import (
    GenerationConfig,
    GenerationMixin,
    LogitsProcessor,
    LogitsProcessorList,
    MinLengthLogitsProcessor,
    StoppingCriteria,
    StoppingCriteriaList,
)

VOCAB = 64


class OracleAdapter(nn.Module, GenerationMixin):
    """The oracle's causal LM behind the tongues contract (converts the tongues cache each call)."""

    def __init__(self, hf_model):
        super().__init__()
        self.hf = hf_model
        hf_config = hf_model.config
        config_dict = hf_config.to_dict()
        self.config = types.SimpleNamespace(
            vocab_size=hf_config.vocab_size,
            max_position_embeddings=getattr(hf_config, "max_position_embeddings", None),
            to_dict=lambda: dict(config_dict),
        )
        self.generation_config = GenerationConfig.from_model_config(config_dict)

    @property
    def device(self):
        return next(self.parameters()).device

    def forward(self, input_ids=None, attention_mask=None, past_key_values=None, position_ids=None, use_cache=None,
                return_dict=None, logits_to_keep=0, output_attentions=None, output_hidden_states=None):
        hf_cache = None
        if past_key_values is not None:
            layers = list(zip(past_key_values.keys, past_key_values.values))
            hf_cache = transformers.DynamicCache(ddp_cache_data=layers) if layers else transformers.DynamicCache()
        out = self.hf(input_ids=input_ids, attention_mask=attention_mask, past_key_values=hf_cache,
                      position_ids=position_ids, use_cache=use_cache, logits_to_keep=logits_to_keep,
                      output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True)
        if past_key_values is not None and out.past_key_values is not None:
            past_key_values.keys = [layer.keys for layer in out.past_key_values.layers]
            past_key_values.values = [layer.values for layer in out.past_key_values.layers]
        return types.SimpleNamespace(logits=out.logits, past_key_values=past_key_values,
                                     attentions=out.attentions, hidden_states=out.hidden_states)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models on a shared 2-core machine: intra-op threads only add contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(1234)
    # A large init makes the tiny model's distributions peaked, so beams and samples differ meaningfully.
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=48, n_embd=32, n_layer=2, n_head=4,
                                     bos_token_id=1, eos_token_id=2, initializer_range=0.4)
    hf = transformers.GPT2LMHeadModel(config).eval()
    return hf, OracleAdapter(hf)


def prompts(batch=3, length=6, pads=(0, 2, 4), pad_id=0, seed=7):
    return left_padded(batch, length, VOCAB, list(pads[:batch]), pad_id, low=3,
                       generator=torch.Generator().manual_seed(seed))


def assert_same_output(ref, got):
    if isinstance(ref, torch.Tensor):
        assert got.dtype == ref.dtype
        torch.testing.assert_close(got, ref, rtol=0, atol=0)
        return
    assert type(got).__name__ == type(ref).__name__
    for name in ("sequences", "sequences_scores", "beam_indices"):
        if hasattr(ref, name):
            r, g = getattr(ref, name), getattr(got, name)
            assert (r is None) == (g is None), name
            if r is not None:
                assert g.dtype == r.dtype, name
                torch.testing.assert_close(g, r, rtol=0, atol=0, msg=name)
    for name in ("scores", "logits"):
        r, g = getattr(ref, name), getattr(got, name)
        assert (r is None) == (g is None), name
        if r is not None:
            assert len(g) == len(r), name
            for step, (a, b) in enumerate(zip(g, r)):
                torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"{name}[{step}]")


def eos_pair(pair, ids, mask):
    """Two EOS ids that rows hit at different steps under greedy decoding."""
    hf, _ = pair
    greedy = hf.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False)[:, ids.shape[1]:]
    return [int(greedy[0, 2]), int(greedy[1, 4])]


# ---------------------------------------------------------------------------------------------
# Greedy
# ---------------------------------------------------------------------------------------------


def test_greedy_default_length_is_twenty_new_tokens(pair):
    ids, _ = prompts(batch=1, pads=(0,))
    ref, got = run_both(pair, ids)
    assert got.shape == (1, ids.shape[1] + 20)
    assert_same_output(ref, got)


def test_default_length_warns(pair):
    _, ours = pair
    ids, _ = prompts(batch=1, pads=(0,))
    with pytest.warns(UserWarning, match="max_new_tokens"):
        ours.generate(ids)


@pytest.mark.parametrize("max_kwargs", [dict(max_new_tokens=7), dict(max_length=11)])
def test_greedy_left_padded_batch(pair, max_kwargs):
    ids, mask = prompts()
    assert_same_output(*run_both(pair, ids, attention_mask=mask, **max_kwargs))


def test_greedy_mask_inferred_from_pad_token(pair):
    ids, _ = prompts(pad_id=5)
    assert_same_output(*run_both(pair, ids, pad_token_id=5, max_new_tokens=6))


@pytest.mark.parametrize("pad_token_id", [None, 9])
def test_eos_list_rows_stop_on_their_own_and_are_padded(pair, pad_token_id):
    ids, mask = prompts()
    eos = eos_pair(pair, ids, mask)
    ref, got = run_both(pair, ids, attention_mask=mask, max_new_tokens=8, eos_token_id=eos, pad_token_id=pad_token_id)
    assert_same_output(ref, got)
    new = got[:, ids.shape[1]:]
    filler = eos[0] if pad_token_id is None else pad_token_id
    assert new[0, 2] == eos[0] and (new[0, 3:] == filler).all()


def test_eos_int_stops_generation_early(pair):
    ids, mask = prompts()
    eos = eos_pair(pair, ids, mask)
    ref, got = run_both(pair, ids[:1], max_new_tokens=8, eos_token_id=eos[0])
    assert got.shape[1] == ids.shape[1] + 3
    assert_same_output(ref, got)


@pytest.mark.parametrize("kwargs", [dict(min_new_tokens=5), dict(min_length=12), dict(min_new_tokens=3, min_length=4)])
def test_min_length_suppresses_eos(pair, kwargs):
    ids, mask = prompts()
    eos = eos_pair(pair, ids, mask)
    ref, got = run_both(pair, ids, attention_mask=mask, max_new_tokens=8, eos_token_id=eos, **kwargs)
    assert_same_output(ref, got)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(no_repeat_ngram_size=2),
        dict(no_repeat_ngram_size=1),
        dict(repetition_penalty=1.8),
        dict(repetition_penalty=0.6),
        dict(bad_words_ids=[[7], [11, 12], [3, 4, 5]]),
        dict(sequence_bias={(9,): 3.0, (4, 9): -2.5}),
        dict(suppress_tokens=[3, 4, 5], begin_suppress_tokens=[6, 7]),
        dict(forced_bos_token_id=4),
        dict(forced_eos_token_id=[2, 3]),
        dict(exponential_decay_length_penalty=(2, 1.5)),
        dict(renormalize_logits=True, remove_invalid_values=True),
    ],
)
def test_greedy_processors(pair, kwargs):
    ids, mask = prompts()
    ref, got = run_both(pair, ids, attention_mask=mask, max_new_tokens=10, return_dict_in_generate=True,
                        output_scores=True, **kwargs)
    assert_same_output(ref, got)


def test_forced_bos_from_bos_start(pair):
    ref, got = run_both(pair, max_new_tokens=5, forced_bos_token_id=4)
    assert_same_output(ref, got)
    assert got[0, 1] == 4


def test_start_from_bos_without_prompt(pair):
    assert_same_output(*run_both(pair, max_new_tokens=6))


def test_use_cache_false_matches(pair):
    ids, mask = prompts()
    assert_same_output(*run_both(pair, ids, attention_mask=mask, max_new_tokens=5, use_cache=False))
    assert_same_output(*run_both(pair, ids, attention_mask=mask, max_new_tokens=5, use_cache=False, num_beams=2))


def test_generation_config_argument_and_overrides(pair):
    ids, mask = prompts()
    base = GenerationConfig(max_new_tokens=6, no_repeat_ngram_size=2)
    hf_base = transformers.GenerationConfig(max_new_tokens=6, no_repeat_ngram_size=2)
    hf, ours = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = hf.generate(ids, attention_mask=mask, generation_config=hf_base, max_new_tokens=4)
        got = ours.generate(ids, attention_mask=mask, generation_config=base, max_new_tokens=4)
    assert_same_output(ref, got)
    assert base.max_new_tokens == 6  # the argument is copied, never changed


def test_output_dict_scores_logits_attentions(pair):
    ids, mask = prompts()
    ref, got = run_both(pair, ids, attention_mask=mask, max_new_tokens=4, return_dict_in_generate=True,
                        output_scores=True, output_logits=True, output_attentions=True, output_hidden_states=True,
                        repetition_penalty=1.3)
    assert_same_output(ref, got)
    assert len(got.attentions) == len(ref.attentions) == 4
    for a, b in zip(got.attentions[-1], ref.attentions[-1]):
        torch.testing.assert_close(a, b)
    for a, b in zip(got.hidden_states[0], ref.hidden_states[0]):
        torch.testing.assert_close(a, b)
    assert got.past_key_values.get_seq_length() == got.sequences.shape[1] - 1
    assert got["sequences"] is got.sequences and got[0] is got.sequences


def test_transition_scores_greedy(pair):
    hf, ours = pair
    ids, mask = prompts()
    ref, got = run_both(pair, ids, attention_mask=mask, max_new_tokens=5, return_dict_in_generate=True,
                        output_scores=True)
    for normalize in (False, True):
        expected = hf.compute_transition_scores(ref.sequences, ref.scores, normalize_logits=normalize)
        torch.testing.assert_close(ours.compute_transition_scores(got.sequences, got.scores, normalize_logits=normalize),
                                   expected)


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(temperature=0.7),
        dict(top_k=5),
        dict(top_k=0, top_p=0.8),
        dict(temperature=1.3, top_k=20, top_p=0.9),
        dict(typical_p=0.7),
        dict(min_p=0.2),
        dict(epsilon_cutoff=0.02),
        dict(eta_cutoff=0.01),
        dict(top_h=0.5),
        dict(num_return_sequences=3, top_k=8),
        dict(repetition_penalty=1.5, no_repeat_ngram_size=2, renormalize_logits=True),
    ],
)
def test_sampling_draws_the_same_tokens(pair, kwargs):
    ids, mask = prompts()
    for seed in (0, 1):
        ref, got = run_both(pair, ids, attention_mask=mask, max_new_tokens=8, do_sample=True, seed=seed,
                            return_dict_in_generate=True, output_scores=True, **kwargs)
        assert_same_output(ref, got)


def test_sampling_with_eos_list(pair):
    ids, mask = prompts()
    eos = eos_pair(pair, ids, mask)
    for seed in range(3):
        assert_same_output(*run_both(pair, ids, attention_mask=mask, max_new_tokens=10, do_sample=True, seed=seed,
                                     eos_token_id=eos + [2, 3, 4], top_k=6))


# ---------------------------------------------------------------------------------------------
# Beam search
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("early_stopping", [False, True, "never"])
@pytest.mark.parametrize("length_penalty", [1.0, 0.0, -0.5, 2.0])
def test_beam_search(pair, early_stopping, length_penalty):
    ids, mask = prompts()
    eos = eos_pair(pair, ids, mask)
    ref, got = run_both(pair, ids, attention_mask=mask, max_new_tokens=7, num_beams=3, num_return_sequences=2,
                        eos_token_id=eos, early_stopping=early_stopping, length_penalty=length_penalty,
                        return_dict_in_generate=True, output_scores=True, output_logits=True)
    assert_same_output(ref, got)


@pytest.mark.parametrize("num_beams,num_return", [(2, 1), (4, 4), (5, 3)])
def test_beam_search_shapes_and_scores(pair, num_beams, num_return):
    hf, ours = pair
    ids, mask = prompts()
    eos = eos_pair(pair, ids, mask)
    ref, got = run_both(pair, ids, attention_mask=mask, max_new_tokens=6, num_beams=num_beams,
                        num_return_sequences=num_return, eos_token_id=eos[0], return_dict_in_generate=True,
                        output_scores=True)
    assert_same_output(ref, got)
    assert got.sequences.shape[0] == ids.shape[0] * num_return
    expected = hf.compute_transition_scores(ref.sequences, ref.scores, ref.beam_indices)
    torch.testing.assert_close(ours.compute_transition_scores(got.sequences, got.scores, got.beam_indices), expected)


def test_beam_search_plain_tensor_and_pad_zero_fill(pair):
    # The reference fills ended hypotheses with `pad or eos[0]`: pad id 0 fills with the EOS id.
    ids, mask = prompts()
    eos = eos_pair(pair, ids, mask)
    for pad in (0, 9, None):
        assert_same_output(*run_both(pair, ids, attention_mask=mask, max_new_tokens=8, num_beams=3,
                                     eos_token_id=eos, pad_token_id=pad))


def test_beam_search_with_processors(pair):
    ids, mask = prompts()
    assert_same_output(*run_both(pair, ids, attention_mask=mask, max_new_tokens=6, num_beams=3,
                                 no_repeat_ngram_size=2, repetition_penalty=1.4, min_new_tokens=3,
                                 bad_words_ids=[[5, 6]], return_dict_in_generate=True, output_scores=True))


@pytest.mark.parametrize("seed", [0, 3])
def test_beam_sample(pair, seed):
    ids, mask = prompts()
    eos = eos_pair(pair, ids, mask)
    assert_same_output(*run_both(pair, ids, attention_mask=mask, max_new_tokens=6, num_beams=3, do_sample=True,
                                 num_return_sequences=2, top_k=10, temperature=0.8, eos_token_id=eos, seed=seed,
                                 return_dict_in_generate=True, output_scores=True))


def test_beam_search_without_eos(pair):
    ids, mask = prompts()
    ref, got = run_both(pair, ids, attention_mask=mask, max_new_tokens=5, num_beams=2, eos_token_id=None)
    assert_same_output(ref, got)


# ---------------------------------------------------------------------------------------------
# Custom processors, criteria, streamers
# ---------------------------------------------------------------------------------------------


def test_custom_processor_and_stopping_criteria(pair):
    hf, ours = pair
    ids, mask = prompts()

    def make(base_processor, base_criteria):
        class BanToken(base_processor):
            def __call__(self, input_ids, scores):
                return scores.index_fill(1, torch.tensor([10, 11]), -float("inf"))

        class StopAtLength(base_criteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), input_ids.shape[1] >= 10, dtype=torch.bool)

        return BanToken(), StopAtLength()

    hp, hs = make(transformers.LogitsProcessor, transformers.StoppingCriteria)
    op, os_ = make(LogitsProcessor, StoppingCriteria)
    ref = hf.generate(ids, attention_mask=mask, max_new_tokens=8, logits_processor=transformers.LogitsProcessorList([hp]),
                      stopping_criteria=transformers.StoppingCriteriaList([hs]))
    got = ours.generate(ids, attention_mask=mask, max_new_tokens=8, logits_processor=LogitsProcessorList([op]),
                        stopping_criteria=StoppingCriteriaList([os_]))
    assert_same_output(ref, got)
    assert got.shape[1] == 10
    # A custom processor of a built-in type replaces the built one.
    ref = hf.generate(ids, attention_mask=mask, max_new_tokens=6, min_length=9,
                      logits_processor=[transformers.MinLengthLogitsProcessor(11, 2)])
    got = ours.generate(ids, attention_mask=mask, max_new_tokens=6, min_length=9,
                        logits_processor=[MinLengthLogitsProcessor(11, 2)])
    assert_same_output(ref, got)


def test_prefix_allowed_tokens_fn(pair):
    ids, mask = prompts()

    def allowed(batch_id, row):
        return [3 + (batch_id + int(row[-1])) % 7, 20, 30]

    assert_same_output(*run_both(pair, ids, attention_mask=mask, max_new_tokens=5, prefix_allowed_tokens_fn=allowed))
    assert_same_output(*run_both(pair, ids, attention_mask=mask, max_new_tokens=5, num_beams=2,
                                 prefix_allowed_tokens_fn=allowed))


def test_streamer_receives_what_the_oracle_streamer_receives(pair):
    hf, ours = pair
    ids, _ = prompts(batch=1, pads=(0,))

    class Recorder:
        def __init__(self):
            self.calls = []

        def put(self, value):
            self.calls.append(("put", value.tolist()))

        def end(self):
            self.calls.append(("end",))

    class HFRecorder(Recorder, transformers.generation.BaseStreamer):
        pass

    eos = int(hf.generate(ids, max_new_tokens=4)[0, -2])
    a, b = HFRecorder(), Recorder()
    hf.generate(ids, max_new_tokens=6, eos_token_id=eos, streamer=a)
    ours.generate(ids, max_new_tokens=6, eos_token_id=eos, streamer=b)
    assert b.calls == a.calls
    assert b.calls[0] == ("put", ids.tolist()) and b.calls[-1] == ("end",)


@pytest.mark.parametrize("length_penalty", [1.0, 2.0])
def test_beam_search_never_differs_from_false_and_matches(pair, length_penalty):
    # With these prompts, stopping as soon as no live beam can win (False) and searching on
    # ("never") give different hypotheses: both must still match the reference.
    hf, _ = pair
    ids, mask = prompts(seed=2)
    greedy = hf.generate(ids, attention_mask=mask, max_new_tokens=2)[:, ids.shape[1]:]
    eos = [int(greedy[0, 0]), int(greedy[1, 0])]
    results = {}
    for early_stopping in (False, "never"):
        ref, got = run_both(pair, ids, attention_mask=mask, max_new_tokens=12, num_beams=3, eos_token_id=eos,
                            early_stopping=early_stopping, length_penalty=length_penalty,
                            return_dict_in_generate=True, output_scores=True)
        assert_same_output(ref, got)
        results[early_stopping] = got.sequences
    assert not torch.equal(results[False], results["never"])
