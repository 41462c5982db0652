"""The console scripts' logging: third-party loggers (PIL, ...) stay at WARNING.

Left alone, PIL logs about three DEBUG lines per png frame it opens, which
fairseq-slt-cache-features would print.
"""

import os
import shutil
import subprocess
import sys

import pytest

from helpers import BIN_DIR


def frame_folder_root(tiny_corpus, out):
    """The tiny corpus's test split as frame folders: even rows png, odd rows jpg."""
    from PIL import Image

    out.mkdir()
    rows = [line.split("\t") for line in (tiny_corpus / "test.tsv").read_text().splitlines()[1:]]
    lines = ["id\tvideo\tn_frames\ttgt_text"]
    for i, row in enumerate(rows):
        src, dst = tiny_corpus / "frames" / "test" / row[0], out / "frames" / row[0]
        dst.mkdir(parents=True)
        files = sorted(os.listdir(src))
        for name in files:
            if i % 2:
                Image.open(src / name).convert("RGB").save(dst / (os.path.splitext(name)[0] + ".jpg"), quality=90)
            else:
                shutil.copy(src / name, dst / name)
        lines.append(f"{row[0]}\tframes/{row[0]}\t{len(files)}\t{row[3]}")
    (out / "test.tsv").write_text("\n".join(lines) + "\n")
    config = (tiny_corpus / "config.yaml").read_text()
    for name in ("dict.txt", "spm.model"):
        config = config.replace(f": {name}", f": {tiny_corpus / name}")
    (out / "config.yaml").write_text(config)
    return out


def test_setup_logging_keeps_pil_at_warning_even_at_debug(tiny_corpus):
    folder = tiny_corpus / "frames" / "test" / "test_00000"
    code = (
        "import glob, logging, sys\n"
        "from PIL import Image\n"
        "from fairseq_slt.logging_utils import setup_logging\n"
        "setup_logging()\n"
        "if sys.argv[1] == 'all': logging.getLogger('PIL').setLevel(logging.DEBUG)\n"
        f"[Image.open(f).load() for f in sorted(glob.glob({str(folder)!r} + '/*'))[:5]]\n"
    )
    env = dict(os.environ, LOGLEVEL="DEBUG", OMP_NUM_THREADS="1")
    quiet = subprocess.run([sys.executable, "-c", code, "quiet"], capture_output=True, text=True, env=env)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "| PIL." not in quiet.stderr
    asked = subprocess.run([sys.executable, "-c", code, "all"], capture_output=True, text=True, env=env)
    assert "| DEBUG | PIL.PngImagePlugin |" in asked.stderr  # what the test would see without the fix


@pytest.mark.slow
@pytest.mark.parametrize("loglevel", [None, "DEBUG"])
def test_cache_features_over_png_and_jpg_frame_folders_prints_no_pil_line(tiny_corpus, stage1_run, tmp_path,
                                                                          loglevel):
    root = frame_folder_root(tiny_corpus, tmp_path / "frames_root")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("LOGLEVEL", None)
    if loglevel:
        env["LOGLEVEL"] = loglevel
    proc = subprocess.run([
        os.path.join(BIN_DIR, "fairseq-slt-cache-features"), str(root), "--stage1-checkpoint",
        str(stage1_run[0] / "checkpoint_last.pt"), "--splits", "test", "--out", "features", "--no-progress-bar",
    ], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test: 5 videos, 1 evaluation view" in proc.stderr
    assert sorted({p.suffix for p in (root / "frames").rglob("*.*")}) == [".jpg", ".png"]
    assert "PIL" not in proc.stdout + proc.stderr
    assert len(proc.stderr.splitlines()) < 40


@pytest.mark.parametrize("loglevel,root_level", [(None, "INFO"), ("DEBUG", "DEBUG")])
def test_importing_the_plugin_undoes_fairseqs_debug_root_logger(loglevel, root_level):
    """fairseq's wav2vec2_classification module sets the root logger to DEBUG at import, which
    let fairseq-generate print 2 PIL lines per png frame; importing the plugin undoes it."""
    code = ("import logging, fairseq.models, fairseq_slt; "
            "print(logging.getLevelName(logging.getLogger().level), "
            "logging.getLevelName(logging.getLogger('PIL').getEffectiveLevel()))")
    env = {k: v for k, v in os.environ.items() if k != "LOGLEVEL"}
    if loglevel:
        env["LOGLEVEL"] = loglevel
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [root_level, "WARNING"]


def test_progress_bar_opens_the_log_file_once(tmp_path):
    """fairseq's progress_bar adds a FileHandler for --log-file per call (per epoch), so epoch N
    wrote each line N times; with the plugin loaded, each line is written once."""
    import fairseq_slt  # noqa: F401  (registered by the conftest: the patch wraps progress_bar)
    from fairseq.logging import progress_bar

    log_file = tmp_path / "train.log"
    before = list(progress_bar.logger.handlers)
    try:
        for epoch in (1, 2, 3):  # fairseq-train calls progress_bar once per epoch
            bar = progress_bar.progress_bar([], log_format="json", log_file=str(log_file), epoch=epoch)
            bar.print({"loss": float(epoch)}, tag="train", step=epoch)
        bar = progress_bar.progress_bar([], "json", 100, str(log_file), 4)  # log_file given by position
        bar.print({"loss": 4.0}, tag="train", step=4)
        lines = log_file.read_text().splitlines()
        assert [line.split('"epoch": ')[1][0] for line in lines] == ["1", "2", "3", "4"]
        added = [h for h in progress_bar.logger.handlers if h not in before]
        assert len(added) == 1
        # fairseq's own function, unwrapped: the bug the wrapper removes
        progress_bar.progress_bar.__wrapped__([], log_format="json", log_file=str(log_file), epoch=5).print(
            {"loss": 5.0}, tag="train", step=5)
        fifth = log_file.read_text().splitlines()[4:]
        assert len(fifth) == 2 and fifth[0] == fifth[1] and '"epoch": 5' in fifth[0]
    finally:
        for handler in progress_bar.logger.handlers[:]:
            if handler not in before:
                progress_bar.logger.removeHandler(handler)
                handler.close()
