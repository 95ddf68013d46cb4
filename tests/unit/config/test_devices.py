"""`cpu_has_native_bf16`: which CPUs `trainer.precision=auto` trains in bf16 on."""

from __future__ import annotations

import pytest
import torch

from yolo_slim.config.devices import cpu_has_native_bf16


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "expected"),
    [(True, True, True), (True, False, True), (False, True, True), (False, False, False)],
)
def test_amx_or_avx512_bf16_count_as_native(monkeypatch, amx: bool, avx512_bf16: bool, expected: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert cpu_has_native_bf16() is expected


def test_a_torch_without_the_probes_means_float32(monkeypatch) -> None:
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    assert cpu_has_native_bf16() is False
