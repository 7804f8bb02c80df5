"""Task Bench's stencil_1d, the part every process runs: the kernel (from
the library dirk's tasks use, through ctypes), the dependencies and the
task body that checks its inputs. A module of its own, importable by name
in every worker process (the driver puts this folder on PYTHONPATH), so
that Dask and Ray send tasks as references to it, never the loaded library.
"""

import ctypes
import os

_LIB = None


def kernel(iterations, seed):
    """Task Bench's compute-bound kernel, from the library dirk's tasks use."""
    global _LIB
    if _LIB is None:
        lib = ctypes.CDLL(os.environ["DIRK_TASKBENCH_KERNEL"])
        lib.dirk_taskbench_kernel.argtypes = [ctypes.c_uint64, ctypes.c_double]
        lib.dirk_taskbench_kernel.restype = ctypes.c_double
        _LIB = lib
    return _LIB.dirk_taskbench_kernel(iterations, seed)


def flops(iterations):
    return 128.0 * iterations + 64.0


def deps(t, i, width):
    """core.cc, STENCIL_1D: (max(0, point-1), min(point+1, max_width-1))."""
    if t == 0:
        return []
    return list(range(max(0, i - 1), min(i + 1, width - 1) + 1))


def point(t, i, width, iterations, *inputs):
    got = [(x[0], x[1]) for x in inputs]
    want = [(t - 1, j) for j in deps(t, i, width)]
    if got != want:
        raise AssertionError(f"point ({t}, {i}) received {got}, expected {want}")
    seed = sum(x[2] for x in inputs) + (t * 31 + i)
    return (t, i, kernel(iterations, seed))
