"""Generation for Flax models: greedy, sampling and beam search as ``lax.while_loop``s over a
fixed-size cache, compiled once with ``jax.jit`` (``trace=False`` runs the same steps eagerly, for
debugging).

Every search returns ``sequences`` of shape (B, max_length): the prompt, then new tokens, then
``pad_token_id`` after a row's ``eos_token_id`` (the reference's Flax convention).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from . import require_flax

require_flax()

import flax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from ..frameworks.generation import decode_settings  # noqa: E402
from ..frameworks.outputs import ModelOutput  # noqa: E402

Array = Any

# A score low enough that a beam never wins, yet finite (the value tongues.generation.search uses).
BEAM_BLOCKED = -1.0e9


@flax.struct.dataclass
class FlaxGreedySearchOutput(ModelOutput):
    sequences: Array = None


@flax.struct.dataclass
class FlaxSampleOutput(ModelOutput):
    sequences: Array = None


@flax.struct.dataclass
class FlaxBeamSearchOutput(ModelOutput):
    sequences: Array = None
    scores: Array = None


# The GenerationConfig fields Flax generate implements; any other set to a non-default value is refused.
SUPPORTED_SETTINGS = frozenset({"max_length", "max_new_tokens", "min_length", "do_sample", "temperature", "top_k",
                                "top_p", "num_beams", "length_penalty", "early_stopping", "pad_token_id",
                                "eos_token_id", "bos_token_id"})


def _while(cond, body, state, trace: bool):
    if trace:
        return lax.while_loop(cond, body, state)
    while cond(state):
        state = body(state)
    return state


def warp_logits(logits: Array, temperature: float, top_k: int, top_p: float) -> Array:
    """Temperature, then top-k, then nucleus (top-p) filtering of (N, V) fp32 logits (removed -> -inf)."""
    if temperature is not None and temperature != 1.0:
        logits = logits / temperature
    if top_k:
        kth = lax.top_k(logits, min(top_k, logits.shape[-1]))[0][:, -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if top_p is not None and top_p < 1.0:
        sorted_logits = jnp.sort(logits, axis=-1)[:, ::-1]
        cumulative = jnp.cumsum(jax.nn.softmax(sorted_logits, axis=-1), axis=-1)
        # keep the smallest prefix whose mass reaches top_p (always at least the best token)
        remove_sorted = (cumulative - jax.nn.softmax(sorted_logits, axis=-1)) >= top_p
        cutoff = jnp.min(jnp.where(remove_sorted, jnp.inf, sorted_logits), axis=-1, keepdims=True)
        logits = jnp.where(logits < cutoff, -jnp.inf, logits)
    return logits


class FlaxGenerationMixin:
    """``generate`` for Flax causal LMs built on :class:`tongues.flax.modeling.FlaxPreTrainedModel`."""

    # Families whose forward takes position_ids (XGLM) get them from the padding mask.
    takes_position_ids = False

    def prepare_inputs_for_generation(self, input_ids, max_length: int, attention_mask=None) -> dict:
        """Model inputs of the first step: a fresh cache of ``max_length`` and the mask over it (B, max_length)."""
        B, T = input_ids.shape
        past_key_values = self.init_cache(B, max_length)
        # Slots not generated yet count as real: the causal mask hides them until they are written.
        mask = jnp.ones((B, max_length), dtype="i4")
        if attention_mask is not None:
            mask = lax.dynamic_update_slice(mask, attention_mask.astype("i4"), (0, 0))
        inputs = {"past_key_values": past_key_values, "attention_mask": mask}
        if self.takes_position_ids:
            prompt_mask = jnp.ones((B, T), "i4") if attention_mask is None else attention_mask.astype("i4")
            inputs["position_ids"] = jnp.maximum(jnp.cumsum(prompt_mask, axis=-1) - 1, 0)
        return inputs

    def update_inputs_for_generation(self, outputs, inputs: dict) -> dict:
        inputs = dict(inputs, past_key_values=outputs.past_key_values)
        if self.takes_position_ids:
            inputs["position_ids"] = inputs["position_ids"][:, -1:] + 1
        return inputs

    def generate(self, input_ids, generation_config=None, prng_key=None, trace: bool = True, params=None,
                 attention_mask=None, **kwargs):
        """Greedy (default), sampling (``do_sample=True``) or beam search (``num_beams > 1``).

        Args:
            input_ids: (B, T) prompt, left-padded when rows differ in length (pass ``attention_mask``).
            generation_config: a ``tongues.GenerationConfig``; keyword arguments override it, it overrides
                the model's (see ``tongues.frameworks.generation``).
            prng_key: ``jax.random.PRNGKey`` for sampling (default PRNGKey(0)).
            trace: compile the loop with ``jax.jit`` (True) or run it step by step.
            params: parameters to use instead of ``self.params``.
            max_length / max_new_tokens, do_sample, temperature, top_k, top_p, num_beams, length_penalty,
            early_stopping, pad_token_id, eos_token_id, min_length: as in PyTorch ``generate``.
        """
        input_ids = jnp.asarray(input_ids, dtype="i4")
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
        s = decode_settings(self, generation_config, kwargs, input_ids.shape[1], SUPPORTED_SETTINGS, "Flax")
        max_length = s.max_length
        params = self.params if params is None else params
        if attention_mask is not None:
            attention_mask = jnp.asarray(attention_mask, dtype="i4")
        prng_key = jax.random.PRNGKey(0) if prng_key is None else prng_key
        if s.num_beams > 1:
            if s.do_sample:
                raise ValueError("beam sampling (num_beams > 1 with do_sample=True) is not supported by Flax models")
            run = partial(self._beam_search, max_length=max_length, s=s, trace=trace)
            fn = jax.jit(run) if trace else run
            return fn(input_ids, attention_mask, params)
        run = partial(self._decode, max_length=max_length, s=s, trace=trace)
        fn = jax.jit(run) if trace else run
        sequences = fn(input_ids, attention_mask, params, prng_key)
        return FlaxSampleOutput(sequences=sequences) if s.do_sample else FlaxGreedySearchOutput(sequences=sequences)

    def _next_logits(self, logits, cur_len, s):
        logits = logits.astype(jnp.float32)
        if s.min_length and s.eos_token_ids:
            logits = jnp.where(cur_len < s.min_length, logits.at[:, list(s.eos_token_ids)].set(-jnp.inf), logits)
        return logits

    def _decode(self, input_ids, attention_mask, params, prng_key, *, max_length, s, trace):
        """Greedy or sampling loop; returns (B, max_length) token ids."""
        B, T = input_ids.shape
        pad, eos = s.pad_token_id, jnp.asarray(s.eos_token_ids or (-1,), "i4")
        sequences = lax.dynamic_update_slice(jnp.full((B, max_length), pad, dtype="i4"), input_ids, (0, 0))
        inputs = self.prepare_inputs_for_generation(input_ids, max_length, attention_mask)

        def step(state):
            cur_len, sequences, tokens, done, inputs, key = state
            out = self(tokens, params=params, **inputs)
            logits = self._next_logits(out.logits[:, -1], cur_len, s)
            if s.do_sample:
                key, sub = jax.random.split(key)
                logits = warp_logits(logits, s.temperature, s.top_k, s.top_p)
                next_token = jax.random.categorical(sub, logits, axis=-1).astype("i4")
            else:
                next_token = jnp.argmax(logits, axis=-1).astype("i4")
            next_token = jnp.where(done, pad, next_token)
            done = done | jnp.isin(next_token, eos)
            sequences = lax.dynamic_update_slice(sequences, next_token[:, None], (0, cur_len))
            inputs = self.update_inputs_for_generation(out, inputs)
            return cur_len + 1, sequences, next_token[:, None], done, inputs, key

        def not_finished(state):
            cur_len, _, _, done = state[:4]
            return ~((cur_len == max_length) | jnp.all(done))

        # The prompt step has another shape than the one-token steps: run it outside the loop.
        state = step((jnp.array(T), sequences, input_ids, jnp.zeros(B, bool), inputs, prng_key))
        state = _while(not_finished, step, state, trace)
        return state[1]

    def _beam_search(self, input_ids, attention_mask, params, *, max_length, s, trace):
        """Beam search with the rules of tongues' PyTorch ``beam_search`` (so tokens match it).

        Each step keeps the 2K best continuations over all beams: the best K that did not stop run
        on; stopped ones among the top K (end-of-sequence, or ``max_length`` reached) join the K best
        finished hypotheses, scored ``sum log p / new_tokens ** length_penalty``. A row stops taking
        hypotheses when it is full under ``early_stopping=True`` or when its best running beam can no
        longer beat its worst finished one.
        """
        B, T = input_ids.shape
        K = s.num_beams
        pad, alpha, early = s.pad_token_id, s.length_penalty, s.early_stopping
        eos = jnp.asarray(s.eos_token_ids or (-1,), "i4")
        blocked = jnp.float32(BEAM_BLOCKED)
        # The reference fills ended hypotheses with pad, or eos when pad is 0 (falsy); kept for identical output.
        fill = pad if pad != 0 else s.eos_token_id

        def flat(x):  # (B, K, ...) -> (B*K, ...)
            return x.reshape((B * K,) + x.shape[2:])

        def gather(x, index):  # pick along axis 1 of (B, N, ...) with index (B, M)
            return jnp.take_along_axis(x, index.reshape(index.shape + (1,) * (x.ndim - 2)), axis=1)

        def gather_cache(tree, index):  # reorder every (B*K, ...) cache leaf by beam index (B, K)
            def take(x):
                if x.ndim == 0:
                    return x
                return flat(gather(x.reshape((B, K) + x.shape[1:]), index))
            return jax.tree_util.tree_map(take, tree)

        tiled_ids = flat(jnp.broadcast_to(input_ids[:, None], (B, K, T)))
        tiled_mask = None if attention_mask is None else flat(jnp.broadcast_to(attention_mask[:, None], (B, K, T)))
        inputs = self.prepare_inputs_for_generation(tiled_ids, max_length, tiled_mask)
        running = jnp.full((B, K, max_length), fill, dtype="i4").at[:, :, :T].set(input_ids[:, None])
        # Only the first beam is live at the start, so the identical beams do not pick the same tokens.
        running_scores = jnp.zeros((B, K), jnp.float32).at[:, 1:].set(blocked)
        state = dict(cur_len=jnp.array(T), running=running, running_scores=running_scores, finished=running,
                     finished_scores=jnp.full((B, K), blocked), is_finished=jnp.zeros((B, K), bool),
                     improvable=jnp.ones((B, 1), bool), all_stop=jnp.array(False), tokens=tiled_ids, inputs=inputs)
        top_k_mask = jnp.arange(2 * K) < K  # only the top K continuations may finish

        def step(st):
            cur_len = st["cur_len"]
            out = self(st["tokens"], params=params, **st["inputs"])
            logits = self._next_logits(out.logits[:, -1], cur_len, s)
            V = logits.shape[-1]
            log_probs = jax.nn.log_softmax(logits, axis=-1).reshape(B, K, V) + st["running_scores"][:, :, None]
            scores, picked = lax.top_k(log_probs.reshape(B, K * V), 2 * K)  # (B, 2K)
            beam, token = picked // V, (picked % V).astype("i4")
            candidates = lax.dynamic_update_slice(gather(st["running"], beam), token[:, :, None], (0, 0, cur_len))
            hits_stop = jnp.isin(token, eos) | (cur_len + 1 >= max_length)
            # Running: the K best continuations that did not stop.
            running_scores, keep = lax.top_k(scores + hits_stop * blocked, K)
            running, running_beam = gather(candidates, keep), gather(beam, keep)
            # Finished: stopped top-K continuations merged with earlier ones, best K kept.
            just_finished = hits_stop & top_k_mask[None, :]
            cand = scores / ((cur_len + 1 - T).astype(jnp.float32) ** alpha)
            full = jnp.all(st["is_finished"], axis=-1, keepdims=True) & (early is True)
            cand = cand + full * blocked + (~st["improvable"]) * blocked + (~just_finished) * blocked
            pool_scores = jnp.concatenate([st["finished_scores"], cand], axis=1)
            finished_scores, best = lax.top_k(pool_scores, K)
            finished = gather(jnp.concatenate([st["finished"], candidates], axis=1), best)
            is_finished = gather(jnp.concatenate([st["is_finished"], just_finished], axis=1), best)
            cur_len = cur_len + 1
            if early == "never" and alpha > 0.0:
                best_length = jnp.float32(max_length - T)
            else:
                best_length = (cur_len - T).astype(jnp.float32)
            best_running = running_scores[:, :1] / best_length**alpha
            worst = jnp.where(is_finished, jnp.min(finished_scores, axis=1, keepdims=True), blocked)
            improvable = st["improvable"] & jnp.any(best_running > worst, axis=-1, keepdims=True)
            inputs = self.update_inputs_for_generation(out, st["inputs"])
            inputs["past_key_values"] = gather_cache(inputs["past_key_values"], running_beam)
            if "position_ids" in inputs:
                inputs["position_ids"] = gather_cache(inputs["position_ids"], running_beam)
            tokens = flat(lax.dynamic_slice_in_dim(running, cur_len - 1, 1, axis=2))
            return dict(cur_len=cur_len, running=running, running_scores=running_scores, finished=finished,
                        finished_scores=finished_scores, is_finished=is_finished, improvable=improvable,
                        all_stop=jnp.all(hits_stop), tokens=tokens, inputs=inputs)

        def go_on(st):
            open_beam = ~(jnp.all(st["is_finished"]) & (early is True))
            return jnp.any(st["improvable"]) & open_beam & ~st["all_stop"] & (st["cur_len"] < max_length)

        state = step(state)
        state = _while(go_on, step, state, trace)
        return FlaxBeamSearchOutput(sequences=state["finished"][:, 0], scores=state["finished_scores"][:, 0])


__all__ = ["FlaxGenerationMixin", "FlaxGreedySearchOutput", "FlaxSampleOutput", "FlaxBeamSearchOutput", "warp_logits"]
