"""`yolo_slim.openvino_core`: after OpenVINO engines are loaded and released in any order,
the thread's alternate signal stack lies in mapped memory and a signal is handled.

The oracle for "mapped" is the kernel's own ``/proc/self/maps``. The signal check runs in
a fresh interpreter, so that if it regresses it kills that child and not pytest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("openvino")
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="sigaltstack and /proc/self/maps are Linux's")


def _mapped(address: int) -> bool:
    with open("/proc/self/maps", encoding="ascii") as maps:
        for line in maps:
            low, high = (int(v, 16) for v in line.split()[0].split("-"))
            if low <= address < high:
                return True
    return False


def _two_models():
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    def conv(channels: int):
        x = ops.parameter([1, 3, 16, 16], np.float32)
        w = ops.constant(np.ones((channels, 3, 3, 3), np.float32))
        return ov.Model([ops.convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1])], [x])

    return conv(4), conv(8)


def _cores_released_in_creation_order() -> None:
    """What NNCF (or any code with its own ``ov.Core()``) may do: two engines loaded, then
    dropped first-in first-out; without a repair this leaves an unmapped stack installed."""
    import openvino as ov

    models = _two_models()
    first = ov.Core()
    compiled_first = first.compile_model(models[0], "CPU")
    second = ov.Core()
    compiled_second = second.compile_model(models[1], "CPU")
    del compiled_first, first
    del compiled_second, second


def test_the_stack_stays_mapped_after_engines_are_released_out_of_order() -> None:
    from yolo_slim.openvino_core import STACK_BYTES, compile_model, installed_signal_stack, own_signal_stack, signal_stack_kept

    with signal_stack_kept():
        _cores_released_in_creation_order()
    compiled = [compile_model(m, "CPU") for m in _two_models()]
    del compiled[0], compiled[0]
    address, flags, size = installed_signal_stack()
    assert (address, size) == own_signal_stack() and size == STACK_BYTES and flags == 0
    assert _mapped(address)


SIGNAL_AFTER_RELEASE = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[1])
    from test_openvino_core import _cores_released_in_creation_order
    from yolo_slim.openvino_core import signal_stack_kept
    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, stop)
    with signal_stack_kept():
        _cores_released_in_creation_order()
    try:
        os.kill(os.getpid(), signal.SIGINT)
    except KeyboardInterrupt:
        print("handled")
    """
)


def test_a_signal_after_released_engines_is_handled_not_a_crash() -> None:
    from pathlib import Path

    done = subprocess.run([sys.executable, "-c", SIGNAL_AFTER_RELEASE, str(Path(__file__).parent)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "handled", (done.returncode, done.stderr[-2000:])


def test_one_core_per_process() -> None:
    from yolo_slim.openvino_core import available_devices, core, full_device_name

    assert core() is core()
    assert "CPU" in available_devices()
    assert full_device_name("CPU")
    assert full_device_name("NO_SUCH_DEVICE") is None
