"""GLM-4 chat: the checkpoint's own template, the [gMASK]<sop> prefix, and the spec's usage example end to end."""

import json
import os

import jinja2
import pytest
import torch

from glm_helpers import glm4_fast, glm4_slow, tiny_chat_checkpoint

from tongues import AutoModelForCausalLM, AutoTokenizer, ChatGLM4Tokenizer

GMASK, SOP = 151331, 151333

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "天气 <today> & \"now\"",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}},
         {"type": "python"}, {"type": "simple_browser"}, {"type": "cogview"}]

CONVERSATIONS = {
    "user": [{"role": "user", "content": "你好"}],
    "system-user-assistant": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another?"},
    ],
    "tools-observation": [
        {"role": "system", "content": "", "tools": TOOLS},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "metadata": "get_weather", "content": json.dumps({"city": "Paris"})},
        {"role": "observation", "content": "{\"temperature\": 21}"},
    ],
    "empty-content-skipped": [{"role": "user", "content": "x"}, {"role": "assistant", "content": ""}],
}


@pytest.fixture(scope="module")
def tokenizer():
    return glm4_slow()


def plain_jinja2(template: str, messages, add_generation_prompt: bool) -> str:
    # The environment chat templates are written for: trim/lstrip blocks, and a tojson keeping non-ASCII text.
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent)
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt)


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_rendered_prompt_equals_plain_jinja2(tokenizer, name, add_generation_prompt):
    messages = CONVERSATIONS[name]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    assert text == plain_jinja2(tokenizer.chat_template, messages, add_generation_prompt)
    assert text.startswith("[gMASK]<sop>")


def test_known_rendering(tokenizer):
    text = tokenizer.apply_chat_template(CONVERSATIONS["user"], tokenize=False, add_generation_prompt=True)
    assert text == "[gMASK]<sop><|user|>\n你好<|assistant|>"
    tools = tokenizer.apply_chat_template(CONVERSATIONS["tools-observation"], tokenize=False)
    assert "## get_weather" in tools and '"description": "天气 <today> & \\"now\\""' in tools
    assert "<|assistant|>get_weather\n{\"city\": \"Paris\"}<|observation|>\n" in tools


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_prefix_appears_exactly_once(tokenizer, name):
    messages = CONVERSATIONS[name]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    assert ids[:2] == [GMASK, SOP] and ids.count(GMASK) == 1
    # The spec's flow: render, then tokenize the text with special tokens on -- still one prefix.
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    again = tokenizer([text]).input_ids[0]
    assert again == ids
    batch = tokenizer.apply_chat_template([messages, CONVERSATIONS["user"]], add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True, padding=True)
    for row, mask in zip(batch["input_ids"], batch["attention_mask"]):
        real = row[mask.bool()].tolist()
        assert real[:2] == [GMASK, SOP] and real.count(GMASK) == 1


def test_hf_layout_chat_matches(tokenizer, tmp_path):
    fast = glm4_fast()
    for messages in CONVERSATIONS.values():
        assert fast.apply_chat_template(messages, add_generation_prompt=True) == \
            tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    # The oracle renders the same template from our saved -hf files to the same ids.
    import transformers

    fast.save_pretrained(tmp_path)
    oracle = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    messages = CONVERSATIONS["system-user-assistant"]
    assert oracle.apply_chat_template(messages, add_generation_prompt=True, return_dict=False) == \
        fast.apply_chat_template(messages, add_generation_prompt=True)


@pytest.mark.parametrize("layout", ["original", "hf"])
def test_spec_usage_example_end_to_end(tmp_path, layout):
    # The spec's example, verbatim except for the checkpoint (a tiny local one) and max_new_tokens.
    path = tiny_chat_checkpoint(tmp_path, layout)
    device = "cpu"
    model = AutoModelForCausalLM.from_pretrained(path, device_map="auto")
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompt = "Give me a short introduction to large language model."
    messages = [{"role": "user", "content": prompt}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    model_inputs = tokenizer([text], return_tensors="pt").to(device)
    torch.manual_seed(0)
    generated_ids = model.generate(model_inputs.input_ids, max_new_tokens=8, do_sample=True)
    generated_ids = [
        output_ids[len(input_ids):] for input_ids, output_ids in zip(model_inputs.input_ids, generated_ids)
    ]
    response = tokenizer.batch_decode(generated_ids, skip_special_tokens=True)[0]

    assert isinstance(response, str)
    assert 1 <= len(generated_ids[0]) <= 8
    if layout == "original":
        assert model_inputs.input_ids[0].tolist().count(GMASK) == 1
    assert model.generation_config.eos_token_id == [151329, 151336, 151338]
    assert model.generation_config.do_sample and model.generation_config.top_p == 0.8
    # Generation ends at any of the three end ids, each row on its own.
    new = generated_ids[0].tolist()
    ends = [i for i, t in enumerate(new) if t in (151329, 151336, 151338)]
    assert not ends or ends[0] == len(new) - 1


def test_chat_template_file_round_trip(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    assert os.path.exists(tmp_path / "chat_template.jinja")
    again = ChatGLM4Tokenizer.from_pretrained(tmp_path)
    messages = CONVERSATIONS["tools-observation"]
    assert again.apply_chat_template(messages) == tokenizer.apply_chat_template(messages)


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_hf_layout_tokenizing_rendered_text_adds_no_second_prefix(name):
    fast = glm4_fast()
    messages = CONVERSATIONS[name]
    ids = fast.apply_chat_template(messages, add_generation_prompt=True)
    text = fast.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    encoded = fast([text, "你好"], return_offsets_mapping=True)
    assert encoded.input_ids[0] == ids and encoded.input_ids[0].count(GMASK) == 1
    # A text without the prefix still gets it from the post-processor.
    assert encoded.input_ids[1][:2] == [GMASK, SOP] and encoded.input_ids[1].count(GMASK) == 1
    # Offsets still point into the text as given (prefix included): as when encoding without specials.
    plain = fast(text, add_special_tokens=False, return_offsets_mapping=True)
    assert plain.input_ids == encoded.input_ids[0]
    assert plain.offset_mapping[2:] == encoded.offset_mapping[0][2:]
