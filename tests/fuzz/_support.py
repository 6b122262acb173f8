"""What every fuzz target shares: how many examples to draw, what counts as a bug, and the
campaign's bookkeeping.

- `OI_FUZZ_EXAMPLES=N` draws N fresh (random) examples per target; unset, each target runs its
  own small, fixed (derandomized) set, so CI is deterministic and `tests/fuzz/` stays well
  under a minute on two cores.
- `OI_FUZZ_HEAVY=N` caps the expensive cases (a `device="cpu"` compile, an `oi-opt` run down
  to LLVM IR) per target and process; by default a handful without `OI_FUZZ_EXAMPLES` and no
  cap with it.
- `OI_FUZZ_COLLECT=FILE.jsonl` (the campaign, `python -m tests.fuzz.campaign`): a bug does not
  stop the run; each is appended to FILE with its input, and the run goes on. The per-target
  counts (inputs run, how far they got) go to FILE too.
- `OI_FUZZ_DEADLINE=S` (default 60): an example running longer is counted as slow and skipped
  (a valid program may loop for long), not reported as a bug.
- `KNOWN`: the open bugs pinned in test_fuzz_findings.py, counted rather than failed.

A bug is what the project's rule calls one: an exception that is not an `oi.OiError`
escaping a public entry point, or an `oi.InternalError` (the boundary's wrapping of such an
exception, which says "a bug in oi_compiler").
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import io
import json
import os
import re
import struct
import traceback
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings

import oi_compiler as oi

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
LIT = ROOT / "lit_tests"

FUZZ = int(os.environ.get("OI_FUZZ_EXAMPLES", "0") or 0)
HEAVY = int(os.environ.get("OI_FUZZ_HEAVY", "0") or 0) or (10**9 if FUZZ else 0)
COLLECT = os.environ.get("OI_FUZZ_COLLECT")


def fuzz_settings(default: int, **extra) -> settings:
    """`default` fixed examples in CI; `OI_FUZZ_EXAMPLES=N` draws N fresh ones."""
    common = {"deadline": None, "suppress_health_check": list(HealthCheck), "database": None,
              "print_blob": True, **extra}  # fmt: skip
    if FUZZ:
        return settings(max_examples=FUZZ, **common)
    return settings(max_examples=default, derandomize=True, **common)


class HeavyBudget:
    """How many expensive cases one target may still run in this process."""

    def __init__(self, default: int):
        self.left = HEAVY or default

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


# --- what counts as a bug ----------------------------------------------------------------


class Bug(AssertionError):
    """An exception a public entry point must never let out (or an internal error)."""

    def __init__(self, what: str, error: BaseException):
        super().__init__(f"{what}: {type(error).__name__}: {error}")
        self.what = what
        self.error = error


def call(what: str, fn, *args, expect: type[BaseException] | tuple = oi.OiError, **kwargs):
    """`fn(*args, **kwargs)`'s result and None, or None and the `expect`ed error it raised;
    anything else (an `InternalError` included) raises `Bug`."""
    try:
        return fn(*args, **kwargs), None
    except oi.InternalError as e:
        raise Bug(what, e) from e
    except expect as e:
        assert str(e), f"{what}: {type(e).__name__} with an empty message"
        return None, e
    except (KeyboardInterrupt, SystemExit, Slow):
        raise
    except BaseException as e:
        raise Bug(what, e) from e


class Slow(BaseException):
    """An example ran past `OI_FUZZ_DEADLINE` seconds (a BaseException: oi_compiler's boundaries
    let it through, as they let KeyboardInterrupt through)."""


DEADLINE = float(os.environ.get("OI_FUZZ_DEADLINE", "60") or 0)


@contextlib.contextmanager
def deadline(seconds: float = DEADLINE):
    """Raise `Slow` in the main thread after `seconds` (0: never); a step stuck in compiled code is
    interrupted only when it returns to Python."""
    import signal
    import threading

    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise Slow(f"ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- the campaign's bookkeeping ----------------------------------------------------------

STATS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


def count(target: str, what: str) -> None:
    STATS[target][what] += 1


def signature(error: BaseException) -> str:
    """A bug's identity: the exception type, its message with numbers blanked, and the innermost
    frame inside oi_compiler (or xDSL/numpy) that raised it."""
    root = error
    while isinstance(root, (Bug, oi.InternalError)) and root.__cause__ is not None:
        root = root.__cause__
    if isinstance(root, Bug):
        root = root.error
    frames = traceback.extract_tb(root.__traceback__)
    where = ""
    for frame in reversed(frames):
        if "/oi_compiler/" in frame.filename and "/tests/" not in frame.filename:
            where = f"{frame.filename.split('/oi_compiler/', 1)[1]}:{frame.lineno} ({frame.name})"
            break
    if not where and frames:
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno} ({frames[-1].name})"
    message = re.sub(r"\d+", "N", str(root).splitlines()[0] if str(root) else "")[:160]
    return f"{type(root).__name__}: {message} @ {where}"


#: Open bugs the campaign found, each pinned by an `xfail(strict=True)` test in test_fuzz_findings.py:
#: id -> a pattern of its `signature()` (exception type, message, function; line numbers left out, as
#: the files change). A bug matching one is counted (`known: ID`) instead of failing the property
#: test, so the property stays green while the bug is open; once it is fixed the strict xfail
#: fails, and its entry here goes with it.
KNOWN: dict[str, str] = {
}


def known(sig: str) -> str | None:
    return next((name for name, pattern in KNOWN.items() if re.search(pattern, sig)), None)


@contextlib.contextmanager
def outcome(target: str, case):
    """Around one example: counts it; a known bug (`KNOWN`) is counted, not raised; in collect
    mode every `Bug` is written down, not raised."""
    count(target, "inputs")
    if COLLECT and os.environ.get("OI_FUZZ_CURRENT"):
        Path(os.environ["OI_FUZZ_CURRENT"]).write_text(f"{target}\n{case!r}\n")  # what a crash was running
    try:
        with deadline():
            yield
    except Slow:  # not a bug in itself (a valid program may loop for long); counted, and written down
        count(target, "slow (deadline)")
        if COLLECT:
            with open(COLLECT, "a") as out:
                out.write(json.dumps({"target": target, "slow": True, "case": repr(case)[:20000]}) + "\n")
        return
    except Bug as bug:
        sig = signature(bug)
        pinned = known(sig)
        if pinned:
            count(target, f"known: {pinned}")
        if not COLLECT:
            if pinned:
                return
            raise
        count(target, "bugs")
        record = {"target": target, "signature": sig, "known": pinned, "what": bug.what,
                  "error": f"{type(bug.error).__name__}: {bug.error}"[:2000], "case": repr(case)[:20000],
                  "traceback": "".join(traceback.format_exception(bug.error))[-6000:]}  # fmt: skip
        with open(COLLECT, "a") as out:
            out.write(json.dumps(record) + "\n")


def _write_stats() -> None:
    if COLLECT and STATS:
        with open(COLLECT, "a") as out:
            out.write(json.dumps({"stats": {k: dict(v) for k, v in STATS.items()}, "pid": os.getpid()}) + "\n")


atexit.register(_write_stats)


@contextlib.contextmanager
def quiet_stdio():
    """Capture stdout and stderr (an in-process CLI's output); yields the two buffers."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err


class Seeds(dict):
    """Seed inputs by name; a short repr (hypothesis prints strategies' arguments)."""

    def __repr__(self) -> str:
        return f"<{len(self)} seeds>"


# --- `.npy` members (models' `.npz` archives and checkpoints are zips of them) --------------------

def npy_bytes(array: np.ndarray, header: str | None = None) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array, allow_pickle=False)
    data = out.getvalue()
    if header is None:
        return data
    head = header.encode("latin-1", "replace")
    prefix = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) if len(head) < 65536 else (
        b"\x93NUMPY\x02\x00" + struct.pack("<I", len(head)))  # fmt: skip
    return prefix + head + data[10 + struct.unpack("<H", data[8:10])[0] :]


NPY_HEADERS = [
    "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
    "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
    "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
    "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
    "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
    "{'descr': '<U1', 'fortran_order': False, 'shape': (3,), }",
    "{'descr': '<M8[s]', 'fortran_order': False, 'shape': (1,), }",
    "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 99999999999), }",
    "{'descr': '<f4', 'shape': (2,), }",
    "{'descr': '<f4', 'fortran_order': 0, 'shape': [2], }",
    "{'descr': 'V3', 'fortran_order': False, 'shape': (2,), }",
    "not a dict at all",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }",
    "{" * 200 + "}" * 200,
    "{{}}",
    "{[]: 1}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': {(): []}, }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }" + " " * 70000,
    "{'descr': '<f4', 'fortran_order': False, 'shape': (1e999,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (True,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)",
    "{'descr': b'<f4', 'fortran_order': False, 'shape': (2,), }",
    "{'descr': '<f4', 'fortran_order': None, 'shape': (2,), }",
    "{'descr': ('<f4', (2,)), 'fortran_order': False, 'shape': (1,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\x00",
    "\u00e9",
]


def interesting_ints() -> list[int]:
    return [0, 1, -1, 2, 3, 7, 8, 15, 16, 127, 128, 255, 256, 1023, 1024, 65535, 65536, 2**31 - 1, 2**31,
            2**32 - 1, 2**32, 2**53, 2**62, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**31), -(2**63), -(2**63) - 1,
            10**30]  # fmt: skip


__all__ = [
    "KNOWN",
    "NPY_HEADERS",
    "Bug",
    "HeavyBudget",
    "Seeds",
    "Slow",
    "call",
    "count",
    "deadline",
    "fuzz_settings",
    "interesting_ints",
    "npy_bytes",
    "outcome",
    "quiet_stdio",
]  # fmt: skip


# --- state files (`save_state`'s .npz: a JSON header and the arrays it names) ---------------------
def split_state(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """A state file's header (parsed) and its other arrays."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    return json.loads(arrays.pop("header").tobytes().decode()), arrays


def join_state(header_bytes: bytes, arrays: dict[str, np.ndarray]) -> bytes:
    """A state file of these header bytes and arrays."""
    out = io.BytesIO()
    np.savez(out, header=np.frombuffer(header_bytes, dtype=np.uint8), **arrays)
    return out.getvalue()


def json_paths(node, prefix=()):
    """The path (keys and indices) of every node of a parsed JSON document, its root first."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from json_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from json_paths(value, (*prefix, n))
