"""The engine: one thread owns the model and loops admit -> prefill chunks -> one batched decode.

Callers (the HTTP server, or Python code through :meth:`Engine.generate`) hand in requests with
:meth:`Engine.submit` from any thread and receive :class:`RequestOutput` increments through a
callback run on the engine thread (keep it short: hand the output to a queue). Nothing but the
engine thread touches the model, the cache or the scheduler's rows; other threads only append to
an inbox under a lock, which the engine drains at the start of each step, so an abort frees its row
at the next step boundary.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from .. import native
from .model_runner import make_runner
from .sampling import ParameterError, SamplingParams, adjust_logits, sample_token, top_logprobs
from .scheduler import QueueFull, Scheduler
from .sequence import Sequence, Status, TokenLogprob

__all__ = ["Engine", "EngineStopped", "QueueFull", "RequestFailed", "RequestOutput", "end_token_ids",
           "context_length"]

DEFAULT_CONTEXT = 2048  # for position schemes without a table (ALiBi): BLOOM's training length


class EngineStopped(RuntimeError):
    """The engine was shut down (or failed): it takes no more requests."""


class RequestFailed(RuntimeError):
    """One request failed inside the engine (its own sampling or text); the engine goes on serving."""


@dataclass
class RequestOutput:
    """What continuation ``index`` of a request added since its last output.

    ``text``/``token_ids``/``logprobs`` are the new part; ``prompt_logprobs`` comes once, with the
    first output, when asked for; ``finish_reason`` is set on the last output ("stop", "length",
    "abort", or "error" with ``error`` saying why).
    """

    request_id: str
    index: int
    text: str
    token_ids: list[int]
    logprobs: list[TokenLogprob] = field(default_factory=list)
    prompt_logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass
class Completion:
    """A whole continuation, as :meth:`Engine.generate` returns it."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    prompt_logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None


def end_token_ids(model) -> set[int]:
    """Every end-of-sequence id of the model: its generation config's and its config's (GLM-4 has three)."""
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config):
        value = getattr(source, "eos_token_id", None) if source is not None else None
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


def context_length(config) -> int:
    """Positions the model was built for (``max_position_embeddings``), or 2048 without a table."""
    for name in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_CONTEXT


def _penalised(params: SamplingParams) -> bool:
    """Whether the request's logits change before sampling (so its greedy token is not the plain argmax)."""
    return (params.repetition_penalty != 1.0 or bool(params.presence_penalty) or bool(params.frequency_penalty)
            or bool(params.logit_bias) or params.min_tokens > 0)


class _Request:
    def __init__(self, request_id: str, prompt_ids: list[int], sequences: list[Sequence], callback) -> None:
        self.id, self.prompt_ids, self.sequences, self.callback = request_id, prompt_ids, sequences, callback
        self.sent_tokens = [0] * len(sequences)
        self.sent_prompt_logprobs = [False] * len(sequences)


class Engine:
    """Continuous batching over one model.

    Args:
        model: a tongues causal LM (eval mode is set); XLM runs on the cache-free path.
        tokenizer: its tokenizer (for text, stop strings and chat).
        max_running: sequences in the cache at once (its rows).
        max_queue: sequences allowed to wait for a row; beyond it :meth:`submit` raises QueueFull.
        chunk_size: prompt tokens prefilled per step, so a long prompt delays others by one chunk.
        max_prefill_wait: steps a new prompt may wait to be prefilled together with others while more
            sequences decode than wait (see :mod:`~tongues.serving.scheduler`; 0: prefill at once).
        arrival_window: seconds an idle engine waits, after a request wakes it, for others to arrive
            before its first step (0: none). Clients that ask again as their answers end arrive a few
            milliseconds apart; gathered, they prefill as one burst instead of the first one decoding
            alone and then stalling through the others' prefill (vLLM's ``--scheduler-delay-factor``
            serves the same end). It adds at most this much to the time to first token of a request
            that finds the server idle. Off by default: a window shorter than the arrivals' spread
            gathers only part of them, and the rest then prefill while the first part decodes
            (measured over HTTP with 32 clients: 20 ms doubled the worst time to first token, 60 ms
            helped; docs/serving.md, "Session 7").
        max_model_len: prompt + output limit (default: the model's context length).
        stats: optional observer with ``request(prompt_tokens)``, ``first_token(seconds)``,
            ``inter_token(seconds)`` and ``finished(generated_tokens)`` (the server's Prometheus metrics).
        channel: under ``torchrun``, rank 0's :class:`~tongues.serving.distributed.CommandChannel`: every
            model step is broadcast to the other ranks, which replay it (``serving.distributed.follow``).
    """

    def __init__(self, model, tokenizer, max_running: int = 16, max_queue: int = 64, chunk_size: int = 64,
                 max_model_len: int | None = None, stats=None, channel=None, max_prefill_wait: int = 4,
                 arrival_window: float = 0.0) -> None:
        for name, value in (("max_running", max_running), ("max_queue", max_queue), ("chunk_size", chunk_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Engine needs a positive integer {name}; got {value!r}")
        if not isinstance(max_prefill_wait, int) or isinstance(max_prefill_wait, bool) or max_prefill_wait < 0:
            raise ValueError(f"Engine needs a non-negative integer max_prefill_wait; got {max_prefill_wait!r}")
        if isinstance(arrival_window, bool) or not isinstance(arrival_window, (int, float)) or not 0 <= arrival_window <= 10:
            raise ValueError(f"Engine needs an arrival_window of 0 to 10 seconds; got {arrival_window!r}")
        self.arrival_window = float(arrival_window)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_model_len = max_model_len or context_length(model.config)
        # Ids the tokenizer can write: embedding tables are often padded past the tokenizer (GLM-4: 151552
        # rows, 151343 tokens). Those ids are refused in prompts and never sampled.
        self.vocab_size = int(model.config.vocab_size)
        if hasattr(tokenizer, "__len__"):
            self.vocab_size = min(self.vocab_size, len(tokenizer))
        self.end_ids = end_token_ids(model)
        self.device = next(model.parameters()).device
        self.runner = make_runner(model, max_running, self.max_model_len, channel)
        self.scheduler = Scheduler(max_running, max_queue, chunk_size, self.runner, max_prefill_wait)
        self.stats = stats
        self._requests: dict[str, _Request] = {}
        self._inbox: list[tuple[str, object]] = []
        self._inbox_sequences = 0
        self._lock = threading.Condition()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.error: str | None = None

    # -- public API (any thread) ----------------------------------------------------------------
    def start(self) -> "Engine":
        """Start the engine thread (returns ``self``)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="tongues-engine", daemon=True)
            self._thread.start()
        return self

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the thread; unfinished requests end with finish_reason "abort"."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def num_running(self) -> int:
        return len(self.scheduler.running) + len(self.scheduler.prefilling)

    @property
    def num_waiting(self) -> int:
        return len(self.scheduler.waiting) + self._inbox_sequences

    def check_prompt(self, prompt_ids, params: SamplingParams, param: str = "prompt") -> list[int]:
        """Validate a prompt's ids against the vocabulary and the context; raise ParameterError naming ``param``."""
        if not isinstance(prompt_ids, (list, tuple)) or not all(
                isinstance(t, int) and not isinstance(t, bool) for t in prompt_ids):
            raise ParameterError(param, f"'{param}' must be a list of token ids")
        if not prompt_ids:
            raise ParameterError(param, f"'{param}' is empty; give at least one token")
        bad = [t for t in prompt_ids if not 0 <= t < self.vocab_size]
        if bad:
            raise ParameterError(param, f"'{param}' has token id {bad[0]}, outside the vocabulary "
                                        f"0..{self.vocab_size - 1}")
        if len(prompt_ids) >= self.max_model_len:
            raise ParameterError(param, f"the prompt has {len(prompt_ids)} tokens; this model's context is "
                                        f"{self.max_model_len}, which leaves no room to generate")
        if params.max_tokens is not None and len(prompt_ids) + params.max_tokens > self.max_model_len:
            raise ParameterError("max_tokens", f"'max_tokens' is {params.max_tokens} but the prompt has "
                                               f"{len(prompt_ids)} tokens and the context is {self.max_model_len}: "
                                               f"ask for at most {self.max_model_len - len(prompt_ids)}")
        bad = [t for t in params.logit_bias if t >= self.vocab_size]
        if bad:
            raise ParameterError("logit_bias", f"'logit_bias' has token id {bad[0]}, outside the vocabulary "
                                               f"0..{self.vocab_size - 1}")
        if params.prompt_logprobs is not None and not self.runner.supports_prompt_logprobs:
            raise ParameterError("echo", "this model (no causal cache: XLM) cannot return prompt log-probabilities")
        return list(prompt_ids)

    def submit(self, prompt_ids: list[int], params: SamplingParams, callback: Callable[[RequestOutput], None],
               request_id: str | None = None) -> str:
        """Queue a request; ``callback`` receives its outputs on the engine thread. Returns the request id.

        Raises:
            ParameterError: a bad prompt or setting (names it).
            QueueFull: too many sequences are already waiting.
            EngineStopped: the engine is shut down.
        """
        prompt_ids = self.check_prompt(prompt_ids, params)
        request_id = request_id or f"req-{next(self._ids)}"
        sequences = [Sequence(request_id, i, prompt_ids, params, params.generator(i, self.device), self.end_ids,
                              self.max_model_len) for i in range(params.n)]
        with self._lock:
            if self._stopping or self.error:
                raise EngineStopped(self.error or "the engine is shut down")
            if self.num_waiting + len(sequences) > self.scheduler.max_waiting:
                raise QueueFull(f"the server is busy: {self.num_waiting} sequences are already waiting "
                                f"(--max-queue {self.scheduler.max_waiting}); retry shortly")
            self._inbox.append(("add", _Request(request_id, prompt_ids, sequences, callback)))
            self._inbox_sequences += len(sequences)
            self._lock.notify()
        if self.stats is not None:
            self.stats.request(len(prompt_ids) * params.n)
        return request_id

    def abort(self, request_id: str) -> None:
        """Cancel a request: its rows are freed at the next step boundary."""
        with self._lock:
            self._inbox.append(("abort", request_id))
            self._lock.notify()

    def generate(self, prompt: str | list[int], params: SamplingParams | None = None,
                 timeout: float | None = None) -> list[Completion]:
        """Blocking convenience: the request's ``n`` completions (text, tokens, logprobs, finish reason)."""
        params = params or SamplingParams()
        ids = self.tokenizer.encode(prompt) if isinstance(prompt, str) else list(prompt)
        outputs: queue.Queue = queue.Queue()
        self.submit(ids, params, outputs.put)
        results = [Completion() for _ in range(params.n)]
        remaining = params.n
        while remaining:
            out = outputs.get(timeout=timeout)
            result = results[out.index]
            result.text += out.text
            result.token_ids += out.token_ids
            result.logprobs += out.logprobs
            if out.prompt_logprobs is not None:
                result.prompt_logprobs = out.prompt_logprobs
            if out.finish_reason is not None:
                if out.error:
                    raise (EngineStopped if self.error else RequestFailed)(out.error)
                result.finish_reason = out.finish_reason
                remaining -= 1
        return results

    # -- the engine thread --------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            with torch.inference_mode():
                while True:
                    with self._lock:
                        while not self._inbox and not len(self.scheduler) and not self._stopping:
                            if not self._lock.wait(self.runner.idle_seconds):
                                self.runner.idle()  # under torchrun: a heartbeat to the other ranks
                        if self._stopping:
                            break
                        if not len(self.scheduler) and self.arrival_window:
                            # idle until now: let near-simultaneous arrivals join before the first step
                            deadline = time.monotonic() + self.arrival_window
                            while not self._stopping and (left := deadline - time.monotonic()) > 0:
                                self._lock.wait(left)
                        inbox, self._inbox = self._inbox, []
                        self._drain(inbox)
                    if len(self.scheduler):
                        self.step()
        except Exception as err:  # report to every caller instead of dying silently
            self.error = f"the engine stopped: {type(err).__name__}: {err}"
            raise
        finally:
            try:
                self.runner.close()  # under torchrun: the other ranks leave their follower loop
            finally:
                self._end_all("abort" if self.error is None else "error")

    def _drain(self, inbox) -> None:
        for kind, item in inbox:
            if kind == "add":
                self._inbox_sequences -= len(item.sequences)
                self._requests[item.id] = item
                self.scheduler.add(item.sequences)  # room was checked in submit
            elif item in self._requests:
                request = self._requests[item]
                for seq in request.sequences:
                    if not seq.finished:
                        seq.finish("abort")
                        self.scheduler.remove(seq)
                self._emit(request)

    def _end_all(self, reason: str) -> None:
        with self._lock:
            self._drain([entry for entry in self._inbox if entry[0] == "add"])
            self._inbox = []
        for request in list(self._requests.values()):
            for seq in request.sequences:
                if not seq.finished:
                    seq.finish(reason)
            self._emit(request)

    def step(self) -> None:
        """One engine step: prefill this step's chunks, then decode every running sequence once."""
        touched: dict[str, _Request] = {}
        for group, start, stop in self._prefill_groups(self.scheduler.schedule()):
            # Siblings whose prompt was copied in earlier this step lead a group, never follow one.
            group = [seq for seq in group if seq.status is Status.PREFILLING and seq.num_prefilled == start]
            if not group:
                continue
            seq = group[0]
            want_prompt_logprobs = seq.params.prompt_logprobs is not None
            if len(group) > 1:
                logits = self.runner.prefill_rows(group, start, stop)
            else:
                logits = self.runner.prefill(seq, start, stop, want_prompt_logprobs)
            for row, seq in enumerate(group):
                seq.num_prefilled = stop
                if want_prompt_logprobs:
                    self._isolated(seq, self._record_prompt_logprobs, seq, start, logits)
                touched[seq.request_id] = self._requests[seq.request_id]
                if seq.finished:  # failed: free its row now, so the rows after it keep their order
                    self.scheduler.remove(seq)
                    continue
                if stop == len(seq.prompt_ids):
                    last = logits[row] if len(group) > 1 else logits[-1]
                    self._start_decoding(seq, last)
                    # The request's other continuations (n > 1) admitted right after it share the prompt:
                    # copy its cache row instead of prefilling the same tokens again.
                    while self.scheduler.prefilling and self._shares_prompt(seq, self.scheduler.prefilling[0]):
                        sibling = self.scheduler.prefilling[0]
                        self.runner.move(seq.slot, sibling.slot)
                        sibling.num_prefilled = seq.num_prefilled
                        sibling.prompt_logprobs = list(seq.prompt_logprobs)
                        self._start_decoding(sibling, last)
        self._retire()
        running = self.scheduler.running
        if running and not all(seq.num_prefilled == len(seq.prompt_ids) and seq.output_ids for seq in running):
            raise RuntimeError("a running sequence has no token to decode")
        if running:
            logits = self.runner.decode(running)
            greedy = self._greedy_tokens(running, logits)
            for row, seq in enumerate(list(running)):
                self._isolated(seq, self._sample, seq, logits[row], greedy[row])
                touched[seq.request_id] = self._requests[seq.request_id]
            self._retire()
        for request in touched.values():
            self._emit(request)

    def _prefill_groups(self, plan):
        """This step's chunks, as (sequences, start, stop): chunks of the same span in consecutive rows of
        different requests go together (one forward), when the runner can and no prompt logprobs are asked."""
        groups: list[tuple[list[Sequence], int, int]] = []
        for seq, start, stop in plan:
            if groups and self.runner.batches_prefill and seq.params.prompt_logprobs is None:
                group, group_start, group_stop = groups[-1]
                last = group[-1]
                if (group_start, group_stop) == (start, stop) and last.slot + 1 == seq.slot and \
                        last.request_id != seq.request_id and last.params.prompt_logprobs is None:
                    group.append(seq)  # (a request's own siblings stay apart: they get a copy of its row)
                    continue
            groups.append(([seq], start, stop))
        return groups

    def _greedy_tokens(self, seqs: list[Sequence], logits: torch.Tensor) -> list[int | None]:
        """One argmax over the rows whose token is the plain argmax (greedy, no penalty); None for the others."""
        plain = [row for row, seq in enumerate(seqs) if seq.params.greedy and not _penalised(seq.params)]
        tokens: list[int | None] = [None] * len(seqs)
        if plain:
            index = torch.tensor(plain) if len(plain) < len(seqs) else slice(None)
            for row, token in zip(plain, native.argmax(logits[index, :self.vocab_size]).tolist()):
                tokens[row] = token
        return tokens

    def _start_decoding(self, seq: Sequence, last_logits: torch.Tensor) -> None:
        """``seq``'s prompt is in its row: it joins the decoding rows with its first token."""
        self.scheduler.prefilled(seq)
        if seq.params.max_tokens == 0:
            seq.finish("length")
        else:
            self._isolated(seq, self._sample, seq, last_logits)

    @staticmethod
    def _shares_prompt(seq: Sequence, other: Sequence) -> bool:
        return other.request_id == seq.request_id and other.num_prefilled == 0 and not other.finished

    def _retire(self) -> None:
        # Last rows first: a finished last row leaves without being moved into another's place.
        finished = [s for s in self.scheduler.running + self.scheduler.prefilling if s.finished]
        for seq in sorted(finished, key=lambda s: s.slot, reverse=True):
            self.scheduler.remove(seq)

    def _isolated(self, seq: Sequence, work, *args) -> None:
        """Run one sequence's host-side work; a failure ends that sequence ("error"), not the engine."""
        try:
            work(*args)
        except Exception as err:  # noqa: BLE001 - reported to that request's caller
            seq.error = f"{type(err).__name__}: {err}"
            seq.finish("error")

    def _sample(self, seq: Sequence, logits: torch.Tensor, token: int | None = None) -> None:
        """Pick ``seq``'s next token from its (V,) logits (``token``: already picked, by the batched argmax)."""
        params = seq.params
        if token is None:
            writable = logits
            if logits.shape[-1] > self.vocab_size:  # never sample an id the tokenizer cannot write
                writable = logits.clone()
                writable[self.vocab_size:] = float("-inf")
            adjusted = adjust_logits(writable, params, seq.prompt_ids, seq.output_ids, seq.end_ids)
            token = sample_token(adjusted, params, seq.generator)
        logprob = None
        if params.logprobs is not None:
            log_probs = logits.log_softmax(-1)
            logprob = TokenLogprob(token, float(log_probs[token]),
                                   top_logprobs(log_probs[:self.vocab_size], params.logprobs))
        now = time.monotonic()
        if self.stats is not None:
            if seq.first_token_time is None:
                self.stats.first_token(now - seq.arrival)
            else:
                self.stats.inter_token(now - seq.last_token_time)
        if seq.first_token_time is None:
            seq.first_token_time = now
        seq.last_token_time = now
        seq.append(token, self.tokenizer, logprob)

    def _record_prompt_logprobs(self, seq: Sequence, start: int, logits: torch.Tensor) -> None:
        """Log-probabilities of prompt tokens ``start..`` from this chunk's (T, V) logits (and the last chunk's row)."""
        k = seq.params.prompt_logprobs
        log_probs = logits.log_softmax(-1)  # (T, V): row j predicts token start + j + 1
        if start == 0:
            seq.prompt_logprobs.append(TokenLogprob(seq.prompt_ids[0], None, []))
        else:
            carry = seq.carry_logprobs
            token = seq.prompt_ids[start]
            seq.prompt_logprobs.append(TokenLogprob(token, float(carry[token]),
                                                     top_logprobs(carry[:self.vocab_size], k)))
        for j in range(log_probs.shape[0] - 1):
            token = seq.prompt_ids[start + j + 1]
            seq.prompt_logprobs.append(TokenLogprob(token, float(log_probs[j, token]),
                                                     top_logprobs(log_probs[j, :self.vocab_size], k)))
        seq.carry_logprobs = log_probs[-1]

    def _emit(self, request: _Request) -> None:
        done = True
        for seq in request.sequences:
            sent = request.sent_tokens[seq.index]
            if seq.finished:
                seq.flush(self.tokenizer)
            text = seq.take_text()
            new_tokens = seq.output_ids[sent:]
            prompt_logprobs = None
            if seq.params.prompt_logprobs is not None and not request.sent_prompt_logprobs[seq.index] and (
                    len(seq.prompt_logprobs) == len(seq.prompt_ids) or seq.finished):
                prompt_logprobs = seq.prompt_logprobs
                request.sent_prompt_logprobs[seq.index] = True
            final = seq.finished and not seq.final_sent
            if not (text or new_tokens or prompt_logprobs is not None or final):
                done = done and seq.finished
                continue
            if final:
                seq.final_sent = True
                if self.stats is not None:
                    self.stats.finished(len(seq.output_ids))
            request.sent_tokens[seq.index] = len(seq.output_ids)
            request.callback(RequestOutput(
                request.id, seq.index, text, new_tokens,
                seq.logprobs[sent:] if seq.params.logprobs is not None else [], prompt_logprobs,
                seq.finish_reason if final else None, len(seq.prompt_ids), len(seq.output_ids),
                (seq.error or self.error) if final and seq.finish_reason == "error" else None))
            done = done and seq.finished
        if done:
            self._requests.pop(request.id, None)
