"""GLM-4 chat through the server: the real glm-4-9b-chat tokenizer and template, stopping at ``<|user|>``."""

import openai
import pytest
import torch

from tests.glm_helpers import tiny_chat_checkpoint
from tests.serving.helpers import LiveServer
from tongues import AutoModelForCausalLM
from tongues.serving import Engine
from tongues.tokenization import AutoTokenizer

USER = 151336  # <|user|>, one of GLM-4's three end ids (151329, 151336, 151338)
CONVERSATION = [{"role": "system", "content": "Réponds en français."}, {"role": "user", "content": "Bonjour !"}]


def glm_chat_engine(path):
    """A tiny random GLM-4 (real tokenizer, template, generation config) that answers one token, then <|user|>.

    Returns (engine, tokenizer, that first token).
    """
    tiny_chat_checkpoint(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32").eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompt = tokenizer.apply_chat_template(CONVERSATION, add_generation_prompt=True, tokenize=True)
    # <|user|>'s output row points along the part of the second position's hidden state that is
    # orthogonal to the first's, so it wins at the second position only.
    with torch.no_grad():
        first = int(model(torch.tensor([prompt])).logits[0, -1].argmax())
        hidden = model.model(torch.tensor([prompt + [first]])).last_hidden_state[0, -2:]  # (2, hidden)
        h1, h2 = hidden[0], hidden[1]
        orthogonal = h2 - (h2 @ h1) / (h1 @ h1) * h1
        model.lm_head.weight[USER] = orthogonal / orthogonal.norm() * 1000
    return Engine(model, tokenizer, max_running=4).start(), tokenizer, first


@pytest.fixture(scope="module")
def glm_server(tmp_path_factory):
    engine, tokenizer, first = glm_chat_engine(tmp_path_factory.mktemp("glm4-chat"))
    with LiveServer(engine, model_name="glm-4-tiny") as server:
        server.first, server.tokenizer = first, tokenizer
        yield server


def test_the_engine_reads_all_three_end_ids(glm_server):
    assert glm_server.engine.end_ids == {151329, 151336, 151338}


def test_chat_stops_at_user_with_finish_reason_stop(glm_server):
    client = openai.OpenAI(base_url=glm_server.url + "/v1", api_key="x", max_retries=0, timeout=60)
    expected = glm_server.tokenizer.decode([glm_server.first])
    out = client.chat.completions.create(model="glm-4-tiny", messages=CONVERSATION, temperature=0, max_tokens=50)
    assert out.choices[0].finish_reason == "stop"
    assert out.choices[0].message.content == expected and "<|user|>" not in out.choices[0].message.content
    assert out.choices[0].message.role == "assistant" and out.usage.completion_tokens == 2
    chunks = list(client.chat.completions.create(model="glm-4-tiny", messages=CONVERSATION, temperature=0,
                                                 max_tokens=50, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == "stop"
    # Past the end ids (vLLM's ignore_eos), generation runs to max_tokens.
    long = client.chat.completions.create(model="glm-4-tiny", messages=CONVERSATION, temperature=0, max_tokens=5,
                                          extra_body={"ignore_eos": True})
    assert long.choices[0].finish_reason == "length" and long.usage.completion_tokens == 5


def test_chat_logprobs_and_a_conversation_the_template_refuses(glm_server):
    client = openai.OpenAI(base_url=glm_server.url + "/v1", api_key="x", max_retries=0, timeout=60)
    out = client.chat.completions.create(model="glm-4-tiny", messages=CONVERSATION, temperature=0, max_tokens=5,
                                         logprobs=True, top_logprobs=2)
    content = out.choices[0].logprobs.content
    assert len(content) == 2 and all(len(item.top_logprobs) == 2 for item in content)
    assert content[0].token == glm_server.tokenizer.decode([glm_server.first])
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="glm-4-tiny", messages=[{"role": "user", "content": 3}])
    assert "messages[0].content" in str(info.value)
