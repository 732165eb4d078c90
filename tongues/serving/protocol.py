"""OpenAI's request and response shapes: read a JSON body into engine calls, write engine outputs as JSON.

Every field is read by name with its type and range checked, and a wrong one raises
:class:`~tongues.serving.sampling.ParameterError` naming it (the server answers 400). Fields this
server does not implement are refused rather than ignored, except a few that clients send with
their default values (``user``, ``best_of`` equal to ``n``, ``suffix`` null).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .detokenize import detokenize_incrementally
from .sampling import MAX_LOGPROBS, ParameterError, SamplingParams

MAX_N = 16

COMMON = {"model", "max_tokens", "temperature", "top_p", "top_k", "n", "seed", "stop", "stream", "stream_options",
          "presence_penalty", "frequency_penalty", "repetition_penalty", "ignore_eos", "user", "logit_bias",
          "stop_token_ids", "skip_special_tokens", "min_tokens"}
COMPLETION_FIELDS = COMMON | {"prompt", "logprobs", "echo", "best_of", "suffix"}
CHAT_FIELDS = COMMON | {"messages", "logprobs", "top_logprobs", "max_completion_tokens", "add_generation_prompt",
                        "continue_final_message"}


def _type_name(kinds) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "an object"}
    return " or ".join(names[k] for k in kinds)


class Body:
    """A JSON object whose fields are read (and checked) one by one."""

    def __init__(self, data: Any, allowed: set[str]) -> None:
        if not isinstance(data, dict):
            raise ParameterError(None, f"the request body must be a JSON object; got {type(data).__name__}")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ParameterError(unknown[0], f"'{unknown[0]}' is not a parameter this server supports")
        self.data = data

    def get(self, name: str, kinds: tuple, default: Any = None) -> Any:
        value = self.data.get(name)
        if value is None:
            return default
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ParameterError(name, f"'{name}' must be {_type_name(kinds)}; got {value!r}")
        return value


@dataclass
class Limits:
    """What the server allows, for validation: the served name, the context, the largest ``n``."""

    model_name: str
    max_model_len: int
    max_n: int = MAX_N
    defaults: dict = field(default_factory=dict)  # sampling defaults from the checkpoint's generation_config


SAMPLING_DEFAULTS = ("temperature", "top_p", "top_k", "repetition_penalty")


def generation_defaults(generation_config) -> dict:
    """The request defaults a checkpoint asks for in ``generation_config.json`` (as vLLM reads them).

    ``temperature``, ``top_p``, ``top_k`` and ``repetition_penalty`` left out of a request take the
    checkpoint's values; ``do_sample: false`` there makes the default temperature 0 (greedy).
    """
    defaults = {}
    if generation_config is None:
        return defaults
    for name in SAMPLING_DEFAULTS:
        value = getattr(generation_config, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            defaults[name] = value
    if getattr(generation_config, "do_sample", None) is False:
        defaults["temperature"] = 0.0
    return defaults


def check_model(body: Body, limits: Limits) -> None:
    model = body.get("model", (str,))
    if model is not None and model != limits.model_name:
        raise ParameterError("model", f"the model '{model}' does not exist here; this server serves "
                                      f"'{limits.model_name}' (GET /v1/models)")


def sampling_params(body: Body, limits: Limits, default_max_tokens: int | None, logprobs: int | None,
                    prompt_logprobs: int | None) -> SamplingParams:
    """The common sampling fields of a completion or chat request."""
    logit_bias = {}
    for key, bias in body.get("logit_bias", (dict,), {}).items():
        try:  # JSON object keys are strings: OpenAI's are token ids written in decimal
            token = int(key)
        except ValueError:
            raise ParameterError("logit_bias", f"'logit_bias' keys must be token ids (\"1234\"); got {key!r}") from None
        logit_bias[token] = bias
    n = body.get("n", (int,), 1)
    if not 1 <= n <= limits.max_n:
        raise ParameterError("n", f"'n' must be between 1 and {limits.max_n}; got {n}")
    stop = body.get("stop", (str, list), [])
    if isinstance(stop, str):
        stop = [stop]
    max_tokens = body.get("max_tokens", (int,), None)
    if max_tokens is None:
        max_tokens = body.get("max_completion_tokens", (int,), default_max_tokens)
    defaults = limits.defaults
    temperature = body.get("temperature", (float,), defaults.get("temperature", 1.0))
    if not 0 <= temperature <= 2:
        raise ParameterError("temperature", f"'temperature' must be between 0 and 2; got {temperature}")
    top_k = body.get("top_k", (int,), defaults.get("top_k", 0))
    return SamplingParams(
        max_tokens=max_tokens, temperature=temperature, top_p=body.get("top_p", (float,), defaults.get("top_p", 1.0)),
        top_k=0 if top_k == -1 else top_k, seed=body.get("seed", (int,)), stop=stop,
        stop_token_ids=body.get("stop_token_ids", (list,), []), ignore_eos=body.get("ignore_eos", (bool,), False),
        presence_penalty=body.get("presence_penalty", (float,), 0.0),
        frequency_penalty=body.get("frequency_penalty", (float,), 0.0),
        repetition_penalty=body.get("repetition_penalty", (float,), defaults.get("repetition_penalty", 1.0)),
        logprobs=logprobs,
        prompt_logprobs=prompt_logprobs, n=n, skip_special_tokens=body.get("skip_special_tokens", (bool,), True),
        logit_bias=logit_bias, min_tokens=body.get("min_tokens", (int,), 0))


@dataclass
class CompletionRequest:
    prompts: list[list[int]]
    prompt_texts: list[str]
    params: SamplingParams
    stream: bool
    include_usage: bool
    echo: bool
    logprobs: int | None


def stream_settings(body: Body) -> tuple[bool, bool]:
    stream = body.get("stream", (bool,), False)
    options = body.get("stream_options", (dict,), {})
    unknown = sorted(set(options) - {"include_usage", "continuous_usage_stats"})
    if unknown:
        raise ParameterError("stream_options", f"'stream_options' has no field '{unknown[0]}'")
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise ParameterError("stream_options",
                             f"'stream_options.include_usage' must be a boolean; got {include_usage!r}")
    if options and not stream:
        raise ParameterError("stream_options", "'stream_options' is only allowed with 'stream': true")
    return stream, include_usage


def parse_completion(data: Any, tokenizer, limits: Limits) -> CompletionRequest:
    """A ``/v1/completions`` body: prompts as token ids (and text), settings, streaming and echo flags."""
    body = Body(data, COMPLETION_FIELDS)
    check_model(body, limits)
    if body.get("suffix", (str,)):
        raise ParameterError("suffix", "'suffix' is not supported by this server")
    prompt = data.get("prompt")
    if prompt is None:
        raise ParameterError("prompt", "'prompt' is required")
    prompts: list[list[int]]
    if isinstance(prompt, str):
        prompt = [prompt]
    if not isinstance(prompt, list) or not prompt:
        raise ParameterError("prompt", "'prompt' must be a string, a list of strings, a list of token ids or a list "
                                       "of lists of token ids, and not empty")
    if all(isinstance(p, str) for p in prompt):
        if any(p == "" for p in prompt):
            raise ParameterError("prompt", "'prompt' is empty; give some text")
        prompts = [tokenizer.encode(p) for p in prompt]
        texts = list(prompt)
    elif all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
        prompts, texts = [list(prompt)], None
    elif all(isinstance(p, list) for p in prompt):
        prompts, texts = [list(p) for p in prompt], None
        for p in prompts:
            if not p or not all(isinstance(t, int) and not isinstance(t, bool) for t in p):
                raise ParameterError("prompt", "each list in 'prompt' must be a non-empty list of token ids")
    else:
        raise ParameterError("prompt", "'prompt' mixes types: give strings, or token ids, or lists of token ids")
    if len(prompts) > 64:
        raise ParameterError("prompt", f"'prompt' holds {len(prompts)} prompts; send at most 64 per request")
    for p in prompts:
        if not p:
            raise ParameterError("prompt", "a prompt encodes to no tokens; give some text")
    stream, include_usage = stream_settings(body)
    echo = body.get("echo", (bool,), False)
    logprobs = body.get("logprobs", (int,))
    if logprobs is not None and not 0 <= logprobs <= MAX_LOGPROBS:
        raise ParameterError("logprobs", f"'logprobs' must be between 0 and {MAX_LOGPROBS}; got {logprobs}")
    params = sampling_params(body, limits, 16, logprobs, logprobs if echo and logprobs is not None else None)
    best_of = body.get("best_of", (int,))
    if best_of is not None and best_of != params.n:
        raise ParameterError("best_of", "'best_of' other than 'n' is not supported by this server")
    if params.max_tokens == 0 and not echo:
        raise ParameterError("max_tokens", "'max_tokens' 0 is only meaningful with 'echo': true")
    if texts is None:
        texts = [tokenizer.decode(p) if all(0 <= t < limits_vocab(tokenizer) for t in p) else "" for p in prompts]
    return CompletionRequest(prompts, texts, params, stream, include_usage, echo, logprobs)


def limits_vocab(tokenizer) -> int:
    return len(tokenizer) if hasattr(tokenizer, "__len__") else 1 << 62


@dataclass
class ChatRequest:
    prompt: list[int]
    params: SamplingParams
    stream: bool
    include_usage: bool
    top_logprobs: int | None


def parse_chat(data: Any, tokenizer, limits: Limits) -> ChatRequest:
    """A ``/v1/chat/completions`` body: the conversation through the tokenizer's chat template."""
    body = Body(data, CHAT_FIELDS)
    check_model(body, limits)
    messages = body.get("messages", (list,))
    if not messages:
        raise ParameterError("messages", "'messages' must be a non-empty list of {\"role\", \"content\"} objects")
    conversation = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ParameterError(f"messages[{i}]", f"messages[{i}] must be an object with a string 'role'")
        content = message.get("content")
        if isinstance(content, list):  # OpenAI's content parts: only text parts are served
            if not all(isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
                       for part in content):
                raise ParameterError(f"messages[{i}].content", "only text content parts are supported")
            content = "".join(part["text"] for part in content)
        if not isinstance(content, str):
            raise ParameterError(f"messages[{i}].content", f"messages[{i}].content must be a string")
        conversation.append({"role": message["role"], "content": content})
    stream, include_usage = stream_settings(body)
    logprobs = body.get("logprobs", (bool,), False)
    top = body.get("top_logprobs", (int,))
    if top is not None and not logprobs:
        raise ParameterError("top_logprobs", "'top_logprobs' needs 'logprobs': true")
    if top is not None and not 0 <= top <= MAX_LOGPROBS:
        raise ParameterError("top_logprobs", f"'top_logprobs' must be between 0 and {MAX_LOGPROBS}; got {top}")
    params = sampling_params(body, limits, None, (top or 0) if logprobs else None, None)
    if getattr(tokenizer, "chat_template", None) is None:
        raise ParameterError("messages", "this model's tokenizer has no chat template; use /v1/completions, or "
                                         "start the server with --chat-template FILE")
    try:
        prompt = tokenizer.apply_chat_template(
            conversation, add_generation_prompt=body.get("add_generation_prompt", (bool,), True),
            continue_final_message=body.get("continue_final_message", (bool,), False), tokenize=True)
    except (ValueError, TypeError, KeyError) as err:  # the template's own raise_exception, or a bad role
        raise ParameterError("messages", f"the chat template refused the conversation: {err}") from None
    if hasattr(prompt, "get") and not isinstance(prompt, list):
        prompt = prompt["input_ids"]
    return ChatRequest(list(prompt), params, stream, include_usage, top if logprobs else None)


# -- responses -------------------------------------------------------------------------------------
def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | int | None = None) -> dict:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


class TokenText:
    """Per-token strings and character offsets of a token stream, as OpenAI's completion logprobs report them."""

    def __init__(self, tokenizer, context: list[int] | None = None, start: int = 0) -> None:
        self.tokenizer = tokenizer
        self.ids = list(context or [])
        self.read = len(self.ids)
        self.prefix = max(0, self.read - 5)
        self.offset = start

    def token(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

    def add(self, token_id: int) -> int:
        """The text offset at which ``token_id``'s text begins; advances past it."""
        start = self.offset
        self.ids.append(token_id)
        piece, self.prefix, self.read = detokenize_incrementally(self.tokenizer, self.ids, self.prefix, self.read)
        self.offset += len(piece)
        return start


def completion_logprobs(entries, token_text: TokenText) -> dict:
    """``{"tokens", "token_logprobs", "top_logprobs", "text_offset"}`` for a list of TokenLogprob."""
    tokens, logprobs, tops, offsets = [], [], [], []
    for entry in entries:
        token = token_text.token(entry.token_id)
        tokens.append(token)
        logprobs.append(entry.logprob)
        offsets.append(token_text.add(entry.token_id))
        if entry.logprob is None:
            tops.append(None)
        else:
            top = {token_text.token(t): lp for t, lp in entry.top}
            top.setdefault(token, entry.logprob)  # the chosen token is always listed, as vLLM does
            tops.append(top)
    return {"tokens": tokens, "token_logprobs": logprobs, "top_logprobs": tops, "text_offset": offsets}


def merge_logprobs(into: dict | None, more: dict) -> dict:
    if into is None:
        return more
    for key in into:
        into[key] += more[key]
    return into


def chat_logprobs(entries, tokenizer) -> dict:
    """Chat's ``{"content": [{"token", "logprob", "bytes", "top_logprobs"}]}``."""
    def item(token_id, logprob):
        text = tokenizer.decode([token_id])
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}

    return {"content": [{**item(e.token_id, e.logprob), "top_logprobs": [item(t, lp) for t, lp in e.top]}
                        for e in entries]}
