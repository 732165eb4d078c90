"""XLM through the server: the cache-free path (the whole text rerun each step), equal to generate."""

import os

import openai
import pytest
import requests
import torch

from tests.serving.helpers import LiveServer, lively
from tongues import XLMConfig, XLMTokenizer, XLMWithLMHeadModel
from tongues.serving import Engine

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "xlm")


def test_xlm_serves_greedy_text_equal_to_generate_and_refuses_prompt_logprobs():
    tokenizer = XLMTokenizer(os.path.join(DATA, "vocab.json"), os.path.join(DATA, "merges.txt"))
    torch.manual_seed(0)
    model = lively(XLMWithLMHeadModel(XLMConfig(vocab_size=len(tokenizer), emb_dim=32, n_layers=2, n_heads=4)))
    engine = Engine(model, tokenizer, max_running=4)
    assert type(engine.runner).__name__ == "RecomputeRunner"
    with LiveServer(engine.start(), model_name="xlm-tiny") as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=60)
        prompt = "tous les etres humains naissent"
        whole = client.completions.create(model="xlm-tiny", prompt=prompt, max_tokens=8, temperature=0,
                                          extra_body={"ignore_eos": True})
        ids = tokenizer.encode(prompt)
        expected = model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False, eos_token_id=None,
                                  pad_token_id=model.config.pad_token_id)[0, len(ids):].tolist()
        # The server decodes new tokens after the prompt's tail, so the first word keeps its leading space.
        assert whole.choices[0].text.lstrip() == tokenizer.decode(expected, skip_special_tokens=True)
        assert whole.usage.completion_tokens == 8
        streamed = client.completions.create(model="xlm-tiny", prompt=prompt, max_tokens=8, temperature=0,
                                             stream=True, extra_body={"ignore_eos": True})
        assert "".join(c.choices[0].text for c in streamed) == whole.choices[0].text
        response = requests.post(server.url + "/v1/completions", timeout=30, json={
            "prompt": prompt, "max_tokens": 1, "echo": True, "logprobs": 1})
        assert response.status_code == 400 and response.json()["error"]["param"] == "echo"
