"""Teacher-student MLP n_in -> n1 -> n2 -> 1 (default 3 -> 32 -> 16 -> 1), trained in batches of runs.

The setup of arXiv:2509.01349, written so that the R independent
runs of a grid cell train as one batched numpy computation:

    features   a = f(M x)            M: (n1, n_in)  first layer, shared by teacher and student
    output     y = Z . f(W a)        W: (n2, n1)    middle layer, the only trained matrix
                                     Z: (n2,)       readout, shared by teacher and student
    loss       L = 1/(2B) sum_b (y_b - t_b)^2       (1/2 MSE over a mini-batch of B points)

with f = tanh (or relu / identity for the universality collection), no biases, inputs
x ~ N(0, I_n_in) and targets t = teacher output.  Teacher weights are N(0, 1/fan_in); the
student's W starts N(0, sigma_W^2 / n1).  SGD: W <- W - lr dL/dW with the hand-written

    dL/dW = (1/B) sum_b  delta_b a_b^T,   delta_b = (y_b - t_b) Z * f'(W a_b)   (shape n2 x n1).

Data follow the authors' code (phase_ml ``generate.py``): each run has its own fixed
training set of ``n_batches`` mini-batches of B points, visited in the same order every
epoch, and a held-out test set.  The temperature of the SGD noise is T = lr / B.

**Conventions of the batched arrays** (R = runs, leading axis everywhere):
``M`` (R, n1, n_in), ``W`` (R, n2, n1), ``Z`` (R, n2), inputs ``x`` (R, N, n_in), outputs
(R, N).  Run r draws everything from its own generators seeded by ``[seed, run_offset + r, k]``
(k = 0 teacher, 1 student initialisation, 2 training data, 3 test data), so
``draw_runs(R, ...)`` is exactly the stack of ``draw_runs(1, ..., run_offset=r)``: a run's
numbers never depend on how many runs share its batch, and batched and one-at-a-time
training agree to float tolerance (tests/test_phases_model.py).

**Speed.** :func:`train_sgd` precomputes the first-layer features of every training point
(M is fixed) and runs the SGD steps in a C kernel (``physml/kernels/sgd_teacher_student.c``,
:mod:`physml.native`): one fused loop per run that keeps the pre-activations and deltas in
SIMD registers, in an AVX-512, an AVX2 and a baseline clone (benchmarks/phase_cell.py
measures each).  Its numpy twin (:class:`_ReferenceSGD`, about ten batched numpy calls per
SGD step for all runs together) is the fallback where no C compiler exists, and the tests
hold every clone against it.  ``engine="auto"`` runs whichever of the clones this CPU runs
and the twin was fastest in a short calibration at first use (:func:`physml.native.calibration`,
cached per CPU model, shape, batch size and number of runs); the result records the clone.
Run either with one thread per process (``OPENBLAS_NUM_THREADS=1``) and split runs across
processes: threads only slow these tiny matrix products down.

Public API (stable; the RMT study reuses it):

- :class:`Architecture`, :class:`Runs`, :class:`Dataset`, :class:`TrainResult`
- :func:`draw_runs` -- teachers, shared layers and student initialisations of R runs
- :func:`draw_data` -- training and test sets of R runs (teacher targets included)
- :func:`features`, :func:`forward`, :func:`loss` -- batched forward pass
- :func:`loss_and_grad` -- batched loss and hand-written gradient dL/dW
- :func:`train_sgd` -- batched SGD with per-run divergence stop and W snapshots
"""

from __future__ import annotations

import ctypes
import functools
import os
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from physml import native

ACTIVATIONS = ("tanh", "relu", "identity")

# generator stream index per kind of random draw (the third entry of a run's seed)
_STREAM_TEACHER, _STREAM_STUDENT, _STREAM_TRAIN, _STREAM_TEST = 0, 1, 2, 3


@dataclass(frozen=True)
class Architecture:
    """Widths n_in -> n1 -> n2 -> 1 and the activation f of both hidden layers."""

    n_in: int = 3
    n1: int = 32
    n2: int = 16
    activation: str = "tanh"

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if min(self.n_in, self.n1, self.n2) < 1:
            raise ValueError(f"widths must be positive, got {self.n_in}, {self.n1}, {self.n2}")


@dataclass
class Runs:
    """R teacher-student pairs.  ``W0`` is the student's initial middle matrix."""

    arch: Architecture
    M: np.ndarray          # (R, n1, n_in) first layer, shared
    W_teacher: np.ndarray  # (R, n2, n1)
    Z: np.ndarray          # (R, n2) readout, shared
    W0: np.ndarray         # (R, n2, n1) student initialisation, N(0, sigma_w^2 / n1)
    sigma_w: float
    seed: int
    run_ids: np.ndarray    # (R,) global run index of each run: its generators are seeded [seed, id, k]

    @property
    def n_runs(self) -> int:
        return self.M.shape[0]

    def select(self, idx) -> "Runs":
        """The runs ``idx`` (a slice or index array) as a new :class:`Runs`."""
        idx = np.atleast_1d(np.arange(self.n_runs)[idx])
        return Runs(self.arch, self.M[idx], self.W_teacher[idx], self.Z[idx], self.W0[idx],
                    self.sigma_w, self.seed, self.run_ids[idx])


@dataclass
class Dataset:
    """Fixed training set (``n_batches`` mini-batches of ``batch_size``) and test set of R runs."""

    x_train: np.ndarray  # (R, n_batches * batch_size, n_in)
    y_train: np.ndarray  # (R, n_batches * batch_size) teacher outputs
    x_test: np.ndarray   # (R, n_test, n_in)
    y_test: np.ndarray   # (R, n_test)
    batch_size: int

    @property
    def n_batches(self) -> int:
        return self.x_train.shape[1] // self.batch_size

    def select(self, idx) -> "Dataset":
        idx = np.atleast_1d(np.arange(self.x_train.shape[0])[idx])
        return Dataset(self.x_train[idx], self.y_train[idx], self.x_test[idx], self.y_test[idx],
                       self.batch_size)


@dataclass
class TrainResult:
    """Outcome of :func:`train_sgd`.

    ``snapshots[i]`` is W (R, n2, n1) after ``snapshot_steps[i]`` SGD steps (step 0 = the
    initialisation).  A divergent run keeps, from its stop on, the W it had when it stopped.
    ``diverged_step`` is -1 for runs that never diverged, else the number of steps done when
    the divergence was detected; ``last_batch_loss`` is the loss of the last mini-batch each
    run saw (at its stop for a divergent run).
    """

    snapshot_steps: np.ndarray  # (S,)
    snapshots: np.ndarray       # (S, R, n2, n1)
    W: np.ndarray               # (R, n2, n1) final W (as stopped for divergent runs)
    diverged: np.ndarray        # (R,) bool
    diverged_step: np.ndarray   # (R,) int64
    last_batch_loss: np.ndarray  # (R,)
    n_steps: int
    lr: float
    batch_size: int
    engine: str = "reference"  # which code ran the SGD: "native" (C kernel) or "reference" (numpy)
    clone: str = "none"        # the kernel clone that ran (physml.native.CLONES), "none" for numpy

    @property
    def temperature(self) -> float:
        return self.lr / self.batch_size


# --------------------------------------------------------------------------- drawing

def _run_rng(seed: int, run: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(run), int(stream)])


def draw_runs(n_runs: int, sigma_w: float, seed: int, *, arch: Architecture = Architecture(),
              run_offset: int = 0, dtype=np.float32) -> Runs:
    """Teachers and student initialisations of runs ``run_offset .. run_offset + n_runs - 1``.

    Teacher: M ~ N(0, 1/n_in), W_teacher ~ N(0, 1/n1), Z ~ N(0, 1/n2) (variance 1/fan_in).
    Student: the same M and Z, W0 = sigma_w / sqrt(n1) * G with G standard normal, drawn from
    its own stream, so runs with equal seeds but different ``sigma_w`` share the direction G.
    """
    if sigma_w < 0:
        raise ValueError(f"sigma_w must be >= 0, got {sigma_w}")
    a = arch
    M = np.empty((n_runs, a.n1, a.n_in))
    Wt = np.empty((n_runs, a.n2, a.n1))
    Z = np.empty((n_runs, a.n2))
    W0 = np.empty((n_runs, a.n2, a.n1))
    for r in range(n_runs):
        g = _run_rng(seed, run_offset + r, _STREAM_TEACHER)
        M[r] = g.standard_normal((a.n1, a.n_in)) / np.sqrt(a.n_in)
        Wt[r] = g.standard_normal((a.n2, a.n1)) / np.sqrt(a.n1)
        Z[r] = g.standard_normal(a.n2) / np.sqrt(a.n2)
        W0[r] = _run_rng(seed, run_offset + r, _STREAM_STUDENT).standard_normal((a.n2, a.n1))
    W0 *= sigma_w / np.sqrt(a.n1)
    return Runs(a, M.astype(dtype), Wt.astype(dtype), Z.astype(dtype), W0.astype(dtype),
                float(sigma_w), int(seed), np.arange(run_offset, run_offset + n_runs))


def draw_data(runs: Runs, batch_size: int, n_batches: int, n_test: int, *,
              dtype=None) -> Dataset:
    """Each run's training set (``n_batches`` x ``batch_size`` points) and test set
    (``n_test`` points), x ~ N(0, I), labelled by that run's teacher."""
    if batch_size < 1 or n_batches < 1 or n_test < 1:
        raise ValueError("batch_size, n_batches and n_test must be positive")
    dtype = dtype or runs.M.dtype
    R, n_in = runs.n_runs, runs.arch.n_in
    n_train = batch_size * n_batches
    x_train = np.empty((R, n_train, n_in), dtype=dtype)
    x_test = np.empty((R, n_test, n_in), dtype=dtype)
    for r, run in enumerate(runs.run_ids):
        x_train[r] = _run_rng(runs.seed, run, _STREAM_TRAIN).standard_normal((n_train, n_in))
        x_test[r] = _run_rng(runs.seed, run, _STREAM_TEST).standard_normal((n_test, n_in))
    y_train = forward(runs, x_train, runs.W_teacher)
    y_test = forward(runs, x_test, runs.W_teacher)
    return Dataset(x_train, y_train, x_test, y_test, int(batch_size))


# --------------------------------------------------------------------------- forward / gradient

def activation(name: str, u: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """f(u) for f in :data:`ACTIVATIONS`."""
    if name == "tanh":
        return np.tanh(u, out=out)
    if name == "relu":
        return np.maximum(u, 0, out=out)
    if name == "identity":
        if out is None:
            return u.copy()
        out[...] = u
        return out
    raise ValueError(f"unknown activation {name!r}")


def activation_derivative(name: str, u: np.ndarray, s: np.ndarray) -> np.ndarray:
    """f'(u), given u and s = f(u)."""
    if name == "tanh":
        return 1 - s * s
    if name == "relu":
        return (u > 0).astype(u.dtype)
    if name == "identity":
        return np.ones_like(u)
    raise ValueError(f"unknown activation {name!r}")


def features(runs: Runs, x: np.ndarray) -> np.ndarray:
    """First-layer features a = f(M x): (R, N, n_in) -> (R, N, n1)."""
    return activation(runs.arch.activation, np.matmul(x, runs.M.transpose(0, 2, 1)))


def hidden(runs: Runs, x: np.ndarray, W: np.ndarray, a: np.ndarray | None = None):
    """(a, u, s): features a (R, N, n1), pre-activations u = W a and s = f(u) (R, N, n2)."""
    a = features(runs, x) if a is None else a
    u = np.matmul(a, W.transpose(0, 2, 1))
    return a, u, activation(runs.arch.activation, u)


def forward(runs: Runs, x: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Network output y = Z . f(W f(M x)) for every run: x (R, N, n_in), W (R, n2, n1) -> (R, N)."""
    _, _, s = hidden(runs, x, W)
    return np.einsum("rnk,rk->rn", s, runs.Z)


def loss(runs: Runs, x: np.ndarray, y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """1/2 MSE per run (R,) of W on the points (x, y)."""
    e = forward(runs, x, W) - y
    return 0.5 * np.mean(e * e, axis=1)


def loss_and_grad(runs: Runs, x: np.ndarray, y: np.ndarray, W: np.ndarray, a: np.ndarray | None = None):
    """Per-run loss (R,) and hand-written gradient dL/dW (R, n2, n1) on the points (x, y):
    dL/dW = (1/N) sum_n delta_n a_n^T, delta_n = (y_n - t_n) Z * f'(u_n).  ``a``: the
    first-layer features of x, where already computed."""
    a, u, s = hidden(runs, x, W, a)
    e = np.einsum("rnk,rk->rn", s, runs.Z) - y
    delta = e[:, :, None] * runs.Z[:, None, :] * activation_derivative(runs.arch.activation, u, s)
    grad = np.matmul(delta.transpose(0, 2, 1), a) / x.shape[1]
    return 0.5 * np.mean(e * e, axis=1), grad


# --------------------------------------------------------------------------- training

SGD_KERNEL = "sgd_teacher_student"
_ARRAY = {t: np.ctypeslib.ndpointer(t, flags="C_CONTIGUOUS") for t in (np.float32, np.float64, np.uint8)}
_SGD_ARGTYPES = ((_ARRAY[np.float32],) * 4 + (_ARRAY[np.uint8], _ARRAY[np.float64])
                 + (ctypes.c_long,) * 7 + (ctypes.c_float, ctypes.c_int))
_ACT_CODE = {"tanh": 0, "relu": 1, "identity": 2}


class _ReferenceSGD:
    """The numpy twin of the C kernel: all runs in one batched computation, W kept as
    V = W^T (R, n1, n2) and updated in place with preallocated buffers (about ten numpy
    calls per SGD step)."""

    name = "reference"
    clone = "none"

    def __init__(self, runs: Runs, A: np.ndarray, Tgt: np.ndarray, W0: np.ndarray, lr: float):
        R, nb, B, n1 = A.shape
        dtype = A.dtype
        self.act = runs.arch.activation
        self.A = np.ascontiguousarray(A.transpose(1, 0, 2, 3))             # (nb, R, B, n1)
        self.A_T = [self.A[b].transpose(0, 2, 1) for b in range(nb)]
        self.Tgt = np.ascontiguousarray(Tgt.transpose(1, 0, 2))[..., None]   # (nb, R, B, 1)
        self.V = np.ascontiguousarray(W0.transpose(0, 2, 1)).astype(dtype)  # (R, n1, n2)
        self.Zcol = runs.Z.astype(dtype)[:, :, None]                          # (R, n2, 1)
        self.Zscaled = (runs.Z.astype(dtype) * dtype.type(lr / B))[:, None, :]  # lr/B * Z
        n2 = runs.arch.n2
        self.u, self.s, self.d = (np.empty((R, B, n2), dtype) for _ in range(3))
        self.y, self.e = np.empty((R, B, 1), dtype), np.empty((R, B, 1), dtype)
        self.g = np.empty_like(self.V)

    def advance(self, step0: int, n: int) -> None:
        nb, one = len(self.A), self.d.dtype.type(1)
        u, s, d, y, e, g, V = self.u, self.s, self.d, self.y, self.e, self.g, self.V
        for step in range(step0, step0 + n):
            b = step % nb
            np.matmul(self.A[b], V, out=u)                # u = W a      (R, B, n2)
            if self.act == "tanh":
                np.tanh(u, out=s)
                np.multiply(s, s, out=d)
                np.subtract(one, d, out=d)                # f'(u) = 1 - s^2
            elif self.act == "relu":
                np.maximum(u, 0, out=s)
                np.greater(u, 0, out=d)
            else:
                s[...] = u
                d.fill(one)
            np.matmul(s, self.Zcol, out=y)                # y = Z . s    (R, B, 1)
            np.subtract(y, self.Tgt[b], out=e)            # e = y - t
            np.multiply(d, e, out=d)
            np.multiply(d, self.Zscaled, out=d)           # delta * lr/B
            np.matmul(self.A_T[b], d, out=g)              # lr * dL/dW^T (R, n1, n2)
            np.subtract(V, g, out=V)

    @property
    def last_loss(self) -> np.ndarray:
        return 0.5 * np.mean(self.e[:, :, 0].astype(np.float64) ** 2, axis=1)

    def W(self) -> np.ndarray:
        return self.V.transpose(0, 2, 1).copy()

    def stop(self, bad: np.ndarray) -> None:
        self.Zscaled[bad] = 0
        self.V[bad] = 0


class _NativeSGD:
    """The C kernel ``kernels/sgd_teacher_student.c``, its clone ``clone`` (float32; n2
    padded to a multiple of 16); stopped runs are skipped."""

    name = "native"

    def __init__(self, runs: Runs, A: np.ndarray, Tgt: np.ndarray, W0: np.ndarray, lr: float,
                 clone: str):
        R, nb, B, n1 = A.shape
        n2 = runs.arch.n2
        self.nk = -(-n2 // 16)
        self.n2, self.lr_over_B = n2, lr / B
        self.A, self.Tgt = np.ascontiguousarray(A), np.ascontiguousarray(Tgt)
        self.V = np.zeros((R, n1, 16 * self.nk), np.float32)
        self.V[:, :, :n2] = W0.transpose(0, 2, 1)
        self.Z = np.zeros((R, 16 * self.nk), np.float32)
        self.Z[:, :n2] = runs.Z
        self.active = np.ones(R, np.uint8)
        self.last_loss = np.full(R, np.nan)
        self.act = _ACT_CODE[runs.arch.activation]
        self.clone = clone
        self.kernel = native.function(SGD_KERNEL, f"sgd_steps_{clone}", _SGD_ARGTYPES)

    def advance(self, step0: int, n: int) -> None:
        R, nb, B, n1 = self.A.shape
        self.kernel(self.V, self.A, self.Tgt, self.Z, self.active, self.last_loss,
                    R, nb, B, n1, self.nk, step0, n, self.lr_over_B, self.act)

    def W(self) -> np.ndarray:
        return self.V[:, :, :self.n2].transpose(0, 2, 1).copy()

    def stop(self, bad: np.ndarray) -> None:
        self.active[bad] = 0


_CALIBRATION_RUNS = 128  # at most this many runs in a calibration


def _calibrate(arch: Architecture, batch_size: int, n_runs: int) -> dict[str, float]:
    """Run-steps/s of every kernel clone this CPU runs and of the numpy twin (key
    ``"reference"``), each timed for about 0.05 s on ``n_runs`` synthetic runs."""
    runs = draw_runs(n_runs, 1.0, seed=0, arch=arch)
    data = draw_data(runs, batch_size, 16, 1)
    A = features(runs, data.x_train).reshape(n_runs, 16, batch_size, arch.n1)
    Tgt = data.y_train.reshape(n_runs, 16, batch_size)
    codes = {clone: functools.partial(_NativeSGD, clone=clone)
             for clone in native.runnable_clones(SGD_KERNEL)}
    codes["reference"] = _ReferenceSGD
    rates = {}
    for name, code in codes.items():
        sgd = code(runs, A, Tgt, runs.W0, 1e-3)
        n, elapsed = 8, 0.0
        while elapsed < 0.05:
            n *= 2
            t0 = time.perf_counter()
            sgd.advance(0, n)
            elapsed = time.perf_counter() - t0
        rates[name] = n_runs * n / elapsed
    return rates


def _sgd_code(engine: str, arch: Architecture, batch_size: int, n_runs: int, dtype) -> str:
    """The kernel clone that trains with ``engine`` (see :func:`train_sgd`), or ``"none"``
    for the numpy twin."""
    if engine == "native" and dtype != np.float32:
        raise ValueError(f"engine 'native' computes in float32, got data of dtype {dtype}")
    if not (native.use_native(SGD_KERNEL, engine) and dtype == np.float32):
        return "none"
    clone = native.pick_clone(SGD_KERNEL)
    if engine == "native":
        return clone
    cal_runs = min(n_runs, _CALIBRATION_RUNS)
    case = f"{arch.n1}x{arch.n2} {arch.activation} B={batch_size} runs={cal_runs}"
    rates = native.calibration(SGD_KERNEL, case, lambda: _calibrate(arch, batch_size, cal_runs))
    if not os.environ.get(native.CLONE_ENV):
        clone = max((c for c in rates if c != "reference"), key=rates.get)
    return clone if rates[clone] >= rates["reference"] else "none"


def train_sgd(runs: Runs, data: Dataset, lr: float, n_steps: int, *,
              snapshot_steps: Iterable[int] = (), W_init: np.ndarray | None = None,
              divergence_threshold: float = 100.0, check_every: int = 100,
              progress=None, engine: str = "auto") -> TrainResult:
    """Plain SGD on the middle matrix of all runs at once; returns a :class:`TrainResult`.

    Step k uses mini-batch ``k mod n_batches`` of each run's fixed training set (the authors'
    fixed epoch order).  Every ``check_every`` steps (and at every snapshot and the end) each
    still-active run's last mini-batch loss is checked: a run whose loss exceeds
    ``divergence_threshold`` or whose W or loss is non-finite stops (its W is frozen as it
    was; the other runs go on) and is marked divergent.  ``snapshot_steps`` (values in
    0..n_steps) are the steps after which W is stored.  ``W_init`` overrides ``runs.W0``.
    ``progress`` is an optional callable ``progress(steps_done)`` called at each check.

    ``engine`` (:data:`physml.native.ENGINES`): ``native`` runs the C kernel (float32 data
    only; the best clone this CPU runs, or ``$PHYSML_KERNEL_CLONE``), ``reference`` its numpy
    twin in the dtype of ``data.x_train``, ``auto`` for float32 data the fastest of the
    clones (the forced one only, where set) and the twin in a calibration cached at first
    use (see the module docstring).  All keep each run independent of the others.
    """
    if n_steps < 0 or check_every < 1:
        raise ValueError("need n_steps >= 0 and check_every >= 1")
    arch = runs.arch
    R, B, nb = runs.n_runs, data.batch_size, data.n_batches
    dtype = data.x_train.dtype
    snaps = np.array(sorted(set(int(s) for s in snapshot_steps)), dtype=np.int64)
    if len(snaps) and (snaps[0] < 0 or snaps[-1] > n_steps):
        raise ValueError(f"snapshot steps must lie in 0..{n_steps}")
    clone = _sgd_code(engine, arch, B, R, dtype)

    # fixed first-layer features and targets of every mini-batch: (R, nb, B, n1), (R, nb, B)
    A = features(runs, data.x_train).astype(dtype).reshape(R, nb, B, arch.n1)
    Tgt = data.y_train.astype(dtype).reshape(R, nb, B)
    W0 = runs.W0 if W_init is None else W_init
    sgd = _ReferenceSGD(runs, A, Tgt, W0, lr) if clone == "none" else _NativeSGD(runs, A, Tgt, W0, lr, clone)

    diverged = np.zeros(R, bool)
    div_step = np.full(R, -1, np.int64)
    last_loss = np.full(R, np.nan)
    W_stopped = np.zeros((R, arch.n2, arch.n1), dtype)
    snapshots = np.empty((len(snaps), R, arch.n2, arch.n1), dtype)

    def current_W():
        Wc = sgd.W()
        Wc[diverged] = W_stopped[diverged]
        return Wc

    def check(step):
        if step == 0:
            return
        batch_loss = sgd.last_loss
        active = ~diverged
        last_loss[active] = batch_loss[active]
        bad = active & ((batch_loss > divergence_threshold) | ~np.isfinite(batch_loss)
                        | ~np.isfinite(sgd.V).all(axis=(1, 2)))
        if bad.any():
            W_stopped[bad] = sgd.W()[bad]
            diverged[bad] = True
            div_step[bad] = step
            sgd.stop(bad)

    stops = sorted(set(range(check_every, n_steps, check_every)) | set(snaps.tolist()) | {n_steps})
    i_snap = 0
    step = 0
    with np.errstate(all="ignore"):
        for stop in stops:
            sgd.advance(step, stop - step)
            step = stop
            check(step)
            while i_snap < len(snaps) and snaps[i_snap] == step:
                snapshots[i_snap] = current_W()
                i_snap += 1
            if progress is not None:
                progress(step)
    return TrainResult(snaps, snapshots, current_W(), diverged, div_step, last_loss,
                       int(n_steps), float(lr), int(B), sgd.name, sgd.clone)


def train_sequential(runs: Runs, data: Dataset, lr: float, n_steps: int, **kwargs) -> TrainResult:
    """:func:`train_sgd` one run at a time (for tests and benchmarks); same results."""
    parts = [train_sgd(runs.select(slice(r, r + 1)), data.select(slice(r, r + 1)), lr, n_steps,
                       **kwargs) for r in range(runs.n_runs)]
    cat = lambda name, axis=0: np.concatenate([getattr(p, name) for p in parts], axis=axis)  # noqa: E731
    return TrainResult(parts[0].snapshot_steps, cat("snapshots", 1), cat("W"), cat("diverged"),
                       cat("diverged_step"), cat("last_batch_loss"), int(n_steps), float(lr),
                       data.batch_size, parts[0].engine, parts[0].clone)


__all__: Sequence[str] = (
    "ACTIVATIONS", "Architecture", "Runs", "Dataset", "TrainResult", "draw_runs", "draw_data",
    "activation", "activation_derivative", "features", "hidden", "forward", "loss",
    "loss_and_grad", "train_sgd", "train_sequential",
)
