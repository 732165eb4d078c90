"""The OpenAI-compatible HTTP server: it validates a request, hands it to the engine, and streams back.

Endpoints: ``GET /`` (the playground), ``GET /health``, ``GET /metrics``, ``GET /v1/models``,
``POST /v1/completions``, ``POST /v1/chat/completions``, ``POST /tokenize``, ``POST /detokenize``,
``GET /tokenizer_info``. Errors are OpenAI's error JSON; a bad request is a 400 naming the parameter,
a full queue a 503 with ``Retry-After``. A client that goes away aborts its request (its cache rows
are freed at the next engine step). Streams are server-sent events, ``data: {json}\\n\\n`` each, ending
with ``data: [DONE]\\n\\n``.

Example::

    app = create_app("my-model")
    attach(app, Engine(model, tokenizer).start())   # /health turns 200
    uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import asyncio
import hmac
import json
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import protocol
from .engine import Engine, EngineStopped, RequestFailed, RequestOutput
from .metrics import Metrics
from .sampling import ParameterError
from .scheduler import QueueFull

RETRY_AFTER_SECONDS = 1
MAX_BODY_BYTES = 64 * 2**20  # a request body past this is refused (413) before it is parsed
OPEN_PATHS = {"/", "/health", "/metrics"}


class ServerState:
    """What the handlers share: the engine once loaded (``None`` while loading), limits, metrics, key."""

    def __init__(self, model_name: str, api_key: str | None) -> None:
        self.model_name = model_name
        self.api_key = api_key
        self.engine: Engine | None = None
        self.load_error: str | None = None
        self.metrics = Metrics()
        self.limits: protocol.Limits | None = None


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str, param: str | None = None, code: Any = None,
                 headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.param, self.code, self.headers = status, kind, param, code, headers


def attach(app: FastAPI, engine: Engine) -> None:
    """Serve ``engine`` (started) from ``app``: the server is ready."""
    state: ServerState = app.state.server
    engine.stats = state.metrics
    state.metrics.watch(engine)
    state.limits = protocol.Limits(state.model_name, engine.max_model_len,
                                   min(protocol.MAX_N, engine.scheduler.max_waiting),
                                   protocol.generation_defaults(getattr(engine.model, "generation_config", None)))
    state.engine = engine


def load_failed(app: FastAPI, message: str) -> None:
    app.state.server.load_error = message


class CountRequests:
    """ASGI middleware: counts answered requests by endpoint and status, and checks the Bearer key."""

    def __init__(self, app, state: ServerState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if self.state.api_key and path not in OPEN_PATHS and scope.get("method") != "OPTIONS":
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not hmac.compare_digest(given, f"Bearer {self.state.api_key}"):
                response = JSONResponse(protocol.error_body("a valid API key is required: send 'Authorization: "
                                                            "Bearer <key>'", "authentication_error", None,
                                                            "invalid_api_key"), status_code=401)
                self.state.metrics.requests.labels(path, "401").inc()
                return await response(scope, receive, send)
        status = {"code": 500}

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            endpoint = path if path in KNOWN_PATHS else "other"
            self.state.metrics.requests.labels(endpoint, str(status["code"])).inc()


KNOWN_PATHS = {"/", "/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions", "/tokenize",
               "/detokenize", "/tokenizer_info"}


def create_app(model_name: str, api_key: str | None = None) -> FastAPI:
    """The FastAPI application (not ready until :func:`attach` gives it an engine)."""
    app = FastAPI(title="tongues serve", docs_url=None, redoc_url=None, openapi_url=None)
    state = ServerState(model_name, api_key)
    app.state.server = state
    app.add_middleware(CountRequests, state=state)

    def error_response(status: int, message: str, kind: str, param=None, code=None, headers=None) -> JSONResponse:
        return JSONResponse(protocol.error_body(message, kind, param, code), status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request, err: ApiError):
        return error_response(err.status, str(err), err.kind, err.param, err.code, err.headers)

    @app.exception_handler(ParameterError)
    async def _parameter_error(request, err: ParameterError):
        if err.param == "model" and "does not exist" in str(err):
            return error_response(404, str(err), "invalid_request_error", "model", "model_not_found")
        return error_response(400, str(err), "invalid_request_error", err.param)

    @app.exception_handler(QueueFull)
    async def _queue_full(request, err: QueueFull):
        return error_response(503, str(err), "service_unavailable_error", None, "server_busy",
                              {"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.exception_handler(EngineStopped)
    async def _engine_stopped(request, err: EngineStopped):
        return error_response(503, str(err), "service_unavailable_error", None, "engine_stopped")

    @app.exception_handler(RequestFailed)
    async def _request_failed(request, err: RequestFailed):  # a bug in one request's processing
        return error_response(500, f"internal error: {err}", "internal_error")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, err: StarletteHTTPException):
        message = {404: f"no such endpoint: {request.method} {request.url.path}",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(err.status_code, str(err.detail))
        return error_response(err.status_code, message, "invalid_request_error")

    @app.exception_handler(Exception)
    async def _unexpected(request, err: Exception):  # a bug: say so in OpenAI's shape, never a traceback
        return error_response(500, f"internal error: {type(err).__name__}: {err}", "internal_error")

    def ready() -> Engine:
        if state.engine is None:
            message = state.load_error or "the model is still loading; retry shortly (GET /health says when)"
            raise ApiError(503, message, "service_unavailable_error", code="loading",
                           headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        return state.engine

    # -- plain endpoints ----------------------------------------------------------------------
    @app.get("/")
    async def playground():
        page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(page)

    @app.get("/health")
    async def health():
        if state.engine is not None and state.engine.error is None:
            return JSONResponse({"status": "ok"})
        message = (state.engine.error if state.engine is not None else None) or state.load_error or "loading"
        return JSONResponse({"status": message}, status_code=503)

    @app.get("/metrics")
    async def metrics():
        return Response(state.metrics.text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models():
        engine = ready()
        return {"object": "list", "data": [{"id": state.model_name, "object": "model", "created": protocol.now(),
                                            "owned_by": "tongues", "max_model_len": engine.max_model_len}]}

    @app.get("/tokenizer_info")
    async def tokenizer_info():
        engine = ready()
        tokenizer = engine.tokenizer
        info = {"tokenizer_class": type(tokenizer).__name__, "model_max_length": engine.max_model_len,
                "vocab_size": engine.vocab_size, "eos_token_ids": sorted(engine.end_ids)}
        for name in ("eos_token", "bos_token", "pad_token", "unk_token"):
            value = getattr(tokenizer, name, None)
            info[name] = str(value) if value is not None else None
        template = getattr(tokenizer, "chat_template", None)
        info["chat_template"] = template if isinstance(template, str) else None
        return info

    @app.post("/tokenize")
    async def tokenize(request: Request):
        engine = ready()
        body = protocol.Body(await read_json(request), {"model", "prompt", "messages", "add_special_tokens",
                                                        "add_generation_prompt"})
        protocol.check_model(body, state.limits)
        if "messages" in body.data:
            ids = protocol.parse_chat({"messages": body.data["messages"], "add_generation_prompt":
                                       body.data.get("add_generation_prompt", True)},
                                      engine.tokenizer, state.limits).prompt
        else:
            prompt = body.get("prompt", (str,))
            if prompt is None:
                raise ParameterError("prompt", "give 'prompt' (a string) or 'messages'")
            ids = engine.tokenizer.encode(prompt, add_special_tokens=body.get("add_special_tokens", (bool,), True))
        return {"count": len(ids), "max_model_len": engine.max_model_len, "tokens": list(ids)}

    @app.post("/detokenize")
    async def detokenize(request: Request):
        engine = ready()
        body = protocol.Body(await read_json(request), {"model", "tokens"})
        protocol.check_model(body, state.limits)
        tokens = body.get("tokens", (list,))
        if tokens is None or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
            raise ParameterError("tokens", "'tokens' must be a list of token ids")
        bad = [t for t in tokens if not 0 <= t < engine.vocab_size]
        if bad:
            raise ParameterError("tokens", f"'tokens' has id {bad[0]}, outside the vocabulary "
                                           f"0..{engine.vocab_size - 1}")
        return {"prompt": engine.tokenizer.decode(tokens)}

    # -- generation ---------------------------------------------------------------------------
    @app.post("/v1/completions")
    async def completions(request: Request):
        engine = ready()
        parsed = protocol.parse_completion(await read_json(request), engine.tokenizer, state.limits)
        for prompt in parsed.prompts:
            engine.check_prompt(prompt, parsed.params)
        job = Job(engine, request)
        job.submit(parsed.prompts, parsed.params)
        view = CompletionView(engine.tokenizer, parsed, state.model_name, job)
        if parsed.stream:
            return StreamingResponse(job.stream(view), media_type="text/event-stream")
        return await job.collect(view)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        engine = ready()
        parsed = protocol.parse_chat(await read_json(request), engine.tokenizer, state.limits)
        engine.check_prompt(parsed.prompt, parsed.params, param="messages")
        job = Job(engine, request)
        job.submit([parsed.prompt], parsed.params)
        view = ChatView(engine.tokenizer, parsed, state.model_name, job)
        if parsed.stream:
            return StreamingResponse(job.stream(view), media_type="text/event-stream")
        return await job.collect(view)

    return app


async def read_json(request: Request) -> Any:
    raw = bytearray()
    async for piece in request.stream():
        raw += piece
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes", "invalid_request_error")
    try:
        return json.loads(bytes(raw))
    except ValueError as err:
        raise ParameterError(None, f"the request body is not valid JSON: {err}") from None


class Job:
    """The engine requests of one HTTP request (one per prompt), and the queue their outputs arrive on."""

    def __init__(self, engine: Engine, request: Request) -> None:
        self.engine, self.request = engine, request
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[RequestOutput] = asyncio.Queue()
        self.ids: list[str] = []
        self.n = 1
        self.prompt_tokens = 0
        self.completion_tokens: dict[int, int] = {}
        self.id = protocol.new_id("cmpl")

    def _deliver(self, output: RequestOutput) -> None:  # on the engine thread
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, output)
        except RuntimeError:  # the event loop is gone (server shutting down)
            pass

    def submit(self, prompts: list[list[int]], params) -> None:
        self.n = params.n
        try:
            for i, prompt in enumerate(prompts):
                self.ids.append(self.engine.submit(prompt, params, self._deliver, request_id=f"{self.id}-{i}"))
                self.prompt_tokens += len(prompt)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        for request_id in self.ids:
            self.engine.abort(request_id)

    def choice(self, output: RequestOutput) -> int:
        return self.ids.index(output.request_id) * self.n + output.index

    def usage(self) -> dict:
        return protocol.usage(self.prompt_tokens, sum(self.completion_tokens.values()))

    async def outputs(self):
        """Yield outputs until every choice finished; a finished choice's ``completion_tokens`` is recorded."""
        pending = len(self.ids) * self.n
        while pending:
            output = await self.queue.get()
            if output.finish_reason is not None:
                if output.error:
                    raise (EngineStopped if self.engine.error else RequestFailed)(output.error)
                pending -= 1
                self.completion_tokens[self.choice(output)] = output.completion_tokens
            yield output

    async def collect(self, view) -> dict | Response:
        """The whole answer; aborts if the client goes away while it waits."""
        watcher = asyncio.ensure_future(self._watch_disconnect())
        try:
            async for output in self.outputs():
                view.add(self.choice(output), output)
            return view.response(self.usage())
        finally:
            watcher.cancel()
            self.abort()

    async def _watch_disconnect(self) -> None:
        while True:
            if await self.request.is_disconnected():
                self.abort()  # outputs() then ends with finish_reason "abort"
                return
            await asyncio.sleep(0.25)

    async def stream(self, view):
        """Server-sent events; the ``finally`` runs when the client disconnects, and aborts the request."""
        try:
            for chunk in view.opening_chunks():
                yield sse(chunk)
            async for output in self.outputs():
                for chunk in view.chunks(self.choice(output), output):
                    yield sse(chunk)
            if view.include_usage:
                yield sse(view.usage_chunk(self.usage()))
            yield "data: [DONE]\n\n"
        except EngineStopped as err:
            yield sse(protocol.error_body(str(err), "service_unavailable_error", None, "engine_stopped"))
            yield "data: [DONE]\n\n"
        except RequestFailed as err:
            yield sse(protocol.error_body(f"internal error: {err}", "internal_error"))
            yield "data: [DONE]\n\n"
        finally:
            self.abort()


def sse(payload: dict) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


class CompletionView:
    """Writes ``/v1/completions`` answers and chunks."""

    def __init__(self, tokenizer, parsed: protocol.CompletionRequest, model_name: str, job: Job) -> None:
        self.tokenizer, self.parsed, self.model_name, self.job = tokenizer, parsed, model_name, job
        self.include_usage = parsed.include_usage
        self.created = protocol.now()
        count = len(parsed.prompts) * parsed.params.n
        self.texts = [""] * count
        self.finish = [None] * count
        self.logprobs: list[dict | None] = [None] * count
        self.token_text: list[protocol.TokenText | None] = [None] * count
        self.started = [False] * count

    def _prompt_of(self, choice: int) -> int:
        return choice // self.parsed.params.n

    def _logprobs(self, choice: int, output: RequestOutput) -> dict | None:
        if self.parsed.logprobs is None:
            return None
        p = self._prompt_of(choice)
        entries = output.logprobs
        part = None
        if output.prompt_logprobs is not None:  # echo: the prompt's tokens first, offsets from 0
            part = protocol.completion_logprobs(output.prompt_logprobs, protocol.TokenText(self.tokenizer))
        if self.token_text[choice] is None:
            start = len(self.parsed.prompt_texts[p]) if self.parsed.echo else 0
            self.token_text[choice] = protocol.TokenText(self.tokenizer, self.parsed.prompts[p], start)
        more = protocol.completion_logprobs(entries, self.token_text[choice])
        return protocol.merge_logprobs(part, more)

    def _text(self, choice: int, output: RequestOutput) -> str:
        text = output.text
        if self.parsed.echo and not self.started[choice]:
            text = self.parsed.prompt_texts[self._prompt_of(choice)] + text
        self.started[choice] = True
        return text

    def add(self, choice: int, output: RequestOutput) -> None:
        self.texts[choice] += self._text(choice, output)
        self.logprobs[choice] = protocol.merge_logprobs(self.logprobs[choice], self._logprobs(choice, output)) \
            if self.parsed.logprobs is not None else None
        if output.finish_reason is not None:
            self.finish[choice] = output.finish_reason

    def response(self, usage: dict) -> dict:
        choices = [{"index": i, "text": self.texts[i], "logprobs": self.logprobs[i], "finish_reason": self.finish[i]}
                   for i in range(len(self.texts))]
        return {"id": self.job.id, "object": "text_completion", "created": self.created, "model": self.model_name,
                "choices": choices, "usage": usage}

    def opening_chunks(self):
        return []

    def chunks(self, choice: int, output: RequestOutput):
        text = self._text(choice, output)
        logprobs = self._logprobs(choice, output)
        if text or output.finish_reason is not None or (logprobs and logprobs["tokens"]):
            yield {"id": self.job.id, "object": "text_completion", "created": self.created, "model": self.model_name,
                   "choices": [{"index": choice, "text": text, "logprobs": logprobs,
                                "finish_reason": output.finish_reason}]}

    def usage_chunk(self, usage: dict) -> dict:
        return {"id": self.job.id, "object": "text_completion", "created": self.created, "model": self.model_name,
                "choices": [], "usage": usage}


class ChatView:
    """Writes ``/v1/chat/completions`` answers and chunks."""

    def __init__(self, tokenizer, parsed: protocol.ChatRequest, model_name: str, job: Job) -> None:
        self.tokenizer, self.parsed, self.model_name, self.job = tokenizer, parsed, model_name, job
        self.job.id = protocol.new_id("chatcmpl")
        self.include_usage = parsed.include_usage
        self.created = protocol.now()
        n = parsed.params.n
        self.texts, self.finish, self.entries = [""] * n, [None] * n, [[] for _ in range(n)]

    def add(self, choice: int, output: RequestOutput) -> None:
        self.texts[choice] += output.text
        self.entries[choice] += output.logprobs
        if output.finish_reason is not None:
            self.finish[choice] = output.finish_reason

    def _logprobs(self, entries):
        return protocol.chat_logprobs(entries, self.tokenizer) if self.parsed.top_logprobs is not None else None

    def response(self, usage: dict) -> dict:
        choices = [{"index": i, "message": {"role": "assistant", "content": self.texts[i]},
                    "logprobs": self._logprobs(self.entries[i]), "finish_reason": self.finish[i]}
                   for i in range(len(self.texts))]
        return {"id": self.job.id, "object": "chat.completion", "created": self.created, "model": self.model_name,
                "choices": choices, "usage": usage}

    def _chunk(self, choices: list[dict]) -> dict:
        return {"id": self.job.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model_name, "choices": choices}

    def opening_chunks(self):
        for i in range(self.parsed.params.n):
            yield self._chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                "finish_reason": None}])

    def chunks(self, choice: int, output: RequestOutput):
        if output.text or output.finish_reason is not None or output.logprobs:
            delta = {"content": output.text} if output.text else {}
            yield self._chunk([{"index": choice, "delta": delta, "logprobs": self._logprobs(output.logprobs),
                                "finish_reason": output.finish_reason}])

    def usage_chunk(self, usage: dict) -> dict:
        return {**self._chunk([]), "usage": usage}
