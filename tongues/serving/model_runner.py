"""Runs the model for the engine: a prefill chunk of one sequence, or one decode over all running rows.

:class:`SlotRunner` keeps every sequence's keys/values in one :class:`~tongues.slot_cache.SlotCache`
(row = ``seq.slot``): a chunk of prompt goes into its row at the row's length, and a decode step
feeds one token per running row through ``forward_step``, each row at its own position.

:class:`RecomputeRunner` is the simpler path for models without a causal cache (XLM, which predicts
the next token at an appended mask token): every step reruns each sequence's whole text, one
sequence at a time, through the model's own ``prepare_inputs_for_generation``. It is exact and
slow (quadratic in the length), and cannot return prompt log-probabilities.

Every call a runner makes on the model or its cache is one :class:`~tongues.serving.distributed.Command`
(integers: row numbers and token ids) run by :meth:`execute`. Under ``torchrun`` rank 0's runner has a
``channel`` and broadcasts each command before running it, and the other ranks replay them with
:func:`~tongues.serving.distributed.follow`; without a channel nothing is sent.
"""

from __future__ import annotations

import inspect

import torch

from .. import native
from ..slot_cache import SlotCache, forward_step
from .distributed import DECODE, HEARTBEAT_SECONDS, IDLE, MOVE, OP_NAMES, PREFILL, PREFILL_ALL, RECOMPUTE, RESET, \
    STOP, Command
from .sequence import Sequence


def uses_causal_cache(model) -> bool:
    """True when the model's forward takes a ``past_key_values`` cache (all but XLM)."""
    return "past_key_values" in inspect.signature(model.forward).parameters


def make_runner(model, max_running: int, max_model_len: int, channel=None):
    """The runner the engine uses for ``model``: the same on every rank, given the same arguments."""
    if uses_causal_cache(model):
        return SlotRunner(model, slots=max_running, capacity=min(max_model_len, 256), channel=channel)
    return RecomputeRunner(model, channel=channel)


class _Runner:
    """What both runners share: each model or cache call is a command, broadcast first when there is a channel."""

    def __init__(self, model, channel) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.channel = channel
        # Seconds the idle engine may wait before calling idle() (None: it may wait for ever).
        self.idle_seconds = HEARTBEAT_SECONDS if channel is not None else None

    def _run(self, command: Command):
        if self.channel is not None:
            self.channel.send(command)
        return self.execute(command)

    def execute(self, command: Command):
        raise NotImplementedError

    def _unknown(self, command: Command):
        raise RuntimeError(f"{type(self).__name__} cannot run the serving command {OP_NAMES[command.op]}")

    def idle(self) -> None:
        """Tell the other ranks rank 0 is still there (a heartbeat), so their wait does not time out."""
        if self.channel is not None:
            self.channel.send(Command(IDLE))

    def close(self) -> None:
        """Release the other ranks (they leave :func:`follow`); no model call can follow."""
        channel, self.channel = self.channel, None
        if channel is not None:
            try:
                channel.send(Command(STOP))
            except (RuntimeError, ValueError):  # a rank already gone (torchrun ended it): nobody to release
                pass


class SlotRunner(_Runner):
    """Prefill chunks and batched decodes over one :class:`SlotCache` of ``slots`` rows."""

    supports_prompt_logprobs = True
    batches_prefill = True  # prompts at the same position prefill in one forward (prefill_rows)

    def __init__(self, model, slots: int, capacity: int, channel=None) -> None:
        super().__init__(model, channel)
        if self.device.type == "cpu":
            native.load()  # the compiled decode attention of the batched steps (built once per machine)
        self.cache = SlotCache(slots=slots, capacity=capacity)

    def prefill(self, seq: Sequence, start: int, stop: int, all_logits: bool) -> torch.Tensor | None:
        """Put ``seq.prompt_ids[start:stop]`` into its row: logits (stop - start or 1, V), fp32."""
        return self._run(Command(PREFILL_ALL if all_logits else PREFILL, seq.slot, 1,
                                 tuple(seq.prompt_ids[start:stop])))

    def prefill_rows(self, seqs: list[Sequence], start: int, stop: int) -> torch.Tensor:
        """Put ``prompt_ids[start:stop]`` of each of ``seqs`` (consecutive rows, each ``start`` long) into
        its row in one forward: the last position's logits (rows, V), fp32. One forward instead of one
        per sequence, so the weights are read (and, for bf16, widened) once per step, not per prompt."""
        first = seqs[0].slot
        assert [seq.slot for seq in seqs] == list(range(first, first + len(seqs))), "rows must be consecutive"
        ids = tuple(token for seq in seqs for token in seq.prompt_ids[start:stop])
        return self._run(Command(PREFILL, first, len(seqs), ids))

    def decode(self, seqs: list[Sequence]) -> torch.Tensor:
        """One token for each running row (``seqs[i].slot == i``): logits (rows, V), fp32."""
        return self._run(Command(DECODE, ids=tuple(seq.output_ids[-1] for seq in seqs)))

    def move(self, src: int, dst: int) -> None:
        if src != dst:
            self._run(Command(MOVE, src, dst))

    def reset(self, row: int) -> None:
        self._run(Command(RESET, row))

    def execute(self, command: Command) -> torch.Tensor | None:
        """Run one command on this rank's model and cache (rank 0's own calls and the followers' replays)."""
        op = command.op
        if op in (PREFILL, PREFILL_ALL):
            rows = max(1, command.b)  # rows a..a+b-1, all of one length; the ids are theirs, row after row
            ids = torch.tensor(command.ids, device=self.device).view(rows, -1)  # (rows, T)
            view = self.cache.view(command.a, command.a + rows)
            if op == PREFILL:
                return forward_step(self.model, ids, view).float()
            T = ids.shape[1]
            out = self.model(ids, attention_mask=view.attention_mask(T).to(self.device),
                             position_ids=view.position_ids(T).to(self.device), past_key_values=view,
                             use_cache=True, logits_to_keep=0, return_dict=True)
            return out.logits[0].float()  # (T, V)
        if op == DECODE:
            ids = torch.tensor([[token] for token in command.ids], device=self.device)  # (rows, 1)
            return forward_step(self.model, ids, self.cache.view(0, len(command.ids))).float()
        if op == MOVE:
            self.cache.move(command.a, command.b)
        elif op == RESET:
            self.cache.reset(command.a)
        elif op != IDLE:
            self._unknown(command)
        return None


class RecomputeRunner(_Runner):
    """The cache-free path: each step reruns every sequence whole (XLM)."""

    supports_prompt_logprobs = False
    batches_prefill = False

    def __init__(self, model, channel=None) -> None:
        super().__init__(model, channel)

    def prefill(self, seq: Sequence, start: int, stop: int, all_logits: bool) -> torch.Tensor | None:
        if stop < len(seq.prompt_ids):
            return None  # nothing is kept between chunks: only the last one runs
        return self._run(Command(RECOMPUTE, ids=tuple(seq.prompt_ids)))[None]

    def decode(self, seqs: list[Sequence]) -> torch.Tensor:
        return torch.stack([self._run(Command(RECOMPUTE, ids=tuple(seq.all_ids))) for seq in seqs])

    def move(self, src: int, dst: int) -> None:
        pass

    def reset(self, row: int) -> None:
        pass

    def execute(self, command: Command) -> torch.Tensor | None:
        if command.op == RECOMPUTE:
            inputs = self.model.prepare_inputs_for_generation(torch.tensor([command.ids], device=self.device))
            return self.model(**inputs, return_dict=True).logits[0, -1].float()
        if command.op != IDLE:
            self._unknown(command)
        return None
