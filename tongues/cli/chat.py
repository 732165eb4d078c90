"""``tongues chat --model DIR``: an interactive chat in the terminal, with history and streamed replies.

Type a message and press Enter; the reply is printed as it is generated. ``/reset`` forgets the
conversation, ``/exit`` (or end of input) quits. The prompt is the checkpoint's own chat template;
generation stops at any of the checkpoint's end ids (GLM-4 has three).

Example::

    $ tongues chat --model THUDM/glm-4-9b-chat --max-new-tokens 256
    >>> 你好
    你好👋！我是人工智能助手 GLM-4 ...
"""

from __future__ import annotations

import argparse
from typing import Any

COMMANDS = "/reset (forget the conversation), /exit (quit)"


class ChatSession:
    """A conversation with a model: the message history and one ``reply`` per user turn.

    Args:
        model: a causal LM with ``generate``.
        tokenizer: its tokenizer, with a chat template.
        system: an optional system prompt, kept across ``reset``.
        generate_kwargs: passed to ``model.generate`` (``max_new_tokens``, ``do_sample``...).
    """

    def __init__(self, model, tokenizer, system: str | None = None, **generate_kwargs: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.system = system
        self.generate_kwargs = generate_kwargs
        self.messages: list[dict[str, str]] = []
        self.reset()

    def reset(self) -> None:
        """Forget every turn (the system prompt stays)."""
        self.messages = [{"role": "system", "content": self.system}] if self.system else []

    def reply(self, text: str, streamer=None) -> str:
        """Add the user's ``text``, generate the assistant's answer (streamed to ``streamer``), remember it."""
        self.messages.append({"role": "user", "content": text})
        inputs = self.tokenizer.apply_chat_template(self.messages, add_generation_prompt=True, return_tensors="pt",
                                                    return_dict=True)
        input_ids = inputs["input_ids"].to(self.model.device)
        attention_mask = inputs["attention_mask"].to(self.model.device)
        try:
            output = self.model.generate(input_ids, attention_mask=attention_mask, streamer=streamer,
                                         **self.generate_kwargs)
        except BaseException:
            self.messages.pop()  # an interrupted turn is not part of the history
            raise
        answer = self.tokenizer.decode(output[0, input_ids.shape[1]:], skip_special_tokens=True).strip()
        self.messages.append({"role": "assistant", "content": answer})
        return answer


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``chat`` subcommand to ``subparsers`` (from ``ArgumentParser.add_subparsers()``)."""
    parser = subparsers.add_parser(
        "chat", help="chat with a model in the terminal",
        description=f"Chat with a model in the terminal. Commands: {COMMANDS}.")
    parser.add_argument("--model", required=True, help="checkpoint folder or hub id (with a chat template)")
    parser.add_argument("--system", default=None, help="system prompt")
    parser.add_argument("--max-new-tokens", type=int, default=512, help="longest reply, in tokens (512)")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of the checkpoint's sampling")
    parser.add_argument("--temperature", type=float, default=None, help="sampling temperature (checkpoint's default)")
    parser.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass (checkpoint's default)")
    parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatable sampling")
    parser.add_argument("--dtype", default="auto", help="weights dtype: auto, float32, bfloat16, float16")
    parser.add_argument("--device", default="cpu", help="torch device (cpu)")
    parser.set_defaults(func=run)
    return parser


def _generate_kwargs(args) -> dict[str, Any]:
    from . import CommandError

    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise CommandError(f"--max-new-tokens must be at least 1; got {args.max_new_tokens}")
    kwargs: dict[str, Any] = {"max_new_tokens": args.max_new_tokens}
    if args.greedy:
        kwargs["do_sample"] = False
    if args.temperature is not None:
        kwargs["temperature"] = args.temperature
    if args.top_p is not None:
        kwargs["top_p"] = args.top_p
    return kwargs


def run(args) -> int:
    """Load the model and tokenizer, then read messages until ``/exit`` or end of input. Returns the exit code.

    Raises:
        CommandError: the model or tokenizer cannot be loaded, or an option is out of range.
    """
    import torch

    from ..generation import TextStreamer
    from . import load_causal_lm

    generate_kwargs = _generate_kwargs(args)
    model, tokenizer, _ = load_causal_lm(args.model, "chat", dtype=args.dtype, device=args.device)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    session = ChatSession(model, tokenizer, system=args.system, **generate_kwargs)
    print(f"Chatting with {args.model}. Commands: {COMMANDS}.")
    while True:
        try:
            line = input(">>> ")
        except EOFError:
            print()
            return 0
        except KeyboardInterrupt:
            print()
            return 130
        command = line.strip()
        if not command:
            continue
        if command == "/exit":
            return 0
        if command == "/reset":
            session.reset()
            print("(conversation forgotten)")
            continue
        if command.startswith("/") and " " not in command:
            print(f"Unknown command {command}. Commands: {COMMANDS}.")
            continue
        streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        try:
            session.reply(line, streamer=streamer)
        except KeyboardInterrupt:
            print("\n(reply interrupted)")
