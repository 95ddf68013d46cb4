"""Finiteness checks for loaded weights: `.weights` floats, checkpoint tensors, IR constants.

A model whose weights hold NaN or infinity runs and produces nothing useful: every
loader calls one of these, so such a file is refused with one line naming the file,
the first bad tensor and where in it, instead of passing silently through training,
pruning, export and deployment.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from yolo_slim.errors import DeployError, WeightsError


def first_nonfinite(values: np.ndarray) -> int | None:
    """Flat index of the first NaN or infinite value of `values`, None when all are finite."""
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind not in "fc" or bool(np.isfinite(flat).all()):
        return None
    return int(np.flatnonzero(~np.isfinite(flat))[0])


def describe_nonfinite(values: np.ndarray) -> str:
    """``"123 of 4,096 values are non-finite (nan, inf)"`` for an array holding some."""
    flat = np.asarray(values).reshape(-1)
    bad = flat[~np.isfinite(flat)]
    kinds = [name for name, hit in (("nan", np.isnan(bad).any()), ("inf", np.isinf(bad).any())) if hit]
    return f"{bad.size:,} of {flat.size:,} values are non-finite ({', '.join(kinds)})"


def check_finite_arrays(arrays: Iterable[tuple[str, Any]], source: str, hint: str = "") -> None:
    """Raise for the first of the named arrays (numpy or torch) that holds a non-finite value.

    Args:
        arrays: ``(name, array)`` pairs, in the order to report them.
        source: the file they came from, for the message.
        hint: appended to the message (what the user can do).

    Raises:
        WeightsError: ``"<source>: tensor <name> holds NaN/inf: <n> of <m> values are
            non-finite (nan), the first at flat index <i>"``.
    """
    for name, array in arrays:
        values = _numpy(array)
        index = first_nonfinite(values)
        if index is not None:
            raise WeightsError(
                f"{source}: tensor {name} holds NaN/inf: {describe_nonfinite(values)}, the first at flat index {index}"
                f"{'; ' + hint if hint else ''}"
            )


def check_state_dict_finite(state: Mapping[str, Any], source: str) -> None:
    """`check_finite_arrays` over the floating-point tensors of a state dict."""
    check_finite_arrays(
        ((k, v) for k, v in state.items() if getattr(v, "is_floating_point", lambda: False)()),
        source,
        "the checkpoint comes from a diverged or corrupted run; resume from an earlier one",
    )


def check_ir_finite(model: Any, source: str) -> None:
    """Raise for the first floating-point constant of an OpenVINO `ov.Model` that holds
    NaN, or infinity in a tensor of several values (a weight).

    A single infinite value is a legitimate operator parameter: the -inf padding of
    darknet's maxpool, a clamp bound. NaN never is.

    Args:
        model: an ``openvino.Model`` (e.g. from ``Core.read_model``).
        source: the IR file, for the message.

    Raises:
        WeightsError: naming the constant (its friendly name) and the first bad index.
    """
    def suspect(op: Any) -> bool:
        if op.get_type_name() != "Constant" or not op.get_element_type().is_real():
            return False
        data = op.get_data()
        return bool(np.isnan(data).any()) or (data.size > 1 and not bool(np.isfinite(data).all()))

    check_finite_arrays(
        ((op.get_friendly_name(), op.get_data()) for op in model.get_ordered_ops() if suspect(op)),
        source,
        "the model was exported from non-finite weights, or an FP16 compression overflowed; export it again",
    )


def check_ir_file(xml_path: str | os.PathLike) -> None:
    """Read an IR and check its constants (`check_ir_finite`), before any work that writes.

    Raises:
        DeployError: the IR cannot be read. WeightsError: a constant holds NaN/inf.
    """
    from yolo_slim.openvino_core import core

    try:
        model = core().read_model(str(xml_path))
    except Exception as err:  # noqa: BLE001 - OpenVINO raises RuntimeError and others
        first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise DeployError(f"{xml_path}: cannot read the OpenVINO IR (corrupt or not an IR): {first.strip()}") from None
    check_ir_finite(model, str(xml_path))


def _numpy(array: Any) -> np.ndarray:
    if hasattr(array, "detach"):  # a torch tensor (bfloat16 has no numpy dtype)
        return array.detach().float().cpu().numpy()
    return np.asarray(array)
