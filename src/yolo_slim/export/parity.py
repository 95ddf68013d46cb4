"""Numerical parity between a reference (PyTorch) output and an exported one.

Decoded YOLO rows mix units: box columns are input pixels (hundreds), score columns
are probabilities. Each group is compared relative to its own scale (the largest
reference magnitude, at least 1), so "1e-4 of scale" means the same for both.
Non-finite values fail the check wherever they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from yolo_slim.errors import ExportError
from yolo_slim.io.finite import describe_nonfinite


@dataclass(frozen=True)
class ParityReport:
    """How far an exported model's decoded output is from the reference.

    Attributes:
        backend: what was compared (`onnxruntime`, `openvino`).
        box_max_abs: largest absolute difference in the box columns, pixels.
        box_scale: largest reference box magnitude, pixels.
        score_max_abs: largest absolute difference in objectness/class columns.
        rel_error: the larger of box_max_abs / box_scale and score_max_abs / 1.
        tolerance: the allowed rel_error.
    """

    backend: str
    box_max_abs: float
    box_scale: float
    score_max_abs: float
    rel_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        """Within tolerance (False for a NaN error, which no comparison passes)."""
        return bool(self.rel_error <= self.tolerance)

    def as_metrics(self, prefix: str) -> dict[str, float]:
        """Flat `prefix/<field>` metrics, with `prefix/ok` as 0 or 1."""
        out = {f"{prefix}/{k}": float(v) for k, v in asdict(self).items() if k != "backend"}
        out[f"{prefix}/ok"] = float(self.ok)
        return out


def compare_decoded(reference: np.ndarray, output: np.ndarray, tolerance: float, backend: str) -> ParityReport:
    """Compare two decoded outputs `[B, N, 5+C]`.

    A NaN or infinity on either side is a failure, also where both sides have one:
    such a model detects nothing, so "equal" NaNs prove nothing.

    Raises:
        ExportError: the shapes differ, or either output holds non-finite values.
    """
    reference = np.asarray(reference, dtype=np.float64)
    output = np.asarray(output, dtype=np.float64)
    if reference.shape != output.shape:
        raise ExportError(f"{backend}: output shape {output.shape} differs from PyTorch's {reference.shape}")
    for name, values in (("PyTorch's reference output", reference), (f"the {backend} output", output)):
        if not np.isfinite(values).all():
            raise ExportError(
                f"{backend}: parity check failed: {name} holds NaN/inf ({describe_nonfinite(values)}); "
                "the model's weights or its arithmetic are not finite"
            )
    diff = np.abs(reference - output)
    box_abs = float(diff[..., :4].max(initial=0.0))
    box_scale = max(1.0, float(np.abs(reference[..., :4]).max(initial=0.0)))
    score_abs = float(diff[..., 4:].max(initial=0.0))
    rel = max(box_abs / box_scale, score_abs)
    return ParityReport(backend, box_abs, box_scale, score_abs, rel, float(tolerance))
