"""The HTTP server through the real `openai` client and raw requests, on a free loopback port."""

import json
import threading
import time

import openai
import pytest
import requests
import torch

from tests.serving.helpers import LiveServer, demo_model_and_tokenizer
from tongues.serving import Engine, SamplingParams

PROMPTS = ["Tous les êtres humains naissent", "Everyone has the right", "Toda persona", "1", "Article 3. Tout individu a "
           "droit à la vie, à la liberté et à la sûreté de sa personne.", "Niemand darf", "Kila mtu", "Ogni individuo"]


@pytest.fixture(scope="module")
def served():
    model, tokenizer = demo_model_and_tokenizer()
    engine = Engine(model, tokenizer, max_running=8, max_queue=64, chunk_size=8).start()
    with LiveServer(engine, model_name="demo") as server:
        server.model, server.tokenizer = model, tokenizer
        yield server


@pytest.fixture(scope="module")
def client(served):
    return openai.OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def test_models_and_a_greedy_completion_through_the_openai_client(served, client):
    assert [m.id for m in client.models.list().data] == ["demo"]
    out = client.completions.create(model="demo", prompt=PROMPTS[0], max_tokens=12, temperature=0)
    choice = out.choices[0]
    # Greedy, with the checkpoint's repetition_penalty 1.3 (generation_config.json) as generate uses it.
    ids = served.tokenizer.encode(PROMPTS[0])
    expected = served.model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False)[0, len(ids):]
    assert choice.text == served.tokenizer.decode(expected.tolist(), skip_special_tokens=True)
    assert choice.finish_reason == ("stop" if expected[-1] == 2 or len(expected) < 12 else "length")
    assert out.usage.prompt_tokens == len(ids) and out.usage.completion_tokens <= 12


def test_logit_bias_and_min_tokens_through_the_openai_client(served, client):
    token = served.tokenizer.encode(" la")[-1]
    out = client.completions.create(model="demo", prompt=PROMPTS[1], max_tokens=4, temperature=0,
                                    logit_bias={str(token): 100})
    assert out.choices[0].text == served.tokenizer.decode([token] * 4)
    end = 2  # the demonstration model's end id, forced from the start but allowed only after 3 tokens
    out = client.completions.create(model="demo", prompt=PROMPTS[1], max_tokens=8, temperature=0,
                                    logit_bias={str(end): 100}, extra_body={"min_tokens": 3})
    assert out.choices[0].finish_reason == "stop" and out.usage.completion_tokens == 4


def test_streamed_chunks_concatenate_to_the_whole_text(client):
    for prompt in PROMPTS[:4]:
        whole = client.completions.create(model="demo", prompt=prompt, max_tokens=20, temperature=0,
                                          extra_body={"ignore_eos": True})
        chunks = list(client.completions.create(model="demo", prompt=prompt, max_tokens=20, temperature=0,
                                                stream=True, stream_options={"include_usage": True},
                                                extra_body={"ignore_eos": True}))
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        assert text == whole.choices[0].text
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
        assert chunks[-1].usage.completion_tokens == 20 and not chunks[-1].choices
        assert not any("\ufffd" in c.choices[0].text for c in chunks if c.choices)


def test_eight_concurrent_greedy_requests_equal_their_sequential_results(client):
    def ask(prompt):
        return client.completions.create(model="demo", prompt=prompt, max_tokens=16, temperature=0,
                                         extra_body={"ignore_eos": True}).choices[0].text

    sequential = [ask(p) for p in PROMPTS]
    concurrent = [None] * len(PROMPTS)
    threads = [threading.Thread(target=lambda i=i: concurrent.__setitem__(i, ask(PROMPTS[i])))
               for i in range(len(PROMPTS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert concurrent == sequential


def test_echo_logprobs_as_lm_eval_reads_them_equal_the_models_log_softmax(served):
    # lm-evaluation-harness's local-completions loglikelihood request: token ids, echo, 1 token, logprobs 1.
    prompts = [served.tokenizer.encode(p) for p in PROMPTS[:3]]
    body = {"model": "demo", "prompt": prompts, "max_tokens": 1, "temperature": 0, "logprobs": 1, "echo": True,
            "seed": 1234}
    out = requests.post(served.url + "/v1/completions", json=body, timeout=60).json()
    for choice, ids in zip(sorted(out["choices"], key=lambda c: c["index"]), prompts):
        logprobs = choice["logprobs"]
        assert logprobs["token_logprobs"][0] is None and logprobs["top_logprobs"][0] is None
        assert len(logprobs["tokens"]) == len(logprobs["token_logprobs"]) == len(ids) + 1
        assert logprobs["text_offset"] == sorted(logprobs["text_offset"])
        with torch.no_grad():
            expected = served.model(torch.tensor([ids])).logits[0].log_softmax(-1)
        got = torch.tensor(logprobs["token_logprobs"][1:len(ids)])
        want = expected[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        # lm-eval's greedy check: the token's logprob is the best of its top_logprobs exactly when it is the argmax.
        for j, top in enumerate(logprobs["top_logprobs"][1:len(ids)]):
            greedy = int(expected[j].argmax()) == ids[j + 1]
            assert (logprobs["token_logprobs"][j + 1] == max(top.values())) == greedy
        assert choice["text"].startswith(served.tokenizer.decode(ids))


def test_chat_without_a_template_and_bad_inputs_are_named_4xx(served):
    url = served.url
    cases = [
        ("/v1/completions", "{", 400, None),
        ("/v1/completions", "[1, 2]", 400, None),
        ("/v1/completions", {"prompt": 5}, 400, "prompt"),
        ("/v1/completions", {"prompt": ""}, 400, "prompt"),
        ("/v1/completions", {"prompt": []}, 400, "prompt"),
        ("/v1/completions", {"max_tokens": 3}, 400, "prompt"),
        ("/v1/completions", {"prompt": [1, 99999]}, 400, "prompt"),
        ("/v1/completions", {"prompt": [[1, 2], []]}, 400, "prompt"),
        ("/v1/completions", {"prompt": "a", "max_tokens": "5"}, 400, "max_tokens"),
        ("/v1/completions", {"prompt": "a", "max_tokens": -1}, 400, "max_tokens"),
        ("/v1/completions", {"prompt": "a", "max_tokens": 5000}, 400, "max_tokens"),
        ("/v1/completions", {"prompt": [7] * 2048}, 400, "prompt"),
        ("/v1/completions", {"prompt": "a", "temperature": -0.5}, 400, "temperature"),
        ("/v1/completions", {"prompt": "a", "temperature": "hot"}, 400, "temperature"),
        ("/v1/completions", {"prompt": "a", "top_p": 1.5}, 400, "top_p"),
        ("/v1/completions", {"prompt": "a", "n": 1000}, 400, "n"),
        ("/v1/completions", {"prompt": "a", "n": 0}, 400, "n"),
        ("/v1/completions", {"prompt": "a", "logprobs": 99}, 400, "logprobs"),
        ("/v1/completions", {"prompt": "a", "stop": 3}, 400, "stop"),
        ("/v1/completions", {"prompt": "a", "stream": "yes"}, 400, "stream"),
        ("/v1/completions", {"prompt": "a", "stream_options": {"include_usage": True}}, 400, "stream_options"),
        ("/v1/completions", {"prompt": "a", "presence_penalty": 9}, 400, "presence_penalty"),
        ("/v1/completions", {"prompt": "a", "frobnicate": 1}, 400, "frobnicate"),
        ("/v1/completions", {"prompt": "a", "logit_bias": {"x": 1}}, 400, "logit_bias"),
        ("/v1/completions", {"prompt": "a", "logit_bias": {"5": 101}}, 400, "logit_bias"),
        ("/v1/completions", {"prompt": "a", "logit_bias": {"99999": 1}}, 400, "logit_bias"),
        ("/v1/completions", {"prompt": "a", "logit_bias": [1]}, 400, "logit_bias"),
        ("/v1/completions", {"prompt": "a", "min_tokens": -1}, 400, "min_tokens"),
        ("/v1/completions", {"prompt": "a", "min_tokens": 9, "max_tokens": 3}, 400, "min_tokens"),
        ("/v1/completions", {"prompt": "a", "model": "gpt-4"}, 404, "model"),
        ("/v1/chat/completions", {"messages": []}, 400, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "user"}]}, 400, "messages[0].content"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, 400, "messages"),  # no template
        ("/tokenize", {"prompt": 3}, 400, "prompt"),
        ("/detokenize", {"tokens": [-1]}, 400, "tokens"),
        ("/v1/nothing", {}, 404, None),
    ]
    for path, body, status, param in cases:
        data = body if isinstance(body, str) else json.dumps(body)
        response = requests.post(url + path, data=data, headers={"content-type": "application/json"}, timeout=30)
        assert response.status_code == status, (path, body, response.text)
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
        assert error["param"] == param, (body, error)
    assert requests.get(url + "/v1/completions", timeout=10).status_code == 405


def test_an_oversized_body_is_refused_with_413(served, monkeypatch):
    from tongues.serving import api_server

    monkeypatch.setattr(api_server, "MAX_BODY_BYTES", 100)
    response = requests.post(served.url + "/v1/completions", json={"prompt": "a" * 200}, timeout=10)
    assert response.status_code == 413 and "larger than 100 bytes" in response.json()["error"]["message"]


def test_tokenizer_endpoints_have_vllms_shapes(served):
    tokens = requests.post(served.url + "/tokenize", json={"prompt": "Toute personne", "add_special_tokens": False},
                           timeout=10).json()
    assert tokens["tokens"] == served.tokenizer.encode("Toute personne", add_special_tokens=False)
    assert tokens["count"] == len(tokens["tokens"]) and tokens["max_model_len"] == 2048
    text = requests.post(served.url + "/detokenize", json={"tokens": tokens["tokens"]}, timeout=10).json()
    assert text == {"prompt": "Toute personne"}
    info = requests.get(served.url + "/tokenizer_info", timeout=10).json()
    assert info["eos_token"] == "</s>" and info["eos_token_ids"] == [2] and "chat_template" in info


def test_disconnect_mid_stream_frees_the_slot(served):
    before = generated_tokens(served)
    body = {"model": "demo", "prompt": PROMPTS[0], "max_tokens": 1500, "temperature": 0, "ignore_eos": True,
            "stream": True}
    with requests.post(served.url + "/v1/completions", json=body, stream=True, timeout=60) as response:
        lines = response.iter_lines()
        assert next(line for line in lines if line).startswith(b"data: {")
    deadline = time.monotonic() + 30
    while served.engine.num_running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert served.engine.num_running == 0
    assert generated_tokens(served) - before < 1500  # it stopped, not finished


def test_a_client_that_stops_waiting_for_a_whole_answer_aborts_it(served):
    before = generated_tokens(served)
    body = {"model": "demo", "prompt": PROMPTS[1], "max_tokens": 1500, "temperature": 0, "ignore_eos": True}
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(served.url + "/v1/completions", json=body, timeout=(10, 0.5))
    deadline = time.monotonic() + 30
    while served.engine.num_running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert served.engine.num_running == 0
    assert generated_tokens(served) - before < 1500


def generated_tokens(served) -> float:
    text = requests.get(served.url + "/metrics", timeout=10).text
    return float(next(line.split()[1] for line in text.splitlines()
                      if line.startswith("tongues_generation_tokens_total")))


def test_metrics_report_the_traffic(served, client):
    client.completions.create(model="demo", prompt="abc", max_tokens=3, temperature=0)
    text = requests.get(served.url + "/metrics", timeout=10).text
    for name in ("tongues_requests_total{endpoint=\"/v1/completions\",status=\"200\"}", "tongues_prompt_tokens_total",
                 "tongues_generation_tokens_total", "tongues_requests_running", "tongues_requests_waiting",
                 "tongues_time_to_first_token_seconds_bucket", "tongues_inter_token_latency_seconds_bucket"):
        assert name in text, name


def test_a_full_queue_answers_503_with_retry_after():
    model, tokenizer = demo_model_and_tokenizer()
    engine = Engine(model, tokenizer, max_running=1, max_queue=2)  # not started: the queue never drains
    engine.submit([5, 6], SamplingParams(n=2), lambda out: None)
    with LiveServer(engine) as server:
        response = requests.post(server.url + "/v1/completions", json={"prompt": "a", "max_tokens": 2}, timeout=10)
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert response.json()["error"]["code"] == "server_busy"
        with pytest.raises(openai.APIStatusError) as info:
            openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0).completions.create(
                model="tiny", prompt="a", max_tokens=2)
        assert info.value.status_code == 503


def test_health_is_503_while_loading_and_the_api_key_is_checked():
    with LiveServer(None, model_name="tiny", api_key="sesame") as server:
        assert requests.get(server.url + "/health", timeout=10).status_code == 503
        response = requests.post(server.url + "/v1/completions", json={"prompt": "a"}, timeout=10)
        assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"
        response = requests.post(server.url + "/v1/completions", json={"prompt": "a"},
                                 headers={"Authorization": "Bearer sesame"}, timeout=10)
        assert response.status_code == 503 and response.json()["error"]["code"] == "loading"
        from tongues.serving.api_server import attach

        model, tokenizer = demo_model_and_tokenizer()
        server.engine = Engine(model, tokenizer).start()
        attach(server.app, server.engine)
        assert requests.get(server.url + "/health", timeout=10).status_code == 200
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="sesame", max_retries=0)
        assert client.completions.create(model="tiny", prompt="a", max_tokens=2).choices[0].finish_reason
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0).models.list()


def test_soak_mixed_traffic_has_no_5xx_and_loses_no_request(served):
    """Bounded (about 5 s, loopback): streams, plain requests, n > 1 and early disconnects together."""
    statuses, finished, failures = [], [], []
    stop_at = time.monotonic() + 5

    def worker(seed):
        generator = torch.Generator().manual_seed(seed)
        k = 0
        while time.monotonic() < stop_at:
            k += 1
            pick = int(torch.randint(0, 4, (1,), generator=generator))
            body = {"model": "demo", "prompt": PROMPTS[(seed + k) % len(PROMPTS)],
                    "max_tokens": int(torch.randint(1, 40, (1,), generator=generator)), "temperature": 0.8,
                    "seed": seed * 1000 + k}
            try:
                if pick == 0:  # a stream read to the end
                    with requests.post(served.url + "/v1/completions", json={**body, "stream": True}, stream=True,
                                       timeout=60) as r:
                        statuses.append(r.status_code)
                        lines = [line for line in r.iter_lines() if line]
                        finished.append(lines[-1] == b"data: [DONE]")
                elif pick == 1:  # a stream dropped after its first event
                    with requests.post(served.url + "/v1/completions", json={**body, "stream": True}, stream=True,
                                       timeout=60) as r:
                        statuses.append(r.status_code)
                        next(r.iter_lines())
                else:
                    r = requests.post(served.url + "/v1/completions", json={**body, "n": pick}, timeout=60)
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        choices = r.json()["choices"]
                        finished.append(len(choices) == pick and all(c["finish_reason"] for c in choices))
            except Exception as err:  # noqa: BLE001 - any client failure is a lost request
                failures.append(repr(err))

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures
    assert statuses and all(s == 200 or s == 503 for s in statuses), sorted(set(statuses))
    assert finished and all(finished)
    deadline = time.monotonic() + 30
    while (served.engine.num_running or served.engine.num_waiting) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert served.engine.num_running == 0 and served.engine.num_waiting == 0
