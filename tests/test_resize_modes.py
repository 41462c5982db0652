"""``video.resize``: an integer (the shorter side, aspect ratio kept) or a [height, width] pair
(the whole frame squashed to it, GFSLT-VLP's ``img.resize((256, 256))``)."""

import pytest
import torch
import yaml
from fairseq.data import Dictionary
from torchvision.transforms.v2 import functional as F

from fairseq_slt.data.data_cfg import DataConfigError, SignDataConfig
from fairseq_slt.data.manifest_utils import gen_config_yaml
from fairseq_slt.data.sign_video_dataset import SignVideoDataset
from fairseq_slt.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_video_transform,
    describe_resize,
    resize_size,
)
from helpers import reference_train_transform

# a PHOENIX14T frame: 210 wide x 260 high
HEIGHT, WIDTH = 260, 210
MEAN = torch.tensor(IMAGENET_MEAN)[:, None, None]
STD = torch.tensor(IMAGENET_STD)[:, None, None]


def phoenix_frame_with_top_marker() -> torch.Tensor:
    """``1 x 260 x 210 x 3`` black frame with a white marker 20-30 px below its top edge."""
    frame = torch.zeros(1, HEIGHT, WIDTH, 3, dtype=torch.uint8)
    frame[:, 20:30, 95:115] = 255
    return frame


def brightness(x: torch.Tensor) -> torch.Tensor:
    """Normalised ``T x 3 x H x W`` frames back to [0, 1]."""
    return x * STD + MEAN


def write_config(tmp_path, video: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(f"video: {video}\n")
    return str(path)


def error_of(tmp_path, video: str) -> str:
    with pytest.raises(DataConfigError) as e:
        SignDataConfig(write_config(tmp_path, video))
    return str(e.value)


# --- pixels ------------------------------------------------------------------------------------


def test_eval_pair_keeps_the_top_of_a_phoenix_frame_and_the_int_cuts_it():
    frame = phoenix_frame_with_top_marker()
    squash = build_video_transform((256, 256), 224, train=False)(frame)
    shorter = build_video_transform(256, 224, train=False)(frame)
    assert squash.shape == shorter.shape == (1, 3, 224, 224)
    # the pair: 260 -> 256 rows, 16 cut at the top: the marker (rows 20-30) is in the crop
    assert float(brightness(squash).max()) > 0.9
    # the int: 260 -> 316 rows, 46 cut at the top: the marker (rows 24-37 after resizing) is gone
    assert float(brightness(shorter).max()) < 0.05


def test_pair_squashes_the_whole_frame_before_the_crop():
    frame = torch.randint(0, 256, (2, HEIGHT, WIDTH, 3), dtype=torch.uint8)
    got = build_video_transform([256, 256], 224, train=False)(frame)
    whole = F.resize(frame.permute(0, 3, 1, 2), [256, 256], antialias=True)  # aspect ratio squashed
    ref = whole[..., 16:240, 16:240].float() / 255
    torch.testing.assert_close(got, (ref - MEAN) / STD, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_train_pair_is_random_crop_then_the_documented_augmentation(seed):
    """resize [h, w] -> random crop -> affine (rotate, scale, translate) -> normalise, drawn in
    the order of tests/test_loader_fast_path.py."""
    frames = torch.randint(0, 256, (3, 52, 42, 3), dtype=torch.uint8)
    got = build_video_transform((48, 44), 40, train=True, rotate=30, scale=0.2, translate=4, p=0.7)(
        frames, torch.Generator().manual_seed(seed)
    )
    ref = reference_train_transform(frames, [48, 44], 40, seed, rotate=30, scale=0.2, translate=4, p=0.7)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_int_resize_is_the_shorter_side(tmp_path):
    """An integer resize stays an integer in the YAML and the config, and the transform scales the
    shorter side to it (aspect ratio kept) before the centre crop."""
    gen_config_yaml(str(tmp_path), video_root=".", resize=256, crop=224)
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["video"]["resize"] == 256
    cfg = SignDataConfig(str(tmp_path / "config.yaml"))
    assert cfg.resize == 256 and type(cfg.resize) is int
    frame = torch.randint(0, 256, (2, HEIGHT, WIDTH, 3), dtype=torch.uint8)
    got = build_video_transform(cfg.resize, cfg.crop, train=False)(frame)
    resized = F.resize(frame.permute(0, 3, 1, 2), [256], antialias=True)
    assert resized.shape[-2:] == (316, 256)  # the shorter side (the width) to 256, aspect kept
    x = F.center_crop(resized, [224, 224])
    torch.testing.assert_close(got, (x.float() / 255 - MEAN) / STD, atol=1e-5, rtol=1e-5)


def test_dataset_uses_the_pipeline_of_its_config(tmp_path):
    """A [h, w] resize squashes the whole frame (the top marker stays in the crop); an integer one
    keeps the aspect ratio and the centre crop cuts the marker off. (The pipeline's description in
    the dataset's log line is :func:`describe_resize`, tested below.)"""
    frame = phoenix_frame_with_top_marker()
    for name, video in (("pair", "{resize: [256, 256], crop: 224}"), ("int", "{resize: 256, crop: 224}")):
        (tmp_path / name).mkdir()
        cfg = SignDataConfig(write_config(tmp_path / name, video))
        ds = SignVideoDataset("dev", False, cfg, str(tmp_path / "dev.tsv"), [], [], [], [], [], Dictionary(), [])
        if name == "pair":
            assert float(brightness(ds.transform(frame)).max()) > 0.9
        else:
            assert float(brightness(ds.transform(frame)).max()) < 0.05


def test_describe_resize():
    assert describe_resize((256, 256), 224) == "resize 256x256 (whole frame, GFSLT-VLP) -> crop 224"
    assert describe_resize([240, 320], 224) == "resize 240x320 (whole frame, GFSLT-VLP) -> crop 224"
    assert describe_resize(256, 224) == "shorter side 256 -> crop 224"


@pytest.mark.parametrize("resize, crop, expected", [
    ((256,), 224, r"resize \[256\] must be a \[height, width\] pair"),
    ((256, 256, 3), 224, r"resize \[256, 256, 3\] must be a \[height, width\] pair"),
    ((256, 0), 224, r"must be a \[height, width\] pair of integers > 0"),
    ((256, 22.5), 22, r"must be a \[height, width\] pair of integers > 0"),
    ((True, 256), 1, r"must be a \[height, width\] pair of integers > 0"),
    ((200, 256), 224, r"both sides of resize \[200, 256\] must be at least crop \(224\)"),
    (128, 224, r"resize \(128\) must be at least crop \(224\)"),
    (0, 224, r"resize \(0\) must be an integer > 0"),
    ("256", 224, r"resize \('256'\) must be an integer > 0"),
    (256, 0, r"crop \(0\) must be a size in pixels"),
])
def test_transform_refuses_bad_sizes(resize, crop, expected):
    with pytest.raises(ValueError, match=expected):
        build_video_transform(resize, crop, train=False)


def test_resize_size():
    assert resize_size(256, 224) == [256]
    assert resize_size((256, 300), 224) == [256, 300]
    assert resize_size([224, 224], 224) == [224, 224]


# --- config ------------------------------------------------------------------------------------


def test_config_pair_is_a_height_width_tuple(tmp_path):
    cfg = SignDataConfig(write_config(tmp_path, "{resize: [256, 300], crop: 224}"))
    assert cfg.resize == (256, 300) and isinstance(cfg.resize, tuple)
    assert SignDataConfig(write_config(tmp_path, "{resize: [224, 224], crop: 224}")).resize == (224, 224)
    block = SignDataConfig(write_config(tmp_path, "\n  resize:\n  - 256\n  - 256\n  crop: 224"))
    assert block.resize == (256, 256)


@pytest.mark.parametrize("video, expected", [
    ("{resize: [256]}", "video.resize: [256] has 1 size; give a [height, width] pair, or one integer"),
    ("{resize: [256, 256, 3]}", "video.resize: [256, 256, 3] has 3 sizes"),
    ("{resize: []}", "video.resize: [] has 0 sizes"),
    ("{resize: [256, 0]}", "video.resize: [256, 0] is out of range; both sides of the pair are sizes in "
                           "pixels, integers > 0"),
    ("{resize: [256, -1]}", "video.resize: [256, -1] is out of range"),
    ("{resize: [256, 22.5]}", "video.resize: [256, 22.5] is out of range"),
    ("{resize: [true, 256]}", "video.resize: [true, 256] is out of range"),
    ("{resize: ['256', 256]}", 'video.resize: ["256", 256] is out of range'),
    ("{resize: 256x256}", 'video.resize: "256x256" is out of range; give a size in pixels, an integer > 0 '
                          "(the shorter side"),
    ("{resize: 256x256}", "; write the pair as [256, 256]"),
    ("{resize: {h: 256}}", 'video.resize: {"h": 256} is out of range'),
    ("{resize: [200, 256]}", "video.crop (224, the default) is larger than the height of video.resize "
                             "[200, 256] (200); give crop <= both sides of resize"),
    ("{resize: [256, 200], crop: 224}", "video.crop (224) is larger than the width of video.resize [256, 200]"),
    ("{resize: [100, 100], crop: 224}", "is larger than the sides of video.resize [100, 100] (100)"),
])
def test_config_pair_validation(tmp_path, video, expected):
    message = error_of(tmp_path, video)
    assert expected in message
    assert "config.yaml, line 1" in message and "\n" not in message


def test_config_int_errors_are_unchanged(tmp_path):
    assert "video.resize: 0 is out of range; give a size in pixels, an integer > 0" in error_of(
        tmp_path, "{resize: 0}")
    assert ("video.crop (224, the default) is larger than video.resize (128); give crop <= resize"
            in error_of(tmp_path, "{resize: 128}"))


def test_gen_config_yaml_writes_a_pair_as_a_list(tmp_path):
    gen_config_yaml(str(tmp_path), video_root=".", resize=(256, 256), crop=224)
    text = (tmp_path / "config.yaml").read_text()
    assert yaml.safe_load(text)["video"]["resize"] == [256, 256]
    assert SignDataConfig(str(tmp_path / "config.yaml")).resize == (256, 256)


def test_gen_config_yaml_refuses_a_bad_pair_before_writing(tmp_path):
    with pytest.raises(DataConfigError, match=r"larger than the width of video\.resize \[256, 200\]"):
        gen_config_yaml(str(tmp_path), video_root=".", resize=(256, 200), crop=224)
    with pytest.raises(DataConfigError, match=r"video\.resize: \[256\] has 1 size"):
        gen_config_yaml(str(tmp_path), video_root=".", resize=[256], crop=224)
    assert not (tmp_path / "config.yaml").exists() and not (tmp_path / "config.yaml.tmp").exists()
