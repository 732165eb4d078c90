"""Tiny tokenizers for tests, trained on the UDHR texts and saved in real checkpoint layouts.

Plain functions (not pytest fixtures) so any test file, ours or an oracle comparison, can import
them. Trained tokenizers are cached per process in a temporary folder: treat the returned folders
as read-only (copy one with ``copy_tokenizer_dir`` before changing files).

The BLOOM layout: ``tokenizer.json`` (byte-level BPE with BLOOM's pre-tokenizer, post-processor and
decoder, special tokens ``<unk> <s> </s> <pad>`` at ids 0..3) + the real bloom-560m
``tokenizer_config.json`` and ``special_tokens_map.json`` (tests/data/bloom-560m/).
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

DATA_DIR = Path(__file__).parent / "data"
UDHR_DIR = DATA_DIR / "udhr"
BLOOM_560M_DIR = DATA_DIR / "bloom-560m"
BLOOM_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")
# BLOOM's pre-tokenizer regex, as its tokenizer.json writes it (kept here independently of tongues' copy).
BLOOM_SPLIT_REGEX = " ?[^(\\s|[.,!?…。，、।۔،])]+"

TRAINING_LINES = 40

_tmp_root: Path | None = None


def _scratch(name: str) -> Path:
    global _tmp_root
    if _tmp_root is None:
        _tmp_root = Path(tempfile.mkdtemp(prefix="tongues-tokenizers-"))
        atexit.register(shutil.rmtree, _tmp_root, True)
    path = _tmp_root / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@lru_cache(maxsize=None)
def udhr_languages() -> tuple[str, ...]:
    """Keys of every UDHR text (``"fra"``, ``"cmn_hans"``, ...), sorted."""
    return tuple(sorted(path.stem for path in UDHR_DIR.glob("*.txt")))


@lru_cache(maxsize=None)
def _udhr_all_lines(language: str) -> tuple[str, ...]:
    text = (UDHR_DIR / f"{language}.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line.strip())


def udhr_lines(language: str, count: int = 3, start: int = 2) -> list[str]:
    """``count`` non-empty lines of one UDHR translation, from line ``start`` (0 is the title).

    The two one-line files (khk_mong, tgl_tglg) are cut into ``count`` pieces at spaces instead.
    """
    lines = _udhr_all_lines(language)
    if len(lines) < count:
        words = " ".join(lines).split(" ")
        step = -(-len(words) // count)
        return [" ".join(words[i : i + step]) for i in range(0, len(words), step)][:count]
    start = min(start, len(lines) - count)
    return list(lines[start : start + count])


def _bloom_pipeline(backend: Tokenizer, add_prefix_space: bool) -> None:
    backend.normalizer = None
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(BLOOM_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space, trim_offsets=True, use_regex=False),
        ]
    )
    backend.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=False)
    backend.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=False)


@lru_cache(maxsize=None)
def _trained_bloom_json(vocab_size: int) -> str:
    backend = Tokenizer(models.BPE(unk_token=None, fuse_unk=False))
    _bloom_pipeline(backend, add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(BLOOM_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The first lines of every translation: every script is seen, and training stays under a few seconds.
    texts = [_udhr_all_lines(language)[:TRAINING_LINES] for language in udhr_languages()]
    backend.train_from_iterator(texts, trainer=trainer)
    return backend.to_str()


def train_bloom_backend(vocab_size: int = 2000, add_prefix_space: bool = False) -> Tokenizer:
    """A fresh ``tokenizers.Tokenizer``: byte-level BPE with BLOOM's pipeline, trained on the UDHR texts."""
    backend = Tokenizer.from_str(_trained_bloom_json(vocab_size))
    if add_prefix_space:
        _bloom_pipeline(backend, add_prefix_space=True)
    return backend


def save_bloom_layout(backend: Tokenizer, directory: str | Path, add_prefix_space: bool = False) -> Path:
    """Write ``backend`` with bloom-560m's tokenizer_config.json and special_tokens_map.json into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    backend.save(str(directory / "tokenizer.json"))
    config = json.loads((BLOOM_560M_DIR / "tokenizer_config.json").read_text(encoding="utf-8"))
    if add_prefix_space:
        config["add_prefix_space"] = True
    (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    shutil.copyfile(BLOOM_560M_DIR / "special_tokens_map.json", directory / "special_tokens_map.json")
    return directory


@lru_cache(maxsize=None)
def bloom_tokenizer_dir(vocab_size: int = 2000, add_prefix_space: bool = False) -> str:
    """A folder in BLOOM's Hugging Face layout holding a tiny trained tokenizer (cached; read-only)."""
    directory = _scratch(f"bloom-v{vocab_size}-prefix{int(add_prefix_space)}")
    save_bloom_layout(train_bloom_backend(vocab_size, add_prefix_space), directory, add_prefix_space)
    return str(directory)


def copy_tokenizer_dir(source: str | Path, destination: str | Path) -> Path:
    """A writable copy of a cached tokenizer folder."""
    destination = Path(destination)
    shutil.copytree(source, destination, dirs_exist_ok=True)
    return destination
