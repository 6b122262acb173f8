"""oi.Model: files from the upstream encoder (openinfer-oinf), a hand-assembled OINF v2 file,
`save` round trips through .oinf (v1, v2) and .npz for every DSL dtype, in-memory models, and
malformed input (targeted cases and fuzzing: only ModelError may escape)."""

from __future__ import annotations

import dataclasses
import mmap
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import oinf_verify
import pytest
from dataclass_to_oinf import Bitset as EncoderBitset
from dataclass_to_oinf import ScalarValue, TensorSpec, UninitializedTensor, dataclass_to_oinf
from oinf_numeric import float_to_bf16_bits, float_to_f8_bits

import oi_compiler as oi
from oi_compiler.dtypes import DTYPE_NAMES, INT_RANGES, numpy_dtype
from oi_compiler.errors import ModelError
from oi_compiler.models.model import NPZ_INDEX, Bitset, QuantParams

RNG = np.random.default_rng(20240601)


@dataclasses.dataclass
class EncoderInput:
    """The upstream encoder reads `sizevars`, `metadata` and `tensors` dicts off a dataclass."""

    sizevars: dict
    metadata: dict
    tensors: dict


def encode(path: Path, sizevars: dict | None = None, metadata: dict | None = None, tensors: dict | None = None) -> Path:
    path.write_bytes(dataclass_to_oinf(EncoderInput(sizevars or {}, metadata or {}, tensors or {})))
    return path


def sample(dtype: str, shape: tuple[int, ...], *, special: bool = True) -> np.ndarray:
    """Random values of a DSL dtype covering its range (floats include nan, inf, -0.0 if `special`)."""
    if dtype == "bool":
        return np.asarray(RNG.random(shape) < 0.5)
    if dtype in INT_RANGES:
        low, high = INT_RANGES[dtype]
        storage = {"i4": np.int8, "u4": np.uint8}.get(dtype, numpy_dtype(dtype))
        return np.asarray(RNG.integers(low, high, size=shape, dtype=storage, endpoint=True)).astype(numpy_dtype(dtype))
    values = np.asarray(RNG.standard_normal(shape) * 8)
    if special:
        values.reshape(-1)[:4] = [np.nan, np.inf, -np.inf, -0.0][: values.size]
    return values.astype(numpy_dtype(dtype))


def assert_same(actual: Any, expected: Any) -> None:
    """Exact equality: arrays by dtype, shape and bytes (so nan and -0.0 count); scalars by type and value."""
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray)
        assert (actual.dtype, actual.shape) == (expected.dtype, expected.shape)
        assert np.ascontiguousarray(actual).tobytes() == np.ascontiguousarray(expected).tobytes()
    else:
        assert type(actual) is type(expected) and actual == expected


def touch_everything(path: Path) -> oi.Model:
    model = oi.Model.open(path)
    for name in model.tensor_names():
        model.tensor(name)
    return model


# --- files from the upstream encoder (format version 1) ---------------------------------------------

ENCODER_PACKED = {"i4": (-8, 7), "i2": (-2, 1), "i1": (-1, 0), "u4": (0, 15), "u2": (0, 3), "u1": (0, 1), "t2": (-1, 1)}
WIDENED = {"i4": "i4", "u4": "u4", "i2": "i8", "i1": "i8", "t2": "i8", "t1": "i8", "u2": "u8", "u1": "u8"}
PLAIN_DTYPES = ("i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f16", "f32", "f64", "bool")

ENCODER_METADATA = {
    "flag": (True, True),
    "mode": ("clamp_up", "clamp_up"),
    "small": (200, 200),
    "neg": (-5, -5),
    "wide": (70000, 70000),
    "huge": (2**63 + 5, 2**63 + 5),
    "very_neg": (-(2**40), -(2**40)),
    "ratio": (0.1, float(np.float32(0.1))),
    "bits": (EncoderBitset([1, 0, 1, 1, 0, 0, 0, 0, 1]), Bitset(9, bytes([0b00001101, 0b1]))),
    "table": (np.arange(6, dtype=np.int32).reshape(2, 3), np.arange(6, dtype=np.int32).reshape(2, 3)),
    "mask": (np.array([True, False]), np.array([True, False])),
    "nothing": (np.zeros((0,), np.float64), np.zeros((0,), np.float64)),
    "narrowed": ([1, 2, 3], np.array([1, 2, 3], np.int8)),
    "h": (ScalarValue(1.5, "f16"), 1.5),
    "d": (ScalarValue(0.1, "f64"), 0.1),
    "i16": (ScalarValue(-300, "i16"), -300),
    "b16": (ScalarValue(1.5, "bf16"), 1.5),
    "f8": (ScalarValue(0.75, "f8"), 0.75),
    "q4": (ScalarValue(-3, "i4"), -3),
    "q2": (ScalarValue(-2, "i2"), -2),
    "q1": (ScalarValue(-1, "i1"), -1),
    "p4": (ScalarValue(9, "u4"), 9),
    "p2": (ScalarValue(3, "u2"), 3),
    "p1": (ScalarValue(1, "u1"), 1),
    "tern2": (ScalarValue(-1, "t2"), -1),
    "tern1": (ScalarValue(-1, "t1"), -1),
    "arr_bf16": (ScalarValue([1.5, -2.0], "bf16"), np.array([1.5, -2.0], ml_dtypes.bfloat16)),
    "arr_f8": (ScalarValue([0.5, 3.0], "f8"), np.array([0.5, 3.0], ml_dtypes.float8_e5m2)),
    "arr_i4": (ScalarValue([[-8, 7], [0, 1]], "i4"), np.array([[-8, 7], [0, 1]], ml_dtypes.int4)),
}
#: NDARRAY elements of packed types the DSL lacks: read widened, so re-saved widened (not byte-identical).
ENCODER_WIDENED_ARRAYS = {
    "arr_t1": (ScalarValue([1, -1, 1], "t1"), np.array([1, -1, 1], np.int8)),
    "arr_u2": (ScalarValue([0, 1, 2, 3, 3], "u2"), np.array([0, 1, 2, 3, 3], np.uint8)),
}


def encoder_tensors() -> tuple[dict[str, Any], dict[str, tuple[str, np.ndarray, str]]]:
    """Encoder inputs for every type it supports, and (DSL dtype, expected values, how to compare)."""
    tensors: dict[str, Any] = {}
    expected: dict[str, tuple[str, np.ndarray, str]] = {}
    for dtype in PLAIN_DTYPES:
        values = sample(dtype, (3, 5))
        tensors[f"t.{dtype}"] = values
        expected[f"t.{dtype}"] = (dtype, values, "values")
    floats = sample("f32", (3, 5))
    tensors["t.bf16"] = TensorSpec(floats, "bf16")
    expected["t.bf16"] = ("bf16", np.vectorize(float_to_bf16_bits, otypes=[np.uint16])(floats), "bits")
    tensors["t.f8"] = TensorSpec(floats, "f8")
    expected["t.f8"] = ("f8", np.vectorize(float_to_f8_bits, otypes=[np.uint8])(floats), "bits")
    for dtype, (low, high) in ENCODER_PACKED.items():
        values = RNG.integers(low, high, size=(3, 5), endpoint=True)
        tensors[f"t.{dtype}"] = TensorSpec(values, dtype)
        expected[f"t.{dtype}"] = (WIDENED[dtype], values, "ints")
    ternary = RNG.choice([-1, 1], size=(3, 5))
    tensors["t.t1"] = TensorSpec(ternary, "t1")
    expected["t.t1"] = ("i8", ternary, "ints")
    tensors["scalar.f64"] = np.array(2.5)
    expected["scalar.f64"] = ("f64", np.array(2.5), "values")
    tensors["scalar.i2"] = TensorSpec(np.array(-2), "i2")
    expected["scalar.i2"] = ("i8", np.array(-2), "ints")
    tensors["empty.u1"] = TensorSpec(np.zeros((0, 3), np.uint8), "u1")
    expected["empty.u1"] = ("u8", np.zeros((0, 3), np.uint8), "ints")
    return tensors, expected


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tensors, expected = encoder_tensors()
    tensors["declared"] = UninitializedTensor("bf16", [2, 4])
    metadata = {key: value for key, (value, _) in {**ENCODER_METADATA, **ENCODER_WIDENED_ARRAYS}.items()}
    path = encode(tmp_path_factory.mktemp("encoder") / "all.oinf", {"B": 4, "D": 2**64 - 1}, metadata, tensors)
    return path, expected


def test_reads_every_encoder_tensor_type(encoder_file: tuple[Path, dict]) -> None:
    path, expected = encoder_file
    model = oi.Model.open(path)
    assert (model.path, model.version) == (path, 1)
    for name, (dtype, values, compare) in expected.items():
        array = model.tensor(name)
        assert model.tensor_dtype(name) == dtype, name
        assert array.dtype == numpy_dtype(dtype) and array.shape == values.shape, name
        assert not array.flags.writeable
        if compare == "bits":
            assert_same(array.view(values.dtype), values)
        elif compare == "ints":
            assert np.array_equal(array.astype(np.int64), values), name
        else:
            assert_same(array, values)


def test_reads_encoder_sizevars_metadata_and_declared_tensors(encoder_file: tuple[Path, dict]) -> None:
    model = oi.Model.open(encoder_file[0])
    assert model.sizevars == {"B": 4, "D": 2**64 - 1}
    assert model.size_of("B") == 4 and model.size_of("nope") is None
    assert sorted(model.metadata) == sorted({**ENCODER_METADATA, **ENCODER_WIDENED_ARRAYS})
    for key, (_, expected) in {**ENCODER_METADATA, **ENCODER_WIDENED_ARRAYS}.items():
        assert_same(model.metadata[key], expected)
    assert model.metadata_string("mode") == "clamp_up" and model.metadata_string("small") is None
    assert model.metadata["bits"].to_bools().tolist() == [True, False, True, True, False, False, False, False, True]
    assert not model.tensor_has_data("declared") and model.tensor_has_data("t.f32")
    assert model.tensor_shape("declared") == (2, 4) and model.tensor_dtype("declared") == "bf16"
    assert_same(np.ascontiguousarray(model.tensor("declared")), np.zeros((2, 4), ml_dtypes.bfloat16))


def test_version_1_save_is_byte_identical_to_the_encoder(tmp_path: Path) -> None:
    tensors, _ = encoder_tensors()
    tensors["declared"] = UninitializedTensor("u4", [3])
    metadata = {key: value for key, (value, _) in ENCODER_METADATA.items()}
    original = encode(tmp_path / "upstream.oinf", {"B": 4}, metadata, tensors)
    again = oi.Model.open(original).save(tmp_path / "again.oinf", version=1)
    assert again.read_bytes() == original.read_bytes()


def test_upstream_verifier_accepts_version_1_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tensors = {name: sample(name, (6,), special=False) for name in DTYPE_NAMES}  # its statistics fail on nan, 2-D bool
    metadata = {"mode": "fast", "bits": Bitset.from_bools([1, 1, 0]), "w": np.ones(3, ml_dtypes.bfloat16)}
    path = oi.Model({"N": 2}, tensors, metadata).save(tmp_path / "ours.oinf", version=1)
    oinf_verify.parse_file(str(path))
    printed = capsys.readouterr().out
    assert "N := 2" in printed and "i4: i4[6]" in printed and 'mode: str = "fast"' in printed


def test_widened_packed_tensors_keep_their_type_when_saved(encoder_file: tuple[Path, dict], tmp_path: Path) -> None:
    again = oi.Model.open(oi.Model.open(encoder_file[0]).save(tmp_path / "again.oinf"))
    assert again.version == 2
    raw = again.path.read_bytes()
    t1_payload = np.packbits(oi.Model.open(encoder_file[0]).tensor("t.t1").reshape(-1) > 0, bitorder="little")
    assert t1_payload.tobytes() in raw  # written packed as t1, not widened to i8
    original = oi.Model.open(encoder_file[0])
    for name in original.tensor_names():
        assert_same(np.ascontiguousarray(again.tensor(name)), np.ascontiguousarray(original.tensor(name)))
        assert again.tensor_dtype(name) == original.tensor_dtype(name)


# --- a hand-assembled version 2 file ----------------------------------------------------------------


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 8)


def _name(text: str) -> bytes:
    return _pad(struct.pack("<I", len(text)) + text.encode())


def build_v2() -> bytes:
    """sizevar N=4; metadata mode="fast"; q: i8[2,3] with per-channel asymmetric quantisation along
    axis 1; w: u4[3] packed; z: f32[2] declared without data. Laid out by the .rst, by hand."""
    sizevars = _name("N") + struct.pack("<Q", 4)
    mode = _pad(struct.pack("<I", 4) + b"fast")
    q_data = bytes([1, 0xFF, 2, 0xFE, 3, 0x7F])
    quant_header = struct.pack("<IIIIQQQQ", 2, 2, 2, 0, 1, 3, 1, 3)  # asymmetric, per-channel scales and zero points
    q_quant = _pad(quant_header + struct.pack("<3f", 0.5, 0.25, 2.0) + struct.pack("<3i", -1, 0, 7))
    w_data = bytes([0x21, 0x0F])  # LSB-first nibbles: 1, 2, 15

    def tensor_table(offsets: list[int]) -> bytes:
        q_at, quant_at, w_at = offsets
        return (
            _name("q") + struct.pack("<IIIQQ", 1, 2, 3, 2, 3) + struct.pack("<QQQQ", 6, q_at, len(q_quant), quant_at)
            + _name("w") + struct.pack("<IIIQ", 21, 1, 1, 3) + struct.pack("<QQQQ", 2, w_at, 0, 0)
            + _name("z") + struct.pack("<IIIQ", 10, 1, 0, 2) + struct.pack("<QQQQ", 0, 0, 0, 0)
        )  # fmt: skip

    at_metadata = 72 + len(sizevars)
    at_tensors = at_metadata + len(_name("mode")) + 24
    at_data = at_tensors + len(_pad(tensor_table([0, 0, 0])))
    q_at = at_data + len(mode)
    quant_at = q_at + 8
    w_at = quant_at + len(q_quant)
    file_size = w_at + 8
    header = struct.pack("<5sIIIIIIQQQQQ", b"OINF\0", 2, 0, 1, 1, 3, 0, 72, at_metadata, at_tensors, at_data, file_size)
    metadata_table = _name("mode") + struct.pack("<IIQQ", 14, 0, len(mode), at_data)
    tables = sizevars + metadata_table + _pad(tensor_table([q_at, quant_at, w_at]))
    return _pad(header) + tables + mode + _pad(q_data) + q_quant + _pad(w_data)


def test_reads_a_hand_built_version_2_file(tmp_path: Path) -> None:
    path = tmp_path / "v2.oinf"
    path.write_bytes(build_v2())
    model = oi.Model.open(path)
    assert model.version == 2 and model.sizevars == {"N": 4} and model.metadata == {"mode": "fast"}
    assert_same(model.tensor("q"), np.array([[1, -1, 2], [-2, 3, 127]], np.int8))
    assert model.tensor_quant("q") == QuantParams("asymmetric", (0.5, 0.25, 2.0), (-1, 0, 7), axis=1)
    assert_same(model.tensor("w"), np.array([1, 2, 15], ml_dtypes.uint4))
    assert model.tensor_quant("w") is None
    assert not model.tensor_has_data("z")
    assert_same(np.ascontiguousarray(model.tensor("z")), np.zeros(2, np.float32))


def test_version_2_save_matches_the_hand_built_layout(tmp_path: Path) -> None:
    path = tmp_path / "v2.oinf"
    path.write_bytes(build_v2())
    assert oi.Model.open(path).save(tmp_path / "again.oinf").read_bytes() == build_v2()


def test_version_1_cannot_hold_quantisation(tmp_path: Path) -> None:
    path = tmp_path / "v2.oinf"
    path.write_bytes(build_v2())
    with pytest.raises(ModelError, match="version 1 cannot store quantisation"):
        oi.Model.open(path).save(tmp_path / "v1.oinf", version=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v2.oinf"]


# --- round trips -------------------------------------------------------------------------------------

ROUND_TRIP_METADATA = {
    "flag": (False, False),
    "mode": ("fast", "fast"),
    "n": (7, 7),
    "neg": (-3, -3),
    "big": (2**64 - 1, 2**64 - 1),
    "x": (0.1, 0.1),
    "h": (np.float16(1.5), 1.5),
    "i16": (np.int16(-7), -7),
    "bf": (ml_dtypes.bfloat16(-2.5), -2.5),
    "truth": (np.bool_(True), True),
    "bits": (Bitset.from_bools([1, 0, 1, 1]), Bitset(4, b"\x0d")),
    "list": ([1, 2, 3], np.array([1, 2, 3])),
    "zero_d": (np.array(5, np.int32), np.array(5, np.int32)),
    **{f"arr.{dtype}": (values, values) for dtype in DTYPE_NAMES for values in [sample(dtype, (2, 3))]},
}


def every_dtype_tensors() -> dict[str, np.ndarray]:
    shapes = {"matrix": (3, 5), "scalar": (), "empty": (0, 4), "deep": (2, 1, 3, 1)}
    return {f"{dtype}.{label}": sample(dtype, shape) for dtype in DTYPE_NAMES for label, shape in shapes.items()}


@pytest.mark.parametrize(("suffix", "version"), [(".oinf", 2), (".oinf", 1), (".npz", 2)])
def test_round_trip_every_dtype(tmp_path: Path, suffix: str, version: int) -> None:
    tensors = every_dtype_tensors()
    metadata = {key: value for key, (value, _) in ROUND_TRIP_METADATA.items()}
    path = oi.Model({"B": 3, "MAX": 2**64 - 1}, tensors, metadata).save(tmp_path / f"model{suffix}", version=version)
    model = oi.Model.open(path)
    assert model.version == (version if suffix == ".oinf" else None)
    assert model.sizevars == {"B": 3, "MAX": 2**64 - 1}
    assert sorted(model.tensor_names()) == sorted(tensors)
    for name, values in tensors.items():
        assert model.tensor_dtype(name) == name.split(".")[0]
        assert model.tensor_shape(name) == values.shape
        assert_same(model.tensor(name), values)
    for key, (_, expected) in ROUND_TRIP_METADATA.items():
        assert_same(model.metadata[key], expected)


def test_npz_round_trip_keeps_quantisation_and_declared_tensors(tmp_path: Path) -> None:
    path = tmp_path / "v2.oinf"
    path.write_bytes(build_v2())
    model = oi.Model.open(oi.Model.open(path).save(tmp_path / "model.npz"))
    assert model.tensor_quant("q") == QuantParams("asymmetric", (0.5, 0.25, 2.0), (-1, 0, 7), axis=1)
    assert not model.tensor_has_data("z") and model.tensor_shape("z") == (2,)
    assert_same(model.tensor("w"), np.array([1, 2, 15], ml_dtypes.uint4))
    assert model.save(tmp_path / "back.oinf").read_bytes() == build_v2()
    with zipfile.ZipFile(tmp_path / "model.npz") as archive:
        assert sorted(archive.namelist()) == [f"{NPZ_INDEX}.npy", "q.npy", "w.npy"]


def test_metadata_types_follow_changed_values(encoder_file: tuple[Path, dict], tmp_path: Path) -> None:
    model = oi.Model.open(encoder_file[0])
    model.metadata.update(small=1000, ratio=0.1, q2=5)  # no longer fit u8, f32, i2
    again = oi.Model.open(model.save(tmp_path / "changed.oinf"))
    assert (again.metadata["small"], again.metadata["ratio"], again.metadata["q2"]) == (1000, 0.1, 5)


def test_opens_plain_numpy_npz(tmp_path: Path) -> None:
    path = tmp_path / "plain.npz"
    np.savez(path, **{"layer.0.weight": np.eye(2, dtype=np.float32), "flags": np.array([True])})
    model = oi.Model.open(path)
    assert model.version is None and model.sizevars == {} and model.metadata == {}
    assert model.tensor_dtype("layer.0.weight") == "f32" and model.tensor("flags").tolist() == [True]


def test_format_is_chosen_by_content(tmp_path: Path) -> None:
    model = oi.Model({}, {"x": np.arange(3, dtype=np.int16)})
    oinf = model.save(tmp_path / "a.oinf").rename(tmp_path / "a.npz")
    npz = model.save(tmp_path / "b.npz").rename(tmp_path / "b.oinf")
    assert oi.Model.open(oinf).version == 2 and oi.Model.open(npz).version is None
    assert oi.Model.open(oinf).tensor("x").tolist() == oi.Model.open(npz).tensor("x").tolist() == [0, 1, 2]


# --- laziness, saving ----------------------------------------------------------------------------------


def test_tensors_are_decoded_lazily_from_the_opened_file(tmp_path: Path) -> None:
    tensors = {"x": np.arange(6, dtype=np.float32), "p": np.zeros(3, ml_dtypes.int4)}
    path = oi.Model({}, tensors).save(tmp_path / "m.oinf")
    model = oi.Model.open(path)
    assert model._cache == {}
    array = model.tensor("x")
    assert array is model.tensor("x") and list(model._cache) == ["x"]
    assert not array.flags.writeable and array.tolist() == [0, 1, 2, 3, 4, 5]
    # read with positioned reads, not a memory map (a map dies of SIGBUS when the file shrinks)
    assert not isinstance(model._tensors["x"].load.args[0], mmap.mmap)


def test_save_replaces_the_file_it_was_opened_from(tmp_path: Path) -> None:
    path = oi.Model({}, {"x": np.arange(4, dtype=np.int32)}).save(tmp_path / "m.oinf")
    model = oi.Model.open(path)
    model.metadata["note"] = "second"
    model.save(path)
    assert oi.Model.open(path).metadata == {"note": "second"}
    assert oi.Model.open(path).tensor("x").tolist() == [0, 1, 2, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["m.oinf"]


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        (oi.Model({}, {"a b": np.zeros(1)}), "invalid tensor name 'a b'"),
        (oi.Model({"bad/name": 1}), "invalid sizevar name 'bad/name'"),
        (oi.Model({}, {}, {"note": "has spaces"}), "OINF strings must match"),
        (oi.Model({}, {}, {"thing": object()}), "unsupported type object"),
        (oi.Model({}, {}, {"c": np.array([1j])}), "numpy dtype complex128"),
        (oi.Model({}, {}, {"ragged": [[1], [1, 2]]}), "not a regular array"),
    ],
)
def test_save_errors_leave_no_file(tmp_path: Path, model: oi.Model, fragment: str) -> None:
    for suffix in (".oinf", ".npz"):
        with pytest.raises(ModelError, match=fragment) as info:
            model.save(tmp_path / f"m{suffix}")
        assert str(info.value).startswith(f"{tmp_path / f'm{suffix}'}: error: ")
    assert list(tmp_path.iterdir()) == []


def test_save_needs_a_known_suffix_and_a_free_npz_index_name(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="use .oinf or .npz"):
        oi.Model().save(tmp_path / "m.bin")
    with pytest.raises(ModelError, match="reserved"):
        oi.Model({}, {NPZ_INDEX: np.zeros(1)}).save(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


# --- in-memory models ----------------------------------------------------------------------------------


def test_in_memory_model_queries() -> None:
    weights = np.arange(6, dtype=np.float32).reshape(2, 3)
    model = oi.Model({"B": 2}, {"w": weights, "layer.0.b": [1, 2]}, {"mode": "fast", "n": 3})
    assert (model.path, model.version) == (None, None)
    assert model.size_of("B") == 2 and model.tensor_names() == ["w", "layer.0.b"]
    assert model.has_tensor("w") and not model.has_tensor("x")
    assert model.tensor_dtype("layer.0.b") == "i64" and model.tensor_shape("w") == (2, 3)
    assert_same(model.tensor("w"), weights)
    with pytest.raises(ValueError):
        model.tensor("w")[0, 0] = 1.0
    assert weights.flags.writeable  # the caller's array is left alone
    assert model.metadata_string("mode") == "fast"
    assert model.metadata_string("n") is None and model.metadata_string("missing") is None
    with pytest.raises(ModelError) as info:
        model.tensor("nope")
    assert str(info.value) == "error: model variable not found: nope"


def test_dtypes_name_the_dsl_dtype() -> None:
    model = oi.Model({}, {"w": np.array([-8, 7], np.int8), "h": [1.0, 3.0]}, dtypes={"w": "i4", "h": "bf16"})
    assert model.tensor_dtype("w") == "i4" and model.tensor("w").dtype == ml_dtypes.int4
    assert model.tensor("h").dtype == ml_dtypes.bfloat16 and model.tensor("h").tolist() == [1.0, 3.0]


def quantised(shape: tuple[int, ...], quant: QuantParams) -> oi.Model:
    return oi.Model({}, {"w": np.zeros(shape)}, quant={"w": quant})


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: oi.Model({}, {"c": np.array([1 + 2j])}), "numpy dtype complex128, which is not a DSL dtype"),
        (lambda: oi.Model({}, {"o": np.array([None])}), "numpy dtype object"),
        (lambda: oi.Model({}, {"s": np.array(["text"])}), "numpy dtype <U4"),
        (lambda: oi.Model({}, {"w": np.array([8], np.int8)}, dtypes={"w": "i4"}), "i4 cannot hold exactly"),
        (lambda: oi.Model({}, {"w": [0.5]}, dtypes={"w": "i8"}), "i8 cannot hold exactly"),
        (lambda: oi.Model({}, {"w": [1]}, dtypes={"w": "f128"}), "unknown dtype 'f128'"),
        (lambda: oi.Model({}, {}, dtypes={"w": "f32"}), "not given: w"),
        (lambda: oi.Model({"B": -1}), "sizevar 'B' must be an integer"),
        (lambda: oi.Model({"B": True}), "sizevar 'B' must be an integer"),
        (lambda: oi.Model({"B": 2**64}), "sizevar 'B' must be an integer"),
        (lambda: quantised((2, 3), QuantParams("symmetric", (1.0,), axis=1)), "needs 3 scale"),
        (lambda: quantised((2,), QuantParams("symmetric", (1.0,), (0,))), "must not have zero points"),
        (lambda: quantised((2,), QuantParams("asymmetric", (1.0,), axis=3)), "axis 3 is out of range"),
    ],
)
def test_in_memory_errors(build: Any, fragment: str) -> None:
    with pytest.raises(ModelError) as info:
        build()
    assert fragment in str(info.value)


def test_quantisation_in_memory(tmp_path: Path) -> None:
    quant = QuantParams("asymmetric", [0.1, 0.2], [3, -4], axis=0)
    model = oi.Model({}, {"w": np.zeros((2, 5), np.int8)}, quant={"w": quant})
    assert model.tensor_quant("w") == quant and quant.scales == (float(np.float32(0.1)), float(np.float32(0.2)))
    assert oi.Model.open(model.save(tmp_path / "q.oinf")).tensor_quant("w") == quant
    with pytest.raises(ValueError, match="scheme"):
        QuantParams("linear", (1.0,))


# --- malformed files -----------------------------------------------------------------------------------


def oinf_bytes(model: oi.Model) -> bytearray:
    with tempfile.TemporaryDirectory() as folder:
        return bytearray(model.save(Path(folder) / "m.oinf").read_bytes())


def patched(data: bytearray, offset: int, fmt: str, value: Any) -> bytearray:
    copy = bytearray(data)
    struct.pack_into(fmt, copy, offset, value)
    return copy


#: Tensors a, b: i8[3], no sizevars or metadata. Header fields: version@5 flags@9 n_tensors@21
#: offsets@29,37,45,53. The tensor table starts at 72; entry a: name (8) dtype@80 ndim@84
#: flags@88 dims@92 data_nbytes@100 data_offset@108 quant@116,124; entry b's name at 132.
BASE = oinf_bytes(oi.Model({}, {"a": np.array([1, 2, 3], np.int8), "b": np.array([4, 5, 6], np.int8)}))

MALFORMED = {
    "bad magic": (b"NOPE\0" + BASE[5:], "not a model file"),
    "no header": (BASE[:40], "too small for the 69-byte header"),
    "empty file": (b"OINF\0", "too small"),
    "version 3": (patched(BASE, 5, "<I", 3), "unsupported format version 3"),
    "version 0": (patched(BASE, 5, "<I", 0), "unsupported format version 0"),
    "header flags": (patched(BASE, 9, "<I", 1), "must be 0"),
    "truncated": (BASE[:-1], "(truncated?)"),
    "data section past end": (patched(BASE, 53, "<Q", len(BASE) + 8), "not ascending"),
    "sections overlap header": (patched(BASE, 29, "<Q", 8), "not ascending"),
    "misaligned section": (patched(BASE, 53, "<Q", struct.unpack_from("<Q", BASE, 53)[0] + 4), "not 8-byte aligned"),
    "too many tensors": (patched(BASE, 21, "<I", 3), "tensor table runs past its end"),
    "unknown dtype": (patched(BASE, 80, "<I", 99), "type code 99"),
    "bitset tensor": (patched(BASE, 80, "<I", 13), "type code 13"),
    "too many dims": (patched(BASE, 84, "<I", 1000), "1000 dimensions"),
    "unknown flags": (patched(BASE, 88, "<I", 4), "unknown flags 0x4"),
    "no data but offset": (patched(BASE, 88, "<I", 0), "HAS_DATA is 0"),
    "wrong data size": (patched(BASE, 100, "<Q", 4), "has 4 data bytes, expected 3"),
    "misaligned data": (patched(BASE, 108, "<Q", struct.unpack_from("<Q", BASE, 108)[0] + 1), "is not 8-byte aligned"),
    "data out of range": (patched(BASE, 108, "<Q", len(BASE)), "outside the data section"),
    "quant without flag": (patched(BASE, 116, "<Q", 8), "HAS_QUANT is 0"),
    "duplicate names": (patched(BASE, 136, "<B", ord("a")), "duplicate tensor 'a'"),
    "invalid name": (patched(BASE, 136, "<B", ord(" ")), "invalid tensor name"),
    "name past table": (patched(BASE, 132, "<I", 10**6), "runs past its end"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_oinf(tmp_path: Path, case: str) -> None:
    data, fragment = MALFORMED[case]
    path = tmp_path / "bad.oinf"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError) as info:
        touch_everything(path)
    assert str(info.value).startswith(f"{path}: error: ")
    assert fragment in str(info.value)


def metadata_file(value: Any) -> bytearray:
    """One metadata entry `m`: table at 72, type@80 flags@84 nbytes@88 offset@96, payload at 104."""
    return oinf_bytes(oi.Model({}, {}, {"m": value}))


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (patched(metadata_file("fast"), 80, "<I", 99), "unknown value type 99"),
        (patched(metadata_file("fast"), 84, "<I", 1), "value flags 1"),
        (patched(metadata_file("fast"), 88, "<Q", 16), "lies outside the data section"),
        (patched(metadata_file(1.5), 88, "<Q", 4), "payload runs past its end"),
        (patched(metadata_file(Bitset.from_bools([1] * 9)), 108, "<I", 1), "bitset of 9 bits cannot take 1 bytes"),
        (patched(metadata_file(np.zeros(2, np.int8)), 104, "<I", 14), "array element has type code 14"),
        (patched(metadata_file("fast"), 108, "<B", 0xFF), "not valid UTF-8"),
    ],
)
def test_malformed_metadata(tmp_path: Path, data: bytearray, fragment: str) -> None:
    path = tmp_path / "bad.oinf"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=fragment):
        oi.Model.open(path)


def test_unopenable_paths(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read model file"):
        oi.Model.open(tmp_path / "missing.oinf")
    with pytest.raises(ModelError, match="cannot read model file"):
        oi.Model.open(tmp_path)
    (tmp_path / "text.oinf").write_text("hello")
    with pytest.raises(ModelError, match="not a model file"):
        oi.Model.open(tmp_path / "text.oinf")


def test_malformed_npz(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04" + bytes(40))
    with pytest.raises(ModelError, match="unreadable .npz archive"):
        oi.Model.open(tmp_path / "junk.npz")
    with zipfile.ZipFile(tmp_path / "extra.npz", "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(ModelError, match="'readme.txt' is not a .npy array"):
        oi.Model.open(tmp_path / "extra.npz")
    np.savez(tmp_path / "void.npz", w=np.ones(2, ml_dtypes.bfloat16))
    with pytest.raises(ModelError, match="'w' holds \\|V2\\[2\\], expected a DSL dtype"):
        oi.Model.open(tmp_path / "void.npz")
    np.savez(tmp_path / "objects.npz", w=np.array([None, 1]))
    with pytest.raises(ModelError, match="holds Python objects"):
        oi.Model.open(tmp_path / "objects.npz")
    oi.Model({}, {"w": np.ones(2, np.float32)}).save(tmp_path / "good.npz")
    with zipfile.ZipFile(tmp_path / "good.npz") as source, zipfile.ZipFile(tmp_path / "swapped.npz", "w") as target:
        target.writestr(f"{NPZ_INDEX}.npy", source.read(f"{NPZ_INDEX}.npy"))
        with target.open("w.npy", "w") as member:
            np.lib.format.write_array(member, np.ones(2, np.int32))
    with pytest.raises(ModelError, match=r"'w' holds int32\[2\], expected f32\[2\]"):
        oi.Model.open(tmp_path / "swapped.npz")


# --- fuzzing -------------------------------------------------------------------------------------------


def fuzz_model() -> oi.Model:
    tensors = {name: sample(dtype, shape) for name, dtype, shape in
               [("p", "i4", (3, 3)), ("h", "bf16", (2, 2)), ("m", "bool", (5,)), ("s", "f32", ())]}  # fmt: skip
    metadata = {"mode": "fast", "bits": Bitset.from_bools([1, 0, 1]), "arr": np.arange(3, dtype=np.int16), "x": 0.5}
    return oi.Model({"B": 3}, tensors, metadata, quant={"h": QuantParams("asymmetric", (0.5, 2.0), (1, -1), axis=0)})


def only_model_errors(path: Path) -> bool:
    """Open and decode everything; True if it was valid. Any exception but ModelError fails the test."""
    try:
        touch_everything(path)
    except ModelError:
        return False
    return True


def test_fuzz_oinf(tmp_path: Path) -> None:
    hand_built = tmp_path / "v2.oinf"
    hand_built.write_bytes(build_v2())
    for base in (fuzz_model().save(tmp_path / "fuzz.oinf"), hand_built):
        data = base.read_bytes()
        for size in range(len(data)):
            cut = tmp_path / f"cut{size}.oinf"
            cut.write_bytes(data[:size])
            assert not only_model_errors(cut)
        for position in range(len(data)):
            flipped = bytearray(data)
            flipped[position] ^= 0x01 if position % 2 else 0xFF  # small and large changes to every field
            path = tmp_path / f"flip{position}.oinf"
            path.write_bytes(bytes(flipped))
            only_model_errors(path)


def test_fuzz_npz(tmp_path: Path) -> None:
    data = fuzz_model().save(tmp_path / "fuzz.npz").read_bytes()
    for size in range(0, len(data), 11):
        cut = tmp_path / f"cut{size}.npz"
        cut.write_bytes(data[:size])
        assert not only_model_errors(cut)
    for position in range(0, len(data), 3):
        flipped = bytearray(data)
        flipped[position] ^= 0xFF
        path = tmp_path / f"flip{position}.npz"
        path.write_bytes(bytes(flipped))
        only_model_errors(path)
