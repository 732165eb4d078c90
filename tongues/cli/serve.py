"""``tongues serve``: an OpenAI-compatible HTTP server with continuous batching and a web playground.

Without ``--model`` it serves the embedded demonstration model. The server answers at once
(``GET /health`` is 503 until the model has loaded, then 200). Needs the ``serve`` extra:
``pip install 'tongues[serve]'``.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is sharded over the ranks (``tp_plan="auto"``):
rank 0 runs the server and the engine, and broadcasts each model step, which the other ranks replay
on their shards (:mod:`tongues.serving.distributed`) until rank 0 stops.

Example::

    $ tongues serve --model path/to/checkpoint --port 8000
    $ torchrun --nproc-per-node 2 -m tongues serve --model path/to/checkpoint --port 8000
    $ curl -s localhost:8000/v1/completions -H 'content-type: application/json' \\
        -d '{"prompt": "Tous les êtres humains", "max_tokens": 20, "temperature": 0}'
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from . import CommandError, _one_line, inference_kernels, non_negative_int, resolve_model_dir, world_size
from .chat import check_chat_template, read_chat_template
from .generate import positive_int

SERVE_EXTRA_HINT = "pip install 'tongues[serve]'"


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "serve", help="serve a model over an OpenAI-compatible HTTP API (with a web playground)",
        description="Serve a causal language model at /v1/completions and /v1/chat/completions (OpenAI's API), "
                    "with streaming, continuous batching, /metrics and a playground page at /. "
                    f"Needs the serve extra: {SERVE_EXTRA_HINT}")
    parser.add_argument("--model", default=None,
                        help="checkpoint directory or hub id (default: the embedded demonstration model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (8000)")
    parser.add_argument("--dtype", default="auto", help="weights dtype: auto, float32, bfloat16, float16 (auto)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu)")
    parser.add_argument("--quantization", choices=("int8", "int4"), default=None,
                        help="weight-only quantisation of the linear layers (CPU)")
    parser.add_argument("--kernels", choices=("packed", "auto", "none"), default="packed",
                        help="CPU linear kernels: packed (auto, plus bf16 weights packed for oneDNN where the CPU "
                             "multiplies bf16 natively), auto (chosen at load, see docs/performance.md) or none "
                             "(torch's F.linear for every layer) (packed)")
    parser.add_argument("--max-running", type=positive_int, default=16,
                        help="sequences decoded together (rows of the KV cache) (16)")
    parser.add_argument("--max-queue", type=positive_int, default=64,
                        help="sequences that may wait for a row; more get 503 with Retry-After (64)")
    parser.add_argument("--max-model-len", type=positive_int, default=None,
                        help="prompt + output limit (default: the model's context length)")
    parser.add_argument("--chunk-size", type=positive_int, default=64,
                        help="prompt tokens prefilled per engine step, so long prompts delay others little (64)")
    parser.add_argument("--max-prefill-wait", type=non_negative_int, default=4,
                        help="engine steps a new prompt may wait, while more sequences decode than wait, to be "
                             "prefilled together with later ones (4; 0: at once)")
    parser.add_argument("--arrival-window-ms", type=window_ms, default=0,
                        help="milliseconds an idle engine waits, once a request wakes it, for others arriving "
                             "with it, so they prefill together (default 0: none; see docs/serving.md)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch CPU threads (default: torch's choice; fewer on a machine shared with other jobs)")
    parser.add_argument("--chat-template", default=None, metavar="FILE",
                        help="a Jinja chat template file, or the template itself, for /v1/chat/completions "
                             "(default: the checkpoint's; a model without one serves completions only)")
    parser.add_argument("--served-model-name", default=None,
                        help="the model's name in the API (default: the checkpoint folder's name)")
    parser.add_argument("--api-key", default=os.environ.get("TONGUES_API_KEY"),
                        help="require 'Authorization: Bearer KEY' (default: $TONGUES_API_KEY, else no key)")
    parser.set_defaults(func=run)
    return parser


def check_serve_extra() -> None:
    """Raise CommandError (one line, with the pip command) when the server's packages are missing."""
    missing = []
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise CommandError(f"needs {', '.join(missing)}, which the serve extra installs: {SERVE_EXTRA_HINT}")


def load_model(args, model_dir: str):
    """The model of ``model_dir``; under torchrun, this rank's shard of it."""
    import torch

    from ..auto import AutoModelForCausalLM

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    kernels = inference_kernels(args.kernels)
    if args.device in (None, "cpu"):
        from .. import native

        native.load()  # tongues' C++ kernels (built once per machine) before the layers are packed for them
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=args.dtype, device=args.device,
                                                 quantization=args.quantization, kernels=kernels,
                                                 tp_plan="auto" if world_size() > 1 else None)
    if kernels == "packed":  # the server batches: the LM head's packed copy now, not in the first burst
        from ..fast.packed import build_packed_copies

        build_packed_copies(model)
    return model


def all_ranks_loaded(loaded: bool) -> bool:
    """Under torchrun: True when every rank loaded its shard (each rank tells the others)."""
    import torch
    import torch.distributed as dist

    from ..serving.distributed import CommandChannel

    flag = torch.tensor([1 if loaded else 0], device=CommandChannel().device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def window_ms(text: str) -> int:
    value = non_negative_int(text)
    if value > 10_000:
        raise argparse.ArgumentTypeError(f"must be at most 10000 (10 s); got {text}")
    return value


def load_engine(args, model_dir: str, template: str | None = None):
    """Load the model and tokenizer of ``model_dir`` and start an engine over them (on rank 0 under torchrun).
    ``template``: the text of ``--chat-template``, read and compiled by :func:`serve`."""
    from ..serving import Engine
    from ..tokenization import AutoTokenizer

    def start(model, tokenizer, channel=None):
        if template is not None:
            tokenizer.chat_template = template
            check_chat_template(tokenizer, args.model, args.chat_template)
        return Engine(model, tokenizer, max_running=args.max_running, max_queue=args.max_queue,
                      chunk_size=args.chunk_size, max_model_len=args.max_model_len, channel=channel,
                      max_prefill_wait=args.max_prefill_wait,
                      arrival_window=args.arrival_window_ms / 1000).start()

    if world_size() == 1:
        return start(load_model(args, model_dir), AutoTokenizer.from_pretrained(model_dir))
    from ..serving.distributed import STOP, Command, CommandChannel

    try:
        model, tokenizer = load_model(args, model_dir), AutoTokenizer.from_pretrained(model_dir)
    except Exception:
        all_ranks_loaded(False)
        raise
    if not all_ranks_loaded(True):
        raise RuntimeError("another rank could not load its shard of the model")
    channel = CommandChannel()
    try:
        return start(model, tokenizer, channel)
    except Exception:
        channel.send(Command(STOP))  # the other ranks are following already: release them
        raise


def follow_rank0(args, model_dir: str) -> int:
    """Ranks 1..N-1 under torchrun: load this rank's shard, then replay rank 0's model steps until it stops."""
    from ..serving.distributed import CommandChannel, follow
    from ..serving.engine import context_length
    from ..serving.model_runner import make_runner

    try:
        model = load_model(args, model_dir).eval()
    except Exception as err:
        all_ranks_loaded(False)
        raise CommandError(f"--model {model_dir}: {_one_line(err)}") from None
    if not all_ranks_loaded(True):
        raise CommandError("rank 0 or another rank could not load its shard of the model")
    runner = make_runner(model, args.max_running, args.max_model_len or context_length(model.config))
    follow(runner, CommandChannel())
    return 0


def run(args) -> int:
    """Start the server (the model loads in the background) and serve until interrupted."""
    if world_size() == 1:
        return serve(args)
    import torch.distributed as dist

    from ..distributed.tensor_parallel import init_from_env

    init_from_env()
    try:
        if dist.get_rank() != 0:  # rank 0 alone binds the port; the others follow its engine
            return follow_rank0(args, resolve_model_dir(args.model, "serve"))
        return serve(args)
    finally:
        # Left to the interpreter's exit, gloo's threads can abort the process ("terminate called ...").
        dist.destroy_process_group()


def serve(args) -> int:
    """The HTTP server and the engine (rank 0 under torchrun)."""
    check_serve_extra()
    import uvicorn

    from ..serving.api_server import attach, create_app, load_failed

    if not 1 <= args.port <= 65535:
        raise CommandError(f"--port {args.port}: must be between 1 and 65535")
    template = None
    if args.chat_template is not None:  # a missing file or a syntax error fails here, before the server starts
        from ..tokenization.chat import ChatTemplateError, compile_chat_template

        template = read_chat_template(args.chat_template)
        try:
            compile_chat_template(template)
        except ChatTemplateError as err:
            raise CommandError(f"--chat-template {args.chat_template}: {_one_line(err)}") from None
    model_dir = resolve_model_dir(args.model, "serve")
    name = args.served_model_name or (Path(model_dir).name if args.model is not None else "tongues-default")
    app = create_app(name, api_key=args.api_key)

    def load() -> None:
        try:
            attach(app, load_engine(args, model_dir, template))
            print(f"tongues serve: {name} is ready", file=sys.stderr, flush=True)
        except Exception as err:  # reported by /health and every request, and on stderr
            # A CommandError names its own flag (--chat-template); anything else is the model's.
            message = str(err) if isinstance(err, CommandError) else f"--model {model_dir}: {_one_line(err)}"
            load_failed(app, message)
            print(f"tongues serve: {message}", file=sys.stderr, flush=True)

    threading.Thread(target=load, name="tongues-load", daemon=True).start()
    print(f"tongues serve: http://{args.host}:{args.port}/ (playground), OpenAI API at /v1", file=sys.stderr,
          flush=True)
    if world_size() > 1:
        # uvicorn stops gracefully on SIGTERM, then raises it again; caught here instead of killing rank 0,
        # so that the engine's shutdown below releases the other ranks (STOP) and torchrun sees exit 0.
        signal.signal(signal.SIGTERM, _terminated)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    except OSError as err:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {_one_line(err)}") from None
    except _Terminated:
        pass
    finally:
        engine = getattr(app.state.server, "engine", None)
        if engine is not None:
            engine.shutdown()
    return 0


class _Terminated(BaseException):
    """SIGTERM under torchrun: the server has stopped; the engine is shut down next."""


def _terminated(signum, frame) -> None:
    raise _Terminated
