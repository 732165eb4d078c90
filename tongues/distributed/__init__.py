"""Running one model over several processes with ``torch.distributed``.

- :mod:`tongues.distributed.tensor_parallel`: Megatron-style sharding from each family's ``tp_plan``.
- :mod:`tongues.distributed.loading`: ``from_pretrained(..., tp_plan="auto")`` loads each rank's part.
- :mod:`tongues.distributed.plan`: what each rank holds and sends per token, on paper.
"""
