"""safetensors files with NumPy alone: read them, and write them byte for byte as the
`safetensors` package (0.8) writes them, with the header's keys sorted so that a file is
reproducible (that package emits ``__metadata__`` in hash order).

A file is: 8 bytes little-endian header length, the JSON header (padded with spaces to a
multiple of 8), then the tensors' bytes, little-endian, C order, in the order `safetensors`
lays them out: by dtype (its `Dtype` enum, largest first), then by name.
"""

from __future__ import annotations

import json
import struct
from typing import Dict, Mapping, NamedTuple, Optional, Tuple

import numpy as np

__all__ = ["RawTensor", "read", "serialize", "write"]

# safetensors' Dtype enum order (the ones NumPy or this package can hold), smallest first.
_DTYPE_ORDER = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]
_NUMPY = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype("<u1"),
    "I8": np.dtype("<i1"),
    "I16": np.dtype("<i2"),
    "U16": np.dtype("<u2"),
    "F16": np.dtype("<f2"),
    "I32": np.dtype("<i4"),
    "U32": np.dtype("<u4"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "U64": np.dtype("<u8"),
}
_BY_NUMPY = {dt.newbyteorder("="): name for name, dt in _NUMPY.items()}


class RawTensor(NamedTuple):
    """A tensor NumPy has no dtype for (``BF16``), as its little-endian bytes."""

    dtype: str
    shape: Tuple[int, ...]
    data: bytes


def _dtype_name(name: str, t) -> str:
    if isinstance(t, RawTensor):
        if t.dtype not in _DTYPE_ORDER:
            raise ValueError(f"{name}: unsupported dtype {t.dtype}")
        return t.dtype
    found = _BY_NUMPY.get(t.dtype.newbyteorder("="))
    if found is None:
        raise ValueError(f"{name}: unsupported dtype {t.dtype}")
    return found


def _bytes(name: str, t) -> bytes:
    if isinstance(t, RawTensor):
        n = int(np.prod(t.shape, dtype=np.int64)) * 2
        if len(t.data) != n:
            raise ValueError(f"{name}: {len(t.data)} bytes for shape {list(t.shape)}, expected {n}")
        return bytes(t.data)
    return np.ascontiguousarray(t, dtype=_NUMPY[_dtype_name(name, t)]).tobytes()


def serialize(tensors: Mapping[str, object], metadata: Optional[Mapping[str, str]] = None) -> bytes:
    """The bytes of a safetensors file holding ``tensors`` (name → NumPy array or
    :class:`RawTensor`) and the string → string ``metadata``."""
    arrays = {}
    for name, t in tensors.items():
        if not isinstance(t, RawTensor):
            t = np.asarray(t)
        arrays[name] = (_dtype_name(name, t), t)
    order = sorted(arrays, key=lambda k: (-_DTYPE_ORDER.index(arrays[k][0]), k))
    entries, chunks, offset = {}, [], 0
    for name in order:
        dtype, t = arrays[name]
        data = _bytes(name, t)
        entries[name] = {"dtype": dtype, "shape": [int(s) for s in t.shape], "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header = {}
    if metadata is not None:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ValueError(f"metadata must map strings to strings, got {k!r}: {v!r}")
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    for name in sorted(entries):
        header[name] = entries[name]
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write(path, tensors: Mapping[str, object], metadata: Optional[Mapping[str, str]] = None) -> None:
    """Writes :func:`serialize` of the arguments to ``path``."""
    blob = serialize(tensors, metadata)
    with open(path, "wb") as f:
        f.write(blob)


def read(path) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file; ``BF16`` tensors are widened to float32."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: not a safetensors file (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: not a safetensors file (header of {n} bytes in {len(blob)})")
    header = json.loads(blob[8:8 + n])
    metadata = header.pop("__metadata__", None) or {}
    data = memoryview(blob)[8 + n:]
    tensors = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        shape = tuple(info["shape"])
        if info["dtype"] == "BF16":
            bits = np.frombuffer(data[a:b], dtype="<u2").astype(np.uint32) << 16
            tensors[name] = bits.view(np.float32).reshape(shape)
        else:
            tensors[name] = np.frombuffer(data[a:b], dtype=_NUMPY[info["dtype"]]).reshape(shape).copy()
    return tensors, metadata
