# lit configuration: every .mlir and .oi file under lit_tests/ is a test.
import os

import lit.formats

config.name = "oi_compiler"
# lit 23 (pinned in pyproject.toml) refuses execute_external=True; the internal
# shell is what lit supports from now on, and it provides `not`.
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".oi"]
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["lit.cfg.py", "Inputs"]
config.environment["PATH"] = os.environ["PATH"]
for name in ("OI_DEBUG", "PYTHONPATH", "HOME"):
    if name in os.environ:
        config.environment[name] = os.environ[name]
config.substitutions.append(("%examples", os.path.join(os.path.dirname(config.test_source_root), "examples")))
