"""``tongues chat`` and ``tongues convert`` (tongues/cli/chat.py, tongues/cli/convert.py)."""

import argparse
import json
import os
import shutil

import pytest
import torch

from glm_helpers import GLM4_CHAT, oracle_model, random_ids, tiny_chat_checkpoint, write_chatglm_checkpoint

from tongues.cli import chat, convert, main


def _parser():
    parser = argparse.ArgumentParser(prog="tongues")
    subparsers = parser.add_subparsers(dest="command", required=True)
    chat.register(subparsers)
    convert.register(subparsers)
    return parser


@pytest.fixture(scope="module")
def chat_dir(tmp_path_factory):
    return tiny_chat_checkpoint(tmp_path_factory.mktemp("glm-chat"), "original")


def test_chat_session_keeps_history_and_resets(chat_dir):
    from tongues import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(chat_dir)
    tokenizer = AutoTokenizer.from_pretrained(chat_dir)
    session = chat.ChatSession(model, tokenizer, system="Be brief.", max_new_tokens=4, do_sample=False)
    first = session.reply("Hello")
    assert [m["role"] for m in session.messages] == ["system", "user", "assistant"]
    assert session.messages[-1]["content"] == first
    session.reply("And?")
    assert len(session.messages) == 5
    # The second prompt holds the whole history, once prefixed.
    ids = tokenizer.apply_chat_template(session.messages[:-1], add_generation_prompt=True)
    assert ids.count(151331) == 1 and ids.count(151336) == 2
    session.reset()
    assert session.messages == [{"role": "system", "content": "Be brief."}]


def test_chat_command_streams_and_obeys_commands(chat_dir, monkeypatch, capsys):
    args = _parser().parse_args(["chat", "--model", chat_dir, "--max-new-tokens", "3", "--greedy", "--seed", "0"])
    assert args.func is chat.run
    lines = iter(["Hello", "/reset", "/nope", "", "again", "/exit", "never read"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "(conversation forgotten)" in out and "Unknown command /nope" in out
    assert next(lines) == "never read"


def test_chat_command_ends_on_end_of_input(chat_dir, monkeypatch):
    args = _parser().parse_args(["chat", "--model", chat_dir, "--max-new-tokens", "2"])

    def no_more(prompt=""):
        raise EOFError

    monkeypatch.setattr("builtins.input", no_more)
    assert chat.run(args) == 0


def test_chat_command_reports_a_bad_model(tmp_path, capsys):
    assert main(["chat", "--model", str(tmp_path / "missing")]) == 1
    assert "tongues chat: --model" in capsys.readouterr().err
    assert main(["chat", "--model", str(tmp_path), "--max-new-tokens", "0"]) == 2  # a usage error, as in generate
    assert "--max-new-tokens: must be a positive integer" in capsys.readouterr().err


@torch.no_grad()
def test_convert_original_checkpoint_to_hf_layout(tmp_path):
    import transformers

    ref = oracle_model("GlmForCausalLM", num_key_value_heads=2)
    source = write_chatglm_checkpoint(ref, tmp_path / "chatglm")
    for name in ("tokenizer.model", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(os.path.join(GLM4_CHAT, name), os.path.join(source, name))
    args = _parser().parse_args(["convert", "--model", source, "--output", str(tmp_path / "hf")])
    assert args.func(args) == 0
    files = set(os.listdir(tmp_path / "hf"))
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json"} <= files and "tokenizer.model" not in files
    with open(tmp_path / "hf" / "config.json", encoding="utf-8") as f:
        assert json.load(f)["model_type"] == "glm"
    back = transformers.GlmForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()
    ids = random_ids(2, 6)
    torch.testing.assert_close(back(ids).logits, ref(ids).logits, atol=0, rtol=0)
    assert back.generation_config.eos_token_id == [151329, 151336, 151338]
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    assert tokenizer("你好").input_ids == [151331, 151333, 109377]


def test_convert_refuses_its_own_source(tmp_path, capsys):
    ref = oracle_model("GlmForCausalLM")
    source = write_chatglm_checkpoint(ref, tmp_path / "chatglm")
    assert main(["convert", "--model", source, "--output", source, "--no-tokenizer"]) == 1
    assert "is the source folder" in capsys.readouterr().err
    assert main(["convert", "--model", str(tmp_path / "nothing"), "--output", str(tmp_path / "o")]) == 1
    assert "no such directory" in capsys.readouterr().err
    # A chatglm checkpoint without tokenizer files: the error names the missing tokenizer.
    assert main(["convert", "--model", source, "--output", str(tmp_path / "o")]) == 1
    assert "tongues convert: --model" in capsys.readouterr().err
