"""The scorer's shared-prefix path (a prefix common to several sequences runs once into a cache) gives what
one whole-sequence forward per request gives, for every family's kind of positions (ALiBi from the mask,
sinusoidal and rotary position ids), and groups sequences only where they share a real prefix."""

from __future__ import annotations

import pytest
import torch

import tongues
from tongues.eval import Scorer, scoring
from tongues.eval.scoring import shared_prefix_groups


def reference(model, requests):
    """(summed log-probability, is_greedy) of each (context ids, continuation ids), one unpadded forward each."""
    out = []
    with torch.inference_mode():
        for context, continuation in requests:
            ids = torch.tensor([list(context) + list(continuation)[:-1]])
            logits = model(input_ids=ids).logits[0, len(context) - 1:].float()
            targets = torch.tensor(continuation)
            out.append((float(torch.log_softmax(logits, -1).gather(1, targets[:, None]).sum()),
                        bool((logits.argmax(-1) == targets).all())))
    return out


def assert_matches(scores, expected):
    assert [greedy for _, greedy in scores] == [greedy for _, greedy in expected]
    torch.testing.assert_close(torch.tensor([s for s, _ in scores], dtype=torch.float64),
                               torch.tensor([s for s, _ in expected], dtype=torch.float64), atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["bloom", "xglm", "glm"])
def test_shared_prefixes_equal_whole_forwards(family, checkpoint):
    model = tongues.AutoModelForCausalLM.from_pretrained(checkpoint(family)).eval()
    tokenizer = tongues.AutoTokenizer.from_pretrained(checkpoint(family))
    ctx = [11, 12, 13, 14, 15, 16, 17, 18]
    requests = [
        (ctx, [20, 21, 22]), (ctx, [23]), (ctx, [20, 21, 24, 25]),      # three choices of one context
        (ctx, [20, 21, 22]),                                             # a duplicate
        (ctx[:-1] + [30], [31, 32]), (ctx[:-1] + [33], [34]),             # the context's last token differs
        ([40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50], [51, 52]),        # a one-choice document
        ([tokenizer.eos_token_id], [60, 61, 62]), ([tokenizer.eos_token_id], [63]),  # empty contexts
        ([70, 71], [72, 73, 74, 75, 76, 77, 78, 79, 80]), ([70, 71], [72, 73, 81]),  # a long continuation
        (ctx, [90]), (ctx, [91]), (ctx, [20, 92]), (ctx, [20, 93]),      # the same inputs, another last token
    ]
    expected = reference(model, requests)
    for batch_size in (1, 2, 3, 16):  # groups split over batches, several groups per batch
        assert_matches(Scorer(model, tokenizer, batch_size=batch_size).loglikelihood_tokens(requests), expected)


def test_shared_prefixes_through_text_requests(checkpoint, monkeypatch):
    """Text requests (lm-eval's encoding rules) of two documents with two and three choices, on the embedded
    model, with the head run a few rows at a time, windows of one batch and prefills of one prefix."""
    monkeypatch.setattr(scoring, "HEAD_ROWS", 3)
    monkeypatch.setattr(scoring, "PREFIX_BATCH_TOKENS", 2)
    monkeypatch.setattr(scoring, "WINDOW_BATCHES", 1)
    path = checkpoint("embedded")
    model = tongues.AutoModelForCausalLM.from_pretrained(path).eval()
    tokenizer = tongues.AutoTokenizer.from_pretrained(path)
    scorer = Scorer(model, tokenizer, batch_size=4)
    requests = [("The cat sat on the", " mat."), ("The cat sat on the", " chair."), ("The cat sat on the", "mat"),
                ("Question: 2 + 2 =", " 4"), ("Question: 2 + 2 =", " four"), ("", "Hello")]
    assert_matches(scorer.loglikelihood(requests),
                   reference(model, [scorer.encode_pair(c, x) for c, x in requests]))


def test_grouping_shares_real_prefixes_only():
    a, b, c = ((1, 2, 3, 4, 5, 6), 2), ((1, 2, 3, 4, 5, 9, 9), 3), ((1, 7, 7, 7, 7, 7), 2)
    groups = shared_prefix_groups([c, b, a])
    # a and b share 5 tokens, capped at b's first scored position (7 - 3 = 4); c shares only the first
    # token (a BOS, say), too little to join, and runs alone in one piece.
    assert groups == [(4, [a, b]), (0, [c])]
    # A prefix never covers a scored position: a one-token context shares nothing.
    assert shared_prefix_groups([((1,), 1), ((1, 5), 2)]) == [(0, [((1,), 1)]), (0, [((1, 5), 2)])]
    assert shared_prefix_groups([]) == []


class Wrapped(torch.nn.Module):
    """A causal LM that is not a tongues head model: the scorer falls back to its logits (all, or kept ones)."""

    def __init__(self, model, keeps_logits: bool):
        super().__init__()
        self.inner, self.config = model, model.config
        if keeps_logits:
            self.forward = self.forward_keeping

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=None):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                          past_key_values=past_key_values, use_cache=use_cache)

    def forward_keeping(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None,
                        use_cache=None, logits_to_keep=0):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                          past_key_values=past_key_values, use_cache=use_cache, logits_to_keep=logits_to_keep)


@pytest.mark.parametrize("keeps_logits", [True, False])
def test_other_models_use_their_logits(keeps_logits, checkpoint):
    model = tongues.AutoModelForCausalLM.from_pretrained(checkpoint("xglm")).eval()
    tokenizer = tongues.AutoTokenizer.from_pretrained(checkpoint("xglm"))
    requests = [([5, 6, 7, 8], [9, 10]), ([5, 6, 7, 8], [11]), ([12, 13], [14, 15, 16]), ([5], [17])]
    scorer = Scorer(Wrapped(model, keeps_logits), tokenizer, batch_size=2)
    assert scorer._head is None
    assert_matches(scorer.loglikelihood_tokens(requests), reference(model, requests))
