"""Manifests: plain TSV that round-trips any text, row validation, load-time skips.

Each bad input is checked in a unit test and, where a user meets it, through the CLI they run
(``fairseq-train``, marked slow).
"""

import os
import shutil
import subprocess
import sys

import pytest
import torch

from helpers import BIN_DIR, stage1_train_cmd
from fairseq_slt.data import ManifestError, SignVideoDatasetCreator
from fairseq_slt.data.manifest_utils import read_manifest, write_manifest
from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask

NASTY_TEXTS = [
    'he said "hello" and \'bye\'',
    "a back\\slash, a double \\\\ one and a trailing one\\",
    "# not a comment",
    "中文句子，标点。",
    "مرحبا بالعالم",
    "emoji 🤟 and combining e\u0301",
    "  leading and trailing spaces  ",
]


def corpus_copy(tiny_corpus, tmp_path):
    return shutil.copytree(tiny_corpus, tmp_path / "data")


def rows_of(path):
    return SignVideoDatasetCreator.read_manifest(str(path))


def rewrite(path, rows):
    write_manifest(str(path), [{k: v for k, v in r.items() if k != "_row"} for r in rows])


def load(data, split="test", **kwargs):
    task = SignTranslationTask.setup_task(SignTranslationConfig(data=str(data), seed=1))
    cfg = task.data_cfg
    return SignVideoDatasetCreator.from_tsv(
        str(data), cfg, split, task.tgt_dict, task.bpe_tokenizer, is_train=False, **kwargs
    )


def test_any_text_without_tab_or_newline_round_trips_byte_for_byte(tmp_path):
    path = tmp_path / "m.tsv"
    rows = [{"id": f"s{i}", "video": f"v{i}.mp4", "n_frames": 10, "tgt_text": t} for i, t in enumerate(NASTY_TEXTS)]
    write_manifest(str(path), rows)
    expected = "id\tvideo\tn_frames\ttgt_text\n" + "".join(
        f"s{i}\tv{i}.mp4\t10\t{t}\n" for i, t in enumerate(NASTY_TEXTS)
    )
    assert path.read_bytes() == expected.encode("utf-8")  # written as is: no quoting, no escapes
    header, back = read_manifest(str(path))
    assert header == ["id", "video", "n_frames", "tgt_text"]
    assert [r["tgt_text"] for r in back] == NASTY_TEXTS
    assert [r["_row"] for r in back] == list(range(2, 2 + len(NASTY_TEXTS)))
    with pytest.raises(ValueError, match="row x: column tgt_text holds a tab or line break"):
        write_manifest(str(path), [{"id": "x", "video": "v", "n_frames": 1, "tgt_text": "a\tb"}])


def test_byte_order_mark_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_bytes(b"\xef\xbb\xbfid\tvideo\tn_frames\ttgt_text\r\ns0\tv.mp4\t5\thallo welt\r\n")
    header, rows = read_manifest(str(path))
    assert header == ["id", "video", "n_frames", "tgt_text"] and rows[0]["tgt_text"] == "hallo welt"


def test_non_utf8_is_reported_on_its_own_row(tmp_path):
    path = tmp_path / "m.tsv"
    good = "s{0}\tv.mp4\t5\ttext {0}\n"
    path.write_bytes(("id\tvideo\tn_frames\ttgt_text\n" + good.format(0) + good.format(1)).encode()
                     + "s2\tv.mp4\t5\tstra\u00dfe\n".encode("latin-1") + good.format(3).encode())
    with pytest.raises(ManifestError, match=r"m\.tsv: row 4 is not valid UTF-8 .*re-encode the manifest as UTF-8"):
        read_manifest(str(path))


@pytest.mark.parametrize("body, message", [
    ("s0\tv.mp4\t5\n", r"row 2 \(id s0\): 3 tab-separated fields but the header has 4"),
    ("s0\tv.mp4\t5\ta\tb\n", r"row 2 \(id s0\): 5 tab-separated fields but the header has 4"),
    ("s0\tv.mp4\t5\ta\n\ns1\tv.mp4\t5\tb\n", r"row 3 is blank; remove the empty line"),
])
def test_malformed_rows_name_the_line(tmp_path, body, message):
    path = tmp_path / "m.tsv"
    path.write_text("id\tvideo\tn_frames\ttgt_text\n" + body, encoding="utf-8")
    with pytest.raises(ManifestError, match=message):
        read_manifest(str(path))


def test_empty_manifest_and_repeated_column(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_text("")
    with pytest.raises(ManifestError, match="the manifest is empty; it needs a header line"):
        read_manifest(str(path))
    path.write_text("id\tvideo\tid\n")
    with pytest.raises(ManifestError, match="the header repeats column"):
        read_manifest(str(path))


@pytest.mark.parametrize("start, end, message", [
    ("-0.4", "1.0", r"start -0\.4 is negative; times count from 0 s"),
    ("abc", "1.0", r"start 'abc' / end '1\.0' must be numbers of seconds"),
    ("nan", "1.0", r"start 'nan' / end '1\.0' must be finite numbers"),
    ("0.5", "inf", r"start '0\.5' / end 'inf' must be finite numbers"),
    ("1_0", "20", r"start '1_0' / end '20' must be numbers of seconds \(digits with an optional decimal point"),
    ("1.0", "1.0", r"end 1\.0 <= start 1\.0"),
    ("0.5", "", r"give both start and end, or neither"),
])
def test_bad_time_ranges_name_the_row(tiny_corpus, tmp_path, start, end, message):
    data = corpus_copy(tiny_corpus, tmp_path)
    rows = rows_of(data / "test.tsv")
    for r in rows:
        r["start"], r["end"] = "", ""
    rows[1]["start"], rows[1]["end"] = start, end
    rewrite(data / "test.tsv", rows)
    with pytest.raises(ManifestError, match=r"test\.tsv row 3 \(id test_00001\): " + message):
        load(data)


def test_time_range_on_a_frame_folder_is_refused(tiny_corpus, tmp_path):
    data = corpus_copy(tiny_corpus, tmp_path)
    rows = rows_of(data / "test.tsv")
    for r in rows:
        r["video"] = r["video"].replace("videos/", "frames/").replace(".mp4", "")
        r["start"], r["end"] = "", ""
    rows[0]["start"], rows[0]["end"] = "0.0", "1.0"
    rewrite(data / "test.tsv", rows)
    with pytest.raises(ManifestError, match=r"row 2 \(id test_00000\): start/end given for the frame folder"):
        load(data)


def test_missing_video_is_skipped_at_load_with_the_flag_and_counted_per_batch(tiny_corpus, tmp_path):
    data = corpus_copy(tiny_corpus, tmp_path)
    os.remove(data / rows_of(data / "test.tsv")[2]["video"])
    with pytest.raises(ManifestError, match=r"row 4 \(id test_00002\): video not found: .*or pass --skip-bad-videos"):
        load(data)
    ds = load(data, skip_bad_videos=True)
    assert len(ds) == 5 and ds.unavailable.keys() == {2}
    assert ds[2] is None and ds[1] is not None
    batch = ds.collater([ds[i] for i in range(5)])
    assert batch["n_skipped"] == 1 and sorted(batch["id"].tolist()) == [0, 1, 3, 4]


def train(cmd, **env):
    full = [os.path.join(BIN_DIR, cmd[0])] + [str(c) for c in cmd[1:]]
    return subprocess.run(full, capture_output=True, text=True, timeout=600, env=dict(os.environ, **env))


@pytest.mark.slow
def test_fairseq_train_refuses_a_negative_start(tiny_corpus, tmp_path):
    data = corpus_copy(tiny_corpus, tmp_path)
    rows = rows_of(data / "train.tsv")
    for r in rows:
        r["start"], r["end"] = "", ""
    rows[4]["start"], rows[4]["end"] = "-1", "0.5"
    rewrite(data / "train.tsv", rows)
    proc = train(stage1_train_cmd(data, tmp_path / "ckpt", 1))
    assert proc.returncode != 0
    assert "train.tsv row 6 (id train_00004): start -1 is negative" in proc.stderr
    assert not (tmp_path / "ckpt" / "checkpoint_last.pt").exists()


@pytest.mark.slow
def test_fairseq_train_skips_a_missing_video_every_epoch(tiny_corpus, tmp_path):
    data = corpus_copy(tiny_corpus, tmp_path)
    os.remove(data / rows_of(data / "train.tsv")[3]["video"])
    cmd = stage1_train_cmd(data, tmp_path / "ckpt", 100) + ["--max-epoch", "2", "--skip-bad-videos"]
    proc = train(cmd)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert out.count("skipping ") == 1 and "train.tsv row 5 (id train_00003): video not found" in out
    # the end-of-epoch line of each of the 2 epochs counts the skipped video once
    epoch_lines = [line for line in out.splitlines() if "| train |" in line or "train | epoch" in line]
    counts = [line.split("skipped_videos ")[1].split()[0] for line in epoch_lines if "skipped_videos" in line]
    assert counts == ["1", "1"], epoch_lines


EXPLOIT = """
import os, torch
class Exploit:
    def __reduce__(self):
        return (os.system, ("touch {marker}",))
torch.save({{"model": {{}}, "args": None, "payload": Exploit()}}, {path!r})
"""


@pytest.mark.slow
def test_project_loaders_stay_weights_only_when_the_environment_says_otherwise(tiny_corpus, tmp_path):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 turns torch's default off; the project's own loaders pass
    weights_only=True explicitly, so a pickled payload is still refused and never runs."""
    evil, marker = tmp_path / "evil.pt", tmp_path / "pwned"
    subprocess.run([sys.executable, "-c", EXPLOIT.format(marker=marker, path=str(evil))], check=True)
    assert not marker.exists()
    env = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    translate = [os.path.join(BIN_DIR, "fairseq-slt-translate"), "--path", str(evil), "--data", str(tiny_corpus),
                 str(tiny_corpus / rows_of(tiny_corpus / "test.tsv")[0]["video"])]
    proc = subprocess.run(translate, capture_output=True, text=True, timeout=300, env=dict(os.environ, **env))
    assert proc.returncode != 0 and str(evil) in proc.stderr
    # stage 2 reads --stage1-checkpoint with the same loader
    from fairseq_slt.checkpoints import RefusedPickleError
    from fairseq_slt.models.pretrained import load_stage1_visual_encoder

    os.environ.update(env)
    try:
        with pytest.raises(RefusedPickleError, match=r"evil\.pt: torch's weights-only loader refuses the pickled global posix\.system"):
            load_stage1_visual_encoder(str(evil))
    finally:
        del os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"]
    assert not marker.exists()
    assert torch.load(evil, weights_only=False) is not None and marker.exists()  # the payload is real


@pytest.mark.slow
@pytest.mark.parametrize("damage, expect", [
    ("bom", None),  # accepted: trains
    ("latin1", "train.tsv: row 5 is not valid UTF-8"),
    ("start", "train.tsv row 4 (id train_00002): start 'soon' / end '2.0' must be numbers of seconds"),
])
def test_fairseq_train_on_damaged_manifests(tiny_corpus, tmp_path, damage, expect):
    data = corpus_copy(tiny_corpus, tmp_path)
    path = data / "train.tsv"
    if damage == "bom":
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    elif damage == "latin1":
        lines = path.read_bytes().split(b"\n")
        lines[4] = lines[4] + " stra\u00dfe".encode("latin-1")
        path.write_bytes(b"\n".join(lines))
    else:
        rows = rows_of(path)
        for r in rows:
            r["start"], r["end"] = "", ""
        rows[2]["start"], rows[2]["end"] = "soon", "2.0"
        rewrite(path, rows)
    proc = train(stage1_train_cmd(data, tmp_path / "ckpt", 1))
    if expect is None:
        assert proc.returncode == 0, proc.stderr[-3000:]
    else:
        assert proc.returncode != 0 and expect in proc.stderr, proc.stderr[-3000:]


@pytest.mark.slow
def test_prep_cli_keeps_any_text_byte_for_byte(tiny_corpus, tmp_path):
    """Quotes, backslashes, '#', non-Latin scripts: from a user's TSV table through
    fairseq-slt-prep into the manifests and back out of the dataset reader, unchanged."""
    videos = [r["video"] for split in ("train", "dev", "test") for r in rows_of(tiny_corpus / f"{split}.tsv")]
    texts = {"train": NASTY_TEXTS[:4] + ["plain words here"] * 6, "dev": NASTY_TEXTS[4:6], "test": NASTY_TEXTS[6:] + ["x y"]}
    lines, k = ["id\tvideo\ttext\tsplit"], 0
    for split, ts in texts.items():
        for t in ts:
            lines.append(f"s{k}\t{videos[k]}\t{t}\t{split}")
            k += 1
    table = tmp_path / "table.tsv"
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "data"
    proc = subprocess.run([os.path.join(BIN_DIR, "fairseq-slt-prep"), str(table), "--video-root", str(tiny_corpus),
                           "--out", str(out), "--vocab-size", "60", "--resize", "48", "--crop", "32"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for split, ts in texts.items():
        got = [r["tgt_text"] for r in rows_of(out / f"{split}.tsv")]
        assert got == [t.strip() for t in ts], (split, got)  # prep trims surrounding spaces, nothing else


@pytest.mark.parametrize("start,end", [("1", "inf"), ("1", "nan"), ("-1", "2"), ("2", "1"), ("1", ""), ("1e3", "2e3")])
def test_prep_refuses_a_time_range_with_the_datasets_message(tmp_path, start, end):
    # one parser (manifest_utils.parse_time_range): what the dataset would refuse, prep drops first
    from fairseq_slt.data.prep_utils import Probe, SourceRow, check_row

    row, reason = check_row(SourceRow("s0", "v.mp4", "hallo", start=start, end=end), Probe(250, 25.0))
    assert row is None and reason.startswith("bad start/end: ")
    manifest_row = {"_row": 2, "id": "s0", "video": "v.mp4", "n_frames": "5", "tgt_text": "hallo",
                    "start": start, "end": end}
    with pytest.raises(ManifestError) as e:
        SignVideoDatasetCreator._parse_row(str(tmp_path / "m.tsv"), manifest_row, str(tmp_path))
    assert str(e.value) == f"{tmp_path / 'm.tsv'} row 2 (id s0): " + reason[len("bad start/end: "):]


def test_a_tsv_table_is_read_as_a_manifest(tmp_path):
    # one row reader: a BOM, \r\n line ends, quotes and '#' kept as text, in manifests and prep's TSV tables
    from fairseq_slt.data.prep_table import read_table

    body = "id\tvideo\ttext\r\n" + "".join(f"s{i}\tv{i}.mp4\t{t.strip()}\r\n" for i, t in enumerate(NASTY_TEXTS))
    path = tmp_path / "t.tsv"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    _, rows = read_manifest(str(path))
    table = read_table(str(path))
    assert [r["text"] for r in rows] == [r.text for _, r in table] == [t.strip() for t in NASTY_TEXTS]
    assert [r["_row"] for r in rows] == [int(r.where.rsplit(" ", 1)[1]) for _, r in table]


def test_split_names_have_one_rule():
    from fairseq_slt.data.manifest_utils import is_train_split
    from fairseq_slt.feature_cache_builder import view_plan

    assert [is_train_split(s) for s in ("train", "train_small", "dev", "test", "valid")] == [
        True, True, False, False, False]
    assert view_plan("train_small", 2) == [1, 2] and view_plan("dev", 2) == []
