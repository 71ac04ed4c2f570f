"""The innfer sampler over libinnfer's C API (ctypes + NumPy): models, sessions, errors.

    import innfer
    model = innfer.Model("model.safetensors")
    session = model.session(max_batch=256, seed=42)
    x = session.sample([1.5, 0.0], 1000)                # float32 [1000, x_dim]
    z, logdet = session.forward(x, cond=[1.5, 0.0])     # cond only for conditional models
    s = session.summarize(ys, 32, quantiles=[0.05, 0.5, 0.95])  # s.mean [rows, x_dim], ...

This file needs only the standard library and NumPy. Installed with the package
(``pip install ./bindings/python``), it finds the library the wheel carries next to it. Copied
alone as ``innfer.py`` (no Rust toolchain needed), it finds the library, in this order:

1. the environment variable ``INNFER_LIB``: the library file itself (``.../libinnfer.so``)
   or a directory holding it (an explicit choice: nothing else is tried);
2. next to this file (``libinnfer.so`` / ``libinnfer.dylib`` / ``innfer.dll``);
3. the system loader (``ctypes.util.find_library("innfer")``, e.g. after
   ``scripts/install.sh``).

Arrays: inputs are any real-valued array-likes of the right shape (float32 is used as is,
other real dtypes are converted to float32); C order, Fortran order and other non-negative
strides are passed to the library's strided calls without a copy. Results are new float32
C-order arrays. Failing calls raise :class:`Error` with the library's status and message.

Threads: a :class:`Model` is immutable and may be shared; a :class:`Session` serialises its
own calls (one at a time), and calls release the GIL, so sessions in different threads run
in parallel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import operator
import os
import sys
import threading
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Tuple, Union

import numpy as np

__all__ = [
    "Error",
    "Model",
    "Session",
    "Summaries",
    "STATUS",
    "LAYOUT_NONE",
    "LAYOUT_INN",
    "LAYOUT_CINN",
    "version",
    "library_path",
    "status_string",
]

#: Status codes of the C API (``innfer_status``, include/innfer.h), by name.
STATUS = {
    "OK": 0,
    "NULL_ARGUMENT": 1,
    "INVALID_ARGUMENT": 2,
    "IO": 3,
    "FORMAT": 4,
    "METADATA": 5,
    "TENSOR": 6,
    "UNSUPPORTED": 7,
    "DIMS": 8,
    "BATCH_TOO_LARGE": 9,
    "BUFFER_SIZE": 10,
    "ARENA_TOO_SMALL": 11,
    "ARENA_MISALIGNED": 12,
    "NO_LAYOUT": 13,
    "ISA_UNAVAILABLE": 14,
    "INTERNAL": 15,
    "OUT_OF_MEMORY": 16,
    "NON_FINITE_OUTPUT": 17,
}
for _name, _code in STATUS.items():
    globals()["STATUS_" + _name] = _code
    __all__.append("STATUS_" + _name)

#: Sampling layouts of a model file (docs/format.md §3).
LAYOUT_NONE, LAYOUT_INN, LAYOUT_CINN = 0, 1, 2
_LAYOUT_NAMES = {LAYOUT_NONE: "none", LAYOUT_INN: "inn", LAYOUT_CINN: "cinn"}
#: The C ABI this module is written for (``INNFER_ABI_VERSION``).
ABI_VERSION = 2

ArrayLike = Union[np.ndarray, "list[float]", "tuple[float, ...]"]


class Error(Exception):
    """A failed innfer call: ``status`` (an int of :data:`STATUS`), ``status_name`` and
    ``message`` (the library's or this module's description)."""

    def __init__(self, status: int, message: str):
        super().__init__(status, message)
        self.status = status
        self.message = message

    @property
    def status_name(self) -> str:
        """The name of ``status`` in :data:`STATUS` (``"UNKNOWN"`` if it has none)."""
        for name, code in STATUS.items():
            if code == self.status:
                return name
        return "UNKNOWN"

    def __str__(self) -> str:
        return f"innfer error {self.status} ({self.status_name}): {self.message}"


# ------------------------------------------------------------------------------------------
# The library
# ------------------------------------------------------------------------------------------

_LIBRARY_NAMES = {
    "darwin": ["libinnfer.dylib"],
    "win32": ["innfer.dll", "libinnfer.dll"],
}.get(sys.platform, ["libinnfer.so"])


def _candidates() -> Iterator[Path]:
    env = os.environ.get("INNFER_LIB")
    if env:
        p = Path(env)
        if p.is_dir():
            yield from (p / n for n in _LIBRARY_NAMES)
        else:
            yield p
        return  # an explicit choice: no fallbacks
    here = Path(__file__).resolve().parent
    yield from (here / n for n in _LIBRARY_NAMES)
    found = ctypes.util.find_library("innfer")
    if found:
        yield Path(found)


def _load_library() -> Tuple[ctypes.CDLL, str]:
    tried = []
    for p in _candidates():
        tried.append(str(p))
        if p.is_absolute() and not p.exists():
            continue
        try:
            return ctypes.CDLL(str(p)), str(p)
        except OSError:
            continue
    raise OSError(
        "libinnfer not found (tried: " + (", ".join(tried) or "nothing") + "); install the "
        "package with pip (pip install ./bindings/python) or set INNFER_LIB to the library file"
    )


_lib = None
_lib_path = None

_c_float_p = ctypes.POINTER(ctypes.c_float)
_size_t = ctypes.c_size_t
_ptrdiff_t = ctypes.c_ssize_t
_status = ctypes.c_int32


def _declare(lib: ctypes.CDLL) -> None:
    """The C signatures (include/innfer.h) of the functions this module calls."""

    def fn(name, restype, *argtypes):
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = list(argtypes)

    vp, fp, d = ctypes.c_void_p, _c_float_p, _ptrdiff_t
    sp = ctypes.POINTER(_size_t)
    fn("innfer_abi_version", ctypes.c_uint32)
    fn("innfer_version_string", ctypes.c_char_p)
    fn("innfer_status_string", ctypes.c_char_p, _status)
    fn("innfer_model_load_file", _status, ctypes.c_char_p, ctypes.POINTER(vp), ctypes.c_char_p, _size_t)
    fn("innfer_model_load_bytes", _status, ctypes.c_char_p, _size_t, ctypes.POINTER(vp), ctypes.c_char_p, _size_t)
    fn("innfer_model_free", None, vp)
    fn("innfer_model_dims", _status, vp, sp, sp, sp, sp, sp, ctypes.POINTER(ctypes.c_int32))
    fn("innfer_model_block_count", _size_t, vp)
    fn("innfer_session_create", _status, vp, _size_t, ctypes.POINTER(vp))
    fn("innfer_session_free", None, vp)
    fn("innfer_session_reseed", _status, vp, ctypes.c_uint64, ctypes.c_uint64)
    fn("innfer_session_seek", _status, vp, ctypes.c_uint64)
    fn("innfer_session_set_threads", _status, vp, _size_t)
    fn("innfer_session_max_batch", _size_t, vp)
    fn("innfer_session_last_error", ctypes.c_char_p, vp)
    fn("innfer_sample_strided", _status, vp, fp, d, d, _size_t, _size_t, fp, d, d)
    fn("innfer_session_summarize", _status, vp, fp, _size_t, _size_t, fp, _size_t, fp, fp, fp, sp)
    fn("innfer_forward_strided", _status, vp, fp, d, d, fp, d, d, _size_t, fp, d, d, fp)
    fn("innfer_inverse_strided", _status, vp, fp, d, d, fp, d, d, _size_t, fp, d, d, fp)


def _library() -> ctypes.CDLL:
    global _lib, _lib_path
    if _lib is None:
        lib, path = _load_library()
        _declare(lib)
        abi = lib.innfer_abi_version()
        if abi != ABI_VERSION:
            raise OSError(f"{path}: ABI version {abi}, this module needs {ABI_VERSION}")
        _lib, _lib_path = lib, path
    return _lib


def library_path() -> str:
    """The path of the loaded libinnfer (loading it if needed)."""
    _library()
    return _lib_path


def version() -> str:
    """The version of the loaded libinnfer, e.g. ``"0.1.0"``."""
    return _library().innfer_version_string().decode()


def status_string(status: int) -> str:
    """The library's one-line description of a status code."""
    return _library().innfer_status_string(status).decode()


# ------------------------------------------------------------------------------------------
# Arrays
# ------------------------------------------------------------------------------------------

_F32 = np.dtype(np.float32)


def _real_f32(a, name: str) -> np.ndarray:
    """``a`` as a float32 array: float32 arrays as they are (any strides), other real dtypes
    converted; complex, object, text and time values refused."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise Error(STATUS["INVALID_ARGUMENT"], f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype != _F32:
        arr = arr.astype(_F32)
    return arr


def _strided(arr: np.ndarray) -> Tuple[np.ndarray, int, int]:
    """A float32 matrix and its (row, column) strides in floats, as the strided C calls take
    them: copied to C order only if a stride is negative or not a whole float, or the data are
    misaligned."""
    rs, cs = arr.strides
    usable = arr.flags.aligned and all(s >= 0 and s % _F32.itemsize == 0 for s in (rs, cs))
    if not usable:
        arr = np.ascontiguousarray(arr)
        rs, cs = arr.strides
    rows, cols = arr.shape
    # An axis of length <= 1 is never stepped along.
    rs = rs // _F32.itemsize if rows > 1 else 0
    cs = cs // _F32.itemsize if cols > 1 else 0
    return arr, rs, cs


def _fptr(a: Optional[np.ndarray]):
    return None if a is None else a.ctypes.data_as(_c_float_p)


def _rows_arg(n, name: str, minimum: int = 0) -> int:
    try:
        n = operator.index(n)
    except TypeError:
        raise Error(STATUS["INVALID_ARGUMENT"], f"{name} must be an integer, got {type(n).__name__}") from None
    if n < minimum:
        raise Error(STATUS["INVALID_ARGUMENT"], f"{name} must be >= {minimum}, got {n}")
    if n >= 2**63:
        raise Error(STATUS["INVALID_ARGUMENT"], f"{name} = {n} is too large")
    return n


def _u64(v, name: str) -> int:
    """A 64-bit unsigned value; a negative one is taken as its two's complement."""
    try:
        v = operator.index(v)
    except TypeError:
        raise Error(STATUS["INVALID_ARGUMENT"], f"{name} must be an integer, got {type(v).__name__}") from None
    if not -(2**63) <= v < 2**64:
        raise Error(STATUS["INVALID_ARGUMENT"], f"{name} must fit in 64 bits, got {v}")
    return v & (2**64 - 1)


# ------------------------------------------------------------------------------------------
# Model and Session
# ------------------------------------------------------------------------------------------


class Model:
    """A loaded model, immutable and shareable between threads.

    ``Model(path)`` reads a ``.safetensors`` model file (docs/format.md);
    :meth:`Model.from_bytes` takes the file's bytes. Raises :class:`Error` (status ``IO``,
    ``FORMAT``, ``METADATA``, ``TENSOR``, ``UNSUPPORTED`` or ``DIMS``) naming what is wrong.
    """

    def __init__(self, path: Union[str, os.PathLike], *, _bytes: Optional[bytes] = None):
        lib = _library()
        self._lib = lib
        self._h = ctypes.c_void_p()
        err = ctypes.create_string_buffer(1024)
        if _bytes is not None:
            data = bytes(_bytes)
            st = lib.innfer_model_load_bytes(data, len(data), ctypes.byref(self._h), err, len(err))
            src = "<bytes>"
        else:
            src = os.fspath(path)
            st = lib.innfer_model_load_file(os.fsencode(src), ctypes.byref(self._h), err, len(err))
        if st != 0:
            self._h = ctypes.c_void_p()
            raise Error(st, err.value.decode(errors="replace") or status_string(st))
        dims = [_size_t() for _ in range(5)]
        layout = ctypes.c_int32()
        st = lib.innfer_model_dims(self._h, *(ctypes.byref(d) for d in dims), ctypes.byref(layout))
        if st != 0:
            raise Error(st, status_string(st))
        self._dims = tuple(d.value for d in dims)
        self._layout = layout.value
        self.source = src

    @classmethod
    def from_bytes(cls, data: bytes) -> "Model":
        """A model from the bytes of a model file."""
        return cls(None, _bytes=data)

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is not None and h.value:
            self._lib.innfer_model_free(h)
            self._h = ctypes.c_void_p()

    @property
    def dim(self) -> int:
        """Width of the network (every block maps ``[rows, dim]`` to ``[rows, dim]``)."""
        return self._dims[0]

    @property
    def cond_dim(self) -> int:
        """Width of the condition (0: the model takes none)."""
        return self._dims[1]

    @property
    def x_dim(self) -> int:
        """Width of the parameters x (0 without a sampling layout)."""
        return self._dims[2]

    @property
    def y_dim(self) -> int:
        """Width of an observation y (0 without a sampling layout)."""
        return self._dims[3]

    @property
    def z_dim(self) -> int:
        """Width of the latent z (0 without a sampling layout)."""
        return self._dims[4]

    @property
    def layout(self) -> int:
        """The sampling layout: :data:`LAYOUT_NONE`, :data:`LAYOUT_INN` or :data:`LAYOUT_CINN`."""
        return self._layout

    @property
    def layout_name(self) -> str:
        """The sampling layout by name: ``"none"``, ``"inn"`` or ``"cinn"``."""
        return _LAYOUT_NAMES.get(self._layout, "?")

    @property
    def block_count(self) -> int:
        """Number of blocks in the chain."""
        return self._lib.innfer_model_block_count(self._h)

    def session(self, max_batch: int = 256, seed: int = 0, stream: int = 0) -> "Session":
        """A :class:`Session` for calls of at most ``max_batch`` rows (``sample`` takes any
        number, in chunks), its random stream at ``(seed, stream)``."""
        s = Session(self, max_batch)
        if seed != 0 or stream != 0:
            s.reseed(seed, stream)
        return s

    def __repr__(self) -> str:
        return (
            f"innfer.Model({self.source!r}, dim={self.dim}, cond_dim={self.cond_dim}, "
            f"layout={self.layout_name}, x_dim={self.x_dim}, y_dim={self.y_dim}, z_dim={self.z_dim})"
        )


class Summaries(NamedTuple):
    """What :meth:`Session.summarize` returns: float32 arrays of the samples' ``mean`` and
    ``std`` (``[rows, x_dim]``) and ``quantiles`` (``[rows, len(q), x_dim]``; without the
    ``rows`` axis for one observation given as ``[y_dim]``), and ``invalid_rows``, the number of
    observations whose condition was not finite (NaN in all their outputs)."""

    mean: np.ndarray
    std: np.ndarray
    quantiles: np.ndarray
    invalid_rows: int


class Session:
    """Scratch memory and a random stream for one model (the session keeps the model alive).

    Samples are reproducible from ``(seed, stream)``: sample row *r* of the stream is the same
    whatever the batch sizes, ``max_batch`` or threads, and equals what the Rust, C, C++ and
    Fortran APIs draw. One call runs at a time (concurrent calls wait for each other).
    """

    def __init__(self, model: Model, max_batch: int):
        self._lib = model._lib
        self.model = model
        self._h = ctypes.c_void_p()
        self._lock = threading.Lock()
        max_batch = _rows_arg(max_batch, "max_batch", minimum=1)
        st = self._lib.innfer_session_create(model._h, max_batch, ctypes.byref(self._h))
        if st != 0:
            self._h = ctypes.c_void_p()
            # The C API keeps no message for a failed creation (innfer_session_last_error() in
            # innfer.h): max_batch is already checked above, so what is left is its size.
            why = {
                STATUS["INVALID_ARGUMENT"]: ": a session of max_batch rows is too large to address",
                STATUS["OUT_OF_MEMORY"]: ": the session's memory could not be allocated",
            }.get(st, "")
            raise Error(st, f"innfer_session_create(max_batch = {max_batch}): {status_string(st)}{why}")

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is not None and h.value:
            self._lib.innfer_session_free(h)
            self._h = ctypes.c_void_p()

    @property
    def max_batch(self) -> int:
        """Most rows one library call takes (``forward``/``inverse`` split larger inputs)."""
        return self._lib.innfer_session_max_batch(self._h)

    def _check(self, st: int) -> None:
        if st != 0:
            msg = self._lib.innfer_session_last_error(self._h)
            msg = msg.decode(errors="replace") if msg else ""
            raise Error(st, msg or status_string(st))

    def reseed(self, seed: int, stream: int = 0) -> None:
        """Restarts the random stream at ``(seed, stream)``; a new session is at ``(0, 0)``.
        Negative values are taken as their 64-bit two's complement."""
        seed, stream = _u64(seed, "seed"), _u64(stream, "stream")
        with self._lock:
            self._check(self._lib.innfer_session_reseed(self._h, seed, stream))

    def seek(self, row: int) -> None:
        """Moves the random stream to ``row``: the next sample draws row ``row`` of (seed, stream).

        With ``n`` samples per observation, observation ``j`` owns rows ``j*n ... j*n+n-1``, so
        a worker that handles observations ``j0...`` calls ``seek(j0 * n)`` and draws the
        samples one call over all observations draws for them (``innfer_session_seek``)."""
        if isinstance(row, int) and row < 0:
            raise Error(STATUS["INVALID_ARGUMENT"], f"row must be in [0, 2**64), got {row}")
        row = _u64(row, "row")
        with self._lock:
            self._check(self._lib.innfer_session_seek(self._h, row))

    def set_threads(self, threads: int) -> None:
        """Splits each call over ``threads`` threads (1: the calling one); the samples do not
        depend on it (``innfer_session_set_threads``)."""
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise Error(STATUS["INVALID_ARGUMENT"], f"threads must be an integer >= 1, got {threads!r}")
        with self._lock:
            self._check(self._lib.innfer_session_set_threads(self._h, threads))

    def sample(self, y: ArrayLike, n: int) -> np.ndarray:
        """``n`` posterior samples of x for the observation ``y`` (raw units).

        ``y`` of shape ``[y_dim]`` gives ``[n, x_dim]``; ``[rows, y_dim]`` gives ``n`` samples
        per row, observation by observation: ``[rows * n, x_dim]`` (the numbers of ``rows``
        successive one-observation calls). The stream moves on by the number of samples drawn.
        """
        m = self.model
        n = _rows_arg(n, "n")
        y = _real_f32(y, "y")
        if m.layout == LAYOUT_NONE:
            raise Error(STATUS["NO_LAYOUT"], "the model has no sampling layout (innfer.layout = none); "
                        "use forward/inverse")
        if y.ndim == 1:
            y = y[None, :]
        elif y.ndim != 2:
            raise Error(STATUS["BUFFER_SIZE"], f"y must be [y_dim] or [rows, y_dim], got shape {y.shape}")
        if y.shape[1] != m.y_dim:
            raise Error(STATUS["BUFFER_SIZE"], f"y has {y.shape[1]} values per row, the model's y_dim is {m.y_dim}")
        y, y_rs, y_cs = _strided(y)
        rows = y.shape[0]
        x = np.empty((rows * n, m.x_dim), dtype=np.float32)
        with self._lock:
            self._check(self._lib.innfer_sample_strided(
                self._h, _fptr(y), y_rs, y_cs, rows, n, _fptr(x), m.x_dim, 1))
        return x

    def summarize(self, y: ArrayLike, n: int, quantiles: ArrayLike = ()) -> Summaries:
        """The mean, standard deviation and ``quantiles`` of ``n`` posterior samples of x for
        each observation, without the samples (``innfer_session_summarize``): for one
        parameter's samples of one observation, the mean in float64 in sample order, the
        standard deviation with divisor ``n - 1`` (0 for ``n = 1``), and for each ``q`` in
        [0, 1] the order statistic of rank ``max(1, ceil(q * n))`` (one of the samples: 0 the
        least, 1 the greatest). Exactly the summaries of the samples :meth:`sample` draws from
        the same stream position, and the stream moves on as far; any ``n``, in the memory the
        session already has. ``y`` is ``[y_dim]`` or ``[rows, y_dim]``; an observation whose
        condition is not finite (a NaN, say) gets NaN and is counted in ``invalid_rows``.
        """
        m = self.model
        n = _rows_arg(n, "n", minimum=1)
        y = _real_f32(y, "y")
        q = _real_f32(quantiles, "quantiles")
        if m.layout == LAYOUT_NONE:
            raise Error(STATUS["NO_LAYOUT"], "the model has no sampling layout (innfer.layout = none); "
                        "use forward/inverse")
        single = y.ndim == 1
        if single:
            y = y[None, :]
        if y.ndim != 2 or y.shape[1] != m.y_dim:
            raise Error(STATUS["BUFFER_SIZE"], f"y must be [{m.y_dim}] or [rows, {m.y_dim}], got shape {y.shape}")
        if q.ndim > 1:
            raise Error(STATUS["BUFFER_SIZE"], f"quantiles must be a sequence of levels, got shape {q.shape}")
        y, q = np.ascontiguousarray(y), np.ascontiguousarray(q.reshape(-1))
        rows, nq = y.shape[0], q.shape[0]
        mean = np.empty((rows, m.x_dim), dtype=np.float32)
        std = np.empty((rows, m.x_dim), dtype=np.float32)
        values = np.empty((rows, nq, m.x_dim), dtype=np.float32)
        invalid = _size_t(0)
        with self._lock:
            self._check(self._lib.innfer_session_summarize(
                self._h, _fptr(y), rows, n, _fptr(q) if nq else None, nq, _fptr(mean), _fptr(std),
                _fptr(values) if nq else None, ctypes.byref(invalid)))
        if single:
            return Summaries(mean[0], std[0], values[0], invalid.value)
        return Summaries(mean, std, values, invalid.value)

    def forward(self, x: ArrayLike, cond: Optional[ArrayLike] = None) -> Tuple[np.ndarray, np.ndarray]:
        """``(out, logdet)``: the forward pass on ``x`` (``[rows, dim]``, or one row ``[dim]``)
        and the log-determinant of each row's Jacobian, in raw units (docs/format.md §3).

        ``cond`` (conditional models only): ``[rows, cond_dim]``, or ``[cond_dim]`` for every
        row (read in place, not repeated in memory). Any number of rows: they run in calls of
        ``max_batch`` rows. A one-row ``x`` gives ``out`` ``[dim]`` and a scalar ``logdet``.
        """
        return self._pass(self._lib.innfer_forward_strided, x, cond, "x")

    def inverse(self, z: ArrayLike, cond: Optional[ArrayLike] = None) -> Tuple[np.ndarray, np.ndarray]:
        """``(x, logdet)``: the inverse pass on ``z`` (``[rows, dim]`` or ``[dim]``) and the
        log-determinant of the inverse map per row; arguments as :meth:`forward`."""
        return self._pass(self._lib.innfer_inverse_strided, z, cond, "z")

    def _pass(self, fn, inp, cond, name: str):
        m = self.model
        inp = _real_f32(inp, name)
        single = inp.ndim == 1
        if single:
            inp = inp[None, :]
        if inp.ndim != 2 or inp.shape[1] != m.dim:
            shape = inp.shape[1:] if single else inp.shape
            raise Error(STATUS["BUFFER_SIZE"], f"{name} must be [rows, {m.dim}] or [{m.dim}], got shape {shape}")
        rows = inp.shape[0]
        if cond is None:
            if m.cond_dim != 0:
                raise Error(STATUS["INVALID_ARGUMENT"], f"the model needs a condition of width {m.cond_dim} (cond=...)")
        else:
            if m.cond_dim == 0:
                raise Error(STATUS["INVALID_ARGUMENT"], "the model takes no condition (cond must be None)")
            cond = _real_f32(cond, "cond")
            if cond.ndim == 1 and cond.shape[0] == m.cond_dim:
                cond = np.broadcast_to(cond, (rows, m.cond_dim))  # row stride 0: not copied
            if cond.shape != (rows, m.cond_dim):
                raise Error(STATUS["BUFFER_SIZE"], f"cond must be [{rows}, {m.cond_dim}] or [{m.cond_dim}], "
                            f"got shape {cond.shape}")
            cond, c_rs, c_cs = _strided(cond)
        inp, i_rs, i_cs = _strided(inp)
        out = np.empty((rows, m.dim), dtype=np.float32)
        logdet = np.empty(rows, dtype=np.float32)
        step = self.max_batch
        with self._lock:
            r0 = 0
            while True:  # at least one call: with no rows, the library still checks the call
                r1 = min(rows, r0 + step)
                c = (None, 0, 0) if cond is None else (_fptr(cond[r0:r1]), c_rs, c_cs)
                self._check(fn(self._h, _fptr(inp[r0:r1]), i_rs, i_cs, *c, r1 - r0,
                               _fptr(out[r0:r1]), m.dim, 1, _fptr(logdet[r0:r1])))
                r0 = r1
                if r0 >= rows:
                    break
        if single:
            return out[0], logdet[0]
        return out, logdet
