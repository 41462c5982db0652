"""fairseq-slt-prep: a data root from a table and a folder of videos (mp4 and frame folders)."""

import csv
import logging
import os
import random
import re
import shutil
import subprocess
import wave

import numpy as np
import pytest
from PIL import Image

from helpers import BIN_DIR, run_cli, stage1_train_cmd
from fairseq_slt.data.manifest_utils import ManifestError
from fairseq_slt.data.prep_table import (
    TableError,
    assign_splits,
    prepare_from_tables,
    read_splits,
    read_table,
    split_groups,
)
from fairseq_slt.data.prep_utils import SourceRow, probe_sources
from fairseq_slt.data.sign_video_dataset import SignVideoDatasetCreator
from fairseq_slt.data.video_io import VideoSource, read_frames
from fairseq_slt.synthetic.generate import write_mp4

HEADER = ["id", "video", "text", "split", "signer", "start", "end"]
GOOD = [  # a mixed folder: two sentences cut out of one mp4, a whole mp4, frame folders (png, jpg)
    ["s1", "videos/long.mp4", "hello world", "train", "A", "0.0", "0.8"],
    ["s2", "videos/long.mp4", "good morning", "train", "B", "0.8", "1.6"],
    ["s3", "frames/f1", "good night", "train", "A", "", ""],
    ["s4", "videos/short.mp4", "hello again", "dev", "B", "", ""],
    ["s5", "frames/f2", "see you", "test", "C", "", ""],
]


def write_frames(folder, n, ext="png", seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        frame = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(frame).save(os.path.join(folder, f"im{i + 1}.{ext}"))


@pytest.fixture(scope="module")
def video_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("own_videos")
    rng = np.random.default_rng(0)
    (root / "videos").mkdir()
    write_mp4(str(root / "videos" / "long.mp4"), rng.integers(0, 255, (50, 32, 32, 3), dtype=np.uint8))  # 2 s
    write_mp4(str(root / "videos" / "short.mp4"), rng.integers(0, 255, (10, 32, 32, 3), dtype=np.uint8))
    (root / "videos" / "bad.mp4").write_bytes(b"this is not a video" * 10)
    write_frames(root / "frames" / "f1", 6)
    write_frames(root / "frames" / "f2", 4, ext="jpg")
    (root / "frames" / "empty").mkdir()
    return root


def write_table(path, rows, header=HEADER, delimiter=None):
    delimiter = delimiter or ("," if str(path).endswith(".csv") else "\t")
    with open(path, "w", encoding="utf-8", newline="") as f:
        if delimiter == "\t":  # TSV as people write it: no quoting
            f.writelines("\t".join(r) + "\n" for r in [header] + rows)
        else:
            writer = csv.writer(f, delimiter=delimiter, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
    return str(path)


def manifest(path):
    return SignVideoDatasetCreator.read_manifest(str(path))


def dropped(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id\treason"
    return dict(line.split("\t") for line in lines[1:])


def prep(tables, out, video_root, **kw):
    kw.setdefault("vocab_size", 40)
    return prepare_from_tables(tables, str(out), str(video_root), resize=32, crop=32, **kw)


def test_mixed_folder_with_time_ranges_and_frame_folders(video_root, tmp_path):
    table = write_table(tmp_path / "corpus.tsv", GOOD)
    out = tmp_path / "data"
    prep({None: table}, out, video_root)
    train = manifest(out / "train.tsv")
    assert [(r["id"], r["n_frames"], r["start"], r["end"]) for r in train] == [
        ("s1", "20", "0.000", "0.800"), ("s2", "20", "0.800", "1.600"), ("s3", "6", "", "")]
    assert list(train[0])[:7] == ["id", "video", "n_frames", "tgt_text", "signer", "start", "end"]
    assert [(r["id"], r["n_frames"]) for r in manifest(out / "dev.tsv")] == [("s4", "10")]
    test = manifest(out / "test.tsv")
    assert [(r["id"], r["video"], r["n_frames"]) for r in test] == [("s5", "frames/f2", "4")]
    assert not list(out.glob("dropped_*.tsv"))
    for name in ("config.yaml", "spm.model", "dict.txt"):
        assert (out / name).is_file()
    # the video root lies outside the data root: written absolute; the dataset reads the counted frames
    import yaml

    assert yaml.safe_load((out / "config.yaml").read_text())["video_root"] == str(video_root)
    for r in train + test:
        n = int(r["n_frames"])
        src = VideoSource(str(video_root / r["video"]), float(r["start"]) if r["start"] else None,
                          float(r["end"]) if r["end"] else None)
        assert read_frames(src, [0, n - 1], n).shape[0] == 2


def test_probing_in_a_thread_pool_gives_the_same_counts(video_root):
    videos = ("videos/long.mp4", "videos/short.mp4", "frames/f1", "frames/f2")
    sources = {str(video_root / v): v for v in videos}
    one, four = probe_sources(sources, workers=1), probe_sources(sources, workers=4)
    assert one == four
    assert [p.n_frames for p in one.values()] == [50, 10, 6, 4]
    assert one[str(video_root / videos[0])].fps == 25 and one[str(video_root / videos[2])].fps is None


def test_bad_rows_are_dropped_with_their_reasons(video_root, tmp_path):
    bad = [
        ["b1", "videos/nope.mp4", "hello", "train", "A", "", ""],
        ["b2", "frames/nope", "hello", "train", "A", "", ""],
        ["b3", "frames/empty", "hello", "train", "A", "", ""],
        ["b4", "videos/bad.mp4", "hello", "train", "A", "", ""],
        ["b5", "videos/long.mp4", "hello", "train", "A", "1.5", "2.5"],
        ["b6", "videos/long.mp4", "hello", "train", "A", "1.00", "1.01"],
        ["b7", "videos/short.mp4", "   ", "train", "A", "", ""],
        ["s1", "videos/short.mp4", "hello", "dev", "A", "", ""],  # duplicate of a train id
        ["b9", "videos/long.mp4", "hello", "train", "A", "zero", "1.0"],
        ["b10", "videos/long.mp4", "hello", "train", "A", "0.5", ""],
        ["b11", "videos/long.mp4", "hello", "train", "A", "1.0", "0.5"],
        ["b12", "videos/long.mp4", "hello", "train", "A", "-1", "0.5"],
        ["b13", "frames/f1", "hello", "train", "A", "0.0", "0.1"],
        ["b14", "", "hello", "train", "A", "", ""],
        ["", "videos/short.mp4", "hello", "train", "A", "", ""],
    ]
    table = write_table(tmp_path / "corpus.tsv", GOOD + bad)
    out = tmp_path / "data"
    kept = prep({None: table}, out, video_root)
    assert [r["id"] for r in kept["train"]] == ["s1", "s2", "s3"] and [r["id"] for r in kept["dev"]] == ["s4"]
    reasons = dropped(out / "dropped_train.tsv")
    expected = {
        "b1": "video videos/nope.mp4 missing",
        "b2": "frame folder missing or empty: frames/nope",
        "b3": "frame folder missing or empty: frames/empty",
        "b4": "video videos/bad.mp4 unreadable: ",
        "b5": "end 2.50 s is past the end of videos/long.mp4 (2.00 s)",
        "b6": "empty time range [1.000, 1.010) s at 25 fps",
        "b7": "empty text",
        "b9": "bad start/end: start 'zero' / end '1.0' must be numbers of seconds",
        "b10": "bad start/end: give both start and end, or neither",
        "b11": "bad start/end: end 0.5 <= start 1.0",
        "b12": "bad start/end: start -1 is negative",
        "b13": "bad start/end: frames/f1 is a frame folder; time ranges need a video file",
        "b14": "no video given",
        "": f"empty id ({table} row 21)",
    }
    assert sorted(reasons) == sorted(expected)
    for sid, reason in expected.items():
        assert reasons[sid].startswith(reason), (sid, reasons[sid])
    assert dropped(out / "dropped_dev.tsv") == {"s1": f"duplicate id (first at {table} row 2)"}


def test_a_split_that_loses_every_row_is_an_error_naming_the_dropped_list(video_root, tmp_path):
    rows = GOOD[:3] + [["d1", "videos/nope.mp4", "hello", "dev", "A", "", ""]]
    out = tmp_path / "data"
    with pytest.raises(ValueError, match=r"dev: no usable rows \(dropped rows and their reasons are in .*dropped_dev"):
        prep({None: write_table(tmp_path / "t.tsv", rows)}, out, video_root)
    assert dropped(out / "dropped_dev.tsv") == {"d1": "video videos/nope.mp4 missing"}


def test_csv_and_tsv_give_the_same_data_root(video_root, tmp_path):
    rows = [r[:] for r in GOOD]
    rows[0][2] = 'hello, "world"'  # a comma and quotes: quoted in the CSV, as is in the TSV
    outs = {}
    for name in ("t.tsv", "t.csv"):
        outs[name] = tmp_path / name.replace(".", "_")
        prep({None: write_table(tmp_path / name, rows)}, outs[name], video_root)
    for split in ("train", "dev", "test"):
        assert (outs["t.tsv"] / f"{split}.tsv").read_text() == (outs["t.csv"] / f"{split}.tsv").read_text()
    assert manifest(outs["t.csv"] / "train.tsv")[0]["tgt_text"] == 'hello, "world"'
    # without a telling extension, the header line decides
    csv_txt = write_table(tmp_path / "t.txt", rows, delimiter=",")
    assert [r.id for _, r in read_table(csv_txt)] == [r[0] for r in rows]
    assert read_table(write_table(tmp_path / "u.txt", rows, delimiter="\t"))[0][1].text == 'hello, "world"'


def test_per_split_tables(video_root, tmp_path):
    header = ["ID", "Video", "Text"]  # column names are case-insensitive; no split column needed
    tables = {s: write_table(tmp_path / f"{s}.csv", [r[:3] for r in GOOD if r[3] == s], header)
              for s in ("train", "dev", "test")}
    kept = prep(tables, tmp_path / "data", video_root)
    assert {s: [r["id"] for r in rows] for s, rows in kept.items()} == {
        "train": ["s1", "s2", "s3"], "dev": ["s4"], "test": ["s5"]}
    assert kept["train"][0]["n_frames"] == 50  # no start/end column: the whole video
    clash = write_table(tmp_path / "clash.tsv", [GOOD[3]])  # a dev row given as --train
    with pytest.raises(TableError, match=r"clash.tsv row 2: the split column says dev but the table was given "
                                         r"as the train split"):
        read_splits({"train": clash, "dev": tables["dev"]})


def test_char_level_and_lowercase(video_root, tmp_path):
    import sentencepiece as sp

    rows = [["c1", "frames/f1", "今天天气很好", "train"], ["c2", "videos/short.mp4", "明天下雨", "train"],
            ["c3", "frames/f2", "你好", "dev"]]
    out = tmp_path / "zh"
    prep({None: write_table(tmp_path / "zh.tsv", rows, HEADER[:4])}, out, video_root, char_level=True)
    assert [r["tgt_text"] for r in manifest(out / "train.tsv")] == ["今天天气很好", "明天下雨"]
    assert "signer" not in manifest(out / "train.tsv")[0]  # no signer column in the table
    spm = sp.SentencePieceProcessor(model_file=str(out / "spm.model"))
    assert [p for p in spm.encode("今天下雨", out_type=str) if p != "\u2581"] == list("今天下雨")
    rows = [["e1", "frames/f1", "Hello  World", "train"], ["e2", "frames/f2", "GOOD Night", "dev"]]
    table = write_table(tmp_path / "en.tsv", rows, HEADER[:4])
    kept = prep({None: table}, tmp_path / "en", video_root, lowercase=True)
    assert [r["tgt_text"] for r in kept["train"] + kept["dev"]] == ["hello world", "good night"]


def rows_of(n, signers=None):
    return [SourceRow(id=f"r{i:03d}", video=f"v{i % 7}.mp4", text="t", where=f"t.tsv row {i + 2}",
                      signer=None if signers is None else f"p{i % signers}") for i in range(n)]


def test_split_by_fraction_is_deterministic_and_independent_of_row_order():
    rows = rows_of(50)
    splits = assign_splits(rows, dev_fraction=0.2, test_fraction=0.1, seed=1)
    assert {s: len(v) for s, v in splits.items()} == {"train": 35, "dev": 10, "test": 5}
    assert sorted(r.id for v in splits.values() for r in v) == [r.id for r in rows]
    ids = {s: [r.id for r in v] for s, v in splits.items()}
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    assert {s: sorted(r.id for r in v) for s, v in assign_splits(shuffled, 0.2, 0.1, seed=1).items()} == \
        {s: sorted(v) for s, v in ids.items()}
    assert {s: [r.id for r in v] for s, v in assign_splits(rows, 0.2, 0.1, seed=2).items()} != ids
    assert all(v == sorted(v) for v in ids.values())  # table order within a split
    assert set(assign_splits(rows, 0.2, 0.0, seed=1)) == {"train", "dev"}


def test_split_by_signer_and_by_video_keep_groups_whole():
    rows = rows_of(60, signers=6)
    splits = assign_splits(rows, dev_fraction=0.2, test_fraction=0.2, seed=3, split_by="signer")
    signers = {s: {r.signer for r in v} for s, v in splits.items()}
    assert set(signers) == {"train", "dev", "test"}
    assert sum(len(v) for v in signers.values()) == len(set.union(*signers.values())) == 6  # disjoint
    assert {s: len(v) for s, v in splits.items()} == {"train": 40, "dev": 10, "test": 10}
    by_video = assign_splits(rows, 0.2, 0.2, seed=3, split_by="video")
    videos = {s: {r.video for r in v} for s, v in by_video.items()}
    assert sum(len(v) for v in videos.values()) == 7  # each of the 7 videos in exactly one split


def test_split_errors():
    with pytest.raises(TableError, match="2 signer.* too few for --dev-fraction 0.1 and --test-fraction 0.1: "
                                         "none is left for train"):
        assign_splits(rows_of(10, signers=2), 0.1, 0.1, seed=1, split_by="signer")
    with pytest.raises(TableError, match=r"t.tsv row 2: --split-by signer needs a signer column"):
        assign_splits(rows_of(10), 0.1, 0.1, seed=1, split_by="signer")
    rows = rows_of(10, signers=3)
    rows[4].signer = ""
    with pytest.raises(TableError, match=r"t.tsv row 6: no signer; --split-by signer needs one on every row"):
        assign_splits(rows, 0.1, 0.1, seed=1, split_by="signer")
    assert split_groups({"a": 1, "b": 1, "c": 1}, 0.1, 0.1, seed=1) == \
        split_groups({"c": 1, "b": 1, "a": 1}, 0.1, 0.1, seed=1)


def test_table_errors_name_the_file_and_row(tmp_path):
    with pytest.raises(TableError, match=r"t.tsv: missing column\(s\) text \(header: id, video\); a table"):
        read_table(write_table(tmp_path / "t.tsv", [["a", "b"]], ["id", "video"]))
    with pytest.raises(TableError, match=r"s.tsv row 3: split 'training' is not one of train, dev, test"):
        read_table(write_table(tmp_path / "s.tsv", [GOOD[0], ["x", "v.mp4", "t", "training"]]))
    path = tmp_path / "c.csv"
    path.write_text("id,video,text\na,v.mp4,hello, world\n")
    with pytest.raises(TableError, match=r"c.csv row 2: 4 fields but the header has 3; quote a text that holds"):
        read_table(str(path))
    path = tmp_path / "x.dat"
    path.write_text("id video text\n")
    with pytest.raises(TableError, match="cannot tell TSV from CSV"):
        read_table(str(path))
    path = tmp_path / "l.tsv"
    path.write_bytes(b"id\tvideo\ttext\na\tv.mp4\t\xff\xfe\n")
    with pytest.raises(TableError, match=r"l.tsv: row 2 is not valid UTF-8 .*re-encode the table as UTF-8"):
        read_table(str(path))
    with_split = write_table(tmp_path / "w.tsv", GOOD)
    with pytest.raises(TableError, match="w.tsv: the table has a split column, so --dev-fraction"):
        read_splits({None: with_split}, dev_fraction=0.2)
    only_train = write_table(tmp_path / "o.tsv", GOOD[:3])
    with pytest.raises(TableError, match="no dev rows in .*o.tsv"):
        read_splits({None: only_train})


def test_rerun_without_test_removes_the_stale_test_manifest(video_root, tmp_path):
    out = tmp_path / "data"
    prep({None: write_table(tmp_path / "a.tsv", GOOD)}, out, video_root)
    assert (out / "test.tsv").is_file()
    prep({None: write_table(tmp_path / "b.tsv", GOOD[:4])}, out, video_root)
    assert not (out / "test.tsv").exists() and (out / "dev.tsv").is_file()


@pytest.mark.parametrize("argv, message", [
    ([], "give a table, or --train and --dev (and --test)"),
    (["t.tsv", "--train", "a.tsv"], "give one table, or --train/--dev/--test, not both"),
    (["--train", "a.tsv"], "per-split tables need at least --train and --dev"),
    (["t.tsv", "--dev-fraction", "1.2"], "--dev-fraction must be in [0, 1), got 1.2"),
    (["t.tsv", "--dev-fraction", "0.5", "--test-fraction", "0.5"], "leave no rows for train"),
    (["t.tsv", "--crop", "300"], "--crop (300) must not exceed --resize ((256, 256))"),
    (["t.tsv", "--resize", "0"], "expected N or H,W (positive integers), got '0'"),
    (["t.tsv", "--keep-ratio", "0"], "--keep-ratio must be in (0, 1], got 0.0"),
])
def test_cli_usage_errors(argv, message, tmp_path, capsys):
    from fairseq_slt.cli.prep import cli_main

    with pytest.raises(SystemExit) as e:
        cli_main(argv + ["--out", str(tmp_path / "o")])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_writes_the_video_settings(video_root, tmp_path):
    import yaml

    from fairseq_slt.cli.prep import cli_main

    table = write_table(tmp_path / "t.tsv", GOOD)
    cli_main([table, "--video-root", str(video_root), "--out", str(tmp_path / "o"), "--vocab-size", "40",
              "--resize", "40,36", "--crop", "32", "--keep-ratio", "0.5", "--max-frames", "64", "--rotate", "0"])
    cfg = yaml.safe_load((tmp_path / "o" / "config.yaml").read_text())
    assert cfg["video"] == {"resize": [40, 36], "crop": 32, "keep_ratio": 0.5, "max_frames": 64}
    assert cfg["augment"] == {"rotate": 0.0, "scale": 0.2, "translate": 10.0, "p": 0.5}
    with pytest.raises(SystemExit, match=r"fairseq-slt-prep: error: table not found: .*nope.tsv"):
        cli_main([str(tmp_path / "nope.tsv"), "--video-root", str(video_root), "--out", str(tmp_path / "o")])


@pytest.mark.slow
def test_cli_on_a_synthetic_table_then_fairseq_train(tiny_corpus, tmp_path):
    """A table without a split column (half mp4 files, half frame folders) -> fairseq-slt-prep ->
    stock fairseq-train for 2 updates."""
    rows = []
    for split in ("train", "dev", "test"):
        for i, r in enumerate(manifest(tiny_corpus / f"{split}.tsv")):
            video = r["video"] if i % 2 else os.path.join("frames", split, r["id"])
            rows.append([r["id"], video, r["tgt_text"], r["signer"]])
    table = write_table(tmp_path / "corpus.csv", rows, ["id", "video", "text", "signer"])
    out = tmp_path / "data"
    # a bad option for this table: a one-line error, nothing written
    proc = subprocess.run([os.path.join(BIN_DIR, "fairseq-slt-prep"), table, "--out", out, "--split-by", "signer"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and proc.stderr.strip().splitlines()[-1] == (
        "fairseq-slt-prep: error: 2 signer(s) are too few for --dev-fraction 0.1 and --test-fraction 0.1: none "
        "is left for train")
    assert not out.exists()
    run_cli(["fairseq-slt-prep", table, "--video-root", tiny_corpus, "--out", out, "--vocab-size", "40",
             "--resize", "48", "--crop", "32", "--dev-fraction", "0.2", "--test-fraction", "0.2", "--workers", "2"])
    sizes = {s: len(manifest(out / f"{s}.tsv")) for s in ("train", "dev", "test")}
    assert sizes == {"train": 13, "dev": 4, "test": 4}
    assert {r["video"].split("/")[0] for r in manifest(out / "train.tsv")} == {"videos", "frames"}
    log = run_cli(stage1_train_cmd(out, tmp_path / "ckpt", 2))
    assert "num_updates 2" in log or "num_updates=2" in log
    assert (tmp_path / "ckpt" / "checkpoint_last.pt").is_file()


def test_small_corpus_unigram_vocabulary_is_reported_and_bpe_keeps_words(tmp_path, caplog):
    """sentencepiece's unigram model on a small corpus comes out as near-character pieces: the
    prep says so with the numbers and what to pass; --spm-type bpe keeps whole words."""
    import logging

    from fairseq_slt.data.vocab import pieces_per_word, train_sentencepiece

    rng = random.Random(0)
    days, weather = ["today", "tomorrow", "on monday"], ["rain", "snow", "sunshine", "fog", "thunder"]
    texts = [f"{rng.choice(days)} there will be {rng.choice(weather)} in the {rng.choice(['north', 'south'])}"
             for _ in range(400)]
    with caplog.at_level(logging.INFO, logger="fairseq_slt.data.vocab"):
        unigram = train_sentencepiece(texts, str(tmp_path / "uni"), 3000, "unigram")
    assert pieces_per_word(unigram, texts) > 2.0
    assert any("near-character pieces" in r.getMessage() and "--spm-type bpe" in r.getMessage()
               for r in caplog.records if r.levelname == "WARNING")
    bpe = train_sentencepiece(texts, str(tmp_path / "bpe"), 3000, "bpe")
    assert pieces_per_word(bpe, texts) < 1.2


def write_wav(path, seconds=0.4):
    """An audio-only file: a media file without a video stream."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * seconds))


def test_split_by_video_is_by_real_path_and_the_log_counts_videos(tmp_path, caplog):
    root = tmp_path / "root"
    (root / "videos").mkdir(parents=True)
    for i in range(6):
        (root / "videos" / f"v{i}.mp4").write_bytes(b"")
    os.symlink("v0.mp4", root / "videos" / "link.mp4")
    spellings = ["videos/v0.mp4", "./videos/v0.mp4", "videos//v0.mp4", "videos/link.mp4", "videos/../videos/v0.mp4"]
    rows = [SourceRow(id=f"a{i}", video=v, text="t") for i, v in enumerate(spellings)]
    rows += [SourceRow(id=f"b{i}", video=f"videos/v{i % 5 + 1}.mp4", text="t") for i in range(15)]
    table = write_table(tmp_path / "t.tsv", [[r.id, r.video, r.text] for r in rows], ["id", "video", "text"])
    with caplog.at_level(logging.INFO, logger="fairseq_slt.data.prep_table"):
        splits = read_splits({None: table}, 0.2, 0.2, seed=1, split_by="video", video_root=str(root))
    split_of = {r.id: s for s, v in splits.items() for r in v}
    assert len({split_of[f"a{i}"] for i in range(len(spellings))}) == 1  # one video, one split
    assert len(split_of) == 20
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("split by video"))
    counts = [(int(n), int(v)) for n, v in re.findall(r"(\d+) rows / (\d+) videos", line)]
    assert len(counts) == 3 and sum(n for n, _ in counts) == 20 and sum(v for _, v in counts) == 6, line


def test_rerun_removes_stage2_files_derived_from_the_earlier_text(
        video_root, mbart_dir, tmp_path, caplog):
    from fairseq.data import Dictionary

    from fairseq_slt.cli.prep import cli_main
    from fairseq_slt.mbart.trim import used_pieces

    out = tmp_path / "data"
    prep({None: write_table(tmp_path / "a.tsv", GOOD)}, out, video_root, mbart_dir=str(mbart_dir))
    first = set(Dictionary.load(str(out / "mbart.trimmed" / "dict.txt")).symbols)
    assert (out / "config_stage2.yaml").is_file()
    other = [r[:2] + ["zebra quartz " + r[2]] + r[3:] for r in GOOD]  # words the first trim dropped
    table = write_table(tmp_path / "b.tsv", other)
    with caplog.at_level(logging.WARNING, logger="fairseq_slt.data.prep_utils"):
        prep({None: table}, out, video_root)
    assert not (out / "config_stage2.yaml").exists() and not (out / "mbart.trimmed").exists()
    removed = sorted(r.getMessage().split(",")[0] for r in caplog.records if r.getMessage().startswith("removing"))
    assert removed == [f"removing {out / 'config_stage2.yaml'}", f"removing {out / 'mbart.trimmed'}"]
    # with --mbart-dir again, the trim is of this run's text: its words are not <unk>
    prep({None: table}, out, video_root, mbart_dir=str(mbart_dir))
    base = Dictionary.load(str(mbart_dir / "dict.txt"))
    known = {p for p in used_pieces([r[2] for r in other if r[3] == "train"], str(mbart_dir / "sentence.bpe.model"))
             if base.index(p) != base.unk()}
    assert known - first and known <= set(Dictionary.load(str(out / "mbart.trimmed" / "dict.txt")).symbols)
    # a trimmed folder holding other files is not removed: one line naming them, exit 1
    (out / "mbart.trimmed" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as e:
        cli_main([table, "--video-root", str(video_root), "--out", str(out), "--vocab-size", "40",
                  "--resize", "32", "--crop", "32"])
    assert str(e.value.code) == (f"fairseq-slt-prep: error: {out / 'mbart.trimmed'} (the trimmed mBART of an earlier "
                                 "run, derived from its text) holds files a trim does not write: notes.txt; move "
                                 "them out or remove the folder, then run again")
    assert (out / "mbart.trimmed" / "notes.txt").is_file() and (out / "config_stage2.yaml").is_file()


def test_frame_folders_skip_companion_files_and_drop_cut_off_or_ambiguous_frames(tmp_path):
    from fairseq_slt.cli.prep import cli_main
    from fairseq_slt.data.video_io import VideoReadError, list_frame_files

    root = tmp_path / "root"
    write_frames(root / "ok", 4)
    (root / "ok" / "._im1.png").write_bytes(b"\0\5\26\7" + b"\0" * 80)  # macOS AppleDouble companion
    (root / "ok" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" + b"\0" * 40)
    (root / "ok" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 40)
    write_frames(root / "jpg", 3, ext="jpg")
    write_frames(root / "twice", 3)
    shutil.copy(root / "twice" / "im2.png", root / "twice" / "im02.png")
    for ext in ("png", "jpg", "bmp"):
        write_frames(root / f"cut_{ext}", 3, ext=ext)
        frame = root / f"cut_{ext}" / f"im2.{ext}"
        frame.write_bytes(frame.read_bytes()[:-30])  # an interrupted copy
    write_wav(root / "speech.wav")
    assert [os.path.basename(p) for p in list_frame_files(str(root / "ok"))] == [f"im{i}.png" for i in range(1, 5)]
    assert read_frames(VideoSource(str(root / "ok")), [0, 3], 4).shape == (2, 24, 32, 3)
    with pytest.raises(VideoReadError, match=f"frame folder {root / 'twice'} has two files of one frame: im02.png "
                                             "and im2.png; keep one of them"):
        list_frame_files(str(root / "twice"))
    rows = [["k1", "ok", "one two", "train"], ["k2", "jpg", "three four", "train"], ["k3", "ok", "five", "dev"],
            ["d1", "twice", "x", "train"], ["d2", "cut_png", "x", "train"], ["d3", "cut_jpg", "x", "train"],
            ["d4", "cut_bmp", "x", "train"], ["d5", "speech.wav", "x", "train"]]
    table = write_table(tmp_path / "t.tsv", rows, HEADER[:4])
    kept = prep({None: table}, tmp_path / "data", root)
    assert [(r["id"], r["n_frames"]) for r in kept["train"]] == [("k1", 4), ("k2", 3)]
    reasons = dropped(tmp_path / "data" / "dropped_train.tsv")
    expected = {
        "d1": f"frame folder {os.path.realpath(root / 'twice')} has two files of one frame: im02.png and im2.png",
        "d2": "frame folder cut_png: 1 of its 3 frames are unusable, the first: im2.png is truncated (no PNG end",
        "d3": "frame folder cut_jpg: 1 of its 3 frames are unusable, the first: im2.jpg is truncated (no JPEG end",
        "d4": "frame folder cut_bmp: 1 of its 3 frames are unusable, the first: im2.bmp is truncated (",
        "d5": "video speech.wav unreadable: it has no video stream (streams: audio)",
    }
    assert sorted(reasons) == sorted(expected)
    for sid, reason in expected.items():
        assert reasons[sid].startswith(reason), (sid, reasons[sid])
    # --skip-frame-check: the folders are counted, not checked
    out = tmp_path / "unchecked"
    cli_main([table, "--video-root", str(root), "--out", str(out), "--vocab-size", "40", "--resize", "32",
              "--crop", "32", "--skip-frame-check"])
    assert [(r["id"], r["n_frames"]) for r in manifest(out / "train.tsv")] == [
        ("k1", "4"), ("k2", "3"), ("d2", "3"), ("d3", "3"), ("d4", "3")]
    assert sorted(dropped(out / "dropped_train.tsv")) == ["d1", "d5"]


def test_time_ranges_take_plain_numbers_only(video_root, tmp_path):
    bad = {  # float() takes every one of these
        "t1": ("0", "inf"), "t2": ("nan", "1.0"), "t3": ("0", "1_0"), "t4": ("1e-1", "0.5"),
        "t5": ("+0.1", "0.5"), "t6": ("0", "\u0661"), "t7": ("-inf", "1"), "t8": ("0", "0x1"),
    }
    rows = GOOD + [[sid, "videos/long.mp4", "hello", "train", "A", s, e] for sid, (s, e) in bad.items()]
    rows.append(["t9", "videos/long.mp4", "plain", "train", "A", " .4 ", "1."])
    kept = prep({None: write_table(tmp_path / "t.tsv", rows)}, tmp_path / "data", video_root)
    t9 = next(r for r in kept["train"] if r["id"] == "t9")
    assert (t9["start"], t9["end"], t9["n_frames"]) == ("0.400", "1.000", 15)
    reasons = dropped(tmp_path / "data" / "dropped_train.tsv")
    assert sorted(reasons) == sorted(bad)
    for sid, (start, end) in bad.items():
        kind = "finite numbers" if sid in ("t1", "t2", "t7") else "numbers"
        assert reasons[sid] == (f"bad start/end: start {start!r} / end {end!r} must be {kind} of seconds (digits "
                                "with an optional decimal point, e.g. 12.5)")
        # the dataset reads a manifest's start/end with the same parser: the same reason, with its row
        row = {"id": sid, "video": "videos/long.mp4", "n_frames": "20", "tgt_text": "x", "start": start,
               "end": end, "_row": 7}
        with pytest.raises(ManifestError) as e:
            SignVideoDatasetCreator._parse_row("m.tsv", row, str(video_root))
        assert str(e.value) == f"m.tsv row 7 (id {sid}): " + reasons[sid][len("bad start/end: "):]


def test_an_id_holding_a_line_break_is_dropped_naming_its_row(video_root, tmp_path):
    from fairseq_slt.cli.prep import cli_main

    rows = [r[:] for r in GOOD] + [["x\ny", "videos/short.mp4", "hello", "train", "A", "", ""],
                                   ["z", "videos/short.mp4", "hi", "train", "A\tB", "", ""]]
    table = write_table(tmp_path / "t.csv", rows)  # CSV quotes the line break
    out = tmp_path / "data"
    cli_main([table, "--video-root", str(video_root), "--out", str(out), "--vocab-size", "40", "--resize", "32",
              "--crop", "32"])
    assert [r["id"] for r in manifest(out / "train.tsv")] == ["s1", "s2", "s3"]
    assert dropped(out / "dropped_train.tsv") == {
        "x y": f"id 'x\\ny' holds a line break or tab ({table} row 8); fix it in the table",
        "z": f"signer 'A\\tB' holds a line break or tab ({table} row 9); fix it in the table",
    }
