"""Dask arrays on the cases of dirk's `array` benchmark (benches/benches/array.rs),
measured on the same machine by `cargo xtask bench --peers`.

Dask is driven as its documentation says: `dask.array` with 1024² chunks,
the threaded scheduler with one worker per core (2), NumPy's BLAS held to
one thread per task (OPENBLAS_NUM_THREADS=1 and friends, set before NumPy
loads) so that the tasks, not BLAS, use the cores, as dirk's faer tile
kernels do. Inputs are made and persisted before the clock starts; each
timed run builds the graph and computes it. Medians of the runs after a
warm-up, with the least and greatest, as `@bench` lines.
"""

import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402

QUICK = os.environ.get("DIRK_BENCH_QUICK", "0") not in ("", "0")
CORES = 2
CHUNKS = 256 if QUICK else 1024
SYSTEM = f"Dask array ({CHUNKS}² chunks, 2 threads)"


def report(case, values):
    values = sorted(values)
    line = {
        "group": "array",
        "case": case,
        "system": SYSTEM,
        "value": values[len(values) // 2],
        "min": values[0],
        "max": values[-1],
        "unit": "ms",
        "lower_is_better": True,
    }
    print(f"  array {case:<40} {SYSTEM:<40} {line['value']:.1f} ms", file=sys.stderr)
    print("@bench " + json.dumps(line), flush=True)


def timed(runs, f):
    f()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def main():
    dask.config.set(scheduler="threads", num_workers=CORES)
    chunks = CHUNKS

    n = 10240 if not QUICK else 2048
    r = da.random.random((n, n), chunks=(chunks, chunks)).persist()
    report(f"sum {n}² in 1024² tiles", timed(5 if not QUICK else 2, lambda: r.sum().compute()))
    del r

    n, b = (4096, 512) if not QUICK else (512, 128)
    a = da.random.random((n, n), chunks=(chunks, chunks)).persist()
    c = da.random.random((n, n), chunks=(chunks, chunks)).persist()
    product = a @ c
    report(f"matmul {n}/{b}", timed(3 if not QUICK else 1, lambda: (a @ c).compute()))
    check = product.compute()
    reference = np.asarray(a) @ np.asarray(c)
    assert np.allclose(check, reference), "Dask's product differs from NumPy's"


if __name__ == "__main__":
    main()
