"""BLOOM configuration (BigScience, https://arxiv.org/abs/2211.05100)."""

from __future__ import annotations

from ...configuration import PretrainedConfig


class BloomConfig(PretrainedConfig):
    """Hyper-parameters of a BLOOM model; defaults give a tiny model of the bigscience/bloom shape.

    Args:
        vocab_size: tokens in the vocabulary (250880).
        hidden_size: width of the residual stream (64). ``n_embed`` in old checkpoints.
        n_layer: transformer blocks (2). Alias ``num_hidden_layers``.
        n_head: attention heads (8). Alias ``num_attention_heads``.
        layer_norm_epsilon: LayerNorm epsilon (1e-5).
        initializer_range: std of the normal init (0.02).
        use_cache: return key/value caches (True).
        apply_residual_connection_post_layernorm: take the residual after the layer norm (False).
        hidden_dropout, attention_dropout: dropout rates (0.0).
        pretraining_tp, slow_but_exact: reproduce Megatron's tensor-parallel summation order (1, False).
    """

    model_type = "bloom"
    attribute_map = {"num_hidden_layers": "n_layer", "num_attention_heads": "n_head"}
    positive_int_fields = ("vocab_size", "hidden_size", "n_layer", "n_head", "pretraining_tp")

    def __init__(self, vocab_size=250880, hidden_size=64, n_layer=2, n_head=8, layer_norm_epsilon=1e-5,
                 initializer_range=0.02, use_cache=True, bos_token_id=1, eos_token_id=2,
                 apply_residual_connection_post_layernorm=False, hidden_dropout=0.0, attention_dropout=0.0,
                 pretraining_tp=1, slow_but_exact=False, **kwargs):
        # Checkpoints from 2022 name the width n_embed (see bigscience/bloom-560m's config.json).
        n_embed = kwargs.pop("n_embed", None)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size if n_embed is None else n_embed
        self.n_layer = n_layer
        self.n_head = n_head
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.use_cache = use_cache
        self.apply_residual_connection_post_layernorm = apply_residual_connection_post_layernorm
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.pretraining_tp = pretraining_tp
        self.slow_but_exact = slow_but_exact
        super().__init__(bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)

    def validate(self) -> None:
        super().validate()
        self.check_divisible("hidden_size", "n_head")
