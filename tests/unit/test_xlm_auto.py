"""The xlm family is wired into the registry: Auto classes, AutoTokenizer and the package exports."""

from __future__ import annotations

import os

import pytest
import torch
from xlm_helpers import config_kwargs

import tongues

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "xlm")

TASKS = {
    "AutoModel": "XLMModel",
    "AutoModelForCausalLM": "XLMWithLMHeadModel",
    "AutoModelForMaskedLM": "XLMWithLMHeadModel",
    "AutoModelForSequenceClassification": "XLMForSequenceClassification",
    "AutoModelForTokenClassification": "XLMForTokenClassification",
    "AutoModelForQuestionAnswering": "XLMForQuestionAnsweringSimple",
    "AutoModelForMultipleChoice": "XLMForMultipleChoice",
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("xlm")
    torch.manual_seed(0)
    tongues.XLMModel(tongues.XLMConfig(**config_kwargs(n_langs=2))).save_pretrained(str(path))
    tongues.XLMTokenizer(os.path.join(DATA, "vocab.json"), os.path.join(DATA, "merges.txt")).save_pretrained(str(path))
    return str(path)


@pytest.mark.parametrize("auto_name", list(TASKS))
def test_auto_models(checkpoint, auto_name):
    model = getattr(tongues, auto_name).from_pretrained(checkpoint)
    assert type(model).__name__ == TASKS[auto_name]
    assert type(tongues.AutoConfig.from_pretrained(checkpoint)) is tongues.XLMConfig


def test_auto_tokenizer(checkpoint):
    tokenizer = tongues.AutoTokenizer.from_pretrained(checkpoint)
    assert type(tokenizer) is tongues.XLMTokenizer
    assert tokenizer("hello world")["input_ids"][0] == 0


def test_every_spec_name_resolves():
    for name in ("XLMConfig", "XLMTokenizer", "XLMForQuestionAnsweringOutput", "XLMModel", "XLMWithLMHeadModel",
                 "XLMForSequenceClassification", "XLMForQuestionAnsweringSimple", "XLMForQuestionAnswering",
                 "XLMForTokenClassification", "XLMForMultipleChoice", "XLMPreTrainedModel"):
        assert getattr(tongues, name).__name__ == name
    assert tongues.XLMWithLMHeadModel.can_generate() and not tongues.XLMModel.can_generate()
