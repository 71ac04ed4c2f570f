"""The FrEIA exporter under its earlier name, for scripts that put bindings/python on
sys.path and ``import innfer_export`` (tests/fixtures/make_fixtures.py,
tests/fixtures/check_freia_roundtrip.py, models/make_gmm8_freia.py, benches/peers/run.py).
It is :mod:`innfer.export`, plus the FrEIA-variant probes make_fixtures.py calls.
"""

from innfer.export import *  # noqa: F401,F403
from innfer.export import __all__  # noqa: F401


def __getattr__(name):
    # _aio_variant_by_source / _aio_variant_by_probe need torch: imported on first use.
    from innfer import _freia

    return getattr(_freia, name)
