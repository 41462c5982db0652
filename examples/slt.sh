#!/usr/bin/env bash
# Shared FLa-LLM recipe, sourced by examples/<dataset>/run.sh after it sets the dataset's variables
# (DATASET, PREP_CMD as an array, TGT_LANG, SCORE_ARGS).
# Stages (run a range with stage=N stop_stage=M):
#   0  prepare the data root from the release (and trim mBART when MBART_DIR is set)
#   1  stage 1: slt_lightt        (paper: SGD momentum 0.9, lr 1e-2, cosine, batch 8, 75 epochs, smoothing 0.2)
#   2  evaluate stage 1 on dev and test (beam 5; BLEU-1..4, ROUGE-L)
#   3  cache the frozen visual encoder's features for stage 2 (optional speed-up; CACHE=1)
#   4  stage 2: slt_mbart         (paper: Adam, lr 1e-3 LLM-adapter / 1e-5 mBART, cosine, batch 16, smoothing 0.2)
#   5  evaluate stage 2 on dev and test
# Every extra argument ("$@") is passed to both fairseq-train calls; STAGE1_ARGS / STAGE2_ARGS
# (word-split strings) to one of them, e.g. STAGE1_ARGS="--resnet-pretrained resnet18-f37072fd.pth".
# The stage skeleton (log, die, stage_enabled, evaluate, updates_for) is examples/lib.sh's.
set -euo pipefail
examples_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "${examples_dir}/lib.sh"

: "${DATASET:?set by examples/<dataset>/run.sh}"
: "${PREP_CMD:?set by examples/<dataset>/run.sh}"
: "${TGT_LANG:?set by examples/<dataset>/run.sh (mBART language code)}"
: "${OUT_DIR:?set OUT_DIR to the folder for the data root, checkpoints and outputs}"
SCORE_ARGS=${SCORE_ARGS:-}
stage=${stage:-0}
stop_stage=${stop_stage:-5}
MBART_DIR=${MBART_DIR:-}          # mbart.cc25 (model.pt, dict.txt, sentence.bpe.model); needed from stage 4
CACHE=${CACHE:-1}
NGPUS=${NGPUS:-1}                 # fairseq-train uses every visible GPU; --batch-size is per GPU
STAGE1_EPOCHS=${STAGE1_EPOCHS:-75}
STAGE1_BATCH=${STAGE1_BATCH:-8}
STAGE2_EPOCHS=${STAGE2_EPOCHS:-40} # not stated in the paper
STAGE2_BATCH=${STAGE2_BATCH:-16}
NUM_WORKERS=${NUM_WORKERS:-4}
STAGE1_ARGS=${STAGE1_ARGS:-}
STAGE2_ARGS=${STAGE2_ARGS:-}
LANGS=${LANGS:-cc25}              # --langs: mBART-cc25's 25 languages, or a comma-separated list

recipe=${DATASET}
plugin_dir=$(slt_plugin_dir)
bin_dir=$(slt_bin_dir)
DATA=${OUT_DIR}/data
STAGE1_DIR=${OUT_DIR}/stage1
STAGE2_DIR=${OUT_DIR}/stage2

# the paper's Light-T uses the trimmed mBART tokenizer and vocabulary: with MBART_DIR both
# stages read config_stage2.yaml; without it stage 1 uses the prep's own sentencepiece model
if [ -n "${MBART_DIR}" ]; then STAGE1_CONFIG=config_stage2.yaml; else STAGE1_CONFIG=config.yaml; fi
stage1_task=(--user-dir "${plugin_dir}" --task sign_translation --config-yaml "${STAGE1_CONFIG}")
stage2_task=(--user-dir "${plugin_dir}" --task sign_translation --config-yaml config_stage2_run.yaml
             --langs "${LANGS}" --tgt-lang "${TGT_LANG}")
if [ -n "${MBART_DIR}" ]; then stage1_task+=(--langs "${LANGS}" --tgt-lang "${TGT_LANG}"); fi

stage_updates() {  # epochs, batch per GPU -> updates over the training manifest (cosine needs --max-update)
  updates_for "${DATA}/train.tsv" "$1" $(( $2 * NGPUS ))
}

evaluate_stage() {  # checkpoint dir, task args...: the best checkpoint on dev and test
  local dir=$1; shift
  evaluate "${DATA}" "${dir}/checkpoint_best.pt" "${dir}/generate" "${dir##*/}" "dev test" \
    "$@" --batch-size 16 --num-workers "${NUM_WORKERS}"
}

if stage_enabled 0; then
  log "stage 0: prepare ${DATA}"
  "${PREP_CMD[@]}" --out "${DATA}" ${MBART_DIR:+--mbart-dir "${MBART_DIR}"}
fi

if stage_enabled 1; then
  log "stage 1: slt_lightt -> ${STAGE1_DIR}"
  "${bin_dir}/fairseq-train" "${DATA}" "${stage1_task[@]}" --arch slt_lightt \
    --valid-subset dev --criterion label_smoothed_cross_entropy --label-smoothing 0.2 \
    --optimizer sgd --momentum 0.9 --lr 1e-2 --lr-scheduler cosine \
    --max-update "$(stage_updates "${STAGE1_EPOCHS}" "${STAGE1_BATCH}")" --batch-size "${STAGE1_BATCH}" \
    --num-workers "${NUM_WORKERS}" --save-dir "${STAGE1_DIR}" --keep-last-epochs 2 \
    --log-format json ${STAGE1_ARGS} "$@"
fi

if stage_enabled 2; then
  log "stage 2: evaluate stage 1"
  evaluate_stage "${STAGE1_DIR}" "${stage1_task[@]}"
fi

if stage_enabled 3; then
  [ -f "${DATA}/config_stage2.yaml" ] || die "no ${DATA}/config_stage2.yaml: set MBART_DIR and re-run stage 0"
  # stage 2 trains and decodes with config_stage2_run.yaml: config_stage2.yaml (+ the feature cache)
  cache_args=()
  if [ "${CACHE}" = 1 ]; then
    log "stage 3: cache the frozen visual encoder's features"
    "${bin_dir}/fairseq-slt-cache-features" "${DATA}" --config-yaml config_stage2.yaml \
      --stage1-checkpoint "${STAGE1_DIR}/checkpoint_best.pt" --out features_stage2
    cache_args=(--feature-cache features_stage2)
  fi
  "${bin_dir}/fairseq-slt-data-config" "${DATA}" --src config_stage2.yaml --out config_stage2_run.yaml \
    ${cache_args[@]+"${cache_args[@]}"}
fi

if stage_enabled 4; then
  [ -n "${MBART_DIR}" ] || die "set MBART_DIR to the mbart.cc25 folder (model.pt, dict.txt, sentence.bpe.model)"
  log "stage 4: slt_mbart -> ${STAGE2_DIR}"
  "${bin_dir}/fairseq-train" "${DATA}" "${stage2_task[@]}" --arch slt_mbart \
    --stage1-checkpoint "${STAGE1_DIR}/checkpoint_best.pt" --mbart-dir "${DATA}/mbart.trimmed" \
    --valid-subset dev --criterion label_smoothed_cross_entropy --label-smoothing 0.2 \
    --optimizer adam_grouped --lr 1e-3 --group-lr-scales llm:0.01 --lr-scheduler cosine \
    --max-update "$(stage_updates "${STAGE2_EPOCHS}" "${STAGE2_BATCH}")" --batch-size "${STAGE2_BATCH}" \
    --num-workers "${NUM_WORKERS}" --save-dir "${STAGE2_DIR}" --keep-last-epochs 2 \
    --log-format json ${STAGE2_ARGS} "$@"
fi

if stage_enabled 5; then
  log "stage 5: evaluate stage 2"
  evaluate_stage "${STAGE2_DIR}" "${stage2_task[@]}"
fi
