"""``run_layers`` (the block loop every family shares) and the registry that finds family folders."""

from __future__ import annotations

import subprocess
import sys

import torch
from torch import nn

from tongues.layers.decoder import PerLayer, finish, run_layers
from tongues.layers.inputs import Collector


class Scale(nn.Module):
    """A block: x * factor (+ offset), with a fake attention map that records what it was given."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = nn.Parameter(torch.tensor(factor))

    def forward(self, x, cache, head_mask, output_attentions, offset=0.0, per_layer=None):
        seen = {"cache": cache, "head_mask": head_mask, "per_layer": per_layer}
        return x * self.factor + offset, seen


def test_run_layers_threads_inputs_and_collects_each_blocks_input():
    blocks = nn.ModuleList(Scale(f) for f in (2.0, 3.0))
    collect = Collector(hidden_states=True, attentions=True)
    x = torch.ones(1, 2, 3)
    out = run_layers(blocks, x, collect, "the cache", ["m0", "m1"], True, offset=1.0,
                     per_layer=PerLayer(("a", "b")))
    torch.testing.assert_close(out, torch.full((1, 2, 3), 10.0))  # (1 * 2 + 1) * 3 + 1
    assert [float(h[0, 0, 0].detach()) for h in collect.hidden] == [1.0, 3.0]
    assert [a["head_mask"] for a in collect.attentions] == ["m0", "m1"]
    assert [a["per_layer"] for a in collect.attentions] == ["a", "b"]
    assert all(a["cache"] == "the cache" for a in collect.attentions)


def test_run_layers_skips_blocks_and_checkpointing_gives_no_cache():
    blocks = nn.ModuleList(Scale(f) for f in (2.0, 3.0))
    collect = Collector(hidden_states=True, attentions=True)
    calls = iter([True, False])
    out = run_layers(blocks, torch.ones(1, 1, 1), collect, "cache", [None, None], False, skip=lambda: next(calls))
    assert float(out.detach()) == 3.0 and len(collect.hidden) == 2 and len(collect.attentions) == 1
    x = torch.ones(1, 1, 1, requires_grad=True)
    collect = Collector(hidden_states=False, attentions=True)
    out = run_layers(blocks, x, collect, "cache", [None, None], False, checkpointing=True)
    out.sum().backward()
    assert [a["cache"] for a in collect.attentions] == [None, None]
    assert float(blocks[0].factor.grad) == 3.0


def test_finish_gives_the_tuple_when_asked():
    class Config:
        return_dict = True

    from tongues.outputs import BaseModelOutput

    out = BaseModelOutput(last_hidden_state=torch.ones(1))
    assert finish(out, None, Config) is out
    assert finish(out, False, Config) == (out.last_hidden_state,)


def test_registry_finds_every_family_folder_and_the_chatglm_alias():
    from tongues import registry

    assert registry.FAMILIES == {"bloom": "tongues.models.bloom", "chatglm": "tongues.models.glm",
                                 "glm": "tongues.models.glm", "gpt2": "tongues.models.gpt2",
                                 "xglm": "tongues.models.xglm", "xlm": "tongues.models.xlm"}
    for model_type in registry.FAMILIES:
        family = registry.family(model_type)
        assert getattr(family, family.CONFIG).model_type in (model_type, "glm")
        assert set(family.MODELS) <= set(registry.TASKS)
    exports = registry.exports()
    assert exports["GPT2LMHeadModel"] == "tongues.models.gpt2" and exports["ChatGLM4Tokenizer"] == "tongues.models.glm"


def test_public_names_come_from_the_family_folders_without_torch():
    code = ("import sys, tongues\n"
            "names = set(tongues.__all__)\n"
            "assert {'GPT2Config', 'GPT2LMHeadModel', 'GPT2TokenizerFast', 'FlaxBloomModel', 'TFXLMModel',\n"
            "        'XLMForQuestionAnsweringOutput', 'GlmPreTrainedModel', 'AutoModel'} <= names, names\n"
            "assert tongues.GPT2Config.model_type == 'gpt2'\n"
            "assert 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
