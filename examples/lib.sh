# shellcheck shell=bash disable=SC2154  # step, stop_step, bin_dir: the recipe's globals
# Shell library of the recipes under examples/ (ESPnet-style step skeleton). Source it, do not run
# it: it only defines functions. The sourcing script keeps `set -euo pipefail` and its own
# variables; the functions read these globals of it:
#   recipe            name in log lines (default: the script's file name)
#   step, stop_step   the recipe steps to run (init_steps, step_enabled); a recipe step is not one
#                     of the paper's two training stages (stage 1: Light-T, stage 2: the LLM)
#   bin_dir           folder of the console scripts (fairseq-generate, fairseq-slt-score, ...)
#   DRY_RUN           1: run_cmd (and so decode, score_split, evaluate) prints commands, runs nothing
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#   bin_dir=$(slt_bin_dir); plugin_dir=$(slt_plugin_dir)
#   init_steps 0 5
#   if step_enabled 1; then log "step 1: ..."; fi

# log MESSAGE...: print MESSAGE to stdout after a timestamp and the recipe's name (to stderr with
# DRY_RUN=1, so that stdout holds the commands alone).
log() {
  if [ "${DRY_RUN:-0}" = 1 ]; then
    echo "$(date '+%Y-%m-%d %H:%M:%S') [${recipe:-${0##*/}}] $*" >&2
  else
    echo "$(date '+%Y-%m-%d %H:%M:%S') [${recipe:-${0##*/}}] $*"
  fi
}

# die MESSAGE...: print "error: MESSAGE" to stderr and exit the recipe with status 1.
die() {
  echo "error: $*" >&2
  exit 1
}

# init_steps FIRST LAST: set the range of recipe steps to run, ${step}..${stop_step}, to FIRST..LAST
# unless the caller set them, and die unless both are whole numbers. The former names of these
# variables, stage and stop_stage, are refused (naming the new ones) rather than ignored.
init_steps() {
  local old
  for old in stage stop_stage; do
    [ -z "${!old+set}" ] \
      || die "${old}=${!old} is no longer read: recipe steps are selected with step= / stop_step= (the paper's stages are stage 1 and stage 2)"
  done
  step=${step:-$1}
  stop_step=${stop_step:-$2}
  require_int step "${step}" 0
  require_int stop_step "${stop_step}" 0
}

# step_enabled N: true when recipe step N lies in the range ${step}..${stop_step} to run.
step_enabled() {
  [ "${step}" -le "$1" ] && [ "${stop_step}" -ge "$1" ]
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

# run_cmd COMMAND [ARGS...]: run the command; with DRY_RUN=1 print it instead, on one line, every
# word shell-quoted (printf %q), and run nothing.
run_cmd() {
  if [ "${DRY_RUN:-0}" = 1 ]; then
    local line="" word
    for word in "$@"; do line+="${line:+ }$(printf '%q' "${word}")"; done
    echo "${line}"
  else
    "$@"
  fi
}

# require_int NAME VALUE MIN: die unless VALUE is an integer >= MIN (NAME is the variable, for the
# message).
require_int() {
  case "$2" in
    '' | *[!0-9]* | 0?*) die "$1='$2' is not a whole number (digits only, no sign or leading zero); set $1 to an integer >= $3" ;;
  esac
  [ "$2" -ge "$3" ] || die "$1=$2 is below $3; set $1 to an integer >= $3"
}

# default_num_workers [NGPUS]: data-loader workers per fairseq process: the CPUs this process may
# use (nproc) shared by the NGPUS training processes (default 1), at least 1 and at most 8. GNU
# nproc obeys OMP_NUM_THREADS / OMP_THREAD_LIMIT; they are unset for it, since OMP_NUM_THREADS=1
# (advised for the workers) says nothing about how many workers the machine takes.
default_num_workers() {
  local cpus
  cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
  cpus=$(( cpus / ${1:-1} ))
  [ "${cpus}" -ge 1 ] || cpus=1
  [ "${cpus}" -le 8 ] || cpus=8
  echo "${cpus}"
}

# split_batch GLOBAL NGPUS [MAX_PER_GPU [NAME]]: print "PER_GPU UPDATE_FREQ" with
# PER_GPU x NGPUS x UPDATE_FREQ == GLOBAL: the largest per-GPU batch (at most MAX_PER_GPU when it
# is given and not empty), so UPDATE_FREQ is 1 unless the cap needs gradient accumulation. A
# GLOBAL that NGPUS does not divide is refused, naming the GPU counts and global batches that
# work (NAME, e.g. STAGE1_BATCH, names the variable in the message).
split_batch() {
  local global=$1 ngpus=$2 cap=${3:-} name=${4:-GLOBAL} share per n works=()
  require_int "${name}" "${global}" 1
  require_int NGPUS "${ngpus}" 1
  [ -z "${cap}" ] || require_int MAX_GPU_BATCH "${cap}" 1
  if [ $(( global % ngpus )) -ne 0 ]; then
    for (( n = 1; n <= global; n++ )); do [ $(( global % n )) -ne 0 ] || works+=("${n}"); done
    n=$(( global / ngpus * ngpus ))  # the multiples of NGPUS around GLOBAL
    die "${name}=${global} does not split over NGPUS=${ngpus} GPUs (per-GPU batch x ${ngpus} x update-freq must be ${global}): use NGPUS=$(join_or "${works[@]}"), or a global batch that is a multiple of ${ngpus} ($(join_or ${n/#0/} $(( n + ngpus ))))"
  fi
  share=$(( global / ngpus ))
  per=${share}
  if [ -n "${cap}" ]; then  # the largest divisor of the per-GPU share within the cap
    while [ "${per}" -gt "${cap}" ] || [ $(( share % per )) -ne 0 ]; do per=$(( per - 1 )); done
  fi
  echo "${per} $(( share / per ))"
}

# join_or WORDS...: "a", "a or b", "a, b or c".
join_or() {
  local out=""
  while [ $# -gt 1 ]; do out+="${out:+, }$1"; shift; done
  echo "${out}${out:+ or }$1"
}

# manifest_size TSV: number of rows of a manifest (its lines less the header; a last line without
# its newline counts, as for the manifest reader).
manifest_size() {
  [ -f "$1" ] || die "no manifest $1: run step 0 (the data preparation) first"
  awk 'END { print (NR > 0 ? NR - 1 : 0) }' "$1"
}

# ceil_div A B: A / B rounded up, for non-negative integers A and positive B.
ceil_div() {
  echo $(( ($1 + $2 - 1) / $2 ))
}

# updates_per_epoch ROWS PER_GPU [NGPUS [UPDATE_FREQ]]: optimizer updates that fairseq-train makes
# in one epoch over ROWS examples with --batch-size PER_GPU on NGPUS GPUs (default 1) and
# --update-freq UPDATE_FREQ (default 1), given --required-batch-size-multiple 1:
#   batches    = ceil(ROWS / PER_GPU)          (fairseq's batch_by_size; the last one may be short,
#                                               and SignVideoDataset keeps it)
#   per GPU    = ceil(batches / NGPUS)         (ShardedIterator pads the shards with empty batches)
#   updates    = ceil(per GPU / UPDATE_FREQ)   (GroupedIterator; the last group may be short)
# With the default --required-batch-size-multiple 8, a --batch-size above 8 that is not a multiple
# of 8 gives batches of 8, and another count: the recipes pass 1.
updates_per_epoch() {
  local rows=$1 per=$2 ngpus=${3:-1} freq=${4:-1} batches
  require_int ROWS "${rows}" 0
  require_int PER_GPU "${per}" 1
  require_int NGPUS "${ngpus}" 1
  require_int UPDATE_FREQ "${freq}" 1
  batches=$(ceil_div "${rows}" "${per}")
  ceil_div "$(ceil_div "${batches}" "${ngpus}")" "${freq}"
}

# updates_for TSV EPOCHS BATCH [NGPUS [UPDATE_FREQ]]: optimizer updates in EPOCHS epochs over the
# rows of the manifest TSV at --batch-size BATCH per GPU (updates_per_epoch): EPOCHS x that. On one
# GPU without accumulation, EPOCHS x ceil(rows / BATCH). The cosine schedule's period.
updates_for() {
  local rows per_epoch
  rows=$(manifest_size "$1") || exit 1
  require_int EPOCHS "$2" 0
  per_epoch=$(updates_per_epoch "${rows}" "$3" "${4:-1}" "${5:-1}") || exit 1
  echo $(( per_epoch * $2 ))
}

# epochs_for N UPDATES BATCH: epochs over N examples that UPDATES updates of BATCH examples make,
# rounded up: ceil(UPDATES x BATCH / N).
epochs_for() {
  ceil_div $(( $2 * $3 )) "$1"
}

# max_target_len TSV [word|char]: the longest tgt_text of the manifest TSV, in whitespace-separated
# words (default) or in characters (UTF-8; for unsegmented Chinese). Dies when the manifest has no
# tgt_text column.
max_target_len() {
  local tsv=$1 unit=${2:-word} len
  case "${unit}" in word | char) ;; *) die "max_target_len: unit '${unit}' is neither word nor char" ;; esac
  [ -f "${tsv}" ] || die "no manifest ${tsv}: run step 0 (the data preparation) first"
  # bytes (LC_ALL=C); a character is a byte that is not a UTF-8 continuation byte (\200-\277);
  # a UTF-8 BOM and CRLF line ends are accepted, as by the manifest reader
  len=$(LC_ALL=C awk -F '\t' -v unit="${unit}" '
    { sub(/\r$/, "") }
    NR == 1 { sub(/^\357\273\277/, ""); for (i = 1; i <= NF; i++) if ($i == "tgt_text") col = i
              if (!col) exit 2
              next }
    { s = $col
      if (unit == "char") { gsub(/[\200-\277]/, "", s); n = length(s) } else n = split(s, w, " ")
      if (n > max) max = n }
    END { if (col) print max + 0 }' "${tsv}") \
    || die "${tsv}: its header has no tgt_text column; give the train.tsv written by step 0"
  echo "${len}"
}

# gen_max_len TSV [word|char]: the cap on hypothesis length of the recipes' decoding,
# --max-len-a 0 --max-len-b N with N = 2 x max_target_len + 10, so that a degenerate model does
# not decode 200 tokens per sentence (fairseq-generate's default).
gen_max_len() {
  local len
  len=$(max_target_len "$@")
  echo $(( 2 * len + 10 ))
}

# arg_value NAMES DEFAULT [ARGS...]: the value of the last option among ARGS named by one of the
# '|'-separated NAMES (as "--opt VALUE" or "--opt=VALUE"), or DEFAULT: e.g. the --arch that a
# fairseq-train command line, where the last occurrence wins, actually uses.
arg_value() {
  local names="|$1|" value=$2 arg
  shift 2
  while [ $# -gt 0 ]; do
    arg=$1
    shift
    if [[ "${arg}" == --*=* && "${names}" == *"|${arg%%=*}|"* ]]; then
      value=${arg#*=}
    elif [[ "${names}" == *"|${arg}|"* && $# -gt 0 ]]; then
      value=$1
      shift
    fi
  done
  echo "${value}"
}

# first_option NAMES [ARGS...]: the first option of ARGS among the '|'-separated NAMES (also as
# "--opt=VALUE"); prints nothing and fails when there is none.
first_option() {
  local names="|$1|" arg
  shift
  for arg in "$@"; do
    if [[ "${names}" == *"|${arg%%=*}|"* ]]; then
      echo "${arg%%=*}"
      return 0
    fi
  done
  return 1
}

# check_tgt_lang TGT_LANG LANGS: die unless TGT_LANG is one of LANGS when LANGS is a
# comma-separated list (the named list cc25 is checked by the task itself).
check_tgt_lang() {
  local lang=$1 langs=$2 item items
  [ "${langs// /}" != cc25 ] || return 0
  IFS=, read -r -a items <<< "${langs}"
  for item in ${items[@]+"${items[@]}"}; do
    [ "${item// /}" != "${lang}" ] || return 0
  done
  die "TGT_LANG=${lang} is not in LANGS=${langs}: LANGS lists mBART's pre-training languages in their order (cc25 for mBART-large-cc25's 25); add ${lang} or set LANGS=cc25"
}

# decode DATA SPLIT CHECKPOINT RESULTS_DIR [fairseq-generate arguments...]: translate SPLIT of the
# data root DATA with CHECKPOINT (beam 5, sacrebleu) into RESULTS_DIR/generate-SPLIT.txt. The
# arguments carry the task (--user-dir, --task, --config-yaml, ...) and the batching.
decode() {
  local data=$1 split=$2 checkpoint=$3 results=$4
  shift 4
  run_cmd "${bin_dir}/fairseq-generate" "${data}" "$@" --gen-subset "${split}" \
    --path "${checkpoint}" --beam 5 --scoring sacrebleu --results-path "${results}"
}

# score_split RESULTS_DIR SPLIT LABEL [fairseq-slt-score arguments...]: log "LABEL on SPLIT:", then
# print BLEU-1..4 and ROUGE-L of RESULTS_DIR/generate-SPLIT.txt. With the recipe's ${DATA} set, the
# scorer gets the split's manifest and refuses an output that lacks rows of it (skipped videos).
score_split() {
  local results=$1 split=$2 label=$3
  shift 3
  log "${label} on ${split}:"
  run_cmd "${bin_dir}/fairseq-slt-score" "${results}/generate-${split}.txt" \
    ${DATA:+--manifest "${DATA}/${split}.tsv"} "$@"
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
