"""GLM-4 test helpers: tiny oracle models, THUDM-layout (chatglm) checkpoints, and the real tokenizer files."""

from __future__ import annotations

import json
import os
from functools import lru_cache

import torch

DATA = os.path.join(os.path.dirname(__file__), "data", "glm4")
GLM4_CHAT = os.path.join(DATA, "glm-4-9b-chat")  # the real tokenizer, configs and weight index of glm-4-9b-chat
UDHR = os.path.join(os.path.dirname(__file__), "data", "udhr")

# Shapes shared by every tiny config: 4 query heads of 8 channels, vocabulary of 96 (ids 90.. are "special").
TINY = dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
            head_dim=8, max_position_embeddings=128, pad_token_id=0, eos_token_id=[90, 91, 92])

# (name, overrides): multi-query, grouped-query and multi-head attention, with and without biases and tying.
VARIANTS = [
    ("mqa-bias-untied", dict(num_key_value_heads=1, attention_bias=True, tie_word_embeddings=False)),
    ("gqa-nobias-tied", dict(num_key_value_heads=2, attention_bias=False, tie_word_embeddings=True)),
    ("mha-bias-tied", dict(num_key_value_heads=4, attention_bias=True, tie_word_embeddings=True)),
    ("gqa-full-rotary", dict(num_key_value_heads=2, partial_rotary_factor=1.0, rope_theta=500.0)),
    ("gqa-linear-rope", dict(num_key_value_heads=2, rope_parameters={"rope_type": "linear", "factor": 2.5,
                                                                     "rope_theta": 1000.0})),
]


def oracle_config(attn="sdpa", **overrides):
    """A tiny transformers GlmConfig."""
    from transformers import GlmConfig

    config = GlmConfig(**{**TINY, **overrides})
    config._attn_implementation = attn
    return config


def oracle_model(cls_name: str, attn="sdpa", seed: int = 0, **overrides):
    """A tiny random transformers Glm model (``cls_name`` e.g. "GlmForCausalLM"), in eval mode."""
    import transformers

    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(oracle_config(attn, **overrides)).eval()
    # Random, not zero, biases and norm weights, so that they are tested.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                param.normal_(0.5 if "norm" in name else 0.0, 0.1)
    return model


def saved_pair(tmp_path, cls_name: str, attn="sdpa", **overrides):
    """(oracle model, ours loaded from the oracle's save) for ``cls_name``."""
    import tongues

    ref = oracle_model(cls_name, attn, **overrides)
    ref.save_pretrained(str(tmp_path))
    ours = getattr(tongues, cls_name).from_pretrained(str(tmp_path)).eval()
    return ref, ours


def random_ids(batch: int, length: int, low: int = 1, high: int = 90) -> torch.Tensor:
    return torch.randint(low, high, (batch, length))


def left_pad(ids: torch.Tensor, pads: list[int], pad_id: int = 0):
    """(ids, mask) with ``pads[b]`` pad tokens written over the left of row b."""
    ids = ids.clone()
    mask = torch.ones_like(ids)
    for row, n in enumerate(pads):
        ids[row, :n] = pad_id
        mask[row, :n] = 0
    return ids, mask


def right_pad(ids: torch.Tensor, pads: list[int], pad_id: int = 0):
    ids = ids.clone()
    mask = torch.ones_like(ids)
    for row, n in enumerate(pads):
        if n:
            ids[row, -n:] = pad_id
            mask[row, -n:] = 0
    return ids, mask


def mask_positions(mask: torch.Tensor) -> torch.Tensor:
    """Positions counted from each row's first real token (what tongues derives from a mask)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


# -- THUDM's original layout -------------------------------------------------------------------------------

def chatglm_config(hf_config) -> dict:
    """A ``chatglm`` config.json dict with the keys of THUDM/glm-4-9b-chat's, describing ``hf_config``'s shape."""
    rope = hf_config.rope_parameters
    assert rope["partial_rotary_factor"] == 0.5, "the original layout always rotates half of each head"
    with open(os.path.join(GLM4_CHAT, "config.json"), encoding="utf-8") as f:
        data = json.load(f)
    data.update(
        padded_vocab_size=hf_config.vocab_size, hidden_size=hf_config.hidden_size,
        ffn_hidden_size=hf_config.intermediate_size, num_layers=hf_config.num_hidden_layers,
        num_hidden_layers=hf_config.num_hidden_layers, num_attention_heads=hf_config.num_attention_heads,
        multi_query_attention=hf_config.num_key_value_heads != hf_config.num_attention_heads,
        multi_query_group_num=hf_config.num_key_value_heads, kv_channels=hf_config.head_dim,
        rope_ratio=rope["rope_theta"] / 10000.0, layernorm_epsilon=hf_config.rms_norm_eps,
        seq_length=hf_config.max_position_embeddings, add_qkv_bias=hf_config.attention_bias,
        eos_token_id=hf_config.eos_token_id, pad_token_id=hf_config.pad_token_id,
        tie_word_embeddings=hf_config.tie_word_embeddings, torch_dtype="float32",
    )
    return data


def write_chatglm_checkpoint(hf_model, path) -> str:
    """Write ``hf_model`` (a transformers GlmForCausalLM) in THUDM's layout: the real weight names, fused q/k/v."""
    from safetensors.torch import save_file

    config = hf_model.config
    state = {k: v.detach().clone() for k, v in hf_model.state_dict().items()}
    out = {
        "transformer.embedding.word_embeddings.weight": state["model.embed_tokens.weight"],
        "transformer.encoder.final_layernorm.weight": state["model.norm.weight"],
        "transformer.output_layer.weight": state["lm_head.weight"].clone(),
    }
    rotary = int(config.head_dim * config.rope_parameters["partial_rotary_factor"])
    # The original stores its (unused here) RoPE frequencies: dim = rotary_dim // 2 in THUDM's code.
    dim = rotary // 2
    out["transformer.rotary_pos_emb.inv_freq"] = 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))
    for i in range(config.num_hidden_layers):
        src, dst = f"model.layers.{i}.", f"transformer.encoder.layers.{i}."
        out[dst + "input_layernorm.weight"] = state[src + "input_layernorm.weight"]
        out[dst + "post_attention_layernorm.weight"] = state[src + "post_attention_layernorm.weight"]
        out[dst + "self_attention.query_key_value.weight"] = torch.cat(
            [state[src + f"self_attn.{p}_proj.weight"] for p in "qkv"])
        if config.attention_bias:
            out[dst + "self_attention.query_key_value.bias"] = torch.cat(
                [state[src + f"self_attn.{p}_proj.bias"] for p in "qkv"])
        out[dst + "self_attention.dense.weight"] = state[src + "self_attn.o_proj.weight"]
        out[dst + "mlp.dense_h_to_4h.weight"] = state[src + "mlp.gate_up_proj.weight"]
        out[dst + "mlp.dense_4h_to_h.weight"] = state[src + "mlp.down_proj.weight"]
    os.makedirs(path, exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(path, "model.safetensors"),
              metadata={"format": "pt"})
    with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as f:
        json.dump(chatglm_config(config), f, indent=2)
    return str(path)


def udhr_texts() -> dict[str, str]:
    """Every UDHR translation in tests/data/udhr, by key."""
    names = sorted(n for n in os.listdir(UDHR) if n.endswith(".txt"))
    texts = {}
    for name in names:
        with open(os.path.join(UDHR, name), encoding="utf-8") as f:
            texts[name[:-4]] = f.read()
    return texts


def tiny_chat_checkpoint(path, layout: str = "original", seed: int = 0) -> str:
    """A tiny random GLM-4 checkpoint with the real glm-4-9b-chat tokenizer, chat template and generation config.

    ``layout`` "original" keeps THUDM's tokenizer.model; "hf" writes tokenizer.json instead.
    """
    import shutil

    from tongues import ChatGLM4Tokenizer, GlmConfig, GlmForCausalLM

    torch.manual_seed(seed)
    config = GlmConfig(vocab_size=151552, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1, head_dim=8)
    GlmForCausalLM(config).save_pretrained(path)
    shutil.copy(os.path.join(GLM4_CHAT, "generation_config.json"), os.path.join(path, "generation_config.json"))
    if layout == "original":
        for name in ("tokenizer.model", "tokenizer_config.json"):
            shutil.copy(os.path.join(GLM4_CHAT, name), os.path.join(path, name))
    else:
        glm4_fast().save_pretrained(path)
    return str(path)


@lru_cache(maxsize=1)
def glm4_slow():
    """The real glm-4-9b-chat tokenizer (original layout), loaded once per test session."""
    from tongues import ChatGLM4Tokenizer

    return ChatGLM4Tokenizer.from_pretrained(GLM4_CHAT)


@lru_cache(maxsize=1)
def glm4_fast():
    """The same tokenizer in the -hf layout (built from the ranks once per test session: about two seconds)."""
    return glm4_slow().to_fast()
