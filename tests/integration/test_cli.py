"""The ``tongues`` command end to end: generate, score, info, train; exit codes and one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tongues.cli import main
from tongues.models.bloom import BloomConfig
from tongues.models.bloom.modeling_bloom import BloomForCausalLM
from tongues.training import save_tokenizer, train_bpe_tokenizer

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["Tous les êtres humains naissent libres et égaux en dignité et en droits.\n" * 4,
         "Все люди рождаются свободными и равными в своем достоинстве и правах.\n" * 4]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-bloom")
    tokenizer = train_bpe_tokenizer(texts=TEXTS, vocab_size=300)
    save_tokenizer(tokenizer, path)
    torch.manual_seed(0)
    config = BloomConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=32, n_layer=2, n_head=4,
                         bos_token_id=1, eos_token_id=2, pad_token_id=3)
    BloomForCausalLM(config).save_pretrained(path)
    return path


def tongues(*argv, stdin=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "tongues", *argv], capture_output=True, text=True, env=env,
                          input=stdin, timeout=120)


def test_generate_score_info_in_a_subprocess(tiny_checkpoint):
    done = tongues("generate", "Tous les", "--model", str(tiny_checkpoint), "--max-new-tokens", "5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Tous les")

    done = tongues("score", "--model", str(tiny_checkpoint), "--json", stdin="Все люди рождаются")
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout)
    assert scores["num_scored"] == scores["num_tokens"] - 1 > 0 and scores["perplexity"] > 1
    assert all(t["logprob"] <= 0 for t in scores["tokens"][1:])

    done = tongues("info", "--model", str(tiny_checkpoint))
    assert done.returncode == 0, done.stderr
    assert "bloom (BloomForCausalLM)" in done.stdout and "BloomTokenizerFast" in done.stdout


def test_missing_or_broken_model_fails_with_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    done = tongues("generate", "hi", "--model", str(missing))
    assert done.returncode == 1
    assert done.stderr.strip() == f"tongues generate: --model {missing}: no such directory"

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    assert main(["score", "some text", "--model", str(broken)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert str(broken) in err and "not valid JSON" in err


def test_wrong_family_and_missing_weights(tmp_path, tiny_checkpoint, capsys):
    other = tmp_path / "mamba"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "mamba"}), encoding="utf-8")
    for command in ("generate", "score", "info"):
        assert main([command, "x y", "--model", str(other)] if command != "info"
                    else [command, "--model", str(other)]) == 1
        err = capsys.readouterr().err
        assert f"tongues {command}:" in err and "'mamba'" in err and str(other) in err

    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((tiny_checkpoint / "config.json").read_text(), encoding="utf-8")
    assert main(["generate", "x", "--model", str(no_weights)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tongues generate: --model") and str(no_weights) in err

    file_instead = tmp_path / "config.json"
    file_instead.write_text("{}", encoding="utf-8")
    assert main(["info", "--model", str(file_instead)]) == 1
    assert "is a file" in capsys.readouterr().err


def test_usage_errors_exit_2_and_help_exits_0(capsys):
    assert main(["generate", "x", "--max-new-tokens", "0"]) == 2
    assert "--max-new-tokens" in capsys.readouterr().err
    assert main(["generate", "x", "--top-p", "1.5"]) == 2
    assert main(["frobnicate"]) == 2
    assert main([]) == 2
    capsys.readouterr()
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("generate", "score", "info", "train"):
        assert command in out
    assert main(["train", "--help"]) == 0


def test_under_torchrun_the_executable_flushes_its_output_and_keeps_its_exit_code():
    # Under torchrun (WORLD_SIZE > 1) the process ends with os._exit, past the interpreter's finalization
    # (tongues.cli.entry): buffered output must still come out, and the command's code be the process's.
    env = dict(os.environ, WORLD_SIZE="2", RANK="0", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    env.pop("PYTHONUNBUFFERED", None)
    helped = subprocess.run([sys.executable, "-m", "tongues", "generate", "--help"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert "--max-new-tokens" in helped.stdout  # a pipe: block-buffered, so only a flush gets it out
    wrong = subprocess.run([sys.executable, "-m", "tongues", "generate", "x", "--top-p", "1.5"], capture_output=True,
                           text=True, env=env, timeout=120)
    assert wrong.returncode == 2 and "--top-p" in wrong.stderr


def test_generate_flags_and_seed_repeat(tiny_checkpoint, capsys):
    argv = ["generate", "Tous", "--model", str(tiny_checkpoint), "--max-new-tokens", "6", "--do-sample",
            "--temperature", "0.8", "--top-k", "20", "--top-p", "0.9", "--repetition-penalty", "1.2", "--seed", "3"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    assert capsys.readouterr().out == first
    assert main(["generate", "Tous", "--model", str(tiny_checkpoint), "--max-new-tokens", "3",
                 "--num-beams", "2"]) == 0
    assert capsys.readouterr().out.startswith("Tous")


def test_score_table_and_file(tiny_checkpoint, tmp_path, capsys):
    text_file = tmp_path / "t.txt"
    text_file.write_text(TEXTS[0], encoding="utf-8")
    assert main(["score", "--file", str(text_file), "--model", str(tiny_checkpoint), "--max-length", "8"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "position\tid\tlogprob\ttoken" and out[-1].startswith("tokens: ")
    assert main(["score", "--file", str(tmp_path / "none.txt"), "--model", str(tiny_checkpoint)]) == 1
    assert "none.txt: no such file" in capsys.readouterr().err


def test_train_from_scratch_then_resume(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for i, text in enumerate(TEXTS):
        (data / f"{i}.txt").write_text(text * 3, encoding="utf-8")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "bloom", "hidden_size": 32, "n_layer": 1, "n_head": 4}))
    common = ["train", "--data", str(data), "--config", str(config), "--vocab-size", "300", "--output",
              str(tmp_path / "run"), "--batch-size", "2", "--block-size", "16", "--warmup", "1", "--held-out", "0.2"]
    assert main([*common, "--steps", "2"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 2 and "eval_loss" in summary
    assert main(["info", "--model", summary["model"]]) == 0
    assert "vocabulary 300" in capsys.readouterr().out
    assert main([*common, "--steps", "3", "--resume", str(tmp_path / "run" / "checkpoint-2")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 3
    assert main(["train", "--data", str(tmp_path / "nope"), "--config", str(config), "--output", "x"]) == 1
    assert "--data" in capsys.readouterr().err


def test_fine_tune_a_checkpoint(tmp_path, tiny_checkpoint, capsys):
    data = tmp_path / "corpus.txt"
    data.write_text("".join(TEXTS) * 2, encoding="utf-8")
    argv = ["train", "--data", str(data), "--model", str(tiny_checkpoint), "--output", str(tmp_path / "ft"),
            "--steps", "2", "--batch-size", "2", "--block-size", "8", "--warmup", "0", "--held-out", "0.25"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 2 and summary["eval_perplexity"] > 1
    assert main(["score", "Tous les", "--model", summary["model"], "--summary"]) == 0
    assert "perplexity" in capsys.readouterr().out
    assert main(["train", "--data", str(data), "--model", str(tmp_path / "none"), "--output", "x"]) == 1
    assert "no config.json" in capsys.readouterr().err
