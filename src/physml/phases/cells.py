"""One grid cell of the phase diagram: train R runs at (lr, sigma_W) and measure them.

:func:`run_cell` trains all runs of a cell as one batch (:func:`teacher_student.train_sgd`)
and returns an :class:`xarray.Dataset` with per-run observables at every snapshot time
(``time`` = SGD steps done; 0 is the initialisation):

- ``train_loss``, ``test_loss``: 1/2 MSE on the run's training set and on its held-out set;
  ``test_loss_rel`` divides by ``baseline_loss`` = 1/2 <y_test^2>, the loss of the zero output.
- ``grad_norm``: Frobenius norm of the full-training-set gradient dL/dW.
- ``overlap_q``: overlap of the features s = f(W f(M x)) on the test points with the initial
  ones, q = sum s_0 . s_t / sqrt(sum s_0^2 sum s_t^2) (1: unchanged, 0: decorrelated).
- ``overlap_q_authors``: the authors' unnormalised overlap (their notebook's ``q_time``),
  q_A = sum s_0 . s_t / (n_test n2) = q sqrt(<s_0^2> <s_t^2>): it mixes overlap and saturation.
- ``field_alignment``: alignment of the features with the external field h = Z^T y
  (y the teacher output), <h . s> / sqrt(<|h|^2> <|s|^2>).  (The loss is
  1/2 y^2 - h . s + 1/2 (Z . s)^2: h couples to the "spins" s like a magnetic field.)  The
  authors' ``hs`` is this divided by n_test.
- ``field_alignment_units``: the authors' per-unit alignment (their ``hsd``): the cosine of
  h_i and s_i over the test points, averaged over the n2 units.
- ``teacher_overlap``: the same overlap between student and teacher features.
- ``saturation``: <s^2> over test points and units (1: features saturated at +-1).
- ``singular_values``: the singular values of W, largest first; ``sv_top_ratio`` the largest
  over its initial value (1: frozen spectrum).
- ``drift_noise_max`` / ``drift_noise_min``: the drift-versus-noise ratio of the largest /
  smallest eigenvalue of W W^T (:func:`drift_noise_ratio`); > 1 means the gradient drift of
  that eigenvalue beats the drift the SGD noise induces.
- ``authors_drift`` / ``authors_noise``: K_t and V_t of the authors' ferro/para criterion on
  the test points (:func:`authors_criterion`).

Per run (no time axis): ``diverged``, ``diverged_step``, ``feature_m2`` (second moment of the
first-layer features, for the pre-activation spin-glass line of :mod:`boundaries`),
``teacher_singular_values`` (run, sv).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import xarray as xr

from physml.native import check_engine
from physml.phases import teacher_student as ts


@dataclass(frozen=True)
class CellSpec:
    """Everything that determines a cell's numbers."""

    lr: float
    sigma_w: float
    n_runs: int = 20
    n_steps: int = 30000
    batch_size: int = 4
    n_batches: int = 1000
    n_test: int = 1000
    n_eval: int = 500
    snapshot_steps: tuple[int, ...] = (0, 30000)
    seed: int = 1
    arch: ts.Architecture = field(default_factory=ts.Architecture)
    divergence_threshold: float = 100.0
    check_every: int = 100
    engine: str = "auto"  # SGD code, physml.native.ENGINES; recorded as sgd_engine and sgd_clone

    def __post_init__(self):
        problems = []
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if not self.sigma_w >= 0:
            problems.append(f"sigma_w must be >= 0, got {self.sigma_w}")
        for name in ("n_runs", "batch_size", "n_batches", "n_test", "n_eval", "check_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_steps < 0:
            problems.append(f"n_steps must be >= 0, got {self.n_steps}")
        bad = [s for s in self.snapshot_steps if not 0 <= s <= self.n_steps]
        if bad:
            problems.append(f"snapshot steps {bad} outside 0..n_steps={self.n_steps}")
        try:
            check_engine(self.engine)
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ValueError("invalid cell: " + "; ".join(problems))

    @property
    def temperature(self) -> float:
        return self.lr / self.batch_size

    def snapshots(self) -> list[int]:
        """Snapshot steps, with 0 and n_steps always included."""
        return sorted(set(self.snapshot_steps) | {0, self.n_steps})


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per run sum(a b) / sqrt(sum a^2 sum b^2) over all axes but the first."""
    axes = tuple(range(1, a.ndim))
    return (a * b).sum(axes) / np.sqrt((a * a).sum(axes) * (b * b).sum(axes))


def _deltas(runs: ts.Runs, x: np.ndarray, y: np.ndarray, W: np.ndarray, a: np.ndarray | None = None):
    """Per point: first-layer features a_n, pre-activations u_n = W a_n and
    delta_n = (y_n - t_n) Z * f'(u_n), so that the point's gradient is delta_n a_n^T (float64)."""
    a, u, s = ts.hidden(runs, x, W, a)
    e = np.einsum("rnk,rk->rn", s, runs.Z) - y
    delta = e[:, :, None] * runs.Z[:, None, :] * ts.activation_derivative(runs.arch.activation, u, s)
    return a.astype(np.float64), u.astype(np.float64), delta.astype(np.float64)


def _drift_terms(a: np.ndarray, delta: np.ndarray, svd, lr: float, batch_size: int, index: int):
    """:func:`eigenvalue_drift` given the per-point a, delta and the SVD of W."""
    U, sig, Vt = svd                                 # U (R,n2,n2), Vt (R,n2,n1)
    i = index % sig.shape[1]
    p = delta @ U                                    # u_j . delta_n  (R, N, n2)
    q = a @ Vt.transpose(0, 2, 1)                    # v_j . a_n
    row = p[:, :, i, None] * q                       # u_i^T g_n v_j  (R, N, n2)
    col = p * q[:, :, i, None]                       # u_j^T g_n v_i
    xi_row = row - row.mean(axis=1, keepdims=True)
    xi_col = col - col.mean(axis=1, keepdims=True)
    gradient = -2 * lr * sig[:, i] * row[:, :, i].mean(axis=1)
    # E|xi_n^T u_i|^2 = E[(u_i . delta_n)^2 |a_n|^2] - |G^T u_i|^2
    g_row = (p[:, None, :, i] @ a)[:, 0] / a.shape[1]
    ito = (p[:, :, i] ** 2 * (a * a).sum(axis=2)).mean(axis=1) - (g_row ** 2).sum(axis=1)
    var = ((sig[:, None, :] * xi_row + sig[:, i, None, None] * xi_col) ** 2).mean(axis=1)
    x_eig = sig ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        coulomb = np.where(np.arange(sig.shape[1]) == i, 0.0, var / (x_eig[:, i, None] - x_eig)).sum(axis=1)
    return gradient, lr ** 2 / batch_size * ito, lr ** 2 / batch_size * coulomb


def eigenvalue_drift(runs: ts.Runs, x: np.ndarray, y: np.ndarray, W: np.ndarray, lr: float,
                     batch_size: int, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient drift and the two noise-induced drifts of one eigenvalue of W W^T per SGD step, per run.

    An SGD step W -> W - lr g_B (g_B the mean of the per-sample gradients g_n = delta_n a_n^T
    over a mini-batch of B points drawn from (x, y)) moves the eigenvalue x_i = sigma_i^2 of
    W W^T (singular vectors u_i, v_i; ``index`` i counts from the largest) by, to second order
    in lr and with g_B = G + xi (G = <g_n>, Cov(xi) = Cov(g_n) / B),

        E[dx_i] = -2 lr sigma_i u_i^T G v_i                                   (gradient drift)
                  + lr^2 / B [ E|xi_n^T u_i|^2
                    + sum_{j != i} E(sigma_j u_i^T xi_n v_j + sigma_i u_j^T xi_n v_i)^2 / (x_i - x_j) ]
                                                                              (noise-induced drift)
                  + O(lr^2 G^2),

    the Ito and Coulomb-repulsion terms of the Dyson-Brownian-motion Langevin equation of
    arXiv:2407.16427.  Returns (gradient drift, Ito drift, Coulomb drift), each of shape (R,);
    the noise-induced drift is Ito + Coulomb (Ito >= 0; Coulomb > 0 for the largest and < 0
    for the smallest eigenvalue).
    """
    a, _, delta = _deltas(runs, x, y, W)
    svd = np.linalg.svd(W.astype(np.float64), full_matrices=False)
    return _drift_terms(a, delta, svd, lr, batch_size, index)


def drift_noise_ratio(runs: ts.Runs, x: np.ndarray, y: np.ndarray, W: np.ndarray,
                      lr: float, batch_size: int, a: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """|gradient drift| / (|Ito drift| + |Coulomb drift|) of the largest and of the smallest
    eigenvalue of W W^T, per run (:func:`eigenvalue_drift`); > 1 means the gradient beats the
    noise.  The noise scale is the sum of the magnitudes, not the magnitude of the sum: for the
    smallest eigenvalue the Ito (up) and Coulomb (down) drifts can cancel, which would make the
    ratio spuriously large although the noise is strong.  (The gradient drift is O(lr), the
    noise scale O(lr^2 / B), so at fixed W the ratio goes like 1/T.)  ``a``: the first-layer
    features of x, where already computed."""
    a, _, delta = _deltas(runs, x, y, W, a)
    svd = np.linalg.svd(W.astype(np.float64), full_matrices=False)
    ratios = []
    for index in (0, -1):
        gradient, ito, coulomb = _drift_terms(a, delta, svd, lr, batch_size, index)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios.append(np.abs(gradient) / (np.abs(ito) + np.abs(coulomb)))
    return ratios[0], ratios[1]


def authors_criterion(runs: ts.Runs, x: np.ndarray, y: np.ndarray, W: np.ndarray,
                      a: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Drift K_t and noise V_t of the authors' ferro/para criterion, per run.

    As defined in their analysis notebook (chanjure/phase_ml, ``empirical_phase.ipynb``,
    ``limit_matrix_new``), on the points (x, y): a step along minus the gradient of point n,
    per unit learning rate, changes X = W W^T by dX_n = -(u_n delta_n^T + delta_n u_n^T)
    (u_n = W a_n, see :func:`_deltas`).  K = <dX_n> and V = Var(dX_n) (elementwise over the
    points) are rotated into the eigenbasis of X, eigenvalues descending: K~ = U^T K U,
    V~ = U^T V U.  Then, with n2 the size of X,

        K_t = |K~_00| - |K~_{-1,-1}|,
        V_t = 2 V~_{0,-1} / (n2 - 1) + sum_{k=1}^{n2-2} (V~_{0,k} + V~_{-1,n2-k}) / k

    (the index n2 - k as written there: the k = 1 term of the second sum is the diagonal
    V~_{-1,-1}).  A run satisfies the criterion at temperature T when
    K_t / (sqrt(r) (n2 - 1)) >= T V_t / (4 sigma_W^2), r = n1 / n2, sigma_W the initial
    weight scale (:func:`physml.phases.boundaries.authors_criterion_holds`)."""
    a, u, delta = _deltas(runs, x, y, W, a)
    N, n2 = u.shape[1], u.shape[2]
    ud = u * delta
    uT_delta = u.transpose(0, 2, 1) @ delta
    K = -(uT_delta + uT_delta.transpose(0, 2, 1)) / N
    cross = (u * u).transpose(0, 2, 1) @ (delta * delta)
    V = (cross + cross.transpose(0, 2, 1) + 2 * ud.transpose(0, 2, 1) @ ud) / N - K * K
    W64 = W.astype(np.float64)
    U = np.linalg.svd(W64 @ W64.transpose(0, 2, 1))[0]
    UT = U.transpose(0, 2, 1)
    Kt, Vt = UT @ K @ U, UT @ V @ U
    drift = np.abs(Kt[:, 0, 0]) - np.abs(Kt[:, -1, -1])
    k = np.arange(1, n2 - 1)
    noise = 2 * Vt[:, 0, -1] / (n2 - 1) + ((Vt[:, 0, k] + Vt[:, -1, n2 - k]) / k).sum(axis=1)
    return drift, noise


@dataclass(frozen=True)
class Probe:
    """What every snapshot of a cell is measured against, computed once per cell: the
    first-layer features of the test points and of the training points, the initial and the
    teacher's features on the test points and the field h = Z y_test."""

    a_test: np.ndarray
    a_train: np.ndarray
    s0: np.ndarray
    s_teacher: np.ndarray
    h: np.ndarray

    @classmethod
    def of(cls, runs: ts.Runs, data: ts.Dataset, W0: np.ndarray) -> "Probe":
        a_test = ts.features(runs, data.x_test)
        _, _, s0 = ts.hidden(runs, data.x_test, W0, a_test)
        _, _, s_teacher = ts.hidden(runs, data.x_test, runs.W_teacher, a_test)
        return cls(a_test, ts.features(runs, data.x_train), s0, s_teacher,
                   data.y_test[:, :, None] * runs.Z[:, None, :])


def measure(runs: ts.Runs, data: ts.Dataset, W: np.ndarray, W0: np.ndarray, lr: float,
            n_eval: int, probe: Probe | None = None) -> dict[str, np.ndarray]:
    """Per-run observables of the middle matrices ``W`` (R, n2, n1); see the module docstring.
    ``probe``: :meth:`Probe.of` the runs, data and ``W0``, where already computed."""
    p = Probe.of(runs, data, W0) if probe is None else probe
    _, _, s = ts.hidden(runs, data.x_test, W, p.a_test)
    train_loss, grad = ts.loss_and_grad(runs, data.x_train, data.y_train, W, p.a_train)
    s64, s0 = s.astype(np.float64), p.s0.astype(np.float64)
    h = p.h.astype(np.float64)
    with np.errstate(all="ignore"):
        finite = np.isfinite(W).all(axis=(1, 2))
        out = {name: np.full(len(W), np.nan) for name in ("drift_noise_max", "drift_noise_min",
                                                          "authors_drift", "authors_noise")}
        sv = np.full(W.shape[:2], np.nan)
        if finite.any():
            sub, Wf = runs.select(np.flatnonzero(finite)), W[finite]
            sv[finite] = np.linalg.svd(Wf.astype(np.float64), compute_uv=False)
            out["drift_noise_max"][finite], out["drift_noise_min"][finite] = drift_noise_ratio(
                sub, data.x_train[finite, :n_eval], data.y_train[finite, :n_eval], Wf, lr,
                data.batch_size, p.a_train[finite, :n_eval])
            out["authors_drift"][finite], out["authors_noise"][finite] = authors_criterion(
                sub, data.x_test[finite], data.y_test[finite], Wf, p.a_test[finite])
        per_unit = (h * s64).sum(axis=1) / np.sqrt((h * h).sum(axis=1) * (s64 * s64).sum(axis=1))
        return {
            "train_loss": train_loss,
            "test_loss": 0.5 * np.mean((np.einsum("rnk,rk->rn", s, runs.Z) - data.y_test) ** 2, axis=1),
            "grad_norm": np.sqrt((grad.astype(np.float64) ** 2).sum(axis=(1, 2))),
            "overlap_q": _cosine(s0, s64),
            "overlap_q_authors": (s0 * s64).mean(axis=(1, 2)),
            "field_alignment": _cosine(h, s64),
            "field_alignment_units": per_unit.mean(axis=1),
            "teacher_overlap": _cosine(p.s_teacher.astype(np.float64), s64),
            "saturation": (s64 ** 2).mean(axis=(1, 2)),
            "singular_values": sv,
            **out,
        }


VARIABLES = {
    "train_loss": ("1/2 MSE on the training set", "1"),
    "test_loss": ("1/2 MSE on the held-out test set", "1"),
    "test_loss_rel": ("test loss / loss of the zero output", "1"),
    "grad_norm": ("Frobenius norm of the full training-set gradient dL/dW", "1"),
    "overlap_q": ("overlap q of the features with the initial features", "1"),
    "overlap_q_authors": ("the authors' unnormalised overlap q_A = sum s_0 . s_t / (n_test n2)", "1"),
    "field_alignment": ("alignment of the features with the external field h = Z^T y", "1"),
    "field_alignment_units": ("the authors' per-unit field alignment: mean over units of the "
                              "cosine of h_i and s_i over the test points", "1"),
    "teacher_overlap": ("overlap of the student features with the teacher features", "1"),
    "saturation": ("mean squared feature <s^2> (1: saturated)", "1"),
    "singular_values": ("singular values of the trained middle matrix W", "1"),
    "sv_top_ratio": ("largest singular value of W over its initial value", "1"),
    "drift_noise_max": ("|gradient drift| / (|Ito| + |Coulomb| drift) of the largest eigenvalue "
                        "of W W^T", "1"),
    "drift_noise_min": ("|gradient drift| / (|Ito| + |Coulomb| drift) of the smallest eigenvalue "
                        "of W W^T", "1"),
    "authors_drift": ("drift K_t of the authors' ferro/para criterion (per unit learning rate)", "1"),
    "authors_noise": ("noise V_t of the authors' ferro/para criterion (per unit learning rate squared)", "1"),
}


def run_cell(spec: CellSpec, progress=None) -> xr.Dataset:
    """Train the cell's runs as one batch and measure them at every snapshot time."""
    runs = ts.draw_runs(spec.n_runs, spec.sigma_w, spec.seed, arch=spec.arch)
    data = ts.draw_data(runs, spec.batch_size, spec.n_batches, spec.n_test)
    steps = spec.snapshots()
    result = ts.train_sgd(runs, data, spec.lr, spec.n_steps, snapshot_steps=steps,
                          divergence_threshold=spec.divergence_threshold,
                          check_every=spec.check_every, progress=progress, engine=spec.engine)
    probe = Probe.of(runs, data, runs.W0)
    per_time = [measure(runs, data, W, runs.W0, spec.lr, spec.n_eval, probe) for W in result.snapshots]
    baseline = 0.5 * np.mean(data.y_test.astype(np.float64) ** 2, axis=1)
    a = ts.features(runs, data.x_test).astype(np.float64)
    ds = xr.Dataset(coords={"time": ("time", np.array(steps, np.int64), {"long_name": "SGD steps done"}),
                            "run": np.arange(spec.n_runs), "sv": np.arange(spec.arch.n2)})
    for name in per_time[0]:
        stacked = np.stack([m[name] for m in per_time]).astype(np.float64)
        dims = ("time", "run", "sv") if name == "singular_values" else ("time", "run")
        ds[name] = (dims, stacked)
    ds["test_loss_rel"] = ds["test_loss"] / xr.DataArray(baseline, dims="run")
    top = ds["singular_values"].isel(sv=0, drop=True)
    ds["sv_top_ratio"] = top / top.sel(time=0, drop=True)
    for name, (long_name, units) in VARIABLES.items():
        ds[name].attrs.update(long_name=long_name, units=units)
    ds["baseline_loss"] = ("run", baseline, {"long_name": "1/2 <y_test^2>: loss of the zero output"})
    ds["feature_m2"] = ("run", (a ** 2).mean(axis=(1, 2)),
                        {"long_name": "second moment <a^2> of the first-layer features"})
    ds["teacher_singular_values"] = (("run", "sv"), np.linalg.svd(runs.W_teacher.astype(np.float64), compute_uv=False),
                                     {"long_name": "singular values of the teacher's middle matrix"})
    ds["diverged"] = ("run", result.diverged.astype(np.int8), {"long_name": "1: run stopped as divergent"})
    ds["diverged_step"] = ("run", result.diverged_step, {"long_name": "step of the divergence stop (-1: none)"})
    ds.attrs.update(cell_attrs(spec))
    ds.attrs["sgd_engine"] = result.engine
    ds.attrs["sgd_clone"] = result.clone
    return ds


def cell_attrs(spec: CellSpec) -> dict:
    """Plain attributes describing a cell (NetCDF-safe)."""
    d = asdict(spec)
    arch = d.pop("arch")
    d["snapshot_steps"] = ",".join(map(str, spec.snapshots()))
    d.update({f"arch_{k}": v for k, v in arch.items()})
    d["T"] = spec.temperature
    return {k: (float(v) if isinstance(v, float) else v) for k, v in d.items()}


def gather(cells: list[xr.Dataset]) -> xr.Dataset:
    """Stack cell datasets into the grid artifact with dims (T, sigma_w, run, ...).

    Every (T, sigma_w) pair of the rectangular grid must be present exactly once, and all
    cells must agree on everything but lr and sigma_w."""
    if not cells:
        raise ValueError("gather: no cells")
    keys = [(float(c.attrs["T"]), float(c.attrs["sigma_w"])) for c in cells]
    if len(set(keys)) != len(keys):
        raise ValueError("gather: duplicate (T, sigma_w) cells")
    Ts, sws = sorted({k[0] for k in keys}), sorted({k[1] for k in keys})
    missing = [(T, s) for T in Ts for s in sws if (T, s) not in keys]
    if missing:
        raise ValueError(f"gather: grid is not rectangular, missing (T, sigma_w) = {missing}")
    ignore = {"lr", "sigma_w", "T"}
    ref = {k: v for k, v in cells[0].attrs.items() if k in set(cell_attrs_keys()) - ignore}
    for c in cells[1:]:
        other = {k: v for k, v in c.attrs.items() if k in ref}
        if other != ref:
            diff = sorted(k for k in ref if ref[k] != other.get(k))
            raise ValueError(f"gather: cells disagree on {diff}")
    by_key = dict(zip(keys, cells))
    rows = []
    for T in Ts:
        row = [by_key[(T, s)].drop_attrs() for s in sws]
        rows.append(xr.concat(row, dim="sigma_w"))
    grid = xr.concat(rows, dim="T").assign_coords(T=("T", Ts), sigma_w=("sigma_w", sws))
    grid["T"].attrs.update(long_name="SGD temperature T = lr / B")
    grid["sigma_w"].attrs.update(long_name="initial weight scale sigma_W")
    grid = grid.transpose("T", "sigma_w", "run", ...)
    grid["lr"] = ("T", [float(by_key[(T, sws[0])].attrs["lr"]) for T in Ts], {"long_name": "learning rate"})
    grid.attrs.update(ref)
    return grid


def cell_attrs_keys() -> list[str]:
    return list(cell_attrs(CellSpec(lr=1.0, sigma_w=1.0)).keys())
