"""Training data: read text files or folders, split off a held-out slice, tokenise and pack into blocks.

Packing concatenates documents, each followed by the end-of-sequence id, and cuts the stream into
blocks of ``block_size`` tokens; every block is a full training example (no padding), and the model
shifts labels itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

TEXT_SUFFIXES = (".txt", ".md", ".text")


def list_text_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named in ``paths``, and the text files (``.txt``, ``.md``, ``.text``) under any folder, sorted.

    Raises:
        FileNotFoundError: a path that does not exist, or a folder with no text files.
    """
    files: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"no text files ({', '.join(TEXT_SUFFIXES)}) under the folder {path}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"training data not found: {path}")
    if not files:
        raise FileNotFoundError("no training data given")
    return files


def read_documents(paths: Iterable[str | os.PathLike]) -> list[str]:
    """One document (a file's UTF-8 text) per file of :func:`list_text_files`."""
    documents = []
    for path in list_text_files(paths):
        try:
            documents.append(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as error:
            raise ValueError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    return documents


def split_held_out(documents: Sequence[str], fraction: float) -> tuple[list[str], list[str]]:
    """Split each document by lines: the first ``1 - fraction`` of its lines train, the tail is held out.

    Splitting every document (rather than holding out whole documents) keeps each language or
    source represented on both sides. A document too short to split goes to training only.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"held-out fraction must be in [0, 1); got {fraction}")
    train, held_out = [], []
    for doc in documents:
        lines = doc.splitlines(keepends=True)
        cut = len(lines) - int(round(len(lines) * fraction))
        if fraction > 0 and cut == len(lines) and len(lines) > 1:
            cut -= 1
        if cut < 1:
            cut = len(lines)
        train.append("".join(lines[:cut]))
        if cut < len(lines):
            held_out.append("".join(lines[cut:]))
    return train, held_out


def split_documents(documents: Sequence[str], fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Hold out whole documents: a seeded random ``fraction`` of them (at least one when there are two or
    more and ``fraction > 0``), the rest train; both keep the documents' order.

    Unlike :func:`split_held_out`, no held-out text shares a document with training text, so the held-out
    loss measures how the model does on text it has never seen any of.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"held-out fraction must be in [0, 1); got {fraction}")
    count = int(round(len(documents) * fraction))
    if fraction > 0 and count == 0 and len(documents) > 1:
        count = 1
    order = torch.randperm(len(documents), generator=torch.Generator().manual_seed(seed)).tolist()
    held = set(order[:count])
    return ([d for i, d in enumerate(documents) if i not in held], [d for i, d in enumerate(documents) if i in held])


def pack(token_lists: Iterable[Sequence[int]], block_size: int, eos_token_id: int | None) -> torch.Tensor:
    """Concatenate documents (each followed by ``eos_token_id`` when given) and cut into (N, block_size) blocks.

    The incomplete last block is dropped. Raises ValueError when there is not one full block.
    """
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2; got {block_size}")
    stream: list[int] = []
    for ids in token_lists:
        stream.extend(ids)
        if eos_token_id is not None:
            stream.append(eos_token_id)
    n_blocks = len(stream) // block_size
    if n_blocks == 0:
        raise ValueError(f"the data holds {len(stream)} tokens, fewer than one block of block_size={block_size}")
    return torch.tensor(stream[: n_blocks * block_size], dtype=torch.long).view(n_blocks, block_size)


def encoder_for(tokenizer) -> Callable[[str], list[int]]:
    """A function text -> ids without special tokens, for a tongues tokenizer or a ``tokenizers.Tokenizer``."""
    try:
        from tokenizers import Tokenizer
    except ImportError:  # pragma: no cover - tokenizers is a dependency
        Tokenizer = ()
    if isinstance(tokenizer, Tokenizer):
        return lambda text: tokenizer.encode(text, add_special_tokens=False).ids
    # Whole documents are longer than model_max_length by design (packing cuts them); no warning for that.
    return lambda text: tokenizer.encode(text, add_special_tokens=False, verbose=False)


def eos_id_of(tokenizer) -> int | None:
    """The end-of-sequence id of a tongues tokenizer or a raw ``tokenizers.Tokenizer`` (``</s>``), if any."""
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None and hasattr(tokenizer, "token_to_id"):
        for name in ("</s>", "<|endoftext|>", "<eos>"):
            eos = tokenizer.token_to_id(name)
            if eos is not None:
                break
    return eos


def load_tokenizer(path: str | os.PathLike):
    """The tokenizer saved in ``path``: through ``AutoTokenizer`` when tongues has it, else ``tokenizer.json``."""
    try:
        from ..tokenization.auto import AutoTokenizer
    except ImportError:
        AutoTokenizer = None
    if AutoTokenizer is not None:
        return AutoTokenizer.from_pretrained(os.fspath(path))
    tokenizer_file = Path(path) / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise FileNotFoundError(f"{path} has no tokenizer.json")
    from tokenizers import Tokenizer

    return Tokenizer.from_file(os.fspath(tokenizer_file))


def tokenize_and_pack(documents: Sequence[str], tokenizer, block_size: int) -> torch.Tensor:
    """(N, block_size) token blocks of ``documents``."""
    encode = encoder_for(tokenizer)
    return pack((encode(doc) for doc in documents), block_size, eos_id_of(tokenizer))
