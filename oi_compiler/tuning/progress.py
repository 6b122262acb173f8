"""A one-line progress bar on standard error, rewritten in place (`\\r`): no tqdm needed.

    oi-tune: 12/40 [#######.............]  30%  14.2 s  best 3.10 ms

Shown when asked (`progress=True`), or by default when standard error is a terminal.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str = "oi-tune", enabled: bool | None = None, stream=None, width: int = 20):
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(self.stream is not None and getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled and self.stream is not None
        self.total, self.label, self.width = max(total, 1), label, width
        self.done = 0
        self.note = ""
        self.start = time.perf_counter()
        self._shown = 0

    def update(self, count: int = 1, note: str | None = None) -> None:
        self.done += count
        if note is not None:
            self.note = note
        self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        filled = self.width * min(self.done, self.total) // self.total
        line = (f"{self.label}: {self.done}/{self.total} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{100 * self.done // self.total:3d}%  {time.perf_counter() - self.start:.1f} s"
                f"{'  ' + self.note if self.note else ''}")  # fmt: skip
        pad = " " * max(0, self._shown - len(line))
        self._shown = len(line)
        try:
            self.stream.write("\r" + line + pad)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or full stream: no bar, the search goes on
            self.enabled = False

    def close(self) -> None:
        if self.enabled and self._shown:
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass
        self.enabled = False
