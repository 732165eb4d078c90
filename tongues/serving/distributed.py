"""The serving engine under ``torchrun``: rank 0 serves, the other ranks replay its model steps.

Rank 0 runs the HTTP server, the scheduler and sampling. Every model step its runner takes (a
prefill chunk into a row or into consecutive rows of one length, one decode over rows ``0..r-1``, a
cache row move or reset) is first broadcast as a :class:`Command` of plain integers: an int64 header
``(op, a, b, n)`` and then, when ``n > 0``, the ``n`` token ids. The other ranks run :func:`follow`,
which receives each command and makes the same call on its own shard of the model and its own cache,
so every rank enters the model's all-reduces and all-gathers in the same order. The sharded LM head
gathers the logits on every rank; only rank 0 samples from them.

Nothing but integers crosses the wire (no pickling). While the engine is idle rank 0 sends a
heartbeat every :data:`HEARTBEAT_SECONDS`, so a follower never reaches the process group's timeout
while waiting for work; when the engine stops, rank 0 sends ``STOP`` and the followers return.

Example (every rank, after loading the sharded model)::

    channel = CommandChannel()
    if channel.rank == 0:
        engine = Engine(model, tokenizer, channel=channel).start()   # serves; sends commands
    else:
        follow(make_runner(model, max_running, max_model_len), channel)  # returns on STOP
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

# Operations, as the header's first integer.
STOP, PREFILL, PREFILL_ALL, DECODE, MOVE, RESET, RECOMPUTE, IDLE = range(8)
OP_NAMES = ("STOP", "PREFILL", "PREFILL_ALL", "DECODE", "MOVE", "RESET", "RECOMPUTE", "IDLE")

# Idle rank 0 sends IDLE this often: far below the process group's timeout (30 minutes by default).
HEARTBEAT_SECONDS = 60.0


@dataclass(frozen=True)
class Command:
    """One runner call: ``op`` with two integer arguments (row numbers) and token ids."""

    op: int
    a: int = 0
    b: int = 0
    ids: tuple[int, ...] = ()


class CommandChannel:
    """Broadcasts :class:`Command` from rank 0 over ``group`` (the default group when None)."""

    def __init__(self, group=None) -> None:
        self.group = group
        self.rank = dist.get_rank(group)
        # nccl moves CUDA tensors only; gloo moves CPU ones.
        self.device = (torch.device("cuda", torch.cuda.current_device())
                       if dist.get_backend(group) == "nccl" else torch.device("cpu"))

    def _broadcast(self, tensor: torch.Tensor) -> torch.Tensor:
        src = dist.get_global_rank(self.group, 0) if self.group is not None else 0
        dist.broadcast(tensor, src=src, group=self.group)
        return tensor

    def send(self, command: Command) -> None:
        """Rank 0: hand ``command`` to every other rank."""
        ids = list(command.ids)
        self._broadcast(torch.tensor([command.op, command.a, command.b, len(ids)], dtype=torch.int64,
                                     device=self.device))
        if ids:
            self._broadcast(torch.tensor(ids, dtype=torch.int64, device=self.device))

    def receive(self) -> Command:
        """The other ranks: the next command rank 0 sends."""
        op, a, b, n = self._broadcast(torch.zeros(4, dtype=torch.int64, device=self.device)).tolist()
        ids = ()
        if n > 0:
            ids = tuple(self._broadcast(torch.zeros(n, dtype=torch.int64, device=self.device)).tolist())
        if not 0 <= op < len(OP_NAMES):
            raise RuntimeError(f"rank {self.rank} received an unknown serving command {op} from rank 0")
        return Command(op, a, b, ids)


def follow(runner, channel: CommandChannel) -> int:
    """Replay rank 0's runner calls on this rank's shard until ``STOP``; returns the commands replayed.

    ``runner`` must be built like rank 0's (the same rows and capacity: see
    :func:`~tongues.serving.model_runner.make_runner`), with no channel of its own.
    """
    replayed = 0
    with torch.inference_mode():
        while True:
            command = channel.receive()
            if command.op == STOP:
                return replayed
            runner.execute(command)
            replayed += 1
