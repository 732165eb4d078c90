"""XGLM configuration (Lin et al., 2021, "Few-shot Learning with Multilingual Language Models")."""

from __future__ import annotations

from ...configuration import ConfigError, PretrainedConfig

class XGLMConfig(PretrainedConfig):
    """Hyper-parameters of an XGLM decoder; defaults give the facebook/xglm-564M shape.

    Args:
        vocab_size: tokens in the vocabulary (256008: the fairseq dictionary of the 250k
            sentencepiece model plus 4 specials and 7 ``<madeupword>`` fillers).
        max_position_embeddings: positions the sinusoidal table is built for (2048); longer
            inputs grow the table, since it has no learned weights.
        d_model: width of the residual stream (1024). Alias ``hidden_size``.
        ffn_dim: width of the feed-forward layer (4096).
        num_layers: decoder layers (24). Alias ``num_hidden_layers``.
        attention_heads: attention heads per layer (16). Alias ``num_attention_heads``.
        activation_function: ``"gelu"``, ``"relu"``, ``"silu"``, ``"gelu_new"`` ... ("gelu").
        dropout: dropout on embeddings and residual branches (0.1).
        attention_dropout: dropout on attention probabilities (0.1).
        activation_dropout: dropout after the feed-forward activation (0.0).
        layerdrop: probability of skipping a whole layer, in training only (0.0).
        init_std: std of the normal init of linear and embedding weights (0.02).
        scale_embedding: multiply token embeddings by ``sqrt(d_model)`` (True).
        use_cache: return key/value caches (True).
        add_cross_attention: give each layer a cross-attention block over ``encoder_hidden_states`` (False).
        decoder_start_token_id, pad_token_id, bos_token_id, eos_token_id: 2, 1, 0, 2 (fairseq's layout).

    Raises:
        ConfigError: a size is not a positive integer, ``d_model`` is not divisible by
            ``attention_heads``, or a dropout is outside [0, 1].
    """

    model_type = "xglm"
    attribute_map = {"num_attention_heads": "attention_heads", "hidden_size": "d_model", "num_hidden_layers": "num_layers"}
    positive_int_fields = ("vocab_size", "max_position_embeddings", "d_model", "ffn_dim", "num_layers", "attention_heads")

    def __init__(self, vocab_size=256008, max_position_embeddings=2048, d_model=1024, ffn_dim=4096, num_layers=24,
                 attention_heads=16, activation_function="gelu", dropout=0.1, attention_dropout=0.1,
                 activation_dropout=0.0, layerdrop=0.0, init_std=0.02, scale_embedding=True, use_cache=True,
                 decoder_start_token_id=2, pad_token_id=1, bos_token_id=0, eos_token_id=2, **kwargs):
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.d_model = d_model
        self.ffn_dim = ffn_dim
        self.num_layers = num_layers
        self.attention_heads = attention_heads
        self.activation_function = activation_function
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation_dropout = activation_dropout
        self.layerdrop = layerdrop
        self.init_std = init_std
        self.scale_embedding = scale_embedding
        self.use_cache = use_cache
        super().__init__(decoder_start_token_id=decoder_start_token_id, pad_token_id=pad_token_id,
                         bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)

    def validate(self) -> None:
        super().validate()
        self.check_divisible("d_model", "attention_heads")
        for name in ("dropout", "attention_dropout", "activation_dropout", "layerdrop"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError(f"XGLMConfig.{name} must be a probability in [0, 1]; got {value!r}")
        # The name itself is checked where the model builds its layers (tongues.layers.activations),
        # which keeps this module free of torch.
        if not isinstance(self.activation_function, str) and not callable(self.activation_function):
            raise ConfigError(f"XGLMConfig.activation_function must be a name or a function; "
                              f"got {self.activation_function!r}")
