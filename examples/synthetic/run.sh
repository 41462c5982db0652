#!/usr/bin/env bash
# Synthetic demo of both FLa-LLM stages on CPU with stock fairseq-train / fairseq-generate:
#   0 generate the corpus               1 train stage 1 (slt_lightt)   2 decode + score stage 1
#   3 pre-train a small mBART (denoising) and trim it to the corpus
#   4 cache the frozen visual encoder's features, write config_stage2.yaml (fairseq-slt-data-config)
#   5 train stage 2 (slt_mbart)   6 decode + score
#
#   bash examples/synthetic/run.sh [extra fairseq-train arguments for stage 1]
#
# Variables (override from the environment): WORK_DIR (default runs/synthetic), SEED,
# step / stop_step (the recipe steps above, default 0 / 6), N_TRAIN, MAX_EPOCH (stage 1), MAX_UPDATE2 (stage 2),
# STAGE2_ARGS (extra fairseq-train arguments for stage 2, word-split).
# The step skeleton (log, init_steps, step_enabled, decode, score_split) is examples/lib.sh's.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
source "${here}/../lib.sh"

WORK_DIR=${WORK_DIR:-runs/synthetic}
SEED=${SEED:-1}
N_TRAIN=${N_TRAIN:-800}
MAX_EPOCH=${MAX_EPOCH:-10}
MAX_UPDATE2=${MAX_UPDATE2:-1000}
read -r -a stage2_args <<< "${STAGE2_ARGS:-}"
init_steps 0 6

recipe=run.sh
plugin_dir=$(slt_plugin_dir)
# the venv's scripts, next to the python that runs this (falls back to PATH)
bin_dir=$(slt_bin_dir)
DATA=${WORK_DIR}/data
SAVE_DIR=${WORK_DIR}/checkpoints
GEN_DIR=${WORK_DIR}/generate
MBART_DIR=${WORK_DIR}/mbart.trimmed
SAVE_DIR2=${WORK_DIR}/checkpoints_stage2
GEN_DIR2=${WORK_DIR}/generate_stage2

start=$(date +%s)

if step_enabled 0; then
  log "step 0: synthetic corpus -> ${DATA}"
  "${bin_dir}/fairseq-slt-synth" --out "${DATA}" --seed "${SEED}" --n-train "${N_TRAIN}" \
    --formats mp4 --size 64 --resize 32 --crop 32 --translate 1
fi

if step_enabled 1; then
  log "step 1: train slt_lightt_tiny -> ${SAVE_DIR}"
  "${bin_dir}/fairseq-train" "${DATA}" --user-dir "${plugin_dir}" \
    --task sign_translation --arch slt_lightt_tiny --temporal-dim 256 \
    --valid-subset dev --criterion label_smoothed_cross_entropy --label-smoothing 0.2 \
    --optimizer adam --lr 1e-3 --lr-scheduler inverse_sqrt --warmup-updates 50 \
    --max-tokens 320 --max-epoch "${MAX_EPOCH}" --seed "${SEED}" \
    --save-dir "${SAVE_DIR}" --no-epoch-checkpoints --num-workers 1 \
    --log-interval 20 --no-progress-bar "$@"
fi

if step_enabled 2; then
  log "step 2: decode the test split with slt_lightt, beam 5"
  decode "${DATA}" test "${SAVE_DIR}/checkpoint_last.pt" "${GEN_DIR}" \
    --user-dir "${plugin_dir}" --task sign_translation --max-tokens 2000
  score_split "${GEN_DIR}" test "stage 1 (slt_lightt)"
fi

if step_enabled 3; then
  log "step 3: pre-train a small mBART on the training targets, then trim it -> ${MBART_DIR}"
  cut -f4 "${DATA}/train.tsv" | tail -n +2 > "${WORK_DIR}/train.en"
  "${bin_dir}/fairseq-slt-build-mbart" --text "${WORK_DIR}/train.en" --lang en_XX \
    --out "${WORK_DIR}/mbart.tiny" --seed "${SEED}"
  "${bin_dir}/fairseq-slt-trim-mbart" --mbart-dir "${WORK_DIR}/mbart.tiny" \
    --text "${WORK_DIR}/train.en" --out "${MBART_DIR}"
fi

if step_enabled 4; then
  log "step 4: cache the frozen stage-1 visual encoder's features"
  # one evaluation view per video (--train-views 0), as the demo's numbers in the README were
  # measured; the dataset recipes cache 4 augmented training views (CACHE_VIEWS, the paper's road)
  "${bin_dir}/fairseq-slt-cache-features" "${DATA}" --stage1-checkpoint "${SAVE_DIR}/checkpoint_last.pt" \
    --out features_stage2 --train-views "${CACHE_VIEWS:-0}"
  # stage 2's data config: the small mBART's tokenizer and vocabulary (outside the data root, so
  # written as absolute paths) and the feature cache
  "${bin_dir}/fairseq-slt-data-config" "${DATA}" --src config.yaml --out config_stage2.yaml \
    --mbart-dir "${MBART_DIR}" --feature-cache features_stage2
fi

stage2_task=(--user-dir "${plugin_dir}" --task sign_translation --config-yaml config_stage2.yaml
             --langs en_XX --tgt-lang en_XX)
if step_enabled 5; then
  log "step 5: train slt_mbart (frozen visual encoder, LLM-adapter, small mBART) -> ${SAVE_DIR2}"
  "${bin_dir}/fairseq-train" "${DATA}" "${stage2_task[@]}" --arch slt_mbart \
    --stage1-checkpoint "${SAVE_DIR}/checkpoint_last.pt" --mbart-dir "${MBART_DIR}" \
    --valid-subset dev --criterion label_smoothed_cross_entropy --label-smoothing 0.2 \
    --optimizer adam_grouped --lr 1e-3 --group-lr-scales llm:0.1 --lr-scheduler cosine \
    --warmup-updates 50 --batch-size 16 --max-update "${MAX_UPDATE2}" --seed "${SEED}" \
    --save-dir "${SAVE_DIR2}" --no-epoch-checkpoints --num-workers 0 --log-interval 20 --no-progress-bar \
    ${stage2_args[@]+"${stage2_args[@]}"}
fi

if step_enabled 6; then
  log "step 6: decode the test split with slt_mbart, beam 5"
  decode "${DATA}" test "${SAVE_DIR2}/checkpoint_last.pt" "${GEN_DIR2}" "${stage2_task[@]}" --batch-size 16
  score_split "${GEN_DIR}" test "stage 1 (slt_lightt)"
  score_split "${GEN_DIR2}" test "stage 2 (slt_mbart)"
fi
log "done in $(( $(date +%s) - start )) s"
