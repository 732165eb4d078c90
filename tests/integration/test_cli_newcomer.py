"""Issue 18, command line: every path a newcomer takes ends in the expected behaviour or one actionable line.

Headline cases drive the real entry point in a subprocess (``python -m tongues``); the many flag
checks call ``tongues.cli.main`` in-process, which is the same code without the start-up cost.
"""

import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tongues.cli import build_parser, main
from tongues.cli.docs import generated_blocks, render
from tongues.models.bloom import BloomConfig
from tongues.models.bloom.modeling_bloom import BloomForCausalLM
from tongues.training import save_tokenizer, train_bpe_tokenizer

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["Tous les êtres humains naissent libres et égaux en dignité et en droits.\n" * 4,
         "All human beings are born free and equal in dignity and rights.\n" * 4]
TEMPLATE = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}>{% endif %}"


@pytest.fixture(scope="module")
def bloom(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-bloom")
    save_tokenizer(train_bpe_tokenizer(texts=TEXTS, vocab_size=300), path)
    torch.manual_seed(0)
    config = BloomConfig(vocab_size=300, hidden_size=32, n_layer=2, n_head=4, bos_token_id=1, eos_token_id=2,
                         pad_token_id=3)
    BloomForCausalLM(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def xlm(tmp_path_factory):
    from tongues.models.xlm import XLMConfig, XLMTokenizer, XLMWithLMHeadModel

    path = tmp_path_factory.mktemp("tiny-xlm")
    torch.manual_seed(0)
    XLMWithLMHeadModel(XLMConfig(vocab_size=2236, emb_dim=32, n_layers=1, n_heads=4, max_position_embeddings=64,
                                 causal=True, n_langs=1)).save_pretrained(path)
    data = ROOT / "tests" / "data" / "xlm"
    XLMTokenizer(vocab_file=str(data / "vocab.json"), merges_file=str(data / "merges.txt")).save_pretrained(path)
    return path


def tongues(*argv, stdin=None, env=None, umask=None):
    full = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    full.pop("TONGUES_TRACEBACK", None)
    done = subprocess.run([sys.executable, "-m", "tongues", *map(str, argv)], capture_output=True, text=True,
                          env=full, input=stdin, timeout=120,
                          preexec_fn=None if umask is None else (lambda: os.umask(umask)))
    assert "Traceback" not in done.stderr, done.stderr
    return done


def one_line_error(done, *needles):
    """The command failed with exit 1 and one stderr line (after the default-model notice) holding ``needles``."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.strip().splitlines() if "embedded demonstration model" not in line]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def run_main(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- the cases of the issue ------------------------------------------------------------------------
def test_version_and_every_help(capsys):
    done = tongues("--version")
    assert done.returncode == 0 and done.stdout.strip() == "tongues 0.1.0"
    for command in ("generate", "score", "info", "chat", "convert", "train"):
        code, out, _ = run_main(capsys, command, "--help")
        assert code == 0 and out.startswith(f"usage: tongues {command}")


def test_device_without_cuda_is_one_line(bloom):
    device = "cuda" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"
    done = tongues("generate", "Tous", "--model", bloom, "--device", device)
    one_line_error(done, f"--device {device}", "--device cpu")
    done = tongues("score", "Tous les", "--model", bloom, "--device", "tpu9")
    one_line_error(done, "--device tpu9")


def test_dtype_error_blames_dtype(bloom, capsys):
    code, _, err = run_main(capsys, "generate", "x", "--model", bloom, "--dtype", "foo")
    assert code == 2 and "argument --dtype: must be one of auto, float32, bfloat16, float16; got 'foo'" in err
    assert "--model" not in err.strip().splitlines()[-1]
    code, _, err = run_main(capsys, "score", "x y", "--model", bloom, "--dtype", "bf16", "--summary")
    assert code == 0, err


def test_score_an_xlm_checkpoint(xlm):
    done = tongues("score", "all human beings are born free", "--model", xlm, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["num_scored"] == result["num_tokens"] - 1 > 3
    done = tongues("score", "all human beings", "--model", xlm, "--max-length", "100")
    one_line_error(done, "--max-length 100", "max_position_embeddings (64)")


def test_chat_without_template_says_what_to_do_before_the_banner(bloom, tmp_path):
    done = tongues("chat", "--model", bloom, stdin="hello\n")
    line = one_line_error(done, f"--model {bloom} has no chat template", "--chat-template")
    assert "Chatting" not in done.stdout and "ChatTemplateError" not in line
    done = tongues("chat", "--chat-template", "no-such-file.jinja", stdin="hello\n")
    one_line_error(done, "--chat-template no-such-file.jinja: no such file")
    broken = tmp_path / "broken.jinja"
    broken.write_text("{{ oops(", encoding="utf-8")
    one_line_error(tongues("chat", "--model", bloom, "--chat-template", broken, stdin="hi\n"),
                   f"--chat-template {broken}")


def test_chat_with_a_template_flag_and_end_of_input(bloom, tmp_path):
    template = tmp_path / "t.jinja"
    template.write_text(TEMPLATE, encoding="utf-8")
    for value in (template, TEMPLATE):
        done = tongues("chat", "--model", bloom, "--chat-template", value, "--max-new-tokens", "3",
                       "--temperature", "0", stdin="Tous les\n/reset\n")
        assert done.returncode == 0, done.stderr
        assert "Chatting with" in done.stdout and "(conversation forgotten)" in done.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_chat_edits_lines_with_readline(bloom):
    """Typed in a terminal, "/ext", left arrow, "i" is "/exit" only when the arrow keys edit the line."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: the real command on a terminal
        os.environ.update({"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "TERM": "xterm"})
        os.execv(sys.executable, [sys.executable, "-m", "tongues", "chat", "--model", str(bloom), "--chat-template",
                                  TEMPLATE])
    output = b""

    def read_until(marker: bytes, limit: float = 60.0) -> None:
        nonlocal output
        import time

        end = time.monotonic() + limit
        while marker not in output and time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    output += os.read(fd, 1024)
                except OSError:
                    return

    read_until(b">>> ")
    os.write(fd, b"/ext\x1b[Di\r")  # "/ext", left arrow, "i" -> "/exit" with line editing, "/ext^[[Di" without
    read_until(b"\x00", limit=20)  # until the child exits and the terminal closes
    import time

    for _ in range(100):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.2)
    else:  # still chatting: the line did not read as /exit
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        status = None
    os.close(fd)
    assert b"Unknown command" not in output, output
    assert status is not None and os.waitstatus_to_exitcode(status) == 0, output


def test_hub_id_offline_fails_fast_naming_the_hub(tmp_path):
    done = tongues("generate", "hi", "--model", "someone/some-model", env={"HF_HUB_CACHE": str(tmp_path)})
    one_line_error(done, "--model someone/some-model", "could not be reached", "HF_HUB_OFFLINE")
    assert "has no config.json" not in done.stderr


def test_info_takes_the_directory_as_argument(bloom, capsys, tmp_path):
    done = tongues("info", bloom)
    assert done.returncode == 0 and "bloom (BloomForCausalLM)" in done.stdout
    code, _, err = run_main(capsys, "info", tmp_path / "missing")
    assert code == 1 and f"{tmp_path / 'missing'}: no such directory" in err and "--model" not in err
    code, _, err = run_main(capsys, "info", bloom, "--model", tmp_path)
    assert code == 1 and "give the checkpoint once" in err


def test_temperature_zero_is_greedy(bloom, capsys):
    greedy = ["generate", "Tous les", "--model", bloom, "--max-new-tokens", "8", "--no-stream"]
    code, expected, err = run_main(capsys, *greedy)
    assert code == 0, err
    for seed in ("1", "2"):
        code, out, err = run_main(capsys, *greedy, "--do-sample", "--temperature", "0", "--top-k", "5", "--seed", seed)
        assert code == 0 and out == expected, err
    code, _, err = run_main(capsys, "generate", "x", "--temperature", "-1")
    assert code == 2 and "--temperature: must be a number >= 0" in err


def test_stop_strings_cut_the_text_streamed_or_not(bloom, capsys):
    base = ["generate", "Tous les", "--model", bloom, "--max-new-tokens", "12"]
    code, out, err = run_main(capsys, *base, "--json")
    completion = json.loads(out)["completions"][0]["text"]
    assert code == 0 and len(completion) > 6, (out, err)
    stop = completion[3:5]
    cut = completion[:completion.find(stop)]
    code, out, err = run_main(capsys, *base, "--json", "--stop", stop, "--stop", "never-there")
    result = json.loads(out)["completions"][0]
    assert code == 0 and result["text"] == cut and result["finish_reason"] == "stop"
    code, out, _ = run_main(capsys, *base, "--stop", stop)  # streamed: held back until the stop is known
    assert code == 0 and out == "Tous les" + cut + "\n"
    code, _, err = run_main(capsys, *base, "--stop", "")
    assert code == 1 and "--stop ''" in err


def test_num_return_sequences_and_json(bloom, capsys):
    argv = ["generate", "Tous", "--model", bloom, "--max-new-tokens", "4", "--num-return-sequences", "3"]
    code, _, err = run_main(capsys, *argv)
    assert code == 1 and "--num-return-sequences 3 needs --do-sample, or --num-beams 3" in err
    code, out, err = run_main(capsys, *argv, "--do-sample", "--seed", "0", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["prompt"] == "Tous" and len(result["completions"]) == 3
    assert all(c["finish_reason"] in ("stop", "length") and 1 <= c["num_tokens"] <= 4 for c in result["completions"])
    code, out, err = run_main(capsys, *argv, "--num-beams", "3")
    assert code == 0 and out.count("Tous") == 3, err


def test_batch_file_one_prompt_per_line_and_jsonl(bloom, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Tous les\n\nAll human\nêtres\n", encoding="utf-8")
    done = tongues("generate", "--file", prompts, "--model", bloom, "--max-new-tokens", "3", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["prompt"] for r in rows] == ["Tous les", "All human", "êtres"]
    requests = tmp_path / "requests.jsonl"
    requests.write_text('{"id": 7, "prompt": "Tous"}\n{"prompt": "All"}\n', encoding="utf-8")
    done = tongues("generate", "--file", requests, "--model", bloom, "--max-new-tokens", "3")
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0 and rows[0]["id"] == 7 and [len(r["completions"]) for r in rows] == [1, 1]


def test_batch_file_errors(bloom, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"text": "no prompt"}\n', encoding="utf-8")
    code, _, err = run_main(capsys, "generate", "--file", bad, "--model", bloom)
    assert code == 1 and f"--file {bad}, line 2" in err and '"prompt"' in err
    bad.write_text('{"prompt": \n', encoding="utf-8")
    code, _, err = run_main(capsys, "generate", "--file", bad, "--model", bloom)
    assert code == 1 and "line 1: not valid JSON" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    code, _, err = run_main(capsys, "generate", "--file", empty, "--model", bloom)
    assert code == 1 and "no prompts in it" in err
    code, _, err = run_main(capsys, "generate", "--file", tmp_path, "--model", bloom)
    assert code == 1 and "is a directory" in err
    code, _, err = run_main(capsys, "generate", "x", "--file", empty, "--model", bloom)
    assert code == 1 and "not both" in err


def test_quantization_and_threads(bloom, capsys):
    for method in ("int8", "int4"):
        code, out, err = run_main(capsys, "generate", "Tous", "--model", bloom, "--max-new-tokens", "3",
                                  "--quantization", method, "--threads", "1")
        assert code == 0 and out.startswith("Tous"), err
    code, out, err = run_main(capsys, "score", "Tous les êtres", "--model", bloom, "--quantization", "int8",
                              "--summary")
    assert code == 0 and "perplexity" in out, err
    code, _, err = run_main(capsys, "generate", "x", "--quantization", "int2")
    assert code == 2 and "--quantization: invalid choice: 'int2'" in err
    code, _, err = run_main(capsys, "generate", "x", "--threads", "0")
    assert code == 2 and "--threads: must be a positive integer" in err


def write_corpus(tmp_path) -> tuple[Path, Path]:
    data = tmp_path / "data.txt"
    data.write_text("".join(TEXTS) * 3, encoding="utf-8")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "bloom", "hidden_size": 16, "n_layer": 1, "n_head": 2}))
    return data, config


def test_train_warm_up_longer_than_the_run(tmp_path, capsys):
    data, config = write_corpus(tmp_path)
    code, _, err = run_main(capsys, "train", "--data", data, "--config", config, "--output", tmp_path / "run",
                            "--steps", "30", "--warmup", "100")
    assert code == 1 and "--warmup 100 is not shorter than --steps 30" in err and "--warmup 3" in err
    assert not (tmp_path / "run").exists()


def test_train_refuses_an_output_holding_a_run(tmp_path, capsys):
    data, config = write_corpus(tmp_path)
    output = tmp_path / "run"
    common = ["train", "--data", data, "--config", config, "--output", output, "--vocab-size", "280",
              "--batch-size", "2", "--block-size", "8", "--held-out", "0", "--save-every", "2"]
    code, _, err = run_main(capsys, *common, "--steps", "4")
    assert code == 0, err
    assert sorted(p.name for p in output.iterdir()) == ["checkpoint-2", "checkpoint-4", "final", "tokenizer"]
    (output / "notes.txt").write_text("mine", encoding="utf-8")
    before = (output / "final" / "model.safetensors").read_bytes()
    done = tongues(*common, "--steps", "2")
    one_line_error(done, f"--output {output} already holds a run", f"--resume {output / 'checkpoint-4'}",
                   "--overwrite")
    assert (output / "final" / "model.safetensors").read_bytes() == before
    code, out, err = run_main(capsys, *common, "--steps", "2", "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in output.iterdir()) == ["checkpoint-2", "final", "notes.txt", "tokenizer"]
    assert json.loads(out.strip().splitlines()[-1])["step"] == 2


def test_files_written_by_the_cli_honour_the_umask(bloom, tmp_path):
    out = tmp_path / "converted"
    done = tongues("convert", "--model", bloom, "--output", out, umask=0o022)
    assert done.returncode == 0, done.stderr
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= set(modes)
    assert set(modes.values()) == {0o644}, modes


# -- the walk-through: more of the same kind ----------------------------------------------------------
@pytest.mark.parametrize("argv, needle", [
    (["generate", "x", "--max-new-tokens", "ten"], "--max-new-tokens: must be a positive integer; got 'ten'"),
    (["generate", "x", "--top-p", "0"], "--top-p: must be in (0, 1]"),
    (["generate", "x", "--top-k", "-1"], "--top-k: must be an integer >= 0"),
    (["generate", "x", "--repetition-penalty", "nan"], "--repetition-penalty: must be a finite number"),
    (["chat", "--top-p", "2"], "--top-p: must be in (0, 1]"),
    (["chat", "--temperature", "hot"], "--temperature: must be a number; got 'hot'"),
    (["train", "--data", "d", "--config", "c", "--output", "o", "--held-out", "1"], "--held-out: must be in [0, 1)"),
    (["train", "--data", "d", "--config", "c", "--output", "o", "--eval-every", "-5"], "--eval-every: must be"),
    (["train", "--data", "d", "--config", "c", "--output", "o", "--min-lr-ratio", "2"], "--min-lr-ratio: must be"),
    (["convert", "--model", "m", "--output", "o", "--dtype", "fp8"], "--dtype: must be one of"),
    (["score", "x", "--max-length", "0"], "--max-length: must be a positive integer"),
])
def test_bad_flag_values_are_usage_errors_naming_the_flag(argv, needle, capsys):
    code, _, err = run_main(capsys, *argv)
    assert code == 2 and needle in err, err


def test_empty_and_missing_inputs(bloom, tmp_path, capsys):
    code, _, err = run_main(capsys, "score", "--model", bloom, "   ")
    assert code == 1 and "nothing to score" in err
    code, _, err = run_main(capsys, "score", "--file", tmp_path / "none.txt", "--model", bloom)
    assert code == 1 and "none.txt: no such file" in err
    code, _, err = run_main(capsys, "train", "--data", tmp_path / "none", "--config", tmp_path / "c.json",
                            "--output", tmp_path / "o")
    assert code == 1 and "--data" in err
    code, _, err = run_main(capsys, "train", "--data", tmp_path, "--model", bloom, "--output", tmp_path / "o",
                            "--resume", tmp_path / "nowhere")
    assert code == 1 and "--resume" in err and "no such directory" in err
    code, _, err = run_main(capsys, "convert", "--model", bloom, "--output", bloom)
    assert code == 1 and "is the source folder" in err
    code, _, err = run_main(capsys, "convert", "--model", bloom, "--output", tmp_path / "x", "--max-shard-size",
                            "lots")
    assert code == 1 and "--max-shard-size lots" in err


def test_empty_prompt_starts_from_bos_and_stdin_prompt(bloom):
    done = tongues("generate", "--model", bloom, "--max-new-tokens", "3", "--json", stdin="Tous les\n")
    assert done.returncode == 0 and json.loads(done.stdout)["prompt"] == "Tous les", done.stderr
    done = tongues("generate", "", "--model", bloom, "--max-new-tokens", "3", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["completions"][0]["num_tokens"] >= 1, done.stderr


def test_an_unexpected_error_is_one_line(monkeypatch, capsys):
    from tongues.cli import info

    def broken(directory):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(info, "describe", broken)
    monkeypatch.delenv("TONGUES_TRACEBACK", raising=False)
    code, _, err = run_main(capsys, "info")
    assert code == 1 and err.strip().splitlines()[-1].startswith("tongues info: ZeroDivisionError: boom")
    assert "TONGUES_TRACEBACK=1" in err


# -- the docs match the parser ---------------------------------------------------------------------
def test_docs_flag_tables_match_the_parser():
    blocks = generated_blocks()
    for path in (ROOT / "README.md", ROOT / "docs" / "cli.md"):
        text = path.read_text(encoding="utf-8")
        assert render(text, blocks, str(path)) == text, f"{path} is stale: run `python -m tongues.cli.docs`"
    cli_md = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for name in blocks:
        marker = f"<!-- generated: {name} -->\n<!-- end generated -->"
        assert f"<!-- generated: {name} -->" in cli_md, (
            f"docs/cli.md has no table for {name}: add `{marker}` under its section, then run "
            f"`python -m tongues.cli.docs`")


def test_every_documented_command_line_parses(capsys):
    """Each `tongues ...` line in the README's and docs/cli.md's examples is accepted by the parser as written."""
    parser = build_parser()
    lines = []
    for path in (ROOT / "README.md", ROOT / "docs" / "cli.md"):
        for block in re.findall(r"```(?:bash)?\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
            for line in block.splitlines():
                line = line.split("  #")[0].strip().removeprefix("$ ")
                if line.startswith("tongues ") and "|" not in line:
                    lines.append(line)
    assert len(lines) > 15
    for line in lines:
        argv = shlex.split(line)[1:]
        if "--help" in argv or "--version" in argv:
            continue
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"documented command does not parse: {line}\n{capsys.readouterr().err}")


def test_more_walk_through_cases(bloom, tmp_path, capsys):
    code, _, err = run_main(capsys, "generate", "x", "--model", bloom, "--device", "meta")
    assert code == 1 and "--device meta" in err and "--device cpu" in err
    code, _, err = run_main(capsys, "generate", "x", "--seed", str(2**64))
    assert code == 2 and "--seed: must be below 2**64" in err
    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        (no_tokenizer / name).write_bytes((bloom / name).read_bytes())
    code, _, err = run_main(capsys, "generate", "x", "--model", no_tokenizer)
    assert code == 1 and f"--model {no_tokenizer}: the directory holds no tokenizer" in err
    short = tmp_path / "short.txt"
    short.write_text("Tous les\n", encoding="utf-8")
    code, _, err = run_main(capsys, "train", "--data", short, "--model", bloom, "--output", tmp_path / "out",
                            "--steps", "2", "--held-out", "0")
    assert code == 1 and "--data:" in err and "--block-size" in err


def test_train_from_scratch_names_config_and_tokenizer(tmp_path, capsys):
    data, _ = write_corpus(tmp_path)
    config = tmp_path / "gpt9.json"
    config.write_text('{"model_type": "gpt9"}', encoding="utf-8")
    code, _, err = run_main(capsys, "train", "--data", data, "--config", config, "--output", tmp_path / "o")
    assert code == 1 and f"--config {config}: Unknown model_type 'gpt9'" in err
    config.write_text('{"model_type": "bloom"}', encoding="utf-8")
    code, _, err = run_main(capsys, "train", "--data", data, "--config", config, "--output", tmp_path / "o",
                            "--tokenizer", tmp_path / "nowhere")
    assert code == 1 and f"--tokenizer {tmp_path / 'nowhere'}: no such directory" in err
