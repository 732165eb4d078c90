"""Chat templates: Jinja templates that turn a list of messages into the prompt a chat model expects.

Templates come with checkpoints (``tokenizer_config.json`` ``chat_template``, or
``chat_template.jinja``), so they are untrusted code. They render in Jinja's
``ImmutableSandboxedEnvironment``, with two tightenings of our own: reaching a private or dunder
attribute (``__class__``, ``__globals__``...) fails at once instead of rendering as undefined, and
``import``/``include``/``extends`` are rejected when the template is compiled. Everything the
template sees is rebuilt from plain JSON types, so no method of a caller's object is reachable.

The environment matches the one Hugging Face templates are written for: ``trim_blocks`` and
``lstrip_blocks``, the ``loopcontrols`` extension, a ``tojson`` filter that keeps non-ASCII text and
takes ``indent``/``separators``/``sort_keys``, and the globals ``raise_exception(message)`` and
``strftime_now(format)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

# Appended to the message being continued, to find where it ends in the rendered text.
_CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "


class ChatTemplateError(ValueError):
    """A chat template is missing, malformed, refused by the sandbox, or raised while rendering."""


def _jinja():
    try:
        import jinja2
        import jinja2.ext
        import jinja2.nodes
        import jinja2.sandbox
    except ImportError:  # pragma: no cover - jinja2 is a dependency
        raise ImportError("Chat templates need jinja2>=3.1: pip install jinja2") from None
    return jinja2


class _TemplateRaised(Exception):
    """What ``raise_exception(message)`` throws inside a template."""


def _build_environment():
    jinja2 = _jinja()

    class GenerationTag(jinja2.ext.Extension):
        # Templates mark assistant text with {% generation %}...{% endgeneration %}; rendering keeps the body.
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_render_body"), [], [], body).set_lineno(lineno)

        def _render_body(self, caller):
            return caller()

    class ChatSandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
        def unsafe_undefined(self, obj, attribute):
            # Jinja's default renders a blocked attribute as undefined (falsy in an {% if %}); fail loudly.
            raise jinja2.exceptions.SecurityError(
                f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
            )

    class TemplateNamespace(jinja2.utils.Namespace):
        # namespace() objects accept attribute writes; keep those away from private names.
        def __init__(*args, **kwargs):
            self, args = args[0], args[1:]
            attrs = dict(*args, **kwargs)
            for name in attrs:
                TemplateNamespace._check(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name, value):
            TemplateNamespace._check(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check(name):
            if isinstance(name, str) and name.startswith("_"):
                raise jinja2.exceptions.SecurityError(f"namespace attributes may not start with '_': {name!r}")

    class TemplateDict:
        # `dict(...)` and `dict.fromkeys(...)` without exposing the dict type itself.
        def __call__(self, *args, **kwargs):
            return dict(*args, **kwargs)

        def fromkeys(self, *args, **kwargs):
            return dict.fromkeys(*args, **kwargs)

    def raise_exception(message):
        raise _TemplateRaised(str(message))

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ChatSandbox(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    env.globals["dict"] = TemplateDict()
    env.globals["namespace"] = TemplateNamespace
    return env


@lru_cache(maxsize=1)
def _environment():
    return _build_environment()


def compile_chat_template(template: str):
    """Compile ``template`` in the chat sandbox (cached); a ``ChatTemplateError`` names what is wrong."""
    if not isinstance(template, str):
        raise ChatTemplateError(f"A chat template must be a str, got {type(template).__name__}.")
    return _compile(template)


@lru_cache(maxsize=64)
def _compile(template: str):
    jinja2 = _jinja()
    env = _environment()
    try:
        tree = env.parse(template)
    except jinja2.TemplateSyntaxError as err:
        raise ChatTemplateError(f"The chat template has a syntax error on line {err.lineno}: {err.message}") from None
    for node_type, word in (
        (jinja2.nodes.Import, "import"),
        (jinja2.nodes.FromImport, "import"),
        (jinja2.nodes.Include, "include"),
        (jinja2.nodes.Extends, "extends"),
    ):
        node = next(tree.find_all(node_type), None)
        if node is not None:
            raise ChatTemplateError(
                f"The chat template uses {{% {word} %}} on line {node.lineno}; chat templates must be "
                f"self-contained and may not {word} other templates or modules."
            )
    return env.from_string(tree)


def _plain(value: Any) -> Any:
    """A copy built only from JSON types; other objects become a ``"<TypeName>"`` placeholder."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        return _plain(value.item())  # numpy scalars (np.bool_ must stay falsy)
    return f"<{type(value).__name__}>"


def render_chat_template(
    template: str,
    conversations: list[list[dict[str, Any]]],
    tools: list[dict[str, Any]] | None = None,
    documents: list[dict[str, Any]] | None = None,
    add_generation_prompt: bool = False,
    continue_final_message: bool = False,
    **template_kwargs,
) -> list[str]:
    """Render each conversation (a list of message dicts) with ``template``; one string per conversation.

    ``continue_final_message`` cuts the text right after the last message's content, so the model
    continues that message instead of starting a new one.
    """
    jinja2 = _jinja()
    compiled = compile_chat_template(template)
    if tools is not None:
        if not isinstance(tools, (list, tuple)):
            raise TypeError(f"tools must be a list of JSON-schema dicts, got {type(tools).__name__}.")
        for index, tool in enumerate(tools):
            if not isinstance(tool, Mapping):
                raise TypeError(
                    f"tools[{index}] is a {type(tool).__name__}; tongues takes tools as JSON-schema dicts "
                    f"({{'type': 'function', 'function': {{'name': ..., 'parameters': ...}}}})."
                )
    if documents is not None:
        if not isinstance(documents, (list, tuple)) or not all(isinstance(d, Mapping) for d in documents):
            raise TypeError("documents must be a list of dicts (e.g. with 'title' and 'text' keys).")
    tools, documents, template_kwargs = _plain(tools), _plain(documents), _plain(template_kwargs)

    rendered = []
    for conversation in conversations:
        messages = _plain(list(conversation))
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                raise TypeError(f"Chat message {index} must be a dict with 'role' and 'content', got {message!r}.")
        final_text = None
        if continue_final_message:
            final_text = _tag_final_message(messages)
        try:
            text = compiled.render(
                messages=messages,
                tools=tools,
                documents=documents,
                add_generation_prompt=add_generation_prompt,
                **template_kwargs,
            )
        except _TemplateRaised as err:
            raise ChatTemplateError(f"The chat template raised an error: {err}") from None
        except jinja2.exceptions.SecurityError as err:
            raise ChatTemplateError(
                f"The chat template was stopped by the sandbox: {err}. Chat templates may not reach Python "
                f"internals (attributes such as __class__ or __globals__, or private names)."
            ) from None
        except jinja2.exceptions.UndefinedError as err:
            raise ChatTemplateError(f"The chat template used an undefined value: {err}") from None
        except jinja2.TemplateError as err:
            raise ChatTemplateError(f"The chat template failed: {type(err).__name__}: {err}") from None
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError) as err:
            raise ChatTemplateError(f"Rendering the chat template failed: {type(err).__name__}: {err}") from None
        if final_text is not None:
            text = _cut_after_final_message(text, final_text)
        rendered.append(text)
    return rendered


def _tag_final_message(messages: list[dict[str, Any]]) -> str:
    if not messages:
        raise ChatTemplateError("continue_final_message=True needs a non-empty conversation.")
    final = messages[-1]
    content = final.get("content")
    if isinstance(content, (list, tuple)):
        for block in reversed(content):
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                original = block["text"]
                block["text"] = original + _CONTINUE_TAG
                return original
        raise ChatTemplateError("continue_final_message=True but the final message has no text block to continue.")
    if not isinstance(content, str):
        raise ChatTemplateError("continue_final_message=True but the final message has no string 'content'.")
    final["content"] = content + _CONTINUE_TAG
    return content


def _cut_after_final_message(text: str, final_text: str) -> str:
    tag = _CONTINUE_TAG.strip()
    if tag not in text or final_text.strip() not in text:
        raise ChatTemplateError(
            "continue_final_message=True but the final message does not appear in the rendered chat; the "
            "template drops or rewrites it."
        )
    position = text.rindex(tag)
    if text[position : position + len(_CONTINUE_TAG)] == _CONTINUE_TAG:
        return text[:position]
    # The template trimmed whitespace after the message, so trailing spaces of the message go too.
    return text[:position].rstrip()


class ChatTemplateMixin:
    """``apply_chat_template`` for tokenizers (mixed into ``PreTrainedTokenizerBase``)."""

    chat_template: str | dict[str, str] | None = None

    def get_chat_template(self, chat_template: str | None = None, tools: list | None = None) -> str:
        """The template text to use: ``chat_template`` (a template, or the name of one of the tokenizer's
        templates), else the tokenizer's own (``"tool_use"`` when ``tools`` are given and it has one,
        else ``"default"``)."""
        own = self.chat_template
        if isinstance(own, dict):
            if chat_template is not None:
                return own.get(chat_template, chat_template)
            if tools is not None and "tool_use" in own:
                return own["tool_use"]
            if "default" in own:
                return own["default"]
            raise ChatTemplateError(
                f"This tokenizer has several chat templates and none is named 'default'; pass "
                f"chat_template= one of {sorted(own)}."
            )
        if chat_template is not None:
            return chat_template
        if own is None:
            raise ChatTemplateError(
                f"{type(self).__name__} has no chat template: its tokenizer_config.json has no 'chat_template' "
                f"and there is no chat_template.jinja. Pass chat_template= a Jinja template."
            )
        return own

    def apply_chat_template(
        self,
        conversation,
        tools: list[dict[str, Any]] | None = None,
        documents: list[dict[str, Any]] | None = None,
        chat_template: str | None = None,
        add_generation_prompt: bool = False,
        continue_final_message: bool = False,
        tokenize: bool = True,
        padding: bool | str = False,
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_dict: bool = False,
        tokenizer_kwargs: dict[str, Any] | None = None,
        **template_kwargs,
    ):
        """Format a conversation (a list of ``{"role", "content"}`` dicts), or a batch of them, for the model.

        Args:
            conversation: the messages, or a list of conversations.
            tools / documents: JSON-schema tool descriptions and retrieval documents, for templates that use them.
            chat_template: a template, or the name of one of the tokenizer's templates.
            add_generation_prompt: end with the header that opens an assistant reply.
            continue_final_message: end right after the final message, so the model continues it.
            tokenize: return token ids instead of text. Special tokens come from the template only
                (encoding uses ``add_special_tokens=False``).
            padding, truncation, max_length, return_tensors: as in ``__call__`` (with ``tokenize``).
            return_dict: return the whole ``BatchEncoding`` (with ``attention_mask``) instead of ids.
            tokenizer_kwargs: more arguments for the tokenizer call.
            **template_kwargs: extra variables for the template (the special tokens are already there:
                ``bos_token``, ``eos_token``...).

        Returns:
            The rendered text (or list of texts); with ``tokenize``, its ``input_ids``; with
            ``return_dict`` too, the ``BatchEncoding``.
        """
        if continue_final_message and add_generation_prompt:
            raise ChatTemplateError(
                "continue_final_message and add_generation_prompt cannot both be set: the first continues the "
                "last message, the second opens a new assistant message."
            )
        if isinstance(conversation, (list, tuple)) and not conversation:
            raise ChatTemplateError("apply_chat_template got an empty conversation; pass at least one message.")
        if not isinstance(conversation, (list, tuple)):
            raise TypeError(f"conversation must be a list of message dicts, got {type(conversation).__name__}.")
        is_batched = isinstance(conversation[0], (list, tuple))
        conversations = list(conversation) if is_batched else [conversation]
        for index, chat in enumerate(conversations):
            if not isinstance(chat, (list, tuple)) or not chat:
                raise ChatTemplateError(f"Conversation {index} of the batch is empty or not a list of messages.")

        template = self.get_chat_template(chat_template, tools)
        variables = {**self.special_tokens_map, **template_kwargs}
        rendered = render_chat_template(
            template,
            conversations,
            tools=tools,
            documents=documents,
            add_generation_prompt=add_generation_prompt,
            continue_final_message=continue_final_message,
            **variables,
        )
        text = rendered if is_batched else rendered[0]
        if not tokenize:
            return text
        encoded = self(
            text,
            add_special_tokens=False,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            return_tensors=return_tensors,
            **(tokenizer_kwargs or {}),
        )
        return encoded if return_dict else encoded["input_ids"]
