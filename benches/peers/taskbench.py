"""Task Bench's stencil_1d on the peers outside Rust: Dask (threaded and
distributed) and Ray, measured on the same machine as dirk.

Run by `cargo xtask bench --peers`, which installs the pinned versions of
`requirements.txt` into a virtual environment under target/ and passes:

- DIRK_TASKBENCH_KERNEL: the shared library holding Task Bench's kernel
  (dirk-benches' `dirk_taskbench_kernel`, the very code dirk's tasks run),
  called through ctypes, which releases the GIL while it runs, as Task
  Bench's own Dask driver calls its C core;
- DIRK_BENCH_QUICK: a smoke run (fewer sweeps, smaller graphs).

Like Task Bench's Dask driver (dask/task_bench.py), each run builds the
task graph and computes it inside the timer. Every task checks that its
inputs are the outputs of exactly the points core.cc says it depends on.
The sweep runs the kernel with 2^22 iterations downward until two points in
a row fall below 50% efficiency; each sweep's METG follows Task Bench's
rule (scripts/chart_metg.py, as `dirk_benches::taskbench::metg`), and the
median of the sweeps is reported with the least and greatest, as `@bench`
lines that `cargo xtask bench` merges into BENCHMARKS.md.
"""

import json
import os
import sys
import threading
import time

from taskbench_core import deps, flops, kernel, point


def peak_flops(cores):
    """The machine's flop rate on the kernel: `cores` threads of large kernels."""
    iterations, reps = 1 << 14, 200

    def work(offset):
        for r in range(reps):
            kernel(iterations, float(offset + r))

    best = 0.0
    for _ in range(3):
        threads = [threading.Thread(target=work, args=(c * 1000,)) for c in range(cores)]
        start = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        best = max(best, cores * reps * flops(iterations) / (time.perf_counter() - start))
    return best


def metg(points, threshold=0.5):
    """Task Bench's rule; `points` run from large tasks to small. None if none passes."""
    passing = [(k, p) for k, p in enumerate(points) if p[1] >= threshold]
    if not passing:
        return None
    at, (granularity, efficiency) = min(passing, key=lambda kp: kp[1][0])
    value = granularity
    if at + 1 < len(points) and points[at + 1][0] < granularity:
        g_next, e_next = points[at + 1]
        value = g_next + (threshold - e_next) / (efficiency - e_next) * (granularity - g_next)
    return value, granularity


def graph(node, width, steps, iterations):
    """The stencil's last row, each point made by `node(t, i, width, iterations, *inputs)`."""
    row = [node(0, i, width, iterations) for i in range(width)]
    for t in range(1, steps):
        row = [node(t, i, width, iterations, *[row[j] for j in deps(t, i, width)]) for i in range(width)]
    return row


class DaskThreaded:
    name = "Dask threaded"

    def __init__(self, cores):
        import dask

        self.dask, self.cores = dask, cores

    def run(self, width, steps, iterations):
        node = self.dask.delayed(point, pure=False)
        return self.dask.compute(*graph(node, width, steps, iterations), scheduler="threads", num_workers=self.cores)

    def close(self):
        pass


class DaskDistributed:
    name = "Dask distributed"

    def __init__(self, cores):
        import dask
        from dask.distributed import Client, LocalCluster

        self.dask = dask
        self.cluster = LocalCluster(
            n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=None
        )
        self.client = Client(self.cluster)

    def run(self, width, steps, iterations):
        node = self.dask.delayed(point, pure=False)
        return self.dask.compute(*graph(node, width, steps, iterations))

    def close(self):
        self.client.close()
        self.cluster.close()


class Ray:
    name = "Ray"

    def __init__(self, cores):
        import ray

        self.ray = ray
        ray.init(
            num_cpus=cores,
            include_dashboard=False,
            logging_level="ERROR",
            runtime_env={
                "env_vars": {
                    "DIRK_TASKBENCH_KERNEL": os.environ["DIRK_TASKBENCH_KERNEL"],
                    "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
                }
            },
        )
        self.remote = ray.remote(point)

    def run(self, width, steps, iterations):
        return self.ray.get(graph(self.remote.remote, width, steps, iterations))

    def close(self):
        self.ray.shutdown()


def report(case, system, values, unit):
    values = sorted(values)
    line = {
        "group": "taskbench",
        "case": case,
        "system": system,
        "value": values[len(values) // 2],
        "min": values[0],
        "max": values[-1],
        "unit": unit,
        "lower_is_better": True,
    }
    print("@bench " + json.dumps(line), flush=True)


def main():
    # Worker processes import taskbench_core by name, as this script does.
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    quick = os.environ.get("DIRK_BENCH_QUICK", "0") not in ("", "0")
    cores = os.cpu_count() or 2
    width, steps = cores, (20 if quick else 100)
    sweeps = 1 if quick else 5
    top = 18 if quick else 22
    peak = peak_flops(cores)
    print(f"peers: {cores} cores, width {width}, {steps} steps, peak {peak / 1e9:.2f} Gflop/s", file=sys.stderr)
    case = f"METG(50%) stencil_1d, width {width} (= cores)"
    for system_type in (DaskThreaded, DaskDistributed, Ray):
        system = system_type(cores)
        label = f"{system.name} ({steps} steps)"
        try:
            system.run(width, steps, 1 << 10)  # warm up
            found = []
            for _ in range(sweeps):
                points, misses = [], 0
                for k in range(top, -1, -1):
                    iterations = 0 if k == 0 else 1 << k
                    start = time.perf_counter()
                    last = system.run(width, steps, iterations)
                    wall = time.perf_counter() - start
                    if sorted((p[0], p[1]) for p in last) != [(steps - 1, i) for i in range(width)]:
                        raise AssertionError(f"{label}: the last step came back wrong")
                    tasks = width * steps
                    points.append((wall * cores / tasks * 1e6, tasks * flops(iterations) / wall / peak))
                    misses = misses + 1 if points[-1][1] < 0.5 else 0
                    if misses == 2:
                        break
                m = metg(points)
                print(f"  {label}: sweep {[(round(g, 1), round(e, 2)) for g, e in points]} -> {m}", file=sys.stderr)
                if m is not None:
                    found.append(m)
            if found:
                report(case, label, [m[0] for m in found], "µs")
                report(f"{case}, smallest passing point", label, [m[1] for m in found], "µs")
        finally:
            system.close()


if __name__ == "__main__":
    main()
