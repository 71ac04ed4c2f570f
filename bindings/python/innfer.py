"""innfer: posterior sampling with FrEIA invertible networks, via ctypes over libinnfer.

    import numpy as np, innfer
    model = innfer.Model("model.safetensors")
    session = model.session(max_batch=256, seed=0)
    x = session.sample(np.array([1.5, 0.0]), 1000)     # [1000, x_dim] float32
    z, logdet = session.forward(x[:10], cond=...)      # cond only for conditional models

The shared library is looked for, in this order:

1. the environment variable ``INNFER_LIB``: the path of the library file itself
   (``.../libinnfer.so``), or a directory containing it;
2. next to this module (``libinnfer.so`` / ``libinnfer.dylib`` / ``innfer.dll`` in the
   directory of ``innfer.py``);
3. the repository's build directories, ``<repo>/target/release`` then ``<repo>/target/debug``
   (``<repo>`` = two levels above this file), then ``/work/main/target/release``;
4. the system loader (``ctypes.util.find_library("innfer")``).

All arrays are float32, C order; inputs are converted with
``np.ascontiguousarray(a, dtype=np.float32)``. Failing calls raise :class:`innfer.Error`
with the C status code and the library's message. A model is immutable and may be shared
between threads; a session is used by one thread at a time (the GIL is released during calls,
so sessions in different threads run in parallel).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path

import numpy as np

__all__ = [
    "Error",
    "Model",
    "Session",
    "LAYOUT_NONE",
    "LAYOUT_INN",
    "LAYOUT_CINN",
    "STATUS",
    "version",
    "library_path",
]

# Status codes (innfer_status), by name.
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
}
for _name, _code in STATUS.items():
    globals()["STATUS_" + _name] = _code
    __all__.append("STATUS_" + _name)

LAYOUT_NONE, LAYOUT_INN, LAYOUT_CINN = 0, 1, 2
_LAYOUT_NAMES = {LAYOUT_NONE: "none", LAYOUT_INN: "inn", LAYOUT_CINN: "cinn"}
ABI_VERSION = 1


class Error(Exception):
    """A failed innfer call: ``status`` (an int, see STATUS) and ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(status, message)
        self.status = status
        self.message = message

    @property
    def status_name(self) -> str:
        for k, v in STATUS.items():
            if v == self.status:
                return k
        return "UNKNOWN"

    def __str__(self) -> str:
        return f"innfer error {self.status} ({self.status_name}): {self.message}"


def _candidates():
    names = {
        "darwin": ["libinnfer.dylib"],
        "win32": ["innfer.dll", "libinnfer.dll"],
    }.get(sys.platform, ["libinnfer.so"])
    env = os.environ.get("INNFER_LIB")
    if env:
        p = Path(env)
        if p.is_dir():
            yield from (p / n for n in names)
        else:
            yield p
        return  # an explicit choice: no fallbacks
    here = Path(__file__).resolve().parent
    yield from (here / n for n in names)
    repo = here.parent.parent
    for d in (repo / "target" / "release", repo / "target" / "debug", Path("/work/main/target/release")):
        yield from (d / n for n in names)
    found = ctypes.util.find_library("innfer")
    if found:
        yield Path(found)


def _load_library():
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
        "libinnfer not found; set INNFER_LIB to the library file (tried: " + ", ".join(tried) + ")"
    )


_lib = None
_lib_path = None

_c_float_p = ctypes.POINTER(ctypes.c_float)
_size_t = ctypes.c_size_t
_ptrdiff_t = ctypes.c_ssize_t
_status = ctypes.c_int32


def _setup(lib):
    def fn(name, restype, *argtypes):
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = list(argtypes)

    vp = ctypes.c_void_p
    fn("innfer_abi_version", ctypes.c_uint32)
    fn("innfer_version_string", ctypes.c_char_p)
    fn("innfer_status_string", ctypes.c_char_p, _status)
    fn("innfer_model_load_file", _status, ctypes.c_char_p, ctypes.POINTER(vp), ctypes.c_char_p, _size_t)
    fn("innfer_model_load_bytes", _status, ctypes.c_char_p, _size_t, ctypes.POINTER(vp), ctypes.c_char_p, _size_t)
    fn("innfer_model_free", None, vp)
    sp = ctypes.POINTER(_size_t)
    fn("innfer_model_dims", _status, vp, sp, sp, sp, sp, sp, ctypes.POINTER(ctypes.c_int32))
    fn("innfer_model_block_count", _size_t, vp)
    fn("innfer_session_size", _status, vp, _size_t, sp)
    fn("innfer_session_init_static", _status, vp, _size_t, vp, _size_t, ctypes.POINTER(vp))
    fn("innfer_session_create", _status, vp, _size_t, ctypes.POINTER(vp))
    fn("innfer_session_free", None, vp)
    fn("innfer_session_reseed", _status, vp, ctypes.c_uint64, ctypes.c_uint64)
    fn("innfer_session_seek", _status, vp, ctypes.c_uint64)
    fn("innfer_session_set_threads", _status, vp, _size_t)
    fn("innfer_session_max_batch", _size_t, vp)
    fn("innfer_session_model", vp, vp)
    fn("innfer_session_last_error", ctypes.c_char_p, vp)
    fp = _c_float_p
    fn("innfer_sample", _status, vp, fp, _size_t, fp)
    fn("innfer_sample_batch", _status, vp, fp, _size_t, _size_t, fp)
    fn("innfer_sample_strided", _status, vp, fp, _ptrdiff_t, _ptrdiff_t, _size_t, _size_t, fp, _ptrdiff_t, _ptrdiff_t)
    fn("innfer_forward", _status, vp, fp, fp, _size_t, fp, fp)
    fn("innfer_inverse", _status, vp, fp, fp, _size_t, fp, fp)
    d = _ptrdiff_t
    fn("innfer_forward_strided", _status, vp, fp, d, d, fp, d, d, _size_t, fp, d, d, fp)
    fn("innfer_inverse_strided", _status, vp, fp, d, d, fp, d, d, _size_t, fp, d, d, fp)


def _library():
    global _lib, _lib_path
    if _lib is None:
        lib, path = _load_library()
        _setup(lib)
        abi = lib.innfer_abi_version()
        if abi != ABI_VERSION:
            raise OSError(f"{path}: ABI version {abi}, this module needs {ABI_VERSION}")
        _lib, _lib_path = lib, path
    return _lib


def library_path() -> str:
    """The path of the loaded libinnfer."""
    _library()
    return _lib_path


def version() -> str:
    """The version of the loaded libinnfer, e.g. "0.1.0"."""
    return _library().innfer_version_string().decode()


def status_string(status: int) -> str:
    return _library().innfer_status_string(status).decode()


def _fptr(a):
    return a.ctypes.data_as(_c_float_p) if a is not None else None


def _f32(a, name):
    a = np.ascontiguousarray(a, dtype=np.float32)
    return a


class Model:
    """A loaded model (immutable). ``Model(path)`` or ``Model.from_bytes(data)``."""

    def __init__(self, path=None, *, _bytes=None):
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
            msg = err.value.decode(errors="replace") or status_string(st)
            raise Error(st, msg)
        dims = [_size_t() for _ in range(5)]
        layout = ctypes.c_int32()
        st = lib.innfer_model_dims(self._h, *(ctypes.byref(d) for d in dims), ctypes.byref(layout))
        if st != 0:
            raise Error(st, status_string(st))
        self._dims = tuple(d.value for d in dims)
        self._layout = layout.value
        self.source = src

    @classmethod
    def from_bytes(cls, data) -> "Model":
        return cls(_bytes=data)

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is not None and h.value:
            self._lib.innfer_model_free(h)
            self._h = ctypes.c_void_p()

    dim = property(lambda self: self._dims[0], doc="width of the network")
    cond_dim = property(lambda self: self._dims[1], doc="width of the condition (0: none)")
    x_dim = property(lambda self: self._dims[2], doc="width of the parameters x (0 without a layout)")
    y_dim = property(lambda self: self._dims[3], doc="width of an observation y (0 without a layout)")
    z_dim = property(lambda self: self._dims[4], doc="width of the latent z (0 without a layout)")
    layout = property(lambda self: self._layout, doc="LAYOUT_NONE, LAYOUT_INN or LAYOUT_CINN")

    @property
    def layout_name(self) -> str:
        return _LAYOUT_NAMES.get(self._layout, "?")

    @property
    def block_count(self) -> int:
        return self._lib.innfer_model_block_count(self._h)

    def session(self, max_batch: int = 256, seed: int = 0, stream: int = 0) -> "Session":
        """A session for passes of at most ``max_batch`` rows, its random stream at (seed, stream)."""
        s = Session(self, max_batch)
        if seed != 0 or stream != 0:
            s.reseed(seed, stream)
        return s

    def __repr__(self):
        return (
            f"innfer.Model({self.source!r}, dim={self.dim}, cond_dim={self.cond_dim}, "
            f"layout={self.layout_name}, x_dim={self.x_dim}, y_dim={self.y_dim}, z_dim={self.z_dim})"
        )


class Session:
    """Scratch memory and a random stream for one model (keeps the model alive)."""

    def __init__(self, model: Model, max_batch: int):
        self._lib = model._lib
        self.model = model  # keeps the model alive as long as the session
        self._h = ctypes.c_void_p()
        if max_batch < 0:
            raise Error(STATUS["INVALID_ARGUMENT"], "max_batch must be >= 0")
        st = self._lib.innfer_session_create(model._h, max_batch, ctypes.byref(self._h))
        if st != 0:
            self._h = ctypes.c_void_p()
            raise Error(st, status_string(st))

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is not None and h.value:
            self._lib.innfer_session_free(h)
            self._h = ctypes.c_void_p()

    @property
    def max_batch(self) -> int:
        return self._lib.innfer_session_max_batch(self._h)

    def _check(self, st):
        if st != 0:
            msg = self._lib.innfer_session_last_error(self._h)
            msg = msg.decode(errors="replace") if msg else ""
            raise Error(st, msg or status_string(st))

    def reseed(self, seed: int, stream: int = 0) -> None:
        """Restarts the random stream at (seed, stream); a fresh session is at (0, 0).
        Negative values are taken as their 64-bit two's complement."""
        self._check(self._lib.innfer_session_reseed(self._h, seed & (2**64 - 1), stream & (2**64 - 1)))

    def seek(self, row: int) -> None:
        """Moves the random stream to ``row``: the next sample draws row ``row`` of (seed, stream).
        With ``n`` samples per observation, observation ``j`` owns rows ``j*n ... j*n+n-1``, so
        a worker that handles observations ``j0...`` calls ``seek(j0 * n)`` and draws the
        samples one call over all observations draws for them (``innfer_session_seek``)."""
        if not 0 <= row < 2**64:
            raise Error(STATUS["INVALID_ARGUMENT"], f"row must be in [0, 2**64), got {row}")
        self._check(self._lib.innfer_session_seek(self._h, row))

    def set_threads(self, threads: int) -> None:
        """Splits each call over ``threads`` threads (1: the calling one); the samples do not
        depend on it (``innfer_session_set_threads``)."""
        if threads < 1:
            raise Error(STATUS["INVALID_ARGUMENT"], f"threads must be at least 1, got {threads}")
        self._check(self._lib.innfer_session_set_threads(self._h, threads))

    def sample(self, y, n: int) -> np.ndarray:
        """``n`` posterior samples of x for observation(s) y.

        y 1-D (``[y_dim]``): returns ``[n, x_dim]``. y 2-D (``[rows, y_dim]``): ``n`` samples
        per row, observation by observation (``innfer_sample_batch``): ``[rows*n, x_dim]``.
        """
        m = self.model
        y = _f32(y, "y")
        if n < 0:
            raise Error(STATUS["INVALID_ARGUMENT"], "n must be >= 0")
        if y.ndim == 1:
            if y.shape[0] != m.y_dim:
                raise Error(STATUS["BUFFER_SIZE"], f"y has {y.shape[0]} values, the model's y_dim is {m.y_dim}")
            x = np.empty((n, m.x_dim), dtype=np.float32)
            self._check(self._lib.innfer_sample(self._h, _fptr(y), n, _fptr(x)))
            return x
        if y.ndim == 2:
            if y.shape[1] != m.y_dim:
                raise Error(STATUS["BUFFER_SIZE"], f"y has {y.shape[1]} columns, the model's y_dim is {m.y_dim}")
            rows = y.shape[0]
            x = np.empty((rows * n, m.x_dim), dtype=np.float32)
            self._check(self._lib.innfer_sample_batch(self._h, _fptr(y), rows, n, _fptr(x)))
            return x
        raise Error(STATUS["INVALID_ARGUMENT"], f"y must be 1-D or 2-D, has {y.ndim} dimensions")

    def _pass(self, fn, inp, cond):
        m = self.model
        inp = _f32(inp, "input")
        single = inp.ndim == 1
        if single:
            inp = inp[None, :]
        if inp.ndim != 2 or inp.shape[1] != m.dim:
            raise Error(STATUS["BUFFER_SIZE"], f"input must be [rows, {m.dim}], got shape {inp.shape}")
        rows = inp.shape[0]
        if cond is not None:
            cond = _f32(cond, "cond")
            if cond.ndim == 1:
                # one condition for every row
                cond = np.ascontiguousarray(np.broadcast_to(cond, (rows, cond.shape[0])))
            if cond.ndim != 2 or cond.shape[0] != rows or cond.shape[1] != m.cond_dim:
                raise Error(
                    STATUS["BUFFER_SIZE"], f"cond must be [{rows}, {m.cond_dim}], got shape {cond.shape}"
                )
        elif m.cond_dim != 0:
            raise Error(STATUS["INVALID_ARGUMENT"], f"the model needs a condition of width {m.cond_dim}")
        out = np.empty_like(inp)
        logdet = np.empty(rows, dtype=np.float32)
        mb = self.max_batch
        for r0 in range(0, rows, max(mb, 1)):
            r1 = min(rows, r0 + mb)
            c = _fptr(cond[r0:r1]) if cond is not None else None
            self._check(fn(self._h, _fptr(inp[r0:r1]), c, r1 - r0, _fptr(out[r0:r1]), _fptr(logdet[r0:r1])))
        if single:
            return out[0], logdet[0]
        return out, logdet

    def forward(self, x, cond=None):
        """``(out, logdet)`` = the forward pass on ``x`` ``[rows, dim]`` (or ``[dim]``), with
        ``cond`` ``[rows, cond_dim]`` (or ``[cond_dim]`` for all rows) for conditional models.
        Any number of rows: runs in chunks of ``max_batch``."""
        return self._pass(self._lib.innfer_forward, x, cond)

    def inverse(self, z, cond=None):
        """``(x, logdet)`` = the inverse pass on ``z`` ``[rows, dim]``; as :meth:`forward`."""
        return self._pass(self._lib.innfer_inverse, z, cond)
