"""Cache-table appends: the time of one append against the table's length.

A graph whose whole step is `cache.write x >> K[t]; cache.increment t;` (a growable
`@table`, entries f32[R, E]) runs on device="cpu", next to the pattern of Hugging Face's
DynamicCache in numpy (`cache = np.concatenate([cache, x[None]])` per step, so every append
copies the whole cache) and the reference interpreter (device="reference", entries in a dict).

For each length n (16, 64, 256, 1024, 4096 entries) each implementation is filled to n
entries (untimed), then the next WINDOW appends are timed one by one. n is a power of two
(the first capacity is 16), so on cpu the first append of each window finds the table full
and doubles its capacity (a host callback allocates the new buffer and copies the n entries);
the others write in place. The table shows, in µs: cpu's median append (`insert` + `step`), the
same with the input written into `exe.inputs["x"]` (no insert), the median of that
doubling append, the amortised cost (median + doubling / n: one doubling per n appends), the
numpy-concat median (every append copies the cache), their ratio (concat / cpu amortised), and
the reference interpreter's median. Rounds interleave the implementations in a rotating order,
so machine noise falls on all of them alike.

    python benchmarks/table_append.py                  # entries f32[8, 64] and f32[1, 64]
    python benchmarks/table_append.py --rounds 9 --shape 8x64
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import oi_compiler as oi

LENGTHS = (16, 64, 256, 1024, 4096)
WINDOW = 32

GRAPH = """graph! {
    dynamic { x: f32[R, E]; }
    persistent {
        t: i32 @init(0);
        K(pos): f32[R, E] @table;       // growable: capacity doubles when full
    }
    block entry {
        cache.write x >> K[t];
        cache.increment t;
        return;
    }
}
"""

Appender = Callable[[np.ndarray], None]


def graph_appender(sim: oi.Simulator, in_place: bool = False) -> Callable[[], Appender]:
    """`insert` then `step`; `in_place`: the input written into `exe.inputs["x"]` (no insert)."""

    def fresh() -> Appender:
        exe = sim.make_executor()
        buffer = exe.inputs["x"] if in_place else None

        def append(x: np.ndarray) -> None:
            if buffer is None:
                exe.insert(x=x)
            else:
                buffer[...] = x
            exe.step()

        append.exe = exe  # type: ignore[attr-defined]
        return append

    return fresh


def concat_appender(shape: tuple[int, int]) -> Callable[[], Appender]:
    def fresh() -> Appender:
        box = {"cache": np.empty((0, *shape), np.float32)}

        def append(x: np.ndarray) -> None:
            box["cache"] = np.concatenate([box["cache"], x[None]])

        append.box = box  # type: ignore[attr-defined]
        return append

    return fresh


def measure(fresh: Callable[[], Appender], length: int, xs: list[np.ndarray]) -> list[float]:
    """Per-append seconds of the WINDOW appends after `length` untimed ones (the first one
    grows the cpu table)."""
    append = fresh()
    for i in range(length):
        append(xs[i % len(xs)])
    times = []
    clock = time.perf_counter
    for i in range(WINDOW):
        x = xs[i % len(xs)]
        t0 = clock()
        append(x)
        times.append(clock() - t0)
    return times


def check(shape: tuple[int, int], impls: dict[str, Callable[[], Appender]], xs: list[np.ndarray]) -> None:
    """All three hold the same table after the same appends."""
    n = 40
    expected = np.stack([xs[i % len(xs)] for i in range(n)])
    for name, fresh in impls.items():
        append = fresh()
        for i in range(n):
            append(xs[i % len(xs)])
        got = append.box["cache"] if hasattr(append, "box") else append.exe.state("K")
        if got.shape != expected.shape or not np.array_equal(got, expected):
            raise SystemExit(f"{name}: table differs after {n} appends ({got.shape} vs {expected.shape})")


def run(shape: tuple[int, int], rounds: int) -> list[tuple]:
    model = oi.Model(sizevars={"R": shape[0], "E": shape[1]}, tensors={})
    graph = oi.parse_graph(GRAPH, "table_append.oi")
    cpu = oi.Simulator(model, graph, device="cpu")
    impls = {
        "cpu": graph_appender(cpu),
        "cpu-inputs": graph_appender(cpu, in_place=True),
        "numpy-concat": concat_appender(shape),
        "reference": graph_appender(oi.Simulator(model, graph, device="reference")),
    }
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(shape).astype(np.float32) for _ in range(8)]
    check(shape, impls, xs)
    names = list(impls)
    samples = {(name, n): [] for name in names for n in LENGTHS}
    doubling = {n: [] for n in LENGTHS}
    for r in range(rounds):
        for n in LENGTHS:
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                times = measure(impls[name], n, xs)
                if name == "cpu-inputs":
                    times = times[1:]  # its doubling is cpu's
                if name == "cpu":
                    doubling[n].append(times[0])
                    times = times[1:]
                samples[name, n] += times
    rows = []
    for n in LENGTHS:
        cpu = statistics.median(samples["cpu", n])
        grow = statistics.median(doubling[n])
        amortised = cpu + grow / n
        concat = statistics.median(samples["numpy-concat", n])
        ref = statistics.median(samples["reference", n])
        in_place = statistics.median(samples["cpu-inputs", n])
        rows.append((n, cpu, in_place, grow, amortised, concat, concat / amortised, ref))
    return rows


def print_table(shape: tuple[int, int], rows: list[tuple], rounds: int) -> None:
    entry = shape[0] * shape[1] * 4
    print(f"\nentries f32[{shape[0]}, {shape[1]}] ({entry} B); median µs per append over "
          f"{rounds} rounds x {WINDOW} appends")  # fmt: skip
    print(f"{'length':>7}{'MiB':>7}{'cpu':>8}{'cpu inputs':>12}{'doubling':>10}{'cpu amort.':>12}"
          f"{'numpy-concat':>14}{'concat/cpu':>12}{'reference':>11}")  # fmt: skip
    for n, cpu, in_place, grow, amortised, concat, ratio, ref in rows:
        mib = n * entry / 2**20
        print(f"{n:>7}{mib:>7.2f}{cpu * 1e6:>8.1f}{in_place * 1e6:>12.1f}{grow * 1e6:>10.0f}{amortised * 1e6:>12.1f}"
              f"{concat * 1e6:>14.1f}{ratio:>12.2f}{ref * 1e6:>11.1f}")  # fmt: skip
    first, last = rows[0], rows[-1]
    print(f"{LENGTHS[0]} -> {LENGTHS[-1]} entries: cpu amortised x{last[4] / first[4]:.2f}, "
          f"numpy-concat x{last[5] / first[5]:.1f}, reference x{last[7] / first[7]:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--shape", action="append", help="entry shape RxE, repeatable (default 8x64 and 1x64)")
    args = p.parse_args()
    shapes = [tuple(int(v) for v in s.split("x")) for s in (args.shape or ["8x64", "1x64"])]
    for shape in shapes:
        print_table(shape, run(shape, args.rounds), args.rounds)


if __name__ == "__main__":
    main()
