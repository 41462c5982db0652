#!/usr/bin/env bash
# Stage-1 training throughput on one CUDA GPU: videos/s with bf16, fp16 and fp32, and the share of
# the step time the training loop spends waiting for the data loader. Prints a markdown table.
#
#   bash benchmarks/gpu.sh [extra fairseq-train arguments]        # on a CUDA machine
#   TINY=1 bash benchmarks/gpu.sh                                 # tiny end-to-end check on CPU
#   DRY_RUN=1 bash benchmarks/gpu.sh                              # print the commands only
#
# Setting (the paper's stage 1, examples/slt.sh): --arch slt_lightt, batch 8 videos, SGD momentum
# 0.9, lr 1e-2, cosine, label smoothing 0.2; frames resized to 256 and cropped to 224 with the
# training augmentation, 25% of the frames kept (config.yaml defaults). The videos are rendered
# on the fly by fairseq-slt-synth (SIZE x SIZE mp4 or png frame folders, ~100-150 frames each,
# in SHARDS parallel processes) into WORK_DIR/data and reused by later runs.
# No validation and no checkpoints during the timed runs.
#
# Measures, per precision, from a timer around fairseq's Trainer.train_step (with a CUDA sync)
# inside an unmodified fairseq-train run, after WARMUP updates:
#   videos/s     = videos trained / wall time of the timed updates
#   loader share = time between two train steps (waiting for the next batch, plus fairseq's
#                  per-step bookkeeping) / wall time
# and, as one more row, the loader alone (the same batches, workers and augmentation, no model).
# "fairseq bsz x ups" cross-checks videos/s with fairseq's own train_inner records (same window,
# averaged over its LOG_INTERVAL-update records).
#
# Two more measurements, each a row of the same table:
#   cache-features  fairseq-slt-cache-features --device cuda --precision CACHE_PRECISION over the
#                   training videos (CACHE_VIEWS training views each) with a stage-1 checkpoint of
#                   ARCH saved after 1 update: video views/s and peak GPU memory, from the command's
#                   own "cache speed" log line (torch.cuda.max_memory_allocated)
#   decode          decoding every frame of DECODE_VIDEOS of the training mp4s: decord (CPU),
#                   torchcodec on the CPU and torchcodec on the GPU (VideoDecoder(path,
#                   device="cuda")): frames/s in the row's name, videos/s and peak GPU memory; the
#                   torchcodec rows are skipped with a note when torchcodec is not installed, and
#                   all of them with FORMAT=frames
# TINY=1 runs both on the CPU (--device cpu; torchcodec and decord on the CPU).
#
# The package must be installed in the python that runs this: PYTHON (default: python on PATH,
# i.e. the active virtualenv). Every tool runs through "$PYTHON" (-m / -c), so no console script has to be
# on PATH.
#
# Variables: PYTHON, WORK_DIR (default runs/gpu_bench), PRECISIONS (default "bf16 fp16 fp32"; also
# "amp"), UPDATES (timed run length, default 150), WARMUP (default 30), BATCH (default 8),
# NUM_WORKERS (default: CPU cores - 2, at most 12), N_TRAIN (default 512 videos), SHARDS (parallel
# generator processes, default: CPU cores, at most 16), SIZE (default 256), FORMAT (mp4 | frames,
# default mp4), GOAL (videos/s, default 50), ARCH (default slt_lightt), LOG_INTERVAL (default 10),
# CACHE (1: time the cache build; 0: skip), CACHE_PRECISION (bf16 | fp16 | fp32, default bf16),
# CACHE_VIEWS (default 1), DECODE_VIDEOS (default 64; 0: skip the decode rows), VIDEO_SIZE (WxH: the
# videos at a camera's frame size, e.g. 1280x720 as How2Sign's; default SIZE x SIZE), FRAME_STORE (1:
# also time the first precision and the loader reading a frame store, fairseq-slt-frame-store; default
# 0), TINY=1, DRY_RUN=1.
# Outputs (steps_*.json, train_*.log, loader.log, stage1/, cache.log, features/, decode.log) stay in
# WORK_DIR.
set -euo pipefail

PYTHON=${PYTHON:-python}
TINY=${TINY:-0}
DRY_RUN=${DRY_RUN:-0}
ncpu=$(nproc 2>/dev/null || echo 4)
if [ "${TINY}" = 1 ]; then
  # CPU, 32-px frames, Light-T "Tiny" with a small temporal module: checks the script end to end
  WORK_DIR=${WORK_DIR:-runs/gpu_bench_tiny}
  PRECISIONS=${PRECISIONS:-fp32}
  UPDATES=${UPDATES:-6}
  WARMUP=${WARMUP:-2}
  BATCH=${BATCH:-4}
  NUM_WORKERS=${NUM_WORKERS:-1}
  N_TRAIN=${N_TRAIN:-24}
  LOG_INTERVAL=${LOG_INTERVAL:-2}
  SIZE=${SIZE:-32}
  RESIZE=${RESIZE:-32}
  CROP=${CROP:-32}
  ARCH=${ARCH:-slt_lightt_tiny}
  DEVICE_ARGS=(--cpu --temporal-dim 64)
  DEVICE=cpu
  DECODE_VIDEOS=${DECODE_VIDEOS:-8}
else
  WORK_DIR=${WORK_DIR:-runs/gpu_bench}
  PRECISIONS=${PRECISIONS:-bf16 fp16 fp32}
  UPDATES=${UPDATES:-150}
  WARMUP=${WARMUP:-30}
  BATCH=${BATCH:-8}
  NUM_WORKERS=${NUM_WORKERS:-$(( ncpu > 14 ? 12 : (ncpu > 2 ? ncpu - 2 : 1) ))}
  N_TRAIN=${N_TRAIN:-512}
  LOG_INTERVAL=${LOG_INTERVAL:-10}
  SIZE=${SIZE:-256}
  RESIZE=${RESIZE:-256}
  CROP=${CROP:-224}
  ARCH=${ARCH:-slt_lightt}
  DEVICE_ARGS=()
  DEVICE=cuda
  DECODE_VIDEOS=${DECODE_VIDEOS:-64}
fi
CACHE=${CACHE:-1}
CACHE_PRECISION=${CACHE_PRECISION:-bf16}
CACHE_VIEWS=${CACHE_VIEWS:-1}
SHARDS=${SHARDS:-$(( ncpu > 16 ? 16 : ncpu ))}
FORMAT=${FORMAT:-mp4}
GOAL=${GOAL:-50}
VIDEO_SIZE=${VIDEO_SIZE:-}
FRAME_STORE=${FRAME_STORE:-0}
DATA=${WORK_DIR}/data

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
plugin_dir=$(cd "${here}/../fairseq_slt" && pwd)

exec 3>&2  # progress messages go to the script's stderr, even from commands whose output is logged
log() { echo "$(date '+%H:%M:%S') [gpu.sh] $*" >&3; }
die() { echo "gpu.sh: error: $*" >&2; exit 1; }
run() {  # print the command (an inline python program as <...>); run it unless DRY_RUN=1
  local a shown=()
  for a in "$@"; do if [[ "${a}" == *$'\n'* ]]; then shown+=("<${a%%$'\n'*}...>"); else shown+=("${a}"); fi; done
  log "+ ${shown[*]}"
  if [ "${DRY_RUN}" != 1 ]; then "$@"; fi
}

[ "${WARMUP}" -lt "${UPDATES}" ] || die "WARMUP (${WARMUP}) must be below UPDATES (${UPDATES})"
case "${FORMAT}" in mp4|frames) ;; *) die "FORMAT must be mp4 or frames, not ${FORMAT}";; esac
for p in ${PRECISIONS}; do
  case "${p}" in bf16|fp16|fp32|amp) ;; *) die "unknown precision ${p} (bf16, fp16, fp32, amp)";; esac
done
case "${CACHE_PRECISION}" in bf16|fp32) ;; fp16) [ "${DEVICE}" = cuda ] || die "CACHE_PRECISION=fp16 needs a GPU; use bf16 or fp32 with TINY=1";; *) die "CACHE_PRECISION must be bf16, fp16 or fp32, not ${CACHE_PRECISION}";; esac
case "${CACHE}" in 0|1) ;; *) die "CACHE must be 0 or 1, not ${CACHE}";; esac
case "${FRAME_STORE}" in 0|1) ;; *) die "FRAME_STORE must be 0 or 1, not ${FRAME_STORE}";; esac
[ -z "${VIDEO_SIZE}" ] || [[ "${VIDEO_SIZE}" =~ ^[0-9]+x[0-9]+$ ]] || die "VIDEO_SIZE must be WIDTHxHEIGHT, e.g. 1280x720, not ${VIDEO_SIZE}"
[[ "${CACHE_VIEWS}" =~ ^[1-9][0-9]*$ ]] || die "CACHE_VIEWS must be a positive integer, not ${CACHE_VIEWS}"
[[ "${DECODE_VIDEOS}" =~ ^[0-9]+$ ]] || die "DECODE_VIDEOS must be a non-negative integer, not ${DECODE_VIDEOS}"
if [ "${DRY_RUN}" != 1 ]; then
  "${PYTHON}" -c "import fairseq_slt" 2>/dev/null \
    || die "${PYTHON} cannot import fairseq_slt; activate the virtualenv or set PYTHON=.venv/bin/python"
  if [ "${TINY}" != 1 ]; then
    "${PYTHON}" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
      || die "no CUDA device visible to ${PYTHON}; use TINY=1 for the CPU check"
  fi
fi

# ---------------------------------------------------------------- data: SHARDS generators in parallel
make_data() {
  local per=$(( (N_TRAIN + SHARDS - 1) / SHARDS )) k pids=()
  mkdir -p "${DATA}"
  for (( k = 0; k < SHARDS; k++ )); do
    # shard 0 also writes the dev split, the sentencepiece model and config.yaml used by all
    "${PYTHON}" -m fairseq_slt.synthetic.generate --out "${DATA}/shard${k}" --seed $(( k + 1 )) \
      --n-train "${per}" --n-dev $(( k == 0 ? 8 : 1 )) --n-test 1 --size "${SIZE}" \
      --resize "${RESIZE}" --crop "${CROP}" --formats "${FORMAT}" --source "${FORMAT}" \
      --rotate 30 --scale 0.2 --translate 10 ${VIDEO_SIZE:+--video-size "${VIDEO_SIZE}"} > "${DATA}/shard${k}.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "${pid}" || die "the generator failed; see ${DATA}/shard*.log"; done
  cp "${DATA}/shard0/config.yaml" "${DATA}/shard0/spm.model" "${DATA}/shard0/dict.txt" "${DATA}/"
  # one manifest over all shards: ids and video paths prefixed with the shard
  for split in train dev; do
    head -n 1 "${DATA}/shard0/${split}.tsv" > "${DATA}/${split}.tsv.tmp"
    for (( k = 0; k < SHARDS; k++ )); do
      awk -F '\t' -v OFS='\t' -v s="shard${k}" 'NR > 1 { $1 = s "_" $1; $2 = s "/" $2; print }' \
        "${DATA}/shard${k}/${split}.tsv" >> "${DATA}/${split}.tsv.tmp"
    done
    mv "${DATA}/${split}.tsv.tmp" "${DATA}/${split}.tsv"
  done
}

if [ -f "${DATA}/train.tsv" ] && [ -f "${DATA}/.complete" ]; then
  log "reusing ${DATA} ($(( $(wc -l < "${DATA}/train.tsv") - 1 )) training videos)"
else
  log "rendering ${N_TRAIN} training videos (${SIZE}x${SIZE} ${FORMAT}, resize ${RESIZE} / crop ${CROP}) -> ${DATA}"
  if [ "${DRY_RUN}" = 1 ]; then
    log "+ ${PYTHON} -m fairseq_slt.synthetic.generate --out ${DATA}/shard<k> ... (${SHARDS} shards)"
  else
    start=$(date +%s)
    make_data
    touch "${DATA}/.complete"
    log "data ready in $(( $(date +%s) - start )) s"
  fi
fi

# ---------------------------------------------------------------- timed fairseq-train runs
train_args=(
  "${DATA}" --user-dir "${plugin_dir}" --task sign_translation --arch "${ARCH}" "${DEVICE_ARGS[@]}"
  --criterion label_smoothed_cross_entropy --label-smoothing 0.2
  --optimizer sgd --momentum 0.9 --lr 1e-2 --lr-scheduler cosine
  --batch-size "${BATCH}" --max-update "${UPDATES}" --num-workers "${NUM_WORKERS}"
  --disable-validation --no-save --seed 1 --distributed-world-size 1
  --log-format json --log-interval "${LOG_INTERVAL}"
)

# fairseq-train in-process, Trainer.train_step timed; writes the per-step times as JSON to $1
read -r -d '' TIMED_TRAIN <<'PY' || true
import json, logging, os, sys, time
# the log format of fairseq-train (fairseq_cli.train sets it up before importing fairseq)
logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", datefmt="%Y-%m-%d %H:%M:%S",
                    level=os.environ.get("LOGLEVEL", "INFO").upper(), stream=sys.stdout)
import torch
from fairseq.trainer import Trainer
from fairseq_cli import train

out, argv = sys.argv[1], sys.argv[2:]
steps = []
train_step = Trainer.train_step

def timed_train_step(self, samples, raise_oom=False):
    start = time.perf_counter()
    result = train_step(self, samples, raise_oom)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    videos = sum(int(s.get("nsentences", 0)) for s in samples if s)
    steps.append([start, time.perf_counter(), videos])
    return result

Trainer.train_step = timed_train_step
sys.argv = ["fairseq-train"] + argv
try:
    train.cli_main()
finally:
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    with open(out, "w") as f:
        json.dump({"steps": steps, "peak_gib": peak}, f)
PY

# the data loader alone: the training batches with the same workers, no model; writes JSON to $1
read -r -d '' LOADER_ONLY <<'PY' || true
import json, sys, time
from fairseq import options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

out, updates, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
task = tasks.setup_task(cfg.task)
task.load_dataset(cfg.dataset.train_subset, combine=False, epoch=1)
epoch_itr = task.get_batch_iterator(
    dataset=task.dataset(cfg.dataset.train_subset), max_tokens=cfg.dataset.max_tokens,
    max_sentences=cfg.dataset.batch_size, max_positions=task.max_positions(), ignore_invalid_inputs=True,
    required_batch_size_multiple=cfg.dataset.required_batch_size_multiple, seed=cfg.common.seed,
    num_workers=cfg.dataset.num_workers, data_buffer_size=cfg.dataset.data_buffer_size,
)
steps = []
while len(steps) < updates:
    itr = epoch_itr.next_epoch_itr(shuffle=True)
    start = time.perf_counter()
    for batch in itr:
        now = time.perf_counter()
        steps.append([start, now, int(batch.get("nsentences", 0))])
        start = now
        if len(steps) >= updates:
            break
with open(out, "w") as f:
    json.dump({"steps": steps, "peak_gib": None}, f)
PY

# one markdown row from a steps JSON: videos/s and loader share after the warm-up
read -r -d '' SUMMARY <<'PY' || true
import json, sys

path, name, warmup, goal = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
train_log = sys.argv[5] if len(sys.argv) > 5 else None
result = json.load(open(path))
steps = result["steps"]
if len(steps) <= warmup + 1:
    sys.exit(f"{path}: only {len(steps)} steps recorded, need more than WARMUP={warmup} + 1")
timed = steps[warmup + 1:]
wall = timed[-1][1] - steps[warmup][1]
videos = sum(s[2] for s in timed)
busy = sum(s[1] - s[0] for s in timed)
rate = videos / wall
if name.startswith("loader only"):
    share, met = "-", "-"
else:
    share = f"{100 * (wall - busy) / wall:.1f}%"
    met = "yes" if rate >= goal else "no"
peak = f"{result['peak_gib']:.1f}" if result.get("peak_gib") else "-"
# cross-check: fairseq's own bsz x ups of the train_inner records after the warm-up
fairseq_rate = []
for line in open(train_log) if train_log else []:
    if "| train_inner | {" in line:
        rec = json.loads(line.split("| train_inner | ", 1)[1])
        if int(rec["num_updates"]) > warmup and float(rec.get("ups", 0)) > 0:
            fairseq_rate.append(float(rec["bsz"]) * float(rec["ups"]))
fairseq_rate = f"{sum(fairseq_rate) / len(fairseq_rate):.1f}" if fairseq_rate else "-"
print(f"| {name} | {rate:.1f} | {fairseq_rate} | {1000 * wall / len(timed):.0f} | {share} | {peak} | {met} |")
PY

# the cache build's row, from fairseq-slt-cache-features' own "cache speed" log line in $1
read -r -d '' CACHE_ROW <<'PY' || true
import re, sys

path = sys.argv[1]
match = None
for line in open(path, encoding="utf-8"):
    match = re.search(r"cache speed: (\d+) video views in ([\d.]+) s \(([\d.]+) videos/s\) on (\S+), (\w+), "
                      r"\d+ loader workers(?:, peak GPU memory ([\d.]+) GiB)?", line) or match
if match is None:
    sys.exit(f"{path}: no 'cache speed' line (fairseq-slt-cache-features did not finish?)")
views, seconds, rate, device, precision, peak = match.groups()
peak = f"{float(peak):.1f}" if peak else "-"
print(f"| cache-features {precision} ({device.split(':')[0]}) | {float(rate):.1f} | - | - | - | {peak} | - |")
PY

# decode every frame of the first $2 training mp4s with decord, torchcodec (CPU) and, on the
# devices $3 include, torchcodec on the GPU; one markdown row each on stdout, notes on stderr
read -r -d '' DECODE <<'PY' || true
import os, sys, time
import torch
from fairseq_slt.data import SignDataConfig

data, n_videos, devices = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
root = SignDataConfig(os.path.join(data, "config.yaml")).video_root
with open(os.path.join(data, "train.tsv"), encoding="utf-8") as f:
    column = f.readline().rstrip("\n").split("\t").index("video")
    paths = [os.path.join(root, line.rstrip("\n").split("\t")[column]) for line in f]
paths = [p for p in paths if p.endswith(".mp4")][:n_videos]
if not paths:
    sys.exit(f"no mp4 in {data}/train.tsv to decode")

def decord_decoder(device):
    import decord
    def decode(path):  # one decoding thread, as in a DataLoader worker
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        return int(reader.get_batch(list(range(len(reader)))).asnumpy().shape[0])
    return decode

def torchcodec_decoder(device):
    from torchcodec.decoders import VideoDecoder
    kw = {"num_ffmpeg_threads": 1} if device == "cpu" else {}
    def decode(path):
        decoder = VideoDecoder(path, device=device, **kw)
        return int(decoder.get_frames_in_range(0, len(decoder)).data.shape[0])
    return decode

def row(name, cells):
    print(f"| decode: {name}{cells}", flush=True)

backends = [("decord cpu", decord_decoder, "cpu"), ("torchcodec cpu", torchcodec_decoder, "cpu")]
if "cuda" in devices:
    backends.append(("torchcodec cuda", torchcodec_decoder, "cuda"))
import importlib.util

from fairseq_slt.data.video_io import torchcodec_unusable

why = torchcodec_unusable()
if why:  # not installed, or FFmpeg's libraries missing
    print(f"note: torchcodec is not usable here ({why}): its decode rows are skipped "
          "(pip install torchcodec, the package's [torchcodec] extra; it needs FFmpeg's shared libraries)",
          file=sys.stderr)
    backends = [b for b in backends if not b[0].startswith("torchcodec")]
    installed = importlib.util.find_spec("torchcodec") is not None
    reason = "FFmpeg's shared libraries are not installed" if installed else "torchcodec is not installed"
    row("torchcodec", f" | skipped: {reason} | - | - | - | - | - |")
for name, make, device in backends:
    cuda = device == "cuda"
    try:
        decode = make(device)
        decode(paths[0])  # warm-up, not timed (CUDA context, NVDEC set-up, libraries)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        frames, start = 0, time.perf_counter()
        for path in paths:
            frames += decode(path)
            if cuda:
                torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    except Exception as e:
        first = " ".join(str(e).split())[:120]
        print(f"note: {name} failed: {type(e).__name__}: {first}", file=sys.stderr)
        row(name, f" | failed: {type(e).__name__}: {first} | - | - | - | - | - |")
        continue
    peak = f"{torch.cuda.max_memory_allocated() / 2**30:.1f}" if cuda else "-"
    row(f"{name}, {frames / seconds:.0f} frames/s", f" | {len(paths) / seconds:.1f} | - | - | - | {peak} | - |")
PY

mkdir -p "${WORK_DIR}"
work_abs=$(cd "${WORK_DIR}" && pwd)
rows=()
failed=0
for precision in ${PRECISIONS}; do
  case "${precision}" in
    bf16) flags=(--bf16) ;;
    fp16) flags=(--fp16) ;;
    amp)  flags=(--amp) ;;
    fp32) flags=() ;;
  esac
  log "training ${UPDATES} updates, ${precision}"
  rm -f "${WORK_DIR}/steps_${precision}.json"
  if ! run "${PYTHON}" -c "${TIMED_TRAIN}" "${WORK_DIR}/steps_${precision}.json" \
      "${train_args[@]}" "${flags[@]}" "$@" > "${WORK_DIR}/train_${precision}.log" 2>&1; then
    # one precision failing (e.g. an op without fp16 support) still reports the others
    log "fairseq-train (${precision}) failed; see ${WORK_DIR}/train_${precision}.log:"
    tail -n 5 "${WORK_DIR}/train_${precision}.log" >&3
    rows+=("| ${precision} | failed: see ${WORK_DIR}/train_${precision}.log | | | | | no |")
    failed=1
    continue
  fi
  [ "${DRY_RUN}" = 1 ] || rows+=("$("${PYTHON}" -c "${SUMMARY}" "${WORK_DIR}/steps_${precision}.json" \
    "${precision}" "${WARMUP}" "${GOAL}" "${WORK_DIR}/train_${precision}.log")")
done
log "the loader alone, ${UPDATES} batches"
run "${PYTHON}" -c "${LOADER_ONLY}" "${WORK_DIR}/steps_loader.json" "${UPDATES}" \
  "${train_args[@]}" "$@" > "${WORK_DIR}/loader.log" 2>&1 \
  || die "the loader-only run failed; see ${WORK_DIR}/loader.log"
[ "${DRY_RUN}" = 1 ] || rows+=("$("${PYTHON}" -c "${SUMMARY}" "${WORK_DIR}/steps_loader.json" \
  "loader only" "${WARMUP}" "${GOAL}")")

# ---------------------------------------------------------------- the same through a frame store
if [ "${FRAME_STORE}" = 1 ]; then
  read -r first_precision _ <<< "${PRECISIONS}"
  case "${first_precision}" in bf16) flags=(--bf16) ;; fp16) flags=(--fp16) ;; amp) flags=(--amp) ;; *) flags=() ;; esac
  log "the frame store of the training videos -> ${DATA}/store"
  run "${PYTHON}" -m fairseq_slt.cli.frame_store "${DATA}" --out store --splits train,dev --workers "${NUM_WORKERS}" \
    --no-config > "${WORK_DIR}/store.log" 2>&1 || die "writing the frame store failed; see ${WORK_DIR}/store.log"
  run "${PYTHON}" -m fairseq_slt.cli.data_config "${DATA}" --out config_store.yaml --frame-store store \
    > /dev/null 2>&1 || die "fairseq-slt-data-config --frame-store failed"
  grep -h "GB per 1,000 frames" "${WORK_DIR}/store.log" >&3 2>/dev/null || true
  log "training ${UPDATES} updates, ${first_precision}, frames from the store"
  if run "${PYTHON}" -c "${TIMED_TRAIN}" "${WORK_DIR}/steps_store.json" "${train_args[@]}" "${flags[@]}" "$@" \
      --config-yaml config_store.yaml > "${WORK_DIR}/train_store.log" 2>&1; then
    [ "${DRY_RUN}" = 1 ] || rows+=("$("${PYTHON}" -c "${SUMMARY}" "${WORK_DIR}/steps_store.json" \
      "${first_precision}, frame store" "${WARMUP}" "${GOAL}" "${WORK_DIR}/train_store.log")")
  else
    log "fairseq-train on the frame store failed; see ${WORK_DIR}/train_store.log"
    rows+=("| ${first_precision}, frame store | failed: see ${WORK_DIR}/train_store.log | | | | | no |")
    failed=1
  fi
  run "${PYTHON}" -c "${LOADER_ONLY}" "${WORK_DIR}/steps_loader_store.json" "${UPDATES}" \
    "${train_args[@]}" "$@" --config-yaml config_store.yaml > "${WORK_DIR}/loader_store.log" 2>&1 \
    || die "the loader-only run on the frame store failed; see ${WORK_DIR}/loader_store.log"
  [ "${DRY_RUN}" = 1 ] || rows+=("$("${PYTHON}" -c "${SUMMARY}" "${WORK_DIR}/steps_loader_store.json" \
    "loader only, frame store" "${WARMUP}" "${GOAL}")")
fi

# ---------------------------------------------------------------- the feature cache build
if [ "${CACHE}" = 1 ]; then
  # a stage-1 checkpoint of ARCH (1 update; the speed does not depend on the weights); the timed
  # runs' arguments without --no-save
  ckpt_args=()
  for a in "${train_args[@]}"; do [ "${a}" = --no-save ] || ckpt_args+=("${a}"); done
  log "a stage-1 checkpoint for the cache (1 update) -> ${WORK_DIR}/stage1"
  [ "${DRY_RUN}" = 1 ] || rm -rf "${WORK_DIR}/stage1" "${WORK_DIR}/features"  # no resumed run or cache
  log "the feature cache of the training videos: ${DEVICE}, ${CACHE_PRECISION}, ${CACHE_VIEWS} view(s) each"
  if run "${PYTHON}" -m fairseq_cli.train "${ckpt_args[@]}" "$@" --max-update 1 --save-dir "${WORK_DIR}/stage1" \
        --no-epoch-checkpoints > "${WORK_DIR}/stage1.log" 2>&1 \
      && run "${PYTHON}" -m fairseq_slt.cli.cache_features "${DATA}" \
        --stage1-checkpoint "${WORK_DIR}/stage1/checkpoint_last.pt" --splits train --train-views "${CACHE_VIEWS}" \
        --out "${work_abs}/features" --device "${DEVICE}" --precision "${CACHE_PRECISION}" \
        --num-workers "${NUM_WORKERS}" --batch-size "${BATCH}" --no-progress-bar > "${WORK_DIR}/cache.log" 2>&1; then
    [ "${DRY_RUN}" = 1 ] || rows+=("$("${PYTHON}" -c "${CACHE_ROW}" "${WORK_DIR}/cache.log")")
  else
    log "the cache build failed; see ${WORK_DIR}/stage1.log and ${WORK_DIR}/cache.log:"
    tail -n 5 "${WORK_DIR}/cache.log" "${WORK_DIR}/stage1.log" >&3 2>/dev/null || true
    rows+=("| cache-features ${CACHE_PRECISION} (${DEVICE}) | failed: see ${WORK_DIR}/cache.log | | | | | - |")
    failed=1
  fi
fi

# ---------------------------------------------------------------- mp4 decoding: decord, torchcodec CPU / GPU
if [ "${DECODE_VIDEOS}" = 0 ]; then
  log "DECODE_VIDEOS=0: no decode rows"
elif [ "${FORMAT}" != mp4 ]; then
  log "note: FORMAT=${FORMAT}: no mp4s to decode, the decode rows are skipped"
else
  decode_devices=cpu
  [ "${DEVICE}" = cuda ] && decode_devices="cpu cuda"
  log "decoding every frame of ${DECODE_VIDEOS} training mp4s: decord, torchcodec (${decode_devices})"
  if run "${PYTHON}" -c "${DECODE}" "${DATA}" "${DECODE_VIDEOS}" "${decode_devices}" \
      > "${WORK_DIR}/decode.md" 2> "${WORK_DIR}/decode.log"; then
    if [ "${DRY_RUN}" != 1 ]; then
      grep '^note:' "${WORK_DIR}/decode.log" >&3 || true
      while IFS= read -r line; do rows+=("${line}"); done < "${WORK_DIR}/decode.md"
    fi
  else
    log "the decode benchmark failed; see ${WORK_DIR}/decode.log:"
    tail -n 5 "${WORK_DIR}/decode.log" >&3
    rows+=("| decode | failed: see ${WORK_DIR}/decode.log | | | | | - |")
    failed=1
  fi
fi

if [ "${DRY_RUN}" = 1 ]; then exit 0; fi
device=$("${PYTHON}" -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU')")
echo
echo "stage 1, --arch ${ARCH}, batch ${BATCH}, ${SIZE}px ${FORMAT}${VIDEO_SIZE:+ at ${VIDEO_SIZE}} -> crop ${CROP}, ${NUM_WORKERS} loader workers," \
  "${UPDATES} updates (first ${WARMUP} not timed), ${device}, goal >= ${GOAL} videos/s"
echo
echo "| precision | videos/s | fairseq bsz x ups | ms/update | loader share | peak GPU GiB | goal met |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "cache-features: video views encoded per second by the frozen stage-1 visual encoder" \
  "(${CACHE_VIEWS} training view(s) per video, batch ${BATCH}, ${NUM_WORKERS} loader workers)," \
  "peak GPU memory from the command's torch.cuda.max_memory_allocated. decode: every frame of" \
  "${DECODE_VIDEOS} training mp4s, one process (CPU decoders: one thread), after one untimed video."
exit "${failed}"
