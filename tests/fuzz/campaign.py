"""A fuzzing campaign: every target of tests/fuzz/ with many fresh examples, bugs collected, not fatal.

    .venv/bin/python -m tests.fuzz.campaign --examples 2000 --out /tmp/oi-fuzz
    .venv/bin/python -m tests.fuzz.campaign --examples 500 --targets oi-generated,checkpoints --seed 7

Each target runs in its own pytest process (`OI_FUZZ_EXAMPLES=N`, `OI_FUZZ_COLLECT=OUT/TARGET.jsonl`):
a bug does not stop it; each bug goes to the JSONL file with its input, signature and traceback, and
the counts of what the inputs reached go there at the end. A process that dies (a segfault in
compiled code) leaves what it was running in `OUT/TARGET.current`. Each process may map at most
`--memory` GiB (default 8), so that a program declaring a huge value fails to allocate it rather
than being killed by the OOM killer; an example that runs past `OI_FUZZ_DEADLINE` seconds (default
60: a valid program may loop for long) is counted as slow and skipped. The summary
(`OUT/summary.md`, also printed) lists the inputs run per target and each distinct bug (by
signature: exception, message, function) with how often it came up, whether it is pinned
(`_support.KNOWN`), and its shortest input.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: target name -> the pytest node that drives it
TARGETS = {
    "oi-generated": "tests/fuzz/test_fuzz_oi_text.py::test_generated_programs",
    "oi-mutated": "tests/fuzz/test_fuzz_oi_text.py::test_mutated_sources",
    "mlir-mutated": "tests/fuzz/test_fuzz_mlir.py::test_mutated_mlir",
    "oi-opt": "tests/fuzz/test_fuzz_mlir.py::test_oi_opt_command_lines",
    "models": "tests/fuzz/test_fuzz_models.py::test_mutated_model_files",
    "model-round-trip": "tests/fuzz/test_fuzz_models.py::test_models_round_trip",
    "checkpoints": "tests/fuzz/test_fuzz_checkpoints.py::test_mutated_state_files",
    "insert": "tests/fuzz/test_fuzz_api.py::test_insert_values",
    "nest-call": "tests/fuzz/test_fuzz_api.py::test_nest_function_arguments",
    "plan-build": "tests/fuzz/test_fuzz_api.py::test_plan_build_args",
}


def _limit_memory(gib: float):
    """A `preexec_fn`: the target's process may map at most `gib` GiB, so that a program declaring a
    16 GiB value fails to allocate it (an `OiError`) instead of being killed by the OOM killer."""

    def limit() -> None:
        import resource

        size = int(gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return limit if gib > 0 else None


def run_target(name: str, examples: int, out: Path, seed: int | None, timeout: int, memory: float = 8) -> dict:
    log, current = out / f"{name}.jsonl", out / f"{name}.current"
    log.unlink(missing_ok=True)
    current.unlink(missing_ok=True)
    env = {**os.environ, "OI_FUZZ_EXAMPLES": str(examples), "OI_FUZZ_COLLECT": str(log),
           "OI_FUZZ_CURRENT": str(current), "PYTHONHASHSEED": "0"}  # fmt: skip
    env.setdefault("OI_CACHE_DIR", str(out / "jit-cache"))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore", TARGETS[name]]
    if seed is not None:
        command.append(f"--hypothesis-seed={seed}")
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
                              preexec_fn=_limit_memory(memory))  # fmt: skip
        status, tail = done.returncode, (done.stdout + done.stderr)[-3000:]
    except subprocess.TimeoutExpired as e:
        status, tail = "timeout", str(e.stdout or "")[-3000:]
    seconds = time.monotonic() - start
    records, stats, slow = [], Counter(), []
    if log.exists():
        for line in log.read_text().splitlines():
            record = json.loads(line)
            if "stats" in record:
                for target_stats in record["stats"].values():
                    stats.update(target_stats)
            elif record.get("slow"):
                slow.append(record["case"])
            else:
                records.append(record)
    crashed = None
    if status not in (0, "timeout") and current.exists():
        crashed = current.read_text()[:5000]
    return {"target": name, "status": status, "seconds": round(seconds, 1), "stats": dict(stats),
            "records": records, "slow": slow, "crashed": crashed, "tail": tail if status != 0 else ""}  # fmt: skip


def summary(results: list[dict]) -> str:
    lines = ["# Fuzzing campaign", ""]
    lines += ["| target | inputs | bugs | distinct | seconds | status |", "|---|---|---|---|---|---|"]
    for r in results:
        distinct = len({rec["signature"] for rec in r["records"]})
        lines.append(f"| {r['target']} | {r['stats'].get('inputs', 0)} | {len(r['records'])} | {distinct} | "
                     f"{r['seconds']} | {r['status']} |")  # fmt: skip
    for r in results:
        lines += ["", f"## {r['target']}", "", "```", json.dumps(r["stats"], indent=1, sort_keys=True), "```"]
        groups = defaultdict(list)
        for rec in r["records"]:
            groups[rec["signature"]].append(rec)
        for sig, recs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            shortest = min(recs, key=lambda rec: len(rec["case"]))
            pinned = f" (pinned: {recs[0]['known']})" if recs[0].get("known") else " (NEW)"
            lines += ["", f"- **{len(recs)}x** `{sig}`{pinned}", f"  - what: `{shortest['what'][:300]}`",
                      f"  - error: `{shortest['error'][:300]}`", "  - shortest input:", "", "```",
                      shortest["case"][:3000], "```"]  # fmt: skip
        if r.get("slow"):
            lines += ["", f"{len(r['slow'])} input(s) ran past the deadline (OI_FUZZ_DEADLINE); the first:", "```",
                      r["slow"][0][:3000], "```"]  # fmt: skip
        if r["crashed"]:
            lines += ["", "**The process died** while running:", "```", r["crashed"], "```"]
        if r["status"] not in (0,):
            lines += ["", f"exit status {r['status']}:", "```", r["tail"], "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=2000, help="examples per target (default 2000)")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, of: {', '.join(TARGETS)}")
    parser.add_argument("--out", default="/tmp/oi-fuzz", help="where the logs and summary.md go")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per target before it is stopped")
    parser.add_argument("--memory", type=float, default=8, help="GiB of address space per target (0: no limit)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.targets.split(","):
        print(f"{name}: {args.examples} examples ...", flush=True)
        result = run_target(name, args.examples, out, args.seed, args.timeout, args.memory)
        print(f"{name}: {result['stats'].get('inputs', 0)} inputs, {len(result['records'])} bugs, "
              f"{result['seconds']} s, status {result['status']}", flush=True)  # fmt: skip
        results.append(result)
        (out / "summary.md").write_text(summary(results))
        (out / "results.json").write_text(json.dumps(results, indent=1))
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
