#!/usr/bin/env python3
"""Side-by-side benchmark: innfer against PyTorch eager, torch.compile and ONNX Runtime.

Builds the FrEIA models of docs/performance.md §peer-models (GLOW and AllInOne x toy/medical/large),
exports them with bindings/python/innfer_export.py, and times the inverse pass
``x = inn(z, rev=True)[0]`` of every engine on the same models in ONE run: batch 1, 64, 1024,
16384 and 1-2 threads; a warm-up, then 5 repetitions of >= 0.15 s, the median reported. The
engines' repetitions are interleaved (eager, compile, ORT, innfer, eager, ...) so that load
from elsewhere on a shared machine hits them alike; the 1-minute load average is printed.
innfer runs in its own process, the Rust bench binary in server mode
(``cargo bench --bench peers -- --serve``): no Python in its timing loop.

    python3 benches/peers/run.py                      # everything (about 15-25 minutes)
    python3 benches/peers/run.py --quick              # batch 1 and 1024, 1 thread
    python3 benches/peers/run.py --models glow_toy --batches 1 1024 --threads 1 2

Needs torch, FrEIA, onnxruntime, onnxscript, safetensors, numpy (not needed by CI: run by hand).
Prints one markdown table: samples/s per engine, innfer's ratio to the best peer, and for
one thread the core's FMA peak measured among the same repetitions, with innfer's GFLOP/s and
1.3x the best peer's as fractions of it (what a 1.3x bar asks of the core in that row).
"""

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))

SIZES = {"toy": (16, 8, 128, 1), "medical": (24, 8, 256, 2), "large": (64, 12, 512, 3)}
REPS, MIN_REP = 5, 0.15


def build(arch, size):
    import torch
    import torch.nn as nn
    import FrEIA.framework as Ff
    import FrEIA.modules as Fm

    dim, blocks, hidden, k = SIZES[size]
    last_std = 0.02 if arch == "glow" else 0.2
    torch.manual_seed(100 + k if arch == "glow" else k)

    def subnet(c_in, c_out):
        net = nn.Sequential(nn.Linear(c_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                            nn.ReLU(), nn.Linear(hidden, c_out))
        nn.init.normal_(net[-1].weight, std=last_std)
        nn.init.normal_(net[-1].bias, std=last_std)
        return net

    inn = Ff.SequenceINN(dim)
    for b in range(blocks):
        if arch == "glow":
            inn.append(Fm.GLOWCouplingBlock, subnet_constructor=subnet, clamp=2.0)
            inn.append(Fm.PermuteRandom, seed=b)
        else:
            inn.append(Fm.AllInOneBlock, subnet_constructor=subnet, affine_clamping=2.0,
                       permute_soft=False)
    inn.eval()
    return inn, dim


def flops_per_sample(arch, size):
    dim, blocks, hidden, _ = SIZES[size]
    l1, l2 = dim // 2, dim - dim // 2
    sub = lambda i, o: 2 * (i * hidden + hidden * hidden + hidden * o)
    if arch == "glow":
        return blocks * (sub(l1, 2 * l2) + sub(l2, 2 * l1))
    l2a = dim // 2
    return blocks * sub(dim - l2a, 2 * l2a)


def one_rep(fn, items):
    """Samples/s of one repetition: calls of `fn` for at least MIN_REP seconds."""
    t0, calls = time.perf_counter(), 0
    while True:
        fn()
        calls += 1
        el = time.perf_counter() - t0
        if el >= MIN_REP:
            break
    return calls * items / el


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Rev:
    def __init__(self, inn):
        import torch.nn as nn
        self.m = type("RevModule", (nn.Module,), {
            "__init__": lambda s, inn: (nn.Module.__init__(s), setattr(s, "inn", inn))[0],
            "forward": lambda s, z: s.inn(z, rev=True)[0],
        })(inn)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=[f"{a}_{s}" for s in SIZES for a in ("allinone", "glow")])
    ap.add_argument("--batches", nargs="*", type=int, default=[1, 64, 1024, 16384])
    ap.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    ap.add_argument("--engines", nargs="*", default=["eager", "compile", "ort", "innfer"])
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "peers"))
    ap.add_argument("--quick", action="store_true", help="batch 1 and 1024, 1 thread")
    ap.add_argument("--innfer-extra", nargs="*", default=[],
                    help="extra innfer weight-storage variants to time: bf16, f16")
    args = ap.parse_args()
    if args.quick:
        args.batches, args.threads = [1, 1024], [1]
    warnings.filterwarnings("ignore")
    os.makedirs(args.out, exist_ok=True)

    import numpy as np
    import torch
    from innfer_export import export_freia

    results = {}  # (model, batch, threads) -> {engine: rate}
    models = {}
    for name in args.models:
        arch, size = name.split("_")
        inn, dim = build(arch, size)
        path = os.path.join(args.out, f"{name}.safetensors")
        with contextlib.redirect_stdout(sys.stderr):
            export_freia(inn, path)
        models[name] = (inn, dim, path)
        print(f"exported {path}", file=sys.stderr)

    # innfer runs in its own process (benches/peers.rs --serve, no Python in its timing loop);
    # its repetitions interleave with the peers' so that load from elsewhere hits all alike.
    inn_cols = (["innfer"] if "innfer" in args.engines else []) + \
        [f"innfer_{v}" for v in args.innfer_extra]
    server = None
    if inn_cols:
        built = subprocess.run(["cargo", "bench", "--bench", "peers", "--no-run",
                                "--message-format=json", "-q"], cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout
        exe = [json.loads(l).get("executable") for l in built.splitlines() if l.startswith("{")]
        exe = [e for e in exe if e and os.path.basename(e).startswith("peers")][-1]
        server = subprocess.Popen([exe, "--serve"], cwd=ROOT, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)

        def ask(line):
            server.stdin.write(line + "\n")
            server.stdin.flush()
            return server.stdout.readline().strip()

        for name in args.models:
            assert ask(f"load {name} {models[name][2]}") == "ok"

    loads = [os.getloadavg()[0]]
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name in args.models:
            inn, dim, path = models[name]
            rev = Rev(inn).m.eval()
            compiled = torch.compile(rev) if "compile" in args.engines else None
            sess = None
            if "ort" in args.engines:
                import onnxruntime as ort
                onnx_path = os.path.join(args.out, f"{name}.onnx")
                if not os.path.exists(onnx_path):
                    z0 = torch.randn(4, dim)
                    with contextlib.redirect_stdout(sys.stderr):
                        torch.onnx.export(rev, (z0,), onnx_path, input_names=["z"],
                                          output_names=["x"],
                                          dynamic_shapes={"z": {0: torch.export.Dim("batch")}},
                                          opset_version=20, dynamo=True)
                so = ort.SessionOptions()
                so.intra_op_num_threads = threads
                so.inter_op_num_threads = 1
                sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
            for batch in args.batches:
                z = torch.randn(batch, dim)
                zn = z.numpy()
                engines = {}
                if "eager" in args.engines:
                    engines["eager"] = (lambda: rev(z), True)
                if compiled is not None:
                    engines["compile"] = (lambda: compiled(z), True)
                if sess is not None:
                    engines["ort"] = (lambda: sess.run(None, {"z": zn}), False)
                for col in inn_cols:
                    variant = "f32" if col == "innfer" else col.split("_", 1)[1]
                    engines[col] = (f"rep {name} {variant} {batch} {threads}", None)
                if server is not None and threads == 1:
                    # The core's FMA peak (GFLOP/s) among the same repetitions: this machine's
                    # clock moves between runs, so fractions of peak are read within a row.
                    engines["peak"] = ("peak", None)
                rates = {e: [] for e in engines}
                for rep in range(REPS + 1):  # repetition 0 is the warm-up (and compiles)
                    for e, (fn, grad_off) in engines.items():
                        if grad_off is None:
                            rate = float(ask(fn).split()[0])
                        elif grad_off:
                            with torch.inference_mode():
                                rate = one_rep(fn, batch)
                        else:
                            rate = one_rep(fn, batch)
                        if rep > 0:
                            rates[e].append(rate)
                r = results.setdefault((name, batch, threads), {})
                for e, v in rates.items():
                    r[e] = sorted(v)[REPS // 2]
                loads.append(os.getloadavg()[0])
                print(f"{name} b{batch} t{threads}: " +
                      ", ".join(f"{k} {v:,.0f}" for k, v in r.items()) +
                      f" (load {loads[-1]:.1f})", file=sys.stderr)
    if server is not None:
        server.stdin.write("quit\n")
        server.stdin.close()
        server.wait()

    peers = [e for e in ("eager", "compile", "ort") if e in args.engines]
    import onnxruntime as ort
    print(f"\nMachine: {cpu_name()}, {os.cpu_count()} CPUs; torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}; {time.strftime('%Y-%m-%d %H:%M %Z')}; "
          f"1-min load average during the run: min {min(loads):.1f}, median "
          f"{sorted(loads)[len(loads) // 2]:.1f}, max {max(loads):.1f}")
    head = ["model", "batch", "threads", *peers, *inn_cols,
            *[f"{c}/best peer" for c in inn_cols], "innfer GFLOP/s", "best peer GFLOP/s",
            "FMA peak GFLOP/s", "innfer/peak", "1.3x best peer/peak"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * 3 + "---:|" * (len(head) - 3))
    fmt = lambda v: "–" if v is None else (f"{v/1e3:,.1f}k" if v >= 1e4 else f"{v:,.0f}")
    for threads in args.threads:
        for name in args.models:
            arch, size = name.split("_")
            for batch in args.batches:
                r = results.get((name, batch, threads), {})
                best = max([r[p] for p in peers if p in r] or [0])
                ratios = [f"{r[c] / best:.2f}x" if r.get(c) and best else "–" for c in inn_cols]
                flops = flops_per_sample(arch, size) / 1e9
                inn_gf = r.get("innfer", 0) * flops
                peer_gf = best * flops
                peak = r.get("peak")
                gflops = [f"{inn_gf:.0f}" if inn_gf else "–", f"{peer_gf:.0f}" if best else "–",
                          f"{peak:.0f}" if peak else "–",
                          f"{inn_gf / peak:.2f}" if peak and inn_gf else "–",
                          f"{1.3 * peer_gf / peak:.2f}" if peak and best else "–"]
                cells = [name, str(batch), str(threads)] + [fmt(r.get(e)) for e in peers + inn_cols]
                print("| " + " | ".join(cells + ratios + gflops) + " |")


if __name__ == "__main__":
    main()
