"""The package's version: the one place it is written (pyproject.toml reads it; `oi_compiler.__version__`
and the compile cache's entries name it)."""

__version__ = "0.1.0"
