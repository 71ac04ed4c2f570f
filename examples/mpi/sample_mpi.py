"""sample_mpi.py: posterior samples for a file of observations, split over MPI ranks with
mpi4py, with the same bits as one process (docs/scaling.md). The Python twin of sample_mpi.c.

    usage: mpirun -n P python3 sample_mpi.py MODEL OBS.npy N SEED OUT.npy [THREADS]

Arguments and output as sample_mpi.c: OUT.npy is float32 [m*N, x_dim], the file
`innfer sample MODEL --y OBS.npy -n N --seed SEED --output OUT.npy` writes. Needs mpi4py, NumPy
and the Python binding (bindings/python on PYTHONPATH, INNFER_LIB naming libinnfer.so).

Rank 0 reads the model file and broadcasts its bytes; every rank loads the model from them;
rank 0 reads the observations and scatters contiguous blocks; each rank seeks its random
stream to the first sample of its block (Session.seek) and writes its samples into the one
output file with MPI-IO at their place. Any failure prints the reason and calls Abort, which
ends every rank. INNFER_MPI_CORRUPT_RANK=r damages the model bytes rank r received.
"""

import io
import os
import sys

import numpy as np
from mpi4py import MPI

import innfer

MIN_BATCH = 4096  # rows per pass; at least 256 per thread, so each thread gets a long run
CHUNK_ROWS = 65536  # sample rows per call and per write
BCAST_BYTES = 1 << 30  # bytes per Bcast (counts are C ints)

comm = MPI.COMM_WORLD
rank, ranks = comm.Get_rank(), comm.Get_size()


def fail(message):
    """Prints the reason and ends the whole job (every rank)."""
    sys.stderr.write(f"sample_mpi.py: rank {rank}: {message}\n")
    sys.stderr.flush()
    comm.Abort(1)


def npy_header(rows, cols):
    """What numpy (and `innfer sample`) writes before float32 [rows, cols] data."""
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (rows, cols)})
    return f.getvalue()


def main(model_path, obs_path, n, seed, out_path, threads):
    # The model: one read on rank 0, its bytes broadcast.
    length = np.zeros(1, dtype=np.int64)
    if rank == 0:
        try:
            data = np.fromfile(model_path, dtype=np.uint8)
        except OSError as e:
            fail(f"cannot read {model_path}: {e.strerror}")
        length[0] = data.size
    comm.Bcast(length, root=0)
    if rank != 0:
        data = np.empty(length[0], dtype=np.uint8)
    for off in range(0, data.size, BCAST_BYTES):
        comm.Bcast(data[off : off + BCAST_BYTES], root=0)
    if os.environ.get("INNFER_MPI_CORRUPT_RANK") == str(rank) and data.size > 16:
        data[8:16] = ord("X")
    try:
        model = innfer.Model.from_bytes(data)
    except innfer.Error as e:
        fail(f"cannot load the model broadcast from {model_path}: {e.message}")
    del data  # the model keeps its own copy
    xd, yd = model.x_dim, model.y_dim

    # The observations: read on rank 0, contiguous blocks scattered.
    m_all = np.zeros(1, dtype=np.int64)
    y_all = None
    if rank == 0:
        try:
            y_all = np.load(obs_path)
        except (OSError, ValueError) as e:
            fail(f"cannot read {obs_path}: {e}")
        y_all = np.ascontiguousarray(np.atleast_2d(y_all), dtype=np.float32)
        if y_all.ndim != 2 or y_all.shape[1] != yd:
            fail(f"{obs_path}: rows of {y_all.shape[-1]} values, the model's y_dim is {yd}")
        m_all[0] = y_all.shape[0]
    comm.Bcast(m_all, root=0)
    m_all = int(m_all[0])
    counts = [m_all // ranks + (r < m_all % ranks) for r in range(ranks)]
    starts = [r * (m_all // ranks) + min(r, m_all % ranks) for r in range(ranks)]
    j0, m = starts[rank], counts[rank]
    y = np.empty((m, yd), dtype=np.float32)
    send = [y_all, [c * yd for c in counts], [s * yd for s in starts], MPI.FLOAT] if rank == 0 else None
    comm.Scatterv(send, y, root=0)
    del y_all

    # This rank's session: the run's stream, at the first sample of observation j0.
    session = model.session(max_batch=max(MIN_BATCH, 256 * threads), seed=seed)
    session.set_threads(threads)
    session.seek(j0 * n)

    # One output file: rank 0 writes the header, every rank its rows at their place.
    header = npy_header(m_all * n, xd)
    out = MPI.File.Open(comm, out_path, MPI.MODE_CREATE | MPI.MODE_WRONLY)
    out.Set_size(len(header) + m_all * n * xd * 4)
    if rank == 0:
        out.Write_at(0, header)

    def write_rows(first, x):
        out.Write_at(len(header) + first * xd * 4, x)

    if n < CHUNK_ROWS:
        per_call = CHUNK_ROWS // n
        for j in range(j0, j0 + m, per_call):
            block = y[j - j0 : j - j0 + per_call]
            write_rows(j * n, session.sample(block, n))
    else:
        for j in range(j0, j0 + m):  # one observation in several calls
            for k in range(0, n, CHUNK_ROWS):
                write_rows(j * n + k, session.sample(y[j - j0], min(CHUNK_ROWS, n - k)))
    out.Close()
    return m_all


if __name__ == "__main__":
    if len(sys.argv) not in (6, 7):
        if rank == 0:
            sys.stderr.write("usage: mpirun -n P python3 sample_mpi.py MODEL OBS.npy N SEED OUT.npy [THREADS]\n")
        sys.exit(2)
    start = MPI.Wtime()
    try:
        n, seed = int(sys.argv[3]), int(sys.argv[4])
        threads = int(sys.argv[6]) if len(sys.argv) == 7 else 1
        if n < 1 or threads < 1:
            fail("N and THREADS must be positive")
        m_all = main(sys.argv[1], sys.argv[2], n, seed, sys.argv[5], threads)
    except Exception as e:  # any failure ends the job, never leaves ranks waiting
        fail(f"{type(e).__name__}: {e}")
    slowest = comm.reduce(MPI.Wtime() - start, op=MPI.MAX, root=0)
    if rank == 0:
        print(
            f"sample_mpi.py: {m_all} observations x {n} samples -> {sys.argv[5]} on {ranks} ranks x "
            f"{threads} threads: {slowest:.3f} s, {m_all * n / slowest:.0f} samples/s"
        )
