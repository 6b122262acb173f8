"""The loop-nest autotuner: Accera-style parameters and grids, a search that measures candidates
(in parallel processes or on Ray), and an on-disk database of tuned plans (docs/loop_nests.md,
"Tuning").

    parameters.py   oi.Parameter, create_parameters, create_parameter_grid, parameter_values
    candidates.py   one candidate: build, compile, check against the reference, time
    runners.py      where candidates run: this process, a process pool, Ray tasks
    search.py       oi.tune: the search, the final timing round, TuneResult
    database.py     the tuning database (JSON files under the compile cache's directory)
    progress.py     the progress line on standard error
"""

from oi_compiler.tuning.parameters import Parameter, create_parameter_grid, create_parameters, parameter_values
from oi_compiler.tuning.search import TuneError, TuneResult, tune

__all__ = ["Parameter", "TuneError", "TuneResult", "create_parameter_grid", "create_parameters", "parameter_values",
           "tune"]
