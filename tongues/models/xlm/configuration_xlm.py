"""XLM configuration (Lample & Conneau, "Cross-lingual Language Model Pretraining", https://arxiv.org/abs/1901.07291)."""

from __future__ import annotations

from ...configuration import ConfigError, PretrainedConfig

SUMMARY_TYPES = ("last", "first", "mean", "cls_index", "attn")


class XLMConfig(PretrainedConfig):
    """Hyper-parameters of an XLM model; the defaults describe FacebookAI/xlm-mlm-en-2048.

    Args (in the spec's order):
        vocab_size: tokens in the vocabulary (30145). Alias ``n_words``.
        emb_dim: width of the model (2048). Alias ``hidden_size``.
        n_layers: transformer layers (12). Alias ``num_hidden_layers``.
        n_heads: attention heads (16). Alias ``num_attention_heads``.
        dropout, attention_dropout: dropout rates of the residual stream and of the attention probabilities (0.1).
        gelu_activation: GELU in the feed-forward layers, else ReLU (True).
        sinusoidal_embeddings: fixed sinusoidal position table instead of learned positions (False).
        causal: triangular (left-to-right) attention, as in the CLM checkpoints (False).
        asm: adaptive softmax output layer instead of a linear one (False); see ``asm_cutoffs``/``asm_div_value``.
        n_langs: languages of the model (1).
        use_lang_emb: add language embeddings when ``n_langs > 1`` (True).
        max_position_embeddings: length of the position table (512).
        embed_init_std: std of the embedding init (2048 ** -0.5).
        layer_norm_eps: LayerNorm epsilon (1e-12).
        init_std: std of the other weights' init (0.02).
        bos_index, eos_index, pad_index, unk_index, mask_index: special token indices (0, 1, 2, 3, 5).
            ``bos_index``/``eos_index``/``pad_index`` are aliases of ``bos_token_id``/``eos_token_id``/``pad_token_id``.
        is_encoder: the model is an encoder (True; XLM decoders are not supported, as in the reference).
        summary_type: how sequence classification and multiple choice pool a sequence: ``"last"``, ``"first"``,
            ``"mean"``, ``"cls_index"`` or ``"attn"`` ("first").
        summary_use_proj: a linear projection after pooling (True).
        summary_activation: activation after the projection, e.g. ``"tanh"`` (None: none).
        summary_proj_to_labels: project to ``num_labels`` outputs, else to ``emb_dim`` (True).
        summary_first_dropout: dropout before the projection (0.1).
        start_n_top, end_n_top: candidates kept by the SQuAD beam head for starts and, per start, ends (5, 5).
        mask_token_id: token appended as the slot to predict during generation (0).
        lang_id: language id used for every token during generation (0).
        pad_token_id, bos_token_id: (2, 0).
        asm_cutoffs: cluster boundaries of the adaptive softmax ([8000, 20000], the original XLM's default).
        asm_div_value: width divisor between adaptive-softmax clusters (4.0, the original XLM's default).

    Raises:
        ConfigError: a value has the wrong type or range; the message names the key.
    """

    model_type = "xlm"
    attribute_map = {
        "hidden_size": "emb_dim",
        "num_attention_heads": "n_heads",
        "num_hidden_layers": "n_layers",
        "n_words": "vocab_size",
        "bos_index": "bos_token_id",
        "eos_index": "eos_token_id",
        "pad_index": "pad_token_id",
    }
    positive_int_fields = ("vocab_size", "emb_dim", "n_layers", "n_heads", "n_langs", "max_position_embeddings",
                           "start_n_top", "end_n_top")

    def __init__(self, vocab_size=30145, emb_dim=2048, n_layers=12, n_heads=16, dropout=0.1, attention_dropout=0.1,
                 gelu_activation=True, sinusoidal_embeddings=False, causal=False, asm=False, n_langs=1,
                 use_lang_emb=True, max_position_embeddings=512, embed_init_std=2048**-0.5, layer_norm_eps=1e-12,
                 init_std=0.02, bos_index=0, eos_index=1, pad_index=2, unk_index=3, mask_index=5, is_encoder=True,
                 summary_type="first", summary_use_proj=True, summary_activation=None, summary_proj_to_labels=True,
                 summary_first_dropout=0.1, start_n_top=5, end_n_top=5, mask_token_id=0, lang_id=0, pad_token_id=2,
                 bos_token_id=0, asm_cutoffs=(8000, 20000), asm_div_value=4.0, **kwargs):
        # Old configs spell the vocabulary n_words (the original XLM's name).
        if "n_words" in kwargs:
            vocab_size = kwargs.pop("n_words")
        self.vocab_size = vocab_size
        self.emb_dim = emb_dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.gelu_activation = gelu_activation
        self.sinusoidal_embeddings = sinusoidal_embeddings
        self.causal = causal
        self.asm = asm
        self.n_langs = n_langs
        self.use_lang_emb = use_lang_emb
        self.max_position_embeddings = max_position_embeddings
        self.embed_init_std = embed_init_std
        self.layer_norm_eps = layer_norm_eps
        self.init_std = init_std
        self.unk_index = unk_index
        self.mask_index = mask_index
        self.is_encoder = is_encoder
        self.summary_type = summary_type
        self.summary_use_proj = summary_use_proj
        self.summary_activation = summary_activation
        self.summary_proj_to_labels = summary_proj_to_labels
        self.summary_first_dropout = summary_first_dropout
        self.start_n_top = start_n_top
        self.end_n_top = end_n_top
        self.mask_token_id = mask_token_id
        self.lang_id = lang_id
        self.asm_cutoffs = list(asm_cutoffs) if isinstance(asm_cutoffs, tuple) else asm_cutoffs
        self.asm_div_value = asm_div_value
        # bos_index/pad_index are aliases: as in the reference, the *_token_id arguments win over them.
        # eos_index has no *_token_id argument in the signature, so it gives eos_token_id unless that is passed.
        kwargs.setdefault("eos_token_id", eos_index)
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, **kwargs)

    def validate(self) -> None:
        super().validate()
        self.check_divisible("emb_dim", "n_heads")
        if self.summary_type not in SUMMARY_TYPES:
            raise ConfigError(f"XLMConfig.summary_type must be one of {SUMMARY_TYPES}; got {self.summary_type!r}")
        for name in ("dropout", "attention_dropout", "summary_first_dropout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
                raise ConfigError(f"XLMConfig.{name} must be a probability in [0, 1]; got {value!r}")
        if self.asm:
            self._validate_asm()

    def _validate_asm(self) -> None:
        cutoffs = self.asm_cutoffs
        if (not isinstance(cutoffs, list) or not cutoffs
                or not all(isinstance(c, int) and not isinstance(c, bool) for c in cutoffs)):
            raise ConfigError(f"XLMConfig.asm_cutoffs must be a non-empty list of integers; got {cutoffs!r}")
        if cutoffs != sorted(set(cutoffs)) or cutoffs[0] <= 0 or cutoffs[-1] > self.vocab_size - 1:
            raise ConfigError(
                f"XLMConfig.asm_cutoffs must increase strictly and lie in [1, vocab_size - 1] = [1, {self.vocab_size - 1}];"
                f" got {cutoffs}"
            )
        div = self.asm_div_value
        if not isinstance(div, (int, float)) or isinstance(div, bool) or div <= 0:
            raise ConfigError(f"XLMConfig.asm_div_value must be a positive number; got {div!r}")
