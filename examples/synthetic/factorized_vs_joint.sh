#!/usr/bin/env bash
# Factorized (stage 1, then frozen stage 2) vs joint end-to-end training on the synthetic corpus,
# with the same budget, and the paper's Figure 2 (gradient / parameter norms of the last
# visual-encoder layer and the last LLM layer) for both. Paper: Table 4 and Figure 2.
#
#   bash examples/synthetic/factorized_vs_joint.sh
#
# Budget: both runs see every training video the same number of times. Factorized = stage 1 for
# MAX_EPOCH epochs + stage 2 for MAX_UPDATE2 updates of 16 videos; joint = the stage-2
# architecture (same small mBART, same visual-encoder shape, random ResNet-18 as in stage 1) with
# the visual encoder trained, for as many epochs as the two stages together, at stage 1's batch
# size and learning rate (1e-3; mBART x0.1 as in stage 2). Each run logs the norms every
# NORM_INTERVAL updates (--log-norms-interval) to a json log under ${WORK_DIR}/logs.
#
# Variables: WORK_DIR (default runs/factorized_vs_joint), SEED, N_TRAIN, MAX_EPOCH, MAX_UPDATE2,
# NORM_INTERVAL, step / stop_step (recipe steps: 1 factorized, 2 joint, 3 decode + score + plots;
# default 1 / 3). The step skeleton (log, init_steps, step_enabled, epochs_for, decode) is examples/lib.sh's.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
source "${here}/../lib.sh"

WORK_DIR=${WORK_DIR:-runs/factorized_vs_joint}
SEED=${SEED:-1}
N_TRAIN=${N_TRAIN:-800}
MAX_EPOCH=${MAX_EPOCH:-5}
MAX_UPDATE2=${MAX_UPDATE2:-500}
NORM_INTERVAL=${NORM_INTERVAL:-20}
init_steps 1 3
export WORK_DIR SEED N_TRAIN MAX_EPOCH MAX_UPDATE2

recipe=factorized_vs_joint
plugin_dir=$(slt_plugin_dir)
bin_dir=$(slt_bin_dir)
DATA=${WORK_DIR}/data
LOGS=${WORK_DIR}/logs
JOINT_DIR=${WORK_DIR}/checkpoints_joint
# stage 2 sees MAX_UPDATE2 x 16 videos: as many epochs of N_TRAIN videos
EPOCHS2=$(epochs_for "${N_TRAIN}" "${MAX_UPDATE2}" 16)
JOINT_EPOCHS=$(( MAX_EPOCH + EPOCHS2 ))
norms=(--log-format json --log-norms-interval "${NORM_INTERVAL}")

mkdir -p "${LOGS}"

if step_enabled 1; then
  log "factorized: the demo's both stages (run.sh), norms logged"
  STAGE2_ARGS="${norms[*]} --log-file ${LOGS}/stage2.log" \
    bash "${here}/run.sh" "${norms[@]}" --log-file "${LOGS}/stage1.log"
fi

joint_task=(--user-dir "${plugin_dir}" --task sign_translation --config-yaml config_joint.yaml
            --langs en_XX --tgt-lang en_XX)
if step_enabled 2; then
  log "joint: slt_mbart with the visual encoder trained, ${JOINT_EPOCHS} epochs -> ${JOINT_DIR}"
  # stage 2's data config without the feature cache: the joint model reads the videos
  "${bin_dir}/fairseq-slt-data-config" "${DATA}" --src config_stage2.yaml --out config_joint.yaml \
    --no-feature-cache
  "${bin_dir}/fairseq-train" "${DATA}" "${joint_task[@]}" --arch slt_mbart --train-visual-encoder \
    --temporal-module K5 --temporal-dim 256 --mbart-dir "${WORK_DIR}/mbart.trimmed" \
    --valid-subset dev --criterion label_smoothed_cross_entropy --label-smoothing 0.2 \
    --optimizer adam_grouped --lr 1e-3 --group-lr-scales llm:0.1 \
    --lr-scheduler inverse_sqrt --warmup-updates 50 --max-tokens 320 --max-epoch "${JOINT_EPOCHS}" \
    --seed "${SEED}" --save-dir "${JOINT_DIR}" --no-epoch-checkpoints --num-workers 1 \
    --log-interval 20 --no-progress-bar "${norms[@]}" --log-file "${LOGS}/joint.log"
fi

if step_enabled 3; then
  log "decode the test split with the joint model, beam 5"
  decode "${DATA}" test "${JOINT_DIR}/checkpoint_last.pt" "${WORK_DIR}/generate_joint" \
    "${joint_task[@]}" --batch-size 16
  # fairseq's "wall" of a run's last training record: seconds of training incl. validation
  last_wall() { grep -oP '"wall": "?\K[\d.]+' "$1" | tail -1; }
  {
    echo "| run | updates | test BLEU-4 | test ROUGE-L | training wall time (s) |"
    echo "|---|---|---|---|---|"
    for run in stage1:generate factorized:generate_stage2 joint:generate_joint; do
      IFS=: read -r name gen <<< "${run}"
      score=$("${bin_dir}/fairseq-slt-score" "${WORK_DIR}/${gen}/generate-test.txt")
      bleu4=$(grep -oP 'BLEU-4 \K[\d.]+' <<< "${score}")
      rouge=$(grep -oP 'ROUGE-L \K[\d.]+' <<< "${score}")
      if [ "${name}" = factorized ]; then
        logs=("${LOGS}/stage1.log" "${LOGS}/stage2.log"); name="factorized (stage 1 + stage 2)"
      elif [ "${name}" = stage1 ]; then
        logs=("${LOGS}/stage1.log"); name="stage 1 alone (Light-T)"
      else
        logs=("${LOGS}/joint.log"); name="joint (visual encoder + mBART)"
      fi
      updates=0; wall=0
      for f in "${logs[@]}"; do
        updates=$(( updates + $(grep -oP '"num_updates": "?\K\d+' "${f}" | tail -1) ))
        wall=$(( wall + $(printf '%.0f' "$(last_wall "${f}")") ))
      done
      echo "| ${name} | ${updates} | ${bleu4} | ${rouge} | ${wall} |"
    done
  } | tee "${WORK_DIR}/results.md"
  log "plots -> ${WORK_DIR}/norms.svg, ${WORK_DIR}/curves.svg"
  "${bin_dir}/fairseq-slt-plot" norms "${LOGS}/joint.log" "${LOGS}/stage1.log" "${LOGS}/stage2.log" \
    --label joint --label "factorized stage 1" --label "factorized stage 2" --out "${WORK_DIR}/norms.svg"
  "${bin_dir}/fairseq-slt-plot" curves "${LOGS}/joint.log" "${LOGS}/stage1.log" "${LOGS}/stage2.log" \
    --label joint --label "factorized stage 1" --label "factorized stage 2" --metric loss \
    --out "${WORK_DIR}/curves.svg"
fi
log "done"
