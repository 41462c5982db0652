#!/usr/bin/env bash
# Synthetic demo, stage 1: generate the corpus, train slt_lightt on CPU with stock fairseq-train,
# decode the test split with fairseq-generate --beam 5 and print BLEU-4 (sacrebleu).
#
#   bash examples/synthetic/run.sh [extra fairseq-train arguments]
#
# Variables (override from the environment): WORK_DIR (default runs/synthetic), SEED,
# stage / stop_stage (0 data, 1 train, 2 decode + score).
set -euo pipefail

WORK_DIR=${WORK_DIR:-runs/synthetic}
SEED=${SEED:-1}
stage=${stage:-0}
stop_stage=${stop_stage:-2}
N_TRAIN=${N_TRAIN:-800}
MAX_EPOCH=${MAX_EPOCH:-6}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
plugin_dir=$(cd "${here}/../../fairseq_slt" && pwd)
# the venv's scripts, next to the python that runs this (falls back to PATH)
bin_dir=$(dirname "$(command -v python)")
DATA=${WORK_DIR}/data
SAVE_DIR=${WORK_DIR}/checkpoints
GEN_DIR=${WORK_DIR}/generate

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') [run.sh] $*"; }
start=$(date +%s)

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  log "stage 0: synthetic corpus -> ${DATA}"
  "${bin_dir}/fairseq-slt-synth" --out "${DATA}" --seed "${SEED}" --n-train "${N_TRAIN}" \
    --formats mp4 --size 64
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  log "stage 1: train slt_lightt_tiny -> ${SAVE_DIR}"
  "${bin_dir}/fairseq-train" "${DATA}" --user-dir "${plugin_dir}" \
    --task sign_translation --arch slt_lightt_tiny --temporal-dim 256 \
    --valid-subset dev --criterion label_smoothed_cross_entropy --label-smoothing 0.2 \
    --optimizer adam --lr 1e-3 --lr-scheduler inverse_sqrt --warmup-updates 50 \
    --max-tokens 320 --max-epoch "${MAX_EPOCH}" --seed "${SEED}" \
    --save-dir "${SAVE_DIR}" --no-epoch-checkpoints --num-workers 1 \
    --log-interval 20 --no-progress-bar "$@"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  log "stage 2: decode the test split with beam 5"
  mkdir -p "${GEN_DIR}"
  "${bin_dir}/fairseq-generate" "${DATA}" --user-dir "${plugin_dir}" --task sign_translation \
    --gen-subset test --path "${SAVE_DIR}/checkpoint_last.pt" --beam 5 --max-tokens 2000 \
    --scoring sacrebleu --results-path "${GEN_DIR}"
  out=${GEN_DIR}/generate-test.txt
  grep -P '^D-\d+\t' "${out}" | sort -t- -k2 -n | cut -f3 > "${GEN_DIR}/hyp.txt"
  grep -P '^T-\d+\t' "${out}" | sort -t- -k2 -n | cut -f2 > "${GEN_DIR}/ref.txt"
  log "test BLEU (sacrebleu, $(wc -l < "${GEN_DIR}/hyp.txt") sentences):"
  "${bin_dir}/sacrebleu" "${GEN_DIR}/ref.txt" -i "${GEN_DIR}/hyp.txt" -m bleu -w 2
fi
log "done in $(( $(date +%s) - start )) s"
