# shellcheck shell=bash disable=SC2154  # stage, stop_stage, bin_dir: the recipe's globals
# Shell library of the recipes under examples/ (ESPnet-style stage skeleton). Source it, do not run
# it: it only defines functions. The sourcing script keeps `set -euo pipefail` and its own
# variables; the functions read these globals of it:
#   recipe            name in log lines (default: the script's file name)
#   stage, stop_stage the stages to run (stage_enabled)
#   bin_dir           folder of the console scripts (fairseq-generate, fairseq-slt-score, ...)
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#   bin_dir=$(slt_bin_dir); plugin_dir=$(slt_plugin_dir)
#   if stage_enabled 1; then log "stage 1: ..."; fi

# log MESSAGE...: print MESSAGE to stdout after a timestamp and the recipe's name.
log() {
  echo "$(date '+%Y-%m-%d %H:%M:%S') [${recipe:-${0##*/}}] $*"
}

# die MESSAGE...: print "error: MESSAGE" to stderr and exit the recipe with status 1.
die() {
  echo "error: $*" >&2
  exit 1
}

# stage_enabled N: true when stage N lies in the range ${stage}..${stop_stage} to run.
stage_enabled() {
  [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]
}

# slt_plugin_dir: absolute path of the fairseq_slt package (fairseq's --user-dir), next to examples/.
slt_plugin_dir() {
  (cd "$(dirname "${BASH_SOURCE[0]}")/../fairseq_slt" && pwd)
}

# slt_bin_dir: folder of the console scripts: ${BIN_DIR} when set, else that of the `python` on
# PATH (the venv's scripts sit next to its python).
slt_bin_dir() {
  if [ -n "${BIN_DIR:-}" ]; then
    echo "${BIN_DIR}"
  else
    dirname "$(command -v python)"
  fi
}

# manifest_size TSV: number of rows of a manifest (its lines less the header).
manifest_size() {
  echo $(( $(wc -l < "$1") - 1 ))
}

# ceil_div A B: A / B rounded up, for non-negative integers A and positive B.
ceil_div() {
  echo $(( ($1 + $2 - 1) / $2 ))
}

# updates_for TSV EPOCHS BATCH: optimizer updates in EPOCHS epochs over the rows of the manifest
# TSV at BATCH rows per update (the total over all GPUs; the last batch of an epoch may be
# short): EPOCHS x ceil(rows / BATCH). The cosine schedule needs it as --max-update.
updates_for() {
  echo $(( $(ceil_div "$(manifest_size "$1")" "$3") * $2 ))
}

# epochs_for N UPDATES BATCH: epochs over N examples that UPDATES updates of BATCH examples make,
# rounded up: ceil(UPDATES x BATCH / N).
epochs_for() {
  ceil_div $(( $2 * $3 )) "$1"
}

# decode DATA SPLIT CHECKPOINT RESULTS_DIR [fairseq-generate arguments...]: translate SPLIT of the
# data root DATA with CHECKPOINT (beam 5, sacrebleu) into RESULTS_DIR/generate-SPLIT.txt. The
# arguments carry the task (--user-dir, --task, --config-yaml, ...) and the batching.
decode() {
  local data=$1 split=$2 checkpoint=$3 results=$4
  shift 4
  "${bin_dir}/fairseq-generate" "${data}" "$@" --gen-subset "${split}" \
    --path "${checkpoint}" --beam 5 --scoring sacrebleu --results-path "${results}"
}

# score_split RESULTS_DIR SPLIT LABEL [fairseq-slt-score arguments...]: log "LABEL on SPLIT:", then
# print BLEU-1..4 and ROUGE-L of RESULTS_DIR/generate-SPLIT.txt.
score_split() {
  local results=$1 split=$2 label=$3
  shift 3
  log "${label} on ${split}:"
  "${bin_dir}/fairseq-slt-score" "${results}/generate-${split}.txt" "$@"
}

# evaluate DATA CHECKPOINT RESULTS_DIR LABEL "SPLITS" [fairseq-generate arguments...]: decode and
# score_split each of the (space-separated) SPLITS in turn; ${SCORE_ARGS} (word-split) goes to
# fairseq-slt-score.
evaluate() {
  local data=$1 checkpoint=$2 results=$3 label=$4 splits=$5 split
  shift 5
  for split in ${splits}; do
    decode "${data}" "${split}" "${checkpoint}" "${results}" "$@"
    # shellcheck disable=SC2086  # SCORE_ARGS is a word-split string of options
    score_split "${results}" "${split}" "${label}" ${SCORE_ARGS:-}
  done
}
