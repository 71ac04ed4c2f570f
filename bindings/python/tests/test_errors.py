"""Every way a call of the package can fail: one exception class, innfer.Error, with the
library's status and a message that says what is wrong."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import MODELS, fixture_model

import innfer
from innfer import _safetensors

STATUS = innfer.STATUS


def fails(status, call, *needles):
    with pytest.raises(innfer.Error) as info:
        call()
    e = info.value
    assert e.status == STATUS[status], f"{e} (expected {status})"
    assert e.status_name == status
    for needle in needles:
        assert needle in e.message, (needle, e.message)
    assert str(e).startswith(f"innfer error {STATUS[status]} ({status}): ")
    return e


def test_the_error_carries_status_and_message():
    e = innfer.Error(STATUS["TENSOR"], "tensor `a` is missing")
    assert (e.status, e.message, e.status_name) == (6, "tensor `a` is missing", "TENSOR")
    assert e.args == (6, "tensor `a` is missing")
    assert innfer.Error(99, "?").status_name == "UNKNOWN"
    assert innfer.STATUS_NO_LAYOUT == STATUS["NO_LAYOUT"] == 13
    assert "layout" in innfer.status_string(STATUS["NO_LAYOUT"])


# ---- loading ----------------------------------------------------------------------------


def altered(tmp_path, name, change):
    """A copy of a fixture's model file with ``change(tensors, metadata)`` applied."""
    tensors, meta = _safetensors.read(fixture_model(name))
    change(tensors, meta)
    path = tmp_path / "altered.safetensors"
    _safetensors.write(path, tensors, meta)
    return path


def test_a_missing_file():
    fails("IO", lambda: innfer.Model(MODELS / "does_not_exist.safetensors"), "does_not_exist.safetensors")


def test_a_file_that_is_not_safetensors(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    fails("FORMAT", lambda: innfer.Model(bad))
    fails("FORMAT", lambda: innfer.Model.from_bytes(b"\x00\x01"))


def test_metadata_that_cannot_be_understood(tmp_path):
    path = altered(tmp_path, "pypi_cinn_stats", lambda t, m: m.update({"innfer.format": "2"}))
    fails("METADATA", lambda: innfer.Model(path), "innfer.format")


def test_a_missing_or_broken_tensor(tmp_path):
    path = altered(tmp_path, "pypi_cinn_stats", lambda t, m: t.pop("module_list.1.subnet1.0.weight"))
    fails("TENSOR", lambda: innfer.Model(path), "module_list.1.subnet1.0.weight")

    def nan(t, m):
        t["module_list.0.global_scale"] = t["module_list.0.global_scale"].copy()
        t["module_list.0.global_scale"][0, 2] = np.nan

    fails("TENSOR", lambda: innfer.Model(altered(tmp_path, "pypi_cinn_stats", nan)), "global_scale")


def test_an_unknown_block(tmp_path):
    path = altered(tmp_path, "pypi_cinn_stats", lambda t, m: m.update({"innfer.block.2.type": "Conv1dBlock"}))
    fails("UNSUPPORTED", lambda: innfer.Model(path), "Conv1dBlock")


def test_dimensions_that_do_not_chain(tmp_path):
    path = altered(tmp_path, "pypi_cinn_stats", lambda t, m: m.update({"innfer.layout.x": "3"}))
    fails("DIMS", lambda: innfer.Model(path))


# ---- sessions and calls -----------------------------------------------------------------


@pytest.fixture(scope="module")
def cinn():
    return innfer.Model(fixture_model("pypi_cinn_stats"))  # dim 4, cond_dim 2, x 4, y 2


def test_session_sizes(cinn):
    fails("INVALID_ARGUMENT", lambda: cinn.session(max_batch=0), "max_batch must be >= 1, got 0")
    fails("INVALID_ARGUMENT", lambda: cinn.session(max_batch=-1), "max_batch must be >= 1, got -1")
    fails("INVALID_ARGUMENT", lambda: cinn.session(max_batch=2.5), "max_batch must be an integer")
    fails("INVALID_ARGUMENT", lambda: cinn.session(max_batch=2**62),  # more than memory can address
          f"innfer_session_create(max_batch = {2**62}): invalid argument: a session of max_batch rows is "
          "too large to address")
    fails("INVALID_ARGUMENT", lambda: cinn.session(max_batch=2**64), "too large")


def test_sampling_arguments(cinn):
    s = cinn.session(16)
    fails("BUFFER_SIZE", lambda: s.sample(np.zeros(3), 10), "y has 3 values per row", "y_dim is 2")
    fails("BUFFER_SIZE", lambda: s.sample(np.zeros((4, 3)), 10), "y has 3 values per row")
    fails("BUFFER_SIZE", lambda: s.sample(np.zeros((1, 1, 2)), 10), "got shape (1, 1, 2)")
    fails("INVALID_ARGUMENT", lambda: s.sample([1.0, 2.0], -1), "n must be >= 0")
    fails("INVALID_ARGUMENT", lambda: s.sample([1.0, 2.0], 10.0), "n must be an integer")
    fails("INVALID_ARGUMENT", lambda: s.sample(np.array([1 + 2j, 0]), 10), "complex128")
    fails("INVALID_ARGUMENT", lambda: s.sample(["a", "b"], 10), "real numbers")
    fails("INVALID_ARGUMENT", lambda: s.sample(np.array([None, 1.0]), 10), "object")
    fails("INVALID_ARGUMENT", lambda: s.reseed(2**64), "seed must fit in 64 bits")
    fails("INVALID_ARGUMENT", lambda: s.reseed(0, -(2**63) - 1), "stream must fit in 64 bits")
    fails("INVALID_ARGUMENT", lambda: s.reseed("1"), "seed must be an integer")


def test_sampling_a_model_without_a_layout():
    s = innfer.Model(fixture_model("pypi_rnvp_tanh")).session(8)
    fails("NO_LAYOUT", lambda: s.sample(np.zeros(0), 10), "no sampling layout")


def test_pass_arguments(cinn):
    s = cinn.session(16)
    x, c = np.zeros((5, 4)), np.zeros((5, 2))
    for call in (s.forward, s.inverse):
        fails("BUFFER_SIZE", lambda: call(np.zeros((5, 3)), c), "must be [rows, 4] or [4], got shape (5, 3)")
        fails("BUFFER_SIZE", lambda: call(np.zeros(3), c[0]), "got shape (3,)")
        fails("BUFFER_SIZE", lambda: call(np.zeros((2, 5, 4)), c), "got shape (2, 5, 4)")
        fails("INVALID_ARGUMENT", lambda: call(x), "needs a condition of width 2")
        fails("BUFFER_SIZE", lambda: call(x, np.zeros((4, 2))), "cond must be [5, 2] or [2], got shape (4, 2)")
        fails("BUFFER_SIZE", lambda: call(x, np.zeros(3)), "got shape (3,)")
        fails("INVALID_ARGUMENT", lambda: call(x.astype(np.complex64), c), "x" if call == s.forward else "z")
    toy = innfer.Model(fixture_model("pypi_toy_inn")).session(16)
    fails("INVALID_ARGUMENT", lambda: toy.forward(np.zeros((2, 8)), np.zeros((2, 1))), "takes no condition")


def test_a_session_works_after_a_failed_call(cinn):
    s = cinn.session(16, seed=3)
    want = cinn.session(16, seed=3).sample([0.5, 0.5], 40)
    with pytest.raises(innfer.Error):
        s.sample(np.zeros(5), 10)
    assert np.array_equal(s.sample([0.5, 0.5], 40), want)


# ---- the library ------------------------------------------------------------------------


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, **env), cwd=os.path.dirname(__file__))


def test_a_library_that_is_not_there(tmp_path):
    r = run_python("import innfer; innfer.version()", INNFER_LIB=str(tmp_path / "nothing.so"))
    assert r.returncode != 0 and "OSError: libinnfer not found" in r.stderr and "INNFER_LIB" in r.stderr
    not_a_library = tmp_path / "libinnfer.so"
    not_a_library.write_text("not a shared library")
    r = run_python("import innfer; innfer.version()", INNFER_LIB=str(tmp_path))
    assert r.returncode != 0 and "libinnfer not found" in r.stderr and str(not_a_library) in r.stderr
