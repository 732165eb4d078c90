"""The fast CPU decode path (tongues/fast/): kernels, the kernel selector, and who calls it (load, not generate)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tongues import BloomConfig, BloomForCausalLM
from tongues.fast import FastLinear, QuantLinear, fp32_linear, prepare_for_decode, upcast_linear
from tongues.slot_cache import SlotView


@pytest.mark.parametrize("rows", [1, 3, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_upcast_linear_matches_linear(rows, dtype):
    torch.manual_seed(0)
    x, w, b = torch.randn(2, rows, 96), torch.randn(300, 96), torch.randn(300)
    expected = F.linear(x, w.to(dtype).float(), b.to(dtype).float())
    got = upcast_linear(x.to(dtype), w.to(dtype), b.to(dtype), slice_elements=96 * 7)  # several slices, one short
    assert got.dtype == dtype and got.shape == (2, rows, 300)
    tolerance = 1e-5 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(got.float(), expected.to(dtype).float(), atol=tolerance * 10, rtol=tolerance)


@pytest.mark.parametrize("rows", [2, 3, 64])
def test_int8_weights_with_bf16_activations_use_bf16_products_within_bf16_rounding(rows, monkeypatch):
    from tongues.fast import kernels

    torch.manual_seed(1)
    x = torch.randn(2, rows, 96).bfloat16()
    q, scale, b = torch.randint(-127, 128, (300, 96), dtype=torch.int8), torch.rand(300) / 50, torch.randn(300)
    expected = (x.double() @ (q.double() * scale.double()[:, None]).T + b.double())
    slices = []  # the dtype the weight slices are widened to
    real = kernels._scratch
    monkeypatch.setattr(kernels, "_scratch", lambda numel, device, dtype=torch.float32: slices.append(dtype)
                        or real(numel, device, dtype))
    got = upcast_linear(x, q, b, scale, slice_elements=96 * 7)
    assert got.dtype == torch.bfloat16 and got.shape == (2, rows, 300)
    # bf16 slices only where oneDNN multiplies bf16 natively
    assert slices == [torch.bfloat16 if kernels.native_bf16() else torch.float32]
    # the unscaled sums are rounded to bf16 once, then the result once more: within two bf16 steps
    torch.testing.assert_close(got.double(), expected, rtol=2 ** -7, atol=2 ** -7 * float(expected.abs().max()))
    monkeypatch.setattr(kernels, "native_bf16", lambda: True)  # the bf16 slices, on any CPU
    plain = upcast_linear(x, q, b, scale, slice_elements=96 * 7)
    assert slices[-1] == torch.bfloat16
    torch.testing.assert_close(plain.double(), expected, rtol=2 ** -7, atol=2 ** -7 * float(expected.abs().max()))


def test_upcast_linear_names_the_bad_shape():
    with pytest.raises(ValueError, match=r"\(4, 5\)"):
        upcast_linear(torch.randn(1, 3), torch.randn(4, 5))


def test_prepare_for_decode_swaps_linears_and_keeps_parameters():
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8).bfloat16(), nn.Linear(8, 8).to(torch.float64))
    weights = [m.weight for m in model]
    prepare_for_decode(model)
    assert isinstance(model[0], FastLinear) and isinstance(model[1], FastLinear)
    assert type(model[2]) is nn.Linear  # float64: no kernel of ours
    assert [m.weight for m in model] == weights
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
    for layer, dtype, tolerance in ((model[0], torch.float32, 1e-5), (model[1], torch.bfloat16, 2e-2)):
        for rows in (1, 4, 17):  # the compiled row kernel (1-16 rows), widened slices + BLAS
            x = torch.randn(rows, 8).to(dtype)
            with torch.no_grad():
                torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=tolerance,
                                           rtol=tolerance)


def test_fp32_linear_matches_f_linear_for_any_input_shape():
    torch.manual_seed(0)
    weight, bias = torch.randn(300, 64), torch.randn(300)
    for shape in ((64,), (1, 64), (3, 64), (2, 5, 64), (0, 64)):
        x = torch.randn(*shape)
        got = fp32_linear(x, weight, bias)
        assert got.shape == (*shape[:-1], 300)
        torch.testing.assert_close(got, F.linear(x, weight, bias), atol=1e-5, rtol=1e-5)
    transposed = torch.randn(64, 300).t()  # not contiguous: falls back to F.linear
    x = torch.randn(2, 64)
    torch.testing.assert_close(fp32_linear(x, transposed), F.linear(x, transposed), atol=1e-5, rtol=1e-5)


def test_kernels_none_restores_plain_linears_on_the_same_parameters():
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))
    model.append(model[0])  # one layer reused in two places gets one module
    weights = [m.weight for m in model]
    prepare_for_decode(model)
    assert model[2] is model[0] and isinstance(model[0], FastLinear)
    prepare_for_decode(model)  # idempotent
    assert isinstance(model[0], FastLinear) and [m.weight for m in model] == weights
    prepare_for_decode(model, "none")
    assert all(type(m) is nn.Linear for m in model) and [m.weight for m in model] == weights
    with pytest.raises(ValueError, match="kernels must be one of.*'fast'"):
        prepare_for_decode(model, "fast")


def tiny_bloom():
    torch.manual_seed(0)
    return BloomForCausalLM(BloomConfig(vocab_size=64, hidden_size=32, n_layer=2, n_head=4)).eval()


def test_from_pretrained_selects_kernels_and_generate_does_not(tmp_path):
    tiny_bloom().save_pretrained(tmp_path)
    fast = BloomForCausalLM.from_pretrained(tmp_path)
    assert isinstance(fast.lm_head, FastLinear) and fast.lm_head.weight is fast.transformer.word_embeddings.weight
    assert fast.decode_kernels["transformer.h.1.mlp.dense_4h_to_h"].startswith("float32:")
    plain = BloomForCausalLM.from_pretrained(tmp_path, kernels="none")
    assert all(type(m) is not FastLinear for m in plain.modules())
    before = {name: type(m) for name, m in plain.named_modules()}
    out = plain.generate(torch.tensor([[3, 4, 5]]), max_new_tokens=3, do_sample=False)
    assert {name: type(m) for name, m in plain.named_modules()} == before  # no swap as a side effect
    assert torch.equal(out, fast.generate(torch.tensor([[3, 4, 5]]), max_new_tokens=3, do_sample=False))
    with pytest.raises(ValueError, match="kernels must be one of"):
        BloomForCausalLM.from_pretrained(tmp_path, kernels="fast")


def test_quantised_layers_show_their_kernels(tmp_path):
    tiny_bloom().save_pretrained(tmp_path)
    model = BloomForCausalLM.from_pretrained(tmp_path, quantization="int8")
    assert isinstance(model.lm_head, QuantLinear)
    assert model.decode_kernels["lm_head"].startswith("int8")
    model.prepare_for_decode("none")  # quantised layers keep the kernels chosen at load
    assert isinstance(model.lm_head, QuantLinear)


def test_generate_decodes_into_one_slot_cache_row_per_sequence():
    model = tiny_bloom()
    prompt = torch.tensor([[0, 3, 4], [5, 6, 7]])
    mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    out = model.generate(prompt, attention_mask=mask, max_new_tokens=4, do_sample=False,
                         num_return_sequences=1, return_dict_in_generate=True, pad_token_id=0)
    cache = out.past_key_values
    assert isinstance(cache, SlotView) and cache.lengths.tolist() == [6, 6]
    legacy = cache.to_legacy_cache()
    assert len(legacy) == 2 and legacy[0][0].shape == (2, 4, 6, 8)
    # the returned cache resumes generation: same tokens as one longer call
    longer = model.generate(prompt, attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0)
    resumed = model.generate(out.sequences, attention_mask=torch.cat([mask, torch.ones(2, 4, dtype=torch.long)], 1),
                             past_key_values=cache, max_new_tokens=2, do_sample=False, pad_token_id=0)
    assert torch.equal(resumed, longer)
    beams = model.generate(prompt, attention_mask=mask, max_new_tokens=2, num_beams=2,
                           return_dict_in_generate=True, pad_token_id=0)
    assert not isinstance(beams.past_key_values, SlotView)  # beam search reorders rows: DynamicCache
