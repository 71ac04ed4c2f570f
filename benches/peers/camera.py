#!/usr/bin/env python3
"""A camera frame, summarised: innfer against ONNX Runtime + NumPy, side by side in one run.

The task (docs/performance.md §camera-frame): a 256 x 256 frame, 8 band values per pixel, 32
posterior samples of the 4 parameters per pixel, reduced to their mean, standard deviation
and the 5 %, 50 % and 95 % quantiles. The model is a cINN of the camera model's shape: x 4
behind a logit on a box, y 8 behind `clr`, both standardised, 6 AllInOneBlocks with subnets
Linear(2 + 8 -> 64) ReLU Linear(64 -> 64) ReLU Linear(64 -> 4). Without --model it is a
random FrEIA network of that shape (the speed does not depend on the trained values); with
--model PATH an innfer model file of AllInOneBlocks (the shipped camera model), rebuilt as a
FrEIA network from its metadata and tensors.

The two engines, on the same frame, both on --threads threads (2):
* innfer: `Session.summarize(frame, 32, quantiles)` through the Python binding: one call into
  the library per frame, which draws the latent vectors, prepares the conditions, runs the
  chain and reduces, all in Rust (no Python inside it).
* what a user would write instead: the FrEIA network's inverse exported with
  torch.onnx.export, run by ONNX Runtime (intra_op_num_threads = threads) in chunks of
  --chunk pixels; z drawn by NumPy (float32, one generator per thread), the condition's
  `clr` and standardisation and the x standardisation and logit done in NumPy, the
  condition repeated 32 times, and NumPy's mean, std (ddof 1) and np.partition at the
  quantiles' ranks; the NumPy work of each chunk split over the same threads
  (ThreadPoolExecutor: NumPy releases the GIL in these loops). All of that is timed.

Before timing, ORT's samples are checked against innfer's inverse pass on the same latent
vectors and conditions (max |difference| must be below 1e-5, relative to 1 + |x|).

Protocol: a warm-up frame each, then --reps repetitions, the engines interleaved (innfer,
ORT, FMA peak, innfer, ...) so that load from elsewhere on a shared machine hits them alike;
the median of each is reported with the 1-minute load average, and the CPU seconds the
process used per frame (all threads: on a shared machine, what the frame cost when the wall
time says only what it took). The core's f32 FMA peak
comes from the peers bench's server (`cargo bench --bench peers -- --serve`, `peak`), in the
same run.

    python3 benches/peers/camera.py                    # build, check, time (about a minute)
    innfer phantom --out target/cube.npy --truth target/truth.npy
    python3 benches/peers/camera.py --model models/msi_oximetry.safetensors \
        --frame target/cube.npy --reps 9

Needs torch, FrEIA, onnxruntime, onnxscript, numpy; builds the library (cargo build
--release) and the peers bench. Prints one markdown table.
"""

import argparse
import concurrent.futures
import contextlib
import json
import os
import subprocess
import sys
import time
import warnings

from run import cpu_name  # benches/peers/run.py, beside this script

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))

X, Y, N, BLOCKS, HIDDEN = 4, 8, 32, 6, 64
SIDE = 256
QUANTILES = (0.05, 0.5, 0.95)


def build_random(seed):
    """A random FrEIA cINN of the camera model's shape, and its transforms and statistics."""
    import numpy as np
    import torch
    import torch.nn as nn
    import FrEIA.framework as Ff
    import FrEIA.modules as Fm

    torch.manual_seed(seed)

    def subnet(c_in, c_out):
        net = nn.Sequential(nn.Linear(c_in, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN),
                            nn.ReLU(), nn.Linear(HIDDEN, c_out))
        # A small last layer keeps the random chain's inverse well conditioned (as the peers'
        # allinone models, docs/performance.md §peer-models).
        nn.init.normal_(net[-1].weight, std=0.2)
        nn.init.normal_(net[-1].bias, std=0.2)
        return net

    inn = Ff.SequenceINN(X)
    for _ in range(BLOCKS):
        inn.append(Fm.AllInOneBlock, cond=0, cond_shape=(Y,), subnet_constructor=subnet,
                   affine_clamping=2.0, permute_soft=False)
    inn.eval()
    transforms = {
        "x_stats": (np.array([0.1, -0.2, 0.3, 0.0], np.float32),
                    np.array([1.5, 0.8, 1.2, 1.0], np.float32)),
        "y_stats": (np.linspace(-0.2, 0.2, Y).astype(np.float32), np.full(Y, 0.3, np.float32)),
        "x_bounds": [(0.0, 1.0), (0.0, 2.0), (-1.0, 1.0), (0.0, 10.0)],
        "y_transform": "clr",
    }
    return inn, transforms


def freia_from_file(path):
    """A FrEIA SequenceINN of AllInOneBlocks rebuilt from an innfer model file, with its weights,
    and the file's transforms and statistics."""
    import torch.nn as nn
    import FrEIA.framework as Ff
    import FrEIA.modules as Fm
    from innfer.export import load_into_freia, read_model

    f = read_model(path)
    arch, tensors = f.architecture, f.tensors
    if not f.layout or f.layout.get("kind") != "cinn":
        sys.exit(f"{path}: a cINN model is needed (innfer.layout = cinn)")
    dim, cond = int(arch["innfer.dim"]), int(arch["innfer.cond_dim"])
    inn = Ff.SequenceINN(dim)
    i = 0
    while f"innfer.block.{i}.type" in arch:
        key = f"innfer.block.{i}."
        if arch[key + "type"] != "AllInOneBlock":
            sys.exit(f"{path}: block {i} is a {arch[key + 'type']}; this script rebuilds AllInOneBlocks")
        spec = arch[key + "subnet.subnet"].split()

        def subnet(c_in, c_out, spec=spec, i=i):
            layers = []
            for token in spec:
                name, kind = token.split(":")
                if kind == "Linear":
                    out, inp = tensors[f"module_list.{i}.subnet.{name}.weight"].shape
                    layers.append(nn.Linear(inp, out))
                elif kind == "ReLU":
                    layers.append(nn.ReLU())
                else:
                    sys.exit(f"{path}: block {i}: layer {kind} is not rebuilt by this script")
            return nn.Sequential(*layers)

        inn.append(Fm.AllInOneBlock, cond=0, cond_shape=(cond,), subnet_constructor=subnet,
                   affine_clamping=float(arch.get(key + "clamp", "2.0")),
                   gin_block=arch.get(key + "gin_block", "false") == "true",
                   global_affine_type=arch.get(key + "global_affine_type", "SOFTPLUS"),
                   reverse_permutation=arch.get(key + "reverse_permutation", "false") == "true",
                   permute_soft=False)
        i += 1
    load_into_freia(inn, path)
    if arch.get("innfer.freia", "0.2") in ("head", "main"):
        # FrEIA main clamps the log-scale as alpha*tanh(a/alpha), FrEIA 0.2 (installed) as
        # alpha*tanh(a) (docs/blocks.md, AllInOneBlock): dividing the rows of the s-part of each
        # subnet's last layer by alpha makes 0.2 compute the same network.
        import torch
        with torch.no_grad():
            for block in inn.module_list:
                last = [m for m in block.subnet.modules() if isinstance(m, nn.Linear)][-1]
                half = last.out_features // 2
                last.weight[:half] /= block.clamp
                last.bias[:half] /= block.clamp
    inn.eval()
    transforms = {"x_stats": f.x_stats, "y_stats": f.y_stats, "x_bounds": f.x_bounds,
                  "y_transform": f.y_transform}
    return inn, transforms


def frame(seed):
    """A smooth 256 x 256 frame of 8 positive band values per pixel, [65536, 8] float32."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    bands = [0.3 + 0.2 * np.sin(2 * np.pi * (xx * (b + 1) / 3 + yy * (b % 3) / 2)) for b in range(Y)]
    y = np.stack(bands, axis=-1).reshape(-1, Y) * (0.8 + 0.4 * rng.random((SIDE * SIDE, 1)))
    return (y + 0.01 * rng.random(y.shape)).astype(np.float32)


class Pipeline:
    """The user's pipeline around ONNX Runtime: `summaries(ys)` gives (mean, std, quantiles)."""

    def __init__(self, onnx_path, transforms, threads, chunk, seed):
        import numpy as np
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        self.threads, self.chunk = threads, chunk
        self.pool = concurrent.futures.ThreadPoolExecutor(threads)
        self.rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(threads)]
        (xm, xs), (ym, ys) = transforms["x_stats"], transforms["y_stats"]
        self.x_mean, self.x_std = np.float32(xm), np.float32(xs)
        self.y_mean, self.y_std = np.float32(ym), np.float32(ys)
        lower = np.array([b[0] for b in transforms["x_bounds"]], np.float32)
        upper = np.array([b[1] for b in transforms["x_bounds"]], np.float32)
        self.lower, self.width = lower, upper - lower
        if transforms["y_transform"] != "clr" or not np.all(np.isfinite(self.width)):
            sys.exit("the pipeline is written for a clr condition and logit transforms on boxes")
        self.ranks = [max(1, int(np.ceil(q * N))) - 1 for q in QUANTILES]

    def condition(self, y):
        """clr, then standardised: what the network reads."""
        import numpy as np

        ly = np.log(y)
        c = ly - ly.mean(axis=1, keepdims=True)
        return ((c - self.y_mean) / self.y_std).astype(np.float32)

    def bounded(self, u):
        """x in raw units from the network's output."""
        import numpy as np

        v = u * self.x_std + self.x_mean
        return self.lower + self.width / (1.0 + np.exp(-v))

    def samples(self, z, c):
        return self.sess.run(None, {"z": z, "c": c})[0]

    def _split(self, fn, *arrays):
        """fn on the `threads` parts of `arrays` (split along the first axis) in the pool."""
        import numpy as np

        parts = [np.array_split(a, self.threads) for a in arrays]
        return list(self.pool.map(lambda k: fn(k, *[p[k] for p in parts]), range(self.threads)))

    def summaries(self, ys):
        import numpy as np

        pixels = ys.shape[0]
        mean = np.empty((pixels, X), np.float32)
        std = np.empty((pixels, X), np.float32)
        qs = np.empty((pixels, len(QUANTILES), X), np.float32)

        def prepare(k, y):
            z = self.rngs[k].standard_normal((y.shape[0] * N, X), dtype=np.float32)
            return z, np.repeat(self.condition(y), N, axis=0)

        def reduce(k, u, m, s, q):
            x = self.bounded(u).reshape(-1, N, X)
            m[:] = x.mean(axis=1)
            s[:] = x.std(axis=1, ddof=1)
            q[:] = np.partition(x, self.ranks, axis=1)[:, self.ranks, :]

        for p0 in range(0, pixels, self.chunk):
            p1 = min(pixels, p0 + self.chunk)
            parts = self._split(prepare, ys[p0:p1])
            z = np.concatenate([p[0] for p in parts])
            c = np.concatenate([p[1] for p in parts])
            u = self.samples(z, c)
            self._split(reduce, u, mean[p0:p1], std[p0:p1], qs[p0:p1])
        return mean, std, qs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="an innfer model file of AllInOneBlocks (default: a random one)")
    ap.add_argument("--frame", help="a band cube, .npy float32 [256, 256, 8], e.g. from `innfer "
                    "phantom` (default: a smooth synthetic frame; a trained model wants real bands)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=8192, help="pixels per ONNX Runtime call")
    ap.add_argument("--max-batch", type=int, default=4096, help="innfer session rows")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "camera"))
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    os.makedirs(args.out, exist_ok=True)

    import numpy as np
    import torch

    subprocess.run(["cargo", "build", "--release", "--lib", "-q"], cwd=ROOT, check=True)
    os.environ.setdefault("INNFER_LIB", os.path.join(ROOT, "target", "release"))
    import innfer

    if args.model:
        inn, transforms = freia_from_file(args.model)
        model_path = args.model
    else:
        inn, transforms = build_random(seed=7)
        model_path = os.path.join(args.out, "camera_random.safetensors")
        with contextlib.redirect_stdout(sys.stderr):
            innfer.export_freia(inn, model_path, layout={"kind": "cinn", "x": X, "y": Y}, **transforms)

    class Inverse(torch.nn.Module):
        def __init__(self, inn):
            super().__init__()
            self.inn = inn

        def forward(self, z, c):
            return self.inn(z, c=[c], rev=True)[0]

    onnx_path = os.path.join(args.out, "camera.onnx")
    z0, c0 = torch.randn(64, X), torch.randn(64, Y)
    with contextlib.redirect_stdout(sys.stderr), contextlib.redirect_stderr(open(os.devnull, "w")):
        torch.onnx.export(Inverse(inn).eval(), (z0, c0), onnx_path, input_names=["z", "c"],
                          output_names=["u"],
                          dynamic_shapes={"z": {0: torch.export.Dim("batch")},
                                          "c": {0: torch.export.Dim("batch")}},
                          opset_version=20, dynamo=True)

    if args.frame:
        ys = np.ascontiguousarray(np.load(args.frame), dtype=np.float32).reshape(-1, Y)
        if ys.shape[0] != SIDE * SIDE:
            sys.exit(f"{args.frame}: a [{SIDE}, {SIDE}, {Y}] band cube is needed")
    else:
        ys = frame(seed=11)
    pipeline = Pipeline(onnx_path, transforms, args.threads, args.chunk, seed=5)
    model = innfer.Model(model_path)
    session = model.session(max_batch=args.max_batch, seed=1)
    session.set_threads(args.threads)

    # The same latent vectors and conditions through both: ORT's samples are innfer's.
    check = 256
    z = np.random.default_rng(3).standard_normal((check * N, X), dtype=np.float32)
    y_rows = np.repeat(ys[:check], N, axis=0)
    x_ort = pipeline.bounded(pipeline.samples(z, np.repeat(pipeline.condition(ys[:check]), N, axis=0)))
    x_inn, _ = session.inverse(z, cond=y_rows)
    deviation = float(np.max(np.abs(x_ort - x_inn) / (1 + np.abs(x_inn))))
    print(f"ORT vs innfer on the same {check * N} latent vectors: max |dx|/(1+|x|) = {deviation:.1e}",
          file=sys.stderr)
    if not deviation < 1e-5:
        sys.exit("ONNX Runtime and innfer disagree: the comparison would be of different work")

    # The core's FMA peak, from the peers bench's server, among the same repetitions.
    built = subprocess.run(["cargo", "bench", "--bench", "peers", "--no-run", "--message-format=json", "-q"],
                           cwd=ROOT, check=True, capture_output=True, text=True).stdout
    exe = [json.loads(line).get("executable") for line in built.splitlines() if line.startswith("{")]
    exe = [e for e in exe if e and os.path.basename(e).startswith("peers")][-1]
    server = subprocess.Popen([exe, "--serve"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, bufsize=1)

    def peak():
        server.stdin.write("peak\n")
        server.stdin.flush()
        return float(server.stdout.readline())

    def timed(run):
        """Wall seconds, CPU seconds of this process (all its threads) and the result of run()."""
        t, c = time.perf_counter(), time.process_time()
        result = run()
        return time.perf_counter() - t, time.process_time() - c, result

    times = {"innfer": [], "ort": [], "innfer_cpu": [], "ort_cpu": [], "peak": []}
    loads = [os.getloadavg()[0]]
    for rep in range(args.reps + 1):  # repetition 0 warms up
        ti, ci, s_inn = timed(lambda: session.summarize(ys, N, QUANTILES))
        to, co, s_ort = timed(lambda: pipeline.summaries(ys))
        p = peak()
        if rep > 0:
            for key, value in (("innfer", ti), ("ort", to), ("innfer_cpu", ci), ("ort_cpu", co),
                               ("peak", p)):
                times[key].append(value)
        loads.append(os.getloadavg()[0])
        print(f"rep {rep}: innfer {ti:.3f} s ({ci:.2f} CPU-s), ORT + NumPy {to:.3f} s "
              f"({co:.2f} CPU-s), FMA peak {p:.0f} GFLOP/s (load {loads[-1]:.2f})", file=sys.stderr)
    server.stdin.write("quit\n")
    server.stdin.close()
    server.wait()

    # The two frames' summaries come from different latent vectors; their means agree as
    # posterior means of 32 samples do.
    spread = float(np.nanmedian(np.abs(s_inn.mean - s_ort[0]) / np.maximum(s_ort[1], 1e-6)))
    if s_inn.invalid_rows or not spread < 1.0:
        sys.exit(f"the two frames' means differ by {spread:.2f} posterior std (median): not the same posterior")

    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    samples = SIDE * SIDE * N
    # Per sample, the FLOPs of the network as written (2 per multiply-add of every Linear, the
    # condition's columns included), whichever way an engine computes them.
    flops = BLOCKS * 2 * ((X // 2 + Y) * HIDDEN + HIDDEN * HIDDEN + HIDDEN * X)
    import onnxruntime as ort

    print(f"\nMachine: {cpu_name()}, {os.cpu_count()} CPUs; onnxruntime {ort.__version__}, "
          f"numpy {np.__version__}, torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M %Z')}; "
          f"1-min load average during the run: min {min(loads):.2f}, median "
          f"{sorted(loads)[len(loads) // 2]:.2f}, max {max(loads):.2f}")
    print(f"Frame: {SIDE}x{SIDE} pixels x {N} samples = {samples:,} samples, summaries mean, std, "
          f"q{', q'.join(str(q) for q in QUANTILES)}; {args.threads} threads each; median of "
          f"{args.reps} interleaved repetitions; ORT vs innfer on the same latent vectors: "
          f"{deviation:.1e}; FMA peak {med['peak']:.0f} GFLOP/s per core "
          f"(network: {flops / 1e3:.1f} kFLOP per sample)")
    print("| engine | frame s | frames/s | samples/s | vs ORT + NumPy | CPU-s per frame | GFLOP/s "
          "| of the peak |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, key in (("innfer Session.summarize", "innfer"), ("ONNX Runtime + NumPy", "ort")):
        t = med[key]
        gflops = samples * flops / t / 1e9
        print(f"| {name} | {t:.3f} | {1 / t:.2f} | {samples / t / 1e6:.2f} M | "
              f"{med['ort'] / t:.2f}x | {med[key + '_cpu']:.2f} | {gflops:.0f} | "
              f"{gflops / (args.threads * med['peak']):.2f} |")


if __name__ == "__main__":
    main()
