"""Tokenizers: the shared API, the pure-Python and ``tokenizers``-backed bases, chat templates, AutoTokenizer.

Importing this package does not import torch (``return_tensors="pt"`` imports it when used).
"""

from .auto import AutoTokenizer, tokenizer_class_from_name
from .base import (
    BatchEncoding,
    CharSpan,
    PaddingStrategy,
    PreTrainedTokenizerBase,
    TensorType,
    TokenizerFileError,
    TokenSpan,
    TruncationStrategy,
)
from .chat import ChatTemplateError, render_chat_template
from .fast import PreTrainedTokenizerFast
from .slow import PreTrainedTokenizer, Trie

__all__ = [
    "AutoTokenizer",
    "BatchEncoding",
    "CharSpan",
    "ChatTemplateError",
    "PaddingStrategy",
    "PreTrainedTokenizer",
    "PreTrainedTokenizerBase",
    "PreTrainedTokenizerFast",
    "TensorType",
    "TokenSpan",
    "TokenizerFileError",
    "Trie",
    "TruncationStrategy",
    "render_chat_template",
    "tokenizer_class_from_name",
]
