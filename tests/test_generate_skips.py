"""fairseq-generate --skip-bad-videos: the skipped rows are counted and named, and the scorer
refuses an output that lacks rows of the split unless told to score the rest."""

import os
import re
import shutil
import subprocess

import pytest
import torch

from helpers import BIN_DIR, PLUGIN_DIR, run_cli
from fairseq_slt.tasks.decode_tally import DecodeTally, running_line, skip_summary
from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask


class FakeSplit:
    """What ``tally_decoded`` reads of a dataset: its split name, ids and length."""

    def __init__(self, split, n):
        self.split, self.ids = split, [f"{split}_{i:05d}" for i in range(n)]

    def __len__(self):
        return len(self.ids)


def tally_task(n_rows=5, skip_bad_videos=True):
    task = SignTranslationTask.__new__(SignTranslationTask)  # no data root needed to count
    task.cfg = SignTranslationConfig(data="unused", skip_bad_videos=skip_bad_videos)
    task.datasets = {"test": FakeSplit("test", n_rows)}
    task.decode_tally, task._warned_tally = DecodeTally(), False  # the state __init__ declares
    return task


def batch(ids, n_skipped):
    return {"id": torch.tensor(ids, dtype=torch.long), "n_skipped": n_skipped}


def test_count_names_the_skipped_rows_once_the_split_is_done():
    task = tally_task()
    count = task.tally_decoded(batch([4, 0], 1))  # row 3 was skipped by the collater of this batch
    assert (count.n_seen, count.n_rows, count.skipped, count.done) == (3, 5, 1, False)
    assert running_line(count) == "test: 3 of 5 rows so far, 1 skipped (unreadable videos)"
    assert task.decode_tally.last is None
    count = task.tally_decoded(batch([1, 2], 0))
    assert count.done and count.skipped_ids == ["test_00003"]
    assert task.decode_tally.last is count and not task.decode_tally.running
    again = task.tally_decoded(batch([0, 1, 2, 3, 4], 0))  # a second pass over the split counts afresh
    assert again is not count and again.done and again.skipped_ids == []
    assert [c.skipped for c in task.decode_tally.finished] == [1, 0]


def test_count_without_skip_flag_finishes_with_the_split():
    task = tally_task(n_rows=3, skip_bad_videos=False)
    assert not task.tally_decoded(batch([0, 1], 0)).done
    count = task.tally_decoded(batch([2], 0))
    assert count.done and count.skipped_ids == [] and task.decode_tally.last is count


def test_tally_ignores_batches_not_of_a_dataset_and_several_splits():
    task = tally_task()
    assert task.tally_decoded({"id": torch.arange(2), "net_input": {}}) is None  # SignTranslator's batches
    task.datasets["dev"] = FakeSplit("dev", 4)
    assert task.tally_decoded(batch([0], 0)) is None
    assert task._warned_tally  # warned once
    assert not task.decode_tally.running and not task.decode_tally.finished


def test_skip_summary_says_what_the_bleu_covers():
    assert skip_summary("test", 5, ["test_00003"]) == (
        "test: 1 of 5 rows skipped (unreadable videos), ids: test_00003; the BLEU below covers 4 of 5 rows"
    )
    assert skip_summary("test", 5, []) == (
        "test: 0 of 5 rows skipped (unreadable videos); the BLEU below covers all 5 rows"
    )
    assert skip_summary("dev", 100, [f"d{i}" for i in range(30)], max_ids=3) == (
        "dev: 30 of 100 rows skipped (unreadable videos), ids: d0, d1, d2 and 27 more; "
        "the BLEU below covers 70 of 100 rows"
    )


@pytest.mark.slow
def test_generate_skips_a_truncated_video_and_score_refuses_the_gap(tiny_corpus, stage1_run, tmp_path):
    root = tmp_path / "c"
    shutil.copytree(tiny_corpus, root)
    video = root / "videos" / "test" / "test_00002.mp4"
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])  # a download cut half-way
    save_dir, _ = stage1_run
    results = tmp_path / "gen"
    log = run_cli([
        "fairseq-generate", root, "--user-dir", PLUGIN_DIR, "--task", "sign_translation",
        "--gen-subset", "test", "--path", save_dir / "checkpoint_last.pt", "--beam", "2",
        "--batch-size", "3", "--max-len-b", "5", "--skip-bad-videos", "--results-path", results,
    ])  # two batches (3 + 2 videos): the running count, then the summary after the second
    out_file = results / "generate-test.txt"
    out = out_file.read_text() + log
    assert re.search(r"test: [23] of 5 rows so far, [01] skipped", out), out[-3000:]
    summary = re.findall(r"^.*WARNING.*test: \d+ of 5 rows skipped.*$", out, re.M)
    assert len(summary) == 1 and summary[0].endswith(
        "test: 1 of 5 rows skipped (unreadable videos), ids: test_00002; the BLEU below covers 4 of 5 rows"
    ), out[-3000:]
    assert sorted(int(i) for i in re.findall(r"^D-(\d+)\t", out, re.M)) == [0, 1, 3, 4]

    score = os.path.join(BIN_DIR, "fairseq-slt-score")
    proc = subprocess.run(
        [score, str(out_file), "--manifest", str(root / "test.tsv")], capture_output=True, text=True
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert re.fullmatch(
        r"fairseq-slt-score: error: 1 of 5 rows of \S+test\.tsv have no hypothesis in \S+: "
        r"2 \(id test_00002\); .*--allow-missing to score the other 4 rows", proc.stderr.splitlines()[-1]
    ), proc.stderr  # the last line: fairseq's import-time notices come before it
    scored = run_cli(["fairseq-slt-score", out_file, "--manifest", root / "test.tsv", "--allow-missing"])
    assert re.search(r"^WARNING: 1 of 5 rows .* 2 \(id test_00002\); scoring the other 4 rows only$", scored, re.M)
    assert re.search(r"^sentences 4 \| ROUGE-L ", scored, re.M), scored
