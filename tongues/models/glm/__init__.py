"""GLM-4 (THUDM/glm-4-9b, glm-4-9b-chat): the ``-hf`` layout natively, THUDM's ``chatglm`` layout converted on load."""

from .. import lazy_names
from .configuration_glm import GlmConfig

# THUDM's original checkpoints say model_type "chatglm"; this folder converts them while loading.
MODEL_TYPES = ("glm", "chatglm")
CONFIG = "GlmConfig"
MODELS = {
    "base": "GlmModel",
    "causal-lm": "GlmForCausalLM",
    "sequence-classification": "GlmForSequenceClassification",
    "token-classification": "GlmForTokenClassification",
}
# The original layout's tiktoken tokenizer (tokenizer.model) and the -hf layout's tokenizer.json.
TOKENIZERS = ("ChatGLM4Tokenizer", "PreTrainedTokenizerFast")
EXPORTS = ("GlmPreTrainedModel",)

# Model and tokenizer classes import torch / tokenizers: load them on first use only.
__getattr__ = lazy_names(__name__, {
    "modeling_glm": (*MODELS.values(), "GlmPreTrainedModel"),
    "tokenization_chatglm4": ("ChatGLM4Tokenizer",),
    "tongues.tokenization.fast": ("PreTrainedTokenizerFast",),
})
