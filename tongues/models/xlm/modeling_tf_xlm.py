"""TensorFlow XLM: the PyTorch XLM (modeling_xlm.py) as tf-keras layers named like the reference's TF
checkpoints (``transformer/attentions_._N/q_lin``, ``pred_layer_._proj/bias``; ``_._N`` reads ``.N``
in PyTorch keys).

Same behaviour as the PyTorch model: the padding mask comes from ``attention_mask``, else
``lengths``, else the non-pad ids; padded positions are zeroed after every layer; ``causal=True``
gives the CLM checkpoints' triangular attention; ``cache`` is the spec's dict
``{"slen": n, layer: (key, value)}`` updated in place, with the whole sequence passed each call.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...frameworks.outputs import ModelOutput
from ...frameworks.positions import interleaved_sinusoidal_table
from ...tf.layers import (Collector, SharedEmbedding, TFBaseModelOutput, TFMultipleChoiceModelOutput,
                          TFQuestionAnsweringModelOutput, TFSequenceClassifierOutput, TFTokenClassifierOutput, attend,
                          attention_bias, check_ids, dense, finish, get_activation, layer_head_masks,
                          masked_cross_entropy)
from ...tf.modeling import TFPreTrainedModel, keras, tf, unbox, unpack_inputs
from .configuration_xlm import XLMConfig


@dataclass
class TFXLMWithLMHeadModelOutput(ModelOutput):
    """Output of :class:`TFXLMWithLMHeadModel`: ``logits`` (B, T, V), optional ``hidden_states`` and ``attentions``."""

    logits: object = None
    hidden_states: object = None
    attentions: object = None


class TFXLMMultiHeadAttention(keras.layers.Layer):
    def __init__(self, config: XLMConfig, **kwargs):
        super().__init__(**kwargs)
        self.n_heads, self.head_dim = config.n_heads, config.emb_dim // config.n_heads
        for proj in ("q_lin", "k_lin", "v_lin", "out_lin"):
            setattr(self, proj, dense(config.emb_dim, config, name=proj))
        self.dropout = keras.layers.Dropout(config.attention_dropout)

    def _heads(self, x, proj):
        B, T = x.shape[0], tf.shape(x)[1]
        return tf.transpose(tf.reshape(proj(x), (B, T, self.n_heads, self.head_dim)), (0, 2, 1, 3))  # (B, H, T, D)

    def call(self, x, bias, past=None, head_mask=None, training=False):
        q, k, v = self._heads(x, self.q_lin), self._heads(x, self.k_lin), self._heads(x, self.v_lin)
        if past is not None:
            k, v = tf.concat([past[0], k], axis=2), tf.concat([past[1], v], axis=2)
        out, probs = attend(q, k, v, bias, self.head_dim**-0.5, self.dropout, training, head_mask)
        B, T = x.shape[0], tf.shape(x)[1]
        out = tf.reshape(tf.transpose(out, (0, 2, 1, 3)), (B, T, self.n_heads * self.head_dim))  # (B, T, H*D)
        return self.out_lin(out), probs, (k, v)


class TFXLMTransformerFFN(keras.layers.Layer):
    def __init__(self, config: XLMConfig, **kwargs):
        super().__init__(**kwargs)
        self.lin1 = dense(4 * config.emb_dim, config, name="lin1")
        self.lin2 = dense(config.emb_dim, config, name="lin2")
        self.act = get_activation("gelu" if config.gelu_activation else "relu")  # exact (erf) GELU, as XLM trained
        self.dropout = keras.layers.Dropout(config.dropout)

    def call(self, x, training=False):
        return self.dropout(self.lin2(self.act(self.lin1(x))), training=training)


class TFXLMMainLayer(keras.layers.Layer):
    def __init__(self, config: XLMConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        L = config.n_layers
        self.embeddings = SharedEmbedding(config.vocab_size, config.emb_dim, config.embed_init_std, name="embeddings")
        self.layer_norm_emb = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="layer_norm_emb")
        self.attentions = [TFXLMMultiHeadAttention(config, name=f"attentions_._{i}") for i in range(L)]
        self.layer_norm1 = [keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name=f"layer_norm1_._{i}")
                            for i in range(L)]
        self.ffns = [TFXLMTransformerFFN(config, name=f"ffns_._{i}") for i in range(L)]
        self.layer_norm2 = [keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name=f"layer_norm2_._{i}")
                            for i in range(L)]
        self.dropout = keras.layers.Dropout(config.dropout)
        self.has_lang_embeddings = config.n_langs > 1 and config.use_lang_emb

    def build(self, input_shape=None):
        config = self.config
        if config.sinusoidal_embeddings:
            init = keras.initializers.Constant(interleaved_sinusoidal_table(config.max_position_embeddings,
                                                                            config.emb_dim))
        else:
            init = keras.initializers.TruncatedNormal(stddev=config.embed_init_std)
        with tf.name_scope("position_embeddings"):
            self.position_embeddings = self.add_weight("embeddings", (config.max_position_embeddings, config.emb_dim),
                                                       initializer=init, trainable=not config.sinusoidal_embeddings)
        if self.has_lang_embeddings:
            with tf.name_scope("lang_embeddings"):
                self.lang_embeddings = self.add_weight(
                    "embeddings", (config.n_langs, config.emb_dim),
                    initializer=keras.initializers.TruncatedNormal(stddev=config.embed_init_std))
        super().build(input_shape)

    def padding_mask(self, input_ids, attention_mask, lengths, B, S):
        """(B, S) mask of real tokens: ``attention_mask``, else the first ``lengths``, else the non-pad ids."""
        if attention_mask is not None:
            attention_mask = tf.cast(attention_mask, tf.int32)
            if tuple(attention_mask.shape) != (B, S):
                raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected ({B}, {S}) = "
                                 "(batch, whole sequence length)")
            return attention_mask
        if lengths is None:
            if input_ids is None:
                return tf.ones((B, S), tf.int32)
            lengths = tf.reduce_sum(tf.cast(input_ids != self.config.pad_token_id, tf.int32), axis=1)
        lengths = tf.cast(lengths, tf.int32)
        if tuple(lengths.shape) != (B,):
            raise ValueError(f"lengths has shape {tuple(lengths.shape)}, expected ({B},): one length per row")
        return tf.cast(tf.range(S)[None, :] < lengths[:, None], tf.int32)

    def call(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
             lengths=None, cache=None, head_mask=None, inputs_embeds=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, training=False):
        config = self.config
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = config.return_dict if return_dict is None else return_dict
        collect = Collector(output_hidden_states, output_attentions)
        if input_ids is not None:
            input_ids = tf.cast(input_ids, tf.int32)
            check_ids(input_ids, config.vocab_size)
        full = input_ids if input_ids is not None else inputs_embeds
        B, S = full.shape[0], full.shape[1]
        cache = unbox(cache)
        if cache is not None and not isinstance(cache, dict):
            raise TypeError(f'cache must be a dict {{"slen": n, layer: (key, value)}}; got {type(cache).__name__}')
        past = cache.get("slen", 0) if cache else 0
        if past >= S:
            raise ValueError(f"the cache already holds {past} positions but the input has {S}: with a cache, pass "
                             "the whole sequence (cached prefix + new tokens)")
        mask = self.padding_mask(input_ids, attention_mask, lengths, B, S)  # (B, S)

        def new_part(t, name):  # the last S - past columns of a per-token input
            if t is None:
                return None
            t = tf.cast(t, tf.int32)
            if t.shape.rank != 2 or t.shape[1] not in (S, S - past):
                raise ValueError(f"{name} has shape {tuple(t.shape)}, expected ({B}, {S}) like the input ids")
            return t[:, t.shape[1] - (S - past):]

        if position_ids is None:
            if S > config.max_position_embeddings:
                raise ValueError(f"the input has {S} positions but XLM's position table has "
                                 f"{config.max_position_embeddings} (config.max_position_embeddings)")
            position_ids = tf.range(past, S)[None, :]
        else:
            position_ids = new_part(position_ids, "position_ids")
        langs, token_type_ids = new_part(langs, "langs"), new_part(token_type_ids, "token_type_ids")
        x = self.embeddings(input_ids[:, past:]) if inputs_embeds is None else inputs_embeds[:, past:]  # (B, T, D)
        x = x + tf.gather(self.position_embeddings, position_ids)
        if langs is not None and self.has_lang_embeddings:
            x = x + tf.gather(self.lang_embeddings, langs)
        if token_type_ids is not None:
            # XLM has no segment table: token types index the word embeddings (facebookresearch/XLM does the same).
            x = x + self.embeddings(token_type_ids)
        x = self.dropout(self.layer_norm_emb(x), training=training)
        keep = tf.cast(mask[:, past:, None], x.dtype)  # (B, T, 1): padded positions are zeroed after every layer
        x = x * keep
        # Padded keys are hidden in causal mode too, as tongues' PyTorch XLM does.
        bias = attention_bias(mask, B, S - past, past, causal=config.causal, dtype=x.dtype)
        head_masks = layer_head_masks(head_mask, config.n_layers, config.n_heads)
        for i in range(config.n_layers):
            collect.add_hidden(x)
            layer_past = cache.get(i) if cache else None
            attn, probs, kv = self.attentions[i](x, bias, layer_past, head_masks[i], training=training)
            if cache is not None:
                cache[i] = kv
            x = self.layer_norm1[i](x + self.dropout(attn, training=training))
            x = self.layer_norm2[i](x + self.ffns[i](x, training=training)) * keep
            collect.add_attention(probs)
        collect.add_hidden(x)
        if cache is not None:
            cache["slen"] = S
        out = TFBaseModelOutput(last_hidden_state=x, hidden_states=collect.hidden, attentions=collect.attentions)
        return finish(out, return_dict)


class TFXLMPredLayer(keras.layers.Layer):
    """Output layer: the word embeddings transposed (tied) plus a bias of its own (``pred_layer.proj.bias``)."""

    def __init__(self, config: XLMConfig, embeddings: SharedEmbedding, **kwargs):
        super().__init__(**kwargs)
        if config.asm:
            raise ValueError("tongues' TF XLM has no adaptive softmax output layer (config.asm=True); use the "
                             "PyTorch XLMWithLMHeadModel")
        self.vocab_size, self.input_embeddings = config.vocab_size, embeddings

    def build(self, input_shape=None):
        self.bias = self.add_weight("bias", shape=(self.vocab_size,), initializer="zeros")
        super().build(input_shape)

    def call(self, x):
        return self.input_embeddings(x, mode="linear") + self.bias


class TFSequenceSummary(keras.layers.Layer):
    """One vector per sequence (``summary_type`` last/first/mean/cls_index), then dropout, ``summary`` projection,
    activation, dropout: the TF twin of ``tongues.layers.summary.SequenceSummary``."""

    def __init__(self, config: XLMConfig, **kwargs):
        super().__init__(**kwargs)
        self.summary_type = getattr(config, "summary_type", "last")
        if self.summary_type not in ("last", "first", "mean", "cls_index"):
            raise ValueError(f"summary_type {self.summary_type!r} is not supported by tongues' TF models; use "
                             "last, first, mean or cls_index")
        self.summary = None
        if getattr(config, "summary_use_proj", False):
            to_labels = getattr(config, "summary_proj_to_labels", False) and config.num_labels > 0
            self.summary = dense(config.num_labels if to_labels else config.emb_dim, config, name="summary")
        act = getattr(config, "summary_activation", None)
        self.activation = get_activation(act) if act else None
        self.first_dropout = keras.layers.Dropout(getattr(config, "summary_first_dropout", 0.0) or 0.0)
        self.last_dropout = keras.layers.Dropout(getattr(config, "summary_last_dropout", 0.0) or 0.0)

    def call(self, hidden, cls_index=None, training=False):
        if self.summary_type == "last":
            out = hidden[:, -1]
        elif self.summary_type == "first":
            out = hidden[:, 0]
        elif self.summary_type == "mean":
            out = tf.reduce_mean(hidden, axis=1)
        else:
            index = tf.fill((hidden.shape[0],), tf.shape(hidden)[1] - 1) if cls_index is None else cls_index
            out = tf.gather(hidden, tf.cast(index, tf.int32), batch_dims=1)
        out = self.first_dropout(out, training=training)
        if self.summary is not None:
            out = self.summary(out)
        if self.activation is not None:
            out = self.activation(out)
        return self.last_dropout(out, training=training)


class TFXLMPreTrainedModel(TFPreTrainedModel):
    """Base of the TF XLM models: the encoder ``transformer``, and the two steps every head shares."""

    config_class = XLMConfig
    base_model_prefix = "transformer"

    def __init__(self, config: XLMConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.transformer = TFXLMMainLayer(config, name="transformer")

    @property
    def dummy_inputs(self) -> dict:
        ids = tf.constant([[7, 6, 0, 0, 1], [1, 2, 3, 0, 0], [0, 0, 0, 4, 5]], tf.int32) % self.config.vocab_size
        inputs = {"input_ids": ids}
        if self.config.n_langs > 1 and self.config.use_lang_emb:
            inputs["langs"] = tf.zeros_like(ids)
        return inputs

    def _encode(self, inputs: dict):
        """The encoder's output for a head's call arguments (its ``locals()``), always as an output object."""
        return self.transformer(*(inputs[name] for name in _ENCODER_ARGS), True, training=inputs["training"])

    def _finish(self, output_class, encoded, return_dict, **fields):
        """``output_class`` with the head's ``fields`` and the encoder's hidden states and attentions."""
        result = output_class(**fields, hidden_states=encoded.hidden_states, attentions=encoded.attentions)
        return finish(result, self.config.return_dict if return_dict is None else return_dict)


# TFXLMMainLayer.call's arguments before return_dict, in order.
_ENCODER_ARGS = ("input_ids", "attention_mask", "langs", "token_type_ids", "position_ids", "lengths", "cache",
                 "head_mask", "inputs_embeds", "output_attentions", "output_hidden_states")


def _sequence_loss(config, logits, labels):
    """Regression (MSE, one label), single-label cross-entropy (integer labels) or multi-label BCE, shape (1,)."""
    labels = tf.convert_to_tensor(labels)
    if config.num_labels == 1:
        loss = tf.reduce_mean(tf.square(tf.reshape(logits, (-1,)) - tf.cast(tf.reshape(labels, (-1,)), logits.dtype)))
    elif labels.dtype.is_integer:
        return masked_cross_entropy(labels, logits)
    else:
        loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(labels, logits.dtype), logits))
    return tf.reshape(loss, (1,))


class TFXLMModel(TFXLMPreTrainedModel):
    """The bare TF XLM encoder: hidden states (B, T, emb_dim)."""

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
             lengths=None, cache=None, head_mask=None, inputs_embeds=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, training=False):
        """Inputs as keywords, a list in this order, or a dict; see the module docstring. Returns TFBaseModelOutput."""
        return self.transformer(input_ids, attention_mask, langs, token_type_ids, position_ids, lengths, cache,
                                head_mask, inputs_embeds, output_attentions, output_hidden_states, return_dict,
                                training=training)


class TFXLMWithLMHeadModel(TFXLMPreTrainedModel):
    """TF XLM with its language-model head (``pred_layer``): scores (B, T, V) at every position."""

    def __init__(self, config: XLMConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.pred_layer = TFXLMPredLayer(config, self.transformer.embeddings, name="pred_layer_._proj")

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
             lengths=None, cache=None, head_mask=None, inputs_embeds=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, training=False):
        """Returns TFXLMWithLMHeadModelOutput (logits, hidden_states, attentions) or its tuple."""
        out = self._encode(locals())
        return self._finish(TFXLMWithLMHeadModelOutput, out, return_dict, logits=self.pred_layer(out.last_hidden_state))


class TFXLMForSequenceClassification(TFXLMPreTrainedModel):
    """TF XLM with a pooled classifier/regressor (``sequence_summary``)."""

    def __init__(self, config: XLMConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.sequence_summary = TFSequenceSummary(config, name="sequence_summary")

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
             lengths=None, cache=None, head_mask=None, inputs_embeds=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, labels=None, training=False):
        """Logits (B, num_labels); loss (1,) when ``labels`` (B,) (integers: cross-entropy, one label: MSE)."""
        out = self._encode(locals())
        logits = self.sequence_summary(out.last_hidden_state, training=training)
        loss = None if labels is None else _sequence_loss(self.config, logits, labels)
        return self._finish(TFSequenceClassifierOutput, out, return_dict, loss=loss, logits=logits)


class TFXLMForMultipleChoice(TFXLMPreTrainedModel):
    """TF XLM scoring each of C choices: pooled summary -> ``logits_proj`` -> one logit per choice."""

    def __init__(self, config: XLMConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.sequence_summary = TFSequenceSummary(config, name="sequence_summary")
        self.logits_proj = dense(1, config, name="logits_proj")

    @property
    def dummy_inputs(self) -> dict:
        return {name: value[None] for name, value in super().dummy_inputs.items()}

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
             lengths=None, cache=None, head_mask=None, inputs_embeds=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, labels=None, training=False):
        """Inputs (B, C, S) (embeddings (B, C, S, D)); logits (B, C); cross-entropy (1,) when ``labels`` (B,).
        ``lengths`` must be (B, C) (one per choice) when given."""
        full = input_ids if input_ids is not None else inputs_embeds
        if full is None or full.shape.rank < 3:
            raise ValueError("multiple-choice inputs must be (batch, choices, sequence); got shape "
                             f"{None if full is None else tuple(full.shape)}")
        B, C, S = full.shape[0], full.shape[1], full.shape[2]

        def flat(t):
            return None if t is None else tf.reshape(t, (B * C, S))

        if lengths is not None:
            lengths = tf.convert_to_tensor(lengths)
            if tuple(lengths.shape) != (B, C):
                raise ValueError(f"lengths has shape {tuple(lengths.shape)}, expected ({B}, {C}): one per choice")
            lengths = tf.reshape(lengths, (-1,))
        if inputs_embeds is not None:
            inputs_embeds = tf.reshape(inputs_embeds, (B * C, S, inputs_embeds.shape[-1]))
        args = locals()
        per_choice = ("input_ids", "attention_mask", "langs", "token_type_ids", "position_ids")
        out = self._encode({**args, **{name: flat(args[name]) for name in per_choice}})
        logits = tf.reshape(self.logits_proj(self.sequence_summary(out.last_hidden_state, training=training)), (B, C))
        loss = None if labels is None else masked_cross_entropy(labels, logits)
        return self._finish(TFMultipleChoiceModelOutput, out, return_dict, loss=loss, logits=logits)


class TFXLMForTokenClassification(TFXLMPreTrainedModel):
    """TF XLM with a per-token classifier (dropout ``config.dropout``, then ``classifier``)."""

    def __init__(self, config: XLMConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.dropout = keras.layers.Dropout(config.dropout)
        self.classifier = dense(config.num_labels, config, name="classifier")

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
             lengths=None, cache=None, head_mask=None, inputs_embeds=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, labels=None, training=False):
        """Logits (B, T, num_labels); cross-entropy (1,) over positions when ``labels`` (B, T), -100 ignored."""
        out = self._encode(locals())
        logits = self.classifier(self.dropout(out.last_hidden_state, training=training))
        loss = None if labels is None else masked_cross_entropy(labels, logits)
        return self._finish(TFTokenClassifierOutput, out, return_dict, loss=loss, logits=logits)


class TFXLMForQuestionAnsweringSimple(TFXLMPreTrainedModel):
    """TF XLM with a span head: ``qa_outputs`` (emb_dim -> 2) gives start and end logits."""

    def __init__(self, config: XLMConfig, *inputs, **kwargs):
        if config.num_labels != 2:
            raise ValueError(f"TFXLMForQuestionAnsweringSimple needs config.num_labels == 2 (start and end); "
                             f"got {config.num_labels}")
        super().__init__(config, *inputs, **kwargs)
        self.qa_outputs = dense(config.num_labels, config, name="qa_outputs")

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
             lengths=None, cache=None, head_mask=None, inputs_embeds=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, start_positions=None, end_positions=None,
             training=False):
        """Start and end logits (B, T); loss (1,), the mean of both cross-entropies, when both positions (B,) are
        given (positions outside the input are ignored)."""
        out = self._encode(locals())
        logits = self.qa_outputs(out.last_hidden_state)
        start, end = logits[..., 0], logits[..., 1]
        loss = None
        if start_positions is not None and end_positions is not None:
            T = start.shape[1]

            def part(positions, scores):
                positions = tf.clip_by_value(tf.reshape(tf.cast(positions, tf.int32), (-1,)), 0, T)
                return masked_cross_entropy(tf.where(positions == T, -100, positions), scores)

            loss = (part(start_positions, start) + part(end_positions, end)) / 2
        return self._finish(TFQuestionAnsweringModelOutput, out, return_dict, loss=loss, start_logits=start,
                            end_logits=end)


__all__ = ["TFXLMModel", "TFXLMWithLMHeadModel", "TFXLMForSequenceClassification", "TFXLMForMultipleChoice",
           "TFXLMForTokenClassification", "TFXLMForQuestionAnsweringSimple", "TFXLMWithLMHeadModelOutput",
           "TFXLMPreTrainedModel", "TFXLMMainLayer"]
