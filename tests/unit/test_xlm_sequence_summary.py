"""tongues.layers.summary: sequence pooling and the SQuAD beam head, checked against their formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tongues.layers.summary import BeamSpanHead, SequenceSummary, gather_positions, mask_scores


@pytest.mark.parametrize("kind", ["first", "last", "mean", "cls_index"])
def test_pooling_then_projection(kind):
    torch.manual_seed(0)
    pool = SequenceSummary(8, kind, num_outputs=3, activation="tanh").eval()
    hidden = torch.randn(2, 5, 8)
    cls_index = torch.tensor([1, 3])
    picked = {"first": hidden[:, 0], "last": hidden[:, -1], "mean": hidden.mean(1),
              "cls_index": hidden[torch.arange(2), cls_index]}[kind]
    expected = torch.tanh(pool.summary(picked))
    torch.testing.assert_close(pool(hidden, cls_index=cls_index if kind == "cls_index" else None), expected)


def test_cls_index_defaults_to_last_and_handles_leading_dimensions():
    pool = SequenceSummary(4, "cls_index")
    hidden = torch.randn(2, 3, 6, 4)  # (batch, choices, T, D)
    torch.testing.assert_close(pool(hidden), hidden[..., -1, :])
    index = torch.tensor([[0, 5, 2], [1, 1, 4]])
    out = pool(hidden, cls_index=index)
    torch.testing.assert_close(out[1, 2], hidden[1, 2, 4])


def test_no_projection_and_dropout_only_in_training():
    pool = SequenceSummary(4, "first", first_dropout=0.5)
    hidden = torch.randn(3, 2, 4)
    assert torch.equal(pool.eval()(hidden), hidden[:, 0])
    big = torch.randn(64, 2, 4)
    assert not torch.equal(pool.train()(big), big[:, 0])


def test_attention_pool_is_a_softmax_average_over_real_tokens():
    torch.manual_seed(0)
    pool = SequenceSummary(8, "attn", num_heads=1).eval()
    with torch.no_grad():
        pool.pool.query.normal_()
    hidden = torch.randn(1, 4, 8)
    mask = torch.tensor([[1, 1, 1, 0]])
    attn = pool.pool
    q, k, v = attn.q_proj(attn.query), attn.k_proj(hidden[0, :3]), attn.v_proj(hidden[0, :3])
    weights = F.softmax(k @ q / 8**0.5, dim=0)
    expected = attn.layer_norm(attn.o_proj(weights @ v))
    torch.testing.assert_close(pool(hidden, attention_mask=mask)[0], expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="summary_type must be one of"):
        SequenceSummary(4, "max")
    with pytest.raises(ValueError, match="Unknown activation function 'swoosh'"):
        SequenceSummary(4, "first", num_outputs=2, activation="swoosh")
    with pytest.raises(ValueError, match=r"must match the leading dimensions \(2,\)"):
        gather_positions(torch.randn(2, 3, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="hidden_size 6 must be divisible by num_heads 4"):
        SequenceSummary(6, "attn", num_heads=4)


def test_mask_scores():
    scores = torch.tensor([1.0, 2.0, 3.0])
    p_mask = torch.tensor([0.0, 1.0, 0.0])
    torch.testing.assert_close(mask_scores(scores, p_mask), torch.tensor([1.0, -1e30, 3.0]))
    half = mask_scores(scores.half(), p_mask.half())
    assert torch.isfinite(half).all() and half[1].item() < -65000  # fp16 has no -1e30


def test_beam_head_candidates_follow_their_definition():
    torch.manual_seed(0)
    head = BeamSpanHead(8, start_n_top=2, end_n_top=3).eval()
    hidden = torch.randn(1, 6, 8)
    with torch.no_grad():
        out = head(hidden)
        start_log_probs = F.log_softmax(head.start_logits(hidden), -1)[0]
        best = start_log_probs.topk(2)
        assert torch.equal(out["start_top_index"][0], best.indices)
        torch.testing.assert_close(out["start_top_log_probs"][0], best.values)
        for s in range(2):
            start = out["start_top_index"][0, s]
            end_log_probs = F.log_softmax(head.end_logits(hidden, start_positions=start[None])[0], -1)
            ends = end_log_probs.topk(3)
            # Laid out end-major: entry e * start_n_top + s is the e-th end of the s-th start.
            assert torch.equal(out["end_top_index"][0, s::2], ends.indices)
            torch.testing.assert_close(out["end_top_log_probs"][0, s::2], ends.values)


def test_beam_head_loss():
    torch.manual_seed(0)
    head = BeamSpanHead(8, 2, 2)
    hidden = torch.randn(2, 5, 8)
    starts, ends = torch.tensor([1, 2]), torch.tensor([3, 2])
    loss = head(hidden, start_positions=starts[:, None], end_positions=ends)["loss"]
    start_logits = head.start_logits(hidden)
    end_logits = head.end_logits(hidden, start_positions=starts)
    expected = (F.cross_entropy(start_logits, starts) + F.cross_entropy(end_logits, ends)) / 2
    torch.testing.assert_close(loss, expected)
    impossible, cls = torch.tensor([1.0, 0.0]), torch.tensor([0, 0])
    with_cls = head(hidden, start_positions=starts, end_positions=ends, is_impossible=impossible, cls_index=cls)["loss"]
    cls_logits = head.answer_class(hidden, start_positions=starts, cls_index=cls)
    torch.testing.assert_close(with_cls, expected + 0.5 * F.binary_cross_entropy_with_logits(cls_logits, impossible))
