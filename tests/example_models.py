"""The bundled example's model file, made on demand: `examples/tiny_decoder.oinf` is written by
`make demo` (it is not in git), so a test that needs it writes its own copy."""

from __future__ import annotations

import functools
import importlib.util
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def tiny_decoder_oinf_bytes() -> bytes:
    """The bytes `examples/tiny_decoder.py` writes as the tiny decoder's model."""
    spec = importlib.util.spec_from_file_location("tiny_decoder_model", ROOT / "examples" / "tiny_decoder.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tiny_decoder.oinf"
        module.write_model(path)
        return path.read_bytes()


def tiny_decoder_oinf(directory: Path) -> Path:
    """The tiny decoder's model written into `directory`; its path."""
    path = Path(directory) / "tiny_decoder.oinf"
    path.write_bytes(tiny_decoder_oinf_bytes())
    return path
