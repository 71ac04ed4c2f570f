"""Shared by the tests of the `innfer` package: where the repository's models and fixtures
are, and samples drawn by the Rust API for comparison.

Run from the repository, after installing the package (`pip install ./bindings/python`):

    python -m pytest bindings/python/tests

The Rust API's samples come from the `innfer sample` command (cli/, which calls
`Session::sample`): `$INNFER_CLI`, else `target/release/innfer` or `target/debug/innfer` of
the repository (`cargo build --release -p innfer-cli` makes it).
"""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from innfer import _safetensors

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures"
MODELS = REPO / "models"
# The shipped models: (file, an observation y of the right width).
SHIPPED = {
    "gmm8_some": np.eye(8, dtype=np.float32)[0],
    "kinematics": np.array([1.5, 0.0], dtype=np.float32),
}


def fixture_model(name: str) -> Path:
    return FIXTURES / name / "model.safetensors"


def reference(name: str) -> dict:
    """The inputs and FrEIA's outputs of a parity fixture (tests/fixtures/README.md)."""
    return _safetensors.read(FIXTURES / name / "reference.safetensors")[0]


def fixture_names() -> list:
    return sorted(p.parent.name for p in FIXTURES.glob("*/model.safetensors"))


@pytest.fixture(scope="session")
def rust_cli() -> Path:
    env = os.environ.get("INNFER_CLI")
    candidates = [Path(env)] if env else [REPO / "target" / p / "innfer" for p in ("release", "debug")]
    for c in candidates:
        if c.is_file():
            return c
    pytest.fail("the Rust API's samples come from the innfer command line, which is not built: "
                "cargo build --release -p innfer-cli (or set INNFER_CLI); tried "
                + ", ".join(map(str, candidates)))


@pytest.fixture
def rust_samples(rust_cli, tmp_path):
    """``rust_samples(model, ys, n, seed, stream)``: what the Rust API draws, ``[rows·n, x_dim]``."""

    def draw(model: Path, ys: np.ndarray, n: int, seed: int = 0, stream: int = 0) -> np.ndarray:
        y_file, x_file = tmp_path / "y.npy", tmp_path / "x.npy"
        np.save(y_file, np.atleast_2d(np.asarray(ys, dtype=np.float32)))
        subprocess.run([str(rust_cli), "sample", str(model), "--y", str(y_file), "-n", str(n),
                        "--seed", str(seed), "--stream", str(stream), "--output", str(x_file)],
                       check=True, capture_output=True)
        return np.load(x_file)

    return draw
