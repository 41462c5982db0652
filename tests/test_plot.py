"""fairseq-slt-plot: parsing fairseq JSON logs and tensorboard folders, drawing the PNGs."""

import importlib.util
import json
import struct

import pytest

from helpers import run_cli, stage1_train_cmd
from fairseq_slt.cli import plot

pytest.importorskip("matplotlib", reason="fairseq-slt-plot needs matplotlib (pip install matplotlib)")
HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_bytes=5000):
    """A real, non-trivial PNG: signature, IHDR with a plausible size, enough bytes."""
    data = open(path, "rb").read()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 300 and height >= 200, (width, height)
    assert len(data) > min_bytes, f"{path}: only {len(data)} bytes"


def fairseq_line(tag, record, stamp="2026-01-01 12:00:00"):
    """A record as fairseq-train's stdout prints it with --log-format json."""
    return f"{stamp} | INFO | {tag} | {json.dumps(record)}\n"


def inner(update, loss, **extra):
    """A train_inner record: values formatted as strings, fractional-epoch ``update``."""
    rec = {"epoch": 1, "update": round(update / 100, 3), "loss": f"{loss:.3f}", "nll_loss": "5.1",
           "ups": "2.5", "bsz": "8", "num_updates": str(update), "lr": "0.01", "gnorm": "1.5",
           "train_wall": "3", "wall": str(update)}
    rec.update({k: None if v is None else f"{v:g}" for k, v in extra.items()})
    return rec


def write_synthetic_log(path, norms=True, valid="dev", epochs=2, bleu=True):
    """A fairseq stdout log of ``epochs`` x 20 updates (log interval 5): train_inner records (norm
    values only on every second one, null on later ones in between, as fairseq prints a metric
    that was not logged in the interval), a validation record and the end-of-epoch train record."""
    lines = ["2026-01-01 12:00:00 | INFO | fairseq_cli.train | {'_name': None, 'common': {}}\n"]
    for epoch in range(1, epochs + 1):
        for update in range((epoch - 1) * 20 + 5, epoch * 20 + 1, 5):
            extra = {}
            if norms and update % 10 == 0:
                extra = dict(gnorm_visual_last=0.5 / update, gnorm_llm_last=0.05 / update,
                             pnorm_visual_last=10 + update / 100, pnorm_llm_last=30 + update / 100)
            elif norms and update > 10:
                # fairseq prints a metric logged on no update of the interval as null
                extra = dict.fromkeys(("gnorm_visual_last", "gnorm_llm_last", "pnorm_visual_last",
                                       "pnorm_llm_last"))
            lines.append(fairseq_line("train_inner", inner(update, 7 - update / 20, **extra)))
        v = {"epoch": epoch, f"{valid}_loss": f"{6.5 - epoch / 5:.3f}", f"{valid}_nll_loss": "5.0",
             f"{valid}_num_updates": str(epoch * 20)}
        if bleu:
            v[f"{valid}_bleu"] = f"{3.0 * epoch:.2f}"
        lines.append(fairseq_line(valid, v))
        lines.append(fairseq_line("train", {"epoch": epoch, "train_loss": f"{6.8 - epoch / 4:.3f}",
                                            "train_num_updates": str(epoch * 20), "train_wall": "40"}))
    path.write_text("".join(lines))
    return path


def test_parse_fairseq_stdout_log(tmp_path):
    run = plot.read_log(str(write_synthetic_log(tmp_path / "run.log")))
    # x is num_updates, not fairseq's fractional-epoch "update"
    assert [s for s, _ in run["loss"]] == list(range(5, 41, 5))
    assert run["loss"][0] == (5, pytest.approx(6.75))
    assert run["dev_loss"] == [(20, pytest.approx(6.3)), (40, pytest.approx(6.1))]
    assert run["dev_bleu"] == [(20, 3.0), (40, 6.0)]
    assert run["train_loss"] == [(20, pytest.approx(6.55)), (40, pytest.approx(6.3))]
    # the norm keys appear only on every second train_inner record
    assert [s for s, _ in run["gnorm_visual_last"]] == [10, 20, 30, 40]
    assert plot.valid_subsets(run) == ["dev"]
    assert plot.resolve_metric(run, "valid_bleu") == "dev_bleu"
    assert plot.resolve_metric(run, "valid_wer") is None


def test_parse_log_file_without_tags_drops_duplicates(tmp_path):
    """--log-file lines are bare JSON, and fairseq alone writes each one once more per epoch (logs
    written without the plugin's fix, :func:`fairseq_slt.patches.open_progress_log_file_once`)."""
    stdout = write_synthetic_log(tmp_path / "stdout.log").read_text().splitlines()
    bare = []
    for line in stdout:
        if "{\"" in line:
            record = line.split(" | ", 3)[3]
            bare += [record, record]  # duplicated as fairseq alone does from epoch 2 on
        else:
            bare.append(line.split(" | ", 3)[3])
    (tmp_path / "file.log").write_text("\n".join(bare) + "\n")
    from_file = plot.read_log(str(tmp_path / "file.log"))
    from_stdout = plot.read_log(str(tmp_path / "stdout.log"))
    assert from_file == from_stdout


def test_resumed_run_keeps_the_later_record(tmp_path):
    log = tmp_path / "resumed.log"
    log.write_text(fairseq_line("train_inner", inner(5, 6.0)) + fairseq_line("train_inner", inner(10, 5.0))
                   + fairseq_line("train_inner", inner(10, 4.0)) + fairseq_line("train_inner", inner(15, 3.5)))
    assert plot.read_log(str(log))["loss"] == [(5, 6.0), (10, 4.0), (15, 3.5)]


@pytest.fixture
def drawn(monkeypatch):
    """The figures fairseq-slt-plot saves (still written), by output path."""
    figures, save = {}, plot.save

    def keep(fig, out):
        save(fig, out)
        figures[out] = fig

    monkeypatch.setattr(plot, "save", keep)
    return figures


def lines_of(fig):
    """Every line drawn: {(panel title or y label, legend label): [(update, value), ...]}."""
    return {(ax.get_title() or ax.get_ylabel(), line.get_label()):
            [(int(x), float(y)) for x, y in zip(line.get_xdata(), line.get_ydata())]
            for ax in fig.axes for line in ax.lines}


def test_curves_and_norms_draw_the_logged_series(tmp_path, drawn):
    a = write_synthetic_log(tmp_path / "factorized.log", valid="valid")
    b = write_synthetic_log(tmp_path / "joint.log", epochs=3)
    run_a, run_b = plot.read_log(str(a)), plot.read_log(str(b))
    out = tmp_path / "curves.png"
    plot.cli_main(["curves", str(a), str(b), "--label", "factorized", "--label", "joint", "--out", str(out)])
    assert_png(out)
    # one panel per default metric, each run's series as logged; "valid_*" found as dev_* in the joint run
    assert lines_of(drawn[str(out)]) == {
        ("loss", "factorized"): run_a["loss"], ("loss", "joint"): run_b["loss"],
        ("valid_loss", "factorized"): run_a["valid_loss"], ("valid_loss", "joint (dev_loss)"): run_b["dev_loss"],
        ("valid_bleu", "factorized"): run_a["valid_bleu"], ("valid_bleu", "joint (dev_bleu)"): run_b["dev_bleu"],
    }
    out = tmp_path / "norms" / "norms.png"
    plot.cli_main(["norms", str(a), str(b), "--label", "factorized", "--label", "joint", "--out", str(out),
                   "--title", "last layers"])
    assert_png(out)
    lines = lines_of(drawn[str(out)])
    assert len(lines) == 8  # 2 panels x 2 layers x 2 runs
    assert lines["gradient norm", "joint: last visual-encoder layer"] == run_b["gnorm_visual_last"]
    assert lines["parameter norm", "factorized: last LLM layer"] == run_a["pnorm_llm_last"]
    assert [s for s, _ in lines["gradient norm", "joint: last LLM layer"]] == [10, 20, 30, 40, 50, 60]


def test_norm_key_options(tmp_path, drawn):
    log = tmp_path / "renamed.log"
    log.write_text("".join(fairseq_line("train_inner", inner(u, 5.0, gv=1.0 / u, gl=0.1 / u, pv=2.0, pl=3.0))
                           for u in (10, 20, 30)))
    out = tmp_path / "norms.png"
    plot.cli_main(["norms", str(log), "--gnorm-visual-key", "gv", "--gnorm-llm-key", "gl",
                   "--pnorm-visual-key", "pv", "--pnorm-llm-key", "pl", "--out", str(out)])
    assert_png(out)
    run = plot.read_log(str(log))
    assert [v for _, v in run["gv"]] == pytest.approx([0.1, 0.05, 1 / 30], rel=1e-5)
    assert lines_of(drawn[str(out)]) == {
        ("gradient norm", "last visual-encoder layer"): run["gv"],
        ("gradient norm", "last LLM layer"): run["gl"],
        ("parameter norm", "last visual-encoder layer"): run["pv"],
        ("parameter norm", "last LLM layer"): run["pl"],
    }


def test_errors_name_the_file(tmp_path, capsys):
    no_norms = write_synthetic_log(tmp_path / "no_norms.log", norms=False)
    with pytest.raises(SystemExit) as e:
        plot.cli_main(["norms", str(no_norms), "--out", str(tmp_path / "n.png")])
    assert "no_norms.log" in str(e.value) and "gnorm_visual_last" in str(e.value)
    with pytest.raises(SystemExit) as e:
        plot.cli_main(["curves", str(no_norms), "--metric", "wer", "--out", str(tmp_path / "c.png")])
    assert "no_norms.log: none of the metrics wer" in str(e.value)
    simple = tmp_path / "simple.log"
    simple.write_text("2026-01-01 12:00:00 | INFO | train_inner | epoch 001:  5 / 20 loss=6.2, ups=2\n")
    with pytest.raises(SystemExit) as e:
        plot.cli_main(["curves", str(simple), "--out", str(tmp_path / "c.png")])
    assert "simple.log: no fairseq JSON log records" in str(e.value) and "--log-format json" in str(e.value)
    with pytest.raises(SystemExit) as e:
        plot.cli_main(["curves", str(tmp_path / "missing.log")])
    assert "missing.log: no such file" in str(e.value)
    with pytest.raises(SystemExit) as e:
        plot.cli_main(["curves", str(no_norms), "--label", "a", "--label", "b"])
    assert "2 --label for 1 logs" in str(e.value)
    assert not (tmp_path / "n.png").exists() and not (tmp_path / "c.png").exists()


@pytest.fixture(scope="module")
def json_run(tiny_corpus, tmp_path_factory):
    """A 3-update (2-epoch) stage-1 fairseq-train run logged as JSON: stdout, --log-file and (when
    tensorboard is installed) --tensorboard-logdir; the last-layer norms every 2 updates."""
    out = tmp_path_factory.mktemp("plot_run")
    cmd = stage1_train_cmd(tiny_corpus, out / "ckpt", 3) + [
        "--log-format", "json", "--log-file", out / "train.log", "--no-save", "--log-norms-interval", "2",
    ]
    if HAS_TENSORBOARD:
        cmd += ["--tensorboard-logdir", out / "tb"]
    (out / "stdout.log").write_text(run_cli(cmd))
    return out


@pytest.mark.slow
def test_real_fairseq_train_log(json_run, tmp_path, capsys):
    for name in ("stdout.log", "train.log"):
        run = plot.read_log(str(json_run / name))
        assert [s for s, _ in run["loss"]] == [1, 2, 3], name
        assert plot.valid_subsets(run) == ["dev"]
        assert run["dev_loss"] and run["train_loss"] and run["gnorm"]
    assert plot.read_log(str(json_run / "stdout.log")) == plot.read_log(str(json_run / "train.log"))
    # each json line once in --log-file (fairseq alone wrote epoch 2's twice: open_progress_log_file_once)
    records = [line for line in (json_run / "train.log").read_text().splitlines() if line.startswith("{")]
    stdout_records = [line for line in (json_run / "stdout.log").read_text().splitlines() if "| {" in line]
    assert len(records) == len(set(records)) == len(stdout_records) > 0
    out = tmp_path / "curves.png"
    plot.cli_main(["curves", str(json_run / "stdout.log"), str(json_run / "train.log"), "--label", "stdout",
                   "--label", "log-file", "--metric", "loss", "--metric", "valid_loss", "--metric", "lr",
                   "--out", str(out)])
    assert "wrote" in capsys.readouterr().out
    assert_png(out)
    # --log-norms-interval 2: norms on updates 1 and 3, null in the records in between
    run = plot.read_log(str(json_run / "train.log"))
    for key in plot.NORM_KEYS.values():
        assert [s for s, _ in run[key]] == [1, 3], key
    out = tmp_path / "norms.png"
    plot.cli_main(["norms", str(json_run / "stdout.log"), "--out", str(out)])
    assert_png(out)


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="tensorboard not installed (pip install tensorboard)")
@pytest.mark.slow
def test_real_fairseq_tensorboard_logdir(json_run):
    run = plot.read_log(str(json_run / "tb"))
    from_json = plot.read_log(str(json_run / "stdout.log"))
    assert [s for s, _ in run["loss"]] == [1, 2, 3]
    # tensorboard holds float32 values of the numbers the JSON log prints with 3 decimals
    for key in ("loss", "dev_loss", "train_loss"):
        assert [s for s, _ in run[key]] == [s for s, _ in from_json[key]], key
        assert [v for _, v in run[key]] == pytest.approx([v for _, v in from_json[key]], abs=1e-3)
    # one tag folder alone
    assert sorted(plot.read_log(str(json_run / "tb" / "dev"))) == sorted(k for k in run if k.startswith("dev_"))


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="tensorboard not installed (pip install tensorboard)")
def test_tensorboard_norms(tmp_path, drawn):
    from torch.utils.tensorboard import SummaryWriter

    for name, scale in (("factorized", 1.0), ("joint", 10.0)):
        writer = SummaryWriter(str(tmp_path / name / "train_inner"))
        for step in range(1, 31):
            writer.add_scalar("loss", 6 - step / 10, step)
            if step % 5 == 0:
                writer.add_scalar("gnorm_visual_last", scale / step, step)
                writer.add_scalar("gnorm_llm_last", 0.1 / step, step)
                writer.add_scalar("pnorm_visual_last", 10 + step / 30, step)
                writer.add_scalar("pnorm_llm_last", 40.0, step)
        writer.close()
        writer = SummaryWriter(str(tmp_path / name / "valid"))
        writer.add_scalar("loss", 5.5, 30)
        writer.close()
    run = plot.read_log(str(tmp_path / "joint"))
    assert [s for s, _ in run["gnorm_visual_last"]] == [5, 10, 15, 20, 25, 30]
    assert run["valid_loss"] == [(30, 5.5)]
    out = tmp_path / "norms.png"
    plot.cli_main(["norms", str(tmp_path / "factorized"), str(tmp_path / "joint"), "--out", str(out)])
    assert_png(out)
    lines = lines_of(drawn[str(out)])
    assert lines["gradient norm", "joint: last visual-encoder layer"] == run["gnorm_visual_last"]
    assert len(lines) == 8
    out = tmp_path / "curves.png"
    plot.cli_main(["curves", str(tmp_path / "factorized"), str(tmp_path / "joint"), "--out", str(out)])
    assert_png(out)


def test_tensorboard_missing_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("tensorboard"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    (tmp_path / "tb" / "train_inner").mkdir(parents=True)
    with pytest.raises(plot.LogError, match="pip install tensorboard"):
        plot.read_log(str(tmp_path / "tb"))
