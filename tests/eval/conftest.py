"""Fixtures for the ``tongues eval`` tests; helpers live in eval_helpers.py beside this file."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from eval_helpers import save_tokenizer_and_model  # noqa: E402


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """checkpoint(family) -> folder: the embedded model, or a tiny random one saved by the oracle with a tokenizer."""
    made: dict[str, str] = {}

    def get(family: str) -> str:
        if family == "embedded":
            from tongues.assets import default_model_path

            return str(default_model_path())
        if family not in made:
            made[family] = save_tokenizer_and_model(tmp_path_factory.mktemp(family), family)
        return made[family]

    return get
