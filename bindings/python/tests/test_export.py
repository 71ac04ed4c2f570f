"""The FrEIA exporter. Its PyTorch half reads a live network (tested where torch and FrEIA
are installed, and whenever tests/fixtures/make_fixtures.py writes the fixtures); its NumPy
half writes the file, and is tested here on the committed fixtures' state dicts: what it
writes is byte for byte the file the full exporter wrote, and loads."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, fixture_model, fixture_names, reference

import innfer
from innfer import export


def test_import_innfer_does_not_import_torch():
    code = "import sys, innfer, innfer.export; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_export_freia_without_torch_says_what_is_missing(tmp_path):
    with pytest.raises(ImportError, match=r"needs PyTorch \(pip install torch FrEIA\)"):
        innfer.export_freia(object(), tmp_path / "m.safetensors")
    with pytest.raises(ImportError, match="needs PyTorch"):
        innfer.load_into_freia(object(), fixture_model("pypi_toy_inn"))


def test_the_readme_call_signature():
    import inspect

    assert list(inspect.signature(innfer.export_freia).parameters) == [
        "inn", "path", "layout", "x_stats", "y_stats", "x_bounds", "y_transform"]
    assert innfer.export_freia is export.export_freia


@pytest.mark.parametrize("name", fixture_names())
def test_every_fixture_written_again_from_its_state_dict_is_the_same_file(name, tmp_path):
    written = fixture_model(name)
    m = export.read_model(written)
    out = tmp_path / "model.safetensors"
    meta = export.export_state_dict(m.tensors, m.architecture, out, layout=m.layout,
                                    x_stats=m.x_stats, y_stats=m.y_stats, x_bounds=m.x_bounds,
                                    y_transform=m.y_transform)
    assert out.read_bytes() == written.read_bytes()
    assert meta["innfer.format"] == "1" and meta["innfer.blocks"] == m.architecture["innfer.blocks"]
    # ...and loads, computing what FrEIA computed.
    model = innfer.Model(out)
    ref = reference(name)
    z, _ = model.session(300).forward(ref["x_b257"], ref.get("c_b257"))
    exact = ref["fwd_out_b257_f64"]
    assert np.all(np.abs(z - exact) <= 1e-6 + 1e-5 * np.abs(exact))


def test_restated_statistics_change_the_units_of_the_samples(tmp_path):
    m = export.read_model(fixture_model("pypi_cinn_stats"))
    x_mean, x_std = np.array([0.5, -1.25, 3.0, 0.1]), np.array([2.0, 0.3, 1.7, 0.9])  # float64, as users have them
    out = tmp_path / "restated.safetensors"
    export.export_state_dict(m.tensors, m.architecture, out, layout=m.layout, x_stats=(x_mean, x_std),
                             y_stats=m.y_stats)
    y = [1.5, -0.25]
    old = innfer.Model(fixture_model("pypi_cinn_stats")).session(64, seed=3).sample(y, 50)
    new = innfer.Model(out).session(64, seed=3).sample(y, 50)
    # Same network and y statistics: x' = (x - m) / s * s' + m'.
    m_old, s_old = m.x_stats
    want = (old - m_old) / s_old * x_std + x_mean
    assert np.all(np.abs(new - want) <= 1e-5 * (1 + np.abs(want)))


def refuses(needle, call):
    with pytest.raises(ValueError) as info:
        call()
    assert needle in str(info.value), (needle, str(info.value))


def test_layouts_and_statistics_that_do_not_fit_are_refused(tmp_path):
    m = export.read_model(fixture_model("pypi_cinn_stats"))  # dim 4, cond_dim 2
    arch = m.architecture

    def meta(layout=m.layout, x_stats=None, y_stats=None):
        return export.model_metadata(arch, layout=layout, x_stats=x_stats, y_stats=y_stats)

    refuses("x = 3", lambda: meta({"kind": "cinn", "x": 3, "y": 2}))
    refuses("condition width is 2", lambda: meta({"kind": "cinn", "x": 4, "y": 1}))
    refuses("unknown keys ['z']", lambda: meta({"kind": "cinn", "x": 4, "y": 2, "z": 1}))
    refuses("missing 'y'", lambda: meta({"kind": "cinn", "x": 4}))
    refuses("must be an integer >= 1", lambda: meta({"kind": "cinn", "x": True, "y": 2}))
    refuses("the model is conditional", lambda: meta({"kind": "inn", "x": 2, "pad_x": 2, "z": 2, "pad_zy": 0, "y": 2}))
    refuses("x + pad_x = 3", lambda: meta({"kind": "inn", "x": 2, "pad_x": 1, "z": 2, "pad_zy": 0, "y": 2}))
    refuses("z + pad_zy + y = 5", lambda: meta({"kind": "inn", "x": 2, "pad_x": 2, "z": 2, "pad_zy": 1, "y": 2}))
    refuses("layout none takes no dims", lambda: meta({"kind": "none", "x": 4}))
    refuses("unknown layout kind 'flow'", lambda: meta({"kind": "flow"}))
    refuses("layout must be a dict", lambda: meta("cinn"))
    refuses("need 4 means and stds", lambda: meta(x_stats=(np.zeros(4), np.ones(3))))
    refuses("std must be > 0", lambda: meta(x_stats=(np.zeros(4), np.array([1.0, 0.0, 1.0, 1.0]))))
    refuses("non-finite", lambda: meta(y_stats=(np.array([0.0, np.inf]), np.ones(2))))
    refuses("(mean, std) pair", lambda: meta(x_stats=np.zeros(4)))
    refuses("need a layout", lambda: meta(layout=None, y_stats=(np.zeros(2), np.ones(2))))
    refuses("may not set the format, layout or statistics", lambda: export.model_metadata(
        dict(arch, **{"innfer.layout": "none"})))
    refuses("without innfer.blocks", lambda: export.model_metadata(
        {k: v for k, v in arch.items() if k != "innfer.blocks"}))


# The bounds of docs/format.md §3.1's example: a fraction, a volume fraction, an amplitude
# above 5, a free parameter.
BOUNDS = [(0, 1), (0.005, 0.1), (5, None), (None, None)]


def test_x_bounds_and_clr_are_written_as_the_format_says(tmp_path):
    m = export.read_model(fixture_model("pypi_cinn_stats"))  # x 4, y 2
    out = tmp_path / "bounded.safetensors"
    meta = export.export_state_dict(m.tensors, m.architecture, out, layout=m.layout, x_stats=m.x_stats,
                                    y_stats=m.y_stats, x_bounds=BOUNDS, y_transform="clr")
    assert meta["innfer.x_transform"] == "logit,logit,log,identity"
    assert meta["innfer.x_lower"] == "0.0,0.005,5.0,"
    assert meta["innfer.x_upper"] == "1.0,0.1,,"
    assert meta["innfer.y_transform"] == "clr"
    # Read back as written, and written again byte for byte.
    back = export.read_model(out)
    assert back.x_bounds == [(0.0, 1.0), (0.005, 0.1), (5.0, None), (None, None)]
    assert back.y_transform == "clr"
    again = tmp_path / "again.safetensors"
    export.export_state_dict(*back[:2], again, *back[2:])
    assert again.read_bytes() == out.read_bytes()
    # Bounds alone, no lower or upper where no dimension has one.
    only = export.model_metadata(m.architecture, layout=m.layout, x_bounds=[(None, None), (2, None)] + [(None, None)] * 2)
    assert only["innfer.x_transform"] == "identity,log,identity,identity"
    assert only["innfer.x_lower"] == ",2.0,," and "innfer.x_upper" not in only


def test_a_bounded_clr_model_samples_inside_its_box_from_raw_band_values(tmp_path):
    m = export.read_model(fixture_model("pypi_cinn_stats"))
    out = tmp_path / "bounded.safetensors"
    export.export_state_dict(m.tensors, m.architecture, out, layout=m.layout, x_stats=m.x_stats,
                             y_stats=m.y_stats, x_bounds=BOUNDS, y_transform="clr")
    bands = np.array([0.23, 0.41], dtype=np.float32)
    session = innfer.Model(out).session(256, seed=5)
    x = session.sample(bands, 2000)
    assert np.all((x[:, 0] >= 0) & (x[:, 0] <= 1))
    assert np.all((x[:, 1] >= np.float32(0.005)) & (x[:, 1] <= np.float32(0.1)))
    assert np.all(x[:, 2] >= 5)
    # The same network without the transforms, given clr(bands), samples u = T(x).
    plain = innfer.Model(fixture_model("pypi_cinn_stats")).session(256, seed=5)
    lb = np.log(bands.astype(np.float64))
    u = plain.sample((lb - lb.mean()).astype(np.float32), 2000)
    want = np.column_stack([1 / (1 + np.exp(-u[:, 0])), 0.005 + 0.095 / (1 + np.exp(-u[:, 1])),
                            5 + np.exp(u[:, 2]), u[:, 3]])
    assert np.allclose(x, want, rtol=1e-4, atol=1e-5)


def test_transforms_that_do_not_fit_are_refused():
    m = export.read_model(fixture_model("pypi_cinn_stats"))  # dim 4, cond_dim 2

    def meta(x_bounds=None, y_transform=None, layout=m.layout):
        return export.model_metadata(m.architecture, layout=layout, x_bounds=x_bounds, y_transform=y_transform)

    refuses("need 4 (lower, upper) pairs", lambda: meta(BOUNDS[:3]))
    refuses("x_bounds[1] must be a (lower, upper) pair", lambda: meta([(0, 1), 3, (None, None), (None, None)]))
    refuses("an upper bound alone", lambda: meta([(None, 1)] + BOUNDS[1:]))
    refuses("lower bound must be below the upper", lambda: meta([(1, 1)] + BOUNDS[1:]))
    refuses("lower bound must be below the upper", lambda: meta([(0.1, 0.005)] + BOUNDS[1:]))
    refuses("not a finite float32", lambda: meta([(0, float("nan"))] + BOUNDS[1:]))
    refuses("not a finite float32", lambda: meta([(-float("inf"), 1)] + BOUNDS[1:]))
    refuses("not a finite float32", lambda: meta([(0, 1e39)] + BOUNDS[1:]))
    refuses("not a number", lambda: meta([("0", 1)] + BOUNDS[1:]))
    refuses("upper - lower overflows float32", lambda: meta([(-3e38, 3e38)] + BOUNDS[1:]))
    refuses("x_bounds need a layout", lambda: meta(BOUNDS, layout=None))
    refuses("must be None, 'none' or 'clr'", lambda: meta(y_transform="alr"))
    refuses("needs the layout 'cinn'", lambda: meta(y_transform="clr", layout=None))
    arch1 = dict(m.architecture, **{"innfer.cond_dim": "1"})
    refuses("at least 2 values", lambda: export.model_metadata(
        arch1, layout={"kind": "cinn", "x": 4, "y": 1}, y_transform="clr"))


def test_tensors_that_cannot_be_written_are_refused(tmp_path):
    m = export.read_model(fixture_model("pypi_cinn_stats"))
    out = tmp_path / "m.safetensors"
    bad = dict(m.tensors)
    bad["module_list.3.global_offset"] = bad["module_list.3.global_offset"].copy()
    bad["module_list.3.global_offset"][0, 1] = np.nan
    refuses("module_list.3.global_offset: non-finite value at flat index 1",
            lambda: export.export_state_dict(bad, m.architecture, out, m.layout))
    refuses("unsupported dtype complex64", lambda: export.export_state_dict(
        dict(m.tensors, extra=np.zeros(2, np.complex64)), m.architecture, out, m.layout))
    assert not out.exists()


def test_the_earlier_module_name_still_imports():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import innfer_export as ie; "
            "print(ie.export_freia.__module__, sorted(ie.__all__) == sorted(__import__('innfer.export').export.__all__))")
    out = subprocess.run([sys.executable, "-c", code, str(REPO / "bindings" / "python")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["innfer.export", "True"]


def test_a_freia_network_exports_and_loads(tmp_path):
    """With torch and FrEIA installed: export, load, and compute what FrEIA computes."""
    torch = pytest.importorskip("torch")
    Ff = pytest.importorskip("FrEIA.framework")
    Fm = pytest.importorskip("FrEIA.modules")
    torch.manual_seed(0)

    def subnet(c_in, c_out):
        return torch.nn.Sequential(torch.nn.Linear(c_in, 32), torch.nn.ReLU(), torch.nn.Linear(32, c_out))

    inn = Ff.SequenceINN(4)
    for _ in range(3):
        inn.append(Fm.AllInOneBlock, cond=0, cond_shape=(2,), subnet_constructor=subnet, permute_soft=True)
    inn.append(Fm.GLOWCouplingBlock, cond=0, cond_shape=(2,), subnet_constructor=subnet)
    inn.append(Fm.PermuteRandom, seed=1)
    x_mean, x_std = np.array([1.0, -2.0, 0.5, 0.0]), np.array([2.0, 0.5, 1.0, 3.0])
    path = tmp_path / "model.safetensors"
    meta = innfer.export_freia(inn, path, layout={"kind": "cinn", "x": 4, "y": 2}, x_stats=(x_mean, x_std))
    assert meta["innfer.blocks"] == "5"
    x = np.random.default_rng(1).normal(size=(100, 4)).astype(np.float32)
    c = np.random.default_rng(2).normal(size=(100, 2)).astype(np.float32)
    with torch.no_grad():
        xs = torch.from_numpy(((x - x_mean) / x_std).astype(np.float32))
        z, logdet = inn(xs, c=[torch.from_numpy(c)])
    got_z, got_logdet = innfer.Model(path).session(128).forward(x, c)
    assert np.allclose(got_z, z.numpy(), rtol=1e-4, atol=1e-5)
    assert np.allclose(got_logdet, logdet.numpy() - np.log(x_std).sum(), rtol=1e-4, atol=1e-4)
    again = Ff.SequenceINN(4)
    for _ in range(3):
        again.append(Fm.AllInOneBlock, cond=0, cond_shape=(2,), subnet_constructor=subnet, permute_soft=True)
    again.append(Fm.GLOWCouplingBlock, cond=0, cond_shape=(2,), subnet_constructor=subnet)
    again.append(Fm.PermuteRandom, seed=1)
    innfer.load_into_freia(again, path)
    with torch.no_grad():
        assert torch.equal(again(xs, c=[torch.from_numpy(c)])[0], z)
