"""Pre-train a small mBART on target-language text, in the layout of fairseq's mbart.cc25 archive.

    fairseq-slt-build-mbart --text data/train.txt --lang en_XX --out runs/mbart.tiny

The paper's stage 2 starts from mBART-large-cc25, which knows the target language. For the demo
and the tests (no downloads), this command builds a small mBART the same way, with fairseq's own
tools: a sentencepiece model, ``fairseq-preprocess``, then ``fairseq-train --task
multilingual_denoising --arch mbart_base`` (span masking with Poisson(3.5) spans, 30% of words,
as mBART) with small sizes. It writes ``model.pt``, ``dict.txt`` and ``sentence.bpe.model``; the
model's dictionary is ``dict.txt`` + ``[<lang>]`` + ``<mask>``, as in mbart.cc25, so stage 2 uses
it with ``--langs <lang>``. ``model.pt`` holds the weights and config (no training state) and the
checksum of ``dict.txt``, which stage 2 checks. The log names each of the three steps and, about
20 times during fairseq-train, the updates done, the rate and the ETA.
"""

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile

import sentencepiece as sp

from ..data.vocab import train_sentencepiece, write_fairseq_dict
from ..logging_utils import setup_logging
from ..mbart import save_state, weights_and_args_state

logger = logging.getLogger(__name__)


def _bin(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


STEPS = 3  # sentencepiece, fairseq-preprocess, fairseq-train


def _step(n: int, what: str) -> None:
    logger.info(f"step {n}/{STEPS}: {what}")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_line(done: int, total: int, elapsed: float, rate: float) -> str:
    """``denoising: 150/600 updates (25%), 0:00:30 elapsed, 5.00 updates/s, ETA 0:01:30``."""
    eta = _clock((total - done) / rate) if rate > 0 else "unknown"
    return (
        f"denoising: {done}/{total} updates ({100 * done // max(total, 1)}%), {_clock(elapsed)} elapsed, "
        f"{rate:.2f} updates/s, ETA {eta}"
    )


def _run(cmd, updates: int = 0) -> None:
    """Run a fairseq console script, reading its output line by line (its last lines are the
    error when it fails). ``updates``: the run's ``--max-update``; each of fairseq's log lines
    (``num_updates=N``) is then logged as :func:`progress_line`, the ETA from the rate since the
    first one (which excludes fairseq's start-up)."""
    import collections
    import re
    import time

    logger.info(" ".join(str(c) for c in cmd))
    start, first, last = time.monotonic(), None, 0
    tail = collections.deque(maxlen=80)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env) as proc:
        for line in proc.stdout:
            tail.append(line)
            match = re.search(r"num_updates=(\d+)", line) if updates else None
            if not match or int(match.group(1)) <= last:  # the epoch's summary repeats the count
                continue
            now, last = time.monotonic(), int(match.group(1))
            if first is None:
                first, rate = (now, last), last / max(now - start, 1e-6)
            else:
                rate = (last - first[1]) / max(now - first[0], 1e-6)
            logger.info(progress_line(last, updates, now - start, rate))
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed (exit status {proc.returncode}):\n{''.join(tail)[-4000:]}")


def log_interval(updates: int) -> int:
    """fairseq-train's ``--log-interval``: about 20 progress lines per run."""
    return max(1, updates // 20)


def build(args) -> None:
    import time

    start = time.monotonic()
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        text = os.path.join(work, "text.txt")
        with open(text, "w", encoding="utf-8") as f:
            for path in args.text:
                with open(path, encoding="utf-8") as g:
                    f.writelines(line for line in g if line.strip())
        with open(text, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
        _step(1, f"sentencepiece model (bpe, vocabulary {args.vocab_size}) of {len(lines)} sentences")
        prefix = os.path.join(work, "spm")
        spm_model = train_sentencepiece(lines, prefix, args.vocab_size, model_type="bpe")
        write_fairseq_dict(spm_model, os.path.join(work, "dict.txt"))
        model = sp.SentencePieceProcessor(model_file=spm_model)
        pieces_path = os.path.join(work, "train.spm")
        with open(pieces_path, "w", encoding="utf-8") as g:
            for line in lines:
                g.write(" ".join(model.encode(line, out_type=str)) + "\n")

        data = os.path.join(work, "bin")
        _step(2, "fairseq-preprocess (binarize the text)")
        _run([
            _bin("fairseq-preprocess"), "--only-source", "--trainpref", pieces_path,
            "--validpref", pieces_path, "--srcdict", os.path.join(work, "dict.txt"),
            "--destdir", os.path.join(data, args.lang), "--workers", "1",
        ])
        shutil.copyfile(os.path.join(work, "dict.txt"), os.path.join(data, "dict.txt"))
        save_dir = os.path.join(work, "ckpt")
        _step(3, f"fairseq-train --task multilingual_denoising, {args.updates} updates (progress every "
                 f"{log_interval(args.updates)})")
        _run([
            _bin("fairseq-train"), data, "--task", "multilingual_denoising", "--langs", args.lang,
            "--add-lang-token", "--arch", "mbart_base",
            "--encoder-layers", args.layers, "--decoder-layers", args.layers,
            "--encoder-embed-dim", args.dim, "--decoder-embed-dim", args.dim,
            "--encoder-ffn-embed-dim", 4 * args.dim, "--decoder-ffn-embed-dim", 4 * args.dim,
            "--encoder-attention-heads", args.heads, "--decoder-attention-heads", args.heads,
            "--encoder-normalize-before", "--decoder-normalize-before",
            "--mask", "0.3", "--mask-random", "0.1", "--mask-length", "span-poisson",
            "--poisson-lambda", "3.5", "--replace-length", "1", "--permute-sentences", "0",
            "--rotate", "0", "--sample-break-mode", "eos", "--tokens-per-sample", "128",
            "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
            "--optimizer", "adam", "--lr", "1e-3", "--lr-scheduler", "inverse_sqrt",
            "--warmup-updates", "100", "--max-tokens", "2048", "--max-update", args.updates,
            "--dropout", "0.1", "--seed", args.seed, "--save-dir", save_dir,
            "--no-epoch-checkpoints", "--disable-validation", "--num-workers", "0",
            "--save-interval-updates", args.updates, "--no-progress-bar", "--log-format", "simple",
            "--log-interval", log_interval(args.updates),
        ], updates=args.updates)
        out_dict = os.path.join(args.out, "dict.txt")
        shutil.copyfile(os.path.join(work, "dict.txt"), out_dict)
        shutil.copyfile(prefix + ".model", os.path.join(args.out, "sentence.bpe.model"))
        # the weights and config only, stamped with dict.txt's checksum (see fairseq_slt.mbart)
        from ..checkpoints import load_checkpoint_state  # torch: only after the command-line tools ran

        state = load_checkpoint_state(os.path.join(save_dir, "checkpoint_last.pt"))
        mbart = weights_and_args_state(state["model"], state.get("args"), state.get("cfg"), out_dict)
        save_state(mbart, os.path.join(args.out, "model.pt"))
    logger.info(
        f"small mBART ({args.layers}+{args.layers} layers, d={args.dim}, langs {args.lang}) -> {args.out} "
        f"in {_clock(time.monotonic() - start)}"
    )


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", action="append", required=True, help="target-language text, one sentence a line")
    p.add_argument("--lang", default="en_XX", help="mBART language code of the text")
    p.add_argument("--out", required=True, help="directory to write model.pt, dict.txt, sentence.bpe.model")
    p.add_argument("--vocab-size", type=int, default=200, help="sentencepiece vocabulary (soft limit)")
    p.add_argument("--layers", type=int, default=2, help="encoder and decoder layers")
    p.add_argument("--dim", type=int, default=128, help="model width")
    p.add_argument("--heads", type=int, default=4, help="attention heads")
    p.add_argument("--updates", type=int, default=600, help="denoising updates")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    return p


def cli_main() -> None:
    setup_logging()
    build(get_parser().parse_args())


if __name__ == "__main__":
    cli_main()
