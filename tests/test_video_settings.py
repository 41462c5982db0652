"""A run cannot silently change the video settings under a checkpoint.

Every checkpoint records the video settings it was trained with (resize, crop, keep ratio, frame
cap, normalisation); decoding, resuming and caching compare them with the data config and refuse a
difference unless --allow-video-settings-change.
"""

import json
import logging
import os
import shutil
import subprocess
from types import SimpleNamespace

import pytest
import torch
import yaml

from helpers import BIN_DIR, PLUGIN_DIR, other_root, run_cli, stage1_train_cmd
from fairseq_slt.checkpoints import load_task_state
from fairseq_slt.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from fairseq_slt.data.video_settings import (
    OVERRIDE_FLAG,
    RECORD_KEY,
    MissingVideoSettingsError,
    VideoSettingsMismatchError,
    check_video_settings,
    differences,
)
from fairseq_slt.tasks.checkpoint_records import MissingRecordsError
from fairseq_slt.tasks.dictionary_check import RECORD_KEY as DICT_RECORD_KEY
from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask

WORDS = ["▁the", "▁cat", "▁sat"]


def write_config(root, name="config.yaml", **video):
    """A data root (its dictionary) with the data config ``name``: resize 48, crop 32 unless ``video``
    says otherwise."""
    root.mkdir(exist_ok=True)
    (root / "dict.txt").write_text("".join(f"{w} 1\n" for w in WORDS))
    settings = dict({"resize": 48, "crop": 32}, **video)
    (root / name).write_text(yaml.safe_dump({"vocab_filename": "dict.txt", "video": settings}))
    return root


def task_of(root, name="config.yaml", **cfg):
    return SignTranslationTask.setup_task(SignTranslationConfig(data=str(root), config_yaml=name, **cfg))


def test_checkpoint_records_the_video_settings(tmp_path):
    root = write_config(tmp_path / "data", resize=[48, 64], keep_ratio=0.5, max_frames=40)
    state = task_of(root).state_dict()  # what fairseq-train stores as the checkpoint's task_state
    assert state[RECORD_KEY] == {
        "resize": [48, 64], "crop": 32, "keep_ratio": 0.5, "max_frames": 40,
        "norm_mean": IMAGENET_MEAN, "norm_std": IMAGENET_STD, "data_config": str(root / "config.yaml"),
    }
    assert DICT_RECORD_KEY in state  # beside the dictionary's record
    task_of(root).load_state_dict(state)  # the same settings: accepted


@pytest.mark.parametrize("video, key, recorded, current", [
    ({"crop": 24}, "crop", 32, 24),
    ({"resize": [48, 64]}, "resize", 48, [48, 64]),
    ({"keep_ratio": 0.5}, "keep_ratio", 0.25, 0.5),
    ({"max_frames": 200}, "max_frames", 300, 200),
])
def test_another_setting_is_refused_naming_the_key_both_values_and_the_flag(tmp_path, video, key, recorded,
                                                                            current):
    saved = task_of(write_config(tmp_path / "trained")).state_dict()
    root = write_config(tmp_path / "data", **video)
    with pytest.raises(VideoSettingsMismatchError) as e:
        task_of(root).load_state_dict(saved)
    assert e.value.differences == [(key, recorded, current)]
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"this checkpoint was trained with video.{key} {json.dumps(recorded)}, but the data "
                          f"config {root / 'config.yaml'} gives video.{key} {json.dumps(current)} ")
    assert f"pass the data config it was trained with ({tmp_path / 'trained' / 'config.yaml'})" in msg
    assert msg.endswith(f"or pass {OVERRIDE_FLAG} to go on (the data config's settings are used)")


def test_several_differences_and_the_normalisation_are_named(tmp_path):
    saved = task_of(write_config(tmp_path / "trained")).state_dict()
    saved[RECORD_KEY]["norm_mean"] = [0.5, 0.5, 0.5]  # a checkpoint of frames normalised otherwise
    root = write_config(tmp_path / "data", crop=24, max_frames=100)
    with pytest.raises(VideoSettingsMismatchError) as e:
        task_of(root).load_state_dict(saved)
    assert [d[0] for d in e.value.differences] == ["crop", "max_frames", "norm_mean"]
    assert ("trained with video.crop 32, video.max_frames 300, norm_mean [0.5, 0.5, 0.5], but the data config "
            f"{root / 'config.yaml'} gives video.crop 24, video.max_frames 100, norm_mean [0.485, 0.456, 0.406]"
            ) in str(e.value)


def test_the_override_goes_on_with_a_warning_and_new_checkpoints_record_the_new_settings(tmp_path, caplog):
    saved = task_of(write_config(tmp_path / "trained")).state_dict()
    task = task_of(write_config(tmp_path / "data", crop=24), allow_video_settings_change=True)
    with caplog.at_level(logging.WARNING):
        task.load_state_dict(saved)
    assert (f"this checkpoint was trained with video.crop 32, but the data config {tmp_path / 'data' / 'config.yaml'} "
            f"gives video.crop 24; going on as {OVERRIDE_FLAG} asks") in caplog.text
    assert task.state_dict()[RECORD_KEY]["crop"] == 24


def test_checkpoint_without_video_record_or_with_a_partial_one_is_refused(tmp_path):
    saved = task_of(write_config(tmp_path / "trained")).state_dict()
    task = task_of(write_config(tmp_path / "data", crop=24))
    with pytest.raises(MissingRecordsError) as e:
        task.load_state_dict({DICT_RECORD_KEY: saved[DICT_RECORD_KEY]})  # no video record at all
    assert e.value.missing == ("video settings",)
    partial = {k: v for k, v in saved[RECORD_KEY].items() if not k.startswith("norm_")}
    same = write_config(tmp_path / "same")
    with pytest.raises(MissingVideoSettingsError) as e:  # the same settings, but not all of them recorded
        task_of(same).load_state_dict({DICT_RECORD_KEY: saved[DICT_RECORD_KEY], RECORD_KEY: partial})
    assert e.value.missing == ("norm_mean", "norm_std")
    assert str(e.value) == (
        f"this checkpoint records no norm_mean, norm_std (which every checkpoint and feature cache of this "
        f"fairseq-slt records), so they cannot be checked against the data config {same / 'config.yaml'}; train it "
        f"again with this fairseq-slt, or pass {OVERRIDE_FLAG} to go on (the data config's settings are used)"
    )
    # the override lets it through; the keys it records are still compared
    task_of(same, allow_video_settings_change=True).load_state_dict(
        {DICT_RECORD_KEY: saved[DICT_RECORD_KEY], RECORD_KEY: partial})
    current = task_of(tmp_path / "data").video_settings
    assert check_video_settings(partial, current, "x", "c.yaml", allow=True, fix="f", remake="r") == [
        ("crop", 32, 24)]
    with pytest.raises(MissingVideoSettingsError):  # refused for the missing keys before the different one
        check_video_settings(partial, current, "x", "c.yaml", allow=False, fix="f", remake="r")


def test_values_compare_whatever_their_container():
    recorded = {"resize": [48, 48], "crop": 32, "keep_ratio": 0.25, "norm_mean": [0.485, 0.456, 0.406]}
    current = {"resize": (48, 48), "crop": 32, "keep_ratio": 0.25, "max_frames": 300,
               "norm_mean": (0.485, 0.456, 0.406), "norm_std": IMAGENET_STD}
    assert differences(recorded, current) == []
    assert differences(dict(recorded, resize=48), current) == [("resize", 48, (48, 48))]
    full = dict(recorded, max_frames=300, norm_std=IMAGENET_STD)
    assert check_video_settings(dict(full, crop=24), current, "x", "c.yaml", allow=True, fix="f", remake="r") == [
        ("crop", 24, 32)]


# --- resuming: the task sees the task_state of the checkpoint fairseq-train continues from


def test_resumed_checkpoint_is_checked_like_a_decoded_one(tmp_path):
    trained = task_of(write_config(tmp_path / "trained"))
    saved = trained.state_dict()
    path = str(tmp_path / "checkpoint_last.pt")
    with pytest.raises(VideoSettingsMismatchError, match=(
        rf"^{path} \(the checkpoint fairseq-train continues from\) was trained with video.crop 32, but the "
        r"data config .* gives video.crop 24 .*--allow-video-settings-change")):
        task_of(write_config(tmp_path / "data", crop=24)).check_resumed_state(saved, path)
    trained.check_resumed_state(saved, path)
    with pytest.raises(MissingRecordsError) as e:
        trained.check_resumed_state({}, path)  # not written by this task
    assert str(e.value).startswith(f"{path} (the checkpoint fairseq-train continues from) stores no record")


def test_trainer_shows_the_task_the_checkpoint_task_state_before_loading_weights(tmp_path):
    from fairseq.trainer import Trainer

    path = tmp_path / "checkpoint_last.pt"
    torch.save({"model": {"w": torch.zeros(4)}, "task_state": {"x": 1}}, path)
    seen = []

    class Task:
        def check_resumed_state(self, task_state, filename):
            seen.append((task_state, filename))
            raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):  # before fairseq's own load (it would need a trainer)
        Trainer.load_checkpoint(SimpleNamespace(task=Task()), str(path))
    assert seen == [({"x": 1}, str(path))]


@pytest.mark.parametrize("zipfile", [True, False])
def test_task_state_is_read_with_the_weights_mapped(tmp_path, zipfile):
    path = tmp_path / "ckpt.pt"
    torch.save({"model": {"w": torch.ones(2)}, "task_state": {RECORD_KEY: {"crop": 32}}}, path,
               _use_new_zipfile_serialization=zipfile)
    assert load_task_state(str(path)) == {RECORD_KEY: {"crop": 32}}
    torch.save({"model": {}}, path)
    assert load_task_state(str(path)) == {}


# --- through the command lines, on the tiny stage 1 that fairseq-train trained


def run(cmd) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(BIN_DIR, cmd[0]), *map(str, cmd[1:])], capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_generate_refuses_other_video_settings_unless_allowed(tiny_corpus, stage1_run, tmp_path):
    data = other_root(tiny_corpus, tmp_path / "data", max_frames=200)
    ckpt = stage1_run[0] / "checkpoint_last.pt"
    cmd = ["fairseq-generate", data, "--user-dir", PLUGIN_DIR, "--task", "sign_translation", "--gen-subset", "test",
           "--path", ckpt, "--beam", "2", "--max-tokens", "400", "--max-len-b", "5"]
    proc = run(cmd)
    assert proc.returncode == 1 and "H-" not in proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("fairseq_slt.data.video_settings.VideoSettingsMismatchError: this checkpoint was "
                           "trained with video.max_frames 300, but the data config "
                           f"{data / 'config.yaml'} gives video.max_frames 200"), last
    assert last.endswith(f"or pass {OVERRIDE_FLAG} to go on (the data config's settings are used)")
    proc = run(cmd + [OVERRIDE_FLAG])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len([line for line in proc.stdout.splitlines() if line.startswith("H-")]) == 5
    assert f"gives video.max_frames 200; going on as {OVERRIDE_FLAG} asks" in proc.stderr


@pytest.mark.slow
def test_resume_refuses_other_video_settings_unless_allowed(tiny_corpus, stage1_run, tmp_path):
    data = other_root(tiny_corpus, tmp_path / "data", crop=40)
    save_dir = tmp_path / "ckpt"
    save_dir.mkdir()
    ckpt = save_dir / "checkpoint_last.pt"
    shutil.copy(stage1_run[0] / "checkpoint_last.pt", ckpt)
    before = ckpt.read_bytes()
    proc = run(stage1_train_cmd(data, save_dir, 4))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"fairseq_slt.data.video_settings.VideoSettingsMismatchError: {ckpt} (the checkpoint "
                           "fairseq-train continues from) was trained with video.crop 48, but the data config "
                           f"{data / 'config.yaml'} gives video.crop 40"), last
    assert last.endswith(f"or pass {OVERRIDE_FLAG} to go on (the data config's settings are used)")
    assert ckpt.read_bytes() == before  # nothing trained, nothing saved
    log = run_cli([*stage1_train_cmd(data, save_dir, 4), OVERRIDE_FLAG])
    assert f"gives video.crop 40; going on as {OVERRIDE_FLAG} asks" in log
    assert f"Loaded checkpoint {ckpt} (epoch" in log  # resumed, not restarted
    assert load_task_state(str(save_dir / "checkpoint_last.pt"))[RECORD_KEY]["crop"] == 40
