# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Backend selection, the errors for devices this machine lacks, and CPU weight packing."""
import importlib.util
import re

import pytest
import torch
import torch.nn as nn

from gr00t_npu_node.backends import Backend, get_backend
from gr00t_npu_node.backends.cpu import CpuBackend, PackedLinear, pack_linear_weights
from gr00t_npu_node.backends.npu import CANN_HOME_VARIABLES, EmulatedNpuBackend, NpuUnavailable


def sentences(text: str) -> int:
    return len(re.findall(r"[.!?](?:\s|$)", text))


def test_devices_resolve_to_their_backends_and_default_dtypes():
    cpu, emulated = get_backend("cpu"), get_backend("npu-emulated")
    assert isinstance(cpu, CpuBackend) and cpu.default_dtype == torch.float32 and cpu.device() == torch.device("cpu")
    assert isinstance(emulated, EmulatedNpuBackend) and emulated.default_dtype == torch.bfloat16
    assert emulated.device() == torch.device("cpu")
    plain = emulated.plain()
    assert type(plain) is Backend and plain.name == "npu-emulated-plain"


@pytest.mark.parametrize("device", ["tpu", "cpu:0", "npu-emulated:1", "cuda:x", ""])
def test_unknown_devices_are_refused_with_the_known_ones_named(device):
    with pytest.raises(ValueError, match="expected one of cpu, cuda, npu, npu-emulated"):
        get_backend(device)


def test_npu_without_cann_fails_with_one_sentence(monkeypatch):
    for variable in CANN_HOME_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(NpuUnavailable) as error:
        get_backend("npu")
    message = str(error.value)
    assert sentences(message) == 1, message
    assert "CANN" in message and "set_env.sh" in message


@pytest.mark.skipif(importlib.util.find_spec("torch_npu") is not None, reason="torch_npu is installed here")
def test_npu_with_cann_but_without_torch_npu_names_the_missing_package(monkeypatch, tmp_path):
    monkeypatch.setenv("ASCEND_HOME_PATH", str(tmp_path))
    with pytest.raises(NpuUnavailable) as error:
        get_backend("npu:0")
    message = str(error.value)
    assert sentences(message) == 1, message
    assert "torch_npu cannot be imported" in message and str(tmp_path) in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu_fails_clearly():
    from gr00t_npu_node.backends.cuda import CudaUnavailable

    message = r"device=cuda needs a visible NVIDIA GPU.*torch\.cuda\.is_available\(\) is False"
    with pytest.raises(CudaUnavailable, match=message):
        get_backend("cuda")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_linears_compute_what_the_unpacked_ones_do_and_skip_tied_weights(dtype):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(96, 160, dtype=dtype), nn.GELU(), nn.Linear(160, 48, bias=False, dtype=dtype))
    tied_owner = nn.Embedding(48, 96, dtype=dtype)
    tied = nn.Linear(96, 48, bias=False, dtype=dtype)
    tied.weight = tied_owner.weight
    holder = nn.ModuleDict({"mlp": model, "embed": tied_owner, "head": tied})
    x = torch.randn(3, 17, 96, dtype=dtype)
    dense_weights = [model[0].weight.detach().clone(), model[2].weight.detach().clone()]
    with torch.inference_mode():
        expected = model(x)
        assert pack_linear_weights(holder) == 2
        assert isinstance(model[0], PackedLinear) and isinstance(model[2], PackedLinear)
        assert model[0].weight.dtype == dtype and tuple(model[0].weight.shape) == (160, 96)
        assert type(holder["head"]) is nn.Linear and holder["head"].weight is tied_owner.weight
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
    saved = holder.state_dict()
    assert set(saved) == {"mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "embed.weight", "head.weight"}
    assert saved["mlp.2.weight"].layout == torch.strided and torch.equal(saved["mlp.2.weight"], dense_weights[1])


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_linear_gelu_on_a_packed_layer_is_the_reference_linear_then_gelu(dtype, tolerance):
    torch.manual_seed(0)
    layer = nn.Linear(64, 96, dtype=dtype)
    x = torch.randn(2, 11, 64, dtype=dtype)
    with torch.inference_mode():
        linear = torch.nn.functional.linear(x.float(), layer.weight.float(), layer.bias.float())
        expected = torch.nn.functional.gelu(linear, approximate="tanh")
        reference = Backend().linear_gelu(layer, x)
        packed = PackedLinear(layer)
        fused = CpuBackend().linear_gelu(packed, x)
    assert fused.dtype == dtype and fused.shape == (2, 11, 96)
    torch.testing.assert_close(fused.float(), expected, rtol=0, atol=tolerance)
    torch.testing.assert_close(reference.float(), expected, rtol=0, atol=tolerance)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_rms_norm_is_the_reference_rms_norm(dtype):
    torch.manual_seed(0)
    x, weight = torch.randn(2, 9, 4, 128, dtype=dtype) * 3, torch.randn(128, dtype=dtype)
    expected = Backend().rms_norm(x, weight, 1e-6)
    ours = CpuBackend().rms_norm(x, weight, 1e-6)
    assert ours.dtype == dtype
    tolerance = 1e-6 if dtype == torch.float32 else 0.0  # bfloat16: the same value after the one rounding
    torch.testing.assert_close(ours, expected, rtol=tolerance, atol=tolerance)


def test_cpu_backend_compiles_the_loop_only_while_weights_are_unpacked():
    def loop(x):
        return x * 2

    backend = CpuBackend()
    assert backend.compile(loop, name="loop") is not loop
    backend.prepare(nn.Sequential(nn.Linear(4, 4)))
    assert backend.packed_layers == 1
    assert backend.compile(loop, name="loop") is loop
    unpacked = CpuBackend(pack_weights=False)
    unpacked.prepare(nn.Sequential(nn.Linear(4, 4)))
    assert unpacked.packed_layers == 0
