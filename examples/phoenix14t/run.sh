#!/usr/bin/env bash
# FLa-LLM on PHOENIX-2014-T: prep -> stage 1 -> stage 2 -> evaluation (see README.md here).
#   PHOENIX14T_ROOT=.../PHOENIX-2014-T-release-v3/PHOENIX-2014-T OUT_DIR=runs/phoenix14t \
#   MBART_DIR=.../mbart.cc25 bash examples/phoenix14t/run.sh [extra fairseq-train arguments]
#   (DRY_RUN=1 prints the commands of the steps instead of running them; variables: ../README.md)
set -euo pipefail
: "${PHOENIX14T_ROOT:?set PHOENIX14T_ROOT to the PHOENIX-2014-T folder of the release (annotations/, features/)}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATASET=phoenix14t
PREP_CMD=(python "${here}/prep_phoenix14t.py" --root "${PHOENIX14T_ROOT}")
TGT_LANG=de_DE
SCORE_ARGS=""  # targets are lowercased, tokenized German: sacrebleu's 13a tokenisation
source "${here}/../slt.sh"
