"""Session.summarize: the mean, standard deviation and order statistics of the samples the
session draws, without handing them out — bit for bit the definitions applied to the samples of
``Session.sample`` and of the Rust API, in one pass or in several."""

import math

import numpy as np
import pytest
from conftest import MODELS, SHIPPED, fixture_model

import innfer

QUANTILES = [0.0, 0.025, 0.1, 0.5, 0.9, 0.975, 1.0]


def rank(q, n):
    """max(1, ceil(q n)) with q n in float64, a product within q's float32 rounding above a
    whole number counting as that number (0.1 of 10 samples is the first)."""
    t = float(np.float32(q)) * n
    k = math.floor(t) if t - math.floor(t) <= t * 2.0**-24 else math.ceil(t)
    return min(max(k, 1), n)


def reduce(x, rows, n, quantiles):
    """The definitions applied to samples ``[rows * n, x_dim]`` drawn observation by
    observation: float64 sums in sample order (cumsum, not numpy's pairwise sum)."""
    x = x.reshape(rows, n, -1)
    wide = x.astype(np.float64)
    mean = np.cumsum(wide, axis=1)[:, -1] / n
    squares = np.cumsum((wide - mean[:, None, :]) ** 2, axis=1)[:, -1]
    std = np.sqrt(squares / (n - 1)) if n > 1 else np.zeros_like(squares)
    ordered = np.sort(x, axis=1)
    values = np.stack([ordered[:, rank(q, n) - 1, :] for q in quantiles], axis=1)
    return mean.astype(np.float32), std.astype(np.float32), values.reshape(rows, len(quantiles), -1)


def same_bits(a, b):
    return a.shape == b.shape and np.array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32))


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_summaries_are_those_of_the_rust_apis_samples(name, rust_samples):
    path = MODELS / f"{name}.safetensors"
    ys = np.stack([SHIPPED[name], SHIPPED[name][::-1], 0.5 * SHIPPED[name]])
    s = innfer.Model(path).session(max_batch=256, seed=7).summarize(ys, 100, QUANTILES)
    want = reduce(rust_samples(path, ys, 100, 7, 0), 3, 100, QUANTILES)
    for got, expected in zip(s[:3], want):
        assert same_bits(got, expected)
    assert s.invalid_rows == 0 and s.quantiles.shape == (3, len(QUANTILES), innfer.Model(path).x_dim)


@pytest.mark.parametrize("max_batch", [7, 100, 4096])
def test_summaries_in_one_pass_or_in_passes_are_the_same_bits(max_batch):
    model = innfer.Model(fixture_model("pypi_cinn_stats"))
    ys = np.array([[1.5, -0.25], [0.0, 2.0], [-1.0, 0.5]], dtype=np.float32)
    x = model.session(512, seed=3, stream=2).sample(ys, 300)
    want = reduce(x, 3, 300, QUANTILES)
    session = model.session(max_batch, seed=3, stream=2)
    s = session.summarize(ys, 300, QUANTILES)
    for got, expected in zip(s[:3], want):
        assert same_bits(got, expected)
    # The stream moved on by 3 × 300 rows, as sampling would have moved it.
    after = model.session(512, seed=3, stream=2)
    after.seek(900)
    assert same_bits(session.sample(ys[0], 5), after.sample(ys[0], 5))


def test_one_observation_and_no_quantiles():
    model = innfer.Model(MODELS / "kinematics.safetensors")
    y = SHIPPED["kinematics"]
    s = model.session(64, seed=1).summarize(y, 50, [0.5])
    assert s.mean.shape == (4,) and s.std.shape == (4,) and s.quantiles.shape == (1, 4)
    both = model.session(64, seed=1).summarize([y], 50, [0.5])
    assert same_bits(s.mean, both.mean[0]) and same_bits(s.quantiles, both.quantiles[0])
    bare = model.session(64, seed=1).summarize(y, 50)
    assert bare.quantiles.shape == (0, 4) and same_bits(bare.std, s.std)
    one = model.session(64, seed=1).summarize(y, 1, QUANTILES)
    assert np.all(one.std == 0) and np.all(one.quantiles == one.mean)


def test_observations_that_are_not_finite_get_nan():
    model = innfer.Model(fixture_model("pypi_cinn_stats"))
    ys = np.array([[1.5, -0.25], [np.nan, 2.0], [-1.0, np.inf]], dtype=np.float32)
    for max_batch in (8, 512):
        s = model.session(max_batch, seed=4).summarize(ys, 40, [0.5])
        assert s.invalid_rows == 2
        assert np.all(np.isnan(s.mean[1:])) and np.all(np.isnan(s.quantiles[1:]))
        clean = model.session(max_batch, seed=4).summarize(ys[:1], 40, [0.5])
        assert same_bits(s.mean[:1], clean.mean) and same_bits(s.std[:1], clean.std)


def fails(status, call, *needles):
    with pytest.raises(innfer.Error) as info:
        call()
    assert info.value.status == innfer.STATUS[status], info.value
    for needle in needles:
        assert needle in info.value.message, info.value


def test_bad_arguments():
    session = innfer.Model(fixture_model("pypi_cinn_stats")).session(16)
    fails("INVALID_ARGUMENT", lambda: session.summarize([1.0, 2.0], 0), "n must be >= 1")
    fails("INVALID_ARGUMENT", lambda: session.summarize([1.0, 2.0], 10, [0.5, 1.5]), "quantiles:")
    fails("INVALID_ARGUMENT", lambda: session.summarize([1.0, 2.0], 10, [np.nan]), "quantiles:")
    fails("BUFFER_SIZE", lambda: session.summarize([1.0, 2.0, 3.0], 10), "y must be [2]")
    fails("BUFFER_SIZE", lambda: session.summarize([1.0, 2.0], 10, [[0.5]]), "quantiles must be")
    plain = innfer.Model(fixture_model("pypi_rnvp_tanh")).session(4)
    fails("NO_LAYOUT", lambda: plain.summarize(np.zeros(0), 10), "no sampling layout")
