#!/usr/bin/env bash
# Shared FLa-LLM recipe, sourced by examples/<dataset>/run.sh after it sets the dataset's variables
# (DATASET, PREP_CMD as an array, TGT_LANG, SCORE_ARGS, TGT_LEN_UNIT).
# Steps (run a range with step=N stop_step=M; the paper's stages are stage 1 and stage 2):
#   0  prepare the data root from the release (and trim mBART when MBART_DIR is set; with FRAME_STORE=1
#      also the frame store: every frame decoded once at the resize, read by both stages)
#   1  stage 1: slt_lightt        (paper: SGD momentum 0.9, lr 1e-2, cosine, batch 8, 75 epochs, smoothing 0.2, ImageNet ResNet-18)
#   2  evaluate stage 1 on dev and test (beam 5; BLEU-1..4, ROUGE-L)
#   3  cache the frozen visual encoder's features for stage 2 (optional speed-up; CACHE=1)
#   4  stage 2: slt_mbart         (paper: Adam, lr 1e-3 LLM-adapter / 1e-5 mBART, cosine, batch 16, smoothing 0.2),
#      or with LLM_DIR slt_hf over that Hugging Face model folder (LLM_MODE full: the same learning rates)
#   5  evaluate stage 2 on dev and test
# STAGE1_BATCH / STAGE2_BATCH are GLOBAL batches: split into --batch-size per GPU x NGPUS x
# --update-freq (lib.sh's split_batch). Training stops after the stage's epochs (--max-epoch) and
# the cosine's period is the exact number of updates of those epochs (lib.sh's updates_for, with
# --required-batch-size-multiple 1). Decoding caps hypotheses at 2 x the longest training target
# + 10 tokens (lib.sh's gen_max_len).
# Every extra argument ("$@") is passed to both fairseq-train calls; STAGE1_ARGS / STAGE2_ARGS
# (word-split strings) to one of them. The batch, epochs and GPU count are the recipe's variables:
# --batch-size, --update-freq, --max-epoch, ... among those arguments are refused.
# DRY_RUN=1 prints every command of the steps to run (one a line, shell-quoted) and runs nothing.
# The step skeleton (log, die, init_steps, step_enabled, evaluate, updates_for, ...) is examples/lib.sh's.
set -euo pipefail
examples_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "${examples_dir}/lib.sh"

: "${DATASET:?set by examples/<dataset>/run.sh}"
: "${PREP_CMD:?set by examples/<dataset>/run.sh}"
: "${TGT_LANG:?set by examples/<dataset>/run.sh (mBART language code)}"
: "${OUT_DIR:?set OUT_DIR to the folder for the data root, checkpoints and outputs}"
# the paper's settings (fairseq_slt/paper.py) as PAPER_* variables, the defaults below
paper_settings=$("$(slt_bin_dir)/fairseq-slt-audit" --paper-settings) \
  || die "cannot read the paper's settings with $(slt_bin_dir)/fairseq-slt-audit --paper-settings: install fairseq-slt there, or set BIN_DIR"
eval "${paper_settings}"
SCORE_ARGS=${SCORE_ARGS:-}
TGT_LEN_UNIT=${TGT_LEN_UNIT:-word} # target length for the decoding cap: in words, or char (unsegmented Chinese)
MBART_DIR=${MBART_DIR:-}          # mbart.cc25 (model.pt, dict.txt, sentence.bpe.model); needed from step 4
LLM_DIR=${LLM_DIR:-}              # a Hugging Face model folder: stage 2 is slt_hf over it (not slt_mbart)
LLM_MODE=${LLM_MODE:-full}        # with LLM_DIR: full (the paper's fine-tuning), lora or frozen
LLM_PROMPT=${LLM_PROMPT:-}        # with LLM_DIR: --llm-prompt (one argument, spaces kept)
CACHE=${CACHE:-1}
FRAME_STORE=${FRAME_STORE:-0}     # 1: step 0 writes a frame store (fairseq-slt-frame-store) that both stages read
                                  # instead of decoding the videos (How2Sign's run.sh turns it on)
CACHE_VIEWS=${CACHE_VIEWS:-4}     # augmented views per training video in the cache (the paper trains stage 2
                                  # with augmentation and random temporal sampling; 0: one evaluation view)
NGPUS=${NGPUS:-1}                 # GPUs of the run, all nodes together (fairseq's --distributed-world-size)
STAGE1_EPOCHS=${STAGE1_EPOCHS:-${PAPER_STAGE1_EPOCHS}}
STAGE1_BATCH=${STAGE1_BATCH:-${PAPER_STAGE1_BATCH}}   # global batch: per GPU x NGPUS x update-freq
STAGE2_EPOCHS=${STAGE2_EPOCHS:-40} # not stated in the paper
STAGE2_BATCH=${STAGE2_BATCH:-${PAPER_STAGE2_BATCH}}  # global batch
MAX_GPU_BATCH=${MAX_GPU_BATCH:-}  # most videos one GPU holds: the rest of the global batch goes to --update-freq
NUM_WORKERS=${NUM_WORKERS:-}      # default below: nproc / NGPUS, between 1 and 8
RESNET=${RESNET:-imagenet}        # stage 1's ResNet-18: imagenet, none (random weights) or a state dict file
STAGE1_ARGS=${STAGE1_ARGS:-}
PREP_ARGS=${PREP_ARGS:-}          # extra prep options (word-split), e.g. the video settings of config.yaml:
                                  # "--resize 256,256 --crop 224" (the paper's, the default) or "--resize 256"
STAGE2_ARGS=${STAGE2_ARGS:-}
LANGS=${LANGS:-cc25}              # --langs: mBART-cc25's 25 languages, or a comma-separated list
DRY_RUN=${DRY_RUN:-0}

recipe=${DATASET}
case "${DRY_RUN}" in 0 | 1) ;; *) die "DRY_RUN='${DRY_RUN}': use 1 to print the commands without running them, or 0" ;; esac
case "${LLM_MODE}" in full | lora | frozen) ;; *) die "LLM_MODE='${LLM_MODE}': use full, lora or frozen" ;; esac
case "${FRAME_STORE}" in 0 | 1) ;; *) die "FRAME_STORE='${FRAME_STORE}': use 1 to read the videos from a frame store written at step 0, or 0" ;; esac
case "${CACHE}" in 0 | 1) ;; *) die "CACHE='${CACHE}': use 1 to train stage 2 on cached features, or 0 for live frames" ;; esac
case "${TGT_LEN_UNIT}" in word | char) ;; *) die "TGT_LEN_UNIT='${TGT_LEN_UNIT}': use word, or char for unsegmented text" ;; esac
init_steps 0 5
require_int NGPUS "${NGPUS}" 1
require_int CACHE_VIEWS "${CACHE_VIEWS}" 0
require_int STAGE1_EPOCHS "${STAGE1_EPOCHS}" 1
require_int STAGE2_EPOCHS "${STAGE2_EPOCHS}" 1
[ -z "${MAX_GPU_BATCH}" ] || require_int MAX_GPU_BATCH "${MAX_GPU_BATCH}" 1
NUM_WORKERS=${NUM_WORKERS:-$(default_num_workers "${NGPUS}")}
require_int NUM_WORKERS "${NUM_WORKERS}" 0
read -r -a stage1_extra <<< "${STAGE1_ARGS}"
read -r -a stage2_extra <<< "${STAGE2_ARGS}"

plugin_dir=$(slt_plugin_dir)
bin_dir=$(slt_bin_dir)
DATA=${OUT_DIR}/data
STAGE1_DIR=${OUT_DIR}/stage1
STAGE2_DIR=${OUT_DIR}/stage2

# the paper's Light-T uses the trimmed mBART tokenizer and vocabulary: with MBART_DIR both
# stages read config_stage2.yaml; without it stage 1 uses the prep's own sentencepiece model
if [ -n "${MBART_DIR}" ]; then STAGE1_CONFIG=config_stage2.yaml; else STAGE1_CONFIG=config.yaml; fi
stage1_task=(--user-dir "${plugin_dir}" --task sign_translation --config-yaml "${STAGE1_CONFIG}")
stage2_task=(--user-dir "${plugin_dir}" --task sign_translation --config-yaml config_stage2_run.yaml)
if [ -n "${LLM_DIR}" ]; then
  # slt_hf: targets are the LLM tokenizer's ids, config_stage2_run.yaml derives from config.yaml
  STAGE2_SRC=config.yaml
  stage2_model=(--arch slt_hf --llm-dir "${LLM_DIR}" --llm-mode "${LLM_MODE}"
                ${LLM_PROMPT:+--llm-prompt "${LLM_PROMPT}"})
  if [ "${LLM_MODE}" = full ]; then stage2_scales=(--group-lr-scales "llm:${PAPER_STAGE2_LLM_LR_SCALE}"); else stage2_scales=(); fi
else
  STAGE2_SRC=config_stage2.yaml
  stage2_task+=(--langs "${LANGS}" --tgt-lang "${TGT_LANG}")
  stage2_model=(--arch slt_mbart --mbart-dir "${DATA}/mbart.trimmed")
  stage2_scales=(--group-lr-scales "llm:${PAPER_STAGE2_LLM_LR_SCALE}")
fi
if [ -n "${MBART_DIR}" ]; then stage1_task+=(--langs "${LANGS}" --tgt-lang "${TGT_LANG}"); fi

# refuse_schedule_args N ARGS...: the batch, epochs and GPU count of training stage N (1 or 2)
# come from the recipe's variables; the same options among the passed-through arguments would
# silently undo them (fairseq takes the last occurrence)
refuse_schedule_args() {
  local n=$1 opt
  shift
  if opt=$(first_option "--batch-size|--max-sentences|--update-freq|--required-batch-size-multiple|--max-tokens|--skip-remainder-batch" "$@"); then
    die "${opt} among the arguments of training stage ${n} (STAGE${n}_ARGS or run.sh's): the recipe derives the batching from STAGE${n}_BATCH (the global batch), NGPUS and MAX_GPU_BATCH; set those instead"
  fi
  if opt=$(first_option "--max-epoch|--distributed-world-size" "$@"); then
    die "${opt} among the arguments of training stage ${n} (STAGE${n}_ARGS or run.sh's): set STAGE${n}_EPOCHS (--max-epoch) or NGPUS (--distributed-world-size) instead"
  fi
}

# needs STEP FILE MAKER HINT: die early unless ${DATA}/FILE exists or step MAKER, which writes
# it, runs too
needs() {
  [ -f "${DATA}/$2" ] || step_enabled "$3" \
    || die "step $1 needs ${DATA}/$2, which step $3 writes: $4"
}

# checks before any work: a run does not fail hours in, at a later step
check_tgt_lang "${TGT_LANG}" "${LANGS}"
if step_enabled 1; then
  stage1_split=$(split_batch "${STAGE1_BATCH}" "${NGPUS}" "${MAX_GPU_BATCH}" STAGE1_BATCH)
  read -r stage1_gpu_batch stage1_update_freq <<< "${stage1_split}"
  refuse_schedule_args 1 ${stage1_extra[@]+"${stage1_extra[@]}"} "$@"
  case "${RESNET}" in
    imagenet | none) ;;
    *) [ -f "${RESNET}" ] || die "RESNET=${RESNET}: no such file; use imagenet, none (random weights) or the path of a torchvision resnet18 state dict (e.g. resnet18-f37072fd.pth)" ;;
  esac
  needs 1 train.tsv 0 "run step 0 (step=0)"
fi
if step_enabled 1 || step_enabled 2; then
  needs "1/2" "${STAGE1_CONFIG}" 0 "run step 0 (step=0)${MBART_DIR:+ with MBART_DIR set}"
fi
if [ -n "${LLM_DIR}" ] && { step_enabled 3 || step_enabled 4; }; then
  [ -f "${LLM_DIR}/config.json" ] || [ "${DRY_RUN}" = 1 ] \
    || die "LLM_DIR=${LLM_DIR} is not a Hugging Face model folder (no config.json)"
fi
if step_enabled 3 && [ -z "${LLM_DIR}" ] && [ ! -f "${DATA}/config_stage2.yaml" ] && ! { step_enabled 0 && [ -n "${MBART_DIR}" ]; }; then
  die "no ${DATA}/config_stage2.yaml for step 3: set MBART_DIR (or LLM_DIR) and re-run step 0, or stop_step=2 to run stage 1 alone"
fi
if step_enabled 4; then
  [ -n "${MBART_DIR}" ] || [ -n "${LLM_DIR}" ] || die "set MBART_DIR to the mbart.cc25 folder (model.pt, dict.txt, sentence.bpe.model), or LLM_DIR to a Hugging Face model folder, for stage 2 (steps 3-5), or stop_step=2 to run stage 1 alone"
  stage2_split=$(split_batch "${STAGE2_BATCH}" "${NGPUS}" "${MAX_GPU_BATCH}" STAGE2_BATCH)
  read -r stage2_gpu_batch stage2_update_freq <<< "${stage2_split}"
  refuse_schedule_args 2 ${stage2_extra[@]+"${stage2_extra[@]}"} "$@"
  needs 4 train.tsv 0 "run step 0 (step=0)"
fi
if step_enabled 4 || step_enabled 5; then
  needs "4/5" config_stage2_run.yaml 3 "run step 3 (step=3)"
fi

# train_schedule NAME EPOCHS PER_GPU UPDATE_FREQ: log the effective global batch and the schedule
# of a training stage, and set `lr_period` to its updates (the cosine's period)
train_schedule() {
  local name=$1 epochs=$2 per=$3 freq=$4 per_epoch
  log "${name}: global batch $(( per * NGPUS * freq )) = ${per} per GPU x ${NGPUS} GPU(s) x update-freq ${freq}"
  if [ -f "${DATA}/train.tsv" ]; then
    per_epoch=$(updates_per_epoch "$(manifest_size "${DATA}/train.tsv")" "${per}" "${NGPUS}" "${freq}")
    lr_period=$(( per_epoch * epochs ))
    log "${name}: ${per_epoch} updates per epoch x ${epochs} epochs = ${lr_period} updates (the cosine's period; --max-epoch ${epochs})"
  elif [ "${DRY_RUN}" = 0 ]; then
    die "no ${DATA}/train.tsv to size the schedule from: run step 0 (step=0)"
  else  # a dry run before step 0 has written the manifest
    lr_period="<${epochs} x the updates per epoch of ${DATA}/train.tsv>"
  fi
}

evaluate_stage() {  # checkpoint dir, task args...: the best checkpoint on dev and test
  local dir=$1 max_len
  shift
  if [ -f "${DATA}/train.tsv" ]; then
    max_len=$(gen_max_len "${DATA}/train.tsv" "${TGT_LEN_UNIT}")
    log "decoding at most ${max_len} tokens per sentence (2 x the longest training target, $(( (max_len - 10) / 2 )) ${TGT_LEN_UNIT}s, + 10)"
  elif [ "${DRY_RUN}" = 0 ]; then
    die "no ${DATA}/train.tsv to size the decoding cap from: run step 0 (step=0)"
  else  # a dry run before step 0 has written the manifest
    max_len="<2 x the longest tgt_text of ${DATA}/train.tsv in ${TGT_LEN_UNIT}s + 10>"
  fi
  evaluate "${DATA}" "${dir}/checkpoint_best.pt" "${dir}/generate" "${dir##*/}" "dev test" \
    "$@" --batch-size 16 --num-workers "${NUM_WORKERS}" --max-len-a 0 --max-len-b "${max_len}"
}

if [ "${DRY_RUN}" = 1 ]; then log "DRY_RUN=1: printing the commands of steps ${step}..${stop_step}, running nothing"; fi
if step_enabled 1 || step_enabled 2; then
  if [ -n "${MBART_DIR}" ]; then
    log "stage 1 vocabulary: the trimmed mBART's (MBART_DIR is set: ${STAGE1_CONFIG}), as the paper's Light-T"
  else
    log "stage 1 vocabulary: the prep's own sentencepiece model (${STAGE1_CONFIG}; set MBART_DIR for the trimmed mBART's, as the paper)"
  fi
fi

if step_enabled 0; then
  log "step 0: prepare ${DATA}"
  # shellcheck disable=SC2086  # PREP_ARGS is a word-split string of options
  run_cmd "${PREP_CMD[@]}" --out "${DATA}" ${MBART_DIR:+--mbart-dir "${MBART_DIR}"} ${PREP_ARGS}
  if [ "${FRAME_STORE}" = 1 ]; then
    # the store serves every data config of the root: each one is pointed at it (the second call
    # finds every sentence stored and writes nothing)
    log "step 0: frame store -> ${DATA}/frames (FRAME_STORE=1)"
    for config in config.yaml ${MBART_DIR:+config_stage2.yaml}; do
      run_cmd "${bin_dir}/fairseq-slt-frame-store" "${DATA}" --config-yaml "${config}" --out frames \
        --workers "${NUM_WORKERS}"
    done
  fi
fi

if step_enabled 1; then
  stage1_arch=$(arg_value "--arch|-a" slt_lightt ${stage1_extra[@]+"${stage1_extra[@]}"} "$@")
  # "none" is passed too, so that the model logs an explicit choice and the audit shows it
  resnet_args=(--resnet-pretrained "${RESNET}")
  if [ "${RESNET}" = none ]; then
    log "step 1: RESNET=none: ResNet-18 starts from random weights (the paper starts from ImageNet's)"
  else
    log "step 1: ResNet-18 from ${RESNET} (--resnet-pretrained)"
  fi
  log "step 1: stage 1, ${stage1_arch} -> ${STAGE1_DIR}"
  train_schedule "stage 1" "${STAGE1_EPOCHS}" "${stage1_gpu_batch}" "${stage1_update_freq}"
  run_cmd "${bin_dir}/fairseq-train" "${DATA}" "${stage1_task[@]}" --arch slt_lightt \
    ${resnet_args[@]+"${resnet_args[@]}"} \
    --valid-subset dev --criterion label_smoothed_cross_entropy --label-smoothing "${PAPER_LABEL_SMOOTHING}" \
    --optimizer "${PAPER_STAGE1_OPTIMIZER}" --momentum "${PAPER_STAGE1_MOMENTUM}" --lr "${PAPER_STAGE1_LR}" \
    --lr-scheduler "${PAPER_LR_SCHEDULER}" \
    --max-epoch "${STAGE1_EPOCHS}" --lr-period-updates "${lr_period}" \
    --batch-size "${stage1_gpu_batch}" --update-freq "${stage1_update_freq}" \
    --required-batch-size-multiple 1 --distributed-world-size "${NGPUS}" \
    --num-workers "${NUM_WORKERS}" --save-dir "${STAGE1_DIR}" --keep-last-epochs 2 \
    --log-format json ${stage1_extra[@]+"${stage1_extra[@]}"} "$@"
fi

if step_enabled 2; then
  log "step 2: evaluate stage 1, then print its settings beside the paper's (fairseq-slt-audit)"
  evaluate_stage "${STAGE1_DIR}" "${stage1_task[@]}"
  run_cmd "${bin_dir}/fairseq-slt-audit" "${STAGE1_DIR}/checkpoint_best.pt"
fi

if step_enabled 3; then
  # stage 2 trains and decodes with config_stage2_run.yaml: config_stage2.yaml (+ the feature cache)
  cache_args=()
  if [ "${CACHE}" = 1 ]; then
    log "step 3: cache the frozen visual encoder's features"
    run_cmd "${bin_dir}/fairseq-slt-cache-features" "${DATA}" --config-yaml "${STAGE2_SRC}" \
      --stage1-checkpoint "${STAGE1_DIR}/checkpoint_best.pt" --out features_stage2 \
      --train-views "${CACHE_VIEWS}" --num-workers "${NUM_WORKERS}"
    cache_args=(--feature-cache features_stage2)
  fi
  run_cmd "${bin_dir}/fairseq-slt-data-config" "${DATA}" --src "${STAGE2_SRC}" --out config_stage2_run.yaml \
    ${LLM_DIR:+--llm-dir "${LLM_DIR}"} ${cache_args[@]+"${cache_args[@]}"}
fi

if step_enabled 4; then
  stage2_arch=$(arg_value "--arch|-a" "${stage2_model[1]}" ${stage2_extra[@]+"${stage2_extra[@]}"} "$@")
  log "step 4: stage 2, ${stage2_arch} -> ${STAGE2_DIR}"
  train_schedule "stage 2" "${STAGE2_EPOCHS}" "${stage2_gpu_batch}" "${stage2_update_freq}"
  run_cmd "${bin_dir}/fairseq-train" "${DATA}" "${stage2_task[@]}" "${stage2_model[@]}" \
    --stage1-checkpoint "${STAGE1_DIR}/checkpoint_best.pt" \
    --valid-subset dev --criterion label_smoothed_cross_entropy --label-smoothing "${PAPER_LABEL_SMOOTHING}" \
    --optimizer adam_grouped --lr "${PAPER_STAGE2_LR_ADAPTER}" ${stage2_scales[@]+"${stage2_scales[@]}"} \
    --lr-scheduler "${PAPER_LR_SCHEDULER}" \
    --max-epoch "${STAGE2_EPOCHS}" --lr-period-updates "${lr_period}" \
    --batch-size "${stage2_gpu_batch}" --update-freq "${stage2_update_freq}" \
    --required-batch-size-multiple 1 --distributed-world-size "${NGPUS}" \
    --num-workers "${NUM_WORKERS}" --save-dir "${STAGE2_DIR}" --keep-last-epochs 2 \
    --log-format json ${stage2_extra[@]+"${stage2_extra[@]}"} "$@"
fi

if step_enabled 5; then
  log "step 5: evaluate stage 2, then print its settings beside the paper's (fairseq-slt-audit)"
  evaluate_stage "${STAGE2_DIR}" "${stage2_task[@]}"
  run_cmd "${bin_dir}/fairseq-slt-audit" "${STAGE2_DIR}/checkpoint_best.pt"
fi
