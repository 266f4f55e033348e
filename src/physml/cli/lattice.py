"""CLI verbs of lattice field theory without a model: ``physml lattice hmc``, ``exact``,
``measure`` and ``compare`` (the tidy table of every source's observables against a reference
source, NetCDF plus CSV)."""

from __future__ import annotations

import argparse
from pathlib import Path

from physml.cli.common import Output, add_runtime_options, save, setup_runtime
from physml.cli.options import lattice_extent
from physml.io.artifacts import atomic_path, read_input
from physml.lattice.phi4 import Phi4
from physml.lattice.u1 import U1
from physml.lattice.u1_exact import exact_ensemble
from physml.mc.ensembles import hmc_ensemble
from physml.native import ENGINES


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _add_hmc_options(p: argparse.ArgumentParser, n_chains: int, n_therm: int, meas_interval: int,
                     step_size: float, n_steps: int, engines: tuple[str, ...] = ENGINES) -> None:
    """The options of ``hmc THEORY``; the defaults are the theory's ``hmc`` block of the
    workflow schema (tests/test_defaults.py)."""
    p.add_argument("--L", type=lattice_extent, required=True, help="lattice extent (L x L, periodic, even)")
    p.add_argument("--n-configs", type=_positive_int, required=True,
                   help="configurations to store (a multiple of --n-chains)")
    p.add_argument("--n-chains", type=_positive_int, default=n_chains, help="independent chains run as one batch")
    p.add_argument("--n-therm", type=int, default=n_therm, help="thermalisation trajectories per chain")
    p.add_argument("--meas-interval", type=_positive_int, default=meas_interval,
                   help="trajectories between stored configurations")
    p.add_argument("--step-size", type=float, default=step_size, help="leapfrog step size")
    p.add_argument("--n-steps", type=_positive_int, default=n_steps, help="leapfrog steps per trajectory")
    p.add_argument("--therm-step-size", type=float, default=None,
                   help="leapfrog step size during thermalisation (unset: --step-size)")
    p.add_argument("--start", type=lambda s: "hot" if s == "random" else s, choices=("cold", "hot"),
                   default="cold", help="initial fields: cold (ordered) or hot (random; also spelt random)")
    p.add_argument("--engine", choices=engines, default="auto",
                   help="trajectory code: native = C kernel (phi^4, float64 CPU), reference = torch, "
                        "auto = the kernel where it applies and compiles (recorded as hmc_engine)")
    p.add_argument("--source", default=None,
                   help="source label of the ensemble (default: hmc, hmc_flux with flux moves), "
                        "e.g. hmc_train for a diffusion model's training ensemble")
    p.add_argument("--seed", type=int, required=True, help="random seed")
    p.add_argument("--out", required=True, help="output ensemble .nc")
    add_runtime_options(p, device=True)


def _run_hmc(args: argparse.Namespace, theory) -> None:
    """Shared body of the ``hmc THEORY`` verbs: sample, report acceptance, save."""
    device = setup_runtime(args)
    ds = hmc_ensemble(theory, L=args.L, n_configs=args.n_configs,
                      n_chains=args.n_chains, n_therm=args.n_therm, meas_interval=args.meas_interval,
                      step_size=args.step_size, n_steps=args.n_steps, seed=args.seed, start=args.start,
                      therm_step_size=args.therm_step_size, device=device, show_progress=args.progress,
                      engine=args.engine, flux_moves=getattr(args, "flux_moves", 0))
    if args.source:
        ds.attrs["source"] = args.source
    print(f"acceptance {ds.attrs['acceptance_rate']:.3f}")
    if ds.attrs["acceptance_rate"] == 0:
        raise ValueError(f"{args.out}: not written: no trajectory was accepted after thermalisation "
                         f"(acceptance 0), so each chain repeats one configuration: lower --step-size "
                         f"{args.step_size:g}, or the couplings make the action overflow")
    if "flux_acceptance_rate" in ds.attrs:
        print(f"flux-move acceptance {ds.attrs['flux_acceptance_rate']:.3f}")
    save(ds, args, f"hmc {theory.name}", theory=theory.name)


def cmd_hmc_phi4(args: argparse.Namespace) -> None:
    _run_hmc(args, Phi4(args.kappa, args.lam))


def cmd_hmc_u1(args: argparse.Namespace) -> None:
    if args.flux_moves < 0:
        raise ValueError(f"need --flux-moves >= 0, got {args.flux_moves}")
    _run_hmc(args, U1(args.beta))


def cmd_exact_u1(args: argparse.Namespace) -> None:
    setup_runtime(args)
    ds = exact_ensemble(beta=args.beta, L=args.L, n_configs=args.n_configs, seed=args.seed,
                        show_progress=args.progress)
    print(f"acceptance of the plaquette accept step {ds.attrs['acceptance_rate']:.3f}")
    save(ds, args, "exact u1", theory="u1")


def cmd_measure(args: argparse.Namespace) -> None:
    from physml.observables import measure   # pyerrors: imported only by this verb

    setup_runtime(args)
    ds = read_input(args.ensemble, "an ensemble (field phi or theta) of theory phi4 or u1",
                    kinds=("ensemble",), theories=("phi4", "u1"))
    obs = measure(ds)
    obs.attrs["history"] = ds.attrs.get("history", "")
    save(obs, args, "measure", inputs=[args.ensemble], seed=int(ds.attrs.get("seed", -1)))


def verb_hmc(hmc: argparse.ArgumentParser) -> None:
    theories = hmc.add_subparsers(dest="theory", required=True, metavar="THEORY")
    p = theories.add_parser("phi4", help="2D phi^4, hopping-parameter action")
    p.add_argument("--kappa", type=float, required=True, help="hopping parameter kappa")
    p.add_argument("--lam", type=float, default=0.022, help="quartic coupling lambda")
    # decorrelated near criticality (kappa = 0.27: docs/diffusion_phi4.md), as the quick config
    _add_hmc_options(p, n_chains=64, n_therm=2000, meas_interval=32, step_size=0.125, n_steps=8)
    p.set_defaults(func=cmd_hmc_phi4)
    p = theories.add_parser("u1", help="2D compact U(1), Wilson action")
    p.add_argument("--beta", type=float, required=True, help="inverse coupling beta")
    _add_hmc_options(p, n_chains=32, n_therm=200, meas_interval=4, step_size=0.05, n_steps=20,
                     engines=("auto", "reference"))  # no C kernel
    p.add_argument("--flux-moves", type=int, default=0,
                   help="global flux moves (Q -> Q +- 1 proposals, exact Metropolis) after every "
                        "trajectory; > 0 makes the ensemble's source hmc_flux")
    # a cold start at large beta and L needs a smaller step while it thermalises
    p.set_defaults(func=cmd_hmc_u1, therm_step_size=0.02)


def verb_exact(exact: argparse.ArgumentParser) -> None:
    theories = exact.add_subparsers(dest="theory", required=True, metavar="THEORY")
    p = theories.add_parser("u1", help="2D U(1) on the torus: independent von Mises plaquettes "
                            "with the constraint accept step")
    p.add_argument("--L", type=lattice_extent, required=True, help="lattice extent (L x L, periodic, even)")
    p.add_argument("--beta", type=float, required=True, help="inverse coupling beta")
    p.add_argument("--n-configs", type=_positive_int, required=True, help="independent configurations")
    p.add_argument("--seed", type=int, required=True, help="random seed")
    p.add_argument("--out", required=True, help="output ensemble .nc (source = exact)")
    add_runtime_options(p)
    p.set_defaults(func=cmd_exact_u1)


def verb_measure(m: argparse.ArgumentParser) -> None:
    m.add_argument("ensemble", help="ensemble .nc (theory detected from the file)")
    m.add_argument("--out", required=True, help="output observables .nc")
    add_runtime_options(m)
    m.set_defaults(func=cmd_measure)


def cmd_compare(args: argparse.Namespace) -> None:
    from physml.observables.compare import comparison_table, table_frame   # pyerrors, scipy

    setup_runtime(args)
    datasets = [read_input(p, "observables of `physml lattice measure`", kinds=("observables",))
                for p in args.observables]
    sources = sorted({str(ds.attrs.get("source")) for ds in datasets})
    if args.reference not in sources:
        raise ValueError(f"--reference {args.reference!r} matches no input; their sources are "
                         f"{', '.join(sources)}")
    table = comparison_table(datasets, reference=args.reference)
    csv = args.csv or str(Path(args.out).with_suffix(".csv"))
    save(table, args, "compare", inputs=args.observables)
    with atomic_path(csv) as tmp:
        table_frame(table).to_csv(tmp, index=False, float_format="%.8g")
    print(f"wrote {csv}")


def verb_compare(c: argparse.ArgumentParser) -> None:
    c.description = "Table of generated vs reference observables (NetCDF + CSV)."
    c.add_argument("observables", nargs="+", help="observable artifacts (.nc) of every source")
    c.add_argument("--reference", default="hmc", help="source the others are compared with")
    c.add_argument("--out", required=True, type=Output(".nc", beside=(".csv",)),
                   help="table .nc (results/tables/<theory>_...)")
    c.add_argument("--csv", default=None, type=Output(".csv"), help="CSV export (default: OUT with .csv)")
    add_runtime_options(c)
    c.set_defaults(func=cmd_compare)
