"""Sampling, forward and inverse passes through the package: the Rust API's numbers, bit for
bit, for any array layout the caller has."""

import threading

import numpy as np
import pytest
from conftest import MODELS, SHIPPED, fixture_model, fixture_names, reference

import innfer


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("name", sorted(SHIPPED))
@pytest.mark.parametrize("seed,stream", [(42, 0), (0, 0), (7, 3)])
def test_shipped_models_sample_the_rust_apis_bits(name, seed, stream, rust_samples):
    path = MODELS / f"{name}.safetensors"
    y = SHIPPED[name]
    session = innfer.Model(path).session(max_batch=256, seed=seed, stream=stream)
    x = session.sample(y, 1000)
    assert x.dtype == np.float32 and x.shape == (1000, innfer.Model(path).x_dim)
    np.testing.assert_array_equal(bits(x), bits(rust_samples(path, y, 1000, seed, stream)))


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_several_observations_sample_observation_by_observation_like_the_rust_api(name, rust_samples):
    path = MODELS / f"{name}.safetensors"
    rng = np.random.default_rng(5)
    ys = np.stack([SHIPPED[name], rng.permutation(SHIPPED[name]), SHIPPED[name] * 0.5])
    x = innfer.Model(path).session(max_batch=100, seed=11).sample(ys, 300)
    assert x.shape == (900, innfer.Model(path).x_dim)
    np.testing.assert_array_equal(bits(x), bits(rust_samples(path, ys, 300, 11, 0)))


def test_samples_depend_on_seed_and_stream_only():
    model = innfer.Model(MODELS / "kinematics.safetensors")
    y = SHIPPED["kinematics"]
    first = model.session(256, seed=3).sample(y, 1000)
    assert np.array_equal(model.session(256, seed=3).sample(y, 1000), first)
    assert not np.array_equal(model.session(256, seed=4).sample(y, 1000), first)
    assert not np.array_equal(model.session(256, seed=3, stream=1).sample(y, 1000), first)
    # Split over calls and sessions of other sizes: the same rows of the same stream.
    small = model.session(37, seed=3)
    assert np.array_equal(np.concatenate([small.sample(y, 300), small.sample(y, 700)]), first)
    # reseed restarts the stream; negative numbers are their 64-bit two's complement.
    small.reseed(3)
    assert np.array_equal(small.sample(y, 1000), first)
    small.reseed(-1, -2)
    assert np.array_equal(small.sample(y, 10), model.session(8, seed=2**64 - 1, stream=2**64 - 2).sample(y, 10))
    # A model from the file's bytes is the same model.
    from_bytes = innfer.Model.from_bytes((MODELS / "kinematics.safetensors").read_bytes())
    assert np.array_equal(from_bytes.session(256, seed=3).sample(y, 1000), first)


def test_observations_in_any_layout_and_real_dtype_give_the_same_samples():
    model = innfer.Model(MODELS / "kinematics.safetensors")
    ys = np.array([[1.5, 0.0], [0.25, -1.0], [-0.5, 2.0]], dtype=np.float32)
    want = model.session(64, seed=9).sample(ys, 50)
    wide = np.zeros((3, 5), dtype=np.float32)
    wide[:, 1:3] = ys
    for what, same in [
        ("Fortran order", np.asfortranarray(ys)),
        ("float64", ys.astype(np.float64)),
        ("a list", ys.tolist()),
        ("columns of a wider array", wide[:, 1:3]),
        ("every other row of a longer array", np.repeat(ys, 2, axis=0)[::2]),
        ("rows reversed twice", ys[::-1][::-1]),
    ]:
        got = model.session(64, seed=9).sample(same, 50)
        assert np.array_equal(bits(got), bits(want)), what
    # One observation as [y_dim] or as [1, y_dim].
    one = model.session(64, seed=9).sample(ys[0], 50)
    assert np.array_equal(one, model.session(64, seed=9).sample(ys[:1], 50))


def test_the_inn_layout_samples_x_from_z_and_y():
    toy = innfer.Model(fixture_model("pypi_toy_inn"))
    assert (toy.dim, toy.cond_dim, toy.x_dim, toy.y_dim, toy.z_dim) == (8, 0, 2, 4, 2)
    assert toy.layout == innfer.LAYOUT_INN and toy.layout_name == "inn"
    x = toy.session(256).sample([0.5, -1.0, 0.25, 2.0], 500)
    assert x.shape == (500, 2) and np.all(np.isfinite(x))


def test_model_describes_itself():
    cinn = innfer.Model(fixture_model("pypi_cinn_stats"))
    assert (cinn.dim, cinn.cond_dim, cinn.x_dim, cinn.y_dim, cinn.z_dim) == (4, 2, 4, 2, 4)
    assert cinn.layout == innfer.LAYOUT_CINN and cinn.layout_name == "cinn"
    assert cinn.block_count == 4
    assert "layout=cinn" in repr(cinn) and "pypi_cinn_stats" in repr(cinn)
    session = cinn.session(max_batch=77)
    assert session.max_batch == 77 and session.model is cinn


def tolerance(exact):
    return 1e-6 + 1e-5 * np.abs(exact)


@pytest.mark.parametrize("name", fixture_names())
def test_forward_and_inverse_agree_with_freia_on_every_fixture(name):
    model = innfer.Model(fixture_model(name))
    ref = reference(name)
    session = model.session(max_batch=64)  # 257 rows: five library calls
    cond = ref.get("c_b257")
    out, logdet = session.forward(ref["x_b257"], cond=cond)
    x, inv_logdet = session.inverse(ref["inv_in_b257"], cond=cond)
    # Within the tolerance of the exact (float64) answer that the Rust parity tests use
    # (tests/freia_parity.rs), doubled against FrEIA's own float32 run.
    for got, key in [(out, "fwd_out_b257"), (logdet, "fwd_logdet_b257"), (x, "inv_out_b257"),
                     (inv_logdet, "inv_logdet_b257")]:
        exact = ref[key + "_f64"]
        assert np.all(np.abs(got - exact) <= tolerance(exact)), key
        assert np.all(np.abs(got - ref[key]) <= 2 * tolerance(ref[key])), key
    back, _ = session.inverse(out, cond=cond)  # the bound of tests/freia_parity.rs
    assert np.all(np.abs(back - ref["x_b257"]) <= 1e-5 * (1 + np.abs(ref["x_b257"]))), "inverse(forward(x))"


def test_forward_and_inverse_take_any_layout_and_give_the_same_bits():
    model = innfer.Model(fixture_model("pypi_cinn_stats"))
    ref = reference("pypi_cinn_stats")
    x, c = ref["x_b257"], ref["c_b257"]
    session = model.session(max_batch=300)
    want = session.forward(x, c), session.inverse(x, c)
    wide = np.zeros((257, 7), dtype=np.float32)
    wide[:, 2:6] = x
    layouts = [
        ("Fortran order", np.asfortranarray(x), c),
        ("float64", x.astype(np.float64), np.asfortranarray(c.astype(np.float64))),
        ("columns of a wider array", wide[:, 2:6], c),
        ("rows reversed (negative stride, copied)", x[::-1].copy()[::-1], c),
        ("lists", x.tolist(), c.tolist()),
    ]
    chunked = model.session(max_batch=50)
    for what, xs, cs in layouts:
        for s in (session, chunked):
            for got, expected in zip((s.forward(xs, cs), s.inverse(xs, cs)), want):
                assert np.array_equal(bits(got[0]), bits(expected[0])), what
                assert np.array_equal(bits(got[1]), bits(expected[1])), what


def test_one_condition_for_every_row():
    model = innfer.Model(MODELS / "kinematics.safetensors")
    x = model.session(256, seed=1).sample([1.5, 0.0], 600)
    session = model.session(256)
    z, logdet = session.forward(x, cond=[1.5, 0.0])
    z_tiled, logdet_tiled = session.forward(x, cond=np.tile([1.5, 0.0], (600, 1)))
    assert np.array_equal(bits(z), bits(z_tiled)) and np.array_equal(bits(logdet), bits(logdet_tiled))


def test_one_row_in_one_row_out():
    model = innfer.Model(fixture_model("pypi_cinn_stats"))
    ref = reference("pypi_cinn_stats")
    session = model.session(8)
    out, logdet = session.forward(ref["x_b257"], ref["c_b257"])
    one, one_logdet = session.forward(ref["x_b257"][3], ref["c_b257"][3])
    assert one.shape == (4,) and np.ndim(one_logdet) == 0
    assert np.array_equal(bits(one), bits(out[3])) and bits(one_logdet) == bits(logdet[3])
    empty, empty_logdet = session.forward(np.zeros((0, 4)), np.zeros((0, 2)))
    assert empty.shape == (0, 4) and empty_logdet.shape == (0,)


def test_sessions_in_threads_and_one_session_shared():
    model = innfer.Model(MODELS / "kinematics.safetensors")
    y = SHIPPED["kinematics"]
    want = model.session(256, seed=5).sample(y, 20000)
    z_want, _ = model.session(256).forward(want, y)
    results, shared = {}, model.session(128)

    def own(i):
        results[("own", i)] = model.session(256, seed=5).sample(y, 20000)

    def borrowed(i):
        results[("shared", i)] = shared.forward(want, y)[0]  # calls wait for each other

    threads = [threading.Thread(target=f, args=(i,)) for i in range(3) for f in (own, borrowed)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (kind, i), got in results.items():
        assert np.array_equal(bits(got), bits(want if kind == "own" else z_want)), (kind, i)
