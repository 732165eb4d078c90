"""Shared test set-up: deterministic seeds and quiet oracle logging."""

import os
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Lets test modules import shared helpers that live beside them (tests/*_helpers.py, tests/tokenizer_fixtures.py).
sys.path.insert(0, os.path.dirname(__file__))


def pytest_configure(config):
    import torch

    # Tiny test models run fastest on one thread; more threads only contend on a 2-core machine.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    import torch

    torch.manual_seed(0)
    yield
