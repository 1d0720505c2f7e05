#!/usr/bin/env bash
# Stability demonstration on the zoo (docs/stability.md): 300 puzzles of mixed difficulty,
# 100 generated with 30-45 blanks, 100 with 46-55 blanks, the first 100 of qqwing_expert.sdm.
# Usage: scripts/stability_demo.sh [OUT_DIR] [EXPERT_FILE]   (CPU, ~3 minutes per model on one thread)
set -euo pipefail
OUT=${1:-out/stability}
EXPERT=${2:-data/sudoku/qqwing_expert.sdm}
mkdir -p "$OUT"
{
  python -m tasks.sudoku generate -n 100 --min-blanks 30 --max-blanks 45 --seed 101 | cut -d' ' -f1
  python -m tasks.sudoku generate -n 100 --min-blanks 46 --max-blanks 55 --seed 102 | cut -d' ' -f1
  head -n 100 "$EXPERT"
} > "$OUT/mixed.sdm"
for m in trm-sudoku9 hrm-sudoku9; do
  python -m interp stability --ckpt "zoo/$m" --puzzle-file "$OUT/mixed.sdm" --tangents 4 --threads 1 --out "$OUT/$m"
done
