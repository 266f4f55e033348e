#!/usr/bin/env bash
# Which sampler gives the physics-conditioned U(1) model the right topology? Trains the
# gauge-covariant and the plain link U-Net at beta_0 = 1, L = 16 and prints raw-DM plaquette
# and chi_t against the exact values for Euler-Maruyama (linear grid, geometric grid with a
# 1000-step annealing stage), annealed Langevin and predictor-corrector at beta = 5 and 7.
#
#   bash benchmarks/u1_samplers.sh [OUTDIR]       (a GPU: ~4 min)
#   NTRAIN=256 EPOCHS=1 N=32 bash benchmarks/u1_samplers.sh /tmp/s    (CPU smoke test)
set -euo pipefail
D=${1:-results/benchmarks/u1_samplers}
NTRAIN=${NTRAIN:-16384}; EPOCHS=${EPOCHS:-60}; N=${N:-512}; PY=${PY:-python}
mkdir -p "$D"
run() { echo "+ physml $*" >&2; "$PY" -m physml "$@" --no-progress > /dev/null; }
run lattice hmc u1 --L 16 --beta 1 --n-configs "$NTRAIN" --n-chains $((NTRAIN / 16)) --n-therm 200 \
    --meas-interval 5 --seed 1 --out "$D/train.nc"
for net in gauge links; do
    flag=$([ "$net" = gauge ] && echo --gauge-covariant || true)
    run diffusion train "$D/train.nc" --recipe song $flag --channels 32 64 128 --embed-dim 128 --groups 8 --epochs "$EPOCHS" \
        --batch-size 256 --lr 1e-3 --seed 2 --out "$D/$net.pt" --history "$D/${net}_training.nc"
done
sample() {   # model beta tag options...
    local m=$1 b=$2 tag=$3; shift 3
    run diffusion sample "$D/$m.pt" --L 16 --beta "$b" --n-configs "$N" --batch-size "$N" --seed 3 \
        --sampler em --sigma-min 0.0317 --out "$D/$tag.nc" "$@"   # the papers' final level, t = 1e-3
    run lattice measure "$D/$tag.nc" --out "$D/obs_$tag.nc"
}
sample links 1 links_b1_em --grid log_sigma --n-steps 500
for b in 5 7; do
    sample gauge "$b" gauge_b${b}_em_linear --grid linear --n-steps 500
    sample gauge "$b" gauge_b${b}_em_anneal --grid log_sigma --n-steps 500 --anneal-steps 1000
    sample gauge "$b" gauge_b${b}_ald --sampler ald --n-steps 200 --steps-per-level 5
    sample gauge "$b" gauge_b${b}_pc --sampler pc --grid log_sigma --n-steps 500 --n-corrector 2
done
"$PY" - "$D" <<'PYEOF'
import glob, sys
import xarray as xr
for f in sorted(glob.glob(f"{sys.argv[1]}/obs_*.nc")):
    o = xr.open_dataset(f)
    print(f"{f.split('obs_')[-1][:-3]:22s} plaquette {float(o.plaquette):.4f}({float(o.plaquette_err):.4f}) "
          f"exact {o.plaquette_exact:.4f}   chi_t {float(o.chi_t):.5f}({float(o.chi_t_err):.5f}) "
          f"exact {o.chi_t_exact:.5f}")
PYEOF
