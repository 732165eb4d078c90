"""The Python examples in the docs run as written (blocks fenced as ```python in the listed pages)."""

from __future__ import annotations

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).parent.parent.parent / "docs"
RUNNABLE = ["models/bloom.md", "models/xglm.md", "models/xlm.md", "models/glm.md", "models/gpt2.md", "training.md"]


@pytest.mark.parametrize("page", RUNNABLE)
def test_examples_run(page, tmp_path, monkeypatch):
    # Examples run in a scratch folder; they may read the repository's test data by its relative path.
    (tmp_path / "tests").symlink_to(DOCS.parent / "tests")
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)
    assert blocks, f"{page} has no python example"
    for code in blocks:
        exec(compile(code, f"{page}", "exec"), {})
