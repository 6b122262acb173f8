"""`pytest tests/fuzz -s` (or `OI_FUZZ_STATS=1`) ends with what each fuzz target's inputs reached."""

from __future__ import annotations

import json
import os


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    from ._support import STATS

    if STATS and (os.environ.get("OI_FUZZ_STATS") or config.getoption("capture") == "no"):
        terminalreporter.section("fuzz targets")
        for target, counts in sorted(STATS.items()):
            terminalreporter.write_line(f"{target}: {json.dumps(dict(sorted(counts.items())))}")
