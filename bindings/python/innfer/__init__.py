"""innfer: posterior sampling with trained invertible neural networks (FrEIA-compatible).

    import innfer
    model = innfer.Model("model.safetensors")
    session = model.session(max_batch=256, seed=42)
    x = session.sample([1.5, 0.0], 1000)                # float32 [1000, x_dim]
    z, logdet = session.forward(x, cond=[1.5, 0.0])     # cond only for conditional models

    innfer.export_freia(inn, "model.safetensors", layout={"kind": "cinn", "x": 4, "y": 2})

The sampler (:class:`Model`, :class:`Session`, :class:`Error`; module ``innfer.sampler``)
calls the native library this package carries, through its C API. The exporter
(:func:`export_freia`, :func:`load_into_freia`; module ``innfer.export``) imports PyTorch
only when it is called. ``python -m innfer ...`` runs the ``innfer`` command line.
"""

from .export import export_freia, load_into_freia
from .sampler import *  # noqa: F401,F403  (the names of innfer.sampler.__all__)
from .sampler import __all__ as _sampler_names

__version__ = "0.1.0"

__all__ = list(_sampler_names) + ["export_freia", "load_into_freia", "__version__"]
