"""2D U(1) observables with Gamma-method errors.

Reported, each with ``_err`` and ``tau_int_`` companions (Gamma method, tau_int
in units of stored measurements, Wolff's convention: 0.5 for independent data):

- ``plaquette`` = <cos theta_P>;
- ``top_charge`` = <Q>, Q the geometric charge (an integer on every configuration;
  :func:`measure_u1` checks it);
- ``chi_t`` = <Q^2>/V, V = L^2;
- ``W_RxR`` = <Re W(R x R)> for R = 1 .. L/2 (averaged over base points);
- ``action_density`` = <S>/V.

- ``P_Q`` over ``Q`` = the probability of each topological charge (the Q distribution);
- ``P_Q_exact``: the exact P(Q) on the torus at the same points, and for independent
  configurations ``P_Q_pvalue``, the chi^2 goodness-of-fit p-value of their Q
  histogram against it (:func:`q_distribution_pvalue`);
- ``cost_per_independent_Q`` = seconds of generation per statistically independent
  value of Q (wall time x 2 tau_int(Q) / configurations; 2 tau_int = 1 for
  independent samples; wall time / ESS for reweighted ones), where the ensemble
  records its ``wall_time_s``.

Reweighted ensembles (a ``weight`` variable, :mod:`physml.stats.reweighting`) give
self-normalised weighted estimates with delta-method errors and carry the Kish
effective sample size ``ess``; chi_t and everything else of such an ensemble is
flagged when the ESS is below :data:`physml.stats.reweighting.MIN_ESS`.  Ensembles
weighted by the model's density (``dm_rw``, attribute ``ess_fraction``) and the
independence Metropolis chain over the same proposals (``dm_imh``) are graded as for
phi^4 (:func:`physml.observables.phi4.correction_flag`: fewer than 20 effective or
accepted samples, proposals left out, a folding map); they carry ``ess_fraction``
(ESS / N, the table's ``ess``), ``imh_acceptance``, ``log_Z`` and a ``flag``
attribute that flags all their rows.
Ensembles of independent configurations (every chain holds one configuration: the
diffusion model's and MALA's) need no tau_int(Q): their chi_t is reliable by
construction, whatever its bias, which the comparison with the exact result shows.

SMC ensembles (a ``replica`` variable beside the ``weight``; :mod:`physml.mc.smc`)
hold R independent runs whose weights are normalised within each run.  Every
observable is then estimated per replica as its weighted mean, the value is the
mean over replicas and the error the scatter, std / sqrt(R) (ddof 1): the weights
are correlated with the particles through resampling, so no error from within one
run is trusted.  tau_int is not defined there (NaN); ``smc_ess`` is the mean Kish
ESS of the final weights per replica (information only, no flag); chi_t is flagged
with fewer than :data:`MIN_REPLICAS` replicas or when every replica gave the same
<Q^2> (a zero error that only says no replica saw the rare sectors), and all its rows
(attribute ``flag``) when a replica's particles collapsed (``smc_collapsed``: fewer
effective distinct particles than ``min_distinct`` x N, :mod:`physml.mc.smc`).  ``P_Q`` and
its errors come from the replicas the same way, and ``P_Q_pvalue`` is Hotelling's
T^2 test of the replica means of P(Q) against the exact P(Q) (:func:`replica_pvalue`).  The same test, with
the chains as the groups, gives ``P_Q_pvalue`` of a multi-chain HMC ensemble whose
chi_t is reliable (the chains are independent; within a chain the correlations
average out in the chain's mean).  For SMC

    cost_per_independent_Q = T x (err(Q^2) / std(Q^2))^2   [s],

T the generation wall time (the SMC and the input's share of its own generation
time, ``wall_time_s`` + ``input_wall_time_s``), err(Q^2) the replica error of <Q^2>
and std(Q^2) the weighted standard deviation of Q^2 over all particles: (std /
err)^2 is the number of independent samples that would give the same error, so
this is the cost of one equivalent independent sample of Q^2.

Per configuration: ``plaquette_per_config``, ``top_charge_per_config`` (for the
histograms), and the histograms themselves, ``plaquette_hist`` over
``plaquette_bin`` and ``top_charge_hist`` over ``Q``.

Topological freezing is reported, not hidden.  At large beta Q changes so rarely
that the Gamma method's automatic window does not converge in any affordable run
(and a frozen run has zero variance of Q, i.e. a "perfect" error).  So tau_int(Q)
is also estimated from the rate of Q changes, a method that needs no window:
treat Q as a Gaussian (Ornstein-Uhlenbeck) random walk with the exact stationary
variance sigma^2 = <Q^2> = V chi_t(beta, L) (from :mod:`physml.lattice.u1_exact`,
never the measured one, which a frozen run underestimates).  The mean squared
change of Q between successive stored configurations m trajectories apart gives
the lag-m autocorrelation exactly, rho(m) = 1 - <(Q(t+m) - Q(t))^2> / (2 sigma^2);
assuming a single exponential rho(t) = exp(-gamma t) (a random walk of Q in its
stationary well),

    tau_int(Q) = (1/2) coth(gamma / 2) ~ 1/gamma   [trajectories]
               ~ 2 sigma^2 m / <(Delta Q)^2>        when Q changes rarely.

Where the Gamma method works too (16 chains of 2000 measurements; beta = 3 at
L = 8 and 16, beta = 5 at L = 8) the two agreed within 2-35%, the largest gap with
a measurement after every trajectory, where rho(1) is not yet exponential.

``tau_int_Q_rate`` holds it (trajectories), ``q_changes`` the number of changes
seen; with no change at all it is the 95% lower bound (3 changes in the run) and
``tau_int_Q_rate_is_lower_bound`` = 1.  ``chi_t_reliable`` is 0 and the
attribute ``chi_t_flag`` says why whenever chi_t cannot be trusted: the Gamma
window for Q^2 did not converge, or n_therm < 5 tau_int(Q), or the run spans
fewer than 100 tau_int(Q) trajectories (all chains together), or no chain has
two measurements to estimate the rate.  A frozen run biases more than chi_t: at
small V the plaquette depends on the Q sector (HMC at beta = 5, L = 8 frozen near
Q = 0 gave a plaquette 5 sigma above the exact value), which the figure's
residual panel shows.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import xarray as xr
from scipy import stats

from physml.lattice import u1_exact
from physml.lattice.u1 import plaquette_angles, topological_charge_real, wilson_loop_angles
from physml.observables.phi4 import _by_chain, correction_flag
from physml.stats.estimate import Estimate
from physml.stats.gamma import ENSEMBLE, estimate, primary
from physml.stats.reweighting import MIN_ESS, kish_ess, weighted_estimate

Q_TOLERANCE = 1e-6
MIN_REPLICAS = 4
P_MIN_BIN = 0.02
THERM_FACTOR = 5
RUN_FACTOR = 100
CHUNK = 4096


def per_config(theta: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-configuration plaquette, Q (checked to be an integer) and Wilson loops
    ``W`` of shape ``(n, L/2)`` for R = 1 .. L/2."""
    L = theta.shape[-1]
    plaq, charge, loops = [], [], []
    for part in torch.split(theta, CHUNK):
        plaq.append(torch.cos(plaquette_angles(part)).mean(dim=(-2, -1)))
        charge.append(topological_charge_real(part))
        loops.append(torch.stack([torch.cos(wilson_loop_angles(part, R)).mean(dim=(-2, -1))
                                  for R in range(1, L // 2 + 1)], dim=-1))
    q_real = torch.cat(charge).numpy()
    q = np.rint(q_real)
    worst = float(np.max(np.abs(q_real - q))) if len(q) else 0.0
    if worst > Q_TOLERANCE:
        raise RuntimeError(f"geometric charge not an integer (deviation {worst:.2e})")
    return {"plaquette": torch.cat(plaq).numpy(), "Q": q.astype(np.int64),
            "W": torch.cat(loops).numpy()}


def q_change_rate(Q: np.ndarray, chain: np.ndarray, trajectory: np.ndarray, sigma2: float) -> dict:
    """tau_int(Q) in trajectories from the squared changes of Q between successive stored
    configurations of each chain (see the module docstring)."""
    order = np.lexsort((trajectory, chain))
    Q, chain, traj = Q[order].astype(float), chain[order], trajectory[order].astype(float)
    same = chain[1:] == chain[:-1]
    dq2 = ((Q[1:] - Q[:-1]) ** 2)[same]
    gaps = (traj[1:] - traj[:-1])[same]
    out = {"q_changes": int(np.count_nonzero(dq2)), "span": float(gaps.sum()),
           "tau": float("nan"), "tau_err": float("nan"), "lower_bound": 0}
    if len(gaps) == 0 or sigma2 <= 0:
        return out
    m = float(np.mean(gaps))
    msd = float(dq2.mean())
    if out["q_changes"] == 0:
        msd = 3.0 / len(gaps)   # 95% upper limit on the count of unit changes: 3
        out["lower_bound"] = 1
    rho = 1.0 - msd / (2.0 * sigma2)
    if rho <= 0:
        tau = 0.5
    else:
        gamma = -math.log(rho) / m
        tau = 0.5 / math.tanh(gamma / 2) if gamma > 0 else float("inf")
    out["tau"] = tau
    out["tau_err"] = tau / math.sqrt(max(out["q_changes"], 1))
    return out


def q_distribution_pvalue(Q: np.ndarray, q_exact: np.ndarray, p_exact: np.ndarray) -> float:
    """Pearson chi^2 p-value of independent charges ``Q`` against the exact P(Q): charges
    pooled from the tails inwards until every bin expects at least 5 counts."""
    n = len(Q)
    observed = np.array([np.count_nonzero(Q == q) for q in q_exact], dtype=float)
    observed[0] += np.count_nonzero(Q < q_exact[0])
    observed[-1] += np.count_nonzero(Q > q_exact[-1])
    expected = n * p_exact / p_exact.sum()
    bins_o, bins_e, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(observed, expected):   # pool left to right, then fold a small last bin back
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= 5:
            bins_o.append(acc_o)
            bins_e.append(acc_e)
            acc_o = acc_e = 0.0
    if bins_e:
        bins_o[-1] += acc_o
        bins_e[-1] += acc_e
    if len(bins_e) < 2:
        return float("nan")
    return float(stats.chisquare(bins_o, bins_e).pvalue)


def replica_estimate(values: np.ndarray, weights: np.ndarray, groups: np.ndarray) -> Estimate:
    """Mean over groups of each group's weighted mean of ``values`` and its error
    std / sqrt(R) over the R groups (NaN for R = 1); tau_int NaN (not defined)."""
    means = group_means(np.asarray(values, dtype=float)[:, None], weights, groups)[:, 0]
    err = float(np.std(means, ddof=1) / math.sqrt(len(means))) if len(means) > 1 else float("nan")
    return Estimate(float(np.mean(means)), err, float("nan"), float("nan"))


def group_means(values: np.ndarray, weights: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Weighted means ``(R, k)`` of the columns of ``values`` ``(n, k)`` within each group."""
    labels, index = np.unique(groups, return_inverse=True)
    w_sum = np.bincount(index, weights=weights, minlength=len(labels))
    out = np.stack([np.bincount(index, weights=weights * v, minlength=len(labels)) for v in values.T], axis=1)
    return out / w_sum[:, None]


def replica_pvalue(Q: np.ndarray, weights: np.ndarray, groups: np.ndarray, q_exact: np.ndarray,
                   p_exact: np.ndarray) -> float:
    """Hotelling's T^2 p-value of the groups' (weighted) P(Q) against the exact P(Q).

    Bins: every charge with exact probability >= :data:`P_MIN_BIN`, the tails pooled
    into the outermost bins; one bin is dropped (the probabilities sum to 1), leaving
    k.  With R groups, Y_r their bin probabilities, Ybar and S the mean and sample
    covariance over groups: T^2 = R (Ybar - p)^T S^-1 (Ybar - p) and
    (R - k) / (k (R - 1)) T^2 follows F(k, R - k) for Gaussian group means.  NaN when
    R < k + 2, when S is singular (e.g. every chain frozen in one sector) or when
    fewer than two bins remain."""
    keep = q_exact[p_exact >= P_MIN_BIN]
    if len(keep) < 2:
        return float("nan")
    edges = np.clip(Q, keep[0], keep[-1])
    exact = np.array([p_exact[q_exact <= keep[0]].sum()]
                     + [p_exact[q_exact == q].sum() for q in keep[1:-1]]
                     + [p_exact[q_exact >= keep[-1]].sum()])
    exact = exact / exact.sum()
    indicators = (edges[:, None] == keep[None, :-1]).astype(float)
    means = group_means(indicators, weights, groups)
    R, k = means.shape
    if R < k + 2:
        return float("nan")
    cov = np.cov(means, rowvar=False, ddof=1).reshape(k, k)
    if np.linalg.matrix_rank(cov) < k:
        return float("nan")
    diff = means.mean(axis=0) - exact[:-1]
    t2 = R * float(diff @ np.linalg.solve(cov, diff))
    return float(stats.f.sf((R - k) / (k * (R - 1)) * t2, k, R - k))


def _window_converged(obs) -> bool:
    """Whether pyerrors' automatic window stopped before its cap (half the longest replica)."""
    lengths = [n for name, n in obs.shape.items() if name.startswith(f"{ENSEMBLE}|")]
    w_max = max(lengths) // 2
    return obs.e_windowsize.get(ENSEMBLE, 0) < w_max - 1


def reliability(ds: xr.Dataset, rate: dict, window_converged: bool) -> tuple[bool, str]:
    """(reliable, reason) for chi_t; the reason lists every failed criterion."""
    problems = []
    tau = rate["tau"]
    if rate.get("independent"):
        return True, "ok (independent configurations)"
    if not window_converged:
        problems.append("the Gamma window for Q^2 did not converge")
    if not np.isfinite(tau):
        problems.append("no chain holds two measurements, so tau_int(Q) is unknown")
    else:
        if rate["lower_bound"]:
            problems.append("Q never changed")
        n_therm = ds.attrs.get("n_therm")
        if ds.attrs.get("source") != "exact" and n_therm is not None and n_therm < THERM_FACTOR * tau:
            problems.append(f"n_therm = {int(n_therm)} < {THERM_FACTOR} tau_int(Q)")
        if rate["span"] < RUN_FACTOR * tau:
            problems.append(f"the run spans {rate['span']:.3g} trajectories < {RUN_FACTOR} tau_int(Q)")
        if problems:
            bound = ">=" if rate["lower_bound"] else "~"
            problems.append(f"tau_int(Q) {bound} {tau:.3g} trajectories (rate of Q changes, "
                            f"{rate['q_changes']} changes seen)")
    return not problems, "; ".join(problems) or "ok"


def measure_u1(ds: xr.Dataset) -> xr.Dataset:
    """Observables of a U(1) ensemble artifact (variable ``theta`` over ``(config, mu, x, y)``)."""
    if "theta" not in ds or ds["theta"].dims != ("config", "mu", "x", "y"):
        raise ValueError("U(1) ensemble needs a variable 'theta' with dims (config, mu, x, y)")
    if "beta" not in ds.attrs:
        raise ValueError("U(1) ensemble needs the attribute 'beta' (the exact <Q^2> sets tau_int(Q))")
    theta = torch.from_numpy(ds["theta"].values.astype(np.float64))
    n, L = theta.shape[0], theta.shape[-1]
    volume = L * theta.shape[-2]
    beta = float(ds.attrs["beta"])
    chain = ds["chain"].values if "chain" in ds else np.zeros(n, dtype=int)
    trajectory = ds["trajectory"].values if "trajectory" in ds else np.arange(1, n + 1)
    pc = per_config(theta)
    Q = pc["Q"]

    weights = ds["weight"].values.astype(float) if "weight" in ds else None
    replica = ds["replica"].values if "replica" in ds else None
    if replica is not None and weights is None:
        raise ValueError("SMC ensemble with a 'replica' variable needs its 'weight' variable")

    def est(values):
        """(estimate, the pyerrors Obs or None for weighted data)."""
        values = np.asarray(values, dtype=float)
        if replica is not None:
            return replica_estimate(values, weights, replica), None
        if weights is not None:
            return weighted_estimate(values, weights), None
        obs = primary(_by_chain(values, chain))
        return estimate(obs), obs

    observables = {"plaquette": (pc["plaquette"], "<cos theta_P>"),
                   "top_charge": (Q, "<Q>, geometric charge"),
                   "chi_t": (Q * Q / volume, "topological susceptibility <Q^2>/V")}
    for R in range(1, L // 2 + 1):
        observables[f"W_{R}x{R}"] = (pc["W"][:, R - 1], f"Wilson loop <W({R}x{R})>")
    if "action" in ds:
        observables["action_density"] = (ds["action"].values / volume, "<S>/V")
    data_vars, gamma_obs = {}, {}
    for name, (values, long_name) in observables.items():
        e, gamma_obs[name] = est(values)
        data_vars[name] = ((), e.value, {"long_name": long_name})
        data_vars[f"{name}_err"] = ((), e.error)
        data_vars[f"tau_int_{name}"] = ((), e.tau_int, {"units": "measurements"})
        data_vars[f"tau_int_{name}_err"] = ((), e.tau_int_error, {"units": "measurements"})
    converged = weights is not None or _window_converged(gamma_obs["chi_t"])

    sigma2 = volume * u1_exact.chi_t(beta, L)
    if replica is not None:   # particles, not a chain: no rate of Q changes
        rate = {"q_changes": 0, "span": 0.0, "tau": float("nan"), "tau_err": float("nan"), "lower_bound": 0}
    else:
        rate = q_change_rate(Q, chain, trajectory, sigma2)
    if ds.attrs.get("source") == "exact" or len(np.unique(chain)) == n:   # independent draws
        rate.update(tau=0.5, tau_err=0.0, lower_bound=0, independent=True)
    reliable, reason = reliability(ds, rate, converged)
    ess = kish_ess(weights) if weights is not None and replica is None else None
    flag = correction_flag(ds) if replica is None else ""
    if replica is not None and int(ds.attrs.get("collapsed_replicas", 0)):
        flag = (f"{int(ds.attrs['collapsed_replicas'])} of {len(np.unique(replica))} replicas collapsed: "
                f"effective distinct particles down to {float(ds['smc_min_distinct'].min()):.3g} N "
                f"< {float(ds.attrs.get('min_distinct', 0)):g} N")
    n_replicas = len(np.unique(replica)) if replica is not None else 0
    if replica is not None:
        data_vars["smc_ess"] = ((), float(np.mean([kish_ess(weights[replica == r]) for r in np.unique(replica)])),
                                {"long_name": "Kish ESS of the final weights, mean over replicas"})
        data_vars["replicas"] = ((), n_replicas, {"long_name": "independent SMC runs"})
        if n_replicas < MIN_REPLICAS:
            reliable, reason = False, f"only {n_replicas} replicas (< {MIN_REPLICAS}): the replica error is unreliable"
        elif not float(data_vars["chi_t_err"][1]) > 0:
            reliable, reason = False, "every replica gave the same <Q^2> (e.g. no Q != 0 seen): zero replica error"
        else:
            reliable, reason = True, "ok (replica errors)"
    if ess is not None and "ess_fraction" not in ds.attrs:   # reweighted in beta
        data_vars["ess"] = ((), ess, {"long_name": "Kish effective sample size of the weights"})
        if ess < MIN_ESS:
            reliable, reason = False, f"reweighted: Kish ESS {ess:.3g} < {MIN_ESS:g}"
    if flag:
        reliable, reason = False, flag
    data_vars["tau_int_Q_rate"] = ((), rate["tau"], {
        "units": "trajectories",
        "long_name": "tau_int(Q) from the rate of Q changes, exact <Q^2> (see physml.observables.u1)"})
    data_vars["tau_int_Q_rate_err"] = ((), rate["tau_err"], {"units": "trajectories"})
    data_vars["tau_int_Q_rate_is_lower_bound"] = ((), np.int8(rate["lower_bound"]))
    data_vars["q_changes"] = ((), rate["q_changes"], {
        "long_name": "changes of Q between successive stored configurations, all chains"})
    data_vars["gamma_window_converged_chi_t"] = ((), np.int8(converged))
    data_vars["chi_t_reliable"] = ((), np.int8(reliable), {"long_name": "1 if chi_t can be trusted",
                                                          "reason": reason})

    data_vars["plaquette_per_config"] = ("config", pc["plaquette"], {"long_name": "plaquette per configuration"})
    data_vars["top_charge_per_config"] = ("config", Q, {"long_name": "geometric Q per configuration"})
    # charges seen, and every charge with exact probability >= 1e-3 (so a sampler that
    # misses a sector shows P = 0 there, not a missing row)
    q_exact, p_exact = u1_exact.topological_charge_distribution(beta, L)
    p_exact = np.clip(p_exact, 0.0, None)     # the quadrature leaves ~1e-17 in the far tails
    likely = q_exact[p_exact >= 1e-3]
    q_range = np.arange(min(Q.min(), likely.min(), -1), max(Q.max(), likely.max(), 1) + 1)
    data_vars["top_charge_hist"] = ("Q", np.array([np.count_nonzero(Q == q) for q in q_range]),
                                    {"long_name": "configurations per Q"})
    p_q = [est(Q == q)[0] for q in q_range]
    data_vars["P_Q"] = ("Q", np.array([e.value for e in p_q]), {"long_name": "probability of charge Q"})
    data_vars["P_Q_err"] = ("Q", np.array([e.error for e in p_q]))
    exact_of = dict(zip(q_exact.tolist(), p_exact.tolist()))
    data_vars["P_Q_exact"] = ("Q", np.array([exact_of.get(int(q), 0.0) for q in q_range]),
                              {"long_name": "exact probability of charge Q on the torus"})
    if replica is not None or (reliable and not rate.get("independent") and ess is None):
        groups, w = (replica, weights) if replica is not None else (chain, np.ones(n))
        data_vars["P_Q_pvalue"] = ((), replica_pvalue(Q, w, groups, q_exact, p_exact), {
            "long_name": "Hotelling T^2 p-value of the replicas' (or chains') P(Q) against the exact P(Q)"})
    elif rate.get("independent") and ess is None:
        data_vars["P_Q_pvalue"] = ((), q_distribution_pvalue(Q, q_exact, p_exact), {
            "long_name": "chi^2 goodness-of-fit p-value of the Q histogram against the exact P(Q)"})
    if replica is not None and "wall_time_s" in ds.attrs:
        wall = float(ds.attrs["wall_time_s"]) + float(ds.attrs.get("input_wall_time_s", 0.0))
        q2 = (Q * Q).astype(float)
        pooled = weights / weights.sum()
        std_q2 = math.sqrt(float(np.sum(pooled * (q2 - np.sum(pooled * q2)) ** 2)))
        cost = wall * (float(data_vars["chi_t_err"][1]) * volume / std_q2) ** 2 if std_q2 > 0 else float("nan")
        data_vars["cost_per_independent_Q"] = ((), cost, {"units": "s", "long_name":
            "generation wall time x (err(Q^2) / std(Q^2))^2: the cost of one equivalent independent sample"})
    elif "wall_time_s" in ds.attrs:   # trajectories (HMC) or samples (independent samplers)
        n_traj = n * int(ds.attrs.get("meas_interval", 1)) + len(np.unique(chain)) * int(
            ds.attrs.get("n_therm", 0))
        wall = float(ds.attrs["wall_time_s"])   # reweighted: the samples are worth ESS ones
        cost = wall / ess if ess is not None else wall / n_traj * 2 * rate["tau"]
        data_vars["cost_per_independent_Q"] = ((), cost, {"units": "s", "long_name":
            "generation wall time per trajectory (or sample) x 2 tau_int(Q) (trajectories)"})
    counts, edges = np.histogram(pc["plaquette"], bins=50)
    data_vars["plaquette_hist"] = ("plaquette_bin", counts, {"long_name": "configurations per plaquette bin"})
    data_vars["plaquette_bin_edges"] = ("plaquette_edge", edges)

    out = xr.Dataset(data_vars, coords={"config": ds["config"].values, "Q": q_range,
                                        "plaquette_bin": 0.5 * (edges[1:] + edges[:-1])})
    out.attrs.update({k: ds.attrs[k] for k in ("theory", "source", "L", "beta", "start", "n_therm",
                                               "meas_interval", "acceptance_rate", "train_beta",
                                               "train_L", "beta0", "score_factor", "mala_steps",
                                               "mala_step_size", "mala_acceptance_rate",
                                               "input_source", "n_particles", "flux_moves",
                                               "flux_acceptance_rate", "imh_acceptance", "log_Z",
                                               "log_Z_err", "n_nonfinite", "density", "min_distinct",
                                               "collapsed_replicas")
                      if k in ds.attrs})
    if "ess_fraction" in ds.attrs and "weight" in ds:
        out.attrs["ess_fraction"] = ds.attrs["ess_fraction"]
    if flag:
        out.attrs["flag"] = flag
    out.attrs.update({"n_configs": int(n), "n_chains": int(len(np.unique(chain))),
                      "chi_t_flag": reason, "chi_t_exact": u1_exact.chi_t(beta, L),
                      "plaquette_exact": u1_exact.plaquette(beta, L)})
    return out
