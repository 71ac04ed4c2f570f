"""The installed package: the library inside it, its version, its documentation, the
`python -m innfer` entry, and the README's Python example as written."""

import inspect
import os
import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
from conftest import MODELS, REPO

import innfer


def test_the_package_loads_the_library_it_carries():
    if os.environ.get("INNFER_LIB"):
        assert Path(innfer.library_path()) == Path(os.environ["INNFER_LIB"]).resolve() or \
            Path(innfer.library_path()).parent == Path(os.environ["INNFER_LIB"])
    else:
        assert Path(innfer.library_path()).parent == Path(innfer.__file__).parent


def test_package_and_library_have_the_crates_version():
    cargo = (REPO / "Cargo.toml").read_text()
    crate_version = re.search(r'(?m)^version = "([^"]+)"', cargo).group(1)
    assert innfer.__version__ == innfer.version() == crate_version


def test_help_shows_the_api():
    text = subprocess.run([sys.executable, "-c", "import innfer; help(innfer)"], capture_output=True,
                          text=True, check=True, env=dict(os.environ, PAGER="cat", TERM="dumb")).stdout
    for name in ("class Model", "class Session", "class Error", "export_freia(inn, path",
                 "load_into_freia(", "posterior sampling"):
        assert name in text, name
    for obj in (innfer.Model, innfer.Session, innfer.Error, innfer.Session.sample, innfer.Session.forward,
                innfer.Session.inverse, innfer.Session.reseed, innfer.Model.session, innfer.Model.from_bytes,
                innfer.export_freia, innfer.load_into_freia, innfer.version, innfer.library_path):
        assert inspect.getdoc(obj), obj


def test_type_hints():
    hints = typing.get_type_hints(innfer.Session.sample)
    assert hints["n"] is int and hints["return"] is np.ndarray
    assert typing.get_type_hints(innfer.Session.forward)["return"] == typing.Tuple[np.ndarray, np.ndarray]
    assert typing.get_type_hints(innfer.Model.session)["return"] is innfer.Session
    assert (Path(innfer.__file__).parent / "py.typed").is_file()


def run_module(*args, **env):
    return subprocess.run([sys.executable, "-m", "innfer", *args], capture_output=True, text=True,
                          env=dict(os.environ, **env))


def test_python_dash_m_innfer_runs_the_command_line(rust_cli):
    r = run_module("info", str(MODELS / "kinematics.safetensors"), INNFER_CLI=str(rust_cli))
    assert r.returncode == 0, r.stderr
    assert "cinn" in r.stdout
    r = run_module("no-such-command", INNFER_CLI=str(rust_cli))
    assert r.returncode != 0


def test_python_dash_m_innfer_without_the_command_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "INNFER_CLI"}
    env["PATH"] = str(tmp_path)
    r = subprocess.run([sys.executable, "-m", "innfer", "info"], capture_output=True, text=True, env=env)
    assert r.returncode == 127 and "cargo install --path cli" in r.stderr


def readme_python_blocks():
    text = (REPO / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```\n", text, flags=re.S)


def test_the_readme_python_example_as_written(tmp_path, rust_samples, monkeypatch):
    examples = [b for b in readme_python_blocks() if b.startswith("import") and "innfer.Model(" in b]
    assert len(examples) == 1, examples
    shutil.copy(MODELS / "kinematics.safetensors", tmp_path / "model.safetensors")
    monkeypatch.chdir(tmp_path)
    names = {}
    exec(compile(examples[0], "README.md", "exec"), names)
    x, z, logdet = names["x"], names["z"], names["logdet"]
    assert x.shape == (1000, 4) and z.shape == (1000, 4) and logdet.shape == (1000,)
    # The Rust API's samples for the same model, observation and seed (42, stream 0).
    want = rust_samples(tmp_path / "model.safetensors", np.array([1.5, 0.0]), 1000, 42, 0)
    assert np.array_equal(x.view(np.uint32), want.view(np.uint32))


def test_the_sampler_file_alone_is_the_binding_without_a_build(tmp_path):
    """sampler.py copied as innfer.py next to a script, with INNFER_LIB: no package, no build."""
    shutil.copy(Path(innfer.sampler.__file__), tmp_path / "innfer.py")
    code = ("import numpy as np, innfer; "
            "x = innfer.Model(%r).session(64, seed=4).sample([1.5, 0.0], 100); "
            "print(innfer.__file__); np.save('x.npy', x)" % str(MODELS / "kinematics.safetensors"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["INNFER_LIB"] = innfer.library_path()
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == tmp_path / "innfer.py"  # the copy, ahead of the installed package
    want = innfer.Model(MODELS / "kinematics.safetensors").session(64, seed=4).sample([1.5, 0.0], 100)
    assert np.array_equal(np.load(tmp_path / "x.npy"), want)
