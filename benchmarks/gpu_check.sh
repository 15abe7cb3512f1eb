#!/usr/bin/env bash
# One-shot energy check on a host with an NVIDIA GPU (issue 12). From the repository root:
#
#   1. where the package index is reachable:  bash benchmarks/gpu/prep_wheels.sh
#      (snakemake, jsonschema, scipy, matplotlib ... as cp312 wheels in benchmarks/gpu/wheels/,
#      git-ignored; copy or carry that folder to the GPU host with the working tree)
#   2. on the GPU host, offline:               bash benchmarks/gpu_check.sh
#
# It makes a venv over the host's Python (ALEMS_GPU_PYTHON, default /opt/torch/.venv/bin/python,
# whose torch/numpy/pandas/pyarrow it reuses), installs the wheels with --no-index, then
#   a. cross-checks `alems measure --meter nvml` against direct NVML reads (idle and under load),
#   b. runs the smoke study with the scripted backend and meter auto (config/smoke.yaml +
#      benchmarks/gpu/gpu_check.yaml) in a scratch copy of the workflow,
#   c. prints each cell's EpG per energy layer, the reconstructed idle power, and PASS/FAIL.
# The log, tables and (where matplotlib is there) figure 4 go to $OUT (or benchmarks/out/gpu_check/).
# Exit 1 on a FAIL, 2 when the set-up fails.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${ALEMS_GPU_PYTHON:-/opt/torch/.venv/bin/python}
WHEELS=${ALEMS_GPU_WHEELS:-$ROOT/benchmarks/gpu/wheels}
DEST=${OUT:-$ROOT/benchmarks/out/gpu_check}
VENV=${TMPDIR:-/tmp}/alems-gpu-venv
WORK=${TMPDIR:-/tmp}/alems-gpu-work
mkdir -p "$DEST"
exec > >(tee "$DEST/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1

echo "== host"; nvidia-smi --query-gpu=name,driver_version,power.draw,power.limit --format=csv || true
[ -x "$PY" ] || PY=$(command -v python3)
"$PY" --version
[ -d "$WHEELS" ] || { echo "no wheels in $WHEELS: run benchmarks/gpu/prep_wheels.sh where the index is reachable"; exit 2; }

echo "== venv"
# A venv made from a venv's python would not see that venv's packages (--system-site-packages
# means the base interpreter's): a .pth file puts the host's site-packages on the path instead,
# so pip counts torch, numpy, pandas and pyarrow there as installed.
rm -rf "$VENV" && "$PY" -m venv "$VENV" || exit 2
HOST_SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
VENV_SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$HOST_SITE" > "$VENV_SITE/alems_host_site.pth"
# --no-deps: the folder holds the pinned closure (prep_wheels.sh), pulp left out on purpose
"$VENV/bin/python" -m pip install --quiet --no-index --no-deps "$WHEELS"/*.whl || exit 2
export PYTHONPATH=$ROOT/src PATH=$VENV/bin:$PATH
python -c "import alems, snakemake, jsonschema, pynvml, torch; print('alems', alems.__file__, 'torch', torch.__version__)" || exit 2

rc=0
echo "== a. NVML cross-check"
python "$ROOT/benchmarks/gpu/check.py" crosscheck || rc=1

echo "== b. smoke study, scripted backend, meter auto"
rm -rf "$WORK" && mkdir -p "$WORK"
cp -r "$ROOT/Snakefile" "$ROOT/workflow" "$ROOT/config" "$ROOT/profiles" "$ROOT/envs" "$WORK/"
cp "$ROOT/benchmarks/gpu/gpu_check.yaml" "$WORK/config/"
t0=$(date +%s)
# up to the tables (figures need matplotlib, which the host may lack; check.py draws figure 4
# itself where it can); the target goes first, --configfile takes every path after it
(cd "$WORK" && snakemake results/tables/epg_layers.csv --cores 1 --scheduler greedy --profile profiles/default \
    --configfile config/smoke.yaml config/gpu_check.yaml) || rc=1
echo "smoke study: $(( $(date +%s) - t0 )) s"

echo "== c. summary"
python "$ROOT/benchmarks/gpu/check.py" summary --results "$WORK/results" --figure "$DEST/fig4_power_timeline.png" || rc=1
cp "$WORK"/results/tables/*.csv "$WORK"/results/baseline/idle.json "$DEST/" 2>/dev/null || true
echo "== exit $rc"
exit $rc
