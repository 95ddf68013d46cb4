"""Darknet `.weights` files: bytes in, per-layer float32 arrays out, and back.

Layout: int32 major, minor, revision; `seen` as int64 when `major*10 + minor >= 2`
else int32; then, for each `[convolutional]` layer in order, BN beta, gamma, running
mean, running var (each `filters` floats) or the conv bias without BN, then the
kernel (filters, in/groups, k, k). All little-endian float32; nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from yolo_slim.darknet.cfg import DarknetCfg
from yolo_slim.io.atomic import write_atomic
from yolo_slim.darknet.sections import ConvSection
from yolo_slim.darknet.shapes import infer_shapes
from yolo_slim.errors import WeightsError
from yolo_slim.io.finite import describe_nonfinite, first_nonfinite

BN_PARTS = ("beta", "gamma", "running_mean", "running_var")


@dataclass(frozen=True)
class WeightsHeader:
    """The `.weights` header. `seen` is the number of images darknet trained on."""

    major: int = 0
    minor: int = 2
    revision: int = 5
    seen: int = 0

    @property
    def seen_is_64bit(self) -> bool:
        return self.major * 10 + self.minor >= 2

    @property
    def nbytes(self) -> int:
        return 12 + (8 if self.seen_is_64bit else 4)

    def to_bytes(self) -> bytes:
        head = np.array([self.major, self.minor, self.revision], dtype="<i4").tobytes()
        return head + np.array([self.seen], dtype="<i8" if self.seen_is_64bit else "<i4").tobytes()


@dataclass(frozen=True)
class ConvParamLayout:
    """Float counts of one conv layer's record in a `.weights` file."""

    layer: int
    filters: int
    kernel_shape: tuple[int, int, int, int]
    batch_normalize: bool

    @property
    def count(self) -> int:
        per_channel = 4 if self.batch_normalize else 1
        return per_channel * self.filters + int(np.prod(self.kernel_shape))


def conv_layout(cfg: DarknetCfg) -> list[ConvParamLayout]:
    """The conv records of `cfg`'s `.weights` file, in file order."""
    shapes = infer_shapes(cfg)
    layout = []
    for i, s in enumerate(cfg.layers):
        if isinstance(s, ConvSection):
            c_in = shapes[i - 1].c if i > 0 else cfg.net.channels
            layout.append(ConvParamLayout(i, s.filters, (s.filters, c_in // s.groups, s.size, s.size), bool(s.batch_normalize)))
    return layout


def weights_file_size(cfg: DarknetCfg, header: WeightsHeader | None = None) -> int:
    """Size in bytes of `cfg`'s `.weights` file: the header plus 4 bytes per stored float."""
    header = header or WeightsHeader()
    return header.nbytes + 4 * sum(record.count for record in conv_layout(cfg))


def read_header(data: bytes, path: str) -> WeightsHeader:
    if len(data) < 16:
        raise WeightsError(f"{path}: {len(data)} bytes is too short for a darknet .weights header (at least 16 bytes)")
    major, minor, revision = (int(v) for v in np.frombuffer(data, "<i4", 3))
    if major * 10 + minor >= 2:
        if len(data) < 20:
            raise WeightsError(f"{path}: header of version {major}.{minor} needs 20 bytes, the file has {len(data)}")
        seen = int(np.frombuffer(data, "<i8", 1, offset=12)[0])
    else:
        seen = int(np.frombuffer(data, "<i4", 1, offset=12)[0])
    if not (0 <= major < 100 and 0 <= minor < 100):
        raise WeightsError(f"{path}: header version {major}.{minor}.{revision} is not a darknet .weights file")
    return WeightsHeader(major, minor, revision, seen)


def read_darknet_weights(
    path: str | os.PathLike, cfg: DarknetCfg, cutoff: int | None = None
) -> tuple[WeightsHeader, dict[int, dict[str, np.ndarray]]]:
    """Read a `.weights` file for `cfg`.

    Args:
        path: the `.weights` file.
        cfg: the network it belongs to.
        cutoff: read only layers `< cutoff` (darknet's backbone files such as
            `yolov4.conv.137`); the file may then hold more.

    Returns:
        The header and, per conv layer id, arrays `beta, gamma, running_mean,
        running_var` (with BN) or `bias`, and `weight` of shape (out, in/groups, k, k).

    Raises:
        WeightsError: the file is short, has bytes left over, or was made for another cfg;
            the message gives the expected and the actual float counts.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read weights file: {exc.strerror or exc}") from None
    header = read_header(data, str(path))
    body = data[header.nbytes :]
    if len(body) % 4:
        raise WeightsError(f"{path}: body of {len(body)} bytes is not a whole number of float32 values")
    floats = np.frombuffer(body, "<f4")
    layout = [r for r in conv_layout(cfg) if cutoff is None or r.layer < cutoff]
    expected = sum(r.count for r in layout)
    actual = floats.size
    scope = f"the first {cutoff} layers of {cfg.source}" if cutoff is not None else cfg.source
    if actual < expected or (cutoff is None and actual != expected):
        what = "too short" if actual < expected else "has floats left over"
        raise WeightsError(
            f"{path}: file {what}: {scope} needs {expected:,} float32 values after the {header.nbytes}-byte header, "
            f"the file holds {actual:,}; were these weights made for another cfg or class count?"
        )
    _check_finite(floats[:expected], layout, header.nbytes, path)
    _check_variances(floats, layout, header.nbytes, path)
    arrays: dict[int, dict[str, np.ndarray]] = {}
    offset = 0
    for record in layout:
        parts: dict[str, np.ndarray] = {}
        names = BN_PARTS if record.batch_normalize else ("bias",)
        for name in names:
            parts[name] = floats[offset : offset + record.filters].copy()
            offset += record.filters
        size = int(np.prod(record.kernel_shape))
        parts["weight"] = floats[offset : offset + size].reshape(record.kernel_shape).copy()
        offset += size
        arrays[record.layer] = parts
    return header, arrays


def _check_finite(floats: np.ndarray, layout: list[ConvParamLayout], header_bytes: int, path: Path) -> None:
    """Raise a `WeightsError` naming the byte offset, layer and part of the first NaN/inf."""
    index = first_nonfinite(floats)
    if index is None:
        return
    where, offset = "", 0
    for record in layout:
        names = BN_PARTS if record.batch_normalize else ("bias",)
        parts = [(name, record.filters) for name in names] + [("weight", int(np.prod(record.kernel_shape)))]
        for name, count in parts:
            if offset <= index < offset + count:
                where = f" in conv layer {record.layer} {name} (value {index - offset:,} of {count:,})"
            offset += count
        if where:
            break
    raise WeightsError(
        f"{path}: byte offset {header_bytes + 4 * index:,}: {floats[index]} where a finite float32 is expected{where}; "
        f"{describe_nonfinite(floats)}: the file is corrupt or comes from a diverged training"
    )


def _check_variances(floats: np.ndarray, layout: list[ConvParamLayout], header_bytes: int, path: Path) -> None:
    """Raise a `WeightsError` for the first negative BatchNorm running variance (a NaN maker)."""
    offset = 0
    for record in layout:
        if record.batch_normalize:
            start = offset + 3 * record.filters
            var = floats[start : start + record.filters]
            bad = np.flatnonzero(var < 0)
            if bad.size:
                i = int(bad[0])
                raise WeightsError(
                    f"{path}: byte offset {header_bytes + 4 * (start + i):,}: running variance {var[i]:g} in conv layer "
                    f"{record.layer} (value {i} of {record.filters}); a variance is never negative: the file is corrupt "
                    "or the cfg's layer order differs from the one the weights were saved with"
                )
        offset += record.count


def write_darknet_weights(
    path: str | os.PathLike, cfg: DarknetCfg, arrays: dict[int, dict[str, np.ndarray]], header: WeightsHeader | None = None
) -> Path:
    """Write a `.weights` file atomically; `arrays` as returned by `read_darknet_weights`."""
    header = header or WeightsHeader()
    chunks = [header.to_bytes()]
    for record in conv_layout(cfg):
        parts = arrays.get(record.layer)
        if parts is None:
            raise WeightsError(f"no parameters given for conv layer {record.layer} of {cfg.source}")
        names = BN_PARTS if record.batch_normalize else ("bias",)
        for name in (*names, "weight"):
            value = np.ascontiguousarray(parts[name], dtype="<f4")
            expected = record.kernel_shape if name == "weight" else (record.filters,)
            if value.shape != expected:
                raise WeightsError(f"layer {record.layer} {name}: shape {value.shape}, expected {expected}")
            chunks.append(value.tobytes())
    return write_atomic(path, b"".join(chunks))
