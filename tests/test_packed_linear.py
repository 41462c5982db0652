"""fairseq_slt.models.packed_linear: the oneDNN pre-packed linear used by CPU beam search."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fairseq_slt.models.packed_linear import PackedLinear, pack_linears, packing_available

pytestmark = pytest.mark.skipif(not packing_available(), reason="torch built without oneDNN")


@pytest.mark.parametrize("shape", [(1, 64), (5, 64), (57, 64), (1, 5, 64), (3, 5, 64)])
def test_same_product_as_f_linear(shape):
    torch.manual_seed(0)
    linear = nn.Linear(64, 96)
    packed = PackedLinear(linear, rows=5)
    x = torch.randn(shape)
    with torch.no_grad():
        got, want = packed(x), F.linear(x, linear.weight, linear.bias)
    assert got.shape == want.shape == shape[:-1] + (96,)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_without_bias_and_outside_inference():
    torch.manual_seed(0)
    linear = nn.Linear(32, 16, bias=False)
    packed = PackedLinear(linear, rows=5)
    x = torch.randn(5, 32)
    with torch.no_grad():
        torch.testing.assert_close(packed(x), x @ linear.weight.t(), rtol=1e-5, atol=1e-5)
    y = packed(x)  # gradients recorded: the original weight, so training still works
    assert y.requires_grad
    y.sum().backward()
    assert linear.weight.grad is not None
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # autocast: F.linear's cast
        got = packed(x)
    assert got.dtype == torch.bfloat16


def test_pack_linears_keeps_tied_weights_and_the_state_dict():
    torch.manual_seed(0)
    embed = nn.Embedding(40, 24)
    decoder = nn.ModuleDict({
        "layer": nn.Sequential(nn.Linear(24, 48), nn.ReLU(), nn.Linear(48, 24)),
        "output_projection": nn.Linear(24, 40, bias=False),
    })
    decoder.output_projection.weight = embed.weight  # tied, as mBART's decoder
    keys = list(decoder.state_dict())
    x = torch.randn(5, 24)
    with torch.no_grad():
        before = decoder.output_projection(decoder.layer(x))
    assert pack_linears(decoder, rows=5) == 3
    assert all(isinstance(m, PackedLinear) for m in (decoder.layer[0], decoder.layer[2], decoder.output_projection))
    assert decoder.output_projection.weight is embed.weight
    assert list(decoder.state_dict()) == keys
    with torch.no_grad():
        torch.testing.assert_close(decoder.output_projection(decoder.layer(x)), before, rtol=1e-5, atol=1e-5)
    assert pack_linears(decoder, rows=5) == 0  # already packed: nothing left to replace
