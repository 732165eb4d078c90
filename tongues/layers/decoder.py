"""The forward every family shares: inputs -> cache -> embedding -> blocks -> final norm -> output.

A family's bare model is its embedding, its block and its checkpoint names. It mixes in
:class:`Decoder`, names its block list and final norm, and writes one hook, ``embed``::

    class BloomModel(Decoder, BloomPreTrainedModel):
        embeddings_name, blocks_name, final_norm_name = "word_embeddings", "h", "ln_f"

        def embed(self, input_ids, inputs_embeds, attention_mask, cache, past, **inputs):
            x = ...                           # (B, T, D)
            return x, {"bias": ...}           # keywords every block receives

Every block is called as ``block(x, cache, head_mask, output_attentions, **keywords)`` and returns
``(x, attention_probs)`` or ``(x, attention_probs, cross_attention_probs)``; a block's attention
calls ``cache.update(k, v, layer_idx)``.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable, ClassVar, Iterable

import torch

from torch import nn

from ..outputs import BaseModelOutputWithPast
from .attention import layer_head_masks
from .inputs import Collector, check_inputs, prepare_cache, returned_cache


def finish(output, return_dict: bool | None, config):
    """Return ``output`` itself, or its tuple form when ``return_dict`` (or the config's) is False."""
    return_dict = config.return_dict if return_dict is None else return_dict
    return output if return_dict else output.to_tuple()


def checkpointed(module: Callable, *args: Any, **kwargs: Any):
    """Run ``module`` under activation checkpointing (recomputed in backward instead of stored)."""
    from torch.utils.checkpoint import checkpoint

    return checkpoint(module, *args, use_reentrant=False, **kwargs)


class PerLayer(tuple):
    """A block keyword with one value per layer (``cross_head_mask``), not one shared by all."""


def run_layers(blocks: Iterable[Callable], x: torch.Tensor, collect: Collector, cache, head_masks: list,
               output_attentions: bool, checkpointing: bool = False, skip: Callable[[], bool] | None = None,
               **keywords: Any) -> torch.Tensor:
    """Run ``x`` (B, T, D) through ``blocks`` in order; returns the last block's output (B, T, D).

    ``head_masks`` holds one entry per block (``layer_head_masks``); ``PerLayer`` keywords are split
    the same way, the others go to every block. With ``checkpointing`` each block is recomputed in
    backward and gets no cache (it would be filled twice). ``skip()``, asked before each block,
    drops it (LayerDrop). The collector records each block's input and attention maps.
    """
    for i, block in enumerate(blocks):
        collect.add_hidden(x)
        if skip is not None and skip():
            continue
        kwargs = {k: v[i] if isinstance(v, PerLayer) else v for k, v in keywords.items()}
        if checkpointing:
            out = checkpointed(block, x, None, head_masks[i], output_attentions, **kwargs)
        else:
            out = block(x, cache, head_masks[i], output_attentions, **kwargs)
        collect.add_attention(out[1], out[2] if len(out) > 2 else None)
        x = out[0]
    return x


class PreNormBlock(nn.Module):
    """The pre-norm residual block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``.

    ``names`` are the checkpoint's attribute names of the four modules given to ``__init__`` (norm1,
    attention, norm2, mlp). Keywords (bias, RoPE's cos/sin) go to the attention.
    """

    names: ClassVar[tuple[str, str, str, str]] = ("input_layernorm", "self_attn", "post_attention_layernorm", "mlp")

    def __init__(self, norm1: nn.Module, attention: nn.Module, norm2: nn.Module, mlp: nn.Module) -> None:
        super().__init__()
        for name, module in zip(self.names, (norm1, attention, norm2, mlp)):
            setattr(self, name, module)

    def forward(self, x, cache, head_mask, output_attentions, **keywords):
        norm1, attention, norm2, mlp = (getattr(self, name) for name in self.names)
        h, probs = attention(norm1(x), cache, head_mask, output_attentions, **keywords)
        x = x + h
        return x + mlp(norm2(x)), probs


class Decoder:
    """Mixin for a family's bare model (a ``PreTrainedModel``): the shared forward around ``embed``.

    Declarations: ``embeddings_name`` (the token embedding's checkpoint name), ``blocks_name`` (the
    block list's), ``final_norm_name`` (``None`` for post-norm stacks), ``output_class``. Hooks with defaults: ``prepare_cache``,
    ``returned_cache``, ``blocks``. ``config.layerdrop`` (when present) drops whole layers in training.
    """

    embeddings_name: ClassVar[str] = "embed_tokens"
    blocks_name: ClassVar[str] = "layers"
    final_norm_name: ClassVar[str | None] = "norm"
    output_class: ClassVar[type] = BaseModelOutputWithPast
    # Some references return ``cross_attentions=()`` with ``output_attentions`` even without cross-attention.
    empty_cross_attentions: ClassVar[bool] = False

    def get_input_embeddings(self):
        return getattr(self, self.embeddings_name)

    def set_input_embeddings(self, value):
        setattr(self, self.embeddings_name, value)

    def embed(self, input_ids, inputs_embeds, attention_mask, cache, past: int, **inputs):
        """``(x (B, T, D), keywords for every block)``: the family's embedding, positions and masks."""
        raise NotImplementedError

    def prepare_cache(self, past_key_values, use_cache: bool, **inputs):
        return prepare_cache(past_key_values, use_cache)

    def returned_cache(self, cache, use_cache: bool, legacy: bool):
        return returned_cache(cache, use_cache, legacy)

    def blocks(self) -> Iterable[Callable]:
        return getattr(self, self.blocks_name)

    def run_decoder(self, input_ids=None, inputs_embeds=None, attention_mask=None, past_key_values=None,
                    head_mask=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                    return_dict=None, **inputs):
        """The bare forward: check inputs, resolve flags, run the blocks, normalise, package the output.

        ``inputs`` are the family's own arguments (``position_ids``, ``langs``, ``encoder_hidden_states``
        ...), handed to ``prepare_cache`` and ``embed``.
        """
        config = self.config
        check_inputs(input_ids, inputs_embeds, config.vocab_size, config.hidden_size)
        checkpointing = self.gradient_checkpointing and self.training
        # Layers skipped by LayerDrop would leave holes in the cache, so training with it caches nothing.
        layerdrop = getattr(config, "layerdrop", 0.0) if self.training else 0.0
        use_cache = getattr(config, "use_cache", False) if use_cache is None else use_cache
        use_cache = use_cache and not checkpointing and not layerdrop > 0
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        cross = inputs.get("encoder_hidden_states") is not None
        collect = Collector(config.output_hidden_states if output_hidden_states is None else output_hidden_states,
                            output_attentions, cross_attentions=output_attentions and cross)
        cache, legacy = self.prepare_cache(past_key_values, use_cache, **inputs)
        past = cache.get_seq_length() if cache is not None else 0
        x, keywords = self.embed(input_ids, inputs_embeds, attention_mask, cache, past, **inputs)
        head_masks = layer_head_masks(head_mask, config.num_hidden_layers, config.num_attention_heads)
        skip = (lambda: bool(torch.rand([]) < layerdrop)) if layerdrop > 0 else None
        x = run_layers(self.blocks(), x, collect, cache, head_masks, output_attentions, checkpointing, skip,
                       **keywords)
        if self.final_norm_name is not None:
            x = getattr(self, self.final_norm_name)(x)
        collect.add_hidden(x)
        values = {"last_hidden_state": x, "past_key_values": self.returned_cache(cache, use_cache, legacy),
                  "hidden_states": collect.hidden, "attentions": collect.attentions,
                  "cross_attentions": collect.cross}
        if collect.cross is None and output_attentions and self.empty_cross_attentions:
            values["cross_attentions"] = ()
        names = {f.name for f in fields(self.output_class)}
        out = self.output_class(**{k: v for k, v in values.items() if k in names})
        return finish(out, return_dict, config)

