#!/usr/bin/env python3
"""Per-epoch training time: innfer's training mode vs FrEIA + PyTorch, side by side.

Both train the same conditional INN (AllInOneBlock, affine_clamping 2, SOFTPLUS global
affine, hard permutation; subnets Linear-ReLU-...-Linear) by maximum likelihood
mean(0.5*|z|^2 - log|det J|) with Adam (lr 1e-3) and gradient-norm clipping 10, on the same
data (the 8-mode GMM with the `some` labelling, standardised), the same batch size, the same
number of threads, one after the other on the same machine.

    python3 benches/train_vs_freia.py [--n 65536] [--batch 512] [--blocks 16] [--hidden 64]
        [--layers 2] [--epochs 3] [--threads 2] [--innfer-bin target/release/examples/train_epoch]

Without --innfer-bin it runs `cargo run --release --features train --example train_epoch`.
The reported time per framework is the median epoch (the first epoch is included in the list
but the median is robust to its warm-up).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

import FrEIA.framework as Ff
import FrEIA.modules as Fm

CENTRES = np.array([(-2.4142, 1), (-1, 2.4142), (1, 2.4142), (2.4142, 1),
                    (2.4142, -1), (1, -2.4142), (-1, -2.4142), (-2.4142, -1)], dtype=np.float64)
SOME = [0, 0, 0, 0, 1, 1, 2, 3]


def gmm8(n, seed=0):
    rng = np.random.default_rng(seed)
    mode = rng.integers(0, 8, size=n)
    x = CENTRES[mode] + 0.2 * rng.standard_normal((n, 2))
    y = np.zeros((n, 8))
    y[np.arange(n), np.array(SOME)[mode]] = 1.0
    return x.astype(np.float32), y.astype(np.float32)


def write_npy(path, a):
    np.save(path, np.ascontiguousarray(a, dtype=np.float32))


def freia_epochs(x, y, args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    xs = (x - x.mean(0)) / x.std(0)
    ysd = y.std(0)
    ysd[ysd < 1e-12] = 1.0
    ys = (y - y.mean(0)) / ysd
    xt, yt = torch.from_numpy(xs), torch.from_numpy(ys)

    def subnet(c_in, c_out):
        layers, w = [], c_in
        for _ in range(args.layers):
            layers += [torch.nn.Linear(w, args.hidden), torch.nn.ReLU()]
            w = args.hidden
        layers.append(torch.nn.Linear(w, c_out))
        return torch.nn.Sequential(*layers)

    inn = Ff.SequenceINN(x.shape[1])
    for _ in range(args.blocks):
        inn.append(Fm.AllInOneBlock, cond=0, cond_shape=(y.shape[1],),
                   subnet_constructor=subnet, affine_clamping=2.0, permute_soft=False)
    opt = torch.optim.Adam(inn.parameters(), lr=1e-3)
    n = xt.shape[0]
    iters = (n + args.batch - 1) // args.batch
    times = []
    for epoch in range(args.epochs):
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        total = 0.0
        for i in range(iters):
            idx = perm[i * args.batch:(i + 1) * args.batch]
            z, ld = inn(xt[idx], c=[yt[idx]])
            loss = (0.5 * (z ** 2).sum(1) - ld).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(inn.parameters(), 10.0)
            opt.step()
            total += loss.item()
        times.append(time.perf_counter() - t0)
        print(f"  FrEIA  epoch {epoch + 1}: {times[-1]:.3f} s  loss {total / iters:.4f}", flush=True)
    return times


def innfer_epochs(xp, yp, args):
    if args.innfer_bin:
        cmd = [args.innfer_bin]
    else:
        cmd = ["cargo", "run", "--quiet", "--release", "--features", "train",
               "--example", "train_epoch", "--"]
    cmd += ["--x", xp, "--y", yp, "--block", "allinone", "--blocks", str(args.blocks),
            "--hidden", str(args.hidden), "--layers", str(args.layers),
            "--batch", str(args.batch), "--epochs", str(args.epochs),
            "--threads", str(args.threads)]
    if args.store:
        cmd.append("--store")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    times = []
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            times.append(r["seconds"])
            print(f"  innfer epoch {r['epoch']}: {r['seconds']:.3f} s  loss {r['loss']:.4f}", flush=True)
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=65536)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--blocks", type=int, default=16)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--store", action="store_true", help="innfer: store activations instead of recomputing")
    p.add_argument("--innfer-bin", default=None)
    args = p.parse_args()

    x, y = gmm8(args.n)
    with tempfile.TemporaryDirectory() as d:
        xp, yp = os.path.join(d, "x.npy"), os.path.join(d, "y.npy")
        write_npy(xp, x)
        write_npy(yp, y)
        print(f"GMM8 `some`, {args.n} rows, batch {args.batch}, {args.blocks} AllInOneBlocks, "
              f"subnet {args.layers}x{args.hidden} ReLU, {args.threads} threads, "
              f"torch {torch.__version__}", flush=True)
        t_innfer = innfer_epochs(xp, yp, args)
        t_freia = freia_epochs(x, y, args)
    a, b = statistics.median(t_innfer), statistics.median(t_freia)
    print(f"median epoch: innfer {a:.3f} s, FrEIA {b:.3f} s; innfer is {b / a:.2f}x faster "
          f"({'meets' if b / a >= 2 else 'below'} the 2x goal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
