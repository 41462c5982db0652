#!/usr/bin/env bash
# FLa-LLM on How2Sign: prep -> stage 1 -> stage 2 -> evaluation (see README.md here).
#   HOW2SIGN_ROOT=.../How2Sign OUT_DIR=runs/how2sign MBART_DIR=.../mbart.cc25 \
#   bash examples/how2sign/run.sh [extra fairseq-train arguments]
#   (DRY_RUN=1 prints the commands of the steps instead of running them; variables: ../README.md)
set -euo pipefail
: "${HOW2SIGN_ROOT:?set HOW2SIGN_ROOT to the How2Sign folder (how2sign_realigned_*.csv, video_level/)}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATASET=how2sign
PREP_CMD=(python "${here}/prep_how2sign.py" --root "${HOW2SIGN_ROOT}")
TGT_LANG=en_XX
SCORE_ARGS=""  # cased English, sacrebleu's 13a tokenisation
# 1280x720 H.264 decoding would starve a GPU: step 0 writes the frame store (docs/performance.md)
FRAME_STORE=${FRAME_STORE:-1}
source "${here}/../slt.sh"
