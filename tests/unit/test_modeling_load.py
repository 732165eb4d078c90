"""PreTrainedModel loading details: rebuilt buffers beside loaded weights, file resolution."""

from __future__ import annotations

import json

import torch
from torch import nn

from tongues import BloomConfig
from tongues.checkpoint.files import resolve_file
from tongues.modeling import PreTrainedModel


class ScaledLinear(nn.Module):
    """A weight from the checkpoint beside a buffer computed at construction (never saved)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3, 3))
        self.register_buffer("table", torch.arange(3.0), persistent=False)

    def reset_buffers(self) -> None:
        self.table = torch.arange(3.0)


class Tiny(PreTrainedModel):
    config_class = BloomConfig

    def __init__(self, config) -> None:
        super().__init__(config)
        self.layer = ScaledLinear()
        self.post_init()


def test_rebuilt_buffer_keeps_the_loaded_weight_of_its_module(tmp_path):
    model = Tiny(BloomConfig(hidden_size=8, n_head=2))
    model.save_pretrained(tmp_path)
    loaded = Tiny.from_pretrained(tmp_path)
    torch.testing.assert_close(loaded.layer.weight, model.layer.weight, atol=0, rtol=0)
    torch.testing.assert_close(loaded.layer.table, torch.arange(3.0))


def test_a_config_file_path_resolves_only_the_config(tmp_path):
    path = tmp_path / "my-config.json"
    path.write_text(json.dumps({"model_type": "bloom"}))
    (tmp_path / "generation_config.json").write_text("{}")
    assert resolve_file(str(path), "config.json") == str(path)
    assert resolve_file(str(path), "generation_config.json") == str(tmp_path / "generation_config.json")
    assert resolve_file(str(path), "tokenizer_config.json", required=False) is None
