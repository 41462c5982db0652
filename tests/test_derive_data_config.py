"""Data configs derived from ``config.yaml`` (``derive_config_yaml``, ``fairseq-slt-data-config``)
and the recipes' shell library (``examples/lib.sh``), on real files in ``tmp_path``."""

import os
import subprocess
import sys

import pytest
import yaml

from fairseq_slt.data import SignDataConfig
from fairseq_slt.data.manifest_utils import derive_config_yaml, gen_config_yaml

DATA_CONFIG = os.path.join(os.path.dirname(sys.executable), "fairseq-slt-data-config")
LIB_SH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "lib.sh")
KEYS = ["video_root", "vocab_filename", "bpe_tokenizer", "video", "augment"]


def fake_mbart(folder):
    """The two files of an mBART directory that a data config points at."""
    os.makedirs(folder, exist_ok=True)
    for name in ("dict.txt", "sentence.bpe.model"):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write(name + "\n")
    return str(folder)


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    gen_config_yaml(str(root), video_root="videos", resize=40, crop=32)
    return root


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def test_mbart_inside_the_data_root_is_written_relative(data_root):
    mbart = fake_mbart(data_root / "mbart.trimmed")
    out = derive_config_yaml(str(data_root), "config.yaml", "config_stage2.yaml", mbart_dir=mbart)
    assert out == os.path.join(str(data_root), "config_stage2.yaml")
    cfg, src = load(out), load(data_root / "config.yaml")
    assert list(cfg) == KEYS  # same keys, same order, no feature cache
    assert cfg["vocab_filename"] == "mbart.trimmed/dict.txt"  # as write_data_root has always written
    assert cfg["bpe_tokenizer"] == {"bpe": "sentencepiece", "sentencepiece_model": "mbart.trimmed/sentence.bpe.model"}
    assert {k: cfg[k] for k in ("video_root", "video", "augment")} == {k: src[k] for k in ("video_root", "video", "augment")}
    read = SignDataConfig(out)
    assert os.path.samefile(read.vocab_filename, os.path.join(mbart, "dict.txt"))
    assert os.path.samefile(read.bpe_tokenizer["sentencepiece_model"], os.path.join(mbart, "sentence.bpe.model"))
    assert read.feature_cache is None and (read.resize, read.crop) == (40, 32)
    assert not [n for n in os.listdir(data_root) if n.endswith(".tmp")]
    # the source is untouched
    assert load(data_root / "config.yaml") == src


def test_mbart_outside_the_data_root_is_written_absolute(data_root, tmp_path):
    mbart = fake_mbart(tmp_path / "mbart.trimmed")  # the synthetic demo's layout: next to data/
    out = derive_config_yaml(str(data_root), "config.yaml", "config_stage2.yaml", mbart_dir=mbart,
                             feature_cache="features_stage2")
    cfg = load(out)
    assert cfg["vocab_filename"] == os.path.join(str(tmp_path), "mbart.trimmed", "dict.txt")
    assert cfg["bpe_tokenizer"]["sentencepiece_model"] == os.path.join(str(tmp_path), "mbart.trimmed", "sentence.bpe.model")
    assert list(cfg) == KEYS + ["feature_cache"] and cfg["feature_cache"] == "features_stage2"
    read = SignDataConfig(out)
    assert os.path.samefile(read.vocab_filename, os.path.join(mbart, "dict.txt"))
    assert read.feature_cache == os.path.join(str(data_root), "features_stage2")


def test_relative_mbart_dir_is_relative_to_the_working_directory(data_root, tmp_path, monkeypatch):
    fake_mbart(tmp_path / "mbart")
    monkeypatch.chdir(tmp_path)
    derive_config_yaml("data", "config.yaml", "config_stage2.yaml", mbart_dir="mbart")
    read = SignDataConfig(str(data_root / "config_stage2.yaml"))
    assert os.path.samefile(read.vocab_filename, tmp_path / "mbart" / "dict.txt")


def test_feature_cache_is_set_in_place_and_dropped(data_root):
    derive_config_yaml(str(data_root), "config.yaml", "a.yaml", feature_cache="old")
    derive_config_yaml(str(data_root), "a.yaml", "a.yaml", feature_cache="features_stage2")  # in place
    text = (data_root / "a.yaml").read_text()
    assert text.count("feature_cache:") == 1 and load(data_root / "a.yaml")["feature_cache"] == "features_stage2"
    derive_config_yaml(str(data_root), "a.yaml", "joint.yaml", drop_feature_cache=True)
    assert load(data_root / "joint.yaml") == load(data_root / "config.yaml")
    assert SignDataConfig(str(data_root / "joint.yaml")).feature_cache is None
    with pytest.raises(ValueError, match="exclude"):
        derive_config_yaml(str(data_root), "a.yaml", "b.yaml", feature_cache="x", drop_feature_cache=True)


def test_missing_mbart_files_fail_before_writing(data_root, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="lacks dict.txt"):
        derive_config_yaml(str(data_root), "config.yaml", "config_stage2.yaml", mbart_dir=str(tmp_path / "empty"))
    assert not (data_root / "config_stage2.yaml").exists()


def test_write_data_root_writes_config_stage2(tmp_path, monkeypatch):
    """prep's config_stage2.yaml: the trimmed mBART's files, relative to the data root."""
    import fairseq_slt.mbart.trim
    from fairseq_slt.data.prep_utils import write_data_root

    monkeypatch.setattr(fairseq_slt.mbart.trim, "trim", lambda mbart_dir, texts, out: fake_mbart(out))
    rows = [{"id": f"s{i}", "video": f"v{i}.mp4", "n_frames": 10, "tgt_text": t}
            for i, t in enumerate(["hello world", "good morning", "hello again", "good night"])]
    out = tmp_path / "data"
    write_data_root(str(out), {"train": rows, "dev": rows[:1]}, video_root=".", vocab_size=20,
                    mbart_dir=str(tmp_path / "mbart.cc25"))
    stage1, stage2 = load(out / "config.yaml"), load(out / "config_stage2.yaml")
    assert list(stage2) == list(stage1) == KEYS
    assert stage2["vocab_filename"] == "mbart.trimmed/dict.txt"
    assert stage2["bpe_tokenizer"] == {"bpe": "sentencepiece", "sentencepiece_model": "mbart.trimmed/sentence.bpe.model"}
    assert {k: v for k, v in stage2.items() if k not in ("vocab_filename", "bpe_tokenizer")} == \
        {k: v for k, v in stage1.items() if k not in ("vocab_filename", "bpe_tokenizer")}
    assert os.path.samefile(SignDataConfig(str(out / "config_stage2.yaml")).vocab_filename,
                            out / "mbart.trimmed" / "dict.txt")


def run_data_config(*args, cwd=None):
    return subprocess.run([DATA_CONFIG, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_console_script(data_root, tmp_path):
    fake_mbart(tmp_path / "mbart.trimmed")
    # the synthetic demo's stage 4, with paths relative to the working directory
    proc = run_data_config("data", "--src", "config.yaml", "--out", "config_stage2.yaml",
                           "--mbart-dir", "mbart.trimmed", "--feature-cache", "features_stage2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == ""  # logging only, to stderr
    read = SignDataConfig(str(data_root / "config_stage2.yaml"))
    assert os.path.isabs(read.config["vocab_filename"])
    assert os.path.samefile(read.vocab_filename, tmp_path / "mbart.trimmed" / "dict.txt")
    assert os.path.samefile(read.bpe_tokenizer["sentencepiece_model"], tmp_path / "mbart.trimmed" / "sentence.bpe.model")
    assert read.feature_cache == os.path.join(str(data_root), "features_stage2")
    # factorized_vs_joint.sh: the same config without the cache
    proc = run_data_config(data_root, "--src", "config_stage2.yaml", "--out", "config_joint.yaml", "--no-feature-cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    joint = load(data_root / "config_joint.yaml")
    assert "feature_cache" not in joint and joint["vocab_filename"] == read.config["vocab_filename"]
    # --feature-cache and --no-feature-cache exclude each other; a missing source fails
    proc = run_data_config(data_root, "--out", "x.yaml", "--feature-cache", "f", "--no-feature-cache")
    assert proc.returncode == 2 and "not allowed with" in proc.stderr
    proc = run_data_config(data_root, "--src", "nope.yaml", "--out", "x.yaml")
    assert proc.returncode != 0 and "nope.yaml" in proc.stderr
    assert not (data_root / "x.yaml").exists()


def bash_lib(script, **env):
    proc = subprocess.run(["bash", "-c", f'set -euo pipefail; source "{LIB_SH}"; {script}'],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, **env))
    return proc


def test_shell_lib_defines_functions_only(tmp_path):
    proc = bash_lib("declare -F | cut -d' ' -f3 | tr '\\n' ' '")
    assert proc.returncode == 0 and proc.stderr == ""
    assert set(proc.stdout.split()) >= {"log", "die", "init_steps", "step_enabled", "slt_bin_dir", "slt_plugin_dir",
                                        "updates_for", "epochs_for", "decode", "score_split", "evaluate"}


def test_shell_lib_step_and_schedule_helpers(tmp_path):
    tsv = tmp_path / "train.tsv"
    tsv.write_text("id\tvideo\tn_frames\ttgt_text\n" + "".join(f"s{i}\tv\t1\tt\n" for i in range(17)))
    proc = bash_lib(
        f'step=2; stop_step=4; for n in 1 2 4 5; do step_enabled $n && echo "on $n"; done; '
        f'updates_for "{tsv}" 3 8; epochs_for 800 500 16; epochs_for 17 4 4; '
        f'recipe=demo; log "hello"; slt_plugin_dir; BIN_DIR=/x/bin slt_bin_dir'
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["on 2", "on 4"]
    assert lines[2:5] == ["9", "10", "1"]  # 3 x ceil(17 / 8); ceil(500 x 16 / 800); ceil(16 / 17)
    assert lines[5].endswith(" [demo] hello")
    assert os.path.samefile(lines[6], os.path.join(os.path.dirname(os.path.dirname(LIB_SH)), "fairseq_slt"))
    assert lines[7] == "/x/bin"
    proc = bash_lib('die "no such thing"; echo unreachable')
    assert proc.returncode == 1 and proc.stderr == "error: no such thing\n" and proc.stdout == ""
