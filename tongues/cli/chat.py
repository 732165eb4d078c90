"""``tongues chat --model DIR``: an interactive chat in the terminal, with history and streamed replies.

Type a message and press Enter; the reply is printed as it is generated. ``/reset`` forgets the
conversation, ``/exit`` (or end of input, Ctrl-D) quits. Lines are edited with the arrow keys and
earlier messages recalled with up/down (Python's ``readline``, where the platform has it). The prompt
is the checkpoint's own chat template, or ``--chat-template`` (a file or a Jinja string); generation
stops at any of the checkpoint's end ids (GLM-4 has three).

Example::

    $ tongues chat --model THUDM/glm-4-9b-chat --max-new-tokens 256
    >>> 你好
    你好👋！我是人工智能助手 GLM-4 ...
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from . import CommandError, add_model_arguments, non_negative_float, positive_int, probability, seed_value

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
    add_model_arguments(parser)
    parser.add_argument("--chat-template", default=None, metavar="TEMPLATE",
                        help="a Jinja chat template file, or the template itself (default: the checkpoint's)")
    parser.add_argument("--system", default=None, help="system prompt")
    parser.add_argument("--max-new-tokens", type=positive_int, default=512, metavar="N",
                        help="longest reply, in tokens (512)")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of the checkpoint's sampling")
    parser.add_argument("--temperature", type=non_negative_float, default=None,
                        help="sampling temperature; 0 = greedy (checkpoint's default)")
    parser.add_argument("--top-p", type=probability, default=None, metavar="P",
                        help="nucleus sampling mass (checkpoint's default)")
    parser.add_argument("--seed", type=seed_value, default=None, help="random seed, for repeatable sampling")
    parser.set_defaults(func=run)
    return parser


def _generate_kwargs(args) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"max_new_tokens": args.max_new_tokens}
    if args.temperature is not None:
        kwargs["temperature"] = args.temperature
    if args.top_p is not None:
        kwargs["top_p"] = args.top_p
    if args.greedy or args.temperature == 0:  # temperature 0 is greedy, as in OpenAI's API, vLLM and llama.cpp
        kwargs = {"max_new_tokens": args.max_new_tokens, "do_sample": False}
    return kwargs


def read_chat_template(value: str) -> str:
    """``--chat-template``: the text of a template file, or ``value`` itself when it is a Jinja template."""
    if os.path.isfile(value):
        try:
            with open(value, encoding="utf-8") as f:
                return f.read()
        except (OSError, UnicodeDecodeError) as err:
            raise CommandError(f"--chat-template {value}: cannot read it as UTF-8 text ({err})") from None
    if "{{" in value or "{%" in value:
        return value
    raise CommandError(f"--chat-template {value}: no such file, and not a Jinja template (it has no '{{{{' or "
                       f"'{{%'); give a template file or the template text")


def check_chat_template(tokenizer, model: str | None, template_flag: str | None) -> None:
    """Render a one-message conversation, so a missing or broken template fails before the chat starts."""
    from ..tokenization.chat import ChatTemplateError

    try:
        tokenizer.apply_chat_template([{"role": "user", "content": "Hello"}], add_generation_prompt=True,
                                      tokenize=False)
    except ChatTemplateError as err:
        if template_flag is not None:
            raise CommandError(f"--chat-template {template_flag}: {str(err).strip().splitlines()[0]}") from None
        if getattr(tokenizer, "chat_template", None) is None:
            raise CommandError(f"{'--model ' + model if model else 'the embedded model'} has no chat template (it is "
                               f"not a chat model); pass --chat-template FILE (a Jinja template, or its text), or use "
                               f"`tongues generate` to continue text") from None
        raise CommandError(f"--model {model}: its chat template fails: {str(err).strip().splitlines()[0]}; "
                           f"pass --chat-template FILE to use another") from None


def _enable_line_editing() -> None:
    """Arrow keys, history (up/down) and Emacs keys in ``input()``, where Python has ``readline``."""
    try:
        import readline  # noqa: F401 - importing it is what turns line editing on for input()
    except ImportError:  # Windows without pyreadline: plain input()
        pass


def run(args) -> int:
    """Load the model and tokenizer, then read messages until ``/exit`` or end of input. Returns the exit code.

    Raises:
        CommandError: the model or tokenizer cannot be loaded, or an option is out of range.
    """
    import torch

    from ..generation import TextStreamer
    from . import load_causal_lm

    generate_kwargs = _generate_kwargs(args)
    template = None if args.chat_template is None else read_chat_template(args.chat_template)
    model, tokenizer, _ = load_causal_lm(args.model, "chat", args.dtype, args.device, args.quantization,
                                                 args.threads)
    if template is not None:
        tokenizer.chat_template = template
    check_chat_template(tokenizer, args.model, args.chat_template)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    session = ChatSession(model, tokenizer, system=args.system, **generate_kwargs)
    _enable_line_editing()
    print(f"Chatting with {args.model or 'the embedded model'}. Commands: {COMMANDS}.")
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
        except ValueError as err:  # the conversation no longer fits, a template error...: say so, keep chatting
            print(f"\n(no reply: {str(err).strip().splitlines()[0]}; /reset starts afresh)")
