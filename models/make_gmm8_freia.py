"""Train and export innfer's shipped default model: a conditional INN (cINN) for the 8-mode
Gaussian mixture of Ardizzone et al. 2019, 'some' labelling.

    python3 models/make_gmm8_freia.py

Writes models/gmm8_some_freia.safetensors (innfer format 1, layout cinn x=2 y=8, x standardised).
Data as in vislearn/analyzing_inverse_problems toy_8-modes/data.py (see
docs/tasks.md §gmm8): octagon modes, std 0.2 per coordinate, 8-dim one-hot
labels with label_map 'some' = [0,0,0,0,1,1,2,3].  Trained by maximum likelihood in FrEIA 0.2.

Architecture: 8 x (GLOWCouplingBlock(cond (8,), clamp 2.0) + PermuteRandom(seed=k)), subnets
Linear-ReLU-Linear-ReLU-Linear with 96 hidden units.  8 x AllInOneBlock (128 hidden, soft
permutation) was tried first: with the same compute it plateaued at ~0.96 of label-0 samples
within 3 sigma (GLOW: ~0.98); GLOW with 128 hidden units gives a file > 1 MB.
The shipped model is now trained by `innfer train` (models/README.md); this script is the worked FrEIA → innfer example.
"""

import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

import FrEIA.framework as Ff
import FrEIA.modules as Fm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bindings", "python"))
from innfer_export import export_freia, load_into_freia  # noqa: E402

OUT = os.path.join(HERE, "gmm8_some_freia.safetensors")

# ------------------------------------------------------------------ settings
SEED = 0
N_TRAIN = 200_000          # fresh training samples
N_TEST = 10_000            # held out (first rows after the shuffle, as in the paper code)
BATCH = 512
EPOCHS = 24                # 390 steps per epoch, 9360 steps in all
HOLD_EPOCHS = 12           # lr LR for the first HOLD_EPOCHS epochs, then an exponential decay
LR = 1e-3
FINAL_DECAY = 0.02         # ... (per step) down to LR * FINAL_DECAY at the last step
N_BLOCKS = 8
HIDDEN = 96
CLAMP = 2.0
GRAD_CLIP = 10.0           # global-norm clip, a guard against rare spikes
N_POST = 4000              # posterior samples per label for the quality check
RADIUS = 0.6               # 3 sigma

VERTS = np.array([(-2.4142, 1.), (-1., 2.4142), (1., 2.4142), (2.4142, 1.),
                  (2.4142, -1.), (1., -2.4142), (-1., -2.4142), (-2.4142, -1.)])
LABEL_MAP = [0, 0, 0, 0, 1, 1, 2, 3]   # 'some'
N_LABELS = 4
Y_DIM = 8


def make_data(n):
    """toy_8-modes/data.py: modes in blocks of n//8 rows, one-hot labels, then a shuffle."""
    np.random.seed(SEED)
    pos = np.random.normal(size=(n, 2), scale=0.2)
    labels = np.zeros((n, Y_DIM))
    k = n // 8
    for i, v in enumerate(VERTS):
        pos[i * k:(i + 1) * k] += v
        labels[i * k:(i + 1) * k, LABEL_MAP[i]] = 1
    perm = np.random.permutation(n)
    return pos[perm].astype(np.float32), labels[perm].astype(np.float32)


def subnet(c_in, c_out):
    return nn.Sequential(nn.Linear(c_in, HIDDEN), nn.ReLU(),
                         nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                         nn.Linear(HIDDEN, c_out))


def build_inn():
    inn = Ff.SequenceINN(2)
    for k in range(N_BLOCKS):
        inn.append(Fm.GLOWCouplingBlock, cond=0, cond_shape=(Y_DIM,), subnet_constructor=subnet,
                   clamp=CLAMP)
        inn.append(Fm.PermuteRandom, seed=k)
    return inn


def nll(inn, x, y):
    z, logdet = inn(x, c=[y])
    return (0.5 * (z ** 2).sum(1) - logdet).mean()


@torch.no_grad()
def sample_posterior(inn, label, n, x_mean, x_std, gen):
    y = torch.zeros(n, Y_DIM)
    y[:, label] = 1
    z = torch.randn(n, 2, generator=gen)
    x, _ = inn(z, c=[y], rev=True)
    return x * x_std + x_mean


def main():
    torch.set_num_threads(2)
    torch.manual_seed(SEED)

    x_all, y_all = make_data(N_TRAIN + N_TEST)
    x_te, y_te = torch.from_numpy(x_all[:N_TEST]), torch.from_numpy(y_all[:N_TEST])
    x_tr, y_tr = torch.from_numpy(x_all[N_TEST:]), torch.from_numpy(y_all[N_TEST:])
    x_mean = x_tr.double().mean(0).float()
    x_std = x_tr.double().std(0).float()
    print(f"data: {len(x_tr)} train / {len(x_te)} test, x_mean {x_mean.tolist()}, x_std {x_std.tolist()}")
    xs_tr = (x_tr - x_mean) / x_std
    xs_te = (x_te - x_mean) / x_std
    # NLL in raw units, with the Gaussian constant = loss + sum(log std) + log(2 pi)
    raw_shift = float(torch.log(x_std).sum()) + math.log(2 * math.pi)

    inn = build_inn()
    n_par = sum(p.numel() for p in inn.parameters() if p.requires_grad)
    print(f"model: SequenceINN(2), {N_BLOCKS} x (GLOWCouplingBlock(cond (8,), subnet {HIDDEN}-{HIDDEN}, "
          f"clamp {CLAMP}) + PermuteRandom), {n_par} trainable parameters")

    steps_per_epoch = len(x_tr) // BATCH
    total = EPOCHS * steps_per_epoch
    opt = torch.optim.Adam([p for p in inn.parameters() if p.requires_grad], lr=LR)
    hold = HOLD_EPOCHS * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 1.0 if s < hold else FINAL_DECAY ** ((s - hold) / (total - hold)))
    gen = torch.Generator().manual_seed(SEED)

    t0 = time.time()
    for ep in range(EPOCHS):
        inn.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        run = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * BATCH:(s + 1) * BATCH]
            loss = nll(inn, xs_tr[idx], y_tr[idx])
            if not torch.isfinite(loss):
                raise RuntimeError(f"non-finite loss at epoch {ep} step {s}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(inn.parameters(), GRAD_CLIP)
            opt.step()
            sched.step()
            run += loss.item()
        inn.eval()
        with torch.no_grad():
            te = float(nll(inn, xs_te, y_te))
        print(f"epoch {ep + 1:2d}/{EPOCHS}  train NLL {run / steps_per_epoch:.4f}  test NLL {te:.4f} "
              f"(raw {te + raw_shift:.4f})  lr {sched.get_last_lr()[0]:.2e}  {time.time() - t0:.0f}s",
              flush=True)

    # reference: the true conditional density's NLL on the test set (raw units)
    with torch.no_grad():
        d2 = ((x_te[:, None, :].double() - torch.from_numpy(VERTS)[None]) ** 2).sum(-1)   # [N, 8]
        own = torch.tensor([[LABEL_MAP[i] == int(l) for i in range(8)] for l in y_te.argmax(1)])
        logp_modes = -d2 / (2 * 0.04) - math.log(2 * math.pi * 0.04)
        logp = torch.logsumexp(logp_modes.masked_fill(~own, -math.inf), 1) - torch.log(own.sum(1).double())
        print(f"true posterior NLL on the test set (raw units): {float(-logp.mean()):.4f}")

    # ------------------------------------------------------------ quality check
    print(f"posterior check: {N_POST} samples per label, hit = within {RADIUS} of a mode carrying the label")
    gen_q = torch.Generator().manual_seed(1234)
    worst = 1.0
    quality = {}
    for lab in range(N_LABELS):
        modes = [i for i in range(8) if LABEL_MAP[i] == lab]
        xs = sample_posterior(inn, lab, N_POST, x_mean, x_std, gen_q).double()
        d = torch.cdist(xs, torch.from_numpy(VERTS[modes]))      # [N, len(modes)]
        dmin, nearest = d.min(1)
        hit = float((dmin < RADIUS).double().mean())
        split = [float((nearest == j).double().mean()) for j in range(len(modes))]
        worst = min(worst, hit)
        quality[lab] = (hit, split)
        print(f"  label {lab}: modes {modes}  within 3 sigma {hit:.4f}  mass split "
              + " / ".join(f"{s:.3f}" for s in split))
    print(f"  (exact posterior: within 3 sigma {1 - math.exp(-4.5):.4f}, equal split)")
    if worst <= 0.97:
        print(f"WARNING: worst within-3-sigma fraction {worst:.4f} <= 0.97")

    # ------------------------------------------------------------ export and verification
    meta = export_freia(inn, OUT, layout={"kind": "cinn", "x": 2, "y": 8},
                        x_stats=(x_mean, x_std))
    size = os.path.getsize(OUT)
    print(f"wrote {OUT}: {size} bytes; producer {meta['innfer.producer']!r}")
    assert size < 1_000_000

    gz = torch.Generator().manual_seed(7)
    z = torch.randn(16, 2, generator=gz)
    y = torch.eye(Y_DIM)[torch.tensor([LABEL_MAP[i % 8] for i in range(16)])]
    with torch.no_grad():
        x_before, j_before = inn(z, c=[y], rev=True)
    torch.manual_seed(999)
    np.random.seed(999)          # different random permutations in the fresh model
    inn2 = load_into_freia(build_inn(), OUT)
    inn2.eval()
    with torch.no_grad():
        x_after, j_after = inn2(z, c=[y], rev=True)
    dx = float((x_after - x_before).abs().max())
    dj = float((j_after - j_before).abs().max())
    print(f"reload check (FrEIA inverse on 16 fixed z): max |dx| {dx:.3g}, max |dlogdet| {dj:.3g}")
    assert dx == 0.0 and dj == 0.0, "reloaded model differs"

    from safetensors import safe_open
    with safe_open(OUT, "pt") as f:
        m = f.metadata()
    assert m["innfer.layout"] == "cinn" and m["innfer.layout.x"] == "2" and m["innfer.layout.y"] == "8"
    print(f"metadata: freia {m['innfer.freia']}, x_mean {m['innfer.x_mean']}, x_std {m['innfer.x_std']}")
    print(f"total time {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
