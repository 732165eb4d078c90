"""The engine without HTTP: concurrent requests equal generate alone; logprobs, stops, seeds, aborts, limits."""

import queue
import threading
import time

import pytest
import torch

from tests.serving.helpers import LetterTokenizer, tiny
from tongues.serving import Engine, ParameterError, QueueFull, RequestFailed, SamplingParams

LENGTHS = (5, 2, 13, 1, 9, 3, 17, 7)


def prompts(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(6, 120, (n,), generator=generator).tolist() for n in LENGTHS]


def run_concurrently(engine, requests):
    results = [None] * len(requests)

    def one(i):
        try:
            results[i] = engine.generate(*requests[i], timeout=60)
        except RequestFailed:
            pass

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def generate_alone(model, prompt, steps, **kwargs):
    out = model.generate(torch.tensor([prompt]), max_new_tokens=steps, do_sample=False, pad_token_id=0, **kwargs)
    return out[0, len(prompt):].tolist()


@pytest.mark.parametrize("family", ["bloom", "xglm", "glm", "xlm"])
def test_eight_concurrent_greedy_requests_equal_generate_alone(family):
    model = tiny(family)
    # 4 rows for 8 requests (so some wait), 4-token prefill chunks (so long prompts take several steps).
    engine = Engine(model, LetterTokenizer(), max_running=4, max_queue=16, chunk_size=4).start()
    try:
        steps = [12, 7, 10, 12, 3, 12, 9, 12]
        greedy = [SamplingParams(max_tokens=s, temperature=0, ignore_eos=True) for s in steps]
        results = run_concurrently(engine, list(zip(prompts(), greedy)))
        for prompt, s, result in zip(prompts(), steps, results):
            assert result[0].token_ids == generate_alone(model, prompt, s, eos_token_id=None)
            assert result[0].finish_reason == "length"
        assert engine.num_running == 0
    finally:
        engine.shutdown()


def test_every_end_id_of_the_model_stops_like_generate():
    model = tiny("glm", seed=3)  # eos_token_id [2, 3, 4]
    engine = Engine(model, LetterTokenizer(), max_running=8, chunk_size=8).start()
    try:
        many = [prompts(seed)[i] for seed in range(4) for i in (0, 2, 4, 7)]
        results = run_concurrently(engine, [(p, SamplingParams(max_tokens=40, temperature=0)) for p in many])
        stopped = 0
        for prompt, result in zip(many, results):
            expected = generate_alone(model, prompt, 40)
            assert result[0].token_ids == expected
            ended = expected[-1] in (2, 3, 4)
            stopped += ended
            assert result[0].finish_reason == ("stop" if ended else "length")
        assert stopped, "no prompt reached an end id: the test would not test it"
    finally:
        engine.shutdown()


def test_prompt_and_output_logprobs_are_the_models_log_softmax():
    model = tiny("bloom")
    engine = Engine(model, LetterTokenizer(), chunk_size=4).start()  # 11 tokens: three prefill chunks
    try:
        prompt = prompts()[2][:11]
        params = SamplingParams(max_tokens=3, temperature=0, ignore_eos=True, logprobs=2, prompt_logprobs=3)
        result = engine.generate(prompt, params)[0]
    finally:
        engine.shutdown()
    ids = prompt + result.token_ids
    with torch.no_grad():
        log_probs = model(torch.tensor([ids])).logits[0].log_softmax(-1)  # row j predicts token j + 1
    assert result.prompt_logprobs[0].logprob is None and result.prompt_logprobs[0].token_id == prompt[0]
    assert [entry.token_id for entry in result.prompt_logprobs] == prompt
    for j, entry in enumerate(result.prompt_logprobs[1:] + result.logprobs, start=1):
        assert entry.token_id == ids[j]
        torch.testing.assert_close(entry.logprob, float(log_probs[j - 1, ids[j]]), atol=1e-5, rtol=1e-5)
        k = 3 if j < len(prompt) else 2
        best = torch.topk(log_probs[j - 1], k)
        assert [t for t, _ in entry.top] == best.indices.tolist()
        torch.testing.assert_close(torch.tensor([v for _, v in entry.top]), best.values, atol=1e-5, rtol=1e-5)


def test_stop_string_cuts_the_text_and_penalties_match_generate():
    model = tiny("xglm")
    engine = Engine(model, LetterTokenizer()).start()
    try:
        prompt = prompts()[0]
        free = engine.generate(prompt, SamplingParams(max_tokens=12, temperature=0, ignore_eos=True))[0]
        stop = free.text[4:6]
        cut = engine.generate(prompt, SamplingParams(max_tokens=12, temperature=0, ignore_eos=True, stop=[stop, "#"]))[0]
        assert cut.finish_reason == "stop" and cut.text == free.text[:free.text.index(stop)]
        penalised = engine.generate(prompt, SamplingParams(max_tokens=12, temperature=0, ignore_eos=True,
                                                           repetition_penalty=1.5))[0]
        assert penalised.token_ids == generate_alone(model, prompt, 12, eos_token_id=None, repetition_penalty=1.5)
        presence = engine.generate(prompt, SamplingParams(max_tokens=12, temperature=0, ignore_eos=True,
                                                          presence_penalty=2.0))[0]
        assert len(set(presence.token_ids)) > len(set(free.token_ids))  # repeats were discouraged
    finally:
        engine.shutdown()


def test_logit_bias_and_min_tokens_change_the_draw_but_not_the_logprobs():
    model = tiny("bloom")
    engine = Engine(model, LetterTokenizer()).start()
    try:
        prompt = prompts()[2]
        free = engine.generate(prompt, SamplingParams(max_tokens=6, temperature=0, ignore_eos=True, logprobs=1))[0]
        forced = engine.generate(prompt, SamplingParams(max_tokens=6, temperature=0, ignore_eos=True, logprobs=1,
                                                        logit_bias={77: 100}))[0]
        assert forced.token_ids == [77] * 6
        # the reported log-probability is the model's own, not the biased one
        assert forced.logprobs[0].logprob < -0.5 and forced.logprobs[0].logprob != pytest.approx(0.0)
        banned = engine.generate(prompt, SamplingParams(max_tokens=6, temperature=0, ignore_eos=True,
                                                        logit_bias={free.token_ids[0]: -100}))[0]
        assert banned.token_ids[0] != free.token_ids[0]
        # sampled rows see the bias too: a banned token never comes out of 3 x 6 draws
        sampled = engine.generate(prompt, SamplingParams(max_tokens=6, temperature=1.0, seed=3, n=3, ignore_eos=True,
                                                         logit_bias={t: -100 for t in range(6, 60)}))
        assert all(not 6 <= t < 60 for out in sampled for t in out.token_ids)
        # min_tokens: a forced end id cannot come before the third token; then it ends the sequence
        end = sorted(engine.end_ids)[0]
        ended = engine.generate(prompt, SamplingParams(max_tokens=6, temperature=0, logit_bias={end: 100},
                                                       min_tokens=3))[0]
        assert len(ended.token_ids) == 4 and ended.token_ids[-1] == end and ended.finish_reason == "stop"
        assert end not in ended.token_ids[:3]
        with pytest.raises(ParameterError) as err:
            engine.generate(prompt, SamplingParams(max_tokens=6, logit_bias={10**6: 1.0}))
        assert err.value.param == "logit_bias"
    finally:
        engine.shutdown()


def test_seeded_sampling_repeats_and_n_gives_distinct_continuations():
    engine = Engine(tiny("glm"), LetterTokenizer()).start()
    try:
        params = SamplingParams(max_tokens=10, temperature=1.5, top_p=0.95, top_k=50, seed=7, n=3, ignore_eos=True)
        first = engine.generate(prompts()[1], params)
        again = engine.generate(prompts()[1], params)
        assert [c.token_ids for c in first] == [c.token_ids for c in again]
        assert len({tuple(c.token_ids) for c in first}) > 1
        assert all(len(c.token_ids) == 10 for c in first)
    finally:
        engine.shutdown()


def test_abort_frees_the_row_at_once():
    engine = Engine(tiny("bloom"), LetterTokenizer(), max_running=2).start()
    try:
        outputs = queue.Queue()
        request_id = engine.submit(prompts()[2], SamplingParams(max_tokens=200, temperature=0, ignore_eos=True),
                                   outputs.put)
        outputs.get(timeout=30)
        engine.abort(request_id)
        deadline = time.monotonic() + 30
        while engine.num_running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.num_running == 0
        last = outputs.get(timeout=30)
        while last.finish_reason is None:
            last = outputs.get(timeout=30)
        assert last.finish_reason == "abort" and last.completion_tokens < 200
        assert engine.runner.cache.lengths.tolist() == [0, 0]
        # The engine goes on serving.
        assert engine.generate(prompts()[0], SamplingParams(max_tokens=3, temperature=0))[0].token_ids
    finally:
        engine.shutdown()


def test_full_queue_refuses_and_bad_requests_name_the_parameter():
    engine = Engine(tiny("bloom"), LetterTokenizer(), max_queue=3)  # not started: nothing leaves the queue
    engine.submit([5, 6], SamplingParams(n=2), lambda out: None)
    with pytest.raises(QueueFull, match="max-queue 3"):
        engine.submit([5, 6], SamplingParams(n=2), lambda out: None)
    cases = [
        ([], SamplingParams(), "prompt", "empty"),
        ([5, 120], SamplingParams(), "prompt", "outside the vocabulary"),
        (list(range(6, 100)) * 30, SamplingParams(), "prompt", "context"),
        ([5], SamplingParams(max_tokens=5000), "max_tokens", "at most 2047"),
    ]
    for prompt, params, param, message in cases:
        with pytest.raises(ParameterError, match=message) as info:
            engine.submit(prompt, params, lambda out: None)
        assert info.value.param == param
    for name, value in [("temperature", -1), ("top_p", 0), ("n", 0), ("max_tokens", "5"), ("logprobs", 21),
                        ("stop", [""]), ("presence_penalty", 3), ("repetition_penalty", 0)]:
        with pytest.raises(ParameterError, match=f"'{name}'") as info:
            SamplingParams(**{name: value})
        assert info.value.param == name


def test_ids_past_the_tokenizer_are_never_sampled_nor_accepted():
    class ShortTokenizer(LetterTokenizer):  # the model has 120 rows, the tokenizer 100 tokens (padded tables)
        def __len__(self):
            return 100

    model = tiny("bloom")
    with torch.no_grad():
        model.lm_head.weight[110] = model.lm_head.weight[:100].sum(0) * 50  # greedy alone would pick 110
    prompt = [t % 100 for t in prompts()[0]]
    assert 110 in generate_alone(model, prompt, 5, eos_token_id=None)
    engine = Engine(model, ShortTokenizer()).start()
    try:
        result = engine.generate(prompt, SamplingParams(max_tokens=5, temperature=0, ignore_eos=True,
                                                              logprobs=3))[0]
        assert all(t < 100 for t in result.token_ids)
        assert all(t < 100 for entry in result.logprobs for t, _ in entry.top)
        with pytest.raises(ParameterError, match="outside the vocabulary 0..99"):
            engine.submit([5, 105], SamplingParams(), lambda out: None)
    finally:
        engine.shutdown()


def test_a_failure_inside_one_request_ends_it_alone():
    class Picky(LetterTokenizer):  # cannot write token 50 (a tokenizer bug, say)
        def decode(self, ids, skip_special_tokens=True):
            if 50 in ids:
                raise ValueError("token 50 cannot be written")
            return super().decode(ids, skip_special_tokens)

    model = tiny("bloom")
    with torch.no_grad():
        model.lm_head.weight[50] = model.lm_head.weight.sum(0) * 50  # greedy picks 50 at once
    engine = Engine(model, Picky(), max_running=2).start()
    try:
        results = run_concurrently(engine, [([7, 8, 9], SamplingParams(max_tokens=4, temperature=0)),
                                            ([10, 11], SamplingParams(max_tokens=4, temperature=0))])
        assert results == [None, None]  # both failed (the thread caught RequestFailed)...
        with pytest.raises(RequestFailed, match="token 50 cannot be written"):
            engine.generate([7, 8, 9], SamplingParams(max_tokens=4, temperature=0))
        assert engine.error is None and engine.num_running == 0  # ...and the engine goes on
        with torch.no_grad():
            model.lm_head.weight[50] = 0
        assert len(engine.generate([7, 8, 9], SamplingParams(max_tokens=4, temperature=0,
                                                             ignore_eos=True))[0].token_ids) == 4
    finally:
        engine.shutdown()


@pytest.mark.parametrize("family, prompt_logprobs", [("glm", 1), ("xlm", None)])  # XLM has no prompt logprobs
def test_n_continuations_prefill_the_prompt_once_and_equal_separate_seeded_requests(family, prompt_logprobs):
    engine = Engine(tiny(family), LetterTokenizer(), max_running=4, chunk_size=5)
    prefilled = []
    prefill = engine.runner.prefill
    engine.runner.prefill = lambda seq, start, stop, logits: prefilled.append(stop - start) or prefill(
        seq, start, stop, logits)
    engine.start()
    try:
        prompt = prompts()[6]  # 17 tokens: four chunks
        params = SamplingParams(max_tokens=6, temperature=1.0, seed=11, ignore_eos=True,
                                prompt_logprobs=prompt_logprobs)
        together = engine.generate(prompt, params.replace(n=3))
        assert sum(prefilled) == len(prompt)
        alone = [engine.generate(prompt, params.replace(seed=11 + i))[0] for i in range(3)]
        assert [c.token_ids for c in together] == [c.token_ids for c in alone]
        assert len({tuple(c.token_ids) for c in together}) > 1
        if prompt_logprobs is not None:
            assert all([e.logprob for e in c.prompt_logprobs] == [e.logprob for e in alone[0].prompt_logprobs]
                       for c in together)
    finally:
        engine.shutdown()


def collect(engine, requests):
    """Submit every request before the engine starts (so the first step sees them all), then wait."""
    outputs = [queue.Queue() for _ in requests]
    for (prompt, params), out in zip(requests, outputs):
        engine.submit(prompt, params, out.put)
    engine.start()
    results = []
    for out in outputs:
        tokens = []
        while True:
            item = out.get(timeout=60)
            tokens += item.token_ids
            if item.finish_reason is not None:
                assert item.error is None, item.error
                break
        results.append(tokens)
    return results


@pytest.mark.parametrize("family", ["bloom", "xglm", "glm"])
def test_prompts_prefilled_together_equal_generate_alone(family):
    model = tiny(family)
    lengths = (6, 6, 6, 9, 9, 6)  # rows 0-2 prefill in one forward, rows 3-4 in another, row 5 alone
    generator = torch.Generator().manual_seed(1)
    many = [torch.randint(6, 120, (n,), generator=generator).tolist() for n in lengths]
    engine = Engine(model, LetterTokenizer(), max_running=8, chunk_size=64)
    together = []
    prefill_rows = engine.runner.prefill_rows
    engine.runner.prefill_rows = lambda seqs, *span: together.append(len(seqs)) or prefill_rows(seqs, *span)
    try:
        results = collect(engine, [(p, SamplingParams(max_tokens=8, temperature=0, ignore_eos=True)) for p in many])
    finally:
        engine.shutdown()
    assert together == [3, 2]
    for prompt, tokens in zip(many, results):
        assert tokens == generate_alone(model, prompt, 8, eos_token_id=None)


def test_mixed_batch_seeds_and_penalties_equal_each_request_alone():
    # One batched step decodes plain greedy rows (one argmax for all), penalised greedy rows and seeded
    # sampled rows: each must give what it gives alone.
    model = tiny("bloom")
    many = prompts()[:6]
    settings = [dict(temperature=0), dict(temperature=0.9, seed=11), dict(temperature=0, repetition_penalty=1.5),
                dict(temperature=1.2, top_k=20, seed=5), dict(temperature=0, logprobs=2), dict(temperature=0)]
    requests = [(p, SamplingParams(max_tokens=10, ignore_eos=True, **s)) for p, s in zip(many, settings)]
    engine = Engine(model, LetterTokenizer(), max_running=8, chunk_size=64)
    try:
        results = collect(engine, requests)
    finally:
        engine.shutdown()
    for request, tokens in zip(requests, results):
        alone = Engine(model, LetterTokenizer())
        try:
            assert tokens == collect(alone, [request])[0]
        finally:
            alone.shutdown()
    assert results[0] == generate_alone(model, many[0], 10, eos_token_id=None)
    assert results[2] == generate_alone(model, many[2], 10, eos_token_id=None, repetition_penalty=1.5)


def test_an_idle_engine_gathers_requests_that_arrive_together_into_one_prefill():
    model = tiny("bloom")
    prompt = prompts()[0]
    for window, expected in ((0.3, [3]), (0.0, None)):
        engine = Engine(model, LetterTokenizer(), max_running=4, arrival_window=window)
        rows = []
        together, alone = engine.runner.prefill_rows, engine.runner.prefill
        engine.runner.prefill_rows = lambda seqs, start, stop: rows.append(len(seqs)) or together(seqs, start, stop)
        engine.runner.prefill = lambda seq, start, stop, logits: rows.append(1) or alone(seq, start, stop, logits)
        engine.start()
        try:
            params = SamplingParams(max_tokens=2, temperature=0, ignore_eos=True)
            results = []
            threads = []
            for i in range(3):  # three requests 30 ms apart into an idle engine
                threads.append(threading.Thread(target=lambda: results.append(engine.generate(prompt, params))))
                threads[-1].start()
                time.sleep(0.03)
            for thread in threads:
                thread.join(60)
            assert len(results) == 3 and all(r[0].token_ids == results[0][0].token_ids for r in results)
            if expected:
                assert rows[:1] == expected  # one prefill forward for all three
            else:
                assert rows[0] == 1  # without the window the first one starts alone
        finally:
            engine.shutdown()
    with pytest.raises(ValueError, match="arrival_window"):
        Engine(model, LetterTokenizer(), arrival_window=-1)


def test_schedule_gives_every_row_a_chunk_only_while_fewer_rows_decode_than_prefill():
    from tongues.serving.scheduler import Scheduler
    from tongues.serving.sequence import Sequence

    class Rows:
        def move(self, src, dst):
            pass

        def reset(self, row):
            pass

    def seqs(*lengths):
        return [Sequence(f"r{i}", 0, list(range(6, 6 + n)), SamplingParams(), torch.Generator(), {2}, 256)
                for i, n in enumerate(lengths)]

    def spans(plan):
        return [(seq.request_id, start, stop) for seq, start, stop in plan]

    scheduler = Scheduler(max_running=8, max_waiting=8, chunk_size=8, rows=Rows())
    scheduler.add(seqs(5, 5, 20, 3))
    # Idle: one chunk for each row, up to the first prompt that does not finish (rows finish in order).
    assert spans(scheduler.schedule()) == [("r0", 0, 5), ("r1", 0, 5), ("r2", 0, 8)]
    busy = Scheduler(max_running=8, max_waiting=8, chunk_size=8, rows=Rows())
    busy.add(seqs(2, 5, 5))
    first = busy.schedule()[0][0]
    first.num_prefilled = 2
    busy.prefilled(first)
    # One sequence decodes, two wait for their first token: still a chunk for every prefilling row.
    assert spans(busy.schedule()) == [("r1", 0, 5), ("r2", 0, 5)]
    busy.add(seqs(4))  # a newcomer ("r0" of another request), and r1 finishes its prefill
    second = busy.prefilling[0]
    second.num_prefilled = 5
    busy.prefilled(second)
    # Two decode, two prefill: at most one chunk (8 tokens) in all, in row order.
    assert spans(busy.schedule()) == [("r2", 0, 5), ("r0", 0, 3)]

    # With max_prefill_wait=2, a newcomer into a batch where more rows decode than prefill waits two
    # steps (nothing prefilled), then starts; a burst (fewer decoding than prefilling) never waits.
    held = Scheduler(max_running=8, max_waiting=8, chunk_size=8, rows=Rows(), max_prefill_wait=2)
    held.add(seqs(2, 2))
    for seq, start, stop in held.schedule():  # idle: both prefill at once
        seq.num_prefilled = stop
        held.prefilled(seq)
    held.add(seqs(5))
    assert [spans(held.schedule()) for _ in range(3)] == [[], [], [("r0", 0, 5)]]
    held.remove(held.prefilling[0])  # aborted before its first chunk went in: the next one waits afresh
    held.add(seqs(4))
    assert [spans(held.schedule()) for _ in range(3)] == [[], [], [("r0", 0, 4)]]
    held.add(seqs(3, 3, 3))  # four prefilling against two decoding: a burst, nobody waits
    assert spans(held.schedule()) == [("r0", 0, 4), ("r0", 0, 3), ("r1", 0, 3), ("r2", 0, 3)]

    def one_decoding(max_tokens):
        """A scheduler (hold of 3 steps) with one sequence decoding, of ``max_tokens``, and two new prompts."""
        scheduler = Scheduler(max_running=8, max_waiting=8, chunk_size=8, rows=Rows(), max_prefill_wait=3)
        seq = seqs(2)[0]
        seq.params = SamplingParams(max_tokens=max_tokens)
        scheduler.add([seq])
        scheduler.schedule()
        seq.num_prefilled = 2
        scheduler.prefilled(seq)
        return scheduler, seq

    # A burst waits while every decoding row is due to end within the hold (max_tokens nearly reached).
    tail, ending = one_decoding(3)
    ending.output_ids = [7]  # two tokens left
    tail.add(seqs(3, 3))
    assert spans(tail.schedule()) == []  # held: the straggler finishes first
    ending.output_ids = [7, 7]
    assert spans(tail.schedule()) == []
    ending.output_ids = [7, 7, 7]
    tail.remove(ending)
    assert spans(tail.schedule()) == [("r0", 0, 3), ("r1", 0, 3)]  # then the burst, into an idle batch
    # ... but not when a decoding row goes on past the hold
    long, _ = one_decoding(30)
    long.add(seqs(3, 3))
    assert spans(long.schedule()) == [("r0", 0, 3), ("r1", 0, 3)]
