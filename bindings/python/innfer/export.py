"""Export a FrEIA ``SequenceINN`` to the innfer model format (docs/format.md, format 1).

    import innfer
    innfer.export_freia(inn, "model.safetensors", layout={"kind": "cinn", "x": 4, "y": 2},
                        x_stats=(x_mean, x_std), y_stats=(y_mean, y_std))
    innfer.load_into_freia(inn2, "model.safetensors")    # strict inn2.load_state_dict(...)

A network trained on transformed data says so: ``x_bounds=[(0, 1), (5, None), (None, None)]``
(logit on a box, log above a lower bound, identity; docs/format.md §3.1) and
``y_transform="clr"`` (the condition is raw positive values, the network reads their centred
log-ratio); x_stats and y_stats are then those of the transformed data.

The tensors written are exactly ``inn.state_dict()`` (FrEIA's names and dtypes); the
architecture goes into the safetensors ``__metadata__`` as the flat ``innfer.*`` keys of
docs/format.md. The file is byte-for-byte reproducible (sorted header keys).

Two halves: :func:`export_freia` reads the live network with PyTorch (imported only then,
from ``innfer._freia``) into its architecture keys and its state dict as NumPy arrays, and
:func:`export_state_dict` writes those with the layout and statistics, with NumPy alone. The
second half also re-states an existing file's layout or statistics
(:func:`read_model`, then :func:`export_state_dict`) without PyTorch.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from . import _safetensors
from ._safetensors import RawTensor

__all__ = [
    "export_freia",
    "load_into_freia",
    "build_metadata",
    "export_state_dict",
    "model_metadata",
    "read_model",
    "save_safetensors",
    "ModelFile",
    "EXPORTER_VERSION",
]

EXPORTER_VERSION = "0.1"

Stats = Tuple[Any, Any]
Bounds = Sequence[Tuple[Optional[float], Optional[float]]]


def _torch_half():
    """innfer._freia, or an ImportError that says what is missing."""
    try:
        from . import _freia
    except ImportError as e:
        if (e.name or "").split(".")[0] == "torch":
            raise ImportError(
                "exporting a FrEIA network needs PyTorch (pip install torch FrEIA); the rest of "
                "innfer, including export_state_dict, does not") from e
        raise
    return _freia


# --------------------------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------------------------

def _fmt_float(v) -> str:
    """A Python float as a decimal string that round-trips (repr is shortest-exact)."""
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"non-finite value {v!r}")
    return repr(v)


def _fmt_f32(v) -> str:
    """An f32 value as a decimal that parses back (f32::from_str / float()) to the same f32."""
    return repr(float(np.float32(v)))


def _as_float64(v) -> np.ndarray:
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64).reshape(-1)


# --------------------------------------------------------------------------------------------
# layout and statistics
# --------------------------------------------------------------------------------------------

def _layout_meta(layout, D, cc):
    if layout is None:
        return {"innfer.layout": "none"}, None, None
    if not isinstance(layout, dict) or "kind" not in layout:
        raise ValueError("layout must be a dict with a 'kind'")
    kind = layout["kind"]

    def geti(k, minimum):
        if k not in layout:
            raise ValueError(f"layout {kind}: missing {k!r}")
        v = layout[k]
        if isinstance(v, bool) or int(v) != v or int(v) < minimum:
            raise ValueError(f"layout {kind}: {k} = {v!r} must be an integer >= {minimum}")
        return int(v)

    if kind == "none":
        if set(layout) - {"kind"}:
            raise ValueError(f"layout none takes no dims, got {sorted(set(layout) - {'kind'})}")
        return {"innfer.layout": "none"}, None, None
    if kind == "inn":
        allowed = {"kind", "x", "pad_x", "z", "pad_zy", "y"}
        if set(layout) - allowed:
            raise ValueError(f"layout inn: unknown keys {sorted(set(layout) - allowed)}")
        x, px, z, pzy, y = (geti("x", 1), geti("pad_x", 0), geti("z", 1), geti("pad_zy", 0), geti("y", 1))
        if x + px != D:
            raise ValueError(f"layout inn: x + pad_x = {x + px}, the model width is {D}")
        if z + pzy + y != D:
            raise ValueError(f"layout inn: z + pad_zy + y = {z + pzy + y}, the model width is {D}")
        if cc != 0:
            raise ValueError(f"layout inn: the model is conditional (cond_dim {cc})")
        meta = {"innfer.layout": "inn", "innfer.layout.x": str(x), "innfer.layout.pad_x": str(px),
                "innfer.layout.z": str(z), "innfer.layout.pad_zy": str(pzy), "innfer.layout.y": str(y)}
        return meta, x, y
    if kind == "cinn":
        allowed = {"kind", "x", "y"}
        if set(layout) - allowed:
            raise ValueError(f"layout cinn: unknown keys {sorted(set(layout) - allowed)}")
        x, y = geti("x", 1), geti("y", 1)
        if x != D:
            raise ValueError(f"layout cinn: x = {x}, the model width is {D}")
        if y != cc:
            raise ValueError(f"layout cinn: y = {y}, the model's condition width is {cc}")
        return {"innfer.layout": "cinn", "innfer.layout.x": str(x), "innfer.layout.y": str(y)}, x, y
    raise ValueError(f"unknown layout kind {kind!r} (inn, cinn or none)")


def _stats_meta(stats, n, which):
    if stats is None:
        return {}
    if n is None:
        raise ValueError(f"{which}_stats need a layout 'inn' or 'cinn' (they say which entries are {which})")
    try:
        mean, std = stats
    except (TypeError, ValueError):
        raise ValueError(f"{which}_stats must be a (mean, std) pair") from None
    mean, std = _as_float64(mean), _as_float64(std)
    if mean.shape != (n,) or std.shape != (n,):
        raise ValueError(f"{which}_stats: need {n} means and stds, got {mean.size} and {std.size}")
    m32, s32 = mean.astype(np.float32), std.astype(np.float32)
    if not (np.all(np.isfinite(m32)) and np.all(np.isfinite(s32))):
        raise ValueError(f"{which}_stats: non-finite values")
    if np.any(s32 <= 0):
        raise ValueError(f"{which}_stats: std must be > 0")
    return {f"innfer.{which}_mean": ",".join(_fmt_f32(v) for v in m32),
            f"innfer.{which}_std": ",".join(_fmt_f32(v) for v in s32)}


def _fmt_bound(v) -> str:
    """An f32 bound as the shortest decimal that parses back to it (``0.005``, not
    ``0.004999999888241291``)."""
    return str(np.float32(v))


def _bound_f32(v, what):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"x_bounds: {what} is {v!r}, not a number")
    with np.errstate(over="ignore"):
        b = np.float32(v)
    if not np.isfinite(b):
        raise ValueError(f"x_bounds: {what} is {v!r}, not a finite float32")
    return b


def _transform_meta(x_bounds, nx, y_transform, layout):
    """innfer.x_transform, x_lower, x_upper and y_transform (docs/format.md §2, §3.1)."""
    meta = {}
    if x_bounds is not None:
        if nx is None:
            raise ValueError("x_bounds need a layout 'inn' or 'cinn' (it says which entries are x)")
        x_bounds = list(x_bounds)
        if len(x_bounds) != nx:
            raise ValueError(f"x_bounds: need {nx} (lower, upper) pairs, one per x dimension, got {len(x_bounds)}")
        kinds, lowers, uppers = [], [], []
        for i, pair in enumerate(x_bounds):
            try:
                lo, hi = pair
            except (TypeError, ValueError):
                raise ValueError(f"x_bounds[{i}] must be a (lower, upper) pair, None for an open side") from None
            if lo is None and hi is not None:
                raise ValueError(f"x_bounds[{i}] = {pair!r}: an upper bound alone has no transform (give a lower bound)")
            lo32 = None if lo is None else _bound_f32(lo, f"[{i}] lower")
            hi32 = None if hi is None else _bound_f32(hi, f"[{i}] upper")
            if hi32 is not None:
                with np.errstate(over="ignore"):
                    width = np.float32(hi32 - lo32)
                if not lo32 < hi32:
                    raise ValueError(f"x_bounds[{i}] = {pair!r}: the lower bound must be below the upper")
                if not np.isfinite(width):
                    raise ValueError(f"x_bounds[{i}] = {pair!r}: upper - lower overflows float32")
            kinds.append("identity" if lo32 is None else "log" if hi32 is None else "logit")
            lowers.append("" if lo32 is None else _fmt_bound(lo32))
            uppers.append("" if hi32 is None else _fmt_bound(hi32))
        meta["innfer.x_transform"] = ",".join(kinds)
        if any(lowers):
            meta["innfer.x_lower"] = ",".join(lowers)
        if any(uppers):
            meta["innfer.x_upper"] = ",".join(uppers)
    if y_transform is not None:
        if y_transform not in ("none", "clr"):
            raise ValueError(f"y_transform must be None, 'none' or 'clr', got {y_transform!r}")
        if y_transform == "clr":
            kind = layout.get("kind") if isinstance(layout, dict) else None
            if kind != "cinn":
                raise ValueError("y_transform 'clr' needs the layout 'cinn' (it transforms the condition; "
                                 "in the 'inn' layout y is an output of the network)")
            if int(layout["y"]) < 2:
                raise ValueError(f"y_transform 'clr' needs a condition of at least 2 values, y = {layout['y']}")
        meta["innfer.y_transform"] = y_transform
    return meta


# --------------------------------------------------------------------------------------------
# the NumPy half
# --------------------------------------------------------------------------------------------

_LAYOUT_AND_STATS = ("innfer.format", "innfer.layout", "innfer.x_", "innfer.y_")


def model_metadata(architecture: Mapping[str, str], layout: Optional[dict] = None,
                   x_stats: Optional[Stats] = None, y_stats: Optional[Stats] = None,
                   x_bounds: Optional[Bounds] = None, y_transform: Optional[str] = None) -> Dict[str, str]:
    """The complete ``__metadata__`` of a model file: the ``architecture`` keys (as
    :func:`innfer._freia.freia_architecture` reads them off a network: ``innfer.freia``,
    ``innfer.dim``, ``innfer.cond_dim``, ``innfer.blocks``, ``innfer.block.*``, optionally
    ``innfer.producer``) with the format version, the layout, the statistics and the
    transforms.

    layout: None, ``{"kind": "none"}``, ``{"kind": "inn", "x", "pad_x", "z", "pad_zy", "y"}``
    or ``{"kind": "cinn", "x", "y"}``; x_stats, y_stats: ``(mean, std)`` array-likes (they
    need a layout), of the transformed data if there are transforms; x_bounds: one
    ``(lower, upper)`` per x dimension, None for an open side: ``(None, None)`` identity,
    ``(lower, None)`` log, ``(lower, upper)`` logit (docs/format.md §3.1; needs a layout);
    y_transform: None, ``"none"`` or ``"clr"`` (cinn layout). Raises ``ValueError`` naming
    what does not fit.
    """
    arch = dict(architecture)
    clash = sorted(k for k in arch if k.startswith(_LAYOUT_AND_STATS))
    if clash:
        raise ValueError(f"architecture keys may not set the format, layout or statistics: {clash}")
    for key in ("innfer.freia", "innfer.dim", "innfer.blocks"):
        if key not in arch:
            raise ValueError(f"architecture without {key}")
    try:
        D, cc = int(arch["innfer.dim"]), int(arch.get("innfer.cond_dim", "0"))
    except ValueError:
        raise ValueError("innfer.dim and innfer.cond_dim must be integers") from None
    meta = {"innfer.format": "1"}
    meta.update(arch)
    lmeta, nx, ny = _layout_meta(layout, D, cc)
    meta.update(lmeta)
    meta.update(_stats_meta(x_stats, nx, "x"))
    meta.update(_stats_meta(y_stats, ny, "y"))
    meta.update(_transform_meta(x_bounds, nx, y_transform, layout))
    return meta


def _check_tensors(tensors: Mapping[str, Any]) -> Dict[str, Any]:
    out = {}
    for name, t in tensors.items():
        if hasattr(t, "detach"):  # a torch tensor
            t = _torch_half().to_numpy(t)
        values = t
        if isinstance(t, RawTensor):
            if t.dtype != "BF16":
                raise ValueError(f"{name}: raw tensors are BF16 only, got {t.dtype}")
            values = (np.frombuffer(t.data, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            t = values = np.asarray(t)
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            bad = int(np.flatnonzero(~np.isfinite(values.reshape(-1)))[0])
            raise ValueError(f"{name}: non-finite value at flat index {bad}")
        out[name] = t
    return out


def export_state_dict(state_dict: Mapping[str, Any], architecture: Mapping[str, str], path,
                      layout: Optional[dict] = None, x_stats: Optional[Stats] = None,
                      y_stats: Optional[Stats] = None, x_bounds: Optional[Bounds] = None,
                      y_transform: Optional[str] = None) -> Dict[str, str]:
    """Writes a model file from a FrEIA ``state_dict`` (name → NumPy array, torch tensor or
    :class:`innfer._safetensors.RawTensor`) and its ``architecture`` keys, with the layout,
    statistics and transforms of :func:`model_metadata`. Needs no PyTorch for NumPy arrays.
    Returns the metadata written."""
    meta = model_metadata(architecture, layout=layout, x_stats=x_stats, y_stats=y_stats,
                          x_bounds=x_bounds, y_transform=y_transform)
    _safetensors.write(str(path), _check_tensors(state_dict), meta)
    return meta


class ModelFile(NamedTuple):
    """What :func:`read_model` finds in a model file: the arguments of :func:`export_state_dict`."""

    tensors: Dict[str, np.ndarray]
    architecture: Dict[str, str]
    layout: Optional[dict]
    x_stats: Optional[Tuple[np.ndarray, np.ndarray]]
    y_stats: Optional[Tuple[np.ndarray, np.ndarray]]
    x_bounds: Optional[list] = None
    y_transform: Optional[str] = None


def read_model(path) -> ModelFile:
    """A model file split into state dict, architecture keys, layout and statistics, such that
    ``export_state_dict(*read_model(p)[:2], out, *read_model(p)[2:])`` writes ``p`` again."""
    tensors, meta = _safetensors.read(path)
    arch = {k: v for k, v in meta.items() if not k.startswith(_LAYOUT_AND_STATS)}
    layout = None
    if "innfer.layout" in meta:
        layout = {"kind": meta["innfer.layout"]}
        prefix = "innfer.layout."
        layout.update({k[len(prefix):]: int(v) for k, v in meta.items() if k.startswith(prefix)})

    def stats(which):
        if f"innfer.{which}_mean" not in meta:
            return None
        return tuple(np.array([float(v) for v in meta[f"innfer.{which}_{part}"].split(",")], dtype=np.float32)
                     for part in ("mean", "std"))

    x_bounds = None
    if "innfer.x_transform" in meta:
        n = len(meta["innfer.x_transform"].split(","))

        def bounds(key):
            entries = meta[key].split(",") if key in meta else [""] * n
            return [float(v) if v.strip() else None for v in entries]

        x_bounds = list(zip(bounds("innfer.x_lower"), bounds("innfer.x_upper")))
    return ModelFile(tensors, arch, layout, stats("x"), stats("y"), x_bounds, meta.get("innfer.y_transform"))


def save_safetensors(tensors: Mapping[str, Any], path, metadata: Optional[Mapping[str, str]] = None) -> None:
    """Writes a safetensors file of NumPy arrays or torch tensors, byte for byte as the
    ``safetensors`` package would but with the header's keys sorted (reproducible)."""
    _safetensors.write(str(path), _check_tensors(tensors), metadata)


# --------------------------------------------------------------------------------------------
# the PyTorch half
# --------------------------------------------------------------------------------------------

def build_metadata(inn, layout: Optional[dict] = None, x_stats: Optional[Stats] = None,
                   y_stats: Optional[Stats] = None, x_bounds: Optional[Bounds] = None,
                   y_transform: Optional[str] = None) -> Dict[str, str]:
    """The ``__metadata__`` :func:`export_freia` would write for ``inn`` (validates alike)."""
    return model_metadata(_torch_half().freia_architecture(inn), layout=layout, x_stats=x_stats,
                          y_stats=y_stats, x_bounds=x_bounds, y_transform=y_transform)


def export_freia(inn, path, layout: Optional[dict] = None, x_stats: Optional[Stats] = None,
                 y_stats: Optional[Stats] = None, x_bounds: Optional[Bounds] = None,
                 y_transform: Optional[str] = None) -> Dict[str, str]:
    """Writes ``inn`` (a FrEIA ``SequenceINN``) to ``path`` in the innfer format.

    layout: None, ``{"kind": "none"}``, ``{"kind": "inn", "x", "pad_x", "z", "pad_zy", "y"}``
    (the INN paper's ``[x, pad_x] ↔ [z, pad_zy, y]``) or ``{"kind": "cinn", "x", "y"}``
    (conditional INN: x ↔ z given y). x_stats, y_stats: ``(mean, std)`` array-likes (NumPy or
    torch) in raw units, so that the model takes and returns raw units; they need a layout.
    x_bounds, y_transform: the transforms the network was trained behind (docs/format.md
    §3.1): per x dimension ``(lower, upper)`` with None for an open side (``(None, None)``
    identity, ``(lower, None)`` log, ``(lower, upper)`` logit), and ``"clr"`` for a condition
    of raw positive values; x_stats, y_stats are then those of the transformed data.

    Needs PyTorch (imported here, not by ``import innfer``); FrEIA is reached only through
    ``inn``. Raises ``ValueError`` naming the module for anything the format cannot
    represent. Returns the metadata written.
    """
    freia = _torch_half()
    return export_state_dict(freia.numpy_state_dict(inn), freia.freia_architecture(inn), path,
                             layout=layout, x_stats=x_stats, y_stats=y_stats, x_bounds=x_bounds,
                             y_transform=y_transform)


def load_into_freia(inn, path):
    """Loads the tensors of an innfer model file into a FrEIA network of the same architecture
    (a strict ``inn.load_state_dict``). Needs PyTorch. Returns ``inn``."""
    return _torch_half().load_into_freia(inn, path)
