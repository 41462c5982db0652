#!/usr/bin/env bash
# Stage 2 on the synthetic demo four ways: live frames (the paper: fresh augmentation and random
# temporal sampling every epoch), one evaluation view per video in the cache (no augmentation),
# and K=4 / K=8 cached training views (view (epoch-1) mod K in each epoch). Same stage-1
# checkpoint, mBART, seed and updates for all four; prints a table of cache time, training time
# and test BLEU-4 / ROUGE-L (also written to ${WORK_DIR}/cache_views.md).
#
#   bash examples/synthetic/run.sh                  # once: the demo's work dir (steps 0-4)
#   bash examples/synthetic/cache_views.sh          # then this: stage 2 only, 4 runs
#
# Variables: WORK_DIR (the demo's, default runs/synthetic), SEED, MAX_UPDATE2 (default 1000, the
# demo's), VIEWS (default "live 0 4 8": 0 is one evaluation view), CACHE_ARGS (extra
# fairseq-slt-cache-features arguments, word-split, e.g. "--device cuda --num-workers 4").
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
source "${here}/../lib.sh"

WORK_DIR=${WORK_DIR:-runs/synthetic}
SEED=${SEED:-1}
MAX_UPDATE2=${MAX_UPDATE2:-1000}
VIEWS=${VIEWS:-live 0 4 8}
read -r -a cache_args <<< "${CACHE_ARGS:-}"
require_int MAX_UPDATE2 "${MAX_UPDATE2}" 1

recipe=cache_views
plugin_dir=$(slt_plugin_dir)
bin_dir=$(slt_bin_dir)
DATA=${WORK_DIR}/data
STAGE1=${WORK_DIR}/checkpoints/checkpoint_last.pt
MBART_DIR=${WORK_DIR}/mbart.trimmed
OUT=${WORK_DIR}/cache_views
for need in "${STAGE1}" "${MBART_DIR}/dict.txt" "${DATA}/config_stage2.yaml"; do
  [ -e "${need}" ] || die "${need} is missing: run bash examples/synthetic/run.sh (stop_step=4) with WORK_DIR=${WORK_DIR} first"
done
mkdir -p "${OUT}"

rows=()
for views in ${VIEWS}; do
  case "${views}" in
    live) name="live frames"; config=config_views_live.yaml ;;
    0) name="cache, 1 evaluation view"; config=config_views_0.yaml ;;
    *) require_int VIEWS "${views}" 1; name="cache, K=${views} training views"; config=config_views_${views}.yaml ;;
  esac
  cache_s=0
  if [ "${views}" = live ]; then
    "${bin_dir}/fairseq-slt-data-config" "${DATA}" --src config_stage2.yaml --out "${config}" --no-feature-cache
  else
    log "${name}: fairseq-slt-cache-features --train-views ${views}"
    t0=$(date +%s)
    "${bin_dir}/fairseq-slt-cache-features" "${DATA}" --config-yaml config_stage2.yaml \
      --stage1-checkpoint "${STAGE1}" --out "features_views_${views}" --train-views "${views}" \
      --seed "${SEED}" --no-progress-bar ${cache_args[@]+"${cache_args[@]}"}
    cache_s=$(( $(date +%s) - t0 ))
    "${bin_dir}/fairseq-slt-data-config" "${DATA}" --src config_stage2.yaml --out "${config}" \
      --feature-cache "features_views_${views}"
  fi
  task=(--user-dir "${plugin_dir}" --task sign_translation --config-yaml "${config}" --langs en_XX --tgt-lang en_XX)
  save=${OUT}/checkpoints_${views}
  log "${name}: train slt_mbart for ${MAX_UPDATE2} updates -> ${save}"
  t0=$(date +%s)
  "${bin_dir}/fairseq-train" "${DATA}" "${task[@]}" --arch slt_mbart \
    --stage1-checkpoint "${STAGE1}" --mbart-dir "${MBART_DIR}" \
    --valid-subset dev --criterion label_smoothed_cross_entropy --label-smoothing 0.2 \
    --optimizer adam_grouped --lr 1e-3 --group-lr-scales llm:0.1 --lr-scheduler cosine \
    --warmup-updates 50 --batch-size 16 --max-update "${MAX_UPDATE2}" --seed "${SEED}" \
    --save-dir "${save}" --no-epoch-checkpoints --num-workers 1 --log-interval 20 --no-progress-bar \
    > "${OUT}/train_${views}.log" 2>&1 || die "training (${name}) failed: see ${OUT}/train_${views}.log"
  train_s=$(( $(date +%s) - t0 ))
  decode "${DATA}" test "${save}/checkpoint_last.pt" "${OUT}/generate_${views}" "${task[@]}" --batch-size 16 \
    > "${OUT}/generate_${views}.log" 2>&1 || die "decoding (${name}) failed: see ${OUT}/generate_${views}.log"
  score=$("${bin_dir}/fairseq-slt-score" "${OUT}/generate_${views}/generate-test.txt" --manifest "${DATA}/test.tsv")
  bleu4=$(grep -oP 'BLEU-4 \K[\d.]+' <<< "${score}")
  rouge=$(grep -oP 'ROUGE-L \K[\d.]+' <<< "${score}")
  rows+=("| ${name} | ${cache_s} | ${train_s} | ${bleu4} | ${rouge} |")
done
{
  echo "| stage 2 input | cache s | train s (${MAX_UPDATE2} updates) | test BLEU-4 | test ROUGE-L |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "${OUT}.md"
