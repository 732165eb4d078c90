"""Which sequences get a cache row, which prefill a chunk and which decode, step by step.

Rows are kept contiguous so that one :meth:`~tongues.slot_cache.SlotCache.view` covers every
decoding sequence: rows ``0..len(running)-1`` decode, the rows after them prefill, in arrival order.
When a sequence leaves, the last decoding row moves into its place and the prefilling rows shift
down by one (``rows.move``), so the layout stays ``[running | prefilling | free]``.

Each step prefills at most ``chunk_size`` prompt tokens in total, in arrival order, so a long
prompt delays the decoding sequences by at most one chunk per step; a prompt that finishes its
prefill joins the running rows at once (it is the first prefilling row, right after them). When no
sequence is decoding (a burst arrives at an idle engine), nobody waits on the step, so every
admitted row may prefill one chunk in it (the engine runs equal chunks of consecutive rows as one
forward). The same holds while fewer rows decode than prefill (as text-generation-inference's
``waiting_served_ratio``): the many waiting for their first token outweigh the few waiting for their
next, and one large prefill reads the weights once where many small ones would read them again.

A burst meets a hold too, when the few rows still decoding all reach their ``max_tokens`` within
``max_prefill_wait`` steps: they finish at their own pace and the burst then prefills into an idle
batch. Clients that ask again as their answer ends arrive a few steps apart; without this, the
burst's large prefill step sat between the last tokens of the stragglers (a 630 ms inter-token gap
against 60-90 ms, in one run of four; docs/serving.md, "Session 7").

While more rows decode than prefill, a prompt that has not started its prefill is held for at most
``max_prefill_wait`` steps (text-generation-inference's ``max_waiting_tokens``, there 20): a separate
prefill forward of even one short prompt costs every decoding row about a decode step (on 2 cores, a
32-token prompt added 120 ms to a 100 ms step of 15 rows), so prompts arriving one by one into a busy
batch wait a few steps for company, or for the decoding rows to thin out, and then go in together.
It trades a few steps of time to first token for the inter-token latency of every other request
(docs/serving.md, "Session 5").
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from .sequence import Sequence, Status


class QueueFull(RuntimeError):
    """The admission queue is full: try again later (HTTP 503 with Retry-After)."""


class RowMover(Protocol):
    def move(self, src: int, dst: int) -> None: ...
    def reset(self, row: int) -> None: ...


class Scheduler:
    """Admission (bounded queue), row assignment and the per-step plan.

    Args:
        max_running: cache rows, so sequences prefilling or decoding at once.
        max_waiting: sequences that may wait for a row; more raise :class:`QueueFull`.
        chunk_size: prompt tokens prefilled per step, over all prefilling sequences.
        rows: moves and frees cache rows (the model runner).
        max_prefill_wait: steps a prompt may be held before its prefill starts, while more rows decode
            than prefill (0: never held).
    """

    def __init__(self, max_running: int, max_waiting: int, chunk_size: int, rows: RowMover,
                 max_prefill_wait: int = 0) -> None:
        self.max_running, self.max_waiting, self.chunk_size = max_running, max_waiting, chunk_size
        self.max_prefill_wait = max_prefill_wait
        self.rows = rows
        self.held_steps = 0  # steps the first prefilling sequence has been held (it has not started)
        self.waiting: deque[Sequence] = deque()
        self.prefilling: list[Sequence] = []
        self.running: list[Sequence] = []

    def __len__(self) -> int:
        return len(self.waiting) + len(self.prefilling) + len(self.running)

    def add(self, sequences: list[Sequence]) -> None:
        """Queue the sequences of one request, all or none."""
        if len(self.waiting) + len(sequences) > self.max_waiting:
            raise QueueFull(f"the server is busy: {len(self.waiting)} sequences are already waiting "
                            f"(--max-queue {self.max_waiting}); retry shortly")
        self.waiting.extend(sequences)

    def schedule(self) -> list[tuple[Sequence, int, int]]:
        """Admit waiting sequences into free rows; return this step's prefill chunks (seq, start, stop)."""
        while self.waiting and len(self.running) + len(self.prefilling) < self.max_running:
            seq = self.waiting.popleft()
            seq.slot = len(self.running) + len(self.prefilling)
            seq.status = Status.PREFILLING
            self.prefilling.append(seq)
        plan, budget = [], self.chunk_size
        # The first prompt has not started and may still be held (the holds below).
        holdable = bool(self.prefilling) and self.prefilling[0].num_prefilled == 0 and \
            self.held_steps < self.max_prefill_wait
        if len(self.running) < len(self.prefilling):
            if holdable and self.running and self._running_end_within(self.max_prefill_wait - self.held_steps):
                self.held_steps += 1  # the few decoding rows end within the hold: let them finish first
                return plan
            # Fewer sequences wait on this step for their next token than for their first (a burst of
            # arrivals; at an idle engine, nobody decodes at all): a chunk for every prefilling row.
            budget = self.chunk_size * len(self.prefilling)
        elif holdable:
            self.held_steps += 1  # newcomers into a busy batch wait a few steps for company
            return plan
        self.held_steps = 0
        for seq in self.prefilling:
            if budget == 0:
                break
            remaining = len(seq.prompt_ids) - seq.num_prefilled
            take = min(budget, self.chunk_size, remaining)
            plan.append((seq, seq.num_prefilled, seq.num_prefilled + take))
            budget -= take
            if take < remaining:
                break  # prompts finish their prefill in row order: the rows after this one wait
        return plan

    def _running_end_within(self, steps: int) -> bool:
        """Whether every decoding row reaches its ``max_tokens`` within ``steps`` steps."""
        return all(seq.params.max_tokens is not None and seq.params.max_tokens - len(seq.output_ids) <= steps
                   for seq in self.running)

    def prefilled(self, seq: Sequence) -> None:
        """``seq``'s whole prompt is in the cache: it decodes from now on."""
        assert self.prefilling[0] is seq, "prompts finish their prefill in row order"
        self.prefilling.pop(0)
        seq.status = Status.RUNNING
        self.running.append(seq)

    def remove(self, seq: Sequence) -> None:
        """Take ``seq`` out (finished or aborted) and free its row, keeping the rows contiguous."""
        if seq in self.waiting:
            self.waiting.remove(seq)
            return
        used = len(self.running) + len(self.prefilling)
        if seq in self.running:
            i = self.running.index(seq)
            last = self.running.pop()
            if last is not seq:
                self.rows.move(last.slot, seq.slot)
                last.slot = seq.slot
                self.running[i] = last
            shifted = self.prefilling
        elif seq in self.prefilling:
            i = self.prefilling.index(seq)
            self.prefilling.pop(i)
            shifted = self.prefilling[i:]
            if i == 0:
                self.held_steps = 0  # the next prompt's hold starts afresh
        else:
            return
        for other in shifted:  # ascending rows: each moves down into the row just freed
            self.rows.move(other.slot, other.slot - 1)
            other.slot -= 1
        self.rows.reset(used - 1)
        seq.slot = None
