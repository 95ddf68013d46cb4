"""Fixtures shared by all tests: the fixture files, the upstream darknet cfgs and
seeded random `.weights` written by the project's own writer."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from yolo_slim.darknet.cfg import DarknetCfg
from yolo_slim.darknet.weights import WeightsHeader, conv_layout, write_darknet_weights

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Upstream darknet cfgs (AlexeyAB/darknet cfg/) live in the developers' shared folder
# beside the checkout; a user's clone has none, and the tests that need them skip.
SHARED_CFG = Path(
    os.environ.get("YOLO_SLIM_SHARED_CFG") or Path(__file__).resolve().parents[1].parent / "shared" / "cfg"
)


@pytest.fixture(autouse=True, scope="session")
def _latency_table_cache(tmp_path_factory):
    """Latency tables (`yolo_slim.latency`) that tests and the processes they start
    measure go to a session folder, not the user's cache."""
    from yolo_slim.latency.table import CACHE_ENV

    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("latency_cache"))
    yield
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old


@pytest.fixture
def fixture_path() -> Callable[[str], Path]:
    """`fixture_path("every_layer.cfg")`: a file under tests/fixtures/."""
    return lambda name: FIXTURES / name


@pytest.fixture
def upstream_cfg() -> Callable[[str], Path]:
    """`upstream_cfg("yolov4")`: the upstream `yolov4.cfg`, or a skip when it is absent."""

    def find(name: str) -> Path:
        path = SHARED_CFG / f"{name}.cfg"
        if not path.is_file():
            pytest.skip(f"upstream cfg {path} not found: it ships with the developers' shared folder only")
        return path

    return find


def random_darknet_arrays(cfg: DarknetCfg, seed: int = 0) -> dict[int, dict[str, np.ndarray]]:
    """Seeded parameters for every conv of `cfg`, as `read_darknet_weights` returns them.

    Kernels are scaled by 1/sqrt(fan-in); BatchNorm running variances are positive.
    The values are arbitrary: tests that run a deep network on them calibrate the
    BatchNorm statistics first (see the model tests).
    """
    rng = np.random.default_rng(seed)
    arrays: dict[int, dict[str, np.ndarray]] = {}
    for record in conv_layout(cfg):
        fan_in = int(np.prod(record.kernel_shape[1:]))
        parts = {"weight": (rng.standard_normal(record.kernel_shape) / np.sqrt(fan_in)).astype(np.float32)}
        n = record.filters
        if record.batch_normalize:
            parts.update(
                beta=rng.normal(0.0, 0.5, n).astype(np.float32),
                gamma=rng.uniform(0.5, 1.5, n).astype(np.float32),
                running_mean=rng.normal(0.0, 0.5, n).astype(np.float32),
                running_var=rng.uniform(0.5, 1.5, n).astype(np.float32),
            )
        else:
            parts["bias"] = rng.normal(0.0, 0.1, n).astype(np.float32)
        arrays[record.layer] = parts
    return arrays


@pytest.fixture
def random_weights(tmp_path: Path) -> Callable[..., Path]:
    """`random_weights(cfg, seed=0, header=None)`: a seeded `.weights` file for `cfg`."""

    def write(cfg: DarknetCfg, seed: int = 0, header: WeightsHeader | None = None) -> Path:
        path = tmp_path / f"random-{seed}.weights"
        return write_darknet_weights(path, cfg, random_darknet_arrays(cfg, seed), header)

    return write


@pytest.fixture
def random_arrays() -> Callable[..., dict[int, dict[str, np.ndarray]]]:
    """`random_arrays(cfg, seed=0)`: see `random_darknet_arrays`."""
    return random_darknet_arrays
