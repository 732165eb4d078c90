"""Chat templates: rendering equals plain Jinja (and the oracle), the sandbox holds, tokenizing adds nothing twice."""

from __future__ import annotations

import json

import jinja2
import jinja2.sandbox
import numpy as np
import pytest
import transformers
from tokenizer_fixtures import bloom_tokenizer_dir, copy_tokenizer_dir

from tongues.tokenization import AutoTokenizer, ChatTemplateError, PreTrainedTokenizerFast

CHATML = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Blocks, whitespace control, raise_exception, loop controls, namespace, tojson with options and a tool list.
RICH = """{%- set ns = namespace(system='') -%}
{%- for message in messages -%}
    {%- if message.role == 'system' -%}
        {%- set ns.system = message.content -%}
        {%- continue -%}
    {%- endif -%}
    {%- if message.role not in ['user', 'assistant'] -%}
        {{ raise_exception('Unknown role: ' + message.role) }}
    {%- endif %}
[{{ loop.index0 }}] {{ message.role | upper }}: {{ message.content | trim }}
    {% if message.role == 'assistant' %}{{ eos_token }}{% endif %}
{%- endfor %}
{% if tools %}TOOLS {{ tools | tojson(indent=2, sort_keys=True) }}{% endif %}
{% if documents %}{% for doc in documents %}DOC {{ doc.title }}: {{ doc.text }}
{% endfor %}{% endif %}
{%- if ns.system %}SYSTEM {{ ns.system }}{% endif %}
{%- if add_generation_prompt %}
ASSISTANT:{% endif %}"""

CONVERSATION = [
    {"role": "system", "content": "Réponds en français."},
    {"role": "user", "content": "  Quels sont les droits de l’homme ?  "},
    {"role": "assistant", "content": "Tous les êtres humains naissent libres — 人人生而自由。"},
    {"role": "user", "content": "Et ensuite ?"},
]
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
DOCUMENTS = [{"title": "UDHR", "text": "Article premier"}]


def plain_jinja(template: str, **variables) -> str:
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(**variables)


@pytest.fixture(scope="module")
def ours():
    return PreTrainedTokenizerFast.from_pretrained(bloom_tokenizer_dir(), chat_template=CHATML)


@pytest.fixture(scope="module")
def theirs():
    return transformers.PreTrainedTokenizerFast.from_pretrained(bloom_tokenizer_dir(), chat_template=CHATML)


@pytest.mark.parametrize("add_generation_prompt", [False, True])
def test_rendering_equals_plain_jinja(ours, add_generation_prompt):
    text = ours.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=add_generation_prompt)
    expected = plain_jinja(
        CHATML, messages=CONVERSATION, add_generation_prompt=add_generation_prompt, **ours.special_tokens_map
    )
    assert text == expected
    assert text.startswith("<s><|im_start|>system\nRéponds")


@pytest.mark.parametrize("add_generation_prompt", [False, True])
def test_rich_template_equals_plain_jinja_and_oracle(ours, theirs, add_generation_prompt):
    kwargs = dict(
        chat_template=RICH, tools=TOOLS, documents=DOCUMENTS, add_generation_prompt=add_generation_prompt, tokenize=False
    )
    text = ours.apply_chat_template(CONVERSATION, **kwargs)
    assert text == theirs.apply_chat_template(CONVERSATION, **kwargs)
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.filters["tojson"] = lambda value, indent=None, sort_keys=False: json.dumps(
        value, ensure_ascii=False, indent=indent, sort_keys=sort_keys
    )
    expected = env.from_string(RICH).render(
        messages=CONVERSATION,
        tools=TOOLS,
        documents=DOCUMENTS,
        add_generation_prompt=add_generation_prompt,
        **ours.special_tokens_map,
    )
    assert text == expected
    assert "人人生而自由" in text and '"name": "lookup"' in text


def test_tokenize_path_does_not_double_special_tokens(ours, theirs):
    text = ours.apply_chat_template(CONVERSATION, tokenize=False)
    ids = ours.apply_chat_template(CONVERSATION)
    assert ids == ours(text, add_special_tokens=False)["input_ids"]
    assert ids == theirs.apply_chat_template(CONVERSATION, return_dict=False)
    # a tokenizer that adds <s> itself must not add it again to a template that writes it
    adds_bos = PreTrainedTokenizerFast.from_pretrained(bloom_tokenizer_dir(), chat_template=CHATML, add_bos_token=True)
    assert adds_bos("x")["input_ids"][0] == adds_bos.bos_token_id
    ids = adds_bos.apply_chat_template(CONVERSATION)
    assert ids[0] == adds_bos.bos_token_id and ids[1] != adds_bos.bos_token_id
    assert ids.count(adds_bos.bos_token_id) == 1


def test_batches_dicts_and_tensors(ours, theirs):
    batch = [CONVERSATION[:2], CONVERSATION]
    texts = ours.apply_chat_template(batch, tokenize=False)
    assert texts == theirs.apply_chat_template(batch, tokenize=False) and len(texts) == 2
    encoded = ours.apply_chat_template(batch, padding=True, return_tensors="pt", return_dict=True)
    expected = theirs.apply_chat_template(batch, padding=True, return_tensors="pt", return_dict=True)
    assert encoded["input_ids"].tolist() == expected["input_ids"].tolist()
    assert encoded["attention_mask"].tolist() == expected["attention_mask"].tolist()
    truncated = ours.apply_chat_template(CONVERSATION, truncation=True, max_length=5)
    assert len(truncated) == 5


def test_continue_final_message_matches_oracle(ours, theirs):
    conversation = CONVERSATION + [{"role": "assistant", "content": "Ensuite, chacun a droit  "}]
    text = ours.apply_chat_template(conversation, tokenize=False, continue_final_message=True)
    assert text == theirs.apply_chat_template(conversation, tokenize=False, continue_final_message=True)
    assert text.endswith("Ensuite, chacun a droit  ")
    with pytest.raises(ChatTemplateError, match="cannot both be set"):
        ours.apply_chat_template(conversation, continue_final_message=True, add_generation_prompt=True)


def test_named_templates_and_selection():
    templates = {"default": "D{{ messages|length }}", "tool_use": "T{{ tools|length }}", "short": "S"}
    tokenizer = PreTrainedTokenizerFast.from_pretrained(bloom_tokenizer_dir(), chat_template=templates)
    assert tokenizer.apply_chat_template(CONVERSATION, tokenize=False) == "D4"
    assert tokenizer.apply_chat_template(CONVERSATION, tools=TOOLS, tokenize=False) == "T1"
    assert tokenizer.apply_chat_template(CONVERSATION, chat_template="short", tokenize=False) == "S"
    assert tokenizer.apply_chat_template(CONVERSATION, chat_template="{{ 'inline' }}", tokenize=False) == "inline"
    tokenizer.chat_template = {"a": "A", "b": "B"}
    with pytest.raises(ChatTemplateError, match=r"\['a', 'b'\]"):
        tokenizer.apply_chat_template(CONVERSATION, tokenize=False)


def test_missing_template_is_explained():
    tokenizer = PreTrainedTokenizerFast.from_pretrained(bloom_tokenizer_dir())
    with pytest.raises(ChatTemplateError, match=r"no chat template.*chat_template\.jinja"):
        tokenizer.apply_chat_template(CONVERSATION)


def test_template_files_load_and_save(tmp_path, theirs):
    # tokenizer_config.json: a string, or a list of named templates
    folder = copy_tokenizer_dir(bloom_tokenizer_dir(), tmp_path / "config")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = [{"name": "default", "template": CHATML}, {"name": "other", "template": "O"}]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.chat_template == {"default": CHATML, "other": "O"}

    # chat_template.jinja wins over the config
    (folder / "chat_template.jinja").write_text("J{{ messages[0].content }}")
    assert AutoTokenizer.from_pretrained(folder).chat_template == "J{{ messages[0].content }}"

    # saving writes chat_template.jinja (+ additional_chat_templates/<name>.jinja), which the oracle reads back
    tokenizer.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "chat_template.jinja").read_text() == CHATML
    assert (tmp_path / "saved" / "additional_chat_templates" / "other.jinja").read_text() == "O"
    reloaded = transformers.AutoTokenizer.from_pretrained(tmp_path / "saved")
    assert reloaded.chat_template == {"default": CHATML, "other": "O"}
    assert AutoTokenizer.from_pretrained(tmp_path / "saved").chat_template == {"default": CHATML, "other": "O"}

    # or keeps it inside tokenizer_config.json
    single = PreTrainedTokenizerFast.from_pretrained(bloom_tokenizer_dir(), chat_template=CHATML)
    single.save_pretrained(tmp_path / "inline", save_jinja_files=False)
    assert json.loads((tmp_path / "inline" / "tokenizer_config.json").read_text())["chat_template"] == CHATML
    assert not (tmp_path / "inline" / "chat_template.jinja").exists()
    theirs.save_pretrained(tmp_path / "theirs")
    assert AutoTokenizer.from_pretrained(tmp_path / "theirs").chat_template == CHATML


# -- the sandbox --------------------------------------------------------------------------------

ESCAPES = {
    "dunder attribute": "{{ messages.__class__ }}",
    "dunder in a test": "{% if messages.__class__ %}leak{% endif %}",
    "globals of a function": "{{ raise_exception.__globals__ }}",
    "subclass walk": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "item lookup of a dunder": "{{ messages[0]['__class__'] }}",
    "cycler globals": "{{ cycler.__init__.__globals__.os }}",
    "mutating a list": "{{ messages.append({'role': 'x'}) }}",
    "private namespace attribute": "{% set ns = namespace(_secret=1) %}{{ ns }}",
}


@pytest.mark.parametrize("template", ESCAPES.values(), ids=ESCAPES.keys())
def test_sandbox_refuses_internals(ours, template):
    with pytest.raises(ChatTemplateError, match="sandbox") as error:
        ours.apply_chat_template(CONVERSATION, chat_template=template, tokenize=False)
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize(
    "template, word",
    [
        ("{% import 'os' as os %}{{ os }}", "import"),
        ("{% from 'subprocess' import run %}", "import"),
        ("{% include 'secrets.txt' %}", "include"),
        ("{% extends 'base.html' %}", "extends"),
    ],
)
def test_sandbox_refuses_imports(ours, template, word):
    with pytest.raises(ChatTemplateError, match=rf"{{% {word} %}} on line 1.*self-contained"):
        ours.apply_chat_template(CONVERSATION, chat_template=template, tokenize=False)


def test_caller_objects_are_not_reachable(ours):
    class Dangerous:
        def delete_everything(self):
            raise AssertionError("the template reached a caller's method")

    conversation = [{"role": "user", "content": Dangerous(), "array": np.arange(3), "flag": np.bool_(False)}]
    template = "{{ messages[0].content }} {{ messages[0].array }} {{ messages[0].flag }}"
    assert ours.apply_chat_template(conversation, chat_template=template, tokenize=False) == "<Dangerous> <ndarray> False"
    with pytest.raises(ChatTemplateError, match="undefined"):
        ours.apply_chat_template(
            conversation, chat_template="{{ messages[0].content.delete_everything() }}", tokenize=False
        )


def test_template_errors_are_explained(ours):
    with pytest.raises(ChatTemplateError, match="raised an error: Unknown role: robot"):
        ours.apply_chat_template([{"role": "robot", "content": "hi"}], chat_template=RICH, tokenize=False)
    with pytest.raises(ChatTemplateError, match="syntax error on line 2"):
        ours.apply_chat_template(CONVERSATION, chat_template="ok\n{% for %}", tokenize=False)
    with pytest.raises(ChatTemplateError, match="empty conversation"):
        ours.apply_chat_template([])
    with pytest.raises(TypeError, match="Chat message 0 must be a dict"):
        ours.apply_chat_template(["just text"], tokenize=False)
    with pytest.raises(TypeError, match=r"tools\[0\]"):
        ours.apply_chat_template(CONVERSATION, tools=[print], tokenize=False)
    with pytest.raises(ChatTemplateError, match="must be a str"):
        ours.apply_chat_template(CONVERSATION, chat_template=["not", "a", "template"], tokenize=False)


def test_strftime_now_and_template_kwargs(ours):
    template = "{{ strftime_now('%Y') | length }} {{ custom }} {{ bos_token }}"
    assert ours.apply_chat_template(CONVERSATION, chat_template=template, tokenize=False, custom="x") == "4 x <s>"
    # user variables override the special tokens
    assert ours.apply_chat_template(CONVERSATION, chat_template="{{ bos_token }}", tokenize=False, bos_token="B") == "B"
