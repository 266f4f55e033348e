#!/usr/bin/env bash
# Headline of the U(1) diffusion study (issue 5, stretch): at large beta on L = 16, where
# HMC's topology freezes, does DM + MALA reproduce chi_t and the whole P(Q) of the exact
# sampler, and better than MALA alone with the same steps? Also the cost per independent Q
# of DM + MALA, HMC and the exact sampler, measured side by side in this one run.
#
#   bash benchmarks/u1_topology.sh [OUTDIR]        (a GPU: ~5 min; defaults below)
#   N=64 NTRAIN=256 EPOCHS=2 MALA=50 bash benchmarks/u1_topology.sh /tmp/t   (CPU smoke test)
#
# The model is trained at beta_0 = 1 on an HMC ensemble (gauge-covariant network) and
# generates at every beta of BETAS with the score scaled by beta / beta_0.
set -euo pipefail
D=${1:-results/benchmarks/u1_topology}
L=${L:-16}; BETAS=${BETAS:-"7 9"}; N=${N:-1024}; NTRAIN=${NTRAIN:-16384}
EPOCHS=${EPOCHS:-100}; MALA=${MALA:-2000}; DEVICE=${DEVICE:-auto}; PY=${PY:-python}
mkdir -p "$D"
run() { echo "+ physml $*" >&2; "$PY" -m physml "$@" --no-progress; }

run lattice hmc u1 --L "$L" --beta 1 --n-configs "$NTRAIN" --n-chains $((NTRAIN / 16)) --n-therm 200 \
    --meas-interval 5 --seed 1 --device "$DEVICE" --out "$D/train.nc"
run diffusion train "$D/train.nc" --recipe song --gauge-covariant --channels 32 64 128 --embed-dim 128 --groups 8 \
    --epochs "$EPOCHS" --batch-size 256 --lr 1e-3 --seed 2 --device "$DEVICE" \
    --out "$D/model.pt" --history "$D/training.nc"
for b in $BETAS; do
    run diffusion sample "$D/model.pt" --L "$L" --beta "$b" --n-configs "$N" --sampler em --n-steps 500 \
        --grid log_sigma --sigma-min 0.0317 \
        --batch-size 1024 --mala-steps "$MALA" --mala-out "$D/dm_mala_b$b.nc" --seed 3 \
        --device "$DEVICE" --out "$D/dm_b$b.nc"
    run lattice mala u1 --L "$L" --beta "$b" --n-configs "$N" --mala-steps "$MALA" --start hot --seed 4 \
        --device "$DEVICE" --out "$D/mala_only_b$b.nc"
    run lattice exact u1 --L "$L" --beta "$b" --n-configs 8192 --seed 5 --out "$D/exact_b$b.nc"
    run lattice hmc u1 --L "$L" --beta "$b" --n-configs $((N * 8)) --n-chains "$N" --n-therm 1000 \
        --meas-interval 10 --seed 6 --device "$DEVICE" --out "$D/hmc_b$b.nc"
    for s in dm dm_mala mala_only exact hmc; do
        run lattice measure "$D/${s}_b$b.nc" --out "$D/obs_${s}_b$b.nc" > /dev/null
    done
done
run lattice compare "$D"/obs_*.nc --reference exact --out "$D/u1_topology.nc" > /dev/null
"$PY" - "$D/u1_topology.csv" <<'PYEOF'
import sys
import pandas as pd
t = pd.read_csv(sys.argv[1])
keep = ["plaquette", "chi_t", "P_Q_pvalue", "cost_per_independent_Q"]
t = t[t["observable"].isin(keep)].pivot_table(index=["beta", "source"], columns="observable",
                                              values=["value", "error", "pull"], aggfunc="first")
pd.set_option("display.width", 200)
print(t.round(5).to_string())
PYEOF
