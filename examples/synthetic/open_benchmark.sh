#!/usr/bin/env bash
# The paper's claim on unseen sentences: stage 1 alone vs factorized (stage 1, then the frozen
# visual encoder under an LLM pre-trained on a larger text) vs joint (the same LLM, visual encoder
# trained end to end), and the ablation "LLM pre-trained on the parallel targets only", on
# sentences unseen in training (fairseq-slt-synth --grammar weather, the open grammar's weather
# clauses, split by sentence: no dev or test target occurs in training), over seeds.
# Results: docs/open_benchmark.md.
#
#   bash examples/synthetic/open_benchmark.sh
#
# Steps (step / stop_step, default 0 / 4; the paper's stages are stage 1 and stage 2):
#   0 corpus (GRAMMAR, split by sentence, a monolingual text corpus for the LLM)
#   1 the small mBARTs of LLMS, equal denoising updates: "text" on TEXT_CORPUS sentences of the
#     grammar (none a dev or test target), "parallel" on the training targets only; each trimmed.
#     "random" is the "text" LLM's architecture and dictionary, never pre-trained (the paper's
#     "mBART without pre-training"): nothing to build, its stage 2 starts from random weights
#   2 per seed: stage 1 (slt_lightt_tiny, trained until its dev loss has not improved for PATIENCE1
#     epochs, at most EPOCHS1; checkpoint_best on dev loss), its feature cache, stage 2
#     with each LLM of LLMS (frozen visual encoder), each decoded on test
#   3 per seed: joint (slt_mbart --train-visual-encoder, the "text" LLM, a fresh visual encoder)
#     for the factorized arm's measured training time (fairseq's --stop-time-hours), norms logged
#   4 the table over seeds (mean and standard deviation), the norm and loss plots
#
# Seeds are independent from stage 2 on (each has its own feature cache, features_seed<N>, and data
# configs), so they can run side by side after steps 0-1, one thread each:
#   step=2 stop_step=3 SEEDS=1 OMP_NUM_THREADS=1 bash examples/synthetic/open_benchmark.sh &
#   step=2 stop_step=3 SEEDS=2 OMP_NUM_THREADS=1 bash examples/synthetic/open_benchmark.sh &
# then step=4 stop_step=4 for the table over all of them.
#
# Equal compute: the joint run gets the factorized arm's training time: the trainer's cumulative
# training time (fairseq's own clock, the one --stop-time-hours stops on) of stage 1 and of stage 2
# (text LLM), plus the wall time of the cache build.
# Each run also reports its updates and video passes.
#
# Variables: WORK_DIR (default runs/open_benchmark), SEEDS (default "1 2 3"), GRAMMAR (default
# weather; open: all seven clause types, 264 glosses), CORPUS_SEED,
# N_TRAIN, N_DEV, N_TEST, TEXT_CORPUS, SIZE / RESIZE (rendered / model frame side), SIGNERS,
# SYNTH_ARGS (more fairseq-slt-synth options, e.g. --hard), EPOCHS1 (stage 1's epoch cap, default 30),
# PATIENCE1 (stage 1 stops when its dev loss has not improved for this many epochs, fairseq's
# --patience; default 3; 0: train EPOCHS1 epochs), UPDATES2 (stage 2's updates, default 6000),
# LLMS (the stage-2 LLMs, default "text parallel"; any of text, parallel, random; the joint arm
# uses "text", which stage 1 then builds whatever LLMS says), LLM_LAYERS / LLM_DIM / LLM_HEADS /
# LLM_VOCAB (the small mBARTs' encoder and decoder layers, width, heads, sentencepiece vocabulary;
# default 2 / 128 / 4 / 1000), CACHE_VIEWS (training views of stage 2's feature cache,
# fairseq-slt-cache-features --train-views: 0, the default, one evaluation view per training video,
# so stage 2 trains without augmentation; K > 0: K views drawn under stage 1's training transforms,
# the paper's augmentation, in features_seed<N>_views<K>, built by step 2 when missing, also with
# STAGE2_ONLY), LLM_UPDATES (denoising), LR1, BOW_WEIGHT (default 0: the paper's loss; > 0: stage 1 and the joint
# run add the bag-of-words loss on the sign-wise features, --criterion
# label_smoothed_cross_entropy_with_bow), STAGE1_ARGS, STAGE2_ARGS (more fairseq-train options of
# each stage 2, after the script's: a later flag wins), STAGE2_TAG (a suffix of the stage-2 run
# folders, stage2_<llm><tag>: a variant beside the default arms), STAGE2_ONLY (1: step 2 trains only
# the stage-2 arms, on the seed's stage 1 and feature cache of an earlier step 2), JOINT_SECONDS (every seed's joint training time in
# seconds; default: measured from the seed's factorized runs, which must then exist; set it to rerun
# a joint arm whose factorized runs are gone, with the time they measured), step / stop_step.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
source "${here}/../lib.sh"

WORK_DIR=${WORK_DIR:-runs/open_benchmark}
SEEDS=${SEEDS:-1 2 3}
CORPUS_SEED=${CORPUS_SEED:-1}
GRAMMAR=${GRAMMAR:-weather}
N_TRAIN=${N_TRAIN:-2000}
N_DEV=${N_DEV:-100}
N_TEST=${N_TEST:-100}
TEXT_CORPUS=${TEXT_CORPUS:-30000}
SIZE=${SIZE:-64}
RESIZE=${RESIZE:-32}
SIGNERS=${SIGNERS:-6}
EPOCHS1=${EPOCHS1:-30}
PATIENCE1=${PATIENCE1:-3}
# stage 2's cosine decays to 0 at UPDATES2, so its dev loss flattens there whether or not it has
# converged: after the 20-epoch stage 1, 2,000 updates left it below stage 1 and 6,000 above
# (docs/open_benchmark.md)
UPDATES2=${UPDATES2:-6000}
LLM_UPDATES=${LLM_UPDATES:-600}
LLMS=${LLMS:-text parallel}
LLM_LAYERS=${LLM_LAYERS:-2}
LLM_DIM=${LLM_DIM:-128}
LLM_HEADS=${LLM_HEADS:-4}
LLM_VOCAB=${LLM_VOCAB:-1000}
LR1=${LR1:-1e-3}
NORM_INTERVAL=${NORM_INTERVAL:-20}
BOW_WEIGHT=${BOW_WEIGHT:-0}
CACHE_VIEWS=${CACHE_VIEWS:-0}
require_int CACHE_VIEWS "${CACHE_VIEWS}" 0
init_steps 0 4
read -r -a synth_args <<< "${SYNTH_ARGS:-}"
read -r -a stage1_args <<< "${STAGE1_ARGS:-}"
read -r -a stage2_args <<< "${STAGE2_ARGS:-}"
if [ "${PATIENCE1}" != 0 ]; then  # convergence on dev: fairseq's early stopping on the dev loss
  stage1_args=(--patience "${PATIENCE1}" ${stage1_args[@]+"${stage1_args[@]}"})
fi
if [ "${BOW_WEIGHT}" != 0 ]; then  # given after common's --criterion: the later flag wins
  stage1_args=(--criterion label_smoothed_cross_entropy_with_bow --bow-weight "${BOW_WEIGHT}"
               ${stage1_args[@]+"${stage1_args[@]}"})
fi

recipe=open_benchmark
plugin_dir=$(slt_plugin_dir)
bin_dir=$(slt_bin_dir)
DATA=${WORK_DIR}/data

summarize=("${bin_dir}/python" "${here}/summarize_open_benchmark.py")
# seconds_of RUN_DIR: the trainer's training time (s) in RUN_DIR/checkpoints/checkpoint_last.pt
seconds_of() { "${summarize[@]}" "${WORK_DIR}" --training-seconds "$1"; }

if step_enabled 0; then
  log "step 0: ${GRAMMAR} corpus (${N_TRAIN}/${N_DEV}/${N_TEST} videos, ${TEXT_CORPUS} text sentences) -> ${DATA}"
  run_cmd "${bin_dir}/fairseq-slt-synth" --out "${DATA}" --grammar "${GRAMMAR}" --seed "${CORPUS_SEED}" \
    --n-train "${N_TRAIN}" --n-dev "${N_DEV}" --n-test "${N_TEST}" --signers "${SIGNERS}" \
    --text-corpus-size "${TEXT_CORPUS}" --formats mp4 --size "${SIZE}" --resize "${RESIZE}" \
    --crop "${RESIZE}" --translate 1 ${synth_args[@]+"${synth_args[@]}"}
fi

for llm in ${LLMS}; do
  case ${llm} in text|parallel|random) ;; *) die "LLMS: '${llm}' is not one of text, parallel, random" ;; esac
done
# the pre-trained LLMs to build: those of LLMS, and "text" for the random arm (its dictionary and
# sizes) and for the joint arm
built=$(for llm in text ${LLMS}; do [ "${llm}" = random ] || echo "${llm}"; done | awk '!seen[$0]++' | tr '\n' ' ')
# the random arm's mBART sizes: those of the pre-trained ones
random_sizes=(--encoder-layers "${LLM_LAYERS}" --decoder-layers "${LLM_LAYERS}"
              --encoder-embed-dim "${LLM_DIM}" --decoder-embed-dim "${LLM_DIM}"
              --encoder-ffn-embed-dim $(( 4 * LLM_DIM )) --decoder-ffn-embed-dim $(( 4 * LLM_DIM ))
              --encoder-attention-heads "${LLM_HEADS}" --decoder-attention-heads "${LLM_HEADS}")

if step_enabled 1; then
  cut -f4 "${DATA}/train.tsv" | tail -n +2 > "${WORK_DIR}/parallel.en"
  for llm in ${built}; do
    if [ "${llm}" = text ]; then text=${DATA}/text_corpus.en; else text=${WORK_DIR}/parallel.en; fi
    log "step 1: small mBART '${llm}' (${LLM_LAYERS}+${LLM_LAYERS} layers, d=${LLM_DIM}, ${LLM_UPDATES} denoising updates on $(wc -l < "${text}") sentences)"
    run_cmd "${bin_dir}/fairseq-slt-build-mbart" --text "${text}" --lang en_XX --vocab-size "${LLM_VOCAB}" \
      --layers "${LLM_LAYERS}" --dim "${LLM_DIM}" --heads "${LLM_HEADS}" \
      --updates "${LLM_UPDATES}" --out "${WORK_DIR}/mbart.${llm}" --seed "${CORPUS_SEED}"
    run_cmd "${bin_dir}/fairseq-slt-trim-mbart" --mbart-dir "${WORK_DIR}/mbart.${llm}" --text "${text}" \
      --out "${WORK_DIR}/mbart.${llm}.trimmed"
    run_cmd "${bin_dir}/fairseq-slt-data-config" "${DATA}" --src config.yaml --out "config_${llm}.yaml" \
      --mbart-dir "${WORK_DIR}/mbart.${llm}.trimmed" --no-feature-cache
  done
  run_cmd "${bin_dir}/fairseq-slt-data-config" "${DATA}" --src config_text.yaml --out config_joint.yaml
fi

common=(--valid-subset dev --criterion label_smoothed_cross_entropy --label-smoothing 0.2
        --no-epoch-checkpoints --log-interval 20 --no-progress-bar --log-format json)
# decode_score RUN_DIR CHECKPOINT [generate arguments...]: decode test with beam 5, score it
decode_score() {
  local run=$1 ckpt=$2
  shift 2
  decode "${DATA}" test "${ckpt}" "${run}/generate" --user-dir "${plugin_dir}" \
    --task sign_translation "$@"
  run_cmd "${bin_dir}/fairseq-slt-score" "${run}/generate/generate-test.txt" --manifest "${DATA}/test.tsv" \
    --glosses "${DATA}/glosses_test.tsv" | tee "${run}/score.txt"
}

# cache_name SEED: the seed's feature cache folder in the data root, one per seed (so that seeds
# can run side by side) and per CACHE_VIEWS
cache_name() {
  if [ "${CACHE_VIEWS}" = 0 ]; then echo "features_seed$1"; else echo "features_seed$1_views${CACHE_VIEWS}"; fi
}
# build_cache SEED SEED_DIR: the frozen visual encoder's features of every split; the build's wall
# time in SEED_DIR/<cache>_seconds, written last (stage 2 takes it as the mark of a whole cache).
# Training views are drawn for stage 2's --seed (the seed).
build_cache() {
  local seed=$1 S=$2 cache t0
  cache=$(cache_name "${seed}")
  log "seed ${seed}: feature cache of the frozen visual encoder (${CACHE_VIEWS} training views) -> ${DATA}/${cache}"
  t0=$(date +%s)
  rm -rf "${DATA:?}/${cache}"
  run_cmd "${bin_dir}/fairseq-slt-cache-features" "${DATA}" \
    --stage1-checkpoint "${S}/stage1/checkpoints/checkpoint_best.pt" --out "${cache}" \
    --train-views "${CACHE_VIEWS}" --seed "${seed}"
  echo $(( $(date +%s) - t0 )) > "${S}/${cache}_seconds"
}

for seed in ${SEEDS}; do
  S=${WORK_DIR}/seed${seed}
  mkdir -p "${S}/stage1" "${S}/joint"
  if step_enabled 2 && [ "${STAGE2_ONLY:-0}" != 1 ]; then
    log "seed ${seed}: stage 1 (slt_lightt_tiny, at most ${EPOCHS1} epochs, patience ${PATIENCE1}, lr ${LR1}) -> ${S}/stage1"
    run_cmd "${bin_dir}/fairseq-train" "${DATA}" --user-dir "${plugin_dir}" --task sign_translation \
      --arch slt_lightt_tiny --temporal-dim 256 "${common[@]}" \
      --optimizer adam --lr "${LR1}" --lr-scheduler inverse_sqrt --warmup-updates 50 \
      --max-tokens 320 --max-epoch "${EPOCHS1}" --seed "${seed}" --save-dir "${S}/stage1/checkpoints" \
      --num-workers 1 --log-norms-interval "${NORM_INTERVAL}" --log-file "${S}/stage1/train.log" \
      ${stage1_args[@]+"${stage1_args[@]}"}
    decode_score "${S}/stage1" "${S}/stage1/checkpoints/checkpoint_best.pt" --max-tokens 2000 \
      --max-len-a 0 --max-len-b "$(gen_max_len "${DATA}/train.tsv")"
    build_cache "${seed}" "${S}"
    cp "${S}/$(cache_name "${seed}")_seconds" "${S}/cache_seconds"  # the factorized arms' cache
  fi
  if step_enabled 2; then
    ckpt1=stage1/checkpoints/checkpoint_best.pt
    [ -f "${S}/${ckpt1}" ] || [ "${DRY_RUN:-0}" = 1 ] || die "seed ${seed}'s stage 2 reads ${S}/${ckpt1}, which is missing: run step 2 without STAGE2_ONLY for seed ${seed} first"
    cache=$(cache_name "${seed}")
    if [ ! -f "${S}/${cache}_seconds" ]; then  # a STAGE2_ONLY variant
      if [ "${CACHE_VIEWS}" != 0 ]; then
        build_cache "${seed}" "${S}"
      elif [ "${DRY_RUN:-0}" != 1 ]; then
        die "seed ${seed}'s stage 2 reads the cache ${DATA}/${cache}, which is missing: run step 2 without STAGE2_ONLY for seed ${seed} first"
      fi
    fi
    for llm in ${LLMS}; do
      run=${S}/stage2_${llm}${STAGE2_TAG:-}
      mkdir -p "${run}"
      if [ "${llm}" = random ]; then  # the text LLM's dictionary and sizes, random weights
        from=text; llm_init=("${random_sizes[@]}")
      else
        from=${llm}; llm_init=(--mbart-dir "${WORK_DIR}/mbart.${llm}.trimmed")
      fi
      run_cmd "${bin_dir}/fairseq-slt-data-config" "${DATA}" --src "config_${from}.yaml" \
        --out "config_${llm}_${cache#features_}.yaml" --feature-cache "${cache}"
      log "seed ${seed}: stage 2 with the '${llm}' LLM (${UPDATES2} updates on the cache) -> ${run}"
      task2=(--user-dir "${plugin_dir}" --task sign_translation --config-yaml "config_${llm}_${cache#features_}.yaml"
             --langs en_XX --tgt-lang en_XX)
      run_cmd "${bin_dir}/fairseq-train" "${DATA}" "${task2[@]}" --arch slt_mbart \
        --stage1-checkpoint "${S}/stage1/checkpoints/checkpoint_best.pt" \
        "${llm_init[@]}" "${common[@]}" \
        --optimizer adam_grouped --lr 1e-3 --group-lr-scales llm:0.1 --lr-scheduler cosine \
        --warmup-updates 50 --batch-size 16 --max-update "${UPDATES2}" --seed "${seed}" \
        --save-dir "${run}/checkpoints" --num-workers 0 --log-norms-interval "${NORM_INTERVAL}" \
        --log-file "${run}/train.log" ${stage2_args[@]+"${stage2_args[@]}"}
      decode_score "${run}" "${run}/checkpoints/checkpoint_best.pt" "${task2[@]}" --batch-size 16 \
        --max-len-a 0 --max-len-b "$(gen_max_len "${DATA}/train.tsv")"
    done
  fi
  if step_enabled 3; then
    if [ -n "${JOINT_SECONDS:-}" ]; then
      require_int JOINT_SECONDS "${JOINT_SECONDS}" 1
      budget=${JOINT_SECONDS}
    else
      for f in stage1/checkpoints/checkpoint_last.pt cache_seconds stage2_text/checkpoints/checkpoint_last.pt; do
        [ -f "${S}/${f}" ] || die "seed ${seed}'s joint arm gets the factorized arm's training time, read from ${S}/${f}, which is missing: run step 2 for seed ${seed} first, or set JOINT_SECONDS to that time (s)"
      done
      budget=$(( $(seconds_of "${S}/stage1") + $(cat "${S}/cache_seconds") + $(seconds_of "${S}/stage2_text") ))
    fi
    run=${S}/joint
    log "seed ${seed}: joint (visual encoder trained, 'text' LLM) for ${budget} s of training -> ${run}"
    task_joint=(--user-dir "${plugin_dir}" --task sign_translation --config-yaml config_joint.yaml
                --langs en_XX --tgt-lang en_XX)
    run_cmd "${bin_dir}/fairseq-train" "${DATA}" "${task_joint[@]}" --arch slt_mbart --train-visual-encoder \
      --temporal-module K5 --temporal-dim 256 --mbart-dir "${WORK_DIR}/mbart.text.trimmed" "${common[@]}" \
      --optimizer adam_grouped --lr "${LR1}" --group-lr-scales llm:0.1 \
      --lr-scheduler inverse_sqrt --warmup-updates 50 --max-tokens 320 --max-epoch 1000 \
      --stop-time-hours "$(awk -v s="${budget}" 'BEGIN { printf "%.5f", s / 3600 }')" \
      --seed "${seed}" --save-dir "${run}/checkpoints" --num-workers 1 \
      --log-norms-interval "${NORM_INTERVAL}" --log-file "${run}/train.log" \
      ${stage1_args[@]+"${stage1_args[@]}"}
    decode_score "${run}" "${run}/checkpoints/checkpoint_best.pt" "${task_joint[@]}" --batch-size 16 \
      --max-len-a 0 --max-len-b "$(gen_max_len "${DATA}/train.tsv")"
  fi
done

if step_enabled 4; then
  log "step 4: the tables over seeds -> ${WORK_DIR}/results.md, plots"
  : > "${WORK_DIR}/results.md"
  for table in "" --per-seed --categories --coverage --norms --convergence; do
    # shellcheck disable=SC2086
    run_cmd "${summarize[@]}" "${WORK_DIR}" ${table} --seeds ${SEEDS} | tee -a "${WORK_DIR}/results.md"
    echo >> "${WORK_DIR}/results.md"
  done
  first=${WORK_DIR}/seed${SEEDS%% *}
  if [ -f "${first}/joint/train.log" ]; then
    run_cmd "${bin_dir}/fairseq-slt-plot" norms "${first}/joint/train.log" "${first}/stage1/train.log" \
      "${first}/stage2_text/train.log" --label joint --label "factorized stage 1" \
      --label "factorized stage 2" --out "${WORK_DIR}/norms.svg"
  fi
  logs=() labels=()
  for run in joint stage1 $(for llm in ${LLMS}; do echo "stage2_${llm}"; done); do
    [ -f "${first}/${run}/train.log" ] && logs+=("${first}/${run}/train.log") && labels+=(--label "${run}")
  done
  run_cmd "${bin_dir}/fairseq-slt-plot" curves "${logs[@]}" "${labels[@]}" --metric dev_loss --out "${WORK_DIR}/curves.svg"
fi
log "done"
