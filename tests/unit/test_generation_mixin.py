"""GenerationMixin on a tiny pure-torch causal model: properties and every bad-input error."""

from __future__ import annotations

import math
import types

import pytest
import torch
from torch import nn

from tongues.cache import DynamicCache
from tongues.generation import (
    GenerateBeamDecoderOnlyOutput,
    GenerateDecoderOnlyOutput,
    GenerationConfig,
    GenerationMixin,
)

VOCAB = 40


class TinyLM(nn.Module, GenerationMixin):
    """Embedding + learned positions + one causal attention layer over a DynamicCache."""

    def __init__(self, dim=16, max_positions=None, bos=1, eos=2, pad=0):
        super().__init__()
        self.dim = dim
        self.max_positions = max_positions
        values = dict(vocab_size=VOCAB, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad,
                      max_position_embeddings=max_positions)
        self.config = types.SimpleNamespace(**values, to_dict=lambda: dict(values))
        self.generation_config = None
        self.embed = nn.Embedding(VOCAB, dim)
        self.pos = nn.Embedding(max_positions or 128, dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.head = nn.Linear(dim, VOCAB)
        for p in self.parameters():
            nn.init.normal_(p, std=0.6)

    @property
    def device(self):
        return torch.device("cpu")

    def _max_positions(self):
        return self.max_positions

    def forward(self, input_ids, attention_mask=None, past_key_values=None, position_ids=None, use_cache=None,
                return_dict=None, logits_to_keep=0):
        B, T = input_ids.shape
        past = past_key_values.get_seq_length() if past_key_values is not None else 0
        if position_ids is None:
            position_ids = torch.arange(past, past + T)[None].expand(B, -1)
        x = self.embed(input_ids) + self.pos(position_ids)  # (B, T, D)
        q, k, v = self.qkv(x).split(self.dim, dim=-1)
        q, k, v = (t[:, None] for t in (q, k, v))  # (B, 1, T, D)
        if past_key_values is not None and use_cache:
            k, v = past_key_values.update(k, v, 0)
        S = k.shape[2]
        allowed = torch.ones(T, S, dtype=torch.bool).tril(diagonal=S - T)[None]  # (1, T, S)
        if attention_mask is not None:
            allowed = allowed & attention_mask[:, None, :].bool()
        scores = (q @ k.transpose(-1, -2))[:, 0] / math.sqrt(self.dim)  # (B, T, S)
        out = scores.masked_fill(~allowed, -1e9).softmax(-1) @ v[:, 0]
        logits = self.head(x + out)
        if logits_to_keep:
            logits = logits[:, -logits_to_keep:]
        return types.SimpleNamespace(logits=logits, past_key_values=past_key_values if use_cache else None)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models on a shared 2-core machine: intra-op threads only add contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return TinyLM().eval()


def ids(batch=2, length=5, seed=0):
    return torch.randint(3, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [dict(), dict(num_beams=3), dict(num_beams=2, num_return_sequences=2)])
def test_cached_equals_uncached(model, kwargs):
    prompt = ids()
    cached = model.generate(prompt, max_new_tokens=8, **kwargs)
    uncached = model.generate(prompt, max_new_tokens=8, use_cache=False, **kwargs)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("kwargs", [dict(), dict(num_beams=3), dict(no_repeat_ngram_size=2, repetition_penalty=1.5)])
def test_left_padded_batch_equals_rows(model, kwargs):
    rows = [ids(1, 6, seed=1), ids(1, 3, seed=2), ids(1, 5, seed=3)]
    width = max(r.shape[1] for r in rows)
    batch = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for b, r in enumerate(rows):
        batch[b, width - r.shape[1]:] = r[0]
        mask[b, width - r.shape[1]:] = 1
    together = model.generate(batch, attention_mask=mask, max_new_tokens=6, eos_token_id=None, **kwargs)
    for b, r in enumerate(rows):
        alone = model.generate(r, max_new_tokens=6, eos_token_id=None, **kwargs)
        assert torch.equal(together[b, width:], alone[0, r.shape[1]:]), f"row {b}"


def test_continuing_from_a_returned_cache(model):
    prompt = ids()
    full = model.generate(prompt, max_new_tokens=10, eos_token_id=None)
    first = model.generate(prompt, max_new_tokens=4, eos_token_id=None, return_dict_in_generate=True)
    assert first.past_key_values.get_seq_length() == first.sequences.shape[1] - 1
    second = model.generate(first.sequences, past_key_values=first.past_key_values, max_new_tokens=6,
                            eos_token_id=None)
    assert torch.equal(second, full)
    legacy = model.generate(prompt, max_new_tokens=4, eos_token_id=None, return_dict_in_generate=True)
    again = model.generate(legacy.sequences, past_key_values=legacy.past_key_values.to_legacy_cache(),
                           max_new_tokens=6, eos_token_id=None)
    assert torch.equal(again, full)


def test_generation_config_built_from_model_config(model):
    out = model.generate(ids(1), max_new_tokens=3)
    assert out.shape == (1, 8)
    assert model.generation_config is None  # generate never writes to the model


def test_output_types_and_shapes(model):
    prompt = ids()
    out = model.generate(prompt, max_new_tokens=4, return_dict_in_generate=True, output_scores=True, output_logits=True)
    assert isinstance(out, GenerateDecoderOnlyOutput)
    assert len(out.scores) == len(out.logits) == 4 and out.scores[0].shape == (2, VOCAB)
    beams = model.generate(prompt, max_new_tokens=4, num_beams=3, num_return_sequences=2,
                           return_dict_in_generate=True, output_scores=True)
    assert isinstance(beams, GenerateBeamDecoderOnlyOutput)
    assert beams.sequences.shape[0] == 4 and beams.sequences_scores.shape == (4,)
    assert beams.beam_indices.shape == (4, beams.sequences.shape[1] - prompt.shape[1])
    scores = model.compute_transition_scores(beams.sequences, beams.scores, beams.beam_indices)
    lengths = (beams.beam_indices >= 0).sum(-1)
    torch.testing.assert_close(scores.sum(-1) / lengths.float(), beams.sequences_scores)


def test_sampling_is_reproducible_and_returns_several_sequences(model):
    prompt = ids()
    torch.manual_seed(3)
    a = model.generate(prompt, do_sample=True, max_new_tokens=6, num_return_sequences=3)
    torch.manual_seed(3)
    b = model.generate(prompt, do_sample=True, max_new_tokens=6, num_return_sequences=3)
    assert a.shape == (6, 11) and torch.equal(a, b)
    assert torch.equal(a[0, :5], a[2, :5])  # rows of one prompt are consecutive


def test_streamer_gets_prompt_then_each_token(model):
    calls = []

    class Recorder:
        def put(self, value):
            calls.append(value.tolist())

        def end(self):
            calls.append("end")

    out = model.generate(ids(1), max_new_tokens=4, eos_token_id=None, streamer=Recorder())
    assert calls[0] == out[:, :5].tolist()
    assert calls[1:-1] == [[t] for t in out[0, 5:].tolist()] and calls[-1] == "end"


def test_max_length_counts_the_prompt(model):
    assert model.generate(ids(1, 5), max_length=9, eos_token_id=None).shape == (1, 9)
    with pytest.warns(UserWarning, match="default max_length"):
        assert model.generate(ids(1, 5), eos_token_id=None).shape == (1, 25)


def test_right_padding_warns(model):
    batch = ids()
    mask = torch.ones_like(batch)
    mask[1, -2:] = 0
    with pytest.warns(UserWarning, match="left"):
        model.generate(batch, attention_mask=mask, max_new_tokens=2)


# ---------------------------------------------------------------------------------------------
# Errors name the culprit
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m: m.generate(torch.tensor([[3, VOCAB]]), max_new_tokens=2), ValueError, "vocabulary of 40"),
        (lambda m: m.generate(torch.tensor([[3, -1]]), max_new_tokens=2), ValueError, "negative"),
        (lambda m: m.generate(torch.zeros(1, 0, dtype=torch.long), max_new_tokens=2), ValueError, "empty"),
        (lambda m: m.generate(torch.tensor([3, 4]), max_new_tokens=2), ValueError, "2-D"),
        (lambda m: m.generate(torch.tensor([[3.0, 4.0]]), max_new_tokens=2), TypeError, "integer"),
        (lambda m: m.generate([[3, 4]], max_new_tokens=2), TypeError, "torch.Tensor"),
        (lambda m: m.generate(ids(), attention_mask=torch.ones(2, 3), max_new_tokens=2), ValueError, "attention_mask"),
        (lambda m: m.generate(ids(), attention_mask=torch.ones(2, 1, 5), max_new_tokens=2), ValueError, "2-D"),
        (lambda m: m.generate(ids(), max_new_tokens=-1), ValueError, "max_new_tokens"),
        (lambda m: m.generate(ids(), max_new_tokens=10**7), ValueError, "max_new_tokens"),
        (lambda m: m.generate(ids(), max_length=10**8), ValueError, "max_length"),
        (lambda m: m.generate(ids(1, 5), max_length=5), ValueError, "max_length"),
        (lambda m: m.generate(ids(), max_new_tokens=2, nonsense_flag=1), ValueError, "nonsense_flag"),
        (lambda m: m.generate(ids(), max_new_tokens=2, num_beams=2, streamer=object()), ValueError, "streamer"),
        (lambda m: m.generate(ids(), max_new_tokens=2, num_beams=2, num_return_sequences=3), ValueError,
         "num_return_sequences"),
        (lambda m: m.generate(ids(), max_new_tokens=2, do_sample=True, temperature=0.0), ValueError, "temperature"),
        (lambda m: m.generate(ids(), max_new_tokens=2, top_p=1.2, do_sample=True), ValueError, "top_p"),
        (lambda m: m.generate(ids(), max_new_tokens=2, top_k=-2, do_sample=True), ValueError, "top_k"),
        (lambda m: m.generate(ids(), max_new_tokens=2, num_beams=0), ValueError, "num_beams"),
        (lambda m: m.generate(ids(), {"max_new_tokens": 2}), TypeError, "GenerationConfig"),
        (lambda m: m.generate(ids(), input_ids=ids(), max_new_tokens=2), ValueError, "once"),
        (lambda m: m.generate(ids(), max_new_tokens=2, past_key_values=object()), TypeError, "past_key_values"),
        (lambda m: m.generate(ids(), max_new_tokens=2, stop_strings=["x"]), ValueError, "stop_strings"),
    ],
)
def test_bad_input_errors(model, call, error, message):
    with pytest.raises(error, match=message):
        call(model)


def test_prompt_longer_than_learned_positions():
    limited = TinyLM(max_positions=8)
    with pytest.raises(ValueError, match="learned positions for only 8"):
        limited.generate(ids(1, 9), max_new_tokens=1)
    limited.generate(ids(1, 5), max_new_tokens=3)


def test_no_prompt_needs_bos():
    no_bos = TinyLM(bos=None)
    with pytest.raises(ValueError, match="bos_token_id"):
        no_bos.generate(max_new_tokens=2)
    assert TinyLM().generate(max_new_tokens=2)[0, 0] == 1


def test_generation_config_argument_is_not_modified(model):
    config = GenerationConfig(max_new_tokens=3, num_beams=2)
    model.generate(ids(), generation_config=config)
    assert config.max_length is None and config.eos_token_id is None


def test_model_without_cache_support():
    class NoCacheLM(TinyLM):
        def forward(self, input_ids, attention_mask=None, position_ids=None, return_dict=None):
            return super().forward(input_ids, attention_mask=attention_mask, position_ids=position_ids)

    torch.manual_seed(0)
    plain = NoCacheLM().eval()
    torch.manual_seed(0)
    cached = TinyLM().eval()
    prompt = ids()
    assert torch.equal(plain.generate(prompt, max_new_tokens=5), cached.generate(prompt, max_new_tokens=5))
    assert torch.equal(plain.generate(prompt, max_new_tokens=5, num_beams=2),
                       cached.generate(prompt, max_new_tokens=5, num_beams=2))


def test_cache_is_a_dynamic_cache(model):
    out = model.generate(ids(), max_new_tokens=2, return_dict_in_generate=True)
    assert isinstance(out.past_key_values, DynamicCache)
