"""HMC ensembles as xarray Datasets (the ``ensemble.nc`` artifact).

Layout: the field variable (``phi`` or ``theta``) has dims ``(config, *site_dims)``;
configurations are ordered chain by chain, so ``config = chain * n_meas + m``.
Per-configuration ``chain``, ``trajectory`` and ``action``; per-trajectory
``acceptance`` (0/1) and ``delta_h`` over dims ``(hmc_traj, chain)``.  With U(1) flux
moves after every trajectory (``source`` = ``hmc_flux``): ``flux_acceptance``, the
fraction of the ``flux_moves`` moves accepted after each trajectory, over the same
dims, and the attributes ``flux_moves`` and ``flux_acceptance_rate`` (after
thermalisation).
Samplers of independent configurations (diffusion model, MALA from a trivial
start) use :func:`independent_ensemble`: one chain per configuration.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
import xarray as xr

from physml.lattice.theory import LatticeTheory
from physml.mc.hmc import sample_hmc


def hmc_ensemble(theory: LatticeTheory, *, L: int, n_configs: int, n_chains: int, n_therm: int,
                 meas_interval: int, step_size: float, n_steps: int, seed: int,
                 start: str = "hot", therm_step_size: float | None = None,
                 device: torch.device | str = "cpu", dtype=torch.float64,
                 show_progress: bool = True, engine: str = "auto", flux_moves: int = 0) -> xr.Dataset:
    """Sample ``n_configs`` configurations from ``n_chains`` chains (``n_configs`` must be
    a multiple of ``n_chains``) and return them as an ensemble Dataset.  ``engine`` and
    ``flux_moves``: see :func:`physml.mc.hmc.sample_hmc`; the ``hmc_engine`` attribute
    records which code ran."""
    if n_chains < 1 or n_configs < n_chains or n_configs % n_chains:
        raise ValueError(f"n_configs ({n_configs}) must be a positive multiple of "
                         f"n_chains ({n_chains})")
    if start not in ("hot", "cold"):
        raise ValueError(f"start must be 'hot' or 'cold', got {start!r}")
    gen = torch.Generator(device=device).manual_seed(seed)
    if start == "hot":
        x0 = theory.random_start(n_chains, L, gen, dtype=dtype, device=device)
    else:
        x0 = theory.cold_start(n_chains, L, dtype=dtype, device=device)
    t0 = time.perf_counter()
    res = sample_hmc(theory, x0, n_meas=n_configs // n_chains, step_size=step_size,
                     n_steps=n_steps, generator=gen, n_therm=n_therm,
                     meas_interval=meas_interval, therm_step_size=therm_step_size,
                     show_progress=show_progress, desc=f"hmc {theory.name} L={L}", engine=engine,
                     flux_moves=flux_moves)
    wall = time.perf_counter() - t0
    n_meas = res.samples.shape[0]
    field = res.samples.transpose(0, 1).reshape(n_configs, *res.samples.shape[2:])
    chain = np.repeat(np.arange(n_chains), n_meas)
    ds = xr.Dataset(
        {
            theory.field_name: (("config", *theory.site_dims), field.cpu().numpy()),
            "chain": ("config", chain),
            "trajectory": ("config", np.tile(res.trajectory.numpy(), n_chains)),
            "action": ("config", res.action.T.reshape(-1).cpu().numpy(),
                       {"long_name": "action S of the configuration"}),
            "acceptance": (("hmc_traj", "chain_id"), res.accepted.cpu().numpy().astype(np.int8),
                           {"long_name": "Metropolis accept (1) or reject (0) per trajectory"}),
            "delta_h": (("hmc_traj", "chain_id"), res.delta_h.cpu().numpy(),
                        {"long_name": "H(end) - H(start) of each trajectory"}),
        },
        coords={"config": np.arange(n_configs), "hmc_traj": np.arange(1, res.accepted.shape[0] + 1),
                "chain_id": np.arange(n_chains)},
        attrs={"theory": theory.name, "source": "hmc", "L": L,
               "acceptance_rate": float(res.accepted[n_therm:].double().mean()),
               "n_therm": n_therm, "meas_interval": meas_interval,
               "step_size": step_size, "n_steps": n_steps, "start": start,
               "wall_time_s": wall, "hmc_engine": res.engine},
    )
    ds.attrs.update(coupling_attrs(theory))
    if flux_moves:
        fraction = res.flux_accepted.double() / flux_moves
        ds["flux_acceptance"] = (("hmc_traj", "chain_id"), fraction.cpu().numpy(), {
            "long_name": "fraction of the flux moves after each trajectory that were accepted"})
        ds.attrs.update(source="hmc_flux", flux_moves=int(flux_moves),
                        flux_acceptance_rate=float(fraction[n_therm:].mean()))
    return ds


def coupling_attrs(theory) -> dict:
    """The theory's couplings (its dataclass fields but the name) as artifact attributes."""
    return {k: v for k, v in dataclasses.asdict(theory).items() if k != "name"}


def independent_ensemble(theory, x: torch.Tensor, source: str, **attrs) -> xr.Dataset:
    """Independent configurations ``x`` (one chain each) of ``theory`` as an ensemble
    Dataset: the field, ``chain`` = configuration index, ``action``; the theory's
    couplings, ``L`` and ``source`` as attributes, plus ``attrs``."""
    x = x.detach().double().cpu()
    n = x.shape[0]
    ds = xr.Dataset(
        {
            theory.field_name: (("config", *theory.site_dims), x.numpy()),
            "chain": ("config", np.arange(n),
                      {"long_name": "independent sample index (every configuration is its own chain)"}),
            "action": ("config", theory.action(x).numpy(), {"long_name": "action S of the configuration"}),
        },
        coords={"config": np.arange(n)},
        attrs={"theory": theory.name, "source": source, "L": int(x.shape[-1])},
    )
    ds.attrs.update({**coupling_attrs(theory), **attrs})
    return ds
