"""End to end through the stock fairseq CLIs with ``--user-dir``."""

import os
import pickle
import re
import subprocess

import pytest
import torch

from helpers import PLUGIN_DIR, run_cli as run, stage1_train_cmd as train_cmd

pytestmark = pytest.mark.slow  # every test here drives the console scripts on a trained model


@pytest.fixture(scope="module")
def trained(stage1_run):
    return stage1_run


def test_train_writes_checkpoints(trained):
    save_dir, log = trained
    assert (save_dir / "checkpoint_last.pt").is_file()
    assert "num_updates=3" in log or "num_updates 3" in log
    from fairseq_slt.checkpoints import checkpoint_model_args, load_checkpoint_state

    state = load_checkpoint_state(str(save_dir / "checkpoint_last.pt"))
    assert state["optimizer_history"][-1]["num_updates"] == 3
    assert checkpoint_model_args(state).resnet_pretrained is None  # no ImageNet file: random init


def test_generate_beam5_hypothesis_for_every_test_sample(tiny_corpus, trained, tmp_path):
    save_dir, _ = trained
    out = run([
        "fairseq-generate", tiny_corpus, "--user-dir", PLUGIN_DIR, "--task", "sign_translation",
        "--gen-subset", "test", "--path", save_dir / "checkpoint_last.pt", "--beam", "5",
        "--max-tokens", "400", "--max-len-b", "20", "--scoring", "sacrebleu",
    ])
    hyp_ids = sorted(int(m) for m in re.findall(r"^H-(\d+)\t", out, re.M))
    det_ids = sorted(int(m) for m in re.findall(r"^D-(\d+)\t", out, re.M))
    assert hyp_ids == det_ids == list(range(5))  # the tiny corpus has 5 test videos
    targets = re.findall(r"^T-\d+\t(.*)$", out, re.M)
    assert all(" " in t and "\u2581" not in t for t in targets)  # detokenized references
    assert "Generate test with beam=5" in out


def test_resume_continues_from_checkpoint_last(tiny_corpus, trained, tmp_path):
    save_dir, _ = trained
    resumed = tmp_path / "resume"
    resumed.mkdir()
    (resumed / "checkpoint_last.pt").write_bytes((save_dir / "checkpoint_last.pt").read_bytes())
    log = run(train_cmd(tiny_corpus, resumed, 5))
    assert re.search(r"Loaded checkpoint .*checkpoint_last\.pt \(epoch \d+ @ 3 updates\)", log), log[-3000:]
    assert "num_updates 5" in log or "num_updates=5" in log


def test_checkpoint_loads_with_weights_only_and_rejects_other_objects(trained, tmp_path):
    import fairseq_slt  # noqa: F401  (registers the allow-list)
    from fairseq import checkpoint_utils

    save_dir, _ = trained
    state = checkpoint_utils.load_checkpoint_to_cpu(str(save_dir / "checkpoint_last.pt"))
    assert state["cfg"]["model"].arch == "slt_lightt"

    bad = tmp_path / "bad.pt"
    torch.save({"model": {}, "payload": Exploit()}, bad)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        torch.load(bad, weights_only=True)


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_allow_list_is_what_makes_fairseq_checkpoints_load(trained):
    """Without the plugin, torch's weights-only loader refuses the checkpoint; with it, it loads."""
    import sys

    ckpt = str(trained[0] / "checkpoint_last.pt")
    plain = subprocess.run([sys.executable, "-c", f"import torch; torch.load({ckpt!r})"],
                           capture_output=True, text=True)
    assert plain.returncode != 0 and "argparse.Namespace" in plain.stderr
    code = f"import fairseq_slt, torch; fairseq_slt.register(); s = torch.load({ckpt!r}); print(sorted(s))"
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "'model'" in ok.stdout and "'optimizer_history'" in ok.stdout


def test_project_loader_needs_no_import_side_effect_and_keeps_the_allow_list(trained):
    """load_checkpoint_state allows fairseq's globals for its own call, without the plugin's
    import-time allow-list, and leaves that allow-list in place for fairseq's loader."""
    import sys

    ckpt = str(trained[0] / "checkpoint_last.pt")
    code = (
        "import torch, argparse\n"
        "from fairseq_slt.checkpoints import fairseq_checkpoint_globals, load_checkpoint_state\n"
        "torch.serialization.clear_safe_globals()  # as if the plugin's import had not run\n"
        f"assert 'model' in load_checkpoint_state({ckpt!r})\n"
        "assert argparse.Namespace not in torch.serialization.get_safe_globals()\n"
        "torch.serialization.add_safe_globals(fairseq_checkpoint_globals())\n"
        f"load_checkpoint_state({ckpt!r})\n"
        "assert argparse.Namespace in torch.serialization.get_safe_globals()  # still allowed\n"
        f"torch.load({ckpt!r}, weights_only=True)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
