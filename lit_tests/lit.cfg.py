# lit configuration: every .mlir and .oi file under lit_tests/ is a test.
import importlib.util
import os
import sys

import lit.formats

config.name = "oi_compiler"
# lit 23 (pinned in pyproject.toml) refuses execute_external=True; the internal
# shell is what lit supports from now on, and it provides `not`.
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".oi"]
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["lit.cfg.py", "fork_server.py", "Inputs"]
config.environment["PATH"] = os.environ["PATH"]
for name in ("OI_DEBUG", "PYTHONPATH", "HOME"):
    if name in os.environ:
        config.environment[name] = os.environ[name]
config.substitutions.append(("%examples", os.path.join(os.path.dirname(config.test_source_root), "examples")))

# `oi-opt`, `oi-run` and `filecheck` through one server that imported them once (fork_server.py)
_spec = importlib.util.spec_from_file_location("oi_lit_fork_server", os.path.join(config.test_source_root, "fork_server.py"))
_fork_server = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _fork_server  # kept alive with lit: it holds the server's stdin
_spec.loader.exec_module(_fork_server)
_fork_server.start(config.environment)
