"""Plot fairseq training logs: training curves and the FLa-LLM Figure-2 gradient/parameter norms.

    fairseq-slt-plot curves train.log [joint.log ...] [--metric loss --metric valid_bleu] --out curves.png
    fairseq-slt-plot norms factorized.log joint.log --label factorized --label joint --out norms.png

Each LOG is either

* a text log of ``fairseq-train --log-format json``: its stdout (lines such as
  ``2026-01-01 12:00:00 | INFO | train_inner | {"epoch": 1, "update": 0.5, "loss": "6.2", ...}``)
  or its ``--log-file`` (the same JSON records without the ``| INFO | tag |`` prefix; a record
  repeated for the same update, as a resumed run writes, replaces the earlier one), or
* a ``--tensorboard-logdir`` folder (sub-folders ``train_inner``, ``train`` and one per validation
  subset; needs ``pip install tensorboard``), or one of those sub-folders.

Metric names are the keys fairseq prints: ``loss``, ``gnorm``, ``lr`` ... for the records of every
``--log-interval`` updates (``train_inner``), ``train_loss`` ... for the end-of-epoch averages and
``<subset>_loss``, ``<subset>_bleu`` ... for validation (``dev_loss`` with ``--valid-subset dev``).
``valid_X`` also finds ``<subset>_X`` when the run has one validation subset of another name.
The x axis is the update number (``num_updates``), never fairseq's fractional-epoch ``update``.

``norms`` draws the paper's Figure 2: the gradient norm (left) and parameter norm (right) of the
last visual-encoder layer and of the last LLM layer against the update, log-scale y, one line per
layer and run. The keys default to ``gnorm_visual_last``, ``gnorm_llm_last``,
``pnorm_visual_last`` and ``pnorm_llm_last``; they may be logged only every few updates, so
records without them are skipped.
"""

import argparse
import json
import logging
import math
import os
import re
import sys
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..logging_utils import setup_logging

logger = logging.getLogger("fairseq_slt.cli.plot")

# a run: metric key -> (update, value) pairs sorted by update
Series = List[Tuple[int, float]]
Run = Dict[str, Series]

TRAIN_INNER = "train_inner"
DEFAULT_CURVES = ("loss", "valid_loss", "valid_bleu")
NORM_KEYS = OrderedDict(
    [
        ("gnorm_visual", "gnorm_visual_last"),
        ("gnorm_llm", "gnorm_llm_last"),
        ("pnorm_visual", "pnorm_visual_last"),
        ("pnorm_llm", "pnorm_llm_last"),
    ]
)
TB_EVENTS = "events.out.tfevents"
# "<date> <time> | INFO | <tag> | {json}" as fairseq_cli.train's logging.basicConfig formats it
TAGGED_LINE = re.compile(r"\|\s*(?P<tag>[^|\s]+)\s*\|\s*(?P<json>\{.*\})\s*$")


class LogError(ValueError):
    """A log that cannot be read or lacks what was asked for; the message names the file."""


# --------------------------------------------------------------------------- reading


def to_float(value) -> Optional[float]:
    """A logged value as a float (fairseq formats most as strings); None if not a scalar."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def tag_key(tag: str, key: str) -> str:
    """A key as fairseq's JSON log names it: bare for train_inner, ``<tag>_<key>`` otherwise."""
    return key if tag == TRAIN_INNER else f"{tag}_{key}"


def record_tag(record: dict) -> Optional[str]:
    """The tag of an untagged JSON record (``--log-file`` lines): train_inner, train or a subset.

    ``train_inner`` records carry a bare ``num_updates``; end-of-epoch and validation records
    prefix every key with their tag (``train_num_updates``, ``dev_num_updates``).
    """
    if "num_updates" in record:
        return TRAIN_INNER
    for key in record:
        if key.endswith("_num_updates"):
            return key[: -len("_num_updates")]
    return None


def record_to_points(record: dict, tag: str) -> Optional[Tuple[int, Dict[str, float]]]:
    """``(update, {key: value})`` of one JSON record, keys named as fairseq prints them."""
    prefix = "" if tag == TRAIN_INNER else tag + "_"
    step = to_float(record.get(prefix + "num_updates"))
    if step is None:
        return None
    values = {}
    for key, value in record.items():
        if key in ("epoch", "update"):
            continue
        if prefix and not key.startswith(prefix):
            continue
        v = to_float(value)
        if v is not None:
            values[key] = v
    return int(step), values


def parse_json_lines(lines: Iterable[str]) -> Dict[str, Dict[int, Dict[str, float]]]:
    """Records of a fairseq JSON log by tag and update; a later record for the same
    (tag, update) replaces an earlier one (a resumed run repeats the updates after its last save)."""
    records: Dict[str, Dict[int, Dict[str, float]]] = {}
    for line in lines:
        line = line.strip()
        if not line.endswith("}"):
            continue
        m = TAGGED_LINE.search(line)
        text, tag = (m.group("json"), m.group("tag")) if m else (line, None)
        if not text.startswith("{"):
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            continue  # e.g. fairseq's printed config (a Python dict repr)
        if not isinstance(record, dict):
            continue
        tag = tag or record_tag(record)
        if tag is None:
            continue
        points = record_to_points(record, tag)
        if points is not None:
            records.setdefault(tag, {})[points[0]] = points[1]
    return records


def records_to_run(records: Dict[str, Dict[int, Dict[str, float]]]) -> Run:
    """Flatten ``{tag: {update: {key: value}}}`` into ``{key: [(update, value), ...]}``."""
    run: Run = {}
    for tag in records:
        for step in sorted(records[tag]):
            for key, value in records[tag][step].items():
                run.setdefault(key, []).append((step, value))
    return run


def read_json_log(path: str) -> Run:
    """Read a ``fairseq-train --log-format json`` stdout log or ``--log-file``."""
    with open(path, encoding="utf-8", errors="replace") as f:
        records = parse_json_lines(f)
    if not records:
        raise LogError(
            f"{path}: no fairseq JSON log records (lines like "
            f"'| INFO | train_inner | {{\"epoch\": 1, ...}}'); train with --log-format json"
        )
    return records_to_run(records)


def tensorboard_tag_dirs(path: str) -> Dict[str, str]:
    """``{tag: folder}`` of a ``--tensorboard-logdir`` (or of one of its tag folders)."""
    def has_events(d):
        return any(name.startswith(TB_EVENTS) for name in os.listdir(d))

    if has_events(path):
        return {os.path.basename(os.path.normpath(path)): path}
    dirs = {}
    for name in sorted(os.listdir(path)):
        sub = os.path.join(path, name)
        if os.path.isdir(sub) and has_events(sub):
            dirs[name] = sub
    return dirs


def read_tensorboard(path: str) -> Run:
    """Read a fairseq ``--tensorboard-logdir``: scalars of ``train_inner`` keep their names,
    those of ``train`` and of validation subset ``S`` become ``train_<key>`` and ``S_<key>``."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        raise LogError(
            f"{path} is a tensorboard log folder; reading it needs tensorboard: "
            f"pip install tensorboard (or pip install 'fairseq-slt[plot]')"
        )
    tag_dirs = tensorboard_tag_dirs(path)
    if not tag_dirs:
        raise LogError(
            f"{path}: no tensorboard event files ({TB_EVENTS}.*) in it or in its sub-folders "
            f"(train_inner, train, <valid subset>); pass fairseq-train's --tensorboard-logdir"
        )
    run: Run = {}
    for tag, folder in tag_dirs.items():
        acc = EventAccumulator(folder, size_guidance={"scalars": 0})
        acc.Reload()
        steps = set()
        for name in acc.Tags().get("scalars", []):
            by_step = {int(e.step): float(e.value) for e in acc.Scalars(name)}  # last one wins
            run[tag_key(tag, name)] = sorted(by_step.items())
            steps.update(by_step)
        run[tag_key(tag, "num_updates")] = [(s, float(s)) for s in sorted(steps)]
    return run


def read_log(path: str) -> Run:
    """A run from a JSON text log or a tensorboard log folder."""
    if not os.path.exists(path):
        raise LogError(f"{path}: no such file or folder")
    if os.path.isdir(path):
        return read_tensorboard(path)
    return read_json_log(path)


def valid_subsets(run: Run) -> List[str]:
    """Validation subset names of a run: the tags of its ``<tag>_num_updates`` keys but train."""
    suffix = "_num_updates"
    return sorted({k[: -len(suffix)] for k in run if k.endswith(suffix)} - {"train"})


def resolve_metric(run: Run, metric: str) -> Optional[str]:
    """The run's key for ``metric``; ``valid_X`` falls back to ``<subset>_X`` of the run's only
    validation subset. None when the run did not log it."""
    if metric in run:
        return metric
    if metric.startswith("valid_"):
        subsets = valid_subsets(run)
        if len(subsets) == 1 and f"{subsets[0]}_{metric[len('valid_'):]}" in run:
            return f"{subsets[0]}_{metric[len('valid_'):]}"
    return None


def select_metrics(run: Run, metrics: Sequence[str], path: str) -> "OrderedDict[str, str]":
    """``{requested metric: run key}`` for the metrics the run has; error naming ``path`` if none."""
    found = OrderedDict()
    for metric in metrics:
        key = resolve_metric(run, metric)
        if key is not None and run[key]:
            found[metric] = key
    if not found:
        raise LogError(
            f"{path}: none of the metrics {', '.join(metrics)} is in this log "
            f"(it has: {', '.join(sorted(run)) or 'nothing'})"
        )
    missing = [m for m in metrics if m not in found]
    if missing:
        logger.info(f"{path}: no {', '.join(missing)}; plotting {', '.join(found.values())}")
    return found


# --------------------------------------------------------------------------- drawing


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("fairseq-slt-plot needs matplotlib: pip install matplotlib (or 'fairseq-slt[plot]')")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def run_labels(paths: Sequence[str], labels: Optional[Sequence[str]]) -> List[str]:
    """One label per log: the given ones, else the file (or folder) name."""
    if labels:
        if len(labels) != len(paths):
            raise LogError(f"{len(labels)} --label for {len(paths)} logs; give one per log or none")
        return list(labels)
    return [os.path.basename(os.path.normpath(p)) for p in paths]


def positive(series: Series) -> Series:
    """Points a log-scale axis can show."""
    return [(s, v) for s, v in series if v > 0 and math.isfinite(v)]


def plot_curves(runs: Sequence[Tuple[str, str, Run]], metrics: Sequence[str], out: str,
                log_y: bool = False, title: Optional[str] = None) -> List[str]:
    """One panel per metric against the update, runs overlaid; ``runs`` is ``(label, path, run)``.
    Returns the metrics drawn."""
    chosen = [(label, path, run, select_metrics(run, metrics, path)) for label, path, run in runs]
    drawn = [m for m in metrics if any(m in found for _, _, _, found in chosen)]
    plt = pyplot()
    fig, axes = plt.subplots(len(drawn), 1, figsize=(7, 3 * len(drawn)), sharex=True, squeeze=False)
    for ax, metric in zip(axes[:, 0], drawn):
        for label, _, run, found in chosen:
            if metric in found:
                series = run[found[metric]]
                if log_y:
                    series = positive(series)
                marker = "o" if len(series) < 30 else None
                ax.plot([s for s, _ in series], [v for _, v in series], marker=marker, ms=3,
                        label=f"{label} ({found[metric]})" if found[metric] != metric else label)
        ax.set_ylabel(metric)
        if log_y:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    axes[-1, 0].set_xlabel("update")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save(fig, out)
    plt.close(fig)
    return drawn


def plot_norms(runs: Sequence[Tuple[str, str, Run]], keys: Dict[str, str], out: str,
               title: Optional[str] = None) -> None:
    """FLa-LLM Figure 2: gradient norm and parameter norm of the last visual-encoder layer and the
    last LLM layer against the update (log-scale y), one line per layer and run."""
    panels = [("gradient norm", "gnorm"), ("parameter norm", "pnorm")]
    layers = [("visual", "last visual-encoder layer", "-"), ("llm", "last LLM layer", "--")]
    for label, path, run in runs:
        select_metrics(run, list(keys.values()), path)  # error if the run has none of them
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (name, kind) in zip(axes[0], panels):
        for r, (label, path, run) in enumerate(runs):
            for j, (layer, layer_name, style) in enumerate(layers):
                key = keys[f"{kind}_{layer}"]
                series = run.get(key, [])
                points = positive(series)
                if len(points) < len(series):
                    logger.info(f"{path}: {len(series) - len(points)} non-positive {key} values not drawn")
                if not points:
                    continue
                # one run: a colour per layer; several: a colour per run, a line style per layer
                color = colors[(j if len(runs) == 1 else r) % len(colors)]
                ax.plot([s for s, _ in points], [v for _, v in points], style, color=color,
                        label=f"{label}: {layer_name}" if len(runs) > 1 else layer_name)
        ax.set_yscale("log")
        ax.set_xlabel("update")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, f"no {kind}_* values", ha="center", va="center", transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save(fig, out)
    plt.close(fig)


def save(fig, out: str) -> None:
    folder = os.path.dirname(out)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(out, dpi=120)


# --------------------------------------------------------------------------- command line


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fairseq-slt-plot", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, default_out):
        sp.add_argument("logs", nargs="+", metavar="LOG",
                        help="fairseq-train JSON log (stdout or --log-file) or --tensorboard-logdir folder")
        sp.add_argument("--label", action="append", default=None,
                        help="legend name of a log, once per LOG in order (default: file names)")
        sp.add_argument("--out", default=default_out, help="PNG to write (default: %(default)s)")
        sp.add_argument("--title", default=None, help="figure title")

    c = sub.add_parser("curves", help="metrics against the update, runs overlaid")
    common(c, "curves.png")
    c.add_argument("--metric", action="append", default=None,
                   help="a logged key, repeatable: loss, gnorm, lr, train_loss, valid_loss, dev_bleu ... "
                        f"(default: {', '.join(DEFAULT_CURVES)}, those present)")
    c.add_argument("--log-y", action="store_true", help="log-scale y axis")

    n = sub.add_parser("norms", help="FLa-LLM Figure 2: grad and param norms of the last visual and LLM layers")
    common(n, "norms.png")
    for name, default in NORM_KEYS.items():
        n.add_argument(f"--{name.replace('_', '-')}-key", dest=f"{name}_key", default=default,
                       help="logged key (default: %(default)s)")
    return p


def main(args: argparse.Namespace) -> str:
    labels = run_labels(args.logs, args.label)
    runs = [(label, path, read_log(path)) for label, path in zip(labels, args.logs)]
    if args.command == "curves":
        metrics = args.metric or list(DEFAULT_CURVES)
        drawn = plot_curves(runs, metrics, args.out, log_y=args.log_y, title=args.title)
        return f"wrote {args.out}: {', '.join(drawn)} of {len(runs)} run(s)"
    keys = {name: getattr(args, f"{name}_key") for name in NORM_KEYS}
    plot_norms(runs, keys, args.out, title=args.title)
    return f"wrote {args.out}: gradient and parameter norms of {len(runs)} run(s)"


def cli_main(argv: Optional[Sequence[str]] = None) -> None:
    # force: importing fairseq may already have configured the root logger (at DEBUG)
    setup_logging()
    for noisy in ("matplotlib", "tensorboard", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = get_parser().parse_args(argv)
    try:
        print(main(args))
    except LogError as e:
        sys.exit(f"fairseq-slt-plot: error: {e}")


if __name__ == "__main__":
    cli_main()
