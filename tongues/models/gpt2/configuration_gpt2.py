"""GPT-2 configuration (Radford et al. 2019), the architecture of mGPT (ai-forever/mGPT)."""

from __future__ import annotations

from ...configuration import ConfigError, PretrainedConfig


class GPT2Config(PretrainedConfig):
    """Hyper-parameters of a GPT-2 model; defaults are those of openai-community/gpt2.

    Args:
        vocab_size: tokens in the vocabulary (50257).
        n_positions: learned positions, the longest sequence (1024). Alias ``max_position_embeddings``.
        n_embd: width of the residual stream (768). Alias ``hidden_size``.
        n_layer, n_head: blocks and attention heads (12, 12). Aliases ``num_hidden_layers``, ``num_attention_heads``.
        n_inner: width of the feed-forward layer (None: 4 * n_embd).
        activation_function: the feed-forward activation ("gelu_new", GELU's tanh approximation).
        resid_pdrop, embd_pdrop, attn_pdrop: dropout rates (0.1).
        layer_norm_epsilon: LayerNorm epsilon (1e-5).
        initializer_range: std of the normal init (0.02).
        scale_attn_weights: divide attention scores by sqrt(head_dim) (True).
        scale_attn_by_inverse_layer_idx: also divide them by layer index + 1 (False).
        reorder_and_upcast_attn: compute the attention scores and softmax in fp32 (False).
        summary_*: the sequence-summary settings of GPT-2's double-heads model, kept for round trips.
        use_cache: return key/value caches (True).
    """

    model_type = "gpt2"
    attribute_map = {"hidden_size": "n_embd", "max_position_embeddings": "n_positions",
                     "num_attention_heads": "n_head", "num_hidden_layers": "n_layer"}
    positive_int_fields = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")

    def __init__(self, vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, n_inner=None,
                 activation_function="gelu_new", resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1,
                 layer_norm_epsilon=1e-5, initializer_range=0.02, summary_type="cls_index", summary_use_proj=True,
                 summary_activation=None, summary_proj_to_labels=True, summary_first_dropout=0.1,
                 scale_attn_weights=True, use_cache=True, bos_token_id=50256, eos_token_id=50256,
                 scale_attn_by_inverse_layer_idx=False, reorder_and_upcast_attn=False, add_cross_attention=False,
                 **kwargs):
        self.vocab_size = vocab_size
        self.n_positions = n_positions
        self.n_embd = n_embd
        self.n_layer = n_layer
        self.n_head = n_head
        self.n_inner = n_inner
        self.activation_function = activation_function
        self.resid_pdrop = resid_pdrop
        self.embd_pdrop = embd_pdrop
        self.attn_pdrop = attn_pdrop
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.summary_type = summary_type
        self.summary_use_proj = summary_use_proj
        self.summary_activation = summary_activation
        self.summary_first_dropout = summary_first_dropout
        self.summary_proj_to_labels = summary_proj_to_labels
        self.scale_attn_weights = scale_attn_weights
        self.use_cache = use_cache
        self.scale_attn_by_inverse_layer_idx = scale_attn_by_inverse_layer_idx
        self.reorder_and_upcast_attn = reorder_and_upcast_attn
        self.add_cross_attention = add_cross_attention
        super().__init__(bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)

    def validate(self) -> None:
        super().validate()
        self.check_divisible("n_embd", "n_head")
        if self.add_cross_attention:
            raise ConfigError("GPT2Config.add_cross_attention=True (GPT-2 as the decoder of an encoder-decoder) is "
                              "not supported by tongues; set add_cross_attention=False")
