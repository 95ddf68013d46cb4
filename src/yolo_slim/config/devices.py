"""`device=auto|cpu|gpu`: one key, meaning the accelerator the app itself runs on.

train hands it to Lightning as the accelerator, prune evaluates on the torch device
it names, and export, detect and the pipeline's benchmark compile their OpenVINO
models on the OpenVINO device it names (`AUTO`, `CPU`, `GPU`); val and predict run a
`.weights` or `.ckpt` on the torch device and an OpenVINO IR on the OpenVINO device it
names. A device that is not there is one clear error before any work.
"""

from __future__ import annotations

from typing import Literal

from yolo_slim.errors import ConfigError

DEVICES = ("auto", "cpu", "gpu")
Runtime = Literal["torch", "openvino"]


def normalise_device(value: object, key: str = "device") -> str:
    """`value` lower-cased, checked to be one of auto, cpu, gpu.

    Raises:
        ConfigError: any other value (``cuda`` and ``CPU`` style spellings included in the hint).
    """
    text = str(value).strip().lower()
    if text in DEVICES:
        return text
    hint = " (the GPU is device=gpu)" if text.startswith("cuda") else ""
    raise ConfigError(f"{key}: expected auto, cpu or gpu, got {value!r}{hint}")


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively: Intel AMX tiles (Sapphire Rapids and later)
    or AVX-512 BF16 dot products (AMD Zen 4 and later, Intel Cooper Lake).

    Measured with `benchmarks/train_step.py --bf16` (demo model, batch 16, 2 cores, Lightning's
    ``bf16-mixed`` against ``32-true``): on an AMX Xeon it halves the step at 256 px (0.28 ->
    0.14 s); on an AMD EPYC Zen 4 it is 1.76x faster at 256 px and 1.31x at 160 px (Dec 3
    2026, one run each). CPUs with neither (Zen 3, Skylake and Cascade Lake Xeons) emulate
    bf16 in float32 arithmetic, which is slower than float32 itself, so they do not count.
    """
    import torch

    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(bool(probe()) for probe in probes if probe is not None)  # torch's own CPUID and OS checks


def _openvino_devices() -> list[str]:
    from yolo_slim.openvino_core import available_devices

    return available_devices()


def check_available(device: str, runtime: Runtime, key: str = "device") -> None:
    """Fail early when `device=gpu` names a GPU the runtime cannot see.

    Raises:
        ConfigError: ``device=gpu`` without a CUDA device (torch) or without an
            OpenVINO GPU device (openvino).
    """
    if device != "gpu":
        return
    if runtime == "torch" and not _cuda_available():
        raise ConfigError(f"{key}=gpu but no CUDA device is visible; use {key}=cpu or {key}=auto")
    if runtime == "openvino":
        found = _openvino_devices()
        if not any(name.startswith("GPU") for name in found):
            raise ConfigError(f"{key}=gpu but OpenVINO sees no GPU (devices: {', '.join(found) or 'none'}); use {key}=cpu or {key}=auto")


def torch_device(device: str) -> str:
    """The torch device string: ``cuda`` for gpu (and for auto when CUDA is there), else ``cpu``."""
    if device == "gpu" or (device == "auto" and _cuda_available()):
        return "cuda"
    return "cpu"


def openvino_device(device: str) -> str:
    """OpenVINO's device name for `device`: ``AUTO``, ``CPU`` or ``GPU``."""
    return device.upper()
