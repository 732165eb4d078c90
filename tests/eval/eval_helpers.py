"""Helpers for the ``tongues eval`` tests: tiny checkpoints saved by the oracle, and lm-eval pointed at
local copies of the task data through task YAMLs that include lm-eval's own (so its prompts are used)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

FAMILIES = ("embedded", "bloom", "xglm", "glm")


def lm_eval_tasks_dir() -> Path:
    import lm_eval

    return Path(lm_eval.__file__).parent / "tasks"


def local_task_yaml(folder: Path, task: str, include: str, data_files: dict[str, str]) -> str:
    """Write ``local_<task>.yaml``: lm-eval's ``include`` YAML with its data read from local JSON Lines files."""
    files = "".join(f"    {split}: {path}\n" for split, path in data_files.items())
    (folder / f"local_{task}.yaml").write_text(
        f"include: {lm_eval_tasks_dir() / include}\ntask: local_{task}\ndataset_path: json\ndataset_name: null\n"
        f"dataset_kwargs:\n  cache_dir: {folder / 'cache'}\n  data_files:\n{files}", encoding="utf-8")
    return f"local_{task}"


def write_jsonl(path: Path, docs) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs), encoding="utf-8")
    return str(path)


def shipped_task_configs(folder: Path, tasks: list[str]) -> list[str]:
    """lm-eval task names reading the data tongues ships, for ``xcopa_<lang>`` and ``xwinograd_<lang>``."""
    from tongues.eval.tasks import DATA, xwinograd_docs

    names = []
    for task in tasks:
        family, language = task.split("_")
        if family == "xcopa":
            data = DATA / "xcopa" / "data" / language
            names.append(local_task_yaml(folder, task, f"xcopa/default_{language}.yaml",
                                         {"test": str(data / f"test.{language}.jsonl"),
                                          "validation": str(data / f"val.{language}.jsonl")}))
        else:
            path = write_jsonl(folder / f"xwinograd_{language}.jsonl", xwinograd_docs(language))
            names.append(local_task_yaml(folder, task, f"xwinograd/xwinograd_{language}.yaml", {"test": path}))
    return names


def data_dir_docs(count: int = 5):
    """Small documents in the fields of xstorycloze, xnli and paws-x (lm-eval reads them through its own YAMLs)."""
    words = ["the river", "a small bird", "our neighbours", "the old library", "every child", "a tired farmer"]
    story, nli, paws = [], [], []
    for i in range(count):
        a, b = words[i % len(words)], words[(i + 2) % len(words)]
        story.append({"story_id": str(i), "input_sentence_1": f"{a.capitalize()} woke up early.",
                      "input_sentence_2": f"It met {b}.", "input_sentence_3": "They talked for hours.",
                      "input_sentence_4": "Night came.", "sentence_quiz1": f"{a.capitalize()} slept well.",
                      "sentence_quiz2": "The moon sang.", "answer_right_ending": 1 + i % 2})
        nli.append({"premise": f"{a.capitalize()} is near {b}", "hypothesis": f"{b} is far away", "label": i % 3})
        paws.append({"id": i, "sentence1": f"{a.capitalize()} saw {b} ( again ) .",
                     "sentence2": f"{b.capitalize()} was seen by {a} .", "label": i % 2})
    return story, nli, paws


# family: (lm-eval's YAML for one language, the folder under --data-dir, the splits written)
DATA_DIR_FAMILIES = {
    "xstorycloze": ("xstorycloze/default_{}.yaml", "xstorycloze", ("train", "eval")),
    "xnli": ("xnli/xnli_{}.yaml", "xnli", ("train", "validation")),
    "paws": ("paws-x/paws_{}.yaml", "pawsx", ("train", "test")),
}


def data_dir_task_configs(folder: Path, tasks: list[str], count: int = 5) -> list[str]:
    """lm-eval task names for ``xstorycloze_<lang>``, ``xnli_<lang>`` and ``paws_<lang>``, reading
    :func:`data_dir_docs` written in tongues' ``--data-dir`` layout under ``folder / "data"`` (the
    train split in reverse order, so few-shot draws differ from the documents scored)."""
    docs = dict(zip(DATA_DIR_FAMILIES, data_dir_docs(count)))
    names = []
    for task in tasks:
        family, language = task.rsplit("_", 1)
        include, data_folder, splits = DATA_DIR_FAMILIES[family]
        paths = {split: write_jsonl(folder / "data" / data_folder / language / f"{split}.jsonl",
                                    docs[family][::-1] if split == "train" else docs[family]) for split in splits}
        if family == "paws":  # lm-eval's paws-x also declares a validation split
            paths["validation"] = paths["train"]
        names.append(local_task_yaml(folder, task, include.format(language), paths))
    return names


def save_tokenizer_and_model(path: Path, family: str) -> str:
    import torch
    import transformers

    torch.manual_seed(0)
    if family == "bloom":
        from tokenizer_fixtures import bloom_tokenizer_dir

        shutil.copytree(bloom_tokenizer_dir(), path, dirs_exist_ok=True)
        config = transformers.BloomConfig(vocab_size=2000, hidden_size=32, n_layer=2, n_head=4,
                                          bos_token_id=1, eos_token_id=2, pad_token_id=3)
        model = transformers.BloomForCausalLM(config)
    elif family == "xglm":
        from xglm_helpers import SPM_MODEL

        from tongues import XGLMTokenizerFast

        tokenizer = XGLMTokenizerFast(vocab_file=str(SPM_MODEL))
        tokenizer.save_pretrained(path)
        config = transformers.XGLMConfig(vocab_size=len(tokenizer), d_model=32, ffn_dim=37, num_layers=2,
                                         attention_heads=4, max_position_embeddings=256, dropout=0.0,
                                         attention_dropout=0.0)
        model = transformers.XGLMForCausalLM(config)
    elif family == "glm":
        from glm_helpers import glm4_fast

        tokenizer = glm4_fast()
        tokenizer.save_pretrained(path)
        config = transformers.GlmConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=48,
                                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                        head_dim=8, max_position_embeddings=256, tie_word_embeddings=True,
                                        pad_token_id=tokenizer.pad_token_id,
                                        eos_token_id=tokenizer.eos_token_id)
        model = transformers.GlmForCausalLM(config)
    else:
        raise ValueError(family)
    # Random, not default, norms and biases, so that they matter.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                param.normal_(0.5 if "norm" in name else 0.0, 0.1)
    model.eval().save_pretrained(str(path))
    return str(path)
