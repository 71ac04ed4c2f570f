"""Builds the wheel of the `innfer` package with the native library inside it.

The build step (`build_py`) runs cargo on the innfer crate (two directories up: pip builds a
local directory in place) in release, into `<crate>/target/python-wheel` (its own directory,
so it neither waits for nor invalidates other builds), without debug info and stripped, and
copies the shared library into the package next to `sampler.py`, which loads it from there.
The wheel is tagged `py3-none-<platform>`: the package has no compiled Python extension (the
library is called through ctypes), so one wheel serves every Python 3 of the platform.

Environment: `CARGO` (the cargo program), `INNFER_CRATE_DIR` (the crate, when building from
elsewhere, e.g. an unpacked sdist), `CARGO_TARGET_DIR` (then `<it>/python-wheel` is used).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
LIBRARY = {"darwin": "libinnfer.dylib", "win32": "innfer.dll"}.get(sys.platform, "libinnfer.so")


def crate_dir() -> Path:
    crate = Path(os.environ.get("INNFER_CRATE_DIR") or HERE.parent.parent)
    manifest = crate / "Cargo.toml"
    if not manifest.is_file() or not re.search(r'(?m)^name\s*=\s*"innfer"', manifest.read_text()):
        sys.exit(
            f"the innfer crate is not at {crate} (no Cargo.toml of package `innfer`): build "
            "this package from its place in the repository (pip install ./bindings/python, "
            "pip >= 21.3 builds in place) or set INNFER_CRATE_DIR to the crate")
    return crate


def build_library() -> Path:
    crate = crate_dir()
    cargo = os.environ.get("CARGO", "cargo")
    if shutil.which(cargo) is None:
        sys.exit(f"`{cargo}` not found: the package's native library is built with the Rust "
                 "toolchain (https://rustup.rs), or set CARGO to the cargo program")
    target = Path(os.environ["CARGO_TARGET_DIR"]) if os.environ.get("CARGO_TARGET_DIR") else crate / "target"
    target = target / "python-wheel"
    env = dict(os.environ, CARGO_PROFILE_RELEASE_DEBUG="0", CARGO_PROFILE_RELEASE_STRIP="symbols")
    cmd = [cargo, "rustc", "--release", "-p", "innfer-capi", "--lib", "--crate-type", "cdylib",
           "--manifest-path", str(crate / "Cargo.toml"), "--target-dir", str(target)]
    print("building the native library:", " ".join(cmd), flush=True)
    subprocess.run(cmd, env=env, check=True)
    lib = target / "release" / LIBRARY
    if not lib.is_file():
        sys.exit(f"cargo built no {lib}")
    return lib


class BuildPyWithLibrary(build_py):
    """build_py, then the native library into the built package."""

    def run(self):
        super().run()
        dest = Path(self.build_lib) / "innfer" / LIBRARY
        self.copy_file(str(build_library()), str(dest))


class WithNativeLibrary(Distribution):
    """Platform code (installed into platlib, at the wheel's root) although no module is a
    compiled Python extension."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """A platform wheel for any Python 3: py3-none-<platform>."""

    def get_tag(self):
        return "py3", "none", super().get_tag()[2]


setup(distclass=WithNativeLibrary, cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel})
