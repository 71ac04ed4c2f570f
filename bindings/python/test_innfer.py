"""Checks of the ctypes binding (bindings/python/innfer.py) against the committed fixtures.

    python3 bindings/python/test_innfer.py            # needs numpy and libinnfer.so (see innfer.py)

Run by `cargo test --test bindings_python`, which sets INNFER_LIB to the library it built and
INNFER_RUST_SAMPLES to a file of samples the Rust API drew (then they must agree bit for bit).
No torch needed: reference.safetensors is read with safetensors.numpy if installed, else by a
small pure-Python reader.
"""

import json
import os
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import innfer  # noqa: E402

FIXTURES = HERE.parent.parent / "tests" / "fixtures"
RTOL, ATOL = 1e-5, 1e-6  # as tests/freia_parity.rs

_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path):
    """{name: ndarray} of a .safetensors file: 8-byte LE header length, JSON header, data."""
    try:
        from safetensors.numpy import load_file

        return dict(load_file(str(path)))
    except ImportError:
        pass
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        dt = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"]).astype(dt.newbyteorder("="))
    return out


failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def worst(got, want):
    got = np.asarray(got, dtype=np.float32)
    want = np.asarray(want, dtype=np.float32)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.max(np.abs(got - want) / (ATOL + RTOL * np.abs(want)))) if got.size else 0.0


def check_parity(name, max_batch):
    """forward/inverse equal FrEIA's reference (chunked when rows > max_batch)."""
    d = FIXTURES / name
    model = innfer.Model(d / "model.safetensors")
    ref = read_safetensors(d / "reference.safetensors")
    s = model.session(max_batch)
    for b in ("b1", "b257"):
        x = ref[f"x_{b}"]
        c = ref.get(f"c_{b}")
        out, ld = s.forward(x, cond=c)
        r = max(worst(out, ref[f"fwd_out_{b}"]), worst(ld, ref[f"fwd_logdet_{b}"]))
        check(r <= 1.0, f"{name} {b} max_batch {max_batch}: forward off by {r:.2f}x tolerance")
        xi, ldi = s.inverse(ref[f"inv_in_{b}"], cond=c)
        r = max(worst(xi, ref[f"inv_out_{b}"]), worst(ldi, ref[f"inv_logdet_{b}"]))
        check(r <= 1.0, f"{name} {b} max_batch {max_batch}: inverse off by {r:.2f}x tolerance")
        check(out.dtype == np.float32 and out.shape == x.shape, f"{name}: forward output shape/dtype")
        check(ld.shape == (x.shape[0],), f"{name}: logdet shape")
    return model


def main():
    print("libinnfer:", innfer.library_path(), "version", innfer.version())
    check(innfer.version() == "0.1.0", "version string")

    # 1. FrEIA parity through the binding, unchunked and chunked, float64 input converted.
    for name in ("pypi_cinn_stats", "pypi_toy_inn", "pypi_rnvp_tanh", "head_coupling_cond"):
        if (FIXTURES / name).is_dir():
            check_parity(name, 257)
            check_parity(name, 100)
    cinn = innfer.Model(FIXTURES / "pypi_cinn_stats" / "model.safetensors")
    check((cinn.dim, cinn.cond_dim, cinn.x_dim, cinn.y_dim, cinn.z_dim) == (4, 2, 4, 2, 4), "cinn dims")
    check(cinn.layout == innfer.LAYOUT_CINN, "cinn layout")
    toy = innfer.Model(FIXTURES / "pypi_toy_inn" / "model.safetensors")
    check((toy.dim, toy.cond_dim, toy.x_dim, toy.y_dim, toy.z_dim) == (8, 0, 2, 4, 2), "toy dims")
    check(toy.layout == innfer.LAYOUT_INN, "toy layout")

    # float64 and non-contiguous input give the same as float32 contiguous
    ref = read_safetensors(FIXTURES / "pypi_cinn_stats" / "reference.safetensors")
    s = cinn.session(64)
    x64 = ref["x_b257"].astype(np.float64)
    a, la = s.forward(ref["x_b257"], ref["c_b257"])
    b, lb = s.forward(np.asfortranarray(x64), ref["c_b257"].astype(np.float64))
    check(np.array_equal(a, b) and np.array_equal(la, lb), "forward: float64 / Fortran-order input")
    one, lone = s.forward(ref["x_b257"][3], ref["c_b257"][3])
    check(one.shape == (4,) and np.array_equal(one, a[3]) and lone == la[3], "forward: 1-D row")

    # 2. Sampling: reproducible, reseed, batch = successive calls, from bytes = from file.
    y = np.array([1.5, -0.25])
    s1 = cinn.session(256)
    x1 = s1.sample(y, 1000)
    check(x1.shape == (1000, 4) and x1.dtype == np.float32, "sample shape")
    check(np.all(np.isfinite(x1)), "sample finite")
    x2 = cinn.session(256, seed=0).sample(y, 1000)
    check(np.array_equal(x1, x2), "same seed, same samples")
    s1.reseed(0, 0)
    check(np.array_equal(s1.sample(y, 1000), x1), "reseed(0, 0) restarts the stream")
    x3 = cinn.session(256, seed=1).sample(y, 1000)
    check(not np.array_equal(x1, x3), "another seed, other samples")
    x4 = cinn.session(256, seed=0, stream=1).sample(y, 1000)
    check(not np.array_equal(x1, x4), "another stream, other samples")
    sa = cinn.session(100)  # chunking inside the library: same numbers
    parts = np.concatenate([sa.sample(y, 300), sa.sample(y, 700)])
    check(np.array_equal(parts, x1), "sample split over calls and max_batch 100 = one call")
    ys = np.array([[1.5, -0.25], [0.0, 2.0], [-1.0, 0.5]], dtype=np.float32)
    sb = cinn.session(256, seed=5)
    xb = sb.sample(ys, 50)
    check(xb.shape == (150, 4), "sample_batch shape")
    sc = cinn.session(256, seed=5)
    xs = np.concatenate([sc.sample(row, 50) for row in ys])
    check(np.array_equal(xb, xs), "sample_batch = successive sample calls")
    mb = innfer.Model.from_bytes((FIXTURES / "pypi_cinn_stats" / "model.safetensors").read_bytes())
    check(np.array_equal(mb.session(256).sample(y, 1000), x1), "model from bytes samples like from file")
    xt = toy.session(256).sample(np.array([0.5, -1.0, 0.25, 2.0]), 500)
    check(xt.shape == (500, 2) and np.all(np.isfinite(xt)), "toy inn sample")

    rust = os.environ.get("INNFER_RUST_SAMPLES")
    if rust:
        want = np.fromfile(rust, dtype=np.float32).reshape(1000, 4)
        check(np.array_equal(x1.view(np.uint32), want.view(np.uint32)), "samples = the Rust API's, bit for bit")
        print("compared with the Rust API's samples:", rust)

    # 3. Errors.
    try:
        innfer.Model(FIXTURES / "does_not_exist.safetensors")
        check(False, "missing file must raise")
    except innfer.Error as e:
        check(e.status == innfer.STATUS["IO"], f"missing file: status {e.status}, want IO")
        check(len(e.message) > 0, "missing file: a message")
    with tempfile.NamedTemporaryFile(suffix=".safetensors", delete=False) as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
        bad = f.name
    try:
        innfer.Model(bad)
        check(False, "garbage must raise")
    except innfer.Error as e:
        check(e.status == innfer.STATUS["FORMAT"], f"garbage file: status {e.status} ({e}), want FORMAT")
    finally:
        os.unlink(bad)
    try:
        s1.sample(np.zeros(3), 10)
        check(False, "wrong y width must raise")
    except innfer.Error as e:
        check(e.status == innfer.STATUS["BUFFER_SIZE"], "wrong y width: BUFFER_SIZE")
    try:
        s1.forward(ref["x_b1"])  # conditional model without a condition
        check(False, "missing condition must raise")
    except innfer.Error:
        pass
    nolayout = innfer.Model(FIXTURES / "pypi_rnvp_tanh" / "model.safetensors")
    check(nolayout.layout == innfer.LAYOUT_NONE, "rnvp has no layout")
    try:
        nolayout.session(8).sample(np.zeros(0), 10)
        check(False, "sampling without a layout must raise")
    except innfer.Error as e:
        check(e.status == innfer.STATUS["NO_LAYOUT"], f"no layout: status {e.status} ({e}), want NO_LAYOUT")
        check(len(e.message) > 0, "no layout: a message from innfer_session_last_error")
    # the session still works after a failed call
    s1.reseed(0, 0)
    check(np.array_equal(s1.sample(y, 1000), x1), "session usable after an error")

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all Python binding checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
