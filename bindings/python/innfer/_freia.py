"""The half of the FrEIA exporter that needs PyTorch: it reads a live FrEIA ``SequenceINN``
and returns its architecture as the ``innfer.*`` metadata keys of docs/format.md and its
``state_dict`` as NumPy arrays. :mod:`innfer.export` imports this module only when it is
given a network, so ``import innfer`` never imports torch.

Works with FrEIA 0.2 from PyPI and with FrEIA's git main ("head"); the variant is detected
from the FrEIA code that built ``inn`` and cross-checked against the tensors. Anything the
format cannot represent raises a ``ValueError`` naming the module
(``module_list.3.subnet1.2: unsupported layer Conv1d``).
"""

import inspect
import math
import re
import sys
import types

import torch
import torch.nn as nn

from ._safetensors import RawTensor, read
from .export import EXPORTER_VERSION, _fmt_float

__all__ = ["freia_architecture", "numpy_state_dict", "to_numpy", "load_into_freia"]

_COUPLING_TYPES = ("GLOWCouplingBlock", "RNVPCouplingBlock", "NICECouplingBlock",
                   "GINCouplingBlock", "AffineCouplingOneSided", "ConditionalAffineTransform")
_SUPPORTED_TYPES = _COUPLING_TYPES + ("AllInOneBlock", "PermuteRandom", "ActNorm",
                                      "FixedLinearTransform")


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------

def _is_freia_module(m):
    return type(m).__module__.split(".")[0] == "FrEIA"


def _freia_package(inn):
    return sys.modules.get(type(inn).__module__.split(".")[0])


# --------------------------------------------------------------------------------------------
# FrEIA variant (0.2 vs head)
# --------------------------------------------------------------------------------------------

def _aio_variant_by_probe(aio_cls):
    """Call AllInOneBlock._affine on a fake self: head computes a·tanh(0.1·u/a), 0.2 a·tanh(0.1·u)."""
    fake = types.SimpleNamespace(clamp=0.5, GIN=False, sum_dims=(1,))
    x = torch.zeros(1, 1)
    a = torch.tensor([[10.0, 0.0]])  # s-part 10 -> 0.1*10 = 1
    with torch.no_grad():
        _, j = aio_cls._affine(fake, x, a.clone())
    j = float(j.reshape(-1)[0])
    if abs(j - 0.5 * math.tanh(1.0 / 0.5)) < 1e-5:
        return "head"
    if abs(j - 0.5 * math.tanh(1.0)) < 1e-5:
        return "0.2"
    return None


def _aio_variant_by_source(aio_cls):
    try:
        src = inspect.getsource(aio_cls._affine)
    except (OSError, TypeError):
        return None
    src = re.sub(r"\s+", "", src)
    if "torch.tanh(a[:,:ch]/self.clamp)" in src:
        return "head"
    if "torch.tanh(a[:,:ch])" in src:
        return "0.2"
    return None


def _detect_variant(inn):
    """Return ('0.2' | 'head', evidence string)."""
    aio_cls = None
    for m in inn.module_list:
        if type(m).__name__ == "AllInOneBlock":
            aio_cls = type(m)
            break
    if aio_cls is None:
        pkg = _freia_package(inn)
        try:
            aio_cls = pkg.modules.AllInOneBlock
        except AttributeError:
            aio_cls = None
    code_variant = None
    if aio_cls is not None:
        try:
            code_variant = _aio_variant_by_probe(aio_cls)
        except Exception:
            code_variant = None
        src_variant = _aio_variant_by_source(aio_cls)
        if code_variant is None:
            code_variant = src_variant
        elif src_variant is not None and src_variant != code_variant:
            raise ValueError("cannot tell the FrEIA version: AllInOneBlock source and behaviour disagree")

    # structural evidence from the tensors
    struct = set()
    for i, m in enumerate(inn.module_list):
        name = type(m).__name__
        sd = m.state_dict()
        if name == "ActNorm":
            if "log_scale" in sd:
                struct.add(("head", f"module_list.{i}: ActNorm log_scale/loc"))
            elif "scale" in sd:
                struct.add(("0.2", f"module_list.{i}: ActNorm scale/bias"))
        elif name == "AllInOneBlock" and not getattr(m, "householder", 0):
            w = sd.get("w_perm")
            if w is not None and w.dtype == torch.int64:
                struct.add(("head", f"module_list.{i}: AllInOneBlock int64 w_perm"))
            elif w is not None and _is_perm_matrix(w):
                # head stores hard permutations as an index, so a 0/1 matrix means 0.2
                struct.add(("0.2", f"module_list.{i}: AllInOneBlock w_perm is a 0/1 matrix"))
    variants = {v for v, _ in struct}
    if len(variants) > 1:
        raise ValueError("inconsistent FrEIA version evidence: " + "; ".join(sorted(e for _, e in struct)))
    if code_variant is not None:
        if variants and code_variant not in variants:
            raise ValueError(f"FrEIA code looks like {code_variant} but the tensors say otherwise: "
                             + "; ".join(sorted(e for _, e in struct)))
        return code_variant, "AllInOneBlock._affine"
    if variants:
        v = variants.pop()
        return v, "tensors"
    raise ValueError("cannot tell the FrEIA version (0.2 or head) of this model")


def _is_perm_matrix(w):
    if w.dim() != 2 or w.shape[0] != w.shape[1] or not w.is_floating_point():
        return False
    ok01 = bool(torch.all((w == 0) | (w == 1)))
    return ok01 and bool(torch.all(w.sum(0) == 1)) and bool(torch.all(w.sum(1) == 1))


# --------------------------------------------------------------------------------------------
# clamp activation and global affine type
# --------------------------------------------------------------------------------------------

_PROBE = torch.linspace(-7.0, 7.0, 57, dtype=torch.float32)


def _clamp_activation_name(f, where):
    if f is torch.tanh:
        return "TANH"
    candidates = {
        "ATAN": lambda u: 0.636 * torch.atan(u),
        "TANH": torch.tanh,
        "SIGMOID": lambda u: 2. * (torch.sigmoid(u) - 0.5),
    }
    try:
        with torch.no_grad():
            got = f(_PROBE.clone())
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{where}: cannot evaluate clamp_activation ({e})") from e
    for name, g in candidates.items():
        if isinstance(got, torch.Tensor) and got.shape == _PROBE.shape and torch.equal(got, g(_PROBE)):
            return name
    raise ValueError(f"{where}: unsupported clamp_activation {f!r} (only ATAN, TANH, SIGMOID)")


def _global_affine_type(m, where):
    act = m.global_scale_activation
    fname = getattr(getattr(act, "__func__", act), "__name__", "")
    by_name = {"_sigmoid_global_scale_activation": "SIGMOID",
               "_softplus_global_scale_activation": "SOFTPLUS",
               "_exp_global_scale_activation": "EXP"}.get(fname)
    # numeric identification (PyPI 0.2 stores lambdas)
    cands = {"SIGMOID": lambda a: 10 * torch.sigmoid(a - 2.),
             "SOFTPLUS": lambda a: 0.1 * nn.functional.softplus(a, beta=0.5, threshold=20.0),
             "EXP": torch.exp}
    probe = torch.linspace(-6.0, 50.0, 113, dtype=torch.float32)
    with torch.no_grad():
        got = act(probe.clone())
    by_value = [n for n, g in cands.items() if torch.equal(got, g(probe))]
    if len(by_value) != 1 or (by_name is not None and by_name != by_value[0]):
        raise ValueError(f"{where}: unsupported global_scale_activation {act!r}")
    if by_value[0] == "SOFTPLUS":
        sp = getattr(m, "softplus", None)
        if not (isinstance(sp, nn.Softplus) and sp.beta == 0.5 and sp.threshold == 20):
            raise ValueError(f"{where}: SOFTPLUS global affine with a non-default softplus {sp!r}")
    return by_value[0]


# --------------------------------------------------------------------------------------------
# subnets
# --------------------------------------------------------------------------------------------

# Layers without parameters in the subnet grammar (docs/format.md §5), by torch type: their
# name there is the type's name.
_PLAIN_LAYERS = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.Identity, nn.Dropout)


def _layer_kind(layer, where):
    t = type(layer)
    if t in _PLAIN_LAYERS:
        return t.__name__
    if t is nn.Linear:
        return "Linear" if layer.bias is not None else "Linear(nobias)"
    if t is nn.LeakyReLU:
        return f"LeakyReLU({_fmt_float(layer.negative_slope)})"
    if t is nn.ELU:
        return f"ELU({_fmt_float(layer.alpha)})"
    if t is nn.Softplus:
        return f"Softplus({_fmt_float(layer.beta)},{_fmt_float(layer.threshold)})"
    if t is nn.GELU:
        if layer.approximate == "none":
            return "GELU"
        if layer.approximate == "tanh":
            return "GELU(tanh)"
        raise ValueError(f"{where}: unsupported GELU approximate={layer.approximate!r}")
    raise ValueError(f"{where}: unsupported layer {t.__name__}")


def _flatten_sequential(seq, prefix, where):
    """Yield (name, layer) with dotted names for nested nn.Sequential."""
    for name, child in seq.named_children():
        full = f"{prefix}{name}"
        if type(child) is nn.Sequential:
            yield from _flatten_sequential(child, full + ".", f"{where}.{name}")
        else:
            yield full, child


def _describe_subnet(subnet, where, n_in, n_out):
    if type(subnet) is not nn.Sequential:
        raise ValueError(f"{where}: subnet is a {type(subnet).__name__}, only nn.Sequential "
                         f"subnets can be described")
    items = []
    width = n_in
    n_linear = 0
    for name, layer in _flatten_sequential(subnet, "", where):
        lw = f"{where}.{name}"
        kind = _layer_kind(layer, lw)
        if " " in name or ":" in name:
            raise ValueError(f"{lw}: layer name cannot be written")
        if isinstance(layer, nn.Linear):
            if layer.in_features != width:
                raise ValueError(f"{lw}: Linear expects {layer.in_features} inputs, gets {width}")
            width = layer.out_features
            n_linear += 1
        else:
            # parameter-free layers only
            if any(True for _ in layer.parameters()) or any(True for _ in layer.buffers()):
                raise ValueError(f"{lw}: layer {type(layer).__name__} has tensors")
            if n_linear == 0 and kind not in ("Identity", "Dropout"):
                raise ValueError(f"{lw}: an activation before the first Linear layer is not "
                                 f"supported (innfer applies activations to Linear outputs)")
        items.append(f"{name}:{kind}")
    if n_linear == 0:
        raise ValueError(f"{where}: subnet has no Linear layer")
    if width != n_out:
        raise ValueError(f"{where}: subnet outputs {width}, the block needs {n_out}")
    # the only tensors are the Linear weights/biases described above
    return " ".join(items)


# --------------------------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------------------------

def _block_meta(i, m, cond_idx, cc, D, variant):
    where = f"module_list.{i}"
    name = type(m).__name__
    if not _is_freia_module(m) or name not in _SUPPORTED_TYPES:
        raise ValueError(f"{where}: unsupported module type {type(m).__module__}.{name}")
    p = f"innfer.block.{i}."
    meta = {p + "type": name}

    # condition
    dims_c = list(getattr(m, "dims_c", []) or [])
    if cond_idx is None:
        if dims_c:
            raise ValueError(f"{where}: module has dims_c {dims_c} but SequenceINN gives it no condition")
        c_in = 0
    else:
        if cond_idx != 0:
            raise ValueError(f"{where}: uses condition index {cond_idx}; innfer supports one condition "
                             f"vector, cond=0")
        if len(dims_c) != 1 or len(tuple(dims_c[0])) != 1:
            raise ValueError(f"{where}: condition shape {dims_c} is not a single vector")
        if int(dims_c[0][0]) != cc:
            raise ValueError(f"{where}: condition width {dims_c[0][0]} differs from {cc}")
        if name in ("PermuteRandom", "ActNorm", "FixedLinearTransform"):
            raise ValueError(f"{where}: {name} cannot take a condition")
        meta[p + "cond"] = "0"
        c_in = cc

    dims_in = [tuple(d) for d in m.dims_in] if isinstance(m.dims_in[0], (tuple, list)) else [tuple(m.dims_in)]
    if dims_in != [(D,)]:
        raise ValueError(f"{where}: input dims {dims_in}, expected [({D},)]")

    sd = m.state_dict()

    if name in _COUPLING_TYPES:
        L1, L2 = int(m.split_len1), int(m.split_len2)
        if L1 + L2 != D:
            raise ValueError(f"{where}: split {L1}+{L2} != {D}")
        if name != "NICECouplingBlock":
            meta[p + "clamp"] = _fmt_float(m.clamp)
            meta[p + "clamp_activation"] = _clamp_activation_name(m.f_clamp, f"{where}.f_clamp")
        if name != "ConditionalAffineTransform":
            meta[p + "split"] = str(L1)
        if name in ("GLOWCouplingBlock", "GINCouplingBlock"):
            subs = {"subnet1": (L1 + c_in, 2 * L2), "subnet2": (L2 + c_in, 2 * L1)}
        elif name == "RNVPCouplingBlock":
            subs = {"subnet_s1": (L1 + c_in, L2), "subnet_t1": (L1 + c_in, L2),
                    "subnet_s2": (L2 + c_in, L1), "subnet_t2": (L2 + c_in, L1)}
        elif name == "NICECouplingBlock":
            subs = {"F": (L2 + c_in, L1), "G": (L1 + c_in, L2)}
        elif name == "AffineCouplingOneSided":
            subs = {"subnet": (L1 + c_in, 2 * L2)}
        else:  # ConditionalAffineTransform
            if c_in == 0:
                raise ValueError(f"{where}: ConditionalAffineTransform without condition")
            subs = {"subnet": (c_in, 2 * D)}
        child_names = {n for n, _ in m.named_children()}
        extra = child_names - set(subs)
        if extra:
            raise ValueError(f"{where}: unexpected submodules {sorted(extra)}")
        for sname, (n_in, n_out) in subs.items():
            meta[p + "subnet." + sname] = _describe_subnet(getattr(m, sname), f"{where}.{sname}", n_in, n_out)

    elif name == "AllInOneBlock":
        if getattr(m, "input_rank", 0) != 0:
            raise ValueError(f"{where}: image-shaped AllInOneBlock")
        meta[p + "clamp"] = _fmt_float(m.clamp)
        meta[p + "gin_block"] = "true" if m.GIN else "false"
        meta[p + "global_affine_type"] = _global_affine_type(m, f"{where}.global_scale_activation")
        meta[p + "reverse_permutation"] = "true" if m.reverse_pre_permute else "false"
        if getattr(m, "householder", 0):
            kind = "householder"
            for k, shape in (("vk_householder", (int(m.householder), D)), ("w_0", (D, D))):
                if k not in sd or tuple(sd[k].shape) != shape:
                    raise ValueError(f"{where}.{k}: missing or not of shape {list(shape)}")
        else:
            w = sd.get("w_perm")
            wi = sd.get("w_perm_inv")
            if w is None or wi is None:
                raise ValueError(f"{where}: missing w_perm / w_perm_inv")
            if w.dtype == torch.int64:
                if tuple(w.shape) != (D,):
                    raise ValueError(f"{where}.w_perm: index of shape {list(w.shape)}, expected [{D}]")
                if sorted(w.tolist()) != list(range(D)):
                    raise ValueError(f"{where}.w_perm: not a permutation")
                kind = "hard"
            elif w.is_floating_point():
                if tuple(w.shape) != (D, D):
                    raise ValueError(f"{where}.w_perm: shape {list(w.shape)}, expected [{D}, {D}]")
                kind = "hard" if (variant == "0.2" and _is_perm_matrix(w)) else "soft"
            else:
                raise ValueError(f"{where}.w_perm: unsupported dtype {w.dtype}")
        meta[p + "permutation"] = kind
        L1, L2 = D - D // 2, D // 2
        child_names = {n for n, _ in m.named_children()} - {"softplus"}
        if child_names != {"subnet"}:
            raise ValueError(f"{where}: unexpected submodules {sorted(child_names)}")
        meta[p + "subnet.subnet"] = _describe_subnet(m.subnet, f"{where}.subnet", L1 + c_in, 2 * L2)
        for k in ("global_scale", "global_offset"):
            if tuple(sd[k].shape) != (1, D):
                raise ValueError(f"{where}.{k}: shape {list(sd[k].shape)}, expected [1, {D}]")

    elif name == "PermuteRandom":
        for k in ("perm", "perm_inv"):
            if k not in sd:
                raise ValueError(f"{where}: {k} not in the state_dict (old FrEIA?)")
            if sd[k].dtype != torch.int64 or tuple(sd[k].shape) != (D,):
                raise ValueError(f"{where}.{k}: expected int64 [{D}]")
        if sorted(sd["perm"].tolist()) != list(range(D)):
            raise ValueError(f"{where}.perm: not a permutation")

    elif name == "ActNorm":
        if "log_scale" in sd:
            keys = ("log_scale", "loc")
            if "is_initialized" in sd and not bool(sd["is_initialized"]):
                raise ValueError(f"{where}: ActNorm is not initialised (run a data batch through it first)")
        elif "scale" in sd and "bias" in sd:
            keys = ("scale", "bias")
            if getattr(m, "init_on_next_batch", False):
                raise ValueError(f"{where}: ActNorm is not initialised (run a data batch through it first)")
        else:
            raise ValueError(f"{where}: ActNorm without log_scale/loc or scale/bias")
        for k in keys:
            if tuple(sd[k].shape) != (1, D):
                raise ValueError(f"{where}.{k}: shape {list(sd[k].shape)}, expected [1, {D}]")

    elif name == "FixedLinearTransform":
        for k in ("M", "M_inv"):
            if k not in sd or tuple(sd[k].shape) != (D, D):
                raise ValueError(f"{where}.{k}: missing or not [{D}, {D}]")
        if "logDetM" not in sd or sd["logDetM"].numel() != 1:
            raise ValueError(f"{where}.logDetM: missing or not a scalar")
        if "b" in sd and tuple(sd["b"].shape) not in ((1, D), ()):
            raise ValueError(f"{where}.b: shape {list(sd['b'].shape)}, expected [1, {D}]")
        if "b" not in sd and not (isinstance(getattr(m, "b", 0.), float) and m.b == 0.):
            raise ValueError(f"{where}: b is not in the state_dict and not 0")

    return meta


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------

def _check_sequence_inn(inn):
    tname = type(inn).__name__
    if not (_is_freia_module(inn) and tname == "SequenceINN"):
        raise ValueError(f"only FrEIA SequenceINN can be exported, got {type(inn).__module__}.{tname}")
    for attr in ("module_list", "conditions", "shapes"):
        if not hasattr(inn, attr):
            raise ValueError(f"SequenceINN without {attr}")
    if len(inn.module_list) == 0:
        raise ValueError("empty SequenceINN")
    if len(inn.conditions) != len(inn.module_list):
        raise ValueError("SequenceINN.conditions does not match module_list")
    shape0 = tuple(inn.shapes[0])
    if len(shape0) != 1:
        raise ValueError(f"input dims {shape0}: innfer runs vector INNs (image-shaped dims are not supported)")
    for i, s in enumerate(inn.shapes):
        if tuple(s) != shape0:
            raise ValueError(f"module_list.{max(i - 1, 0)}: changes the shape to {tuple(s)}")
    return int(shape0[0])


def freia_architecture(inn):
    """The ``innfer.*`` keys that describe ``inn`` (a FrEIA SequenceINN): FrEIA variant,
    widths, and every block with its subnets (docs/format.md §2, §4, §5), plus
    ``innfer.producer``. Validates what the format can represent."""
    D = _check_sequence_inn(inn)
    conds = [c for c in inn.conditions if c is not None]
    if len(set(conds)) > 1:
        raise ValueError(f"more than one condition ({sorted(set(conds))}); innfer supports one")
    cc = 0
    if conds:
        for i, (m, c) in enumerate(zip(inn.module_list, inn.conditions)):
            if c is not None:
                dc = list(getattr(m, "dims_c", []) or [])
                if len(dc) != 1 or len(tuple(dc[0])) != 1:
                    raise ValueError(f"module_list.{i}: condition shape {dc} is not a single vector")
                cc = int(dc[0][0])
                break
    variant, _ = _detect_variant(inn)
    meta = {"innfer.freia": variant, "innfer.dim": str(D), "innfer.cond_dim": str(cc),
            "innfer.blocks": str(len(inn.module_list))}
    for i, (m, c) in enumerate(zip(inn.module_list, inn.conditions)):
        meta.update(_block_meta(i, m, c, cc, D, variant))
    # The exporter's name in this string predates the package; it stays so that a re-export
    # of the committed fixtures is byte-identical (tests/fixtures/README.md).
    meta["innfer.producer"] = (f"innfer_export.py {EXPORTER_VERSION}, torch {torch.__version__}, "
                               f"FrEIA {variant}")
    return meta


def to_numpy(t):
    """A tensor's values as a NumPy array (C order, on the CPU); ``bfloat16``, which NumPy
    cannot hold, as a :class:`RawTensor` of its bytes."""
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return RawTensor("BF16", tuple(t.shape), t.view(torch.int16).numpy().astype("<i2").tobytes())
    return t.numpy().copy()


def numpy_state_dict(inn):
    """``inn.state_dict()`` with every tensor as :func:`to_numpy` gives it."""
    out = {}
    for k, v in inn.state_dict().items():
        if not isinstance(v, torch.Tensor):
            raise ValueError(f"{k}: not a tensor")
        out[k] = to_numpy(v)
    return out


def load_into_freia(inn, path):
    """Loads the tensors of an innfer model file into a FrEIA network of the same
    architecture (a strict ``inn.load_state_dict``). Returns ``inn``."""
    tensors, _ = read(path)
    expected = inn.state_dict()
    state = {}
    for k, v in tensors.items():
        t = torch.from_numpy(v)
        want = expected.get(k)
        if want is not None and t.dim() == 1 and want.dim() == 2 and not t.is_floating_point():
            # A hard permutation stored as an index (FrEIA head, innfer's training: out[i] =
            # in[index[i]]) loaded into FrEIA 0.2's 0/1 matrix (out = W x): W[i, index[i]] = 1.
            t = torch.nn.functional.one_hot(t.long(), want.shape[1]).to(want.dtype)
        state[k] = t
    inn.load_state_dict(state, strict=True)
    return inn
