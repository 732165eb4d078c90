"""The TF/Flax classes are optional: importing tongues loads neither framework, and a missing one reads as
an ImportError subclass naming the extra to install."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tongues.flax import MissingFrameworkError, require_flax
from tongues.tf import require_tf


def test_importing_tongues_loads_no_framework():
    code = ("import sys, tongues, tongues.flax, tongues.tf\n"
            "assert 'FlaxBloomModel' in tongues.__all__ and 'TFXLMModel' in tongues.__all__\n"
            "print(sorted(m for m in ('jax', 'flax', 'tensorflow', 'tf_keras', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("require, extra, module", [(require_flax, "flax", "jax"), (require_tf, "tf", "tensorflow")])
def test_missing_framework_names_the_extra(monkeypatch, require, extra, module):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    with pytest.raises(MissingFrameworkError, match=rf"pip install tongues\[{extra}\]") as err:
        require()
    assert isinstance(err.value, ImportError) and module in str(err.value)
