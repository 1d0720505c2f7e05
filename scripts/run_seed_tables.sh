#!/usr/bin/env bash
# Seed tables at a tiny CPU scale: train the seed-000 2x2 ({HRM, flat TRM} x {1-step gradient, full BPTT})
# and the CGAR 4-arm ablation (baseline / PDC / HSW / both) on generated 4x4 Sudoku, then build
# reports/seed000_2x2/ and reports/cgar/ from reports/seed000_2x2.yaml and reports/cgar.yaml.
#
#   scripts/run_seed_tables.sh                                   # the shipped run (about 30 min on one busy core)
#   RUNS=/tmp/st REPORTS=/tmp/st/reports scripts/run_seed_tables.sh --set steps=20    # quick end-to-end check
#
# Extra arguments go to every `python -m training train` after the script's own, so they win.
# Environment:
#   RUNS     training run root (default runs/seed_tables); any other root gets rewritten copies of the
#            two report configs under $RUNS/report_configs/
#   REPORTS  where the two report directories go (default reports)
#   SEEDS    default "0 1"; must match the seeds listed in the two report configs
#   PY       python interpreter (default python)
#   NICE     command prefix for every job (default "nice -n 19"; set NICE= to run at normal priority)
# Every job runs with OMP_NUM_THREADS=1. A run whose directory holds DONE written by the same command is
# skipped (so an interrupted script picks up where it stopped); any other existing run directory is
# deleted and trained again (a resumed run would restart the trainer's clock and spoil the CGAR times).
# Per-run wall times go to $RUNS/timings.tsv, training logs to $RUNS/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-runs/seed_tables}
REPORTS=${REPORTS:-reports}
SEEDS=${SEEDS:-"0 1"}
PY=${PY:-python}
NICE=${NICE-nice -n 19}
EXTRA=("$@")
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# Tiny budget shared by every arm of a study; only the arm's own config differs inside a study.
# Both studies evaluate once, after training (eval_interval=0), so the logged training time excludes evaluation.
SEED000_SETS=(--set steps=400 --set optim.warmup_steps=40 --set eval_interval=0 --set ckpt_interval=0
              --set eval_n=500 --set log_interval=50)
CGAR_SETS=(--set steps=400 --set batch_size=32 --set optim.warmup_steps=40 --set eval_interval=0
           --set ckpt_interval=0 --set eval_n=250 --set log_interval=50)

mkdir -p "$RUNS/logs"
TIMINGS="$RUNS/timings.tsv"
[ -f "$TIMINGS" ] || printf 'run\tseconds\n' > "$TIMINGS"
T_ALL=$(date +%s)

train() {  # train NAME CONFIG SEED EXTRA_SETS...
    local name=$1 config=$2 seed=$3
    shift 3
    local dir="$RUNS/$name" log="$RUNS/logs/${name//\//_}.log"
    local cmd=($NICE "$PY" -m training train --config "training/configs/$config" --out "$dir" --no-progress
               "$@" --set "seed=$seed" "${EXTRA[@]}")
    if [ -f "$dir/DONE" ] && [ "$(cat "$dir/DONE")" = "${cmd[*]}" ]; then
        echo "skip  $name (done)"
        return
    fi
    rm -rf -- "$dir"
    local t0=$(date +%s)
    echo "train $name ..."
    if ! "${cmd[@]}" > "$log" 2>&1; then
        echo "error: training $name failed; see $log" >&2
        tail -5 "$log" >&2
        exit 1
    fi
    local dt=$(( $(date +%s) - t0 ))
    printf '%s\t%s\n' "$name" "$dt" >> "$TIMINGS"
    printf '%s' "${cmd[*]}" > "$dir/DONE"
    echo "      $name: ${dt}s"
}

# Seed-major order, so slow drifts in machine load hit every arm alike.
for s in $SEEDS; do
    for arm in hrm_one_step hrm_full_bptt flat_one_step flat_full_bptt; do
        train "seed000/$arm/s$s" "seed000_$arm.yaml" "$s" "${SEED000_SETS[@]}"
    done
    for arm in baseline:cgar_base pdc:cgar_pdc hsw:cgar_hsw both:cgar_full; do
        train "cgar/${arm%%:*}/s$s" "${arm#*:}.yaml" "$s" "${CGAR_SETS[@]}"
    done
done

report() {  # report NAME: reports/NAME.yaml -> $REPORTS/NAME
    local name=$1 config="reports/$1.yaml"
    if [ "$RUNS" != "runs/seed_tables" ]; then  # point a copy of the config at $RUNS
        mkdir -p "$RUNS/report_configs"
        local root
        root=$(cd "$RUNS" && pwd)
        sed "s#\.\./runs/seed_tables#${root}#g" "$config" > "$RUNS/report_configs/$name.yaml"
        config="$RUNS/report_configs/$name.yaml"
    fi
    $NICE "$PY" -m interp report --config "$config" --out "$REPORTS/$name" --overwrite
}
report seed000_2x2
report cgar
echo "all done in $(( $(date +%s) - T_ALL ))s (per-run times: $TIMINGS)"
