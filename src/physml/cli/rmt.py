"""CLI verbs of the SGD / random-matrix study: ``physml rmt VERB`` (docs/rmt.md).

Training verbs write weight snapshots (``weights.nc``); ``spectra`` analyses any of them
against Marchenko-Pastur; ``tails`` fits the tails of the transformer's spectra; ``temperature``
gathers an (lr, B) grid of ``linear``, ``rbm`` or online ``mlp`` runs; ``dbm`` simulates Dyson
Brownian motion; ``report`` writes the measured numbers of docs/rmt.md; ``corpus`` writes the
transformer's training text.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import xarray as xr

from physml.cli.common import Output, add_runtime_options, save, setup_runtime
from physml.cli.options import NumberList, old_spelling
from physml.io.artifacts import atomic_path, read_input
from physml.progress import progress
from physml.rmt import analysis, dbm, grid
from physml.rmt import spectra as sp
from physml.rmt.corpus import build_stdlib_corpus


# the verbs that run numpy only leave torch unimported (a second of start-up each): they call
# numpy_runtime, not setup_runtime; their BLAS threads come from the environment, as in
# `physml phases`
NUMPY_THREADS = "BLAS threads: the rule sets OPENBLAS_NUM_THREADS to this (keep 1)"


def numpy_runtime() -> None:
    """The runtime setting of a numpy-only verb: freed memory kept in the heap (large
    temporaries in every step otherwise cost as much system time as the arithmetic)."""
    from physml.device import keep_freed_memory

    keep_freed_memory()


def _bar(total: int, desc: str, enabled: bool):
    """A progress bar and the ``progress(step)`` callback that advances it to ``step``."""
    bar = progress(total=total, desc=desc, enabled=enabled)

    def advance(step):
        bar.update(step - bar.n)

    return bar, advance


def cmd_linear(args: argparse.Namespace) -> None:
    from physml.rmt.linear_sgd import make_teacher, stationary_variance, train_linear_sgd

    device = setup_runtime(args)
    s = args.singular_values
    W_t = make_teacher(s, args.seed)
    bar, advance = _bar(args.n_steps, f"linear lr={args.lr:g} B={args.batch_size}", args.progress)
    run = train_linear_sgd(W_t, lr=args.lr, batch=args.batch_size, sigma=args.sigma, n_steps=args.n_steps,
                           n_seeds=args.n_runs, snapshot_every=args.snapshot_every,
                           burn_in=args.burn_in, seed=args.seed, device=device, progress=advance)
    bar.close()
    c = float(stationary_variance(args.lr, args.batch_size, len(s), args.sigma))
    ds = xr.Dataset(
        {"W": (("seed", "step", "row", "col"), run.W.astype(np.float32),
               {"long_name": "student weight matrix W"}),
         "W_teacher": (("row", "col"), W_t, {"long_name": "teacher W_t = U diag(s) V^T"}),
         "teacher_singular_values": (("k",), np.sort(np.asarray(s, float)),
                                     {"long_name": "teacher singular values, ascending"}),
         "delta_sq": (("seed",), run.delta_sq,
                      {"long_name": "mean of (W - W_t)^2 over entries and all steps after burn-in"}),
         "loss": (("step",), run.loss, {"long_name": "mini-batch loss, mean over seeds"})},
        coords={"seed": np.arange(args.n_runs), "step": run.steps})
    ds.attrs.update(kind="rmt_linear", lr=args.lr, batch=args.batch_size, n=len(s), sigma=args.sigma,
                    burn_in=args.burn_in, stationary_variance=c)
    m = run.delta_sq.mean()
    e = run.delta_sq.std(ddof=1) / np.sqrt(len(run.delta_sq))
    print(f"stationary entry variance {m:.5g} +- {e:.2g}, closed form {c:.5g} (ratio {m / c:.4f})")
    save(ds, args, "rmt linear")


def cmd_mlp(args: argparse.Namespace) -> None:
    from physml.phases.teacher_student import Architecture, draw_data, draw_runs, train_sgd
    from physml.rmt.mlp import train_mlp_online

    numpy_runtime()
    if args.data == "fixed" and args.label_noise > 0:
        raise ValueError("--label-noise needs --data online (the fixed training set is the phases "
                         "study's, labelled by the teacher without noise)")
    if not 0 <= args.burn_in < args.n_steps:
        raise ValueError(f"--burn-in must lie in [0, --n-steps = {args.n_steps}), got {args.burn_in}")
    arch = Architecture(3, 32, 16, "tanh")
    bar, advance = _bar(args.n_steps, f"mlp lr={args.lr:g} B={args.batch_size}", args.progress)
    runs = draw_runs(args.n_runs, args.sigma_w, args.seed, arch=arch)
    if args.data == "online":
        res = train_mlp_online(runs, lr=args.lr, batch=args.batch_size, label_noise=args.label_noise,
                               n_steps=args.n_steps, snapshot_every=args.snapshot_every,
                               seed=args.seed, progress=advance)
        steps, snapshots, diverged, last = res.steps, res.W, res.diverged, res.last_batch_loss
    else:
        data = draw_data(runs, args.batch_size, args.n_batches, n_test=256)
        res = train_sgd(runs, data, args.lr, args.n_steps,
                        snapshot_steps=np.arange(0, args.n_steps + 1, args.snapshot_every), progress=advance)
        steps, snapshots, diverged, last = res.snapshot_steps, res.snapshots, res.diverged, res.last_batch_loss
    bar.close()
    ds = xr.Dataset(
        {"W": (("seed", "step", "row", "col"), snapshots.transpose(1, 0, 2, 3).astype(np.float32),
               {"long_name": "middle matrix W (16 x 32) of the student"}),
         "W_teacher": (("seed", "row", "col"), runs.W_teacher.astype(np.float32)),
         "diverged": (("seed",), diverged.astype(np.int8), {"long_name": "run diverged"}),
         "last_batch_loss": (("seed",), last)},
        coords={"seed": np.arange(args.n_runs), "step": steps})
    ds.attrs.update(kind="rmt_mlp", lr=args.lr, batch=args.batch_size, sigma_w=args.sigma_w, data=args.data,
                    label_noise=args.label_noise, burn_in=args.burn_in)
    print(f"{int(diverged.sum())}/{args.n_runs} runs diverged; median last loss {np.nanmedian(last):.4g}")
    save(ds, args, "rmt mlp")


def cmd_rbm(args: argparse.Namespace) -> None:
    from physml.rmt.rbm import GaussianRBM, train_rbm

    numpy_runtime()
    if not 0 <= args.burn_in < args.n_steps:
        raise ValueError(f"--burn-in must lie in [0, --n-steps = {args.n_steps}), got {args.burn_in}")
    model = GaussianRBM(L=args.L, m2=args.m2, mu2=args.mu2, sigma_h=args.sigma_h)
    bar, advance = _bar(args.n_steps, f"rbm lr={args.lr:g} B={args.batch_size}", args.progress)
    run = train_rbm(model, lr=args.lr, batch=args.batch_size, n_runs=args.n_runs, n_steps=args.n_steps,
                    snapshot_every=args.snapshot_every, seed=args.seed, progress=advance)
    bar.close()
    ds = xr.Dataset(
        {"W": (("seed", "step", "row", "col"), run.W.astype(np.float32),
               {"long_name": "RBM weights W (rows: visible sites, columns: hidden units)"}),
         "diverged": (("seed",), run.diverged.astype(np.int8),
                      {"long_name": "K = mu^2 - sigma_h^2 W W^T lost positivity; run frozen"}),
         "stationary_eigenvalues": (("k",), model.stationary_eigenvalues(),
                                    {"long_name": "fixed point of the eigenvalues of W^T W"})},
        coords={"seed": np.arange(args.n_runs), "step": run.steps})
    ds.attrs.update(kind="rmt_rbm", lr=args.lr, batch=args.batch_size, L=args.L, m2=args.m2, mu2=args.mu2,
                    sigma_h=args.sigma_h, burn_in=args.burn_in)
    late = sp.gram_eigenvalues(run.W[~run.diverged][:, run.steps > args.burn_in])
    print(f"{int(run.diverged.sum())}/{args.n_runs} runs diverged; mean late eigenvalues of W^T W "
          f"{np.array2string(late.mean(axis=(0, 1)), precision=3)} (fixed point "
          f"{np.array2string(model.stationary_eigenvalues(), precision=3)})")
    save(ds, args, "rmt rbm")


def cmd_transformer(args: argparse.Namespace) -> None:
    from physml.rmt.transformer import snapshot_schedule, train_transformer

    device = setup_runtime(args)
    corpus = build_stdlib_corpus(args.corpus_chars)
    steps = snapshot_schedule(args.n_steps, args.dense_until, args.n_sparse)
    bar, advance = _bar(args.n_steps, "transformer", args.progress)
    run = train_transformer(corpus.text, {"block_size": args.block_size}, n_steps=args.n_steps,
                            batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                            snapshot_steps=steps, seed=args.seed, device=device, progress=advance)
    bar.close()
    ds = xr.Dataset(
        {"W": (("step", "matrix", "row", "col"), run.W,
               {"long_name": "per-head maps W_Q^h, W_K^h, W_V^h (rows: model features, "
                "columns: the head's features; q = x W_Q^h)"}),
         "train_loss": (("train_step",), run.train_loss,
                        {"long_name": "cross entropy of each training batch", "units": "nats/char"})},
        coords={"step": run.steps, "matrix": run.names, "train_step": np.arange(1, args.n_steps + 1)})
    ds.attrs.update(kind="rmt_transformer", val_loss=run.val_loss, vocab_size=len(run.vocab),
                    corpus_python_version=corpus.python_version, corpus_sha256=corpus.sha256,
                    corpus_chars=len(corpus.text), corpus_files=corpus.n_files)
    print(f"loss {run.train_loss[0]:.3f} -> {run.train_loss[-10:].mean():.3f} (val {run.val_loss:.3f})")
    save(ds, args, "rmt transformer")


def cmd_spectra(args: argparse.Namespace) -> None:
    numpy_runtime()
    ds = read_input(args.weights, "weights of `physml rmt linear`, `mlp` or `transformer`",
                    kinds=("rmt_linear", "rmt_mlp", "rmt_transformer"), variables=("W",))
    out = analysis.spectra_dataset(ds, n_null=args.n_null, seed=args.seed,
                                   p_threshold=args.p_threshold)
    print(f"MP departure step: {out.attrs['mp_departure_step']} (bulk without each top eigenvalue: "
          f"{out.attrs['mp_departure_step_bulk']}); Wigner-surmise distance at the last step "
          f"{float(out['wigner_distance'][-1]):.4f} (iid-null p = {float(out['wigner_p_value'][-1]):.3f})")
    save(out, args, "rmt spectra", inputs=[args.weights])


def cmd_tails(args: argparse.Namespace) -> None:
    setup_runtime(args)
    try:
        spectra = read_input(args.spectra, "spectra of `physml rmt spectra` on a transformer run "
                             "(kind rmt_transformer)", kinds=("rmt_transformer",), variables=("eigenvalue",))
        out = analysis.tails_dataset(spectra, n_boot=args.n_boot, seed=args.seed,
                                     xmin_quantile=args.xmin_quantile)
    except ValueError as exc:
        raise ValueError(f"{args.spectra}: {exc}") from exc
    for name, verdict in json.loads(out.attrs["verdicts"]).items():
        print(f"{name} at step {int(out['step'][-1])}: {verdict}")
    print(f"first step with a supported tail: {out.attrs['tail_first_step']} (-1: none)")
    save(out, args, "rmt tails", inputs=[args.spectra])
    frame = analysis.tails_table(out)
    table = xr.Dataset.from_dataframe(frame.rename_axis("row"))
    table.attrs.update({k: out.attrs[k] for k in ("n_boot", "xmin_quantile")}, kind="rmt_tails_table")
    args.out = args.table
    save(table, args, "rmt tails", inputs=[args.spectra])
    csv = Path(args.table).with_suffix(".csv")
    with atomic_path(csv) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.8g")
    print(f"wrote {csv}")


def cmd_temperature(args: argparse.Namespace) -> None:
    numpy_runtime()
    weights = [read_input(p, "weights of `physml rmt linear`, `rmt rbm` or `rmt mlp --data online`",
                          kinds=tuple(grid.MODELS)) for p in args.inputs]
    out = grid.temperature_dataset(weights, lr_linear_max=args.lr_linear_max)
    fits = json.loads(out.attrs["fits"])
    print(json.dumps(fits, indent=1))
    save(out, args, "rmt temperature", inputs=args.inputs, seed=-1)
    if args.table:
        frame = grid.temperature_table(out)
        table = xr.Dataset.from_dataframe(frame.rename_axis("row"))
        table.attrs.update(kind="rmt_temperature_table", model=out.attrs["model"])
        args.out = args.table
        save(table, args, "rmt temperature", inputs=args.inputs, seed=-1)
        csv = Path(args.table).with_suffix(".csv")
        with atomic_path(csv) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.8g")
        print(f"wrote {csv}")


def cmd_dbm(args: argparse.Namespace) -> None:
    numpy_runtime()
    rng = np.random.default_rng(args.seed)
    T = np.asarray(args.temperatures)
    sub = args.dt / args.dt_sde                    # SDE steps per matrix step
    if sub < 1 or abs(sub - round(sub)) > 1e-9:
        raise ValueError(f"--dt / --dt-sde must be a whole number, got {args.dt} / {args.dt_sde}")
    sub = round(sub)
    kw = dict(batch=args.n_runs, rng=rng)
    matrix = dbm.simulate_matrix_dbm(args.n, T, dt=args.dt, n_steps=args.n_steps,
                                     snapshot_every=args.snapshot_every, **kw)
    levels = dbm.simulate_eigenvalue_dbm(args.n, T, dt=args.dt_sde, n_steps=args.n_steps * sub,
                                         snapshot_every=args.snapshot_every * sub, **kw)
    times = dbm.snapshot_steps(args.n_steps, args.snapshot_every) * args.dt
    spectra = {"matrix": dbm.stationary_spectra(matrix, T, times, args.burn_in_time,
                                                scale=1 / (1 - args.dt / 2)),   # the Euler step's inflation
               "sde": dbm.stationary_spectra(levels, T, times, args.burn_in_time)}
    reference = dbm.GOEReference(args.n, len(spectra["sde"]), rng)
    checks = {name: dbm.coulomb_gas_check(x, reference) for name, x in spectra.items()}
    for name, c in checks.items():
        print(f"{name}: finite-n GOE level density p = {c['density_p']:.3f}, ratio law p = {c['ratio_p']:.3f}, "
              f"<r> = {c['ratio_mean']:.4f} +- {c['ratio_mean_err']:.4f} (GOE n = {args.n}: "
              f"{c['ratio_mean_goe']:.4f}), {c['n_spectra']} spectra")
    check_vars = {f"cg_{key}": (("process",), [checks[p][key] for p in checks]) for key in checks["sde"]}
    ds = xr.Dataset(
        {"eig_matrix": (("T", "time", "sample", "k"), matrix,
                        {"long_name": "eigenvalues of the Euler-Maruyama matrix DBM"}),
         "eig_sde": (("T", "time", "sample", "k"), levels,
                     {"long_name": "levels of the Euler-Maruyama eigenvalue SDE"}),
         **check_vars},
        coords={"T": T, "time": times, "process": list(checks)})
    ds["cg_density_p"].attrs["long_name"] = ("stationary levels / sqrt(T) against the finite-n GOE level "
                                             "density: fraction of GOE sets with a KS distance >= observed")
    ds["cg_ratio_p"].attrs["long_name"] = "the same for the spacing-ratio law"
    ds.attrs.update(kind="rmt_dbm", n=args.n, dt=args.dt, dt_sde=args.dt_sde, gamma=1.0,
                    burn_in_time=args.burn_in_time)
    save(ds, args, "rmt dbm")


def cmd_report(args: argparse.Namespace) -> None:
    from physml.rmt import report

    if not Path(args.results).is_dir():
        raise ValueError(f"--results {args.results}: no such folder (the results folder of a DAG run)")
    for label, doc in (("--compare", args.compare), ("--write", args.write)):
        if doc and not Path(doc).is_file():
            raise ValueError(f"{label} {doc}: no such file")
    blocks = report.render(Path(args.results))
    with atomic_path(args.out) as tmp:
        tmp.write_text("".join(f"<!-- rmt:{k} -->\n{v}<!-- /rmt:{k} -->\n\n" for k, v in blocks.items()))
    print(f"wrote {args.out}")
    if args.compare:
        stale = report.stale_blocks(Path(args.compare).read_text(), blocks)
        print(f"{args.compare}: " + (f"blocks differing from these results: {', '.join(stale)}" if stale
                                    else "every block agrees with these results"))
    if args.write:
        text = report.update(Path(args.write).read_text(), blocks)
        with atomic_path(args.write) as tmp:
            tmp.write_text(text)
        print(f"updated {args.write}")


def cmd_corpus(args: argparse.Namespace) -> None:
    corpus = build_stdlib_corpus(args.corpus_chars)
    with atomic_path(args.out) as tmp:
        tmp.write_text(corpus.text, encoding="ascii")
    print(f"wrote {args.out}: {len(corpus.text)} characters from {corpus.n_files} modules of "
          f"Python {corpus.python_version}, sha256 {corpus.sha256}")


def verb_linear(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lr", type=float, required=True, help="learning rate")
    p.add_argument("--batch-size", type=int, required=True, help="mini-batch size B")
    old_spelling(p, "--batch", "--batch-size")
    p.add_argument("--singular-values", action=NumberList, default=[1, 1, 2, 2, 3, 3],
                   help="teacher singular values (equal values = degenerate pairs)")
    p.add_argument("--sigma", type=float, default=0.5, help="label-noise standard deviation")
    p.add_argument("--n-runs", type=int, default=128, help="independent runs, trained as one tensor")
    old_spelling(p, "--n-seeds", "--n-runs")
    p.add_argument("--n-steps", type=int, default=1000, help="SGD steps")
    p.add_argument("--burn-in", type=int, default=400, help="steps discarded before stationary averages")
    p.add_argument("--snapshot-every", type=int, default=10, help="steps between stored snapshots")
    p.add_argument("--seed", type=int, required=True, help="random seed (teacher and SGD)")
    p.add_argument("--out", required=True, help="output weights .nc")
    add_runtime_options(p, device=True)
    p.set_defaults(func=cmd_linear)


def verb_mlp(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lr", type=float, required=True, help="learning rate")
    p.add_argument("--batch-size", type=int, default=4, help="mini-batch size B")
    old_spelling(p, "--batch", "--batch-size")
    p.add_argument("--sigma-w", type=float, default=1.0, help="initial scale sigma_W of the middle matrix")
    p.add_argument("--n-runs", type=int, default=32, help="runs trained as one batch")
    p.add_argument("--data", choices=("fixed", "online"), default="fixed",
                   help="fixed: each run's fixed training set of noiseless teacher labels (the phases "
                        "study); online: fresh inputs every step, labels with --label-noise")
    p.add_argument("--label-noise", type=float, default=0.0,
                   help="standard deviation of the label noise (--data online)")
    p.add_argument("--n-batches", type=int, default=64,
                   help="mini-batches in each run's fixed training set (--data fixed)")
    p.add_argument("--n-steps", type=int, default=1000, help="SGD steps")
    p.add_argument("--burn-in", type=int, default=0,
                   help="steps before stationary averages (recorded for `rmt temperature`)")
    p.add_argument("--snapshot-every", type=int, default=100, help="steps between stored snapshots")
    p.add_argument("--seed", type=int, required=True, help="random seed")
    p.add_argument("--out", required=True, help="output weights .nc")
    add_runtime_options(p, threads=NUMPY_THREADS)
    p.set_defaults(func=cmd_mlp)


def verb_rbm(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lr", type=float, required=True, help="learning rate")
    p.add_argument("--batch-size", type=int, required=True, help="mini-batch size B (fresh target draws)")
    p.add_argument("--L", type=int, default=10, help="sites of the periodic chain = visible = hidden units")
    p.add_argument("--m2", type=float, default=4.0, help="mass^2 of the target free field")
    p.add_argument("--mu2", type=float, default=12.0, help="model mass^2 mu^2 (fixed; > m2 + 4)")
    p.add_argument("--sigma-h", type=float, default=1.0, help="hidden-field width sigma_h (fixed)")
    p.add_argument("--n-runs", type=int, default=32, help="independent runs, trained as one array")
    p.add_argument("--n-steps", type=int, default=6000, help="gradient steps")
    p.add_argument("--burn-in", type=int, default=2000, help="steps before stationary averages")
    p.add_argument("--snapshot-every", type=int, default=10, help="steps between stored snapshots")
    p.add_argument("--seed", type=int, required=True, help="random seed")
    p.add_argument("--out", required=True, help="output weights .nc")
    add_runtime_options(p, threads=NUMPY_THREADS)
    p.set_defaults(func=cmd_rbm)


def verb_transformer(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-steps", type=int, default=2500, help="AdamW steps")
    p.add_argument("--batch-size", type=int, default=16, help="windows per batch")
    old_spelling(p, "--batch", "--batch-size")
    p.add_argument("--block-size", type=int, default=64, help="context length")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    p.add_argument("--weight-decay", type=float, default=0.1, help="AdamW weight decay (matrices only)")
    p.add_argument("--dense-until", type=int, default=30, help="record every step up to this one")
    p.add_argument("--n-sparse", type=int, default=16, help="log-spaced snapshots after that")
    p.add_argument("--corpus-chars", type=int, default=400_000, help="characters of the corpus")
    p.add_argument("--seed", type=int, required=True, help="random seed")
    p.add_argument("--out", required=True, help="output weights .nc")
    add_runtime_options(p, device=True)
    p.set_defaults(func=cmd_transformer)


def verb_spectra(p: argparse.ArgumentParser) -> None:
    p.add_argument("weights", help="weights .nc of a training verb")
    p.add_argument("--n-null", type=int, default=200, help="iid Gaussian null samples")
    p.add_argument("--p-threshold", type=float, default=0.01,
                   help="null p-value below which a spectrum has left Marchenko-Pastur")
    p.add_argument("--seed", type=int, required=True, help="seed of the null samples")
    p.add_argument("--out", required=True, help="output spectra .nc")
    add_runtime_options(p, threads=NUMPY_THREADS)
    p.set_defaults(func=cmd_spectra)


def verb_tails(p: argparse.ArgumentParser) -> None:
    p.add_argument("spectra", help="spectra .nc of `rmt spectra` on an rmt_transformer run")
    p.add_argument("--n-boot", type=int, default=30,
                   help="bootstrap samples for the error and the goodness-of-fit p-value")
    p.add_argument("--xmin-quantile", type=float, default=0.5,
                   help="x_min is searched among the values above this quantile (0: all, as CSN)")
    p.add_argument("--seed", type=int, required=True, help="seed of the bootstrap")
    p.add_argument("--out", required=True, help="output tails .nc (method x matrix x step)")
    p.add_argument("--table", required=True, type=Output(".nc", beside=(".csv",)),
                   help="tidy table .nc; the .csv beside it has the columns "
                        + ", ".join(analysis.TAIL_COLUMNS))
    add_runtime_options(p)
    p.set_defaults(func=cmd_tails)


def verb_temperature(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+",
                   help="weights .nc of one model, one per (lr, B): `rmt linear`, `rmt rbm` or "
                        "`rmt mlp --data online`")
    p.add_argument("--lr-linear-max", type=float, default=0.1,
                   help="largest lr in the fit of the naive linear scaling rule")
    p.add_argument("--out", required=True, help="output temperature .nc")
    p.add_argument("--table", type=Output(".nc", beside=(".csv",)),
                   help="also the table of the fits, .nc and the .csv beside it, with the columns "
                        + ", ".join(grid.TABLE_COLUMNS))
    add_runtime_options(p, threads=NUMPY_THREADS)
    p.set_defaults(func=cmd_temperature)


def verb_dbm(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=32, help="matrix size")
    p.add_argument("--temperatures", action=NumberList, default=[0.1, 0.2, 0.5, 1.0],
                   help="temperatures T")
    p.add_argument("--dt", type=float, default=0.02, help="time step of the matrix process")
    p.add_argument("--dt-sde", type=float, default=0.001,
                   help="time step of the eigenvalue SDE (at n = 32, 0.002 is too coarse for the spacing law)")
    p.add_argument("--n-steps", type=int, default=400, help="matrix-process steps")
    p.add_argument("--snapshot-every", type=int, default=20, help="matrix steps between snapshots")
    p.add_argument("--n-runs", type=int, default=32, help="independent systems per temperature")
    old_spelling(p, "--batch", "--n-runs")
    p.add_argument("--burn-in-time", type=float, default=3.0,
                   help="time (in units of 1/gamma) before equilibrium averages")
    p.add_argument("--seed", type=int, required=True, help="random seed")
    p.add_argument("--out", required=True, help="output dbm .nc")
    add_runtime_options(p, threads=NUMPY_THREADS)
    p.set_defaults(func=cmd_dbm)


def verb_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default="results", help="the results folder of a DAG run")
    p.add_argument("--out", required=True, type=Output(".md"), help="the rendered blocks of docs/rmt.md, .md")
    p.add_argument("--compare", metavar="DOC", help="also say which blocks of DOC differ from them")
    p.add_argument("--write", metavar="DOC", help="also put them into DOC (docs/rmt.md)")
    p.set_defaults(func=cmd_report)


def verb_corpus(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus-chars", type=int, default=400_000, help="characters of the corpus")
    p.add_argument("--out", required=True, type=Output(".txt"), help="output .txt")
    p.set_defaults(func=cmd_corpus)
