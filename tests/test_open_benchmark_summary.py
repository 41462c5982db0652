"""examples/synthetic/summarize_open_benchmark.py: the experiment's table over seeds and its
Figure-2 norm medians, on a WORK_DIR laid out as open_benchmark.sh leaves it."""

import json
import os
import subprocess
import sys

import torch

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "synthetic",
                      "summarize_open_benchmark.py")


def write_score(path, bleu, rouge, distinct, slot):
    """fairseq-slt-score's printout (the lines the summary reads)."""
    path.write_text(
        f"sentences 10 | ROUGE-L {rouge} | BLEU-1 80.00 | BLEU-2 70.00 | BLEU-3 60.00 | BLEU-4 {bleu}\n"
        "sacrebleu signature (BLEU-4): nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0\n"
        f"distinct hypotheses {distinct} of 10 (references: 10) | most frequent 2 of 10 (20.00%): \"a b\"\n"
        f"per-slot accuracy {slot}% (5 of 10 glosses) | day 50.00% (1/2)\n",
        encoding="utf-8",
    )


def write_log(path, updates, bsz, gnorm_visual, gnorm_llm, epochs=2):
    """A fairseq json --log-file: a train_inner line every 10 updates, written once more per epoch
    (as fairseq's --log-file does without the plugin), and an end-of-epoch line per epoch."""
    lines, per_epoch = [], updates // epochs
    for epoch in range(1, epochs + 1):
        for n in range((epoch - 1) * per_epoch + 10, epoch * per_epoch + 1, 10):
            rec = {"epoch": epoch, "num_updates": str(n), "pnorm_visual_last": "20.0", "pnorm_llm_last": "30.0",
                   "gnorm_llm_last": str(gnorm_llm), "loss": "3.0"}
            if gnorm_visual is not None:
                rec["gnorm_visual_last"] = str(gnorm_visual)
            lines += [json.dumps(rec)] * epoch
        lines.append(json.dumps({"epoch": epoch, "train_num_updates": str(epoch * per_epoch),
                                 "train_bsz": str(bsz), "train_pnorm_visual_last": "20.0"}))
    path.write_text("{'_name': None}\n" + "\n".join(lines) + "\n", encoding="utf-8")


def make_run(run_dir, seconds, updates, bsz, score, gnorm_visual=None, gnorm_llm=0.5):
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save({"model": {}, "extra_state": {"previous_training_time": seconds}}, run_dir / "checkpoints" / "checkpoint_last.pt")
    write_log(run_dir / "train.log", updates, bsz, gnorm_visual, gnorm_llm)
    write_score(run_dir / "score.txt", *score)


def make_work_dir(root):
    for seed, shift in (("1", 0.0), ("2", 2.0)):
        s = root / f"seed{seed}"
        make_run(s / "stage1", 100.0, 40, 8, (30 + shift, 58.0, 9, 44.0), gnorm_visual=0.4, gnorm_llm=0.8)
        make_run(s / "stage2_text", 20.0, 20, 16, (58 + shift, 79.0, 10, 71.0), gnorm_llm=0.3)
        make_run(s / "stage2_parallel", 21.0, 20, 16, (57 + shift, 78.0, 10, 70.0), gnorm_llm=0.3)
        make_run(s / "joint", 130.0, 60, 8, (59 + shift, 77.0, 10, 73.0), gnorm_visual=1.0, gnorm_llm=0.5)
        (s / "cache_seconds").write_text("10\n")


def summarize(*args):
    proc = subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [line for line in proc.stdout.splitlines() if line.startswith("|")]


def test_table_over_seeds_gives_mean_std_time_updates_and_passes(tmp_path):
    make_work_dir(tmp_path)
    rows = summarize(tmp_path, "--seeds", "1", "2")
    assert len(rows) == 2 + 4
    stage1, text, parallel, joint = rows[2:]
    # BLEU-4 30 and 32: mean 31, sample standard deviation 1.41; 40 updates of 8 videos
    assert stage1.startswith("| stage 1 alone (Light-T) | 2 | 31.00 ± 1.41 | 58.00 ± 0.00 | 44.00 ± 0.00 "
                             "| 9 / 9 of 10 | 100 | 40 | 320 |")
    # factorized: stage 1 + the cache build + stage 2 (time), stage 1 + stage 2 (updates, passes)
    assert text.endswith("| 59.00 ± 1.41 | 79.00 ± 0.00 | 71.00 ± 0.00 | 10 / 10 of 10 | 130 | 60 | 640 |")
    assert "parallel targets only | 2 | 58.00 ± 1.41 |" in parallel and parallel.endswith("| 131 | 60 | 640 |")
    assert joint.endswith("| 60.00 ± 1.41 | 77.00 ± 0.00 | 73.00 ± 0.00 | 10 / 10 of 10 | 130 | 60 | 480 |")


def test_norm_medians_count_each_logged_update_once(tmp_path):
    make_work_dir(tmp_path)
    rows = summarize(tmp_path, "--norms", "--seeds", "1")
    assert rows[2:] == [
        "| 1 | joint | 1.000 | 0.500 | 2.00 (above 1 at 6 of 6 points) | 20.000 / 30.000 |",
        "| 1 | factorized stage 1 (LLM = Light-T decoder) | 0.400 | 0.800 | 0.50 (above 1 at 0 of 4 points) "
        "| 20.000 / 30.000 |",
        "| 1 | factorized stage 2 (visual encoder frozen) | - | 0.300 | - | 20.000 / 30.000 |",
    ]


def test_training_seconds_prints_the_trainers_clock(tmp_path):
    make_work_dir(tmp_path)
    proc = subprocess.run([sys.executable, SCRIPT, str(tmp_path), "--training-seconds",
                           str(tmp_path / "seed1" / "joint")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "130", proc.stderr[-2000:]


def test_convergence_reports_epochs_best_dev_loss_and_what_stopped_stage1(tmp_path):
    make_work_dir(tmp_path)
    for seed, losses, early in (("1", [2.0, 1.5, 1.4, 1.45, 1.5], True), ("2", [2.0, 1.8, 1.7], False)):
        lines = []
        for epoch, loss in enumerate(losses, 1):  # fairseq alone: each line once more per epoch
            # as fairseq writes them with --valid-subset dev: the keys are named after the subset
            train = {"epoch": epoch, "train_loss": "9.0", "train_num_updates": str(10 * epoch)}
            dev = {"epoch": epoch, "dev_loss": str(loss), "dev_nll_loss": "1.0"}
            lines += [f"2026-12-02 | INFO | train | {json.dumps(train)}",
                      f"2026-12-02 | INFO | dev | {json.dumps(dev)}"] * epoch
        if early:
            lines.append("2026-12-02 | INFO | fairseq_cli.train | early stop since valid performance "
                         "hasn't improved for last 2 runs")
        (tmp_path / f"seed{seed}" / "stage1" / "train.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = summarize(tmp_path, "--convergence", "--seeds", "1", "2")
    assert rows[2:] == [
        "| 1 | 5 | 1.400 (3) | 1.500 | patience on dev loss (converged) |",
        "| 2 | 3 | 1.700 (3) | 1.700 | the epoch cap (EPOCHS1): not converged |",
    ]


def test_convergence_refuses_a_log_without_the_subsets_loss(tmp_path):
    make_work_dir(tmp_path)
    log = tmp_path / "seed1" / "stage1" / "train.log"
    log.write_text(json.dumps({"epoch": 1, "valid_loss": "2.0"}) + "\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, SCRIPT, str(tmp_path), "--convergence", "--seeds", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert str(log) in proc.stderr and "'dev_loss'" in proc.stderr and "--valid-subset" in proc.stderr
    # the subset it did validate on is accepted
    rows = summarize(tmp_path, "--convergence", "--seeds", "1", "--valid-subset", "valid")
    assert rows[2:] == ["| 1 | 1 | 2.000 (1) | 2.000 | the epoch cap (EPOCHS1): not converged |"]


def test_per_seed_and_category_tables_read_every_arms_score(tmp_path):
    make_work_dir(tmp_path)
    rows = summarize(tmp_path, "--per-seed", "--seeds", "1", "2")
    assert rows[0] == "| arm | seed 1 | seed 2 |"
    assert rows[2] == "| stage 1 alone (Light-T) | 30.00 | 32.00 |"
    # an arm that did not run (the random LLM) is left out
    assert len(rows) == 2 + 4 and not any("never pre-trained" in r for r in rows)
    rows = summarize(tmp_path, "--categories", "--seeds", "1", "2")
    assert rows[0] == "| arm | day |"
    assert rows[2] == "| stage 1 alone (Light-T) | 50.0 |"  # 1 of 2 per seed, summed: 2 of 4


def test_coverage_counts_test_words_and_word_pairs_seen_in_each_source(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    head = "id\tvideo\tn_frames\ttgt_text\n"
    (data / "train.tsv").write_text(head + "a\tv\t1\train in the north\n", encoding="utf-8")
    (data / "test.tsv").write_text(head + "b\tv\t1\tsnow in the north .\n", encoding="utf-8")
    (data / "text_corpus.en").write_text("snow in the south\nrain in the north\n", encoding="utf-8")
    rows = summarize(tmp_path, "--coverage")
    # test words: snow in the north (the full stop is not a word); pairs: snow-in in-the the-north
    assert rows[2] == "| parallel training targets | 1 | 4 | 75.0 | 75.0 | 66.7 | 66.7 |"
    assert rows[3] == "| text corpus | 2 | 8 | 100.0 | 100.0 | 100.0 | 100.0 |"


def test_a_stage2_variant_folder_gets_its_own_row(tmp_path):
    make_work_dir(tmp_path)
    for seed in ("1", "2"):
        make_run(tmp_path / f"seed{seed}" / "stage2_text_llmlr1", 20.0, 20, 16, (61.0, 80.0, 10, 75.0), gnorm_llm=0.3)
    rows = summarize(tmp_path, "--seeds", "1", "2")
    assert rows[-1].startswith("| variant stage2_text_llmlr1 | 2 | 61.00 ± 0.00 |") and rows[-1].endswith("| 130 | 60 | 640 |")
    assert summarize(tmp_path, "--per-seed", "--seeds", "1", "2")[-1] == "| variant stage2_text_llmlr1 | 61.00 | 61.00 |"
