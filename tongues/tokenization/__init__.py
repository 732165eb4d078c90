"""Tokenizers: the shared API, the pure-Python and ``tokenizers``-backed bases, chat templates, AutoTokenizer.

Modules: ``base`` (the API), ``encoding`` (``BatchEncoding``), ``options`` (``EncodeOptions``),
``files`` (reading and writing tokenizer folders), ``slow`` / ``fast`` (the two bases), ``chat``, ``auto``.

Importing this package does not import torch (``return_tensors="pt"`` imports it when used).
"""

from .auto import AutoTokenizer, tokenizer_class_from_name
from .base import PreTrainedTokenizerBase
from .chat import ChatTemplateError, render_chat_template
from .encoding import BatchEncoding, CharSpan, PaddingStrategy, TensorType, TokenSpan, TruncationStrategy
from .fast import PreTrainedTokenizerFast
from .files import TokenizerFileError
from .options import EncodeOptions
from .slow import PreTrainedTokenizer, Trie

__all__ = [
    "AutoTokenizer",
    "BatchEncoding",
    "CharSpan",
    "ChatTemplateError",
    "EncodeOptions",
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
