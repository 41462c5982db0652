"""fairseq-slt-translate and the SignTranslator API on a tiny trained stage-1 checkpoint."""

import json
import os
import re
import shutil
import subprocess
from argparse import Namespace

import pytest
import torch

from helpers import BIN_DIR, PLUGIN_DIR, other_root, run_cli
from fairseq_slt.data.sampling import sample_indices
from fairseq_slt.data.transforms import build_video_transform
from fairseq_slt.data.video_io import VideoReadError, VideoSource, read_frames
from fairseq_slt.inference import NotOurCheckpointError, SignTranslator, VideoInput

pytestmark = pytest.mark.slow  # every test here drives the console scripts on a trained model


def generate_hypotheses(data, ckpt) -> list:
    """Detokenized fairseq-generate hypotheses (beam 5) of the test split, by sample id."""
    out = run_cli([
        "fairseq-generate", data, "--user-dir", PLUGIN_DIR, "--task", "sign_translation",
        "--gen-subset", "test", "--path", ckpt, "--beam", "5", "--max-tokens", "400", "--max-len-b", "20",
    ])
    hyps = dict((int(i), h) for i, h in re.findall(r"^D-(\d+)\t[^\t]*\t(.*)$", out, re.M))
    return [hyps[i] for i in sorted(hyps)]


def manifest_videos(tiny_corpus, folder=False):
    rows = [line.split("\t") for line in (tiny_corpus / "test.tsv").read_text().splitlines()[1:]]
    if folder:
        return [str(tiny_corpus / "frames" / "test" / r[0]) for r in rows]
    return [str(tiny_corpus / r[1]) for r in rows]


@pytest.fixture(scope="module")
def ckpt(stage1_run):
    return stage1_run[0] / "checkpoint_last.pt"


def translate_cli(*args, check=True):
    proc = subprocess.run([os.path.join(BIN_DIR, "fairseq-slt-translate"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_cli_mp4_jsonl_matches_fairseq_generate(tiny_corpus, ckpt, tmp_path):
    videos = manifest_videos(tiny_corpus)
    listing = tmp_path / "inputs.tsv"
    listing.write_text("".join(v + "\n" for v in videos))
    out = tmp_path / "out.jsonl"
    translate_cli("--path", ckpt, "--input-list", listing, "--format", "jsonl", "--output", out,
                  "--batch-size", "2", "--max-len-b", "20", "--device", "cpu")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == list(range(len(videos)))
    assert [r["video"] for r in records] == videos
    assert all(isinstance(r["score"], float) and r["score"] <= 0 for r in records)
    # the same evaluation path and beam search as fairseq-generate on the manifest
    reference = generate_hypotheses(tiny_corpus, ckpt)
    assert any(h.strip() for h in reference)  # a comparison of non-empty text
    assert [r["hypothesis"] for r in records] == reference


def test_cli_frame_folders_text_matches_fairseq_generate(tiny_corpus, ckpt, tmp_path):
    data = tmp_path / "frames_root"  # a data root whose test manifest points at the frame folders
    data.mkdir()
    shutil.copy(tiny_corpus / "config.yaml", data / "config.yaml")
    config = (data / "config.yaml").read_text()
    config = re.sub(r"(?m)^video_root:.*$", "", config) + f"video_root: {tiny_corpus}\n"
    for name in ("spm.model", "dict.txt"):
        shutil.copy(tiny_corpus / name, data / name)
    (data / "config.yaml").write_text(config)
    lines = (tiny_corpus / "test.tsv").read_text().splitlines()
    rows = [lines[0]] + [re.sub(r"videos/test/(\w+)\.mp4", r"frames/test/\1", line) for line in lines[1:]]
    (data / "test.tsv").write_text("\n".join(rows) + "\n")
    folders = manifest_videos(tiny_corpus, folder=True)
    proc = translate_cli("--path", ckpt, *folders, "--max-len-b", "20", "--no-progress-bar")
    assert proc.stdout.splitlines() == generate_hypotheses(data, ckpt)


def test_time_range_selects_frames(tiny_corpus, ckpt):
    translator = SignTranslator.from_checkpoint(str(ckpt), beam=2, max_len_b=5, device="cpu")
    mp4, folder = manifest_videos(tiny_corpus)[0], manifest_videos(tiny_corpus, folder=True)[0]
    cfg = translator.task.data_cfg
    transform = build_video_transform(cfg.resize, cfg.crop, train=False)
    # [0.4, 1.2) s at 25 fps = frames 10..29; 25% of 20 frames, evaluation sampling
    idx = [10 + int(i) for i in sample_indices(20, cfg.keep_ratio, cfg.max_frames, train=False)]
    for path, n_total in ((mp4, None), (folder, len(os.listdir(folder)))):
        got = translator.load_frames(VideoInput(path, 0.4, 1.2))
        n_total = n_total or int((tiny_corpus / "test.tsv").read_text().splitlines()[1].split("\t")[2])
        ref = transform(read_frames(VideoSource(path), idx, n_total))
        torch.testing.assert_close(got, ref)
    result = translator.translate(mp4, start=0.4, end=1.2)
    assert isinstance(result.hypothesis, str) and result.tokens[-1] == translator.task.target_dictionary.eos()
    with pytest.raises(VideoReadError, match=r"time range \[1.0, 60.0\) s at 25 fps is frames \[25, 1500\) and ends past the end"):
        translator.translate(mp4, start=1.0, end=60.0)
    with pytest.raises(ValueError, match="give both start and end"):
        VideoInput(mp4, start=1.0)


def test_packed_decoder_weights_translate_the_same(tiny_corpus, ckpt):
    from fairseq_slt.models.packed_linear import PackedLinear

    videos = manifest_videos(tiny_corpus)
    results = {}
    for pack in (True, False):
        translator = SignTranslator.from_checkpoint(str(ckpt), max_len_b=20, device="cpu", pack_weights=pack)
        packed = [m for m in translator.model.decoder.modules() if isinstance(m, PackedLinear)]
        assert bool(packed) == pack  # the default packs the decoder's linears; --no-packed-weights does not
        results[pack] = translator.translate_batch([VideoInput(v) for v in videos])
    assert [r.hypothesis for r in results[True]] == [r.hypothesis for r in results[False]]
    torch.testing.assert_close([r.score for r in results[True]], [r.score for r in results[False]], rtol=1e-4, atol=1e-4)


def test_not_our_checkpoint_and_bad_inputs(tiny_corpus, ckpt, tmp_path):
    other = tmp_path / "transformer.pt"
    torch.save({"cfg": {"model": Namespace(arch="transformer", _name="transformer"),
                        "task": {"_name": "translation", "data": "x"}}, "model": {}}, other)
    with pytest.raises(NotOurCheckpointError, match="--task translation --arch transformer, not a fairseq-slt"):
        SignTranslator.from_checkpoint(str(other))
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    proc = translate_cli("--path", text, "x.mp4", check=False)
    assert proc.returncode != 0 and "cannot be loaded as a torch checkpoint" in proc.stderr
    proc = translate_cli("--path", ckpt, "--data", tmp_path, "x.mp4", check=False)
    assert proc.returncode != 0 and "has no config.yaml: pass the data root" in proc.stderr
    # an unreadable input: an error naming it, or with --skip-bad-videos a reported skip
    good = manifest_videos(tiny_corpus)[0]
    missing = tmp_path / "missing.mp4"
    proc = translate_cli("--path", ckpt, good, missing, "--max-len-b", "5", check=False)
    assert proc.returncode != 0 and f"video not found: {missing}" in proc.stderr
    proc = translate_cli("--path", ckpt, good, missing, "--max-len-b", "5", "--skip-bad-videos",
                         "--format", "jsonl", "--batch-size", "2")
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert records[0]["hypothesis"] is not None and "error" not in records[0]
    assert records[1]["hypothesis"] is None and "video not found" in records[1]["error"]
    assert "1 of 2 inputs could not be read" in proc.stderr


def last_line(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.stderr.strip().splitlines()[-1]


def test_bad_options_and_inputs_are_one_line_errors(tiny_corpus, ckpt, tmp_path):
    import wave

    good = manifest_videos(tiny_corpus)[0]
    # usage errors, before any checkpoint is read
    for flag in ("--beam", "--batch-size"):
        proc = translate_cli("--path", tmp_path / "none.pt", good, flag, "0", check=False)
        assert proc.returncode == 2 and last_line(proc).endswith(
            f"error: argument {flag}: expected a whole number >= 1, got '0'")
    proc = translate_cli("--path", tmp_path / "none.pt", good, "--start", "0", "--end", "inf", check=False)
    assert proc.returncode == 2 and last_line(proc).endswith(
        "error: argument --end: time 'inf' is not a number of seconds (digits with an optional decimal point, "
        "e.g. 12.5)")
    # every line of --input-list that is not empty is an input: '#take1.mp4' is a file, not a comment
    take = tmp_path / "#take1.mp4"
    shutil.copy(good, take)
    listing = tmp_path / "inputs.tsv"
    listing.write_text(f"{take}\n\n{good}\t.4\t1.2\n")
    proc = translate_cli("--path", ckpt, "--input-list", listing, "--format", "jsonl", "--max-len-b", "5",
                         "--device", "cpu", "--no-progress-bar")
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["id"], r["video"], r["start"], r["end"]) for r in records] == [(0, str(take), None, None),
                                                                             (1, good, 0.4, 1.2)]
    assert all(isinstance(r["hypothesis"], str) for r in records)
    listing.write_text(f"{good}\n{good}\t0\tinf\n")
    proc = translate_cli("--path", ckpt, "--input-list", listing, check=False)
    assert proc.returncode == 1 and last_line(proc) == (
        f"fairseq-slt-translate: error: {listing} line 2: start '0' / end 'inf' must be finite numbers of seconds "
        "(digits with an optional decimal point, e.g. 12.5) (format: path[<TAB>start<TAB>end])")
    # a file without a video stream
    audio = tmp_path / "speech.wav"
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 4000)
    proc = translate_cli("--path", ckpt, audio, "--device", "cpu", check=False)
    assert proc.returncode == 1 and last_line(proc) == (
        f"fairseq-slt-translate: error: cannot open {audio} as a video: it has no video stream (streams: audio); "
        "give a video file or a frame folder")
    # --skip-bad-videos when no input can be read: each reported, written with its error, exit status 1
    missing = tmp_path / "missing.mp4"
    proc = translate_cli("--path", ckpt, audio, missing, "--skip-bad-videos", "--format", "jsonl", "--device", "cpu",
                         check=False)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["video"], r["hypothesis"]) for r in records] == [(str(audio), None), (str(missing), None)]
    assert "no video stream" in records[0]["error"] and "video not found" in records[1]["error"]
    assert proc.returncode == 1 and last_line(proc) == (
        "fairseq-slt-translate: error: none of the 2 inputs could be read (each is reported above)")
def test_other_video_settings_are_refused_unless_allowed(tiny_corpus, ckpt, tmp_path):
    from fairseq_slt.checkpoints import load_checkpoint_state
    from fairseq_slt.data.video_settings import VideoSettingsMismatchError

    data = other_root(tiny_corpus, tmp_path / "data", crop=40)  # trained with crop 48
    with pytest.raises(VideoSettingsMismatchError) as e:
        SignTranslator.from_checkpoint(str(ckpt), data=str(data), device="cpu")
    assert e.value.differences == [("crop", 48, 40)]
    assert str(e.value).startswith(f"{ckpt} was trained with video.crop 48, but the data config "
                                   f"{data / 'config.yaml'} gives video.crop 40")
    assert str(e.value).endswith(f"pass --data with the data root it was trained with ({tiny_corpus}), or pass "
                                 "--allow-video-settings-change to go on (the data config's settings are used)")
    # a checkpoint trained with the override does not pass it on: it is asked for at each use
    state = load_checkpoint_state(str(ckpt))
    state["cfg"]["task"]["allow_video_settings_change"] = True
    allowed_in_training = tmp_path / "allowed.pt"
    torch.save(state, allowed_in_training)
    with pytest.raises(VideoSettingsMismatchError):
        SignTranslator.from_checkpoint(str(allowed_in_training), data=str(data), device="cpu")
    translator = SignTranslator.from_checkpoint(str(ckpt), data=str(data), device="cpu", max_len_b=5,
                                                allow_video_settings_change=True)
    mp4 = manifest_videos(tiny_corpus)[0]
    assert translator.load_frames(VideoInput(mp4)).shape[-2:] == (40, 40)  # the data config's crop
    proc = translate_cli("--path", ckpt, "--data", data, mp4, "--max-len-b", "5", check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"fairseq-slt-translate: error: {ckpt} was trained with video.crop 48, but the data config")
    proc = translate_cli("--path", ckpt, "--data", data, mp4, "--max-len-b", "5", "--allow-video-settings-change")
    assert len(proc.stdout.splitlines()) == 1
    assert "gives video.crop 40; going on as --allow-video-settings-change asks" in proc.stderr
