#!/usr/bin/env bash
# FLa-LLM on CSL-Daily: prep -> stage 1 -> stage 2 -> evaluation (see README.md here).
#   CSL_DAILY_ROOT=.../CSL-Daily OUT_DIR=runs/csl_daily MBART_DIR=.../mbart.cc25 \
#   bash examples/csl_daily/run.sh [extra fairseq-train arguments]
#   (DRY_RUN=1 prints the commands of the steps instead of running them; variables: ../README.md)
set -euo pipefail
: "${CSL_DAILY_ROOT:?set CSL_DAILY_ROOT to the CSL-Daily folder (sentence_label/, sentence/)}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATASET=csl_daily
PREP_CMD=(python "${here}/prep_csl_daily.py" --root "${CSL_DAILY_ROOT}")
TGT_LANG=zh_CN
SCORE_ARGS="--char-level"  # Chinese is scored character by character
TGT_LEN_UNIT=char          # and its target length (the decoding cap) counted in characters
source "${here}/../slt.sh"
