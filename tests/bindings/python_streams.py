"""The stream contract through the Python binding (the package in bindings/python/innfer); run by
tests/bindings_python.rs (python_seek_and_threads) with INNFER_LIB, INNFER_BINDINGS and
INNFER_MODEL set, and INNFER_RUST_SAMPLES: what the Rust API draws for the whole run."""

import os
import sys

import numpy as np

sys.path.insert(0, os.environ["INNFER_BINDINGS"])
import innfer  # noqa: E402

model = innfer.Model(os.environ["INNFER_MODEL"])
# Four observations, PER samples each: one call over all of them.
PER = 4000
ys = np.array([[1.5, -0.25], [0.0, 2.0], [-1.0, 0.5], [0.75, 0.75]], dtype=np.float32)
whole = model.session(max_batch=8192, seed=9, stream=4).sample(ys, PER)
rust = np.fromfile(os.environ["INNFER_RUST_SAMPLES"], dtype=np.float32).reshape(whole.shape)
assert whole.tobytes() == rust.tobytes(), "one call differs from the Rust API"

# Every split into contiguous blocks, each drawn by its own seeked session on one thread or
# two (a block of two observations is a call long enough for two threads).
for blocks in ([0, 4], [0, 2, 4], [0, 1, 3, 4], [0, 1, 2, 3, 4]):
    for threads in (1, 2):
        parts = []
        for j0, j1 in zip(blocks, blocks[1:]):
            s = model.session(max_batch=8192, seed=9, stream=4)
            s.set_threads(threads)
            s.seek(j0 * PER)
            parts.append(s.sample(ys[j0:j1], PER))
        assert np.concatenate(parts).tobytes() == whole.tobytes(), (blocks, threads)

# Seeking back redraws an observation's samples.
s = model.session(max_batch=256, seed=9, stream=4)
s.seek(3 * PER)
assert s.sample(ys[3], PER).tobytes() == whole[3 * PER :].tobytes()

# Summaries of the same samples: the medians are the samples of rank PER / 2, and blocks of
# seeked sessions on one thread or two give the same bits.
full = model.session(max_batch=8192, seed=9, stream=4).summarize(ys, PER, [0.5])
median = np.sort(whole.reshape(4, PER, -1), axis=1)[:, PER // 2 - 1]
assert full.quantiles[:, 0].tobytes() == median.tobytes(), "summarize: medians"
assert np.allclose(full.mean, whole.reshape(4, PER, -1).mean(axis=1), rtol=1e-5, atol=1e-6)
for threads in (1, 2):
    parts = []
    for j0, j1 in ((0, 1), (1, 4)):
        s = model.session(max_batch=8192, seed=9, stream=4)
        s.set_threads(threads)
        s.seek(j0 * PER)
        parts.append(s.summarize(ys[j0:j1], PER, [0.5]))
    for i in range(3):
        assert np.concatenate([p[i] for p in parts]).tobytes() == full[i].tobytes(), (i, threads)

for bad in (lambda: s.set_threads(0), lambda: s.seek(-1), lambda: s.set_threads(5000)):
    try:
        bad()
    except innfer.Error as e:
        assert e.status == innfer.STATUS["INVALID_ARGUMENT"], e
    else:
        raise AssertionError("no error")
print("python streams: all checks passed")
