"""How the command-line tools turn errors into one diagnostic line and an exit status.

0 success; 1 the input was rejected (`file:line:col: error: message`); 2 a bad command
line or pass option (`tool: error: message`); 3 an internal error (a bug in
oi_compiler: one line, or the traceback with `OI_DEBUG=1`); 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from oi_compiler.errors import InternalError, OiError, OptionError, PassError


def run_reporting_errors(prog: str, run: Callable[[], int]) -> int:
    """`run()`'s exit status, or the status of the error it raised, reported on stderr."""
    try:
        return run()
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
        if os.environ.get("OI_DEBUG"):
            raise
        from oi_compiler.boundary import internal_error

        _report(f"{prog}: {internal_error(e, prog)} (set OI_DEBUG=1 for a traceback)")
        return 3


def _report(line: str) -> None:
    sys.stdout.flush()  # what the tool printed so far comes before the diagnostic
    print(line, file=sys.stderr)
