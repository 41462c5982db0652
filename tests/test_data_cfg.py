"""A strict ``config.yaml`` (:class:`fairseq_slt.data.SignDataConfig`): unknown keys and sections,
types and ranges, malformed YAML and the frame cap against ``--max-source-positions`` are each a
one-line :class:`~fairseq_slt.data.DataConfigError` naming the file, the line, the key and the fix."""

import os
import re
import shutil
import subprocess

import pytest

from fairseq_slt.data import DataConfigError, SignDataConfig
from fairseq_slt.data.manifest_utils import derive_config_yaml, gen_config_yaml

VALID = """\
video_root: videos
vocab_filename: dict.txt
bpe_tokenizer:
  bpe: sentencepiece
  sentencepiece_model: spm.model
video:
  resize: 40
  crop: 32
  keep_ratio: 0.5
  max_frames: 64
augment: {rotate: 5, scale: 0.05, translate: 2, p: 1}
"""


def write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def error_of(tmp_path, text):
    """The one-line message that opening ``text`` as ``config.yaml`` raises."""
    path = write(tmp_path, text)
    with pytest.raises(DataConfigError) as info:
        SignDataConfig(path)
    message = str(info.value)
    assert message.startswith(path) and "\n" not in message
    return message


def test_error_is_a_value_error_exported_from_the_package():
    import fairseq_slt.data

    assert issubclass(DataConfigError, ValueError) and "DataConfigError" in fairseq_slt.data.__all__


def test_valid_config_reads_back(tmp_path):
    cfg = SignDataConfig(write(tmp_path, VALID))
    assert (cfg.resize, cfg.crop, cfg.keep_ratio, cfg.max_frames) == (40, 32, 0.5, 64)
    assert cfg.augment == {"rotate": 5.0, "scale": 0.05, "translate": 2.0, "p": 1.0}
    assert cfg.video_root == str(tmp_path / "videos") and cfg.feature_cache is None
    assert cfg.bpe_tokenizer == {"bpe": "sentencepiece", "sentencepiece_model": str(tmp_path / "spm.model")}


def test_absent_and_null_sections_take_the_defaults(tmp_path):
    cfg = SignDataConfig(write(tmp_path, "vocab_filename: dict.txt\nvideo:\naugment:\nbpe_tokenizer:\nfeature_cache:\n"))
    assert (cfg.resize, cfg.crop, cfg.keep_ratio, cfg.max_frames) == (256, 224, 0.25, 300)
    assert cfg.augment == {"rotate": 30.0, "scale": 0.2, "translate": 10.0, "p": 0.5}
    assert cfg.bpe_tokenizer is None and cfg.feature_cache is None and cfg.video_root == str(tmp_path)


def test_configs_the_project_writes_are_valid(tmp_path):
    gen_config_yaml(str(tmp_path), video_root=".", resize=48, crop=48)
    derive_config_yaml(str(tmp_path), "config.yaml", "stage2.yaml", feature_cache="features_stage2")
    for name in ("config.yaml", "stage2.yaml"):
        cfg = SignDataConfig(str(tmp_path / name))
        assert (cfg.resize, cfg.crop, cfg.keep_ratio, cfg.max_frames) == (48, 48, 0.25, 300)
    assert SignDataConfig(str(tmp_path / "stage2.yaml")).feature_cache == str(tmp_path / "features_stage2")


def test_fairseq_sentencepiece_options_are_known(tmp_path):
    cfg = SignDataConfig(write(tmp_path, "bpe_tokenizer: {bpe: sentencepiece, sentencepiece_model: m.model, "
                                         "sentencepiece_enable_sampling: false, sentencepiece_alpha: 0.1}\n"))
    assert cfg.bpe_tokenizer["sentencepiece_alpha"] == 0.1
    assert cfg.bpe_tokenizer["sentencepiece_enable_sampling"] is False


# --- unknown keys and sections ----------------------------------------------------------------


def test_unknown_key_names_its_section_line_and_closest_key(tmp_path):
    message = error_of(tmp_path, VALID.replace("keep_ratio: 0.5", "keep_ration: 0.5"))
    assert ", line 9: unknown key video.keep_ration; did you mean video.keep_ratio?" in message
    assert "known keys of video: resize, crop, keep_ratio, max_frames" in message


def test_unknown_section_suggests_the_closest(tmp_path):
    message = error_of(tmp_path, VALID.replace("video:\n", "vidoe:\n"))
    assert "line 6: unknown section vidoe; did you mean video?" in message


@pytest.mark.parametrize("text, expected", [
    ("max_frame: 20\n", "unknown key max_frame; did you mean video.max_frames (it belongs under video:)?"),
    ("video: {max_frame: 20}\n", "unknown key video.max_frame; did you mean video.max_frames?"),
    ("augment: {rotation: 5}\n", "unknown key augment.rotation; did you mean augment.rotate?"),
    ("bpe_tokenizer: {bpe: sentencepiece, sentencepiece_modle: m}\n",
     "unknown key bpe_tokenizer.sentencepiece_modle; did you mean bpe_tokenizer.sentencepiece_model?"),
    ("video: {vocab_filename: d}\n", "unknown key video.vocab_filename; did you mean vocab_filename (a top-level key)?"),
    ("vocab: dict.txt\n", "unknown key vocab"),
])
def test_unknown_keys(tmp_path, text, expected):
    assert expected in error_of(tmp_path, text)


def test_unknown_key_without_a_close_match_lists_the_known_ones(tmp_path):
    message = error_of(tmp_path, "colour: red\n")
    assert "unknown key colour (known top-level keys: video_root, vocab_filename, bpe_tokenizer" in message
    assert "did you mean" not in message


def test_duplicate_key_is_refused(tmp_path):
    message = error_of(tmp_path, VALID + "video: {crop: 224}\n")
    assert "line 12: duplicate key video (also on line 6)" in message


# --- types and ranges ------------------------------------------------------------------------


@pytest.mark.parametrize("video, expected", [
    ("{keep_ratio: 0}", "video.keep_ratio: 0 is out of range; give the fraction of frames kept, a number in (0, 1]"),
    ("{keep_ratio: 1.5}", "video.keep_ratio: 1.5 is out of range"),
    ("{keep_ratio: quarter}", 'video.keep_ratio: "quarter" is out of range'),
    ("{keep_ratio: .nan}", "video.keep_ratio: NaN is out of range"),
    ("{resize: 0}", "video.resize: 0 is out of range; give a size in pixels, an integer > 0"),
    ("{resize: -256}", "video.resize: -256 is out of range"),
    ("{crop: 22.5}", "video.crop: 22.5 is out of range; give a size in pixels, an integer > 0"),
    ("{crop: true}", "video.crop: true is out of range"),
    ("{resize: 128}", "video.crop (224, the default) is larger than video.resize (128); give crop <= resize"),
    ("{resize: 32, crop: 48}", "video.crop (48) is larger than video.resize (32)"),
    ("{max_frames: 0}", "video.max_frames: 0 is out of range; give a cap in frames, an integer >= 1"),
    ("{max_frames: -1}", "video.max_frames: -1 is out of range"),
    ("{max_frames: 2.5}", "video.max_frames: 2.5 is out of range"),
])
def test_video_ranges(tmp_path, video, expected):
    assert expected in error_of(tmp_path, f"video: {video}\n")


@pytest.mark.parametrize("augment, expected", [
    ("{rotate: -1}", "augment.rotate: -1 is out of range; give a number >= 0"),
    ("{scale: big}", 'augment.scale: "big" is out of range'),
    ("{translate: .inf}", "augment.translate: Infinity is out of range"),
    ("{p: 1.5}", "augment.p: 1.5 is out of range; give a probability, a number in [0, 1]"),
    ("{p: -0.1}", "augment.p: -0.1 is out of range"),
])
def test_augment_ranges(tmp_path, augment, expected):
    assert expected in error_of(tmp_path, f"augment: {augment}\n")


def test_augment_bounds_are_allowed(tmp_path):
    cfg = SignDataConfig(write(tmp_path, "augment: {rotate: 0, scale: 0, translate: 0, p: 0}\n"))
    assert cfg.augment == {"rotate": 0.0, "scale": 0.0, "translate": 0.0, "p": 0.0}
    assert SignDataConfig(write(tmp_path, "video: {keep_ratio: 1, max_frames: 1, resize: 8, crop: 8}\n")).max_frames == 1


@pytest.mark.parametrize("text, expected", [
    ("video: 224\n", "line 1: video must be a mapping (video: {key: value, ...}, or one key per indented line), "
                     "not a number (224)"),
    ("augment: [30, 0.2]\n", "augment must be a mapping"),
    ("bpe_tokenizer: sentencepiece\n", 'bpe_tokenizer must be a mapping (bpe_tokenizer: {key: value, ...}, or '
                                       'one key per indented line), not a string ("sentencepiece")'),
])
def test_sections_must_be_mappings(tmp_path, text, expected):
    assert expected in error_of(tmp_path, text)


@pytest.mark.parametrize("text, expected", [
    ("video_root: 2024\n", "video_root: 2024 is not a path; give a non-empty string (relative to the data root, "
                           "or absolute); quote it"),
    ("vocab_filename:\n", "vocab_filename: null is not a path"),
    ("vocab_filename: ''\n", 'vocab_filename: "" is not a path'),
    ("feature_cache: [a]\n", 'feature_cache: ["a"] is not a path; give a non-empty string or null'),
    ("bpe_tokenizer: {bpe: sentencepiece, sentencepiece_model: 3}\n", "bpe_tokenizer.sentencepiece_model: 3 is not a path"),
])
def test_paths_must_be_strings(tmp_path, text, expected):
    assert expected in error_of(tmp_path, text)


@pytest.mark.parametrize("bpe, expected", [
    ("{bpe: gpt2, sentencepiece_model: m}", 'bpe_tokenizer.bpe: "gpt2" is not supported; give \'bpe: sentencepiece\''),
    ("{bpe: sentencepiece}", "bpe_tokenizer has no sentencepiece_model"),
    ("{bpe: sentencepiece, sentencepiece_model: m, sentencepiece_enable_sampling: 1}",
     "bpe_tokenizer.sentencepiece_enable_sampling: 1 is not a boolean"),
    ("{bpe: sentencepiece, sentencepiece_model: m, sentencepiece_alpha: high}",
     'bpe_tokenizer.sentencepiece_alpha: "high" is not a number'),
])
def test_bpe_tokenizer(tmp_path, bpe, expected):
    assert expected in error_of(tmp_path, f"bpe_tokenizer: {bpe}\n")


# --- malformed files ------------------------------------------------------------------------


@pytest.mark.parametrize("text, where", [
    ("video:\n  resize: 40\n   crop: 32\n", "line 3 column 8"),
    ("video: {resize: 40\ncrop: 32\n", "line 2 column 5"),
    ("video:\n\tresize: 40\n", "line 2 column 1"),
])
def test_malformed_yaml_names_line_and_column(tmp_path, text, where):
    message = error_of(tmp_path, text)
    assert f"config.yaml, {where}: malformed YAML (" in message and "fix the syntax there" in message


@pytest.mark.parametrize("text, expected", [
    ("", "the data config is empty"),
    ("# only a comment\n", "the data config is empty"),
    ("- video_root\n- dict.txt\n", "the top level must be a mapping of keys (video_root: ..., video: {...}), not a list"),
    ("video_root\n", "the top level must be a mapping of keys (video_root: ..., video: {...}), not a string"),
])
def test_empty_file_or_top_level_that_is_not_a_mapping(tmp_path, text, expected):
    assert expected in error_of(tmp_path, text)


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes("video_root: vid\u00e9os\n".encode("latin-1"))
    with pytest.raises(DataConfigError, match=r"config\.yaml: not valid UTF-8 .*save it as UTF-8"):
        SignDataConfig(str(path))


# --- the task: max_frames against --max-source-positions --------------------------------------


def test_max_frames_beyond_max_source_positions_is_refused(tmp_path):
    from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask

    write(tmp_path, "video: {resize: 40, crop: 32, max_frames: 64}\n")
    (tmp_path / "dict.txt").write_text("a 1\n")
    with pytest.raises(DataConfigError) as info:
        SignTranslationTask.setup_task(SignTranslationConfig(data=str(tmp_path), max_source_positions=63))
    message = str(info.value)
    assert "video.max_frames (64) is larger than --max-source-positions (63)" in message
    assert "lower video.max_frames to at most 63 or raise --max-source-positions" in message
    task = SignTranslationTask.setup_task(SignTranslationConfig(data=str(tmp_path), max_source_positions=64))
    assert task.data_cfg.max_frames == 64


# --- through the command line ------------------------------------------------------------------


@pytest.mark.slow
def test_fairseq_train_stops_on_a_config_typo(tiny_corpus, tmp_path):
    from helpers import BIN_DIR, stage1_train_cmd

    data = tmp_path / "data"
    shutil.copytree(tiny_corpus, data)
    config = (data / "config.yaml").read_text()
    assert "keep_ratio:" in config
    (data / "config.yaml").write_text(config.replace("keep_ratio:", "keep_ration:"))
    cmd = stage1_train_cmd(data, tmp_path / "ckpt", 1)
    proc = subprocess.run([os.path.join(BIN_DIR, cmd[0])] + [str(c) for c in cmd[1:]],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert re.search(r"config\.yaml, line \d+: unknown key video\.keep_ration; did you mean video\.keep_ratio\?",
                     proc.stderr), proc.stderr[-3000:]
    assert not (tmp_path / "ckpt" / "checkpoint_last.pt").exists()


def test_writers_refuse_a_bad_config_before_writing(tmp_path):
    from fairseq_slt.data.manifest_utils import gen_config_yaml

    with pytest.raises(DataConfigError, match=r"video\.crop \(300\) is larger than video\.resize \(256\)"):
        gen_config_yaml(str(tmp_path), video_root="videos", resize=256, crop=300)
    assert not (tmp_path / "config.yaml").exists() and not (tmp_path / "config.yaml.tmp").exists()
