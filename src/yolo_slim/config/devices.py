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


def cpu_has_bf16_matrix_units() -> bool:
    """Whether this CPU multiplies bf16 tiles in hardware (Intel AMX, Sapphire Rapids and later).

    Measured on a 2-core AMX Xeon: bf16 autocast halves the demo model's forward and
    backward at 256 px and batch 16 (0.28 -> 0.14 s a step). On CPUs without AMX oneDNN
    emulates or half-uses bf16 and it can be slower than float32, so only AMX counts.
    """
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # torch's own CPUID and OS check
    return bool(probe()) if probe is not None else False


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
