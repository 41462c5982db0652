"""Dataset preparation on tiny fixtures in the exact release layouts (generated here)."""

import importlib.util
import os
import pickle
import re

import numpy as np
import pytest
import yaml
from PIL import Image

from helpers import PLUGIN_DIR, run_cli
from fairseq_slt.data.sign_video_dataset import SignVideoDatasetCreator
from fairseq_slt.synthetic.generate import write_mp4

EXAMPLES = os.path.join(os.path.dirname(PLUGIN_DIR), "examples")


def load_script(dataset):
    path = os.path.join(EXAMPLES, dataset, f"prep_{dataset}.py")
    spec = importlib.util.spec_from_file_location(f"prep_{dataset}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_frames(folder, n, size, ext="png", seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(img).save(os.path.join(folder, f"images{i + 1:04d}.{ext}"))


def manifest(path):
    return SignVideoDatasetCreator.read_manifest(str(path))


PHOENIX_TEXT = {
    "train": ["am tag scheint die sonne", "morgen regnet es im norden", "im süden gibt es gewitter",
              "am abend wird es kühl", "es weht ein starker wind"],
    "dev": ["morgen scheint die sonne"],
    "test": ["im norden regnet es", "am tag gibt es wind"],
}


@pytest.fixture(scope="module")
def phoenix_root(tmp_path_factory):
    top = tmp_path_factory.mktemp("phoenix") / "PHOENIX-2014-T-release-v3" / "PHOENIX-2014-T"
    ann = top / "annotations" / "manual"
    ann.mkdir(parents=True)
    for split, texts in PHOENIX_TEXT.items():
        lines = ["name|video|start|end|speaker|orth|translation"]
        for i, text in enumerate(texts):
            name = f"{split}_video_{i}"
            lines.append(f"{name}|{name}/1/*.png|-1|-1|Signer0{i % 3 + 1}|GLOSS A B|{text}")
            if not (split == "test" and i == 1):  # one video missing on disk
                write_frames(top / "features" / "fullFrame-210x260px" / split / name, 6 + i, (210, 260), seed=i)
        (ann / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return top


def test_prep_phoenix(phoenix_root, tmp_path):
    out = tmp_path / "data"
    load_script("phoenix14t").main(["--root", str(phoenix_root), "--out", str(out), "--vocab-size", "40"])
    rows = manifest(out / "train.tsv")
    assert [r["id"] for r in rows] == [f"train_video_{i}" for i in range(5)]
    assert rows[1]["video"] == "features/fullFrame-210x260px/train/train_video_1"  # not the csv's video column
    assert rows[1]["n_frames"] == "7" and rows[1]["tgt_text"] == PHOENIX_TEXT["train"][1]
    assert rows[0]["signer"] == "Signer01"
    test = manifest(out / "test.tsv")
    assert [r["id"] for r in test] == ["test_video_0"]
    assert "test_video_1\tframe folder missing or empty" in (out / "dropped_test.tsv").read_text()
    for name in ("config.yaml", "spm.model", "dict.txt"):
        assert (out / name).is_file()
    # re-running is safe and gives the same manifests
    before = (out / "train.tsv").read_text()
    load_script("phoenix14t").main(["--root", str(phoenix_root), "--out", str(out), "--vocab-size", "40"])
    assert (out / "train.tsv").read_text() == before


def test_prep_phoenix_wrong_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected the annotations/manual folder at"):
        load_script("phoenix14t").main(["--root", str(tmp_path), "--out", str(tmp_path / "o")])


@pytest.mark.slow
def test_stage1_trains_on_prepared_phoenix(phoenix_root, tmp_path):
    out = tmp_path / "data"
    load_script("phoenix14t").main(["--root", str(phoenix_root), "--out", str(out), "--vocab-size", "40"])
    cfg = (out / "config.yaml").read_text().replace("resize: 256", "resize: 40").replace("crop: 224", "crop: 32")
    (out / "config.yaml").write_text(cfg)
    from helpers import stage1_train_cmd

    log = run_cli(stage1_train_cmd(out, tmp_path / "ckpt", 2))
    assert "num_updates 2" in log or "num_updates=2" in log
    assert (tmp_path / "ckpt" / "checkpoint_last.pt").is_file()


def test_prep_csl_daily(tmp_path):
    root = tmp_path / "CSL-Daily"
    (root / "sentence_label").mkdir(parents=True)
    info, split_lines = [], ["name|split"]
    chars = {"S0001": "今天天气很好", "S0002": "明天下雨", "S0003": "我爱学习", "S0004": "你好", "S0005": "谢谢"}
    for i, (name, text) in enumerate(chars.items()):
        info.append({"name": name, "length": 5, "label_gloss": ["X"], "label_char": list(text),
                     "label_word": [text], "label_postag": ["n"], "signer": i % 2, "time": 0})
        split_lines.append(f"{name}|{['train', 'train', 'dev', 'test', 'dev'][i]}")
        if name != "S0003":
            write_frames(root / "sentence" / "frames_512x512" / name, 5, (32, 32), ext="jpg", seed=i)
    with open(root / "sentence_label" / "csl2020ct_v2.pkl", "wb") as f:
        pickle.dump({"info": info, "gloss_map": ["X"], "char_map": list("今天")}, f)
    (root / "sentence_label" / "split_1.txt").write_text("\n".join(split_lines) + "\n")
    out = tmp_path / "data"
    load_script("csl_daily").main(["--root", str(root), "--out", str(out), "--vocab-size", "30"])
    train = manifest(out / "train.tsv")
    assert [(r["id"], r["tgt_text"], r["n_frames"]) for r in train] == [("S0001", "今天天气很好", "5"), ("S0002", "明天下雨", "5")]
    assert train[0]["video"] == "sentence/frames_512x512/S0001"
    assert "S0003\tframe folder missing or empty" in (out / "dropped_dev.tsv").read_text()
    # the vocabulary is one piece per character
    import sentencepiece as sp

    spm = sp.SentencePieceProcessor(model_file=str(out / "spm.model"))
    assert [p for p in spm.encode("今天下雨", out_type=str) if p != "\u2581"] == list("今天下雨")


def test_prep_csl_daily_refuses_code_in_the_label_file(tmp_path):
    root = tmp_path / "CSL-Daily"
    (root / "sentence_label").mkdir(parents=True)
    (root / "sentence" / "frames_512x512").mkdir(parents=True)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(root / "sentence_label" / "csl2020ct_v2.pkl", "wb") as f:
        pickle.dump({"info": [Evil()]}, f)
    (root / "sentence_label" / "split_1.txt").write_text("name|split\n")
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_script("csl_daily").main(["--root", str(root), "--out", str(tmp_path / "o")])


def test_prep_how2sign_cuts_by_reference_and_drops_bad_rows(tmp_path):
    root = tmp_path / "How2Sign"
    header = "VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\tEND_REALIGNED\tSENTENCE"
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        vdir = root / "video_level" / split / "rgb_front" / "raw_videos"
        vdir.mkdir(parents=True)
        write_mp4(str(vdir / f"{split}_vid-1-rgb_front.mp4"), rng.integers(0, 255, (50, 32, 64, 3), dtype=np.uint8))
        lines = [header,
                 f"v1\t{split}_vid-1-rgb_front\ts1\t{split}_vid_1-0\t0.40\t1.20\tHello, how are you?",
                 f"v1\t{split}_vid-1-rgb_front\ts2\t{split}_vid_1-1\t1.00\t1.96\tI am fine.",
                 f"v1\t{split}_vid-1-rgb_front\ts3\t{split}_vid_1-2\t1.50\t2.70\tThis ends too late.",
                 f"v2\t{split}_missing-rgb_front\ts4\t{split}_missing-0\t0.00\t1.00\tNo video."]
        (root / f"how2sign_realigned_{split}.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "data"
    load_script("how2sign").main(["--root", str(root), "--out", str(out), "--vocab-size", "30"])
    dev = manifest(out / "dev.tsv")  # val is written as dev
    assert [(r["id"], r["start"], r["end"], r["n_frames"]) for r in dev] == [
        ("val_vid_1-0", "0.400", "1.200", "20"), ("val_vid_1-1", "1.000", "1.960", "24")]
    assert dev[0]["video"] == "video_level/val/rgb_front/raw_videos/val_vid-1-rgb_front.mp4"
    assert dev[0]["tgt_text"] == "Hello, how are you?"  # cased English
    dropped = (out / "dropped_test.tsv").read_text()
    assert "test_vid_1-2\tend 2.70 s is past the end" in dropped and "test_missing-0\tvideo" in dropped
    # the kept rows read back through the dataset, from the full video by time range
    from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask

    cfg = (out / "config.yaml").read_text().replace("resize: 256", "resize: 32").replace("crop: 224", "crop: 32")
    (out / "config.yaml").write_text(cfg)
    task = SignTranslationTask.setup_task(SignTranslationConfig(data=str(out)))
    task.load_dataset("dev")
    assert task.dataset("dev")[1].source.shape[0] == 6  # ceil(24 * 0.25)


def recipe_env(tmp_path, **extra):
    from helpers import BIN_DIR

    env = dict(os.environ, PATH=BIN_DIR + os.pathsep + os.environ["PATH"], BIN_DIR=BIN_DIR,
               OUT_DIR=str(tmp_path / "run"), NUM_WORKERS="0", STAGE1_EPOCHS="1", STAGE2_EPOCHS="1",
               RESNET="none")  # no network, no ImageNet weights file in tests
    env.update(extra)
    return env


TINY_ARGS = ["--encoder-embed-dim", "16", "--encoder-ffn-embed-dim", "64", "--encoder-layers", "1",
             "--decoder-layers", "1", "--encoder-attention-heads", "2", "--decoder-attention-heads", "2",
             "--max-source-positions", "64", "--max-target-positions", "64"]


def test_recipe_requires_its_variables(tmp_path):
    import subprocess

    env = recipe_env(tmp_path)
    env.pop("PHOENIX14T_ROOT", None)
    proc = subprocess.run(["bash", os.path.join(EXAMPLES, "phoenix14t", "run.sh")], env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "set PHOENIX14T_ROOT" in proc.stderr


@pytest.mark.slow
def test_phoenix_recipe_runs_both_stages(phoenix_root, tmp_path):
    """Prep (with mBART trimming) -> stage 1 -> eval -> feature cache -> stage 2 -> eval, on the
    fixture, with a small mBART built by fairseq-slt-build-mbart and tiny model sizes."""
    import subprocess

    text = tmp_path / "text.de"
    text.write_text("\n".join(t for ts in PHOENIX_TEXT.values() for t in ts) + "\n", encoding="utf-8")
    mbart = tmp_path / "mbart"
    run_cli(["fairseq-slt-build-mbart", "--text", text, "--lang", "de_DE", "--out", mbart,
             "--updates", "5", "--layers", "1", "--dim", "16", "--heads", "2", "--vocab-size", "80"])
    assert sorted(os.listdir(mbart)) == ["dict.txt", "model.pt", "sentence.bpe.model"]
    env = recipe_env(tmp_path, PHOENIX14T_ROOT=str(phoenix_root), MBART_DIR=str(mbart), LANGS="de_DE")
    # small frames for CPU: the prep's video settings (PREP_ARGS), in the paper's squash mode
    proc = subprocess.run(["bash", os.path.join(EXAMPLES, "phoenix14t", "run.sh")],
                          env=dict(env, stop_step="0", PREP_ARGS="--resize 40,40 --crop 32"),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = tmp_path / "run" / "data"
    for name in ("config.yaml", "config_stage2.yaml"):
        video = yaml.safe_load((data / name).read_text())["video"]
        assert video["resize"] == [40, 40] and video["crop"] == 32
    assert (data / "mbart.trimmed" / "model.pt").is_file()
    proc = subprocess.run(["bash", os.path.join(EXAMPLES, "phoenix14t", "run.sh"), *TINY_ARGS[:-4]],
                          env=dict(env, step="1"), capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert len(re.findall(r"sentences \d+ \| ROUGE-L [\d.]+ \| BLEU-1", out)) == 4  # 2 stages x dev, test
    assert len(re.findall(r"^setting +\| paper +\| this run +\| ok/DIFFERS", out, re.M)) == 2  # audit per stage
    # stage 2 trained slt_mbart on the feature cache that stage 3 wrote
    from fairseq_slt.checkpoints import checkpoint_arch, load_checkpoint_state

    run_cfg = yaml.safe_load((data / "config_stage2_run.yaml").read_text())
    assert run_cfg["feature_cache"] == "features_stage2" and (data / "features_stage2" / "meta.json").is_file()
    assert checkpoint_arch(load_checkpoint_state(str(tmp_path / "run" / "stage2" / "checkpoint_best.pt"))) == "slt_mbart"


def test_prep_scripts_write_the_papers_video_settings_unless_told(phoenix_root, tmp_path):
    """Default: GFSLT-VLP's whole-frame 256x256 resize, crop 224; the video options change it."""
    script = load_script("phoenix14t")
    script.main(["--root", str(phoenix_root), "--out", str(tmp_path / "paper")])
    video = yaml.safe_load((tmp_path / "paper" / "config.yaml").read_text())["video"]
    assert video == {"resize": [256, 256], "crop": 224, "keep_ratio": 0.25, "max_frames": 300}
    script.main(["--root", str(phoenix_root), "--out", str(tmp_path / "small"), "--resize", "64", "--crop", "48",
                 "--keep-ratio", "0.5"])
    video = yaml.safe_load((tmp_path / "small" / "config.yaml").read_text())["video"]
    assert video == {"resize": 64, "crop": 48, "keep_ratio": 0.5, "max_frames": 300}
    with pytest.raises(SystemExit):
        script.main(["--root", str(phoenix_root), "--out", str(tmp_path / "bad"), "--crop", "300"])
    assert not (tmp_path / "bad").exists()
