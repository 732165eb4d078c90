"""kernels="packed": bf16 weights in oneDNN's blocked layout, or in tongues.native's pairs layout where it is
loaded (tongues/fast/packed.py).

On a CPU without native bf16 (no AVX-512 BF16 / AMX) nothing is packed; the tests then check that
"packed" falls back to "auto" exactly, and the packed-layer tests check the error that says why. The oneDNN
tests run with tongues.native hidden (as before it is loaded); the pairs tests load it.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tongues import BloomConfig, BloomForCausalLM, native
from tongues.fast import FastLinear, PackedLinear, prepare_for_decode
from tongues.fast.kernels import compiled_rows
from tongues.fast.packed import can_pack, pack_blocks, pack_pairs, unpack_blocks, unpack_pairs


@pytest.fixture(autouse=True)
def without_native(request, monkeypatch):
    """oneDNN's layout unless a test asks for the pairs layout (the ``pairs`` fixture)."""
    if "pairs" not in request.fixturenames and "blocks" not in request.fixturenames:
        monkeypatch.setattr(native, "loaded", lambda: None)


@pytest.fixture
def blocks():
    module = native.load()
    return module if module is not None and module.fp32_blocks_supported() else None


@pytest.fixture
def pairs():
    module = native.load()
    if module is None or not module.bf16_pairs_supported() or not can_pack():
        # the pairs kernel is AVX-512 BF16 code: elsewhere bf16 layers are not packed at all (checked above)
        assert not can_pack() or module is None or not module.bf16_pairs_supported()
        return None
    return module


def tiny_bloom() -> BloomForCausalLM:
    torch.manual_seed(0)
    config = BloomConfig(vocab_size=96, hidden_size=40, n_layer=2, n_head=4)
    return BloomForCausalLM(config).to(torch.bfloat16).eval()


def test_packed_layer_gives_f_linear_bit_for_bit():
    torch.manual_seed(0)
    for in_features, out_features, bias in ((40, 24, True), (33, 7, False), (64, 96, True)):
        linear = nn.Linear(in_features, out_features, bias=bias).to(torch.bfloat16)
        if not can_pack():
            with pytest.raises(ValueError, match="PackedLinear"):
                PackedLinear(linear.float())
            continue
        packed = PackedLinear(linear)
        for shape in ((1, in_features), (3, in_features), (17, in_features), (2, 5, in_features)):
            x = torch.randn(*shape).to(torch.bfloat16)
            with torch.inference_mode():
                got, expected = packed(x), F.linear(x, linear.weight, linear.bias)
            assert got.dtype == torch.bfloat16 and got.shape == expected.shape
            assert torch.equal(got, expected), (in_features, out_features, shape)
        x = torch.randn(4, 2 * in_features)[:, ::2]  # fp32, not contiguous: multiplied in bf16, returned as fp32
        with torch.inference_mode():
            got = packed(x)
        assert got.dtype == torch.float32
        assert torch.equal(got, F.linear(x.to(torch.bfloat16), linear.weight, linear.bias).float())


def test_packed_layer_refuses_gradients_with_a_clear_error():
    if not can_pack():
        pytest.raises(ValueError, PackedLinear, nn.Linear(8, 8))  # fp32: nothing to pack anywhere
        return
    packed = PackedLinear(nn.Linear(8, 8).to(torch.bfloat16))
    assert not packed.weight.requires_grad
    with pytest.raises(RuntimeError, match="prepare_for_decode"):
        packed(torch.randn(2, 8, dtype=torch.bfloat16, requires_grad=True))


def test_packed_model_keeps_its_logits_state_dict_and_tied_head():
    model, reference = tiny_bloom(), tiny_bloom()
    expected_state = {k: v.clone() for k, v in reference.state_dict().items()}
    prepare_for_decode(model, "packed")
    layers = [m for m in model.modules() if isinstance(m, PackedLinear)]
    if can_pack():
        assert len(layers) == 2 * 4  # query_key_value, dense, dense_h_to_4h, dense_4h_to_h per block
        assert isinstance(model.lm_head, FastLinear)  # tied to the embeddings: stays plain
        assert model.lm_head.weight is model.transformer.word_embeddings.weight
        assert "packed" in model.decode_kernels["transformer.h.0.self_attention.query_key_value"]
    else:
        assert layers == []
    ids = torch.randint(3, 96, (2, 9))
    with torch.inference_mode():
        assert torch.equal(model(ids).logits, prepare_for_decode(reference, "auto")(ids).logits)
    state = model.state_dict()
    assert list(state) == list(expected_state)
    for key, value in expected_state.items():
        assert not state[key].is_mkldnn and torch.equal(state[key], value), key


def saved_loaded_and_reloaded(model, tmp_path, ids, expected):
    """Save ``model`` (packed), load it packed, load its state into another packed model over random weights,
    and unpack it: every step gives ``expected`` logits for ``ids`` exactly. Returns the loaded model."""
    model.save_pretrained(tmp_path)
    loaded = BloomForCausalLM.from_pretrained(tmp_path, kernels="packed")
    with torch.inference_mode():
        assert torch.equal(loaded(ids).logits, expected)
    # load_state_dict into a packed model repacks what it is given
    other = prepare_for_decode(tiny_bloom(), "packed")
    torch.manual_seed(1)
    other.load_state_dict({k: torch.randn_like(v) if v.is_floating_point() else v for k, v in model.state_dict().items()})
    other.load_state_dict(model.state_dict())
    with torch.inference_mode():
        assert torch.equal(other(ids).logits, expected)
    prepare_for_decode(model, "none")  # back to plain nn.Linear, weights unpacked exactly
    assert not any(isinstance(m, (PackedLinear, FastLinear)) for m in model.modules())
    return loaded


def test_packed_model_round_trips_through_save_load_and_unpacking(tmp_path):
    model = prepare_for_decode(tiny_bloom(), "packed")
    ids = torch.randint(3, 96, (1, 7))
    with torch.inference_mode():
        expected = model(ids).logits
    loaded = saved_loaded_and_reloaded(model, tmp_path, ids, expected)
    assert loaded.dtype == torch.bfloat16
    with torch.inference_mode():
        assert torch.equal(model(ids).logits, expected)


def test_packed_falls_back_to_auto_where_oneDNN_has_no_native_bf16(monkeypatch):
    from tongues.fast import packed as packed_module

    monkeypatch.setattr(packed_module, "can_pack", lambda: False)
    model = prepare_for_decode(tiny_bloom(), "packed")
    assert not any(isinstance(m, PackedLinear) for m in model.modules())
    assert isinstance(model.transformer.h[0].mlp.dense_h_to_4h, FastLinear)


def test_a_tied_head_keeps_its_weight_and_gets_a_packed_copy_for_rows_the_compiled_kernel_does_not_take():
    model = prepare_for_decode(tiny_bloom(), "packed")
    head = model.lm_head
    assert head.copy_packed == can_pack()
    x = torch.randn(8, 40).to(torch.bfloat16)
    with torch.inference_mode():
        head(x[:1])  # one row: the copy only where the compiled kernel does not take the row (a small head)
        one_row_on_copy = can_pack() and not compiled_rows(torch.bfloat16, 1, head.weight.numel())
        assert ("_packed_copy" in head.__dict__) == one_row_on_copy
        got = head(x)
    assert ("_packed_copy" in head.__dict__) == can_pack()
    assert torch.equal(got, F.linear(x, head.weight))
    assert "_packed_copy" not in str(list(model.state_dict()))
    prepare_for_decode(model, "auto")
    assert not model.lm_head.copy_packed and "_packed_copy" not in model.lm_head.__dict__


@pytest.mark.parametrize("family", ["xglm", "glm"])
def test_packed_generation_equals_auto_in_the_other_families(family):
    """XGLM (tied head, sinusoidal positions) and GLM (untied head, grouped-query attention, rotary):
    greedy tokens and logits of a packed bf16 model equal the unpacked one's, batched and alone."""
    from test_decode_step import tiny_models

    torch.manual_seed(0)
    model = tiny_models()[family].to(torch.bfloat16).eval()
    reference = prepare_for_decode(model, "auto")
    ids = torch.randint(3, 100, (3, 6))
    with torch.inference_mode():
        expected_logits = reference(ids).logits
        expected = reference.generate(ids, max_new_tokens=8, do_sample=False, eos_token_id=None)
        prepare_for_decode(model, "packed")
        assert torch.equal(model(ids).logits, expected_logits)
        assert torch.equal(model.generate(ids, max_new_tokens=8, do_sample=False, eos_token_id=None), expected)
    assert any(isinstance(m, PackedLinear) for m in model.modules()) == can_pack()


def test_build_packed_copies_builds_the_heads_copy_at_once():
    from tongues.fast.packed import build_packed_copies

    model = prepare_for_decode(tiny_bloom(), "packed")
    assert build_packed_copies(model) == (1 if can_pack() else 0)
    assert ("_packed_copy" in model.lm_head.__dict__) == can_pack()
    x = torch.randn(6, 40).to(torch.bfloat16)
    with torch.inference_mode():
        assert torch.equal(model.lm_head(x), F.linear(x, model.lm_head.weight))


@pytest.mark.parametrize("N,K", [(1, 1), (7, 33), (32, 64), (33, 40), (100, 263), (257, 1024)])
def test_the_pairs_layout_round_trips_exactly(N, K):
    weight = torch.randn(N, K).to(torch.bfloat16)
    packed = pack_pairs(weight)
    assert packed.dtype == torch.bfloat16 and packed.numel() == -(-N // 32) * -(-K // 2) * 64
    assert torch.equal(unpack_pairs(packed, N, K), weight)
    # element (n, k) sits in block n // 32, at pair k // 2, channel n % 32, half k % 2
    n, k = N - 1, K - 1
    assert packed[((n // 32) * -(-K // 2) + k // 2) * 64 + (n % 32) * 2 + k % 2] == weight[n, k]


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 40])
@pytest.mark.parametrize("N,K", [(7, 33), (32, 64), (33, 40), (100, 263), (1027, 1024)])
def test_pairs_rows_equal_the_product(pairs, rows, N, K):
    if pairs is None:
        return
    generator = torch.Generator().manual_seed(rows * 13 + N)
    weight = torch.randn(N, K, generator=generator).to(torch.bfloat16)
    bias = torch.randn(N, generator=generator)
    x = torch.randn(rows + 2, K, generator=generator)[1:-1].to(torch.bfloat16)
    expected = x.double() @ weight.double().T + bias.double()
    for b in (bias, torch.empty(0)):
        got = pairs.bf16_pairs_rows(x.contiguous(), pack_pairs(weight), N, b)
        want = expected if b.numel() else expected - bias.double()
        assert got.dtype == torch.float32 and got.shape == (rows, N)
        # exact products, fp32 sums in another order
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


def test_pairs_rows_refuses_a_weight_of_the_wrong_size_with_a_clear_message(pairs):
    if pairs is None:
        return
    with pytest.raises(RuntimeError, match="pairs layout of an \\(8, 16\\)"):
        pairs.bf16_pairs_rows(torch.ones(2, 16, dtype=torch.bfloat16), torch.ones(100, dtype=torch.bfloat16), 8,
                              torch.empty(0))
    with pytest.raises(RuntimeError, match="bf16, contiguous"):
        pairs.bf16_pairs_rows(torch.ones(2, 16), pack_pairs(torch.ones(8, 16, dtype=torch.bfloat16)), 8, torch.empty(0))


def test_a_packed_model_takes_the_pairs_layout_once_tongues_native_is_loaded(pairs, monkeypatch):
    if pairs is None:
        return
    model, reference = tiny_bloom(), tiny_bloom()
    expected_state = {k: v.clone() for k, v in reference.state_dict().items()}
    with monkeypatch.context() as hidden:  # packed before tongues.native is loaded: oneDNN's layout
        hidden.setattr(native, "loaded", lambda: None)
        prepare_for_decode(model, "packed")
    layers = [m for m in model.modules() if isinstance(m, PackedLinear)]
    assert len(layers) == 8 and all(layer.layout == "onednn" for layer in layers)
    ids = torch.randint(3, 96, (2, 9))
    with torch.inference_mode():
        got = model(ids).logits  # the first product repacks each layer
        expected = prepare_for_decode(reference, "auto")(ids).logits
    assert all(layer.layout == "pairs" and not layer.weight.is_mkldnn for layer in layers)
    assert "pairs" in model.decode_kernels["transformer.h.0.self_attention.query_key_value"]
    torch.testing.assert_close(got.float(), expected.float(), rtol=2e-2, atol=2e-2)  # bf16 rounding of other sums
    state = model.state_dict()
    assert list(state) == list(expected_state)
    for key, value in expected_state.items():
        assert torch.equal(state[key], value), key
    # packed while loaded: the pairs layout at once; a batch of one row and of many give the same sums
    other = prepare_for_decode(tiny_bloom(), "packed")
    assert all(m.layout == "pairs" for m in other.modules() if isinstance(m, PackedLinear))
    with torch.inference_mode():
        torch.testing.assert_close(other(ids).logits, got, rtol=0, atol=0)
        alone = other(ids[:1]).logits
    torch.testing.assert_close(alone.float(), got[:1].float(), rtol=2e-2, atol=2e-2)


def test_a_pairs_model_round_trips_through_save_load_and_unpacking(pairs, tmp_path):
    if pairs is None:
        return
    model = prepare_for_decode(tiny_bloom(), "packed")
    ids = torch.randint(3, 96, (1, 7))
    with torch.inference_mode():
        expected = model(ids).logits
    loaded = saved_loaded_and_reloaded(model, tmp_path, ids, expected)
    assert all(m.layout == "pairs" for m in loaded.modules() if isinstance(m, PackedLinear))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


@pytest.mark.parametrize("rows", [1, 2, 3, 5, 8, 9, 17, 40])
@pytest.mark.parametrize("N,K", [(7, 33), (32, 64), (33, 40), (100, 263), (1027, 1024)])
def test_fp32_blocks_rows_equal_the_product(blocks, rows, N, K):
    generator = torch.Generator().manual_seed(rows * 17 + N)
    weight = torch.randn(N, K, generator=generator)
    packed = pack_blocks(weight)
    assert packed.numel() == -(-N // 32) * K * 32 and torch.equal(unpack_blocks(packed, N, K), weight)
    if blocks is None:
        return
    bias = torch.randn(N, generator=generator)
    x = torch.randn(rows + 2, K, generator=generator)[1:-1]
    expected = x.double() @ weight.double().T + bias.double()
    for b in (bias, torch.empty(0)):
        got = blocks.fp32_blocks_rows(x.contiguous(), packed, N, b)
        want = expected if b.numel() else expected - bias.double()
        assert got.dtype == torch.float32 and got.shape == (rows, N)
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))
    with pytest.raises(RuntimeError, match="blocks layout of an"):
        blocks.fp32_blocks_rows(x.contiguous(), packed[:-1].contiguous(), N, torch.empty(0))


def test_fp32_layers_are_packed_in_blocks_where_tongues_native_is_loaded(blocks, tmp_path):
    torch.manual_seed(0)
    config = BloomConfig(vocab_size=96, hidden_size=40, n_layer=2, n_head=4)
    model, reference = BloomForCausalLM(config).eval(), None
    expected_state = {k: v.clone() for k, v in model.state_dict().items()}
    reference = prepare_for_decode(BloomForCausalLM(config).eval(), "auto")
    reference.load_state_dict(expected_state)
    prepare_for_decode(model, "packed")
    layers = [m for m in model.modules() if isinstance(m, PackedLinear)]
    if blocks is None:
        assert layers == []  # no kernel for an fp32 packed layout here: the layers stay as "auto" makes them
        return
    assert len(layers) == 8 and all(layer.layout == "blocks" for layer in layers)
    assert "blocks" in model.decode_kernels["transformer.h.0.mlp.dense_h_to_4h"]
    ids = torch.randint(3, 96, (3, 9))
    with torch.inference_mode():
        torch.testing.assert_close(model(ids).logits, reference(ids).logits, rtol=1e-5, atol=1e-5)
        greedy = model.generate(ids, max_new_tokens=6, do_sample=False, eos_token_id=None)
        assert torch.equal(greedy, reference.generate(ids, max_new_tokens=6, do_sample=False, eos_token_id=None))
    state = model.state_dict()
    for key, value in expected_state.items():
        assert torch.equal(state[key], value), key
    model.save_pretrained(tmp_path)
    loaded = BloomForCausalLM.from_pretrained(tmp_path, kernels="packed")
    with torch.inference_mode():
        assert torch.equal(loaded(ids).logits, model(ids).logits)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_tied_heads_copy_takes_tongues_natives_layout_where_it_is_loaded(blocks, pairs, dtype):
    module = blocks if dtype == torch.float32 else pairs
    if module is None:
        return
    torch.manual_seed(0)
    model = BloomForCausalLM(BloomConfig(vocab_size=96, hidden_size=40, n_layer=1, n_head=4)).to(dtype).eval()
    prepare_for_decode(model, "packed")
    head = model.lm_head
    assert head.copy_packed and head.weight is model.transformer.word_embeddings.weight
    x = torch.randn(9, 40).to(dtype)
    with torch.inference_mode():
        head(x[:1])  # one row: tongues.native's dense_rows on the plain weight, no copy
        assert "_packed_copy" not in head.__dict__
        got = head(x)  # nine rows: the copy, built now
    layout, _ = head.__dict__["_packed_copy"]
    assert layout == ("blocks" if dtype == torch.float32 else "pairs")
    assert "tongues.native's packed layout" in head.kernel
    expected = F.linear(x.double(), head.weight.double())
    tol = 1e-5 if dtype == torch.float32 else 2 ** -7
    torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol * float(expected.abs().max()))
    assert "_packed_copy" not in str(list(model.state_dict()))
