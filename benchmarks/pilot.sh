#!/usr/bin/env bash
# The benchmark pilot (README, "Pilot and the default study"): every family on 20 goals per
# mode with the project's prompts, checkers and default agent settings, one run at a time,
# no meter. Usage: benchmarks/pilot.sh [MODEL] [FAMILY ...]; results under results/pilot/MODEL/.
set -euo pipefail
model=${1:-qwen2.5-coder-0.5b}
shift || true
families=("$@")
[ ${#families[@]} -gt 0 ] || families=(science_qa factual_qa logical_reasoning gsm8k_basic gsm8k_multi_step tg_single_calc tg_sequential_2)
for f in "${families[@]}"; do
  start=$(date +%s)
  mkdir -p "results/pilot/$model"
  .venv/bin/alems run --family "$f" --tasks 20 --model "$model" --config config/config.yaml \
    --threads 1 --no-energy --no-progress --out "results/pilot/$model/$f" --json > "results/pilot/$model/$f.json"
  echo "$model $f: $(($(date +%s) - start)) s"
done
