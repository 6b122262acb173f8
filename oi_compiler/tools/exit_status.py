"""How the command-line tools turn errors into one diagnostic line and an exit status.

0 success; 1 the input was rejected (`file:line:col: error: message`), or the output
could not be written (a full disk: `tool: error: No space left on device`); 2 a bad
command line or pass option (`tool: error: message`); 3 an internal error (a bug in
oi_compiler: one line, or the traceback with `OI_DEBUG=1`); 130 interrupted; 141 the
reader of standard output went away (`oi-run ... | head`: no message, as a Unix tool
killed by SIGPIPE).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable

from oi_compiler.errors import InternalError, OiError, OptionError, PassError


class ToolArgumentParser(argparse.ArgumentParser):
    """The tools' command lines: a usage error is one `OptionError` (exit 2), and `--help` written
    to a full disk or a closed output fails as any output does (argparse would swallow the error)."""

    def error(self, message: str):
        raise OptionError(message)

    def _print_message(self, message: str, file=None) -> None:
        file = file or sys.stderr  # (argparse names the stream; stderr for its own messages)
        if message and file is not None:
            file.write(message)


def run_reporting_errors(prog: str, run: Callable[[], int]) -> int:
    """`run()`'s exit status, or the status of the error it raised, reported on stderr."""
    closed = sys.stdout is None  # started with standard output closed (`tool >&-`): writing it fails
    if closed:
        sys.stdout = _ClosedOutput()
    try:
        try:
            status = run()
        except SystemExit as e:  # `--help` printed (`ToolArgumentParser` lets its write errors out)
            if e.code is not None and not isinstance(e.code, int):  # `sys.exit("message")`, as Python does
                _report(str(e.code))
            status = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
        sys.stdout.flush()  # a closed pipe or a full disk shows here at the latest, not at exit
        return status
    except BrokenPipeError:  # the tools write no pipe but standard output
        _discard_stdout()
        return 141
    except ClosedOutputError as e:
        _report(f"{prog}: error: {e.strerror}")
        return 1
    except OSError as e:
        if e.errno not in _OUT_OF_SPACE:
            return _internal(prog, e)
        _discard_stdout()
        _report(f"{prog}: error: {e.strerror}")
        return 1
    except InternalError as e:  # a bug in oi_compiler, never the user's fault: one line, no traceback
        if os.environ.get("OI_DEBUG"):
            raise
        _report(f"{e if e.loc is not None else f'{prog}: {e}'} (set OI_DEBUG=1 for a traceback)")
        return 3
    except (OptionError, PassError) as e:
        if isinstance(e, PassError) and e.loc is not None:  # the input's fault: it says where
            _report(str(e))
            return 1
        _report(f"{prog}: error: {e.message}")
        return 2
    except OiError as e:
        _report(str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug outside every stage's boundary
        return _internal(prog, e)
    finally:
        if closed:  # (a caller of main() in this process gets its None back)
            sys.stdout = None


#: errors writing output that are the disk's, not a bug (files the tools write report their own)
_OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class ClosedOutputError(OSError):
    """A write to standard output when the tool was started without one (`tool >&-`)."""


class _ClosedOutput:
    """Standard output when the tool was started without one: every write fails as write(2) would."""

    def write(self, text: str) -> int:
        raise ClosedOutputError(errno.EBADF, "standard output is closed")

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        raise ClosedOutputError(errno.EBADF, "standard output is closed")


def _internal(prog: str, e: Exception) -> int:
    if os.environ.get("OI_DEBUG"):
        raise e
    from oi_compiler.boundary import internal_error

    _report(f"{prog}: {internal_error(e, prog)} (set OI_DEBUG=1 for a traceback)")
    return 3


def _discard_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush of what is left in
    its buffer does not fail again at exit (Python would print an 'Exception ignored' note)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):  # no real file behind sys.stdout (a test's capture)
        pass


def _report(line: str) -> None:
    try:
        sys.stdout.flush()  # what the tool printed so far comes before the diagnostic
    except OSError:  # reported on its own; the diagnostic still goes out
        pass
    if sys.stderr is not None:  # (started with standard error closed: nowhere to say it)
        print(line, file=sys.stderr)
