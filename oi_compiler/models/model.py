"""`oi.Model`: the sizevars, metadata and tensors a graph runs against.

A model comes from an `.oinf` file (format versions 1 and 2; each tensor is read and decoded on
its first `tensor()` call and cached), an `.npz` archive (each member read on first use), or
memory (`Model(sizevars, tensors, metadata)`). `save` writes either format atomically.

An opened `.oinf` file is read with positioned reads, not memory-mapped: a mapped file that is
rewritten or truncated in place (`cp new.oinf model.oinf`) kills the process with SIGBUS on the
next page touched, where a read returns short and becomes a `ModelError`. An `.npz` archive's
sizes (zip directory, `.npy` header) are claims, checked against the archive and a limit
(`max_tensor_bytes`) before anything is allocated.

The byte layout of `.oinf` lives in `oinf_format`; this file holds the class and the `.npz` side.

`.npz` archives hold one `.npy` member per tensor, named after it. The reserved member
`__oinf__` (a uint8 array) is a data-less OINF v2 file with the sizevars, the metadata, and
every tensor's type, shape and quantisation; without it (an archive from `np.savez`) tensors
take the DSL dtype of their numpy dtype. Members store `bf16`/`f8` as their raw bits
(uint16/uint8) and `i4`/`u4` widened to int8/uint8, since numpy cannot save ml_dtypes types.
"""

from __future__ import annotations

import io
import math
import operator
import os
import re
import secrets
import stat
import threading
import time
import weakref
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import ArrayLike

from oi_compiler.dtypes import DTYPE_NAMES, INT_RANGES, dtype_of_array, numpy_dtype
from oi_compiler.errors import ModelError
from oi_compiler.models.oinf_format import (
    CODE_OF_DTYPE,
    MAGIC,
    Bitset,
    OinfContents,
    QuantParams,
    TensorToWrite,
    ValueType,
    quant_problem,
    read_oinf,
    read_tensor,
    write_oinf,
)

__all__ = ["MAX_TENSOR_BYTES", "NPZ_INDEX", "Bitset", "Model", "QuantParams"]

#: The reserved `.npz` member (without `.npy`) holding sizevars, metadata and tensor types.
NPZ_INDEX = "__oinf__"
#: How `.npz` members store the DSL dtypes numpy cannot save (others are stored as they are).
_NPZ_STORAGE = {
    "bf16": np.dtype(np.uint16), "f8": np.dtype(np.uint8), "i4": np.dtype(np.int8), "u4": np.dtype(np.uint8),
}  # fmt: skip
_NPZ_BIT_VIEWS = frozenset({"bf16", "f8"})  # stored as the same bits; i4/u4 are converted by value
#: The default largest `.npz` member (`Model.open(..., max_tensor_bytes=)`): members are decoded
#: into memory, so a zip directory claiming 1 TiB must be refused, not allocated.
MAX_TENSOR_BYTES = 2**34
_DEFLATE_MAX_RATIO = 1032  # deflate cannot expand one compressed byte into more than ~1032
_STALE_TEMP_SECONDS = 3600  # a save's temporary untouched this long is left over, whatever its pid
_NPZ_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError,
    RuntimeError,  # zipfile: encrypted member
)  # fmt: skip


@dataclass(frozen=True)
class _Tensor:
    """What the model knows about a tensor before decoding it; `load` is None when it has no data."""

    dtype: str
    shape: tuple[int, ...]
    load: Callable[[], np.ndarray] | None
    code: ValueType  # the OINF type it is saved as (a packed type read from a file is kept)
    quant: QuantParams | None


class Model:
    """Sizevars, metadata and tensors, read lazily from a file or given in memory.

        model = oi.Model.open("m.oinf")        # .oinf (v1, v2) or .npz, told by the first bytes
        model = oi.Model(sizevars={"D": 4}, tensors={"W": w}, metadata={"name": "tiny"},
                         dtypes={"q": "i4"}, quant={"q": QuantParams(...)})  # (oi_compiler.models.model)
        model.save("m.oinf")                   # or "m.npz"; atomic

    Options: `Model(sizevars=, tensors=, metadata=, *, dtypes=, quant=)` builds one in memory
    (arrays are not copied; `dtypes` gives a tensor's DSL dtype where numpy's does not say it,
    `quant` its quantisation parameters); `Model.open(path, *, max_tensor_bytes=2**34)` reads a
    file, refusing `.npz` members larger than `max_tensor_bytes`; `save(path, *, version=2)`
    writes `.oinf` (version 2, or 1 without quantisation) or `.npz` by the suffix.

    Queries: `sizevars`, `metadata`, `path`, `version`; `size_of(name)`, `has_tensor(name)`,
    `tensor_names()`, `tensor(name)` (read-only, decoded once), `tensor_dtype`, `tensor_shape`,
    `tensor_has_data`, `tensor_quant`, `metadata_string`. Errors are `ModelError`s naming the file.
    A Simulator binds a graph to a model (`oi.Simulator(model, graph, device=...)`), taking the
    model's sizevars (overridable with `sizevars=`) and its tensors for `constant` variables.
    `docs/models.md` describes the formats.
    """

    path: Path | None
    version: int | None
    sizevars: dict[str, int]
    metadata: dict[str, Any]

    def __init__(
        self,
        sizevars: Mapping[str, int] | None = None,
        tensors: Mapping[str, ArrayLike] | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        dtypes: Mapping[str, str] | None = None,
        quant: Mapping[str, QuantParams] | None = None,
    ) -> None:
        """An in-memory model. Arrays are not copied (views are returned read-only).

        `dtypes` names a tensor's DSL dtype where its numpy dtype does not (e.g. `{"w": "i4"}`
        for an int8 array); integer targets must hold the values exactly. `quant` attaches
        quantisation parameters (saved in `.oinf` v2 and `.npz`).
        """
        tensors, dtypes, quant = dict(tensors or {}), dict(dtypes or {}), dict(quant or {})
        for name in [*dtypes, *quant]:
            if name not in tensors:
                raise ModelError(f"dtypes/quant name a tensor that is not given: {name}")
        entries = {}
        for name, value in tensors.items():
            array = _as_dsl_array(_check_key("tensor", name), value, dtypes.get(name))
            dtype = dtype_of_array(array.dtype)
            problem = quant_problem(quant[name], array.shape) if name in quant else None
            if problem:
                raise ModelError(f"tensor {name!r}: {problem}")
            load = partial(_identity, array)
            entries[name] = _Tensor(dtype, array.shape, load, CODE_OF_DTYPE[dtype], quant.get(name))
        checked = {_check_key("sizevar", name): _sizevar_value(name, value) for name, value in (sizevars or {}).items()}
        self._setup(None, None, checked, dict(metadata or {}), {}, entries)

    def _setup(
        self,
        path: Path | None,
        version: int | None,
        sizevars: dict[str, int],
        metadata: dict[str, Any],
        metadata_codes: dict[str, ValueType],
        tensors: dict[str, _Tensor],
    ) -> None:
        self.path, self.version, self.sizevars, self.metadata = path, version, sizevars, metadata
        self._metadata_codes = metadata_codes
        self._tensors = tensors
        self._cache: dict[str, np.ndarray] = {}

    @classmethod
    def _from_file(
        cls, path: Path, version: int | None, contents: OinfContents, tensors: dict[str, _Tensor]
    ) -> Model:
        model = cls.__new__(cls)
        model._setup(path, version, contents.sizevars, contents.metadata, contents.metadata_codes, tensors)
        return model

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, max_tensor_bytes: int = MAX_TENSOR_BYTES) -> Model:
        """Open an `.oinf` or `.npz` model; the format is told by the file's first bytes.

        `.npz` members larger than `max_tensor_bytes` (uncompressed) are refused: they are read
        into memory, and their sizes are only what the archive claims. (An `.oinf` tensor's
        size is bounded by the file itself.)
        """
        path = Path(path)
        try:
            with path.open("rb") as handle:
                start = handle.read(len(MAGIC))
        except OSError as problem:
            raise ModelError(f"cannot read model file: {problem.strerror or problem}", subject=str(path)) from None
        if start == MAGIC:
            return _open_oinf(path)
        if start.startswith(b"PK"):
            return _open_npz(path, max_tensor_bytes)
        raise ModelError(
            "not a model file: expected an .oinf file (magic 'OINF\\0') or an .npz archive", subject=str(path)
        )

    def __repr__(self) -> str:
        where = str(self.path) if self.path else "in-memory"
        counts = f"{len(self._tensors)} tensors, {len(self.sizevars)} sizevars, {len(self.metadata)} metadata"
        return f"<Model {where}: {counts}>"

    # --- queries ------------------------------------------------------------------------------------

    def size_of(self, name: str) -> int | None:
        """The value of sizevar `name`, or None if the model has no such sizevar."""
        return self.sizevars.get(name)

    def has_tensor(self, name: str) -> bool:
        return name in self._tensors

    def tensor_names(self) -> list[str]:
        return list(self._tensors)

    def tensor(self, name: str) -> np.ndarray:
        """The tensor's values (read-only, dtype `numpy_dtype(tensor_dtype(name))`), decoded once.

        A tensor declared without data (OINF `HAS_DATA` = 0) reads as zeros; see `tensor_has_data`.
        """
        if name not in self._cache:
            self._cache[name] = self._values(name)
        return self._cache[name]

    def tensor_dtype(self, name: str) -> str:
        """The tensor's DSL dtype name."""
        return self._entry(name).dtype

    def tensor_shape(self, name: str) -> tuple[int, ...]:
        return self._entry(name).shape

    def tensor_has_data(self, name: str) -> bool:
        """False for tensors the file declares without data (the runtime then uses `@init` or zeros)."""
        return self._entry(name).load is not None

    def tensor_quant(self, name: str) -> QuantParams | None:
        """The tensor's quantisation parameters (OINF v2), if any."""
        return self._entry(name).quant

    def metadata_string(self, name: str) -> str | None:
        """Metadata `name` if it is a string, else None."""
        value = self.metadata.get(name)
        return value if isinstance(value, str) else None

    def _entry(self, name: str) -> _Tensor:
        if name not in self._tensors:
            raise ModelError(f"model variable not found: {name}", subject=self._subject())
        return self._tensors[name]

    def _values(self, name: str) -> np.ndarray:
        """The tensor's values, from the cache or decoded now without caching (so saving streams)."""
        if name in self._cache:
            return self._cache[name]
        entry = self._entry(name)
        if entry.load is None:
            return np.broadcast_to(np.zeros((), numpy_dtype(entry.dtype)), entry.shape)
        return entry.load()

    def _payload(self, name: str) -> Callable[[], np.ndarray] | None:
        """What writes the tensor's data when saving (None: it has none)."""
        return partial(self._values, name) if self._tensors[name].load else None

    def _subject(self) -> str | None:
        return str(self.path) if self.path else None

    # --- saving -------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], *, version: int = 2) -> Path:
        """Write the model to `path` (`.oinf` or `.npz`, by suffix) atomically; returns the path.

        `.oinf` files are format version 2 (what the upstream runtime reads) unless `version=1`
        (what the upstream encoder and verifier handle; it cannot hold quantisation). A `path`
        that exists must be a regular file: a symlink, FIFO, device or directory is refused
        rather than replaced.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".oinf", ".npz"):
            raise ModelError("cannot tell the model format from the suffix: use .oinf or .npz", subject=str(path))
        try:
            with _atomic_output(path) as out:
                if suffix == ".oinf":
                    self._write_oinf(out, version, with_data=True)
                else:
                    self._write_npz(out)
        except OSError as problem:
            raise ModelError(f"cannot write model file: {problem.strerror or problem}", subject=str(path)) from None
        except ModelError as problem:
            if problem.subject is not None:
                raise
            raise ModelError(problem.message, subject=str(path)) from None
        return path

    def _write_oinf(self, out: BinaryIO, version: int, *, with_data: bool) -> None:
        tensors = [
            TensorToWrite(name, entry.code, entry.shape, self._payload(name) if with_data else None, entry.quant)
            for name, entry in self._tensors.items()
        ]
        write_oinf(out, version, self.sizevars, self.metadata, self._metadata_codes, tensors)

    def _write_npz(self, out: BinaryIO) -> None:
        if NPZ_INDEX in self._tensors:
            raise ModelError(f"tensor name {NPZ_INDEX!r} is reserved in .npz archives")
        index = io.BytesIO()
        self._write_oinf(index, 2, with_data=False)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            _write_npy(archive, NPZ_INDEX, np.frombuffer(index.getvalue(), dtype=np.uint8))
            for name, entry in self._tensors.items():
                if entry.load:
                    _write_npy(archive, name, _to_npz_storage(self._values(name), entry.dtype))


# --- building in memory -----------------------------------------------------------------------------


def _identity(array: np.ndarray) -> np.ndarray:
    return array


def _check_key(kind: str, name: Any) -> str:
    if not isinstance(name, str):
        raise ModelError(f"{kind} names must be strings, got {name!r}")
    return name


def _sizevar_value(name: str, value: Any) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if number is None or isinstance(value, (bool, np.bool_)) or not 0 <= number < 2**64:
        raise ModelError(f"sizevar {name!r} must be an integer in [0, 2**64), got {value!r}")
    return number


def _as_dsl_array(name: str, value: ArrayLike, dtype: str | None) -> np.ndarray:
    """`value` as a read-only array of a DSL dtype (`dtype` when given, else its own)."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as problem:
        raise ModelError(f"tensor {name!r} is not an array: {problem}") from None
    if dtype is None:
        if dtype_of_array(array.dtype) is None:
            raise ModelError(
                f"tensor {name!r} has numpy dtype {array.dtype}, which is not a DSL dtype "
                f"({' '.join(DTYPE_NAMES)}); convert it or name its dtype with dtypes="
            )
    elif dtype not in DTYPE_NAMES:
        raise ModelError(f"tensor {name!r}: unknown dtype {dtype!r} (expected one of {' '.join(DTYPE_NAMES)})")
    elif array.dtype != numpy_dtype(dtype):
        array = _convert(name, array, dtype)
    view = array.view()
    view.flags.writeable = False
    return view


def _convert(name: str, array: np.ndarray, dtype: str) -> np.ndarray:
    try:
        with np.errstate(all="ignore"):
            converted = array.astype(numpy_dtype(dtype))
            exact = dtype not in INT_RANGES or np.array_equal(converted.astype(array.dtype), array)
    except (TypeError, ValueError) as problem:
        raise ModelError(f"tensor {name!r} cannot be converted to {dtype}: {problem}") from None
    if not exact:
        raise ModelError(f"tensor {name!r} has values that {dtype} cannot hold exactly")
    return converted


# --- .oinf ------------------------------------------------------------------------------------------


def _open_oinf(path: Path) -> Model:
    buf = _FileBytes(path)
    contents = read_oinf(buf, str(path))
    tensors = {
        name: _Tensor(
            record.dtype,
            record.shape,
            None if record.data_offset is None else partial(read_tensor, buf, record),
            record.code,
            record.quant,
        )
        for name, record in contents.tensors.items()
    }
    return Model._from_file(path, contents.version, contents, tensors)


class _FileBytes:
    """An open model file read with positioned reads (`read_at`) instead of a memory map.

    Tensors are read when first used, possibly long after opening. A mapped file changed in
    place meanwhile (rewritten by `cp`, truncated) raises SIGBUS on the next access, which kills
    the process; a read instead returns short, and each read also checks that the file still has
    the size and modification time it had when opened, so a changed file gives a `ModelError`
    rather than a mix of old and new bytes. A file replaced by rename (as `Model.save` does) is
    a new file: this one keeps reading the old one, consistently.
    """

    _CHUNK = 1 << 16  # small reads (the tables, while opening) come from one cached chunk

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.file = path.open("rb", buffering=0)
            weakref.finalize(self, self.file.close)  # open as long as the model may read it
            self.stamp = self._stamp()
        except OSError as problem:
            raise ModelError(f"cannot read model file: {problem.strerror or problem}", subject=str(path)) from None
        self.lock = threading.Lock()  # seek + read is one step
        self.chunk_at, self.chunk = 0, b""

    def _stamp(self) -> tuple[int, int]:
        info = os.fstat(self.file.fileno())
        return info.st_size, info.st_mtime_ns

    def __len__(self) -> int:
        return self.stamp[0]

    def read_at(self, offset: int, nbytes: int) -> memoryview:
        """`nbytes` bytes at `offset` (read-only), exactly as the file was when opened."""
        with self.lock:
            if not self.chunk_at <= offset <= offset + nbytes <= self.chunk_at + len(self.chunk):
                if nbytes >= self._CHUNK:
                    return self._read(offset, nbytes).toreadonly()
                self.chunk_at = offset
                self.chunk = bytes(self._read(offset, min(self._CHUNK, len(self) - offset)))
            start = offset - self.chunk_at
            return memoryview(self.chunk)[start : start + nbytes]

    def _read(self, offset: int, nbytes: int) -> memoryview:
        data = memoryview(bytearray(nbytes))
        try:
            self._check_unchanged()
            self.file.seek(offset)
            done = 0
            while done < nbytes and (count := self.file.readinto(data[done:])):
                done += count
            self._check_unchanged()
        except OSError as problem:
            raise ModelError(f"cannot read model file: {problem.strerror or problem}", subject=str(self.path)) from None
        if done < nbytes:
            self._changed()
        return data

    def _check_unchanged(self) -> None:
        if self._stamp() != self.stamp:
            self._changed()

    def _changed(self) -> None:
        raise ModelError(
            "model file changed on disk since it was opened (rewritten or truncated in place); open it again",
            subject=str(self.path),
        )


@contextmanager
def _atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A temporary file next to `path` that replaces it only once fully written.

    Temporaries are named `.<name>.tmp-<pid>-<random>`, so a save killed mid-write leaves one
    that the next save of the same target recognises and removes (`_remove_stale_temporaries`).
    """
    _refuse_special_target(path)
    _remove_stale_temporaries(path)
    temp = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o666 & ~_umask())
        _refuse_special_target(path)  # again: it may have appeared while writing
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _refuse_special_target(path: Path) -> None:
    """Saving replaces a regular file only: replacing a symlink, FIFO or device node with a
    model is never what was meant (and a directory cannot be replaced)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = (
            "a symbolic link" if stat.S_ISLNK(mode) else "a directory" if stat.S_ISDIR(mode)
            else "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device node"
        )  # fmt: skip
        raise ModelError(f"refusing to replace {kind} with a model file (save to a regular file)", subject=str(path))


def _remove_stale_temporaries(path: Path) -> None:
    """Remove temporaries of `path` left by saves that died: their process is gone, or they
    have not been written for an hour (a live save keeps writing; the pid may be reused)."""
    pattern = re.compile(re.escape(f".{path.name}.tmp-") + r"(\d+)-[0-9a-f]{8}")
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return  # the save itself reports an unusable directory
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        try:
            info = entry.stat(follow_symlinks=False) if match else None
            stale = info and (not _process_alive(int(match[1])) or time.time() - info.st_mtime > _STALE_TEMP_SECONDS)
            if stale and stat.S_ISREG(info.st_mode):
                os.unlink(entry.path)
        except OSError:
            continue  # removed meanwhile, or not ours to remove


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would terminate it: rely on the age test alone
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, ValueError):
        return False  # not a pid this system can have
    except OSError:
        return True  # it exists (another user's)
    return True


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --- .npz -------------------------------------------------------------------------------------------


def _open_npz(path: Path, max_bytes: int) -> Model:
    source = str(path)
    try:
        archive = zipfile.ZipFile(path)
        archive_size = os.fstat(archive.fp.fileno()).st_size
        members = {_member_name(info.filename, source): info for info in archive.infolist()}
        for info in members.values():
            _check_member_size(info, archive_size, max_bytes, source)
        headers = {name: _npy_header(archive, info, source) for name, info in members.items()}
        index_info = members.pop(NPZ_INDEX, None)
        index = _read_npz_index(archive, index_info, source) if index_info else OinfContents(2)
    except _NPZ_ERRORS as problem:
        raise ModelError(f"unreadable .npz archive: {problem}", subject=source) from None
    tensors = {}
    for name in sorted(set(members) | set(index.tensors)):
        record = index.tensors.get(name)
        if name not in members:
            tensors[name] = _Tensor(record.dtype, record.shape, None, record.code, record.quant)
            continue
        stored, shape = headers[name]
        dtype = record.dtype if record else dtype_of_array(stored)
        if dtype is None or stored != _NPZ_STORAGE.get(dtype, numpy_dtype(dtype)) or (record and shape != record.shape):
            expected = f"{record.dtype}{list(record.shape)}" if record else "a DSL dtype"
            raise ModelError(f"npz member {name!r} holds {stored}{list(shape)}, expected {expected}", subject=source)
        load = partial(_read_npz_tensor, archive, members[name], dtype, source)
        code = record.code if record else CODE_OF_DTYPE[dtype]
        tensors[name] = _Tensor(dtype, shape, load, code, record.quant if record else None)
    return Model._from_file(path, None, index, tensors)


def _member_name(filename: str, source: str) -> str:
    if not filename.endswith(".npy"):
        raise ModelError(f"npz member {filename!r} is not a .npy array", subject=source)
    return filename[: -len(".npy")]


def _check_member_size(info: zipfile.ZipInfo, archive_size: int, max_bytes: int, source: str) -> None:
    """The zip directory's sizes are claims: the compressed bytes must lie in the archive, the
    uncompressed size must be what the compression method can produce from them, and within
    `max_bytes`, before a member is decoded into memory (`np.savez` stores, `savez_compressed`
    deflates; other methods are refused)."""
    what = f"npz member {info.filename!r}"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # zipfile decompresses bzip2/lzma in unbounded calls: a few KiB could become gigabytes
        problem = f"uses zip compression method {info.compress_type}; models read stored or deflated members"
        raise ModelError(f"{what} {problem}", subject=source)
    if info.header_offset + info.compress_size > archive_size:
        raise ModelError(f"{what} claims {info.compress_size} compressed bytes, more than the archive holds", subject=source)
    stored = info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size
    deflated = info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 64
    if stored or deflated:
        problem = f"claims {info.file_size} bytes from {info.compress_size} compressed bytes, which is impossible"
        raise ModelError(f"{what} {problem}", subject=source)
    if info.file_size > max_bytes:
        limit = f"over the limit of {max_bytes} bytes (raise it with Model.open(..., max_tensor_bytes=N))"
        raise ModelError(f"{what} is {info.file_size} bytes, {limit}", subject=source)


def _npy_fields(member: BinaryIO, info: zipfile.ZipInfo, source: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, Fortran order and dtype an `.npy` member's header declares (the data not read)."""
    version = np.lib.format.read_magic(member)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise ModelError(f"npz member {info.filename!r} has unsupported .npy version {version}", subject=source)
    try:  # numpy evaluates the header's dict literal: anything it raises is a malformed header
        shape, fortran_order, dtype = readers[version](member)
    except Exception as e:  # noqa: BLE001 - TypeError, tokenize.TokenError, SyntaxError, ValueError...
        raise ModelError(f"npz member {info.filename!r} has a malformed .npy header ({type(e).__name__})",
                         subject=source) from None  # fmt: skip
    if dtype.hasobject:
        raise ModelError(f"npz member {info.filename!r} holds Python objects, which models cannot", subject=source)
    return tuple(shape), fortran_order, dtype


def _npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> tuple[np.dtype, tuple[int, ...]]:
    """The (native-order) dtype and shape of an `.npy` member, read without its data."""
    with archive.open(info) as member:
        shape, _, dtype = _npy_fields(member, info, source)
        if info.file_size - member.tell() != math.prod(shape) * dtype.itemsize:
            problem = f"npz member {info.filename!r} does not hold the {list(shape)} array its header declares"
            raise ModelError(problem, subject=source)
    return dtype.newbyteorder("="), shape


def _read_npy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> np.ndarray:
    """An `.npy` member's array. Its data is read (at most one byte past what the header
    declares) before the array is made, so the header's size is checked against the real,
    decompressed data instead of being allocated on trust."""
    with archive.open(info) as member:
        shape, fortran_order, dtype = _npy_fields(member, info, source)
        nbytes = math.prod(shape) * dtype.itemsize
        data = member.read(nbytes + 1)
    if len(data) != nbytes:
        problem = f"holds {len(data)}{'+' if len(data) > nbytes else ''} bytes of data, its header declares {nbytes}"
        raise ModelError(f"npz member {info.filename!r} {problem}", subject=source)
    flat = np.frombuffer(data, dtype, math.prod(shape))
    array = flat.reshape(shape[::-1]).T if fortran_order else flat.reshape(shape)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def _read_npz_index(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> OinfContents:
    raw = _read_npy(archive, info, source)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelError(f"npz member {info.filename!r} must be a 1-D uint8 array", subject=source)
    index = read_oinf(raw.tobytes(), f"{source}[{info.filename}]")
    for record in index.tensors.values():
        if record.data_offset is not None:
            raise ModelError(f"npz index declares data for tensor {record.name!r}", subject=source)
    return index


def _read_npz_tensor(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dtype: str, source: str) -> np.ndarray:
    try:
        stored = _read_npy(archive, info, source)
    except _NPZ_ERRORS as problem:
        raise ModelError(f"unreadable npz member {info.filename!r}: {problem}", subject=source) from None
    target = numpy_dtype(dtype)
    array = stored.view(target) if dtype in _NPZ_BIT_VIEWS else stored.astype(target, copy=False)
    array.flags.writeable = False
    return array


def _to_npz_storage(values: np.ndarray, dtype: str) -> np.ndarray:
    if dtype not in _NPZ_STORAGE:
        return values
    storage = _NPZ_STORAGE[dtype]
    return values.view(storage) if dtype in _NPZ_BIT_VIEWS else values.astype(storage)


def _write_npy(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
