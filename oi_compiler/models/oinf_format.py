"""Byte-level reader and writer of OINF (`.oinf`) model files, format versions 1 and 2.

Layout (little-endian, every section and payload 8-byte aligned, padding `0x00`):

    header (69 bytes, padded to 72) | sizevars table | metadata table | tensor table | data

Version 1 is what the upstream encoder (`openinfer-oinf` 0.1.1) writes; version 2 adds
`quant_nbytes, quant_offset` to each tensor entry (flag bit 1 = HAS_QUANT) and is what the
upstream runtime reads. The reader validates everything it touches (bounds, alignment, sizes,
names, type codes) and raises `ModelError` naming the file; tensor payloads are only located
here and decoded on demand by `read_tensor`, so a large file is never read eagerly. A buffer is
any bytes-like object, or a source with `read_at(offset, nbytes)` and `len()` that reads a file
on demand (`Model.open` uses one rather than a memory map; see `model._FileBytes`).

Packed types are stored LSB-first. `i4`/`u4` decode to the DSL's `i4`/`u4`; the packed types
the DSL lacks widen to the nearest DSL type: `i2 i1 t2` to `i8` (sign-extended), `t1` to `i8`
(bit 0 = -1, bit 1 = +1), `u2 u1` to `u8`. Saving keeps the original packed type.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import ArrayLike

from oi_compiler.dtypes import INT_RANGES, dtype_of_array, numpy_dtype
from oi_compiler.errors import ModelError

MAGIC = b"OINF\x00"
SUPPORTED_VERSIONS = (1, 2)
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
MAX_NDIM = 32  # numpy 1.x's array-dimension limit; deeper tensors cannot be returned as arrays
_MAX_ELEMENTS = 2**59  # numpy arrays (even broadcast zeros) must have fewer than 2**63 bytes

_HEADER = struct.Struct("<5sIIIIIIQQQQQ")
_HEADER_END = 72  # the 69-byte header, padded to the 8-byte alignment
_QUANT_HEADER = struct.Struct("<IIIIQQQQ")
_HAS_DATA = 1
_HAS_QUANT = 2


class ValueType(IntEnum):
    """The type codes of the format (metadata values, tensor and array elements)."""

    I8 = 1
    I16 = 2
    I32 = 3
    I64 = 4
    U8 = 5
    U16 = 6
    U32 = 7
    U64 = 8
    F16 = 9
    F32 = 10
    F64 = 11
    BOOL = 12
    BITSET = 13
    STRING = 14
    NDARRAY = 15
    BF16 = 16
    F8 = 17
    I4 = 18
    I2 = 19
    I1 = 20
    U4 = 21
    U2 = 22
    U1 = 23
    T2 = 24
    T1 = 25


@dataclass(frozen=True)
class _ElementType:
    """How the elements of one type code are stored and which DSL dtype they decode to."""

    dsl: str
    bits: int  # bits per element in a payload; < 8 means bit-packed
    low: int | None = None  # value range of integer types (inclusive); None for floats and bool
    high: int | None = None


def _whole(dsl: str) -> _ElementType:
    """A type stored as the DSL dtype's own bytes."""
    low, high = INT_RANGES[dsl] if dsl in INT_RANGES and dsl != "bool" else (None, None)
    return _ElementType(dsl, numpy_dtype(dsl).itemsize * 8, low, high)


def _packed(dsl: str, bits: int, signed: bool) -> _ElementType:
    if signed:
        return _ElementType(dsl, bits, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return _ElementType(dsl, bits, 0, (1 << bits) - 1)


#: Element types: allowed for tensors and NDARRAY elements (every code except BITSET, STRING, NDARRAY).
ELEMENT_TYPES: dict[ValueType, _ElementType] = {
    **{
        ValueType[name.upper()]: _whole(name)
        for name in ("i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f16", "f32", "f64", "bf16", "f8", "bool")
    },
    ValueType.I4: _packed("i4", 4, signed=True),
    ValueType.I2: _packed("i8", 2, signed=True),
    ValueType.I1: _packed("i8", 1, signed=True),
    ValueType.U4: _packed("u4", 4, signed=False),
    ValueType.U2: _packed("u8", 2, signed=False),
    ValueType.U1: _packed("u8", 1, signed=False),
    ValueType.T2: _ElementType("i8", 2, -1, 1),
    ValueType.T1: _ElementType("i8", 1, -1, 1),  # -1 or +1 only
}

#: The type code each DSL dtype is written with unless a narrower packed code is kept from a file.
CODE_OF_DTYPE: dict[str, ValueType] = {
    spec.dsl: code for code, spec in ELEMENT_TYPES.items() if code.name.lower() == spec.dsl
}


@dataclass(frozen=True)
class Bitset:
    """A BITSET metadata value: `bit_count` bits packed LSB-first into `packed`."""

    bit_count: int
    packed: bytes

    def __post_init__(self) -> None:
        if self.bit_count < 0 or len(self.packed) != (self.bit_count + 7) // 8:
            raise ValueError(f"a bitset of {self.bit_count} bits needs {(self.bit_count + 7) // 8} bytes")

    @classmethod
    def from_bools(cls, bits: ArrayLike) -> Bitset:
        flags = np.asarray(bits, dtype=np.bool_).reshape(-1)
        return cls(int(flags.size), np.packbits(flags, bitorder="little").tobytes())

    def to_bools(self) -> np.ndarray:
        raw = np.frombuffer(self.packed, dtype=np.uint8)
        return np.unpackbits(raw, count=self.bit_count, bitorder="little").astype(np.bool_)


@dataclass(frozen=True)
class QuantParams:
    """A tensor's quantisation (OINF v2): per-tensor (`axis` None) or per-channel along `axis`.

    Scales are float32 and zero points int32 in the file; the values here are rounded to them.
    """

    scheme: str  # "symmetric" or "asymmetric"
    scales: tuple[float, ...]
    zero_points: tuple[int, ...] | None = None
    axis: int | None = None

    def __post_init__(self) -> None:
        if self.scheme not in _SCHEME_CODES:
            raise ValueError(f"quantisation scheme must be 'symmetric' or 'asymmetric', not {self.scheme!r}")
        object.__setattr__(self, "scales", tuple(float(s) for s in np.asarray(self.scales, np.float32).reshape(-1)))
        if self.zero_points is not None:
            points = np.asarray(self.zero_points).reshape(-1)
            if points.size and (points.min() < -(2**31) or points.max() >= 2**31):
                raise ValueError("quantisation zero points must fit i32")
            object.__setattr__(self, "zero_points", tuple(int(p) for p in points))


_SCHEME_CODES = {"symmetric": 1, "asymmetric": 2}


def quant_problem(quant: QuantParams, shape: tuple[int, ...]) -> str | None:
    """Why `quant` cannot describe a tensor of `shape` (the spec's validation rules), or None."""
    if quant.scheme == "symmetric" and quant.zero_points is not None:
        return "symmetric quantisation must not have zero points"
    if quant.axis is None:
        count = 1
    elif 0 <= quant.axis < len(shape):
        count = shape[quant.axis]
    else:
        return f"quantisation axis {quant.axis} is out of range for a tensor of rank {len(shape)}"
    if len(quant.scales) != count:
        return f"quantisation needs {count} scale(s), got {len(quant.scales)}"
    if quant.zero_points is not None and len(quant.zero_points) != count:
        return f"quantisation needs {count} zero point(s), got {len(quant.zero_points)}"
    return None


def is_valid_name(name: str) -> bool:
    """Whether `name` may name a sizevar, metadata entry or tensor in an OINF file."""
    return NAME_PATTERN.fullmatch(name) is not None


def align_up(value: int) -> int:
    return (value + 7) // 8 * 8


def payload_nbytes(code: ValueType, count: int) -> int:
    """Bytes taken by `count` elements of an element type (packed types rounded up to a byte)."""
    return (count * ELEMENT_TYPES[code].bits + 7) // 8


# --- element encoding -------------------------------------------------------------------------------


def decode_elements(buf: Any, offset: int, code: ValueType, count: int) -> np.ndarray:
    """`count` elements of type `code` at `offset` of `buf`, as a flat array of the DSL dtype.

    Plain types are zero-copy (read-only) views of `buf`; bool and packed types are new arrays.
    """
    spec = ELEMENT_TYPES[code]
    target = numpy_dtype(spec.dsl)
    if count == 0:
        return np.empty(0, dtype=target)
    if spec.bits < 8:
        raw = np.frombuffer(buf, dtype=np.uint8, count=payload_nbytes(code, count), offset=offset)
        return _unpack(raw, code, count).astype(target)
    if code is ValueType.BOOL:
        return np.frombuffer(buf, dtype=np.uint8, count=count, offset=offset) != 0
    bits = np.frombuffer(buf, dtype=f"<u{target.itemsize}", count=count, offset=offset)
    return bits.astype(f"=u{target.itemsize}", copy=False).view(target)


def encode_elements(values: np.ndarray, code: ValueType) -> bytes:
    """The payload bytes of `values` (of the DSL dtype of `code`) stored as type `code`."""
    flat = np.ascontiguousarray(values).reshape(-1)
    spec = ELEMENT_TYPES[code]
    if spec.bits < 8:
        return _pack(flat, code)
    if code is ValueType.BOOL:
        return flat.astype(np.uint8).tobytes()
    return flat.view(f"=u{flat.dtype.itemsize}").astype(f"<u{flat.dtype.itemsize}").tobytes()


def elements_fit(values: np.ndarray, code: ValueType) -> bool:
    """Whether every value survives being stored as type `code` unchanged."""
    spec = ELEMENT_TYPES[code]
    if values.size == 0:
        return True
    if spec.low is not None:
        if code is ValueType.T1 and np.any(values == 0):
            return False
        return bool(np.all((values >= spec.low) & (values <= spec.high)))
    if spec.dsl == "bool":
        return bool(np.all((values == 0) | (values == 1)))
    with np.errstate(invalid="ignore", over="ignore"):
        stored = values.astype(numpy_dtype(spec.dsl)).astype(np.float64)
        original = values.astype(np.float64)
    return bool(np.all((stored == original) | (np.isnan(stored) & np.isnan(original))))


def _unpack(raw: np.ndarray, code: ValueType, count: int) -> np.ndarray:
    bits = ELEMENT_TYPES[code].bits
    spread = np.unpackbits(raw, count=count * bits, bitorder="little").reshape(count, bits)
    values = (spread << np.arange(bits, dtype=np.uint8)).sum(axis=1, dtype=np.uint8)
    if code is ValueType.T1:
        return np.where(values == 1, 1, -1).astype(np.int8)
    if ELEMENT_TYPES[code].low == 0:
        return values  # unsigned
    sign = np.int16(1 << (bits - 1))
    return ((values.astype(np.int16) ^ sign) - sign).astype(np.int8)


def _pack(values: np.ndarray, code: ValueType) -> bytes:
    bits = ELEMENT_TYPES[code].bits
    ints = values.astype(np.int8) > 0 if code is ValueType.T1 else values.astype(np.int16)
    fields = ints.astype(np.uint8) & np.uint8((1 << bits) - 1)
    spread = (fields[:, None] >> np.arange(bits, dtype=np.uint8)) & np.uint8(1)
    return np.packbits(spread.reshape(-1), bitorder="little").tobytes()


# --- reading ----------------------------------------------------------------------------------------


class _Malformed(Exception):
    """A structural problem in the bytes; `read_oinf` turns it into a ModelError naming the file."""


@dataclass(frozen=True)
class TensorRecord:
    """One tensor table entry: where its payload is (None when HAS_DATA is 0)."""

    name: str
    code: ValueType
    shape: tuple[int, ...]
    data_offset: int | None
    quant: QuantParams | None

    @property
    def dtype(self) -> str:
        return ELEMENT_TYPES[self.code].dsl


@dataclass
class OinfContents:
    """Everything in an OINF file except the tensor payloads."""

    version: int
    sizevars: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    metadata_codes: dict[str, ValueType] = field(default_factory=dict)
    tensors: dict[str, TensorRecord] = field(default_factory=dict)


@dataclass(frozen=True)
class _Sections:
    version: int
    counts: tuple[int, int, int]
    offsets: tuple[int, int, int, int]  # sizevars, metadata, tensors, data
    file_size: int


def read_span(buf: Any, offset: int, nbytes: int) -> Any:
    """`nbytes` bytes of `buf` at `offset` (bounds already checked): a view of an in-memory
    buffer, or what a file source's `read_at` reads (so no byte is touched through a mapping)."""
    read_at = getattr(buf, "read_at", None)
    return read_at(offset, nbytes) if read_at else memoryview(buf)[offset : offset + nbytes]


class _Cursor:
    """Reads little-endian fields from `buf[pos:end]`, never past `end`."""

    def __init__(self, buf: Any, pos: int, end: int, section: str) -> None:
        self.buf, self.pos, self.end, self.section = buf, pos, end, section

    def span(self, nbytes: int) -> Any:
        return read_span(self.buf, self.take(nbytes), nbytes)

    def take(self, nbytes: int) -> int:
        start = self.pos
        if nbytes > self.end - start:
            raise _Malformed(f"{self.section} runs past its end (offset {start}, {nbytes} more bytes needed)")
        self.pos += nbytes
        return start

    def u32(self) -> int:
        return struct.unpack("<I", self.span(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.span(8))[0]

    def u64s(self, count: int) -> tuple[int, ...]:
        return struct.unpack(f"<{count}Q", self.span(8 * count))

    def name(self, what: str) -> str:
        length = self.u32()
        raw = bytes(self.span(length))
        self.take(align_up(4 + length) - 4 - length)
        text = raw.decode("ascii", errors="replace")
        if not is_valid_name(text):
            raise _Malformed(f"invalid {what} name {text!r} (names must match [A-Za-z0-9._-]+)")
        return text


def read_oinf(buf: Any, source: str) -> OinfContents:
    """Parse and validate the header, tables and metadata of an OINF file held in `buf`."""
    try:
        return _read_contents(buf)
    except _Malformed as problem:
        raise ModelError(f"malformed OINF file: {problem}", subject=source) from None


def read_tensor(buf: Any, record: TensorRecord) -> np.ndarray:
    """The (read-only) array of a tensor that has data, decoded from its validated payload."""
    count = math.prod(record.shape)
    values = decode_elements(read_span(buf, record.data_offset, payload_nbytes(record.code, count)), 0, record.code, count)
    array = values.reshape(record.shape)
    array.flags.writeable = False
    return array


def _read_contents(buf: Any) -> OinfContents:
    sections = _read_header(buf)
    contents = OinfContents(sections.version)
    n_sizevars, n_metadata, n_tensors = sections.counts
    at_sizevars, at_metadata, at_tensors, at_data = sections.offsets
    cursor = _Cursor(buf, at_sizevars, at_metadata, "sizevars table")
    for _ in range(n_sizevars):
        name = _unique(cursor.name("sizevar"), contents.sizevars, "sizevar")
        contents.sizevars[name] = cursor.u64()
    cursor = _Cursor(buf, at_metadata, at_tensors, "metadata table")
    for _ in range(n_metadata):
        key = _unique(cursor.name("metadata"), contents.metadata, "metadata key")
        code, value = _read_metadata_entry(cursor, sections, key)
        contents.metadata[key], contents.metadata_codes[key] = value, code
    cursor = _Cursor(buf, at_tensors, at_data, "tensor table")
    for _ in range(n_tensors):
        name = _unique(cursor.name("tensor"), contents.tensors, "tensor")
        contents.tensors[name] = _read_tensor_entry(cursor, sections, name)
    return contents


def _read_header(buf: Any) -> _Sections:
    if len(buf) < _HEADER.size:
        raise _Malformed(f"file is {len(buf)} bytes, too small for the {_HEADER.size}-byte header")
    magic, version, flags, n_sv, n_md, n_t, reserved, *offsets, file_size = _HEADER.unpack(read_span(buf, 0, _HEADER.size))
    if magic != MAGIC:
        raise _Malformed(f"bad magic {magic!r} (expected {MAGIC!r})")
    if version not in SUPPORTED_VERSIONS:
        raise _Malformed(f"unsupported format version {version} (supported: 1, 2)")
    if flags != 0 or reserved != 0:
        raise _Malformed(f"header flags and reserved fields must be 0, got {flags} and {reserved}")
    if file_size != len(buf):
        raise _Malformed(f"header says the file is {file_size} bytes but it is {len(buf)} (truncated?)")
    bounds = [_HEADER_END, *offsets, file_size]
    if bounds != sorted(bounds):
        raise _Malformed(f"section offsets {offsets} are not ascending within [{_HEADER_END}, {file_size}]")
    if any(offset % 8 for offset in offsets):
        raise _Malformed(f"section offsets {offsets} are not 8-byte aligned")
    return _Sections(version, (n_sv, n_md, n_t), tuple(offsets), file_size)


def _unique(name: str, seen: Mapping[str, Any], what: str) -> str:
    if name in seen:
        raise _Malformed(f"duplicate {what} {name!r}")
    return name


def _payload_span(sections: _Sections, offset: int, nbytes: int, what: str) -> None:
    if offset % 8:
        raise _Malformed(f"{what} offset {offset} is not 8-byte aligned")
    if offset < sections.offsets[3] or nbytes > sections.file_size - offset:
        raise _Malformed(f"{what} ({nbytes} bytes at offset {offset}) lies outside the data section")


def _read_metadata_entry(cursor: _Cursor, sections: _Sections, key: str) -> tuple[ValueType, Any]:
    raw_code, flags, nbytes, offset = cursor.u32(), cursor.u32(), cursor.u64(), cursor.u64()
    what = f"metadata {key!r}"
    if raw_code not in ValueType._value2member_map_:
        raise _Malformed(f"{what} has unknown value type {raw_code}")
    if flags != 0:
        raise _Malformed(f"{what} has value flags {flags} (must be 0)")
    _payload_span(sections, offset, nbytes, what)
    code = ValueType(raw_code)
    payload = _Cursor(cursor.buf, offset, offset + nbytes, f"{what} payload")
    value = _read_metadata_value(payload, code, what)
    if payload.pos != payload.end:
        raise _Malformed(f"{what} payload is {nbytes} bytes, expected {payload.pos - offset}")
    return code, value


def _read_metadata_value(payload: _Cursor, code: ValueType, what: str) -> Any:
    if code is ValueType.STRING:
        length = payload.u32()
        text = bytes(payload.span(length))
        payload.take(align_up(4 + length) - 4 - length)
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError:
            raise _Malformed(f"{what} is not valid UTF-8 text") from None
    if code is ValueType.BITSET:
        bit_count, byte_count = payload.u32(), payload.u32()
        if byte_count != (bit_count + 7) // 8:
            raise _Malformed(f"{what}: bitset of {bit_count} bits cannot take {byte_count} bytes")
        packed = bytes(payload.span(byte_count))
        payload.take(align_up(8 + byte_count) - 8 - byte_count)
        return Bitset(bit_count, packed)
    if code is ValueType.NDARRAY:
        return _read_ndarray(payload, what)
    values = decode_elements(payload.span(payload_nbytes(code, 1)), 0, code, 1)
    return _python_scalar(values[0], ELEMENT_TYPES[code].dsl)


def _python_scalar(value: Any, dtype: str) -> bool | int | float:
    if dtype == "bool":
        return bool(value)
    if dtype in INT_RANGES:
        return int(value)
    return float(value)


def _read_ndarray(payload: _Cursor, what: str) -> np.ndarray:
    raw_code, ndim = payload.u32(), payload.u32()
    code = _element_code(raw_code, f"{what} array element")
    shape = _read_shape(payload, ndim, what)
    count = math.prod(shape)
    nbytes = payload_nbytes(code, count)
    data = payload.span(nbytes)
    payload.take(-nbytes % 8)
    return decode_elements(data, 0, code, count).reshape(shape).copy()


def _element_code(raw_code: int, what: str) -> ValueType:
    if raw_code not in ValueType._value2member_map_ or ValueType(raw_code) not in ELEMENT_TYPES:
        raise _Malformed(f"{what} has type code {raw_code}, which is not a numeric/bool type (1-12, 16-25)")
    return ValueType(raw_code)


def _read_shape(cursor: _Cursor, ndim: int, what: str) -> tuple[int, ...]:
    if ndim > MAX_NDIM:
        raise _Malformed(f"{what} has {ndim} dimensions (at most {MAX_NDIM} supported)")
    shape = cursor.u64s(ndim)
    if any(dim > _MAX_ELEMENTS for dim in shape) or math.prod(shape) > _MAX_ELEMENTS:
        raise _Malformed(f"{what} has impossible dimensions {list(shape)}")
    return shape


def _read_tensor_entry(cursor: _Cursor, sections: _Sections, name: str) -> TensorRecord:
    what = f"tensor {name!r}"
    raw_code, ndim, flags = cursor.u32(), cursor.u32(), cursor.u32()
    code = _element_code(raw_code, what)
    shape = _read_shape(cursor, ndim, what)
    data_nbytes, data_offset = cursor.u64(), cursor.u64()
    quant_nbytes, quant_offset = (cursor.u64(), cursor.u64()) if sections.version >= 2 else (0, 0)
    known_flags = _HAS_DATA | (_HAS_QUANT if sections.version >= 2 else 0)
    if flags & ~known_flags:
        raise _Malformed(f"{what} has unknown flags {flags:#x} for format version {sections.version}")
    if flags & _HAS_DATA:
        expected = payload_nbytes(code, math.prod(shape))
        if data_nbytes != expected:
            raise _Malformed(f"{what} has {data_nbytes} data bytes, expected {expected} for {code.name}{list(shape)}")
        _payload_span(sections, data_offset, data_nbytes, f"{what} data")
    elif data_nbytes or data_offset:
        raise _Malformed(f"{what} has no data (HAS_DATA is 0) but a data offset/size")
    quant = None
    if flags & _HAS_QUANT:
        _payload_span(sections, quant_offset, quant_nbytes, f"{what} quantisation")
        payload = _Cursor(cursor.buf, quant_offset, quant_offset + quant_nbytes, f"{what} quantisation")
        quant = _read_quant(payload, shape, what)
    elif quant_nbytes or quant_offset:
        raise _Malformed(f"{what} has no quantisation (HAS_QUANT is 0) but a quantisation offset/size")
    return TensorRecord(name, code, shape, data_offset if flags & _HAS_DATA else None, quant)


def _read_quant(payload: _Cursor, shape: tuple[int, ...], what: str) -> QuantParams:
    start = payload.pos
    scheme, scale_mode, zp_mode, reserved, scale_axis, scale_count, zp_axis, zp_count = _QUANT_HEADER.unpack(
        payload.span(_QUANT_HEADER.size)
    )
    if reserved != 0 or scheme not in (1, 2) or scale_mode not in (1, 2) or zp_mode not in (0, 1, 2):
        codes = f"scheme {scheme}, scale_mode {scale_mode}, zp_mode {zp_mode}, reserved {reserved}"
        raise _Malformed(f"{what} quantisation has invalid codes ({codes})")
    if scale_mode == 1 and scale_axis != 0:
        raise _Malformed(f"{what} per-tensor quantisation needs scale_axis 0, got {scale_axis}")
    if zp_mode == 0 and (zp_axis or zp_count):
        raise _Malformed(f"{what} quantisation without zero points has zp_axis/zp_count set")
    if zp_mode and (zp_mode != scale_mode or zp_axis != scale_axis):
        raise _Malformed(f"{what} quantisation zero points do not follow the scales' mode and axis")
    scales = np.frombuffer(payload.span(4 * scale_count), "<f4", scale_count)
    points = np.frombuffer(payload.span(4 * zp_count), "<i4", zp_count)
    used, nbytes = payload.pos - start, payload.end - start
    if nbytes not in (used, align_up(used)):  # the spec pads the payload; accept it unpadded too
        raise _Malformed(f"{what} quantisation payload is {nbytes} bytes, expected {align_up(used)}")
    quant = QuantParams(
        "symmetric" if scheme == 1 else "asymmetric",
        tuple(scales.tolist()),
        tuple(points.tolist()) if zp_mode else None,
        scale_axis if scale_mode == 2 else None,
    )
    problem = quant_problem(quant, shape)
    if problem:
        raise _Malformed(f"{what}: {problem}")
    return quant


# --- writing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorToWrite:
    """A tensor table entry to write; `values` (None: no data) is called once, when its payload is written."""

    name: str
    code: ValueType
    shape: tuple[int, ...]
    values: Callable[[], np.ndarray] | None
    quant: QuantParams | None


def encode_metadata(key: str, value: Any, preferred: ValueType | None = None) -> tuple[ValueType, bytes]:
    """The type code and payload of a metadata value.

    Python ints and floats are written as `preferred` (the type the file they came from had) when
    it holds them exactly; otherwise ints take the smallest fitting type, unsigned first (the
    upstream encoder's rule), and floats f64. numpy scalars and arrays keep their dtype.
    """
    if isinstance(value, (bool, np.bool_)):
        return ValueType.BOOL, b"\x01" if value else b"\x00"
    if isinstance(value, str):
        return ValueType.STRING, _encode_string(key, value)
    if isinstance(value, Bitset):
        return ValueType.BITSET, _padded(struct.pack("<II", value.bit_count, len(value.packed)) + value.packed)
    if isinstance(value, (np.ndarray, list, tuple)):
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as problem:
            raise ModelError(f"metadata {key!r} is not a regular array: {problem}") from None
        return ValueType.NDARRAY, _encode_ndarray(key, array)
    code = _scalar_code(key, value, preferred)
    return code, encode_elements(np.asarray(value, dtype=numpy_dtype(ELEMENT_TYPES[code].dsl)), code)


def _scalar_code(key: str, value: Any, preferred: ValueType | None) -> ValueType:
    if isinstance(value, np.generic):
        return _code_of_array(key, np.asarray(value))
    kind = "int" if isinstance(value, int) else "float" if isinstance(value, float) else None
    if kind is None:
        raise ModelError(f"metadata {key!r} has unsupported type {type(value).__name__}")
    if preferred in ELEMENT_TYPES and _kind(preferred) == kind and elements_fit(np.asarray(value), preferred):
        return preferred
    if kind == "float":
        return ValueType.F64
    for name in ("u8", "u16", "u32", "u64") if value >= 0 else ("i8", "i16", "i32", "i64"):
        low, high = INT_RANGES[name]
        if low <= value <= high:
            return CODE_OF_DTYPE[name]
    raise ModelError(f"metadata {key!r} = {value} does not fit a 64-bit integer")


def _kind(code: ValueType) -> str:
    spec = ELEMENT_TYPES[code]
    return "bool" if spec.dsl == "bool" else "int" if spec.low is not None else "float"


def _code_of_array(key: str, array: np.ndarray) -> ValueType:
    name = dtype_of_array(array.dtype)
    if name is None:
        raise ModelError(f"metadata {key!r} has numpy dtype {array.dtype}, which has no OINF type")
    return CODE_OF_DTYPE[name]


def _encode_ndarray(key: str, array: np.ndarray) -> bytes:
    code = _code_of_array(key, array)
    header = struct.pack(f"<II{array.ndim}Q", code, array.ndim, *array.shape)
    return _padded(header + encode_elements(array, code))


def _encode_string(key: str, text: str) -> bytes:
    if not is_valid_name(text):
        raise ModelError(f"metadata {key!r}: OINF strings must match [A-Za-z0-9._-]+, got {text!r}")
    raw = text.encode("ascii")
    return _padded(struct.pack("<I", len(raw)) + raw)


def _encode_name(kind: str, name: str) -> bytes:
    if not isinstance(name, str) or not is_valid_name(name):
        raise ModelError(f"invalid {kind} name {name!r}: OINF names must match [A-Za-z0-9._-]+")
    return _padded(struct.pack("<I", len(name)) + name.encode("ascii"))


def _padded(payload: bytes) -> bytes:
    return payload + b"\x00" * (align_up(len(payload)) - len(payload))


def _encode_quant(quant: QuantParams) -> bytes:
    per_channel = quant.axis is not None
    axis = quant.axis or 0
    points = quant.zero_points or ()
    zp_mode = 0 if quant.zero_points is None else 2 if per_channel else 1
    header = _QUANT_HEADER.pack(
        _SCHEME_CODES[quant.scheme], 2 if per_channel else 1, zp_mode, 0,
        axis, len(quant.scales), axis if zp_mode else 0, len(points),
    )  # fmt: skip
    return _padded(header + np.asarray(quant.scales, "<f4").tobytes() + np.asarray(points, "<i4").tobytes())


def write_oinf(
    out: BinaryIO,
    version: int,
    sizevars: Mapping[str, int],
    metadata: Mapping[str, Any],
    metadata_codes: Mapping[str, ValueType],
    tensors: Iterable[TensorToWrite],
) -> None:
    """Write a complete OINF file to `out`, entries sorted by name (deterministic, as upstream).

    Only one tensor's values are in memory at a time. Raises ModelError for invalid names,
    values, or quantisation in a version-1 file.
    """
    if version not in SUPPORTED_VERSIONS:
        raise ModelError(f"cannot write OINF format version {version} (supported: 1, 2)")
    sizevar_table = b"".join(
        _encode_name("sizevar", name) + struct.pack("<Q", _u64(name, value)) for name, value in sorted(sizevars.items())
    )
    entries = [(key, *encode_metadata(key, metadata[key], metadata_codes.get(key))) for key in sorted(metadata)]
    ordered = sorted(tensors, key=lambda tensor: tensor.name)
    if version == 1 and any(tensor.quant for tensor in ordered):
        raise ModelError("format version 1 cannot store quantisation; save with version=2")
    metadata_size = sum(len(_encode_name("metadata", key)) + 24 for key, _, _ in entries)
    tensor_size = sum(_tensor_entry_size(tensor, version) for tensor in ordered)
    at_metadata = _HEADER_END + len(sizevar_table)
    at_tensors = at_metadata + metadata_size
    at_data = align_up(at_tensors + tensor_size)  # entries are 12 + 8k bytes: only the table is padded
    cursor = at_data
    metadata_table = bytearray()
    for key, code, payload in entries:
        metadata_table += _encode_name("metadata", key) + struct.pack("<IIQQ", code, 0, len(payload), cursor)
        cursor += align_up(len(payload))
    tensor_table, cursor = _tensor_table(ordered, version, cursor)
    header = _HEADER.pack(MAGIC, version, 0, len(sizevars), len(entries), len(ordered), 0,
                          _HEADER_END, at_metadata, at_tensors, at_data, cursor)  # fmt: skip
    out.write(_padded(header) + sizevar_table + bytes(metadata_table) + _padded(tensor_table))
    for _, _, payload in entries:
        out.write(_padded(payload))
    for tensor in ordered:
        _write_tensor_payloads(out, tensor)


def _u64(name: str, value: int) -> int:
    if not 0 <= value < 2**64:
        raise ModelError(f"sizevar {name!r} = {value} is not a u64")
    return value


def _tensor_entry_size(tensor: TensorToWrite, version: int) -> int:
    return len(_encode_name("tensor", tensor.name)) + 12 + 8 * len(tensor.shape) + (32 if version >= 2 else 16)


def _tensor_table(tensors: Sequence[TensorToWrite], version: int, cursor: int) -> tuple[bytes, int]:
    table = bytearray()
    for tensor in tensors:
        data_nbytes = payload_nbytes(tensor.code, math.prod(tensor.shape)) if tensor.values else 0
        data_offset = cursor if tensor.values else 0
        cursor += align_up(data_nbytes)
        quant_nbytes = len(_encode_quant(tensor.quant)) if tensor.quant else 0
        quant_offset = cursor if tensor.quant else 0
        cursor += quant_nbytes
        flags = (_HAS_DATA if tensor.values else 0) | (_HAS_QUANT if tensor.quant else 0)
        table += _encode_name("tensor", tensor.name)
        ndim = len(tensor.shape)
        table += struct.pack(f"<III{ndim}QQQ", tensor.code, ndim, flags, *tensor.shape, data_nbytes, data_offset)
        if version >= 2:
            table += struct.pack("<QQ", quant_nbytes, quant_offset)
    return bytes(table), cursor


def _write_tensor_payloads(out: BinaryIO, tensor: TensorToWrite) -> None:
    if tensor.values:
        values = tensor.values()
        packed = ELEMENT_TYPES[tensor.code].bits < 8  # other codes hold every value of their dtype
        if values.shape != tensor.shape or (packed and not elements_fit(values, tensor.code)):
            raise ModelError(f"tensor {tensor.name!r}: values do not fit {tensor.code.name}{list(tensor.shape)}")
        out.write(_padded(encode_elements(values, tensor.code)))
    if tensor.quant:
        out.write(_encode_quant(tensor.quant))
