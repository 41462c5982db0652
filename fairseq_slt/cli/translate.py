"""Translate sign videos (mp4 files or frame folders) with a stage-1 or stage-2 checkpoint.

    fairseq-slt-translate --path checkpoints/stage2/checkpoint_best.pt signer.mp4 frames/0001/
    fairseq-slt-translate --path ckpt.pt talk.mp4 --start 12.0 --end 17.5 --beam 5
    fairseq-slt-translate --path ckpt.pt --input-list videos.tsv --format jsonl --output out.jsonl

``--input-list`` is a TSV with one input per line: ``path`` or ``path<TAB>start<TAB>end`` (seconds,
plain digits such as 12.5). Every line that is not empty is an input: there are no comment lines
(a file named ``#take1.mp4`` is an input like any other). Plain-text output is one hypothesis per
line in input order; JSON lines carry ``id`` (the input's position), ``video``, ``start``, ``end``,
``hypothesis`` and ``score``. An input that cannot be read stops the command with its name, unless
``--skip-bad-videos`` (then it is reported and written with ``"error"`` in JSON lines, or an empty
line in text output; the command exits with an error when no input could be read).
"""

import argparse
import json
import logging
import sys
from typing import TYPE_CHECKING, List

from tqdm import tqdm

from ..data.manifest_utils import parse_seconds, parse_time_range
from ..data.video_io import VideoReadError
from ..logging_utils import setup_logging
from ..paper import paper_value

if TYPE_CHECKING:  # fairseq_slt.inference imports torch and fairseq: only once the arguments are parsed
    from ..inference import VideoInput

logger = logging.getLogger("fairseq_slt.translate")


def read_input_list(path: str) -> List["VideoInput"]:
    """The inputs of an ``--input-list``: every line that is not empty, ``path`` or
    ``path<TAB>start<TAB>end`` (no comment lines: ``#take1.mp4`` is a path)."""
    from ..inference import VideoInput

    videos = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.rstrip("\r\n").split("\t")
            if not line.strip():
                continue
            try:
                if len(fields) == 1:
                    videos.append(VideoInput(fields[0]))
                elif len(fields) == 3:
                    videos.append(VideoInput(fields[0], *parse_time_range(fields[1], fields[2])))
                else:
                    raise ValueError(f"expected 1 or 3 tab-separated fields, got {len(fields)}")
            except ValueError as e:
                raise ValueError(f"{path} line {n}: {e} (format: path[<TAB>start<TAB>end])") from e
    return videos


def collect_inputs(args) -> List["VideoInput"]:
    from ..inference import VideoInput

    videos = [VideoInput(v, args.start, args.end) for v in args.videos]
    if args.input_list:
        if args.start is not None:
            raise ValueError("--start/--end apply to videos on the command line; give ranges in --input-list")
        videos += read_input_list(args.input_list)
    if not videos:
        raise ValueError("no input: give video files / frame folders, or --input-list")
    return videos


def format_result(i: int, video: "VideoInput", result, fmt: str) -> str:
    from ..inference import Translation

    if fmt == "text":
        return result.hypothesis if isinstance(result, Translation) else ""
    record = {"id": i, "video": video.path, "start": video.start, "end": video.end}
    if isinstance(result, Translation):
        record.update(hypothesis=result.hypothesis, score=round(result.score, 4))
    else:
        record.update(hypothesis=None, error=str(result))
    return json.dumps(record, ensure_ascii=False)


def run(args) -> int:
    """Translate every input; returns the number of inputs that failed (and were skipped)."""
    from ..inference import SignTranslator

    videos = collect_inputs(args)
    translator = SignTranslator.from_checkpoint(
        args.path, data=args.data, beam=args.beam, max_len_a=args.max_len_a, max_len_b=args.max_len_b,
        lenpen=args.lenpen, device=args.device, fps=args.fps, precision=args.precision,
        pack_weights=not args.no_packed_weights, allow_video_settings_change=args.allow_video_settings_change,
    )
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    failed = 0
    try:
        bar = tqdm(total=len(videos), unit="video", disable=args.no_progress_bar or len(videos) < 2)
        for start in range(0, len(videos), args.batch_size):
            batch = videos[start: start + args.batch_size]
            try:
                results = translator.translate_batch(batch)
            except VideoReadError:
                results = []
                for v in batch:  # find which input failed
                    try:
                        results.append(translator.translate_batch([v])[0])
                    except VideoReadError as e:
                        if not args.skip_bad_videos:
                            raise
                        logger.warning(f"skipping {v.path}: {e}")
                        results.append(e)
                        failed += 1
            for i, (video, result) in enumerate(zip(batch, results), start):
                print(format_result(i, video, result, args.format), file=out, flush=True)
            bar.update(len(batch))
        bar.close()
    finally:
        if out is not sys.stdout:
            out.close()
    if failed:
        logger.warning(f"{failed} of {len(videos)} inputs could not be read and were skipped")
    if failed == len(videos):
        raise VideoReadError(f"none of the {len(videos)} inputs could be read (each is reported above)")
    return failed


def positive_int(value: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}")
    return n


def seconds(value: str) -> float:
    """An argparse type: a time in seconds, plain digits (``12.5``)."""
    try:
        return parse_seconds(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="*", help="video files (mp4, ...) and/or frame folders")
    p.add_argument("--path", required=True, help="checkpoint of stage 1 (slt_lightt) or stage 2 (slt_mbart)")
    p.add_argument("--data", help="data root (config.yaml, dictionary, tokenizer) if it moved since training")
    p.add_argument("--input-list", help="TSV of inputs: path[<TAB>start<TAB>end] per line; every line "
                   "that is not empty is an input (no comment lines)")
    p.add_argument("--start", type=seconds, help="start of the time range, seconds (with --end)")
    p.add_argument("--end", type=seconds, help="end of the time range, seconds (exclusive)")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate of frame folders, for time ranges")
    p.add_argument("--beam", type=positive_int, default=paper_value("BEAM"), help="beam size (>= 1; default: the paper's %(default)s)")
    p.add_argument("--max-len-a", type=float, default=0.0, help="max length = a * source frames + b")
    p.add_argument("--max-len-b", type=int, default=200, help="max length = a * source frames + b")
    p.add_argument("--lenpen", type=float, default=1.0, help="length penalty")
    p.add_argument("--batch-size", type=positive_int, default=1, help="videos per beam search (>= 1)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="autocast precision (bf16 on CPUs with AVX512-BF16/AMX or GPUs; fp16 on GPUs)")
    p.add_argument("--no-packed-weights", action="store_true",
                   help="on CPU in fp32, keep the decoder's weights as they are instead of adding oneDNN pre-packed "
                        "copies (faster beam search; mBART-large's decoder: about 0.8 GB more memory)")
    p.add_argument("--format", choices=("text", "jsonl"), default="text", help="output format")
    p.add_argument("--output", help="output file (default: stdout)")
    p.add_argument("--skip-bad-videos", action="store_true",
                   help="report unreadable inputs and go on (an error when none could be read)")
    p.add_argument("--allow-video-settings-change", action="store_true",
                   help="translate, with a warning, where the data root's config.yaml gives other video settings "
                        "(video.resize, video.crop, video.keep_ratio, video.max_frames, normalisation) than the "
                        "checkpoint was trained with, or the checkpoint does not record them all; default: stop with an "
                        "error naming them")
    p.add_argument("--no-progress-bar", action="store_true", help="no progress bar on stderr")
    return p


def cli_main():
    setup_logging()
    args = get_parser().parse_args()
    try:
        run(args)
    except (ValueError, FileNotFoundError, VideoReadError) as e:
        sys.exit(f"fairseq-slt-translate: error: {e}")


if __name__ == "__main__":
    cli_main()
