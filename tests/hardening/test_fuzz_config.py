"""Fuzzing config loading: whatever JSON (or bytes) config.json holds, loading raises nothing but our
documented errors, ConfigError or CheckpointError (both ValueError subclasses, naming the culprit).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tongues
from tongues import AutoConfig, CheckpointError, ConfigError

FUZZ = settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

CONFIGS = ["BloomConfig", "XGLMConfig", "XLMConfig", "GlmConfig"]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)


def known_keys(config_name: str) -> list[str]:
    """The keys a default config writes: the fields a hand-edited config.json would touch."""
    return sorted(k for k in getattr(tongues, config_name)().to_dict() if k != "model_type")


def load(tmp_path, text: str | bytes, cls):
    path = tmp_path / "config.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return cls.from_pretrained(tmp_path)


@pytest.mark.parametrize("config_name", CONFIGS)
def test_random_values_for_known_keys(tmp_path, config_name):
    cls = getattr(tongues, config_name)
    keys = known_keys(config_name)

    @FUZZ
    @given(st.dictionaries(st.sampled_from(keys), json_values, min_size=1, max_size=4))
    def check(overrides):
        data = {**cls().to_dict(), **overrides}
        data["model_type"] = cls.model_type
        try:
            config = load(tmp_path, json.dumps(data), cls)
        except (ConfigError, CheckpointError) as err:
            assert str(err)
            return
        # Whatever loaded must also save and load again.
        config.save_pretrained(tmp_path / "again")
        cls.from_pretrained(tmp_path / "again")

    check()


@pytest.mark.parametrize("config_name", CONFIGS)
def test_random_json_documents(tmp_path, config_name):
    cls = getattr(tongues, config_name)

    @FUZZ
    @given(json_values)
    def check(document):
        try:
            load(tmp_path, json.dumps(document), cls)
        except (ConfigError, CheckpointError):
            pass

    check()


def test_random_bytes_and_model_types_through_auto_config(tmp_path):
    @FUZZ
    @given(st.one_of(st.binary(max_size=40), st.text(max_size=40).map(str.encode),
                     st.builds(lambda t, extra: json.dumps({"model_type": t, **extra}),
                               st.one_of(st.sampled_from(["bloom", "xglm", "xlm", "glm", "chatglm", "gpt2", ""]),
                                         json_values),
                               st.dictionaries(st.text(max_size=6), json_values, max_size=3))))
    def check(content):
        try:
            load(tmp_path, content, AutoConfig)
        except (ConfigError, CheckpointError):
            pass

    check()
