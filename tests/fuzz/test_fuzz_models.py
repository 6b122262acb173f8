"""Fuzz target 3: model files.

Real `.oinf` (v1 and v2, quantisation, every dtype, metadata of every kind) and `.npz` files
written by `Model.save`, plus plain `np.savez` archives, mutated at the byte level (flips, cuts,
insertions, splices), at the field level (4- and 8-byte little-endian words overwritten with
interesting values: counts, offsets, sizes, dtype codes) and, for `.npz`, at the archive level
(members renamed, dropped, duplicated, recompressed, `.npy` headers rewritten), then opened with
`oi.Model.open` and read through every query (`tensor`, `tensor_dtype`, `tensor_shape`,
`tensor_quant`, `metadata_string`...), saved again in both formats, and bound by a simulator to a
graph declaring its tensors. Only `oi.OiError` (`ModelError`) may escape.
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import oi_compiler as oi
from tests.example_models import tiny_decoder_oinf_bytes
from oi_compiler.dtypes import DTYPE_NAMES
from oi_compiler.models.oinf_format import QuantParams

from ._support import (
    NPY_HEADERS,
    Bug,
    Seeds,
    call,
    count,
    fuzz_settings,
    interesting_ints,
    npy_bytes,
    outcome,
)
from .oi_grammar import byte_mutations, random_array

pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")]


def _seed_models() -> dict[str, bytes]:
    tensors = {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3), "q": np.array([-8, 7, 0], np.int8),
        "b": np.array([1.5, -2], ml_dtypes.bfloat16), "f8": np.array([0.5, 2], ml_dtypes.float8_e5m2),
        "z": np.zeros((0, 3), np.int32), "s": np.float64(2.5), "m": np.array([True, False]),
        "u": np.array([2**64 - 1, 3], np.uint64), "h": np.ones((2, 2), np.float16), "i4": np.array([1, -2, 7], np.int8),
        "layers.0.w": np.ones((2, 2), np.float32), "u4": np.array([0, 15], np.uint8),
    }  # fmt: skip
    metadata = {"mode": "fast", "eps": 1e-5, "n": 3, "flag": True, "arr": np.arange(3, dtype=np.int32), "big": 2**63,
                "neg": -5}  # fmt: skip
    quant = {"q": QuantParams("symmetric", [0.5]), "w": QuantParams("asymmetric", [0.1, 0.2], [1, 2], axis=0)}
    full = oi.Model({"D": 4, "N": 2}, tensors, metadata, dtypes={"i4": "i4", "u4": "u4"}, quant=quant)
    plain = oi.Model({"D": 2}, {"x": np.ones(3, np.float32)})
    seeds = Seeds()
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, version in [("full.oinf", full, 2), ("full.npz", full, 2), ("plain.oinf", plain, 1),
                                     ("plain2.oinf", plain, 2), ("plain.npz", plain, 2)]:  # fmt: skip
            path = Path(tmp) / name
            model.save(path, version=version)
            seeds[name] = path.read_bytes()
    buffer = io.BytesIO()  # an archive np.savez wrote, without the index member
    np.savez(buffer, a=np.ones((2, 2), np.float32), b=np.arange(3), c=np.array(1.5))
    seeds["numpy.npz"] = buffer.getvalue()
    seeds["tiny_decoder.oinf"] = tiny_decoder_oinf_bytes()  # examples/ has it only after `make demo`
    return seeds


SEEDS = _seed_models()
WORDS = interesting_ints()


@st.composite
def word_mutations(draw) -> tuple[str, bytes]:
    """A seed with 1-4 aligned 4- or 8-byte words overwritten (most header fields are such words)."""
    name = draw(st.sampled_from(sorted(s for s in SEEDS if s != "tiny_decoder.oinf")))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 4))):
        width = draw(st.sampled_from([4, 8, 2, 1]))
        limit = min(len(data), 512 if draw(st.booleans()) else len(data)) - width  # headers are near the start
        at = draw(st.integers(0, max(0, limit // width))) * width
        value = draw(st.sampled_from(WORDS)) % (1 << (8 * width))
        data[at : at + width] = value.to_bytes(width, "little")
    return name, bytes(data)


@st.composite
def archive_mutations(draw) -> tuple[str, bytes]:
    """A `.npz` seed rebuilt with its members edited."""
    name = draw(st.sampled_from([s for s in SEEDS if s.endswith(".npz")]))
    with zipfile.ZipFile(io.BytesIO(SEEDS[name])) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(members) - 1)) if members else 0
        how = draw(st.sampled_from(["rename", "drop", "duplicate", "header", "array", "truncate", "junk"]))
        if not members:
            members.append(("x.npy", npy_bytes(np.ones(2, np.float32))))
        elif how == "rename":
            members[at] = (draw(st.sampled_from(["a", "a.npy", "../x.npy", "/abs.npy", "__oinf__.npy", "é.npy",
                                                 "x" * 300 + ".npy", "dir/x.npy", "w.npy", "a b.npy", "\\x.npy"])),
                           members[at][1])  # fmt: skip
        elif how == "drop":
            del members[at]
        elif how == "duplicate":
            members.append(members[at])
        elif how == "header":
            members[at] = (members[at][0], npy_bytes(np.ones(2, np.float32), draw(st.sampled_from(NPY_HEADERS))))
        elif how == "array":
            value = draw(st.sampled_from([np.ones((2, 2), np.complex64), np.array(["ab", "c"]), np.zeros(0),
                                          np.arange(4, dtype=np.uint16).reshape(2, 2).T, np.array(np.datetime64(1, "s")),
                                          np.zeros((1, 0, 2), np.float32), np.array([1, 2], np.int64)]))  # fmt: skip
            members[at] = (members[at][0], npy_bytes(value))
        elif how == "truncate":
            members[at] = (members[at][0], members[at][1][: draw(st.integers(0, len(members[at][1])))])
        else:
            members[at] = (members[at][0], draw(st.binary(max_size=64)))
    compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_DEFLATED,
                                        zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]))  # fmt: skip
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for member, data in members:
            archive.writestr(member, data)
    return name, out.getvalue()


@st.composite
def random_files(draw) -> tuple[str, bytes]:
    prefix = draw(st.sampled_from([b"", b"OINF\x00", b"PK\x03\x04", b"PK\x05\x06", b"OINF\x00\x02\x00\x00\x00"]))
    return "random", prefix + draw(st.binary(max_size=256))


model_files = st.one_of(byte_mutations(SEEDS), word_mutations(), archive_mutations(), random_files())

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def read_everything(path: Path, target: str) -> None:
    model, error = call("Model.open", oi.Model.open, path)
    if model is None:
        count(target, f"rejected: {type(error).__name__}")
        return
    count(target, "opened")
    repr(model)
    for name in [*model.tensor_names(), "missing"]:
        _, error = call("Model.tensor", model.tensor, name)
        count(target, f"tensor: {'ok' if error is None else type(error).__name__}")
        for query in (model.tensor_dtype, model.tensor_shape, model.tensor_has_data, model.tensor_quant):
            call(f"Model.{query.__name__}", query, name)
    for key in [*model.metadata, "missing"]:
        call("Model.metadata_string", model.metadata_string, key)
    for suffix in (".oinf", ".npz"):
        _, error = call(f"Model.save({suffix})", model.save, path.with_name(f"again{suffix}"))
        if error is None:
            call(f"Model.open(saved {suffix})", oi.Model.open, path.with_name(f"again{suffix}"))
    # bound to a graph that declares each tensor as a constant of the shape and dtype it reports
    decls = []
    for name in model.tensor_names():
        try:
            dtype, shape = model.tensor_dtype(name), model.tensor_shape(name)
        except oi.OiError:
            continue
        if NAME.match(name) and len(shape) <= 4 and all(isinstance(n, int) and 0 <= n < 2**31 for n in shape):
            decls.append(f"{name}: {dtype}[{', '.join(map(str, shape))}];")
    if decls:
        src = f"constant {{ {' '.join(decls)} }} block entry {{ return; }}"
        graph, _ = call("parse_graph", oi.parse_graph, src, "model.oi")
        if graph is not None:
            sim, error = call("Simulator(model)", oi.Simulator, model, graph)
            count(target, f"bound: {'ok' if error is None else type(error).__name__}")
            if sim is not None:
                exe, _ = call("make_executor", sim.make_executor)
                if exe is not None:
                    call("step", exe.step)
                    for name in model.tensor_names():
                        call("fetch", exe.fetch, name)


@fuzz_settings(300)
@given(model_files)
def test_mutated_model_files(case) -> None:
    name, data = case
    with outcome("models", (name, data)), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("model.npz" if name.endswith(".npz") else "model.oinf")
        path.write_bytes(data)
        read_everything(path, "models")


def test_the_seeds_open() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in SEEDS.items():
            path = Path(tmp) / name
            path.write_bytes(data)
            model = oi.Model.open(path)
            for tensor in model.tensor_names():
                model.tensor(tensor)


# --- models built in memory, saved and opened again ------------------------------------------------

NAMES = st.sampled_from(["w", "a.b", "layers.0.w", "x-y", "_", "W9", "é", "", "a/b", "a b", "x" * 300, "__oinf__",
                         "D", "0"])  # fmt: skip
METADATA = st.one_of(
    st.text(max_size=8), st.integers(min_value=-(2**64), max_value=2**64), st.floats(), st.booleans(), st.none(),
    st.binary(max_size=4), st.lists(st.integers(-3, 3), max_size=3),
    st.sampled_from([np.arange(3, dtype=np.int32), np.zeros((2, 2), np.float16), np.array([True, False]),
                     np.array([], np.float64), np.float32(1.5), np.uint64(2**64 - 1), np.array(["a"]), {"a": 1},
                     np.array([1 + 2j]), np.zeros((0, 2), np.int8), np.array(3, np.int64)]),
)  # fmt: skip


@st.composite
def random_models(draw) -> dict:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tensors = {}
    for _ in range(draw(st.integers(0, 4))):
        dtype = draw(st.sampled_from(DTYPE_NAMES))
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
        tensors[draw(NAMES)] = random_array(rng, dtype, shape)
    sizevars = {draw(NAMES): draw(st.sampled_from(interesting_ints() + [np.int64(3), 2.0, True, "4"]))
                for _ in range(draw(st.integers(0, 3)))}  # fmt: skip
    metadata = {draw(NAMES): draw(METADATA) for _ in range(draw(st.integers(0, 3)))}
    quant = {}
    if tensors and draw(st.booleans()):
        name = draw(st.sampled_from(sorted(tensors)))
        axis = draw(st.sampled_from([None, 0, 1, -1, 5]))
        count_ = draw(st.integers(0, 4))
        try:
            quant[name] = QuantParams(draw(st.sampled_from(["symmetric", "asymmetric"])),
                                      draw(st.lists(st.floats(width=32), min_size=count_, max_size=count_)),
                                      draw(st.one_of(st.none(), st.lists(st.integers(-(2**31), 2**31 - 1),
                                                                         min_size=count_, max_size=count_))), axis)  # fmt: skip
        except ValueError:
            pass
    return {"sizevars": sizevars, "tensors": tensors, "metadata": metadata, "quant": quant}


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and (a.dtype == b.dtype or a.dtype.kind == b.dtype.kind) and a.tobytes() == np.asarray(
            b, a.dtype).tobytes()  # fmt: skip
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return a == b


@fuzz_settings(200)
@given(random_models(), st.sampled_from([".oinf", ".oinf-v1", ".npz"]))
def test_models_round_trip(kwargs, fmt: str) -> None:
    """A model `oi.Model(...)` accepts and `save` writes reads back the same (or either refuses with
    a `ModelError`): sizevars, metadata, each tensor's dtype, shape, bytes and quantisation."""
    with outcome("model-round-trip", (kwargs, fmt)), tempfile.TemporaryDirectory() as tmp:
        model, error = call("Model(...)", lambda: oi.Model(**kwargs))
        if model is None:
            count("model-round-trip", f"refused: {type(error).__name__}")
            return
        path = Path(tmp) / f"m{fmt.split('-')[0]}"
        _, error = call(f"Model.save({fmt})", model.save, path, version=1 if fmt.endswith("v1") else 2)
        if error is not None:
            count("model-round-trip", f"save refused: {type(error).__name__}")
            return
        again, _ = call(f"Model.open({fmt})", oi.Model.open, path, expect=())
        count("model-round-trip", "saved and opened")
        problems = []
        if again.sizevars != model.sizevars:
            problems.append(f"sizevars {model.sizevars} -> {again.sizevars}")
        for key, value in model.metadata.items():
            if key not in again.metadata or not _same(value, again.metadata[key]):
                problems.append(f"metadata {key!r}: {value!r} -> {again.metadata.get(key, '<missing>')!r}")
        for name in model.tensor_names():
            before, after = model.tensor(name), again.tensor(name)
            if (model.tensor_dtype(name), before.shape) != (again.tensor_dtype(name), after.shape) or not _same(
                    before, after):  # fmt: skip
                problems.append(f"tensor {name!r}: {model.tensor_dtype(name)}{list(before.shape)} -> "
                                f"{again.tensor_dtype(name)}{list(after.shape)}")  # fmt: skip
            if model.tensor_quant(name) != again.tensor_quant(name):
                problems.append(f"quant {name!r}: {model.tensor_quant(name)} -> {again.tensor_quant(name)}")
        if problems:
            raise Bug(f"{fmt} round trip", AssertionError("; ".join(problems)[:2000]))
