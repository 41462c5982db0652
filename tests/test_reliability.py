"""Bad inputs, interrupted training, distributed training, determinism."""

import os
import re
import shutil
import signal
import socket
import subprocess

import pytest
import torch
from PIL import Image

from helpers import BIN_DIR, PLUGIN_DIR, run_cli, stage1_train_cmd
from fairseq_slt.patches import atomic_copy
from fairseq_slt.data import ManifestError, VideoReadError
from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask


def make_task(root, **kw):
    return SignTranslationTask.setup_task(SignTranslationConfig(data=str(root), seed=1, **kw))


def test_frame_folder_with_mixed_sizes(tiny_corpus, tmp_path):
    root = tmp_path / "c"
    shutil.copytree(tiny_corpus, root)
    lines = (root / "test.tsv").read_text().splitlines()
    lines = [lines[0]] + [l.replace("videos/test/", "frames/test/").replace(".mp4", "") for l in lines[1:]]
    (root / "test.tsv").write_text("\n".join(lines) + "\n")
    folder = root / "frames" / "test" / "test_00000"
    first = sorted(folder.iterdir())[0]
    Image.open(first).resize((40, 30)).save(first)
    task = make_task(root)
    task.load_dataset("test")
    ds = task.dataset("test")
    ds.cfg.config["video"]["keep_ratio"] = 1.0  # read every frame, the odd one included
    ds.src_sizes[:] = ds.n_frames
    with pytest.raises(VideoReadError, match=r"row 2 \(id test_00000\).*mixes frame sizes .*resize its frames"):
        ds[0]


def test_manifest_that_is_not_utf8(tiny_corpus, tmp_path):
    root = tmp_path / "c"
    shutil.copytree(tiny_corpus, root)
    data = (root / "test.tsv").read_bytes().replace(b"there", "th\u00e9re".encode("latin-1"), 1)
    (root / "test.tsv").write_bytes(data)
    with pytest.raises(ManifestError, match=r"test\.tsv: row \d+ is not valid UTF-8.*re-encode the manifest as UTF-8"):
        make_task(root).load_dataset("test")


def test_atomic_copy_never_leaves_a_partial_file(tmp_path, monkeypatch):
    src, dst = tmp_path / "checkpoint_1_3.pt", tmp_path / "checkpoint_last.pt"
    src.write_bytes(b"new" * 1000)
    dst.write_bytes(b"old")

    def crash(a, b):  # killed half-way through the copy
        open(b, "wb").write(b"ne")
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copyfile", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_copy(str(src), str(dst), overwrite=True)
    assert dst.read_bytes() == b"old"  # the previous checkpoint is intact
    assert sorted(os.listdir(tmp_path)) == ["checkpoint_1_3.pt", "checkpoint_last.pt"]  # and no .tmp
    monkeypatch.undo()
    assert atomic_copy(str(src), str(dst), overwrite=True) and dst.read_bytes() == src.read_bytes()
    from fairseq.file_io import PathManager

    import fairseq_slt  # noqa: F401

    assert getattr(PathManager.copy, "_fairseq_slt_atomic", False)


def test_a_failed_checkpoint_save_leaves_no_tmp_file(tmp_path, monkeypatch):
    """fairseq's save (torch_persistent_save: <name>.tmp, then a rename) and its copies to
    checkpoint_last.pt / checkpoint_best.pt, made to fail: each error goes on, no .tmp stays."""
    from fairseq import checkpoint_utils
    from fairseq.file_io import PathManager

    import fairseq_slt  # noqa: F401 (the patches)

    state = {"model": {"w": torch.ones(3)}}
    (tmp_path / "checkpoint_best.pt").mkdir()  # a directory where the file should go: the rename fails
    with pytest.raises(OSError):
        checkpoint_utils.torch_persistent_save(state, str(tmp_path / "checkpoint_best.pt"))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint_best.pt"] and (tmp_path / "checkpoint_best.pt").is_dir()

    def disk_full(obj, f):  # half of the file written, then the disk is full
        f.write(b"PK\x03\x04" + b"\0" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_utils, "_torch_persistent_save", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        checkpoint_utils.torch_persistent_save(state, str(tmp_path / "checkpoint1.pt"))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint_best.pt"]
    monkeypatch.undo()
    checkpoint_utils.torch_persistent_save(state, str(tmp_path / "checkpoint1.pt"))  # the patch saves as before
    assert torch.equal(torch.load(tmp_path / "checkpoint1.pt")["model"]["w"], torch.ones(3))
    (tmp_path / "checkpoint_last.pt").mkdir()
    with pytest.raises(OSError):
        PathManager.copy(str(tmp_path / "checkpoint1.pt"), str(tmp_path / "checkpoint_last.pt"), overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint1.pt", "checkpoint_best.pt", "checkpoint_last.pt"]


@pytest.mark.slow
def test_skip_bad_videos_is_logged_and_counted(tiny_corpus, tmp_path):
    root = tmp_path / "c"
    shutil.copytree(tiny_corpus, root)
    for name in ("train_00003.mp4", "train_00007.mp4"):
        (root / "videos" / "train" / name).write_bytes(b"corrupt" * 100)
    cmd = stage1_train_cmd(root, tmp_path / "ckpt", 100) + ["--max-epoch", "1"]
    proc = subprocess.run([os.path.join(BIN_DIR, cmd[0])] + [str(c) for c in cmd[1:]], capture_output=True, text=True)
    assert proc.returncode != 0
    assert re.search(r"train\.tsv row (5|9) \(id train_0000[37]\): cannot decode video", proc.stdout + proc.stderr)
    log = run_cli(cmd + ["--skip-bad-videos"])
    assert log.count("skipping ") >= 2 and "train_00003" in log and "train_00007" in log
    assert re.search(r"\| train \| epoch 001 .*skipped_videos 2\b", log), log[-2000:]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume(tiny_corpus, tmp_path):
    save_dir = tmp_path / "ckpt"
    cmd = stage1_train_cmd(tiny_corpus, save_dir, 14)
    cmd = [os.path.join(BIN_DIR, cmd[0])] + [str(c) for c in cmd[1:]]
    cmd = [c for c in cmd if c != "200"]  # replace --max-tokens 200 by one video a batch
    cmd[cmd.index("--max-tokens")] = "--batch-size"
    cmd[cmd.index("--batch-size") + 1:cmd.index("--batch-size") + 1] = ["1"]
    cmd += ["--save-interval-updates", "3", "--disable-validation"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    saved = None
    for line in proc.stdout:
        m = re.search(r"Saved checkpoint .*checkpoint_1_(\d+)\.pt", line)
        if m:
            saved = int(m.group(1))
            proc.send_signal(signal.SIGKILL)  # mid-epoch: 12 updates make an epoch
            break
    proc.wait(timeout=60)
    assert saved is not None and saved < 12
    for ckpt in save_dir.glob("*.pt"):  # every checkpoint on disk is complete
        torch.load(ckpt, map_location="cpu")
    last = torch.load(save_dir / "checkpoint_last.pt", map_location="cpu")
    at = last["optimizer_history"][-1]["num_updates"]
    assert at >= saved
    out = subprocess.run(cmd, capture_output=True, text=True)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert re.search(rf"Loaded checkpoint .*checkpoint_last\.pt \(epoch 1 @ {at} updates\)", log), log[-3000:]
    assert "num_updates 14" in log or "num_updates=14" in log
    # the optimizer state was restored, not reset
    assert "Optimizer does not match" not in log and "resetting optimizer" not in log.lower()
    resumed = torch.load(save_dir / "checkpoint_last.pt", map_location="cpu")
    assert resumed["optimizer_history"][-1]["num_updates"] == 14
    assert resumed["last_optimizer_state"]["state"]


@pytest.mark.slow
def test_same_seed_same_checkpoint_and_generate_output(tiny_corpus, tmp_path):
    # two runs of a data loader worker each: the augmentation must not touch the global RNG
    env = dict(os.environ)
    outs = []
    for run in ("a", "b"):
        save_dir = tmp_path / run
        cmd = stage1_train_cmd(tiny_corpus, save_dir, 3)
        cmd[cmd.index("--num-workers") + 1] = "1"
        run_cli(cmd, env=env)
        gen = run_cli([
            "fairseq-generate", tiny_corpus, "--user-dir", PLUGIN_DIR, "--task", "sign_translation",
            "--gen-subset", "test", "--path", save_dir / "checkpoint_last.pt", "--beam", "5",
            "--max-tokens", "400", "--max-len-b", "10",
        ], env=env)
        hyps = sorted(l for l in gen.splitlines() if re.match(r"^[HDP]-\d+\t", l))
        model = torch.load(save_dir / "checkpoint_last.pt", map_location="cpu")["model"]
        outs.append((hyps, model))
    assert outs[0][0] == outs[1][0] and len(outs[0][0]) == 15
    for k, v in outs[0][1].items():
        assert torch.equal(v, outs[1][1][k]), k


@pytest.mark.slow
def test_two_process_training_matches_one_process(tiny_corpus, tmp_path):
    """fairseq's own distributed flags, gloo on CPU: 2 processes x 2 videos == 1 process x 4."""
    common = ["--dropout", "0", "--attention-dropout", "0", "--activation-dropout", "0",
              "--disable-validation"]

    def cmd(save_dir, batch):
        c = [str(x) for x in stage1_train_cmd(tiny_corpus, save_dir, 3)]
        i = c.index("--max-tokens")
        c[i:i + 2] = ["--batch-size", str(batch)]  # one update = 4 videos in both setups
        return [os.path.join(BIN_DIR, c[0])] + c[1:] + common

    single = subprocess.run(cmd(tmp_path / "one", 4), capture_output=True, text=True)
    assert single.returncode == 0, single.stderr[-3000:]
    port = free_port()
    procs = [
        subprocess.Popen(
            cmd(tmp_path / "two", 2) + [
                "--cpu", "--distributed-world-size", "2", "--distributed-backend", "gloo",
                "--distributed-init-method", f"tcp://127.0.0.1:{port}", "--distributed-rank", str(rank),
                "--distributed-no-spawn", "--ddp-backend", "legacy_ddp",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for rank in (0, 1)
    ]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), logs[0][-3000:] + logs[1][-3000:]

    def losses(log):
        return [float(x) for x in re.findall(r"train_inner .* loss=([\d.]+), nll_loss", log)]

    one, two = losses(single.stdout + single.stderr), losses(logs[0])
    assert len(one) == len(two) == 3 and "bsz=4" in logs[0]
    # same samples and frames per update; only ResNet BatchNorm statistics differ (2 vs 4 videos)
    for a, b in zip(one, two):
        assert abs(a - b) <= 0.02 * a, (one, two)


def test_truncated_mp4_names_the_row(tiny_corpus, tmp_path):
    root = tmp_path / "c"
    shutil.copytree(tiny_corpus, root)
    video = root / "videos" / "test" / "test_00001.mp4"
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])  # a download cut half-way
    task = make_task(root)
    task.load_dataset("test")
    with pytest.raises(VideoReadError, match=r"test\.tsv row 3 \(id test_00001\): "):
        task.dataset("test")[1]
