#!/usr/bin/env bash
# Does the prepared frame store change what stage 1 learns? The synthetic corpus written as
# 1280x720 H.264 videos (How2Sign's frame size), stage 1 trained on the direct path (decoding the
# videos) and on the frame store (fairseq-slt-frame-store), same seeds; the dev loss per epoch of
# every run and the wall time of each arm.
#   0 corpus at --video-size 1280x720     1 the frame store and config_store.yaml
#   2 stage 1 per seed and arm (direct, store)     3 the table (summary.md, summary.json)
#
#   bash examples/synthetic/frame_store_check.sh
#
# Variables: WORK_DIR (default runs/frame_store_check), SEEDS ("1 2"), N_TRAIN (160), N_DEV (40),
# MAX_EPOCH (5), WORKERS (DataLoader workers and store writers, 1), step / stop_step (the recipe steps
# above, 0 / 3).
# A finished run (its "done" marker) is not trained again: rerun the script to continue.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
source "${here}/../lib.sh"

WORK_DIR=${WORK_DIR:-runs/frame_store_check}
SEEDS=${SEEDS:-1 2}
N_TRAIN=${N_TRAIN:-160}
N_DEV=${N_DEV:-40}
MAX_EPOCH=${MAX_EPOCH:-5}
WORKERS=${WORKERS:-1}
init_steps 0 3
require_int N_TRAIN "${N_TRAIN}" 1
require_int N_DEV "${N_DEV}" 1
require_int MAX_EPOCH "${MAX_EPOCH}" 1
require_int WORKERS "${WORKERS}" 1

recipe=frame_store_check.sh
plugin_dir=$(slt_plugin_dir)
bin_dir=$(slt_bin_dir)
DATA=${WORK_DIR}/data

if step_enabled 0; then
  log "step 0: synthetic corpus at 1280x720 -> ${DATA}"
  run_cmd "${bin_dir}/fairseq-slt-synth" --out "${DATA}" --seed 1 --n-train "${N_TRAIN}" --n-dev "${N_DEV}" \
    --n-test 10 --formats mp4 --size 64 --resize 32 --crop 32 --translate 1 --video-size 1280x720
fi

if step_enabled 1; then
  log "step 1: the frame store -> ${DATA}/store, config_store.yaml"
  run_cmd "${bin_dir}/fairseq-slt-frame-store" "${DATA}" --out store --workers "${WORKERS}" --no-config
  run_cmd "${bin_dir}/fairseq-slt-data-config" "${DATA}" --out config_store.yaml --frame-store store
fi

if step_enabled 2; then
  for seed in ${SEEDS}; do
    for arm in direct store; do
      dir=${WORK_DIR}/seed${seed}/${arm}
      if [ -f "${dir}/done" ]; then log "seed ${seed}, ${arm}: done already"; continue; fi
      if [ "${arm}" = store ]; then config=config_store.yaml; else config=config.yaml; fi
      log "step 2: seed ${seed}, ${arm} (${config}) -> ${dir}"
      mkdir -p "${dir}"
      rm -f "${dir}/train.log"
      start=$(date +%s)
      run_cmd "${bin_dir}/fairseq-train" "${DATA}" --user-dir "${plugin_dir}" --config-yaml "${config}" \
        --task sign_translation --arch slt_lightt_tiny --temporal-dim 256 \
        --valid-subset dev --criterion label_smoothed_cross_entropy --label-smoothing 0.2 \
        --optimizer adam --lr 1e-3 --lr-scheduler inverse_sqrt --warmup-updates 50 \
        --max-tokens 320 --max-epoch "${MAX_EPOCH}" --seed "${seed}" --save-dir "${dir}" \
        --no-save --num-workers "${WORKERS}" --log-format json --log-file "${dir}/train.log" \
        --no-progress-bar --log-interval 50
      echo $(( $(date +%s) - start )) > "${dir}/seconds"
      touch "${dir}/done"
    done
  done
fi

if step_enabled 3; then
  log "step 3: the table -> ${WORK_DIR}/summary.md"
  run_cmd "${bin_dir}/python" "${here}/summarize_frame_store_check.py" "${WORK_DIR}"
fi
