"""`tongues serve` from the command line: a real subprocess on a free loopback port, and its one-line errors."""

import os
import socket
import subprocess
import sys
import time

import requests

from tongues.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHAT_TEMPLATE = ("{% for m in messages %}{% if m.role == 'user' %}Question: {{ m.content }}\n"
                 "{% else %}Answer: {{ m.content }}\n{% endif %}{% endfor %}"
                 "{% if add_generation_prompt %}Answer:{% endif %}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_starts_reports_loading_then_answers(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = open(tmp_path / "stderr.txt", "w+")
    # The embedded model has no chat template of its own: --chat-template gives it one for /v1/chat/completions.
    (tmp_path / "chat.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "tongues", "serve", "--port", str(port), "--max-running", "4",
                                "--chat-template", "chat.jinja"],
                               stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = requests.get(url + "/health", timeout=5).status_code
            except requests.ConnectionError:
                status = None
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, open(tmp_path / "stderr.txt").read()
        out = requests.post(url + "/v1/completions", json={"model": "tongues-default", "prompt": "Article 1",
                                                           "max_tokens": 5, "temperature": 0}, timeout=60).json()
        assert out["choices"][0]["finish_reason"] in ("stop", "length") and out["model"] == "tongues-default"
        assert "<title>tongues playground</title>" in requests.get(url + "/", timeout=10).text
        chat = requests.post(url + "/v1/chat/completions", json={
            "model": "tongues-default", "messages": [{"role": "user", "content": "Bonjour"}], "max_tokens": 4,
            "temperature": 0}, timeout=60)
        assert chat.status_code == 200, chat.text
        from tongues.assets import default_model_path
        from tongues.tokenization import AutoTokenizer

        rendered = "Question: Bonjour\nAnswer:"  # CHAT_TEMPLATE's rendering of that conversation
        prompt_tokens = len(AutoTokenizer.from_pretrained(default_model_path())(rendered)["input_ids"])
        assert chat.json()["usage"]["prompt_tokens"] == prompt_tokens
    finally:
        process.terminate()
        process.wait(30)
        log.close()
    assert "embedded demonstration model" in open(tmp_path / "stderr.txt").read()


def test_serve_chat_template_errors_come_before_the_server(tmp_path, capsys):
    assert main(["serve", "--chat-template", str(tmp_path / "missing.jinja")]) == 1
    assert "--chat-template" in capsys.readouterr().err
    (tmp_path / "broken.jinja").write_text("{% for m in messages %}{{ m.content }", encoding="utf-8")
    assert main(["serve", "--chat-template", str(tmp_path / "broken.jinja")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "broken.jinja" in err and "syntax error" in err


def test_serve_without_the_extra_names_the_pip_command(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi -> ImportError
    assert main(["serve"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'tongues[serve]'" in err


def test_serve_bad_model_and_port_are_one_line_errors(tmp_path, capsys):
    from tongues.cli import build_parser

    assert main(["serve", "--model", str(tmp_path / "missing")]) == 1
    assert "--model" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 1
    assert "--port 70000" in capsys.readouterr().err
    assert main(["serve", "--quantization", "int3"]) == 2
    assert main(["serve", "--arrival-window-ms", "99999"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--arrival-window-ms" in err and "at most 10000" in err
    args = build_parser().parse_args(["serve", "--arrival-window-ms", "60"])
    assert args.arrival_window_ms == 60 and build_parser().parse_args(["serve"]).arrival_window_ms == 0


def test_serve_kernels_flag_reaches_the_loader():
    from tongues.assets import default_model_path
    from tongues.cli import build_parser
    from tongues.cli.serve import load_model

    parser = build_parser()
    args = parser.parse_args(["serve", "--kernels", "none", "--dtype", "bfloat16"])
    torch_only = load_model(args, str(default_model_path()))
    assert set(torch_only.decode_kernels.values()) == {"bfloat16: torch F.linear"}
    chosen = load_model(parser.parse_args(["serve", "--dtype", "bfloat16"]), str(default_model_path()))
    assert set(chosen.decode_kernels.values()) != {"bfloat16: torch F.linear"}  # the default: chosen at load
    assert main(["serve", "--kernels", "fastest"]) == 2
