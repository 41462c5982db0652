#!/usr/bin/env bash
# Does the LLM's language knowledge show? A low-resource benchmark in which the text corpus holds
# much more of the language than the parallel data (the open grammar, 600 training videos, a
# 100,000-sentence text corpus), with the arms of the paper's ablation: stage 1 alone, factorized
# with the pre-trained LLM, and factorized with the same LLM never pre-trained. Results:
# docs/results/llm_benchmark.md.
#
#   bash examples/synthetic/llm_benchmark.sh             # full size (about 1 hour per seed on 2 cores)
#   SMOKE=1 bash examples/synthetic/llm_benchmark.sh     # every step at a tiny size, a few minutes
#
# It is examples/synthetic/open_benchmark.sh with these defaults; every variable of that script
# applies (N_TRAIN, TEXT_CORPUS, LLM_LAYERS, LLM_DIM, LLM_UPDATES, EPOCHS1, UPDATES2, SEEDS,
# STAGE2_ARGS, STAGE2_TAG, STAGE2_ONLY, step / stop_step, ...). The joint arm (open_benchmark.sh's
# step 3, at the factorized arm's training time) is off: JOINT=1 adds it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
source "${here}/../lib.sh"
init_steps 0 4

if [ "${SMOKE:-0}" = 1 ]; then
  export WORK_DIR=${WORK_DIR:-runs/llm_benchmark_smoke} N_TRAIN=${N_TRAIN:-40} N_DEV=${N_DEV:-10}
  export N_TEST=${N_TEST:-10} TEXT_CORPUS=${TEXT_CORPUS:-2000} LLM_LAYERS=${LLM_LAYERS:-1}
  export LLM_DIM=${LLM_DIM:-64} LLM_UPDATES=${LLM_UPDATES:-20} EPOCHS1=${EPOCHS1:-1} PATIENCE1=${PATIENCE1:-0}
  export UPDATES2=${UPDATES2:-10} SEEDS=${SEEDS:-1 2}
fi
export WORK_DIR=${WORK_DIR:-runs/llm_benchmark}
export GRAMMAR=${GRAMMAR:-open} N_TRAIN=${N_TRAIN:-600} N_DEV=${N_DEV:-100} N_TEST=${N_TEST:-200}
export TEXT_CORPUS=${TEXT_CORPUS:-100000} LLMS=${LLMS:-text random}
# a small mBART (3+3 layers, d=256) pre-trained on the text corpus for 1,000 updates (about 2
# epochs of it)
export LLM_LAYERS=${LLM_LAYERS:-3} LLM_DIM=${LLM_DIM:-256} LLM_HEADS=${LLM_HEADS:-4}
export LLM_UPDATES=${LLM_UPDATES:-1000}
export EPOCHS1=${EPOCHS1:-20} PATIENCE1=${PATIENCE1:-3} BOW_WEIGHT=${BOW_WEIGHT:-1}
export UPDATES2=${UPDATES2:-1000} SEEDS=${SEEDS:-1 2}
benchmark=${here}/open_benchmark.sh
if [ "${JOINT:-0}" = 1 ] || [ "${stop_step}" -lt 3 ] || [ "${step}" -gt 3 ]; then
  step=${step} stop_step=${stop_step} bash "${benchmark}"
else
  # steps 0-2 for every seed, then the tables: no joint arm (step 3) unless JOINT=1
  if [ "${step}" -le 2 ]; then step=${step} stop_step=2 bash "${benchmark}"; fi
  if [ "${stop_step}" -ge 4 ]; then step=4 stop_step=${stop_step} bash "${benchmark}"; fi
fi
