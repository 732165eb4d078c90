"""``GenerationMixin``: ``model.generate(...)`` for causal language models.

The contract a model keeps (tongues models keep it through ``PreTrainedModel``):

- ``self.config`` with ``vocab_size`` and the special token ids; ``self.generation_config``
  (``None`` -> built from the config); ``self.device``.
- ``self(input_ids=..., attention_mask=..., past_key_values=cache, use_cache=True,
  return_dict=True, ...)`` returns an object with ``.logits`` (B, T, V) and ``.past_key_values``.
  ``position_ids``, ``cache_position`` and ``logits_to_keep`` are passed only when ``forward``
  names them.
- Optional hooks: ``prepare_inputs_for_generation`` (what one forward receives) and
  ``_max_positions()`` (the longest prompt learned positions allow; ``None`` when unbounded).

What ``generate`` does, in the reference's order: resolve the generation config (argument or the
model's, then kwargs, then :data:`GENERATION_DEFAULTS`), check the inputs, infer the attention
mask from padding, derive position ids from it, expand rows for beams / multiple return
sequences, compute the length limits, build processors and stopping criteria, then run
:func:`~tongues.generation.search.sample_search` or :func:`~tongues.generation.search.beam_search`.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from typing import Any, Callable

import torch

from .. import native
from ..cache import Cache, DynamicCache, check_memory
from ..slot_cache import SlotCache
from .configuration import GENERATION_DEFAULTS, GenerationConfig
from .processors import build_logits_processors
from .search import beam_search, sample_search
from .stopping import build_stopping_criteria

# The largest max_new_tokens we accept: beyond it a typo is far likelier than a real request.
MAX_NEW_TOKENS_LIMIT = 1_000_000
# Positions a generate call preallocates per row at most; its cache grows past them if needed.
MAX_PREALLOCATED_POSITIONS = 8192
# Model kwargs `generate` accepts even when `forward` does not name them (they are filtered out).
_ALWAYS_ACCEPTED = ("output_attentions", "output_hidden_states")


def _forward_signature(model) -> tuple[frozenset[str], bool]:
    """(names of ``forward``'s parameters, whether it takes ``**kwargs``), cached per class."""
    cls = type(model)
    cached = cls.__dict__.get("_generation_forward_signature")
    if cached is None:
        params = inspect.signature(model.forward).parameters
        names = frozenset(params)
        var_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        cached = (names, var_kwargs)
        setattr(cls, "_generation_forward_signature", cached)
    return cached


def _as_tensor_ids(value, device) -> torch.Tensor | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return value.to(device)
    return torch.tensor(value, dtype=torch.long, device=device)


class GenerationMixin:
    """Adds :meth:`generate` and :meth:`compute_transition_scores` to a causal language model."""

    _is_generation_mixin = True

    # -- hooks a model may override ----------------------------------------------------------
    def _max_positions(self) -> int | None:
        """Longest sequence the model's learned positions cover; ``None`` when unbounded (ALiBi, RoPE)."""
        return None

    def prepare_inputs_for_generation(
        self,
        input_ids: torch.Tensor,
        next_sequence_length: int | None = None,
        past_key_values: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        is_first_iteration: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The keyword arguments of one forward during generation.

        ``input_ids`` (B, T_total) is cut to its last ``next_sequence_length`` tokens (the ones not
        yet cached); ``position_ids`` are cut the same way; ``attention_mask`` stays whole
        (past + new). ``cache_position`` is added when ``forward`` names it. Remaining kwargs
        (``use_cache``, ``logits_to_keep`` ...) pass through.
        """
        if next_sequence_length is not None:
            input_ids = input_ids[:, -next_sequence_length:]
        T = input_ids.shape[1]
        names, _ = _forward_signature(self)
        inputs: dict[str, Any] = {"input_ids": input_ids.clone(memory_format=torch.contiguous_format)}
        if past_key_values is not None:
            inputs["past_key_values"] = past_key_values
        if position_ids is not None:
            inputs["position_ids"] = position_ids[..., -T:].clone(memory_format=torch.contiguous_format)
        token_type_ids = kwargs.pop("token_type_ids", None)
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids[..., -T:].clone(memory_format=torch.contiguous_format)
        if attention_mask is not None:
            inputs["attention_mask"] = attention_mask
        if "cache_position" in names:
            past = past_key_values.get_seq_length() if isinstance(past_key_values, Cache) else 0
            inputs["cache_position"] = torch.arange(past, past + T, device=input_ids.device)
        for key, value in kwargs.items():
            if key != "labels" and key not in inputs:
                inputs[key] = value
        return inputs

    def _forward_for_generation(self, model_inputs: dict[str, Any]):
        """Call ``forward`` with the arguments it accepts (all of them when it takes ``**kwargs``)."""
        names, var_kwargs = _forward_signature(self)
        if not var_kwargs:
            model_inputs = {k: v for k, v in model_inputs.items() if k in names}
        if var_kwargs or "return_dict" in names:
            model_inputs["return_dict"] = True
        device = getattr(self, "device", None)
        if isinstance(device, torch.device) and device.type != "meta":
            model_inputs = {
                k: v.to(device) if isinstance(v, torch.Tensor) and v.device != device else v
                for k, v in model_inputs.items()
            }
        return self(**model_inputs)

    # -- generate ----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        inputs: torch.Tensor | None = None,
        generation_config: GenerationConfig | None = None,
        logits_processor: list | None = None,
        stopping_criteria: list | None = None,
        prefix_allowed_tokens_fn: Callable[[int, torch.Tensor], list[int]] | None = None,
        streamer=None,
        **kwargs: Any,
    ):
        """Generate token ids after the prompt ``inputs`` (B, T) (``input_ids=`` works too).

        Args:
            inputs: prompt ids (B, T), left-padded for batches; ``None`` starts from ``bos_token_id``.
            generation_config: base settings; defaults to the model's ``generation_config``.
            logits_processor / stopping_criteria: extra callables, appended to (or replacing
                same-typed) built ones.
            prefix_allowed_tokens_fn: ``fn(batch_id, row_ids) -> allowed ids`` constraint.
            streamer: receives ``put(ids)`` with the prompt then each new token, and ``end()``.
            **kwargs: GenerationConfig fields (``max_new_tokens=``, ``num_beams=`` ...) and model
                inputs (``attention_mask=``, ``past_key_values=`` ...).

        Returns:
            ``(B * num_return_sequences, T_total)`` ids, or a ``GenerateDecoderOnlyOutput`` /
            ``GenerateBeamDecoderOnlyOutput`` when ``return_dict_in_generate=True``.

        Raises:
            ValueError / TypeError naming the argument: unknown kwargs, ids outside the
            vocabulary, empty input, a mask of the wrong shape, impossible lengths ...
        """
        config, model_kwargs, has_default_max_length = self._resolve_generation_config(generation_config, kwargs)
        self._check_model_kwargs(model_kwargs)
        if streamer is not None and config.num_beams > 1:
            raise ValueError("`streamer` cannot be used with beam search; set num_beams=1 to stream.")
        self._check_unsupported(config)

        # 1. Inputs and special tokens.
        input_ids = self._prompt_ids(inputs, model_kwargs, config)
        device = input_ids.device
        batch_size = input_ids.shape[0]
        has_mask = model_kwargs.get("attention_mask") is not None
        eos_token_id = _as_tensor_ids(config.eos_token_id, device)
        if eos_token_id is not None and eos_token_id.dim() == 0:
            eos_token_id = eos_token_id.unsqueeze(0)
        pad_token_id = _as_tensor_ids(config.pad_token_id, device)
        if pad_token_id is None and eos_token_id is not None:
            # Finished rows need a filler: the reference falls back to the first EOS id.
            pad_token_id = eos_token_id[0]
        self._check_prompt(input_ids, model_kwargs)
        if pad_token_id is not None and batch_size > 1:
            mask = model_kwargs.get("attention_mask")
            right_padded = (
                bool((mask[:, -1] == 0).any()) if mask is not None else bool((input_ids[:, -1] == pad_token_id).any())
            )
            if right_padded:
                warnings.warn(
                    "Right padding detected in a batch for a decoder-only model: new tokens would follow pad "
                    "tokens. Pad on the left (tokenizer.padding_side = 'left') for correct results.",
                    UserWarning,
                    stacklevel=2,
                )

        # 2. Attention mask (inferred from padding) and position ids (from the mask).
        names, _ = _forward_signature(self)
        if not has_mask and "attention_mask" in names:
            model_kwargs["attention_mask"] = self._infer_attention_mask(input_ids, pad_token_id, eos_token_id)
        if model_kwargs.get("position_ids") is None and "position_ids" in names:
            model_kwargs["position_ids"] = self._position_ids_for_generation(input_ids, model_kwargs)
        # An all-ones mask carries no information: like the reference, drop it so the model takes
        # its no-padding path; remember its length for resuming from a cache.
        mask_length = None
        mask = model_kwargs.get("attention_mask")
        if mask is not None and bool((mask == 1).all()):
            mask_length = mask.shape[1]
            model_kwargs["attention_mask"] = None

        # 3. One row per beam / per returned sequence.
        expand = max(config.num_beams, config.num_return_sequences)
        input_ids, model_kwargs = self._expand_for_generation(input_ids, model_kwargs, expand)
        if streamer is not None:
            streamer.put(input_ids.cpu())

        # 4. Lengths.
        prompt_length = input_ids.shape[1]
        self._set_lengths(config, prompt_length, has_default_max_length)
        if "logits_to_keep" in names and "logits_to_keep" not in model_kwargs:
            model_kwargs["logits_to_keep"] = 1
        self._check_lengths(config, prompt_length, has_default_max_length)

        # 5. Cache (its final size checked against free memory before decoding starts).
        self._prepare_cache(config, model_kwargs, input_ids.shape[0])
        if model_kwargs.get("past_key_values") is not None:
            self._check_cache_memory(input_ids.shape[0], config.max_length, device)

        # 6. Processors and stopping criteria.
        mask = model_kwargs.get("attention_mask")
        padding_lengths = (mask != 0).int().argmax(dim=1) if mask is not None else None
        processors = build_logits_processors(
            config, prompt_length, eos_token_id, padding_lengths, prefix_allowed_tokens_fn,
            list(logits_processor) if logits_processor else None, device,
        )
        stopping = build_stopping_criteria(
            config, eos_token_id, getattr(self.config, "max_position_embeddings", None),
            list(stopping_criteria) if stopping_criteria else None,
        )
        model_kwargs["use_cache"] = config.use_cache

        # 7. Decode.
        if config.num_beams > 1:
            return beam_search(
                self, input_ids, processors, stopping, config, model_kwargs, eos_token_id, pad_token_id, mask_length
            )
        return sample_search(
            self, input_ids, processors, stopping, config, model_kwargs, pad_token_id, streamer, mask_length
        )

    # -- generate's steps --------------------------------------------------------------------
    def _resolve_generation_config(self, generation_config, kwargs):
        """Config precedence: kwargs > ``generation_config`` argument > model's config > defaults."""
        if generation_config is not None and not isinstance(generation_config, GenerationConfig):
            raise TypeError(
                f"generation_config must be a GenerationConfig; got {type(generation_config).__name__}. "
                "Pass settings as keyword arguments instead, e.g. generate(ids, max_new_tokens=20)."
            )
        model_config = getattr(self, "generation_config", None)
        if model_config is None:
            model_config = GenerationConfig.from_model_config(self.config)
        has_default_max_length = (
            kwargs.get("max_length") is None
            and (generation_config is None or generation_config.max_length is None)
            and model_config.max_length is None
        )
        config = copy.deepcopy(generation_config) if generation_config is not None else GenerationConfig()
        config.update(**model_config.to_dict(), defaults_only=True, allow_custom_entries=True)
        config.update(**GENERATION_DEFAULTS, defaults_only=True)
        model_kwargs = config.update(**kwargs)
        if config.output_attentions:
            model_kwargs["output_attentions"] = True
        if config.output_hidden_states:
            model_kwargs["output_hidden_states"] = True
        return config, model_kwargs, has_default_max_length

    def _check_model_kwargs(self, model_kwargs: dict[str, Any]) -> None:
        """Every leftover kwarg must be a model input; a typo in a generation flag lands here."""
        accepted = set(inspect.signature(self.prepare_inputs_for_generation).parameters)
        if "kwargs" in accepted or "model_kwargs" in accepted:
            accepted |= _forward_signature(self)[0]
        accepted |= {"input_ids", *_ALWAYS_ACCEPTED}
        unused = [key for key, value in model_kwargs.items() if value is not None and key not in accepted]
        if unused:
            raise ValueError(
                f"generate() got arguments that are neither GenerationConfig fields nor inputs of "
                f"{type(self).__name__}.forward: {unused} (check for typos)."
            )
        if model_kwargs.get("inputs_embeds") is not None:
            raise ValueError("generate() takes token ids; `inputs_embeds` is not supported by tongues generation.")

    @staticmethod
    def _check_unsupported(config: GenerationConfig) -> None:
        if config.stop_strings is not None:  # the reference reads stop strings through tokenizer=
            raise ValueError("`stop_strings` (which needs tokenizer=) is not supported by tongues generate; pass "
                             "stopping_criteria=[your criterion], or use `tongues generate --stop`.")
        for name in ("watermarking_config", "assistant_model"):
            if getattr(config, name, None) is not None:
                raise ValueError(f"`{name}` is not supported by tongues generate; unset it.")
        if config.guidance_scale is not None and config.guidance_scale != 1:
            raise ValueError(f"`guidance_scale`={config.guidance_scale} (classifier-free guidance) is not supported.")
        if config.token_healing:
            raise ValueError("`token_healing` is not supported by tongues generate; unset it.")
        if config.prefill_chunk_size is not None:
            raise ValueError("`prefill_chunk_size` (chunked prefill) is not supported by tongues generate; unset it.")

    def _prompt_ids(self, inputs, model_kwargs, config) -> torch.Tensor:
        from_kwargs = model_kwargs.pop("input_ids", None)
        if inputs is not None and from_kwargs is not None:
            raise ValueError("Pass the prompt once: either as `inputs` or as `input_ids=`, not both.")
        inputs = inputs if inputs is not None else from_kwargs
        if inputs is None:
            if config.bos_token_id is None:
                raise ValueError("No prompt given and no `bos_token_id` to start from: pass input_ids.")
            batch_size = 1
            for value in model_kwargs.values():
                if isinstance(value, torch.Tensor):
                    batch_size = value.shape[0]
                    break
            device = getattr(self, "device", torch.device("cpu"))
            return torch.full((batch_size, 1), config.bos_token_id, dtype=torch.long, device=device)
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(f"input_ids must be a torch.Tensor of token ids; got {type(inputs).__name__}")
        if inputs.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise TypeError(f"input_ids must hold integer token ids; got dtype {inputs.dtype}")
        if inputs.dim() == 1:
            raise ValueError(
                f"input_ids must be 2-D (batch, sequence); got shape {tuple(inputs.shape)}. Use input_ids[None] for one prompt."
            )
        if inputs.dim() != 2:
            raise ValueError(f"input_ids must be 2-D (batch, sequence); got shape {tuple(inputs.shape)}")
        if inputs.shape[0] == 0 or inputs.shape[1] == 0:
            raise ValueError(f"input_ids is empty (shape {tuple(inputs.shape)}): give at least one token per row.")
        return inputs.long()

    def _check_prompt(self, input_ids: torch.Tensor, model_kwargs: dict[str, Any]) -> None:
        vocab_size = getattr(self.config, "vocab_size", None)
        if bool((input_ids < 0).any()):
            raise ValueError(f"input_ids holds negative token ids (min {int(input_ids.min())}); ids must be >= 0.")
        if vocab_size is not None and bool((input_ids >= vocab_size).any()):
            raise ValueError(
                f"input_ids holds token id {int(input_ids.max())}, outside the model's vocabulary of {vocab_size} "
                "(ids must be < config.vocab_size). Was the prompt encoded with another tokenizer?"
            )
        mask = model_kwargs.get("attention_mask")
        if mask is not None:
            if not isinstance(mask, torch.Tensor):
                raise TypeError(f"attention_mask must be a torch.Tensor; got {type(mask).__name__}")
            if mask.dim() != 2:
                raise ValueError(f"attention_mask passed to generate must be 2-D (batch, sequence); got shape {tuple(mask.shape)}")
            if mask.shape != input_ids.shape and not (
                model_kwargs.get("past_key_values") is not None and mask.shape[0] == input_ids.shape[0]
                and mask.shape[1] >= input_ids.shape[1]
            ):
                raise ValueError(
                    f"attention_mask has shape {tuple(mask.shape)} but input_ids has shape {tuple(input_ids.shape)}; "
                    "they must match."
                )
        limit = self._max_positions()
        if limit is not None and input_ids.shape[1] > limit:
            raise ValueError(
                f"The prompt has {input_ids.shape[1]} tokens but {type(self).__name__} has learned positions for "
                f"only {limit} (config.max_position_embeddings); shorten the prompt."
            )

    @staticmethod
    def _infer_attention_mask(input_ids, pad_token_id, eos_token_id) -> torch.Tensor:
        """Mask out pad tokens -- unless pad is also an EOS id (then a pad may be real text) or absent."""
        ones = torch.ones(input_ids.shape[:2], dtype=torch.long, device=input_ids.device)
        if pad_token_id is None:
            return ones
        pad_present = bool(torch.isin(input_ids, pad_token_id).any())
        pad_is_eos = eos_token_id is not None and bool(torch.isin(eos_token_id, pad_token_id).any())
        if pad_present and not pad_is_eos:
            return input_ids.ne(pad_token_id).long()
        return ones

    @staticmethod
    def _position_ids_for_generation(input_ids, model_kwargs) -> torch.Tensor:
        """Positions count real tokens only: left padding does not shift a row (``position_ids_from_mask``)."""
        from ..layers.masks import position_ids_from_mask

        mask = model_kwargs.get("attention_mask")
        if mask is not None:
            return position_ids_from_mask(mask)
        cache = model_kwargs.get("past_key_values")
        past = cache.get_seq_length() if isinstance(cache, Cache) else 0
        return torch.arange(input_ids.shape[1] + past, dtype=torch.long, device=input_ids.device).unsqueeze(0)

    @staticmethod
    def _expand_for_generation(input_ids, model_kwargs, expand: int):
        """Repeat every row ``expand`` times (beams, or several samples of one prompt): (B, ...) -> (B * expand, ...)."""
        if expand == 1:
            return input_ids, model_kwargs
        input_ids = input_ids.repeat_interleave(expand, dim=0)
        for key, value in model_kwargs.items():
            if isinstance(value, torch.Tensor):
                dim = 1 if key == "position_ids" and value.dim() == 3 else 0
                model_kwargs[key] = value.repeat_interleave(expand, dim=dim)
        return input_ids, model_kwargs

    def _set_lengths(self, config, prompt_length, has_default_max_length) -> None:
        """``max_new_tokens`` / ``min_new_tokens`` become total lengths; an unset max_length means 20 new tokens."""
        if config.max_new_tokens is not None:
            config.max_length = config.max_new_tokens + prompt_length
        elif has_default_max_length:
            config.max_length = config.max_length + prompt_length
            limit = getattr(self.config, "max_position_embeddings", None)
            if limit is not None:
                config.max_length = min(config.max_length, limit)
        if config.min_new_tokens is not None:
            config.min_length = config.min_new_tokens + prompt_length

    def _check_lengths(self, config, prompt_length, has_default_max_length) -> None:
        # Learned positions bound the whole sequence: the last token is never fed back, so a prompt
        # may grow to one more than the longest input. A default length is cut there; an explicit one
        # that goes further is refused now rather than failing deep in the forward mid-generation.
        limit = self._max_positions()
        if limit is not None and config.max_length > limit + 1:
            if has_default_max_length and config.max_new_tokens is None:
                config.max_length = limit + 1
            else:
                raise ValueError(
                    f"max_length={config.max_length} (the prompt's {prompt_length} tokens + new tokens) goes beyond "
                    f"what {type(self).__name__}'s learned positions allow (config.max_position_embeddings): "
                    f"ask for at most {limit + 1 - prompt_length} new tokens (max_new_tokens)."
                )
        if config.max_new_tokens is not None and config.max_new_tokens > MAX_NEW_TOKENS_LIMIT:
            raise ValueError(
                f"max_new_tokens={config.max_new_tokens} is beyond the supported {MAX_NEW_TOKENS_LIMIT:,}; "
                "is it a typo?"
            )
        if config.max_length - prompt_length > MAX_NEW_TOKENS_LIMIT:
            raise ValueError(
                f"max_length={config.max_length} asks for over {MAX_NEW_TOKENS_LIMIT:,} new tokens; is it a typo?"
            )
        if has_default_max_length and config.max_new_tokens is None:
            warnings.warn(
                f"Using the default max_length (= {config.max_length}, i.e. 20 new tokens) to bound generation; "
                "set max_new_tokens to control it.",
                UserWarning,
                stacklevel=3,
            )
        if prompt_length >= config.max_length:
            raise ValueError(
                f"The prompt has {prompt_length} tokens but max_length is {config.max_length}: nothing would be "
                "generated. Raise max_length or, better, set max_new_tokens."
            )
        if config.min_length is not None and config.min_length > config.max_length:
            warnings.warn(
                f"min_length ({config.min_length}) exceeds the maximum length ({config.max_length}); generation "
                "stops at the maximum.",
                UserWarning,
                stacklevel=3,
            )

    def _prepare_cache(self, config, model_kwargs, rows: int) -> None:
        past = model_kwargs.get("past_key_values")
        if past is not None:
            if isinstance(past, (tuple, list)):
                model_kwargs["past_key_values"] = DynamicCache.from_legacy_cache(past)
            elif not isinstance(past, Cache):
                raise TypeError(
                    f"past_key_values must be a tongues Cache or a legacy tuple of (key, value); got {type(past).__name__}"
                )
            return
        if not config.use_cache or "past_key_values" not in _forward_signature(self)[0]:
            return
        # Greedy search and sampling decode in place into a preallocated cache, one row per sequence
        # (no per-step torch.cat of the whole cache); beam search reorders rows every step and keeps
        # a DynamicCache. Capped: a huge max_length must not reserve memory up front (rows grow if needed).
        if config.num_beams == 1 and self._can_decode_into_slot_cache():
            capacity = max(1, min(config.max_length or 1, MAX_PREALLOCATED_POSITIONS))
            if self.device.type == "cpu":
                # tongues' C++ kernels (decode attention, decoding's products): batched decoding builds them
                # once per machine; one row uses a finished build if there is one, and never waits for a build
                native.load(build=rows > 1)
            model_kwargs["past_key_values"] = SlotCache(slots=rows, capacity=capacity).view(0, rows)
            return
        model_kwargs["past_key_values"] = DynamicCache()

    def _can_decode_into_slot_cache(self) -> bool:
        """Whether every attention layer writes through ``Cache.update`` (tongues models say so; see
        ``PreTrainedModel``). Other models implementing the contract decode into a ``DynamicCache``."""
        return False

    def _kv_cache_bytes(self, rows: int, positions: int) -> int | None:
        """Bytes a full KV cache of ``rows`` x ``positions`` takes (keys + values of every layer);
        ``None`` when the config does not say how many layers / channels it has."""
        config = self.config
        layers = getattr(config, "num_hidden_layers", None)
        heads = getattr(config, "num_attention_heads", None)
        hidden = getattr(config, "hidden_size", None)
        if not isinstance(layers, int) or not isinstance(heads, int) or not heads:
            return None
        head_dim = getattr(config, "head_dim", None) or (hidden // heads if isinstance(hidden, int) else None)
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        if not isinstance(head_dim, int) or not isinstance(kv_heads, int):
            return None
        try:
            parameter = next(self.parameters())
            # SlotCache keeps bf16/fp16 keys and values of CPU models widened to fp32 (tongues/slot_cache.py)
            element = 4 if parameter.device.type == "cpu" else parameter.element_size()
        except (StopIteration, AttributeError):
            element = 4
        return 2 * layers * rows * kv_heads * head_dim * positions * element

    def _check_cache_memory(self, rows: int, max_length: int, device) -> None:
        """Raise ``MemoryError`` before decoding when the cache would outgrow free memory (tongues.cache.check_memory)."""
        needed = self._kv_cache_bytes(rows, max_length)
        if needed is not None:
            check_memory(
                needed,
                f"generate's KV cache ({self.config.num_hidden_layers} layers x {rows} rows x {max_length} positions)",
                device,
            )

    # -- scores ------------------------------------------------------------------------------
    def compute_transition_scores(
        self,
        sequences: torch.Tensor,
        scores: tuple[torch.Tensor, ...],
        beam_indices: torch.Tensor | None = None,
        normalize_logits: bool = False,
    ) -> torch.Tensor:
        """The score of each generated token, (B', new_tokens); 0 after a beam hypothesis ended.

        ``sequences``/``scores``/``beam_indices`` come from a ``return_dict_in_generate=True``
        output. With ``normalize_logits`` the per-step scores are log-softmaxed first. For beam
        search, ``sum / new_length ** length_penalty`` of the result gives ``sequences_scores``.
        """
        if beam_indices is None:
            beam_indices = torch.arange(scores[0].shape[0], device=sequences.device).view(-1, 1)
            beam_indices = beam_indices.expand(-1, len(scores))
        vocab_size = scores[0].shape[-1]
        stacked = torch.stack(scores).reshape(len(scores), -1).transpose(0, 1)  # (B' * V, steps)
        if normalize_logits:
            stacked = stacked.reshape(-1, vocab_size, stacked.shape[-1])
            stacked = torch.nn.functional.log_softmax(stacked, dim=1)
            stacked = stacked.reshape(-1, stacked.shape[-1])
        ended = beam_indices < 0
        longest = (1 - ended.long()).sum(-1).max()
        beam_indices = beam_indices.clone()[:, :longest]
        ended = ended[:, :longest]
        beam_indices[ended] = 0
        rows = beam_indices * vocab_size
        cut = sequences.shape[-1] - longest
        transition = stacked.gather(0, sequences[:, cut:] + rows)
        transition[ended] = 0
        return transition
