"""The recipes' batching, schedule and decoding settings: lib.sh's arithmetic (split_batch,
updates_per_epoch, gen_max_len, ...) checked against fairseq's own batching, and the commands that
``DRY_RUN=1 bash examples/<dataset>/run.sh`` prints (bash only, nothing runs)."""

import functools
import json
import math
import os
import re
import shlex
import subprocess

import pytest

from helpers import BIN_DIR, PLUGIN_DIR, TINY_LIGHTT

EXAMPLES = os.path.join(os.path.dirname(PLUGIN_DIR), "examples")
LIB_SH = os.path.join(EXAMPLES, "lib.sh")
ROOT_VARS = {"phoenix14t": "PHOENIX14T_ROOT", "csl_daily": "CSL_DAILY_ROOT", "how2sign": "HOW2SIGN_ROOT"}
# the recipe's variables: a developer's shell must not leak them into the tests
RECIPE_VARS = ["step", "stop_step", "stage", "stop_stage", "MBART_DIR", "LLM_DIR", "LLM_MODE", "LLM_PROMPT", "CACHE", "FRAME_STORE", "NGPUS", "STAGE1_EPOCHS", "STAGE1_BATCH",
               "STAGE2_EPOCHS", "STAGE2_BATCH", "MAX_GPU_BATCH", "NUM_WORKERS", "RESNET", "STAGE1_ARGS",
               "STAGE2_ARGS", "LANGS", "DRY_RUN", "BIN_DIR", "OUT_DIR", "TGT_LEN_UNIT", *ROOT_VARS.values()]
TOOLS = ["fairseq-train", "fairseq-generate", "fairseq-slt-score", "fairseq-slt-cache-features", "fairseq-slt-frame-store",
         "fairseq-slt-data-config", "python"]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in RECIPE_VARS}
    env.update(extra)
    return env


def bash_lib(script, **env):
    return subprocess.run(["bash", "-c", f'set -euo pipefail; source "{LIB_SH}"; {script}'],
                          capture_output=True, text=True, timeout=120, env=clean_env(**env))


def lib_out(script, **env):
    proc = bash_lib(script, **env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def write_manifest(path, texts):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("id\tvideo\tn_frames\ttgt_text\n")
        f.writelines(f"s{i}\tv{i}\t10\t{t}\n" for i, t in enumerate(texts))


# --- split_batch: the global batch over NGPUS ---------------------------------------------------

@pytest.mark.parametrize("args,expected", [
    ("8 1", "8 1"), ("8 2", "4 1"), ("8 4", "2 1"), ("8 8", "1 1"),  # the paper's stage 1
    ("16 1", "16 1"), ("16 4", "4 1"),  # stage 2
    ("16 1 4", "4 4"), ("16 2 3", "2 4"), ("8 4 1", "1 2"), ("12 1 5", "4 3"), ("16 1 ''", "16 1"),
])
def test_split_batch(args, expected):
    assert lib_out(f"split_batch {args}") == expected.split()


def test_split_batch_over_every_gpu_count():
    """Every global batch 1..24 on 1..8 GPUs, with and without a per-GPU cap: an even split is
    the largest per-GPU batch within the cap with per x NGPUS x update-freq == global; an uneven
    one is refused."""
    script = ('for g in $(seq 1 24); do for n in $(seq 1 8); do for c in "" 1 3 5 8; do '
              'r=$( (split_batch $g $n "$c") 2>&1) || r="refused: $r"; echo "$g $n ${c:-none}: $r"; '
              'done; done; done')
    lines = lib_out_lines(script)
    assert len(lines) == 24 * 8 * 5
    for line in lines:
        head, result = line.split(": ", 1)
        g, n, c = head.split()
        g, n, cap = int(g), int(n), (None if c == "none" else int(c))
        if g % n:
            assert result.startswith("refused: error: GLOBAL=") and "does not split" in result, line
            continue
        per, freq = map(int, result.split())
        share = g // n
        best = max(d for d in range(1, share + 1) if share % d == 0 and (cap is None or d <= cap))
        assert per * n * freq == g and per == best, line


def lib_out_lines(script):
    proc = bash_lib(script)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_split_batch_refuses_an_uneven_split_naming_what_works():
    proc = bash_lib("split_batch 8 3 '' STAGE1_BATCH; echo unreachable")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == (
        "error: STAGE1_BATCH=8 does not split over NGPUS=3 GPUs (per-GPU batch x 3 x update-freq must "
        "be 8): use NGPUS=1, 2, 4 or 8, or a global batch that is a multiple of 3 (6 or 9)\n")
    proc = bash_lib("split_batch 2 3")
    assert proc.returncode == 1 and "use NGPUS=1 or 2, or a global batch that is a multiple of 3 (3)" in proc.stderr
    for args, message in [("x 1", "GLOBAL='x' is not a whole number"), ("8 0", "NGPUS=0 is below 1"),
                          ("8 1 0", "MAX_GPU_BATCH=0 is below 1"), ("-8 1", "GLOBAL='-8' is not a whole number"),
                          ("08 1", "GLOBAL='08' is not a whole number")]:
        proc = bash_lib(f"split_batch {args}")
        assert proc.returncode == 1 and proc.stderr.startswith(f"error: {message}"), (args, proc.stderr)
        assert len(proc.stderr.splitlines()) == 1


# --- updates per epoch: lib.sh's arithmetic against fairseq's batching --------------------------

def test_updates_per_epoch_arithmetic(tmp_path):
    for rows, per, ngpus, freq in [(12, 8, 1, 1), (17, 8, 1, 1), (17, 2, 4, 1), (17, 2, 4, 3), (1, 8, 8, 1),
                                   (7087, 2, 4, 1), (7087, 4, 1, 4), (0, 8, 1, 1)]:
        expected = math.ceil(math.ceil(rows / (per * ngpus)) / freq)
        assert lib_out(f"updates_per_epoch {rows} {per} {ngpus} {freq}") == [str(expected)]
    tsv = tmp_path / "train.tsv"
    write_manifest(str(tsv), ["a b"] * 17)
    # 17 rows in batches of 2: 9 batches, 3 per GPU on 4, one update of 3; on 1 GPU at 8: 3 an epoch
    assert lib_out(f'updates_for "{tsv}" 75 2 4 3; updates_for "{tsv}" 3 8; updates_for "{tsv}" 5 2 4') == [
        "75", "9", "15"]
    tsv.write_bytes(tsv.read_bytes().rstrip(b"\n"))  # no newline after the last row: still 17 rows
    assert lib_out(f'manifest_size "{tsv}"') == ["17"]
    proc = bash_lib(f'updates_for "{tmp_path}/none.tsv" 3 8')
    assert proc.returncode == 1 and "no manifest" in proc.stderr and "run step 0" in proc.stderr


def fairseq_updates_per_epoch(task, dataset, per_gpu, ngpus, update_freq, multiple=1):
    """Updates of one training epoch as fairseq-train's loop makes them (trainer.get_train_iterator
    -> task.get_batch_iterator, the iterator sharded over the GPUs, GroupedIterator by update_freq),
    for every GPU's shard; no batch is loaded."""
    from fairseq.data import iterators

    counts = set()
    for shard in range(ngpus):
        epoch_itr = task.get_batch_iterator(
            dataset, max_tokens=None, max_sentences=per_gpu, max_positions=task.max_positions(),
            ignore_invalid_inputs=True, required_batch_size_multiple=multiple, seed=1,
            num_shards=ngpus, shard_id=shard, num_workers=0, epoch=1, disable_iterator_cache=True)
        itr = epoch_itr.next_epoch_itr(shuffle=True)
        counts.add(len(iterators.GroupedIterator(itr, update_freq)))
    assert len(counts) == 1, counts  # every GPU makes the same number of updates
    return counts.pop()


def test_updates_per_epoch_match_fairseqs_batching(tiny_corpus):
    """The global batch split by split_batch and the updates counted by updates_for are those of
    fairseq's batching of the dataset, sharded over NGPUS and grouped by update_freq."""
    from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask

    task = SignTranslationTask.setup_task(SignTranslationConfig(data=str(tiny_corpus)))
    task.load_dataset("train")
    dataset = task.dataset("train")
    tsv = os.path.join(str(tiny_corpus), "train.tsv")
    assert lib_out(f'manifest_size "{tsv}"') == [str(len(dataset))]
    cases = [(8, 1, ""), (8, 4, ""), (8, 2, 2), (12, 1, ""), (16, 1, 4), (6, 3, ""), (5, 1, ""),
             (10, 1, 5), (9, 3, 1), (24, 8, ""), (16, 2, "")]
    script = "; ".join(f'read -r p f <<< "$(split_batch {g} {n} "{c}")"; echo $p $f $(updates_for "{tsv}" 1 $p {n} $f)'
                       for g, n, c in cases)
    lines = lib_out_lines(script)
    assert len(lines) == len(cases)
    for (g, n, _), line in zip(cases, lines):
        per, freq, updates = map(int, line.split())
        assert per * n * freq == g
        assert updates == fairseq_updates_per_epoch(task, dataset, per, n, freq), (g, n, line)
    # why the recipes pass --required-batch-size-multiple 1: with fairseq's default of 8, a
    # --batch-size of 12 makes batches of 8 (and 4), two updates where the arithmetic says one
    assert fairseq_updates_per_epoch(task, dataset, 12, 1, 1) == 1
    assert fairseq_updates_per_epoch(task, dataset, 12, 1, 1, multiple=8) == 2


# --- the decoding cap and the other helpers -----------------------------------------------------

def test_gen_max_len_from_the_longest_target(tmp_path):
    tsv = str(tmp_path / "train.tsv")
    write_manifest(tsv, ["am tag scheint die sonne", "es  weht ein   starker wind heute", "kurz"])
    assert lib_out(f'max_target_len "{tsv}"; gen_max_len "{tsv}"; gen_max_len "{tsv}" word') == ["6", "22", "22"]
    zh = str(tmp_path / "zh.tsv")
    write_manifest(zh, ["今天天气很好", "你好"])
    assert lib_out(f'max_target_len "{zh}" char; gen_max_len "{zh}" char; max_target_len "{zh}"') == ["6", "22", "1"]
    # a BOM, CRLF line ends and another column order are read as the manifest reader reads them
    other = tmp_path / "other.tsv"
    other.write_bytes("\ufeffid\ttgt_text\tvideo\r\na\tzwei wörter\tv\r\nb\tdrei kurze wörter\tv".encode("utf-8"))
    assert lib_out(f'max_target_len "{other}"; max_target_len "{other}" char') == ["3", "17"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tvideo\ttext\na\tv\tt\n")
    for script, message in [(f'gen_max_len "{bad}"', "its header has no tgt_text column"),
                            (f'gen_max_len "{tmp_path}/none.tsv"', "no manifest"),
                            (f'gen_max_len "{tsv}" chars', "unit 'chars' is neither word nor char")]:
        proc = bash_lib(script)
        assert proc.returncode == 1 and message in proc.stderr and proc.stdout == "", (script, proc.stderr)


def test_arg_value_and_first_option():
    assert lib_out("arg_value '--arch|-a' slt_lightt --lr 1 --arch x -a y --arch=slt_lightt_tiny --seed 1") == [
        "slt_lightt_tiny"]
    assert lib_out("arg_value '--arch|-a' slt_lightt --lr 1 --architecture z") == ["slt_lightt"]
    assert lib_out("first_option '--batch-size|--update-freq' --lr 1 --update-freq=2 --batch-size 3") == [
        "--update-freq"]
    proc = bash_lib("first_option '--batch-size' --lr 1 --batch-size-valid 4 || echo none")
    assert proc.stdout == "none\n"


def cpu_count():
    """What nproc reports without OMP_NUM_THREADS (the CPUs this process may use)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT")}
    return int(subprocess.run(["nproc"], capture_output=True, text=True, env=env, check=True).stdout)


def test_default_num_workers_ignores_omp_num_threads():
    cpus = cpu_count()
    out = lib_out("default_num_workers; default_num_workers 2; default_num_workers 1000", OMP_NUM_THREADS="1")
    assert out == [str(min(8, cpus)), str(min(8, max(1, cpus // 2))), "1"]


def test_check_tgt_lang():
    assert lib_out("check_tgt_lang de_DE cc25; check_tgt_lang de_DE 'en_XX, de_DE'; check_tgt_lang de_DE de_DE; "
                   "echo ok") == ["ok"]
    proc = bash_lib("check_tgt_lang zh_CN en_XX,de_DE")
    assert proc.returncode == 1 and proc.stderr.startswith("error: TGT_LANG=zh_CN is not in LANGS=en_XX,de_DE")


def test_run_cmd_prints_shell_quoted_words_with_dry_run(tmp_path):
    marker = tmp_path / "ran"
    proc = bash_lib(f"run_cmd touch '{marker}' 'a b' \"it's\" ''", DRY_RUN="1")
    assert proc.returncode == 0 and not marker.exists()
    assert shlex.split(proc.stdout) == ["touch", str(marker), "a b", "it's", ""]
    assert bash_lib(f"run_cmd touch '{marker}'").returncode == 0 and marker.exists()


# --- DRY_RUN=1 bash examples/<dataset>/run.sh ---------------------------------------------------

def stub_tools(folder, marker):
    """Console scripts that only record that they ran."""
    os.makedirs(folder, exist_ok=True)
    for name in TOOLS:
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\necho "{name} $*" >> "{marker}"\nexit 1\n')
        os.chmod(path, 0o755)
    # the recipe reads its defaults from the real `fairseq-slt-audit --paper-settings`; a dry run
    # only prints the audits of the stages
    audit = os.path.join(folder, "fairseq-slt-audit")
    with open(audit, "w") as f:
        f.write(f'#!/bin/sh\nexec "{os.path.join(BIN_DIR, "fairseq-slt-audit")}" "$@"\n')
    os.chmod(audit, 0o755)
    return str(folder)


def dry_run(tmp_path, dataset="phoenix14t", args=(), train_texts=None, mbart=True, **env):
    """``DRY_RUN=1 bash examples/<dataset>/run.sh ARGS`` with stub tools: (proc, commands), the
    commands parsed by shlex; asserts that nothing ran."""
    marker = tmp_path / "tools_ran"
    tools = stub_tools(tmp_path / "stub_bin", marker)
    out = tmp_path / "run"
    if train_texts is not None:
        write_manifest(str(out / "data" / "train.tsv"), train_texts)
    before = sorted(p for p in out.rglob("*")) if out.exists() else []
    base = dict(PATH=tools + os.pathsep + os.environ["PATH"], BIN_DIR=tools, OUT_DIR=str(out), DRY_RUN="1")
    base[ROOT_VARS[dataset]] = str(tmp_path / "release")
    if mbart:
        base["MBART_DIR"] = str(tmp_path / "mbart.cc25")
    base.update(env)
    proc = subprocess.run(["bash", os.path.join(EXAMPLES, dataset, "run.sh"), *args], capture_output=True,
                          text=True, timeout=120, env=clean_env(**base))
    assert not marker.exists(), marker.read_text()
    assert (sorted(p for p in out.rglob("*")) if out.exists() else []) == before  # nothing written
    commands = [shlex.split(line) for line in proc.stdout.splitlines()] if proc.returncode == 0 else []
    return proc, commands


def opt(cmd, name):
    """The value of the last ``name`` of a command (fairseq takes the last occurrence)."""
    values = [cmd[i + 1] for i, word in enumerate(cmd[:-1]) if word == name]
    assert values, f"{name} not in {shlex.join(cmd)}"
    return values[-1]


def tool(cmd):
    return os.path.basename(cmd[0])


def test_dry_run_prints_every_command_with_the_papers_settings(tmp_path):
    texts = ["am tag scheint die sonne"] * 97 + ["es weht ein sehr starker kalter wind aus dem norden"]
    proc, cmds = dry_run(tmp_path, train_texts=texts)
    assert proc.returncode == 0, proc.stderr
    assert [tool(c) for c in cmds] == [
        "python", "fairseq-train", "fairseq-generate", "fairseq-slt-score", "fairseq-generate", "fairseq-slt-score",
        "fairseq-slt-audit", "fairseq-slt-cache-features", "fairseq-slt-data-config", "fairseq-train",
        "fairseq-generate", "fairseq-slt-score", "fairseq-generate", "fairseq-slt-score", "fairseq-slt-audit"]
    prep, train1, train2 = cmds[0], cmds[1], cmds[9]
    # after each evaluation, the checkpoint's settings beside the paper's
    assert cmds[6][1:] == [str(tmp_path / "run" / "stage1" / "checkpoint_best.pt")]
    assert cmds[14][1:] == [str(tmp_path / "run" / "stage2" / "checkpoint_best.pt")]
    assert prep[1].endswith("prep_phoenix14t.py") and opt(prep, "--mbart-dir") == str(tmp_path / "mbart.cc25")
    data = str(tmp_path / "run" / "data")
    # stage 1: SGD momentum 0.9, lr 1e-2, cosine, global batch 8, 75 epochs, smoothing 0.2, ImageNet
    assert train1[1] == data and opt(train1, "--arch") == "slt_lightt"
    for name, value in [("--optimizer", "sgd"), ("--momentum", "0.9"), ("--lr", "1e-2"), ("--lr-scheduler", "cosine"),
                        ("--criterion", "label_smoothed_cross_entropy"), ("--label-smoothing", "0.2"),
                        ("--batch-size", "8"), ("--update-freq", "1"), ("--required-batch-size-multiple", "1"),
                        ("--distributed-world-size", "1"), ("--max-epoch", "75"),
                        ("--lr-period-updates", str(75 * 13)),  # 98 rows: ceil(98 / 8) = 13 updates an epoch
                        ("--resnet-pretrained", "imagenet"), ("--config-yaml", "config_stage2.yaml"),
                        ("--langs", "cc25"), ("--tgt-lang", "de_DE")]:
        assert opt(train1, name) == value, name
    assert "--max-update" not in train1
    # stage 2: Adam, lr 1e-3 for the LLM-adapter and 1e-3 x 0.01 = 1e-5 for mBART, cosine, batch 16
    for name, value in [("--arch", "slt_mbart"), ("--optimizer", "adam_grouped"), ("--lr", "1e-3"),
                        ("--group-lr-scales", "llm:0.01"), ("--lr-scheduler", "cosine"), ("--label-smoothing", "0.2"),
                        ("--batch-size", "16"), ("--update-freq", "1"), ("--required-batch-size-multiple", "1"),
                        ("--max-epoch", "40"), ("--lr-period-updates", str(40 * 7)),
                        ("--config-yaml", "config_stage2_run.yaml"), ("--tgt-lang", "de_DE")]:
        assert opt(train2, name) == value, name
    assert "--resnet-pretrained" not in train2  # the visual encoder comes from the stage-1 checkpoint
    # decoding: beam 5, capped at 2 x 10 words + 10 tokens, dev and test of both stages
    gens = [c for c in cmds if tool(c) == "fairseq-generate"]
    assert [(opt(c, "--gen-subset"), opt(c, "--path")) for c in gens] == [
        (s, str(tmp_path / "run" / st / "checkpoint_best.pt")) for st in ("stage1", "stage2") for s in ("dev", "test")]
    for c in gens:
        assert (opt(c, "--beam"), opt(c, "--max-len-a"), opt(c, "--max-len-b")) == ("5", "0", "30")
    assert opt(cmds[7], "--stage1-checkpoint") == str(tmp_path / "run" / "stage1" / "checkpoint_best.pt")
    assert opt(cmds[8], "--feature-cache") == "features_stage2"
    log = proc.stderr  # the log goes to stderr in a dry run
    assert "step 1: stage 1, slt_lightt ->" in log and "global batch 8 = 8 per GPU x 1 GPU(s) x update-freq 1" in log
    assert "13 updates per epoch x 75 epochs = 975 updates" in log
    assert "stage 1 vocabulary: the trimmed mBART's (MBART_DIR is set: config_stage2.yaml)" in log
    assert "decoding at most 30 tokens per sentence (2 x the longest training target, 10 words, + 10)" in log


@pytest.mark.parametrize("ngpus,cap,batch1,batch2", [
    ("4", "", ("2", "1"), ("4", "1")), ("2", "", ("4", "1"), ("8", "1")), ("8", "", ("1", "1"), ("2", "1")),
    ("1", "4", ("4", "2"), ("4", "4")), ("4", "1", ("1", "2"), ("1", "4")),
])
def test_dry_run_splits_the_global_batch(tmp_path, ngpus, cap, batch1, batch2):
    rows = 1001
    proc, cmds = dry_run(tmp_path, train_texts=["a b c"] * rows, NGPUS=ngpus, MAX_GPU_BATCH=cap)
    assert proc.returncode == 0, proc.stderr
    train1, train2 = [c for c in cmds if tool(c) == "fairseq-train"]
    n = int(ngpus)
    for cmd, (per, freq), epochs, global_batch in [(train1, batch1, 75, 8), (train2, batch2, 40, 16)]:
        assert (opt(cmd, "--batch-size"), opt(cmd, "--update-freq")) == (per, freq)
        assert int(per) * n * int(freq) == global_batch
        assert opt(cmd, "--distributed-world-size") == ngpus
        per_epoch = math.ceil(math.ceil(rows / (int(per) * n)) / int(freq))
        assert opt(cmd, "--lr-period-updates") == str(epochs * per_epoch)
        assert f"global batch {global_batch} = {per} per GPU x {ngpus} GPU(s) x update-freq {freq}" in proc.stderr


def test_dry_run_refuses_an_uneven_split_before_any_work(tmp_path):
    proc, _ = dry_run(tmp_path, train_texts=["a"], NGPUS="3")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: STAGE1_BATCH=8 does not split over NGPUS=3 GPUs (per-GPU batch x 3 x update-freq must be 8): "
        "use NGPUS=1, 2, 4 or 8, or a global batch that is a multiple of 3 (6 or 9)")
    proc, _ = dry_run(tmp_path, train_texts=["a"], NGPUS="3", STAGE1_BATCH="9", step="4")
    assert proc.returncode == 1 and "STAGE2_BATCH=16 does not split over NGPUS=3" in proc.stderr
    proc, cmds = dry_run(tmp_path, train_texts=["a"], NGPUS="3", STAGE1_BATCH="6", stop_step="2")
    assert proc.returncode == 0 and opt(cmds[1], "--batch-size") == "2"


def test_dry_run_before_step_0_marks_the_values_from_train_tsv(tmp_path):
    proc, cmds = dry_run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(cmds) == 15
    assert opt(cmds[1], "--lr-period-updates").startswith("<75 x the updates per epoch of")
    assert opt(cmds[2], "--max-len-b").startswith("<2 x the longest tgt_text of")


def test_dry_run_logs_the_arch_actually_used_and_passes_args_through(tmp_path):
    proc, cmds = dry_run(tmp_path, args=["--arch", "slt_lightt_tiny", "--seed", "3"], train_texts=["a"],
                         stop_step="2", STAGE1_ARGS="--temporal-dim 16  --encoder-layers 1")
    assert proc.returncode == 0, proc.stderr
    train1 = cmds[1]
    assert opt(train1, "--arch") == "slt_lightt_tiny" and opt(train1, "--seed") == "3"
    # STAGE1_ARGS (word-split), then run.sh's own arguments, last: they win
    assert train1[-8:] == ["--temporal-dim", "16", "--encoder-layers", "1", "--arch", "slt_lightt_tiny", "--seed", "3"]
    assert "step 1: stage 1, slt_lightt_tiny ->" in proc.stderr and "stage 1, slt_lightt ->" not in proc.stderr
    proc, _ = dry_run(tmp_path, train_texts=["a"], stop_step="2", STAGE1_ARGS="--arch=slt_lightt_tiny")
    assert "step 1: stage 1, slt_lightt_tiny ->" in proc.stderr


@pytest.mark.parametrize("where,option,hint", [
    ("args", "--batch-size", "STAGE1_BATCH (the global batch)"), ("STAGE1_ARGS", "--update-freq", "STAGE1_BATCH"),
    ("args", "--max-sentences=4", "STAGE1_BATCH"), ("STAGE1_ARGS", "--max-epoch", "STAGE1_EPOCHS"),
    ("STAGE2_ARGS", "--max-tokens", "STAGE2_BATCH"), ("args", "--distributed-world-size", "NGPUS"),
])
def test_dry_run_refuses_batching_options_among_the_arguments(tmp_path, where, option, hint):
    words = [option] if "=" in option else [option, "2"]
    args = words if where == "args" else []
    env = {} if where == "args" else {where: " ".join(words)}
    proc, _ = dry_run(tmp_path, args=args, train_texts=["a"], **env)
    assert proc.returncode == 1 and proc.stdout == ""
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {option.split('=')[0]} among the arguments of training stage") and hint in last


def test_dry_run_resnet(tmp_path):
    proc, cmds = dry_run(tmp_path, train_texts=["a"], stop_step="1", RESNET="none")
    assert proc.returncode == 0 and opt(cmds[1], "--resnet-pretrained") == "none"
    assert "RESNET=none: ResNet-18 starts from random weights" in proc.stderr
    weights = tmp_path / "resnet18-f37072fd.pth"
    weights.write_bytes(b"x")
    proc, cmds = dry_run(tmp_path, train_texts=["a"], stop_step="1", RESNET=str(weights))
    assert proc.returncode == 0 and opt(cmds[1], "--resnet-pretrained") == str(weights)
    proc, _ = dry_run(tmp_path, train_texts=["a"], stop_step="1", RESNET=str(tmp_path / "missing.pth"))
    assert proc.returncode == 1 and proc.stdout == ""
    assert f"error: RESNET={tmp_path / 'missing.pth'}: no such file; use imagenet, none" in proc.stderr


def test_dry_run_without_mbart_dir(tmp_path):
    proc, cmds = dry_run(tmp_path, train_texts=["a"], mbart=False, stop_step="2")
    assert proc.returncode == 0, proc.stderr
    assert "--mbart-dir" not in cmds[0] and opt(cmds[1], "--config-yaml") == "config.yaml"
    assert "--langs" not in cmds[1]
    assert "stage 1 vocabulary: the prep's own sentencepiece model (config.yaml" in proc.stderr
    proc, _ = dry_run(tmp_path, train_texts=["a"], mbart=False)  # steps 3-5 need it: refused up front
    assert proc.returncode == 1 and proc.stdout == "" and "set MBART_DIR" in proc.stderr
    assert "stop_step=2" in proc.stderr


def test_dry_run_stage2_over_a_hugging_face_folder(tmp_path):
    llm = str(tmp_path / "flan-t5-base")
    prompt = "Translate the German sign language video into German:"
    proc, cmds = dry_run(tmp_path, train_texts=["a"], mbart=False, step="3", LLM_DIR=llm, LLM_MODE="lora",
                         LLM_PROMPT=prompt)
    assert proc.returncode == 0, proc.stderr
    assert [tool(c) for c in cmds[:3]] == ["fairseq-slt-cache-features", "fairseq-slt-data-config", "fairseq-train"]
    cache, config, train2 = cmds[:3]
    assert opt(cache, "--config-yaml") == "config.yaml"
    assert opt(config, "--src") == "config.yaml" and opt(config, "--llm-dir") == llm
    for name, value in [("--arch", "slt_hf"), ("--llm-dir", llm), ("--llm-mode", "lora"), ("--llm-prompt", prompt),
                        ("--config-yaml", "config_stage2_run.yaml"), ("--optimizer", "adam_grouped")]:
        assert opt(train2, name) == value, name
    assert "--langs" not in train2 and "--group-lr-scales" not in train2 and "--mbart-dir" not in train2
    # full fine-tuning keeps the paper's learning rates (LLM at 0.01 x the adapter's)
    _, cmds = dry_run(tmp_path, train_texts=["a"], mbart=False, step="3", stop_step="4", LLM_DIR=llm)
    assert opt(cmds[2], "--llm-mode") == "full" and opt(cmds[2], "--group-lr-scales") == "llm:0.01"
    assert "--llm-prompt" not in cmds[2]
    proc, _ = dry_run(tmp_path, train_texts=["a"], mbart=False, step="4", LLM_DIR=llm, LLM_MODE="half")
    assert proc.returncode == 1 and "LLM_MODE='half': use full, lora or frozen" in proc.stderr


def test_dry_run_checks_tgt_lang_against_langs_first(tmp_path):
    proc, _ = dry_run(tmp_path, train_texts=["a"], LANGS="en_XX,zh_CN")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == (
        "error: TGT_LANG=de_DE is not in LANGS=en_XX,zh_CN: LANGS lists mBART's pre-training languages in "
        "their order (cc25 for mBART-large-cc25's 25); add de_DE or set LANGS=cc25")
    proc, cmds = dry_run(tmp_path, train_texts=["a"], LANGS="en_XX,de_DE")
    assert proc.returncode == 0 and opt(cmds[9], "--langs") == "en_XX,de_DE"


def test_dry_run_needs_the_files_of_stages_it_does_not_run(tmp_path):
    proc, _ = dry_run(tmp_path, step="1")  # no data root, step 0 not in the range
    assert proc.returncode == 1 and "step 1 needs" in proc.stderr and "train.tsv, which step 0 writes" in proc.stderr
    proc, _ = dry_run(tmp_path, train_texts=["a"], step="4")
    assert proc.returncode == 1 and "config_stage2_run.yaml, which step 3 writes" in proc.stderr
    data = tmp_path / "run" / "data"
    (data / "config_stage2_run.yaml").write_text("x: 1\n")
    proc, cmds = dry_run(tmp_path, step="4")
    assert proc.returncode == 0, proc.stderr
    assert [tool(c) for c in cmds] == ["fairseq-train"] + ["fairseq-generate", "fairseq-slt-score"] * 2 + [
        "fairseq-slt-audit"]


@pytest.mark.parametrize("name,value,message", [
    ("NGPUS", "0", "NGPUS=0 is below 1"), ("STAGE1_BATCH", "eight", "STAGE1_BATCH='eight' is not a whole number"),
    ("STAGE2_EPOCHS", "0", "STAGE2_EPOCHS=0 is below 1"), ("step", "one", "step='one' is not a whole number"),
    ("NUM_WORKERS", "-1", "NUM_WORKERS='-1' is not a whole number"), ("DRY_RUN", "yes", "DRY_RUN='yes': use 1"),
    ("CACHE", "true", "CACHE='true': use 1"), ("MAX_GPU_BATCH", "0", "MAX_GPU_BATCH=0 is below 1"),
])
def test_dry_run_refuses_bad_variables(tmp_path, name, value, message):
    proc, _ = dry_run(tmp_path, train_texts=["a"], **{name: value})
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), proc.stderr


@pytest.mark.parametrize("old", ["stage", "stop_stage"])
def test_dry_run_refuses_the_former_step_variables(tmp_path, old):
    """stage / stop_stage are the paper's word: a run that still sets them to select recipe steps
    stops before any work, naming step= / stop_step= instead of silently running every step."""
    proc, _ = dry_run(tmp_path, train_texts=["a"], **{old: "2"})
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"error: {old}=2 ") and "step=" in line and "stop_step=" in line


@pytest.mark.parametrize("script", ["run.sh", "factorized_vs_joint.sh", "frame_store_check.sh", "open_benchmark.sh"])
def test_synthetic_recipes_refuse_the_former_step_variables(tmp_path, script):
    proc = subprocess.run(["bash", os.path.join(EXAMPLES, "synthetic", script)], capture_output=True, text=True,
                          timeout=60, env=clean_env(stage="1", DRY_RUN="1", WORK_DIR=str(tmp_path / "work")))
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: stage=1 ") and "step=" in line and "stop_step=" in line
    assert not (tmp_path / "work").exists()


def test_init_steps_defaults_and_checks():
    assert lib_out("init_steps 0 5; echo $step $stop_step") == ["0", "5"]
    assert lib_out("init_steps 0 5; echo $step $stop_step", step="2") == ["2", "5"]
    proc = bash_lib("init_steps 0 5", stop_step="x")
    assert proc.returncode == 1 and "stop_step='x' is not a whole number" in proc.stderr


def test_dry_run_num_workers_default(tmp_path):
    cpus = cpu_count()
    proc, cmds = dry_run(tmp_path, train_texts=["a"], stop_step="1", OMP_NUM_THREADS="1")
    assert opt(cmds[1], "--num-workers") == str(min(8, cpus))
    proc, cmds = dry_run(tmp_path, train_texts=["a"], stop_step="1", NUM_WORKERS="3")
    assert opt(cmds[1], "--num-workers") == "3"


def test_dry_run_csl_daily_counts_characters(tmp_path):
    proc, cmds = dry_run(tmp_path, dataset="csl_daily", train_texts=["今天天气很好", "你好"], step="0", stop_step="2")
    assert proc.returncode == 0, proc.stderr
    gen = [c for c in cmds if tool(c) == "fairseq-generate"][0]
    assert opt(gen, "--max-len-b") == "22" and opt(cmds[1], "--tgt-lang") == "zh_CN"  # 2 x 6 characters + 10
    score = [c for c in cmds if tool(c) == "fairseq-slt-score"][0]
    # the split's manifest, so the scorer refuses an output that lacks rows; CSL-Daily at char level
    assert score[2] == "--manifest" and score[3].endswith("/run/data/dev.tsv") and score[4:] == ["--char-level"]


def test_dry_run_how2sign(tmp_path):
    proc, cmds = dry_run(tmp_path, dataset="how2sign", train_texts=["And now we are going to start."] * 20)
    assert proc.returncode == 0, proc.stderr
    # the frame store is on by default: written after the prep, named in both data configs
    data = str(tmp_path / "run" / "data")
    assert [tool(c) for c in cmds[1:3]] == ["fairseq-slt-frame-store"] * 2
    assert [(c[1], opt(c, "--config-yaml"), opt(c, "--out")) for c in cmds[1:3]] == [
        (data, "config.yaml", "frames"), (data, "config_stage2.yaml", "frames")]
    cmds = [cmds[0]] + cmds[3:]
    assert cmds[0][1].endswith("prep_how2sign.py") and opt(cmds[9], "--tgt-lang") == "en_XX"
    assert opt(cmds[1], "--lr-period-updates") == str(75 * 3) and opt(cmds[9], "--lr-period-updates") == str(40 * 2)
    assert opt(cmds[2], "--max-len-b") == str(2 * 7 + 10)
    _, cmds = dry_run(tmp_path, dataset="how2sign", train_texts=["a"], stop_step="0", FRAME_STORE="0")
    assert [tool(c) for c in cmds] == ["python"]


@pytest.mark.slow
def test_dry_run_stage1_command_trains_the_counted_updates(tiny_corpus, tmp_path):
    """The stage-1 command of the dry run, run for real on the tiny corpus (tiny model sizes): it
    stops after STAGE1_EPOCHS epochs with exactly the updates it gave the cosine as its period."""
    os.makedirs(tmp_path / "run")
    os.symlink(tiny_corpus, tmp_path / "run" / "data")
    tiny = [a for a in TINY_LIGHTT if a not in ("--arch", "slt_lightt")]
    proc, cmds = dry_run(tmp_path, args=[*tiny, "--no-progress-bar", "--log-interval", "1", "--seed", "2"], mbart=False,
                         step="1", stop_step="1", STAGE1_EPOCHS="2", STAGE1_BATCH="10", MAX_GPU_BATCH="5",
                         RESNET="none", NUM_WORKERS="0")
    assert proc.returncode == 0, proc.stderr
    (train,) = cmds
    assert (opt(train, "--batch-size"), opt(train, "--update-freq")) == ("5", "2")
    period = int(opt(train, "--lr-period-updates"))
    assert period == 2 * 2  # 12 rows: 3 batches of 5 per epoch, 2 updates of update-freq 2
    train[0] = os.path.join(BIN_DIR, "fairseq-train")
    run = subprocess.run(train, capture_output=True, text=True, timeout=900, env=clean_env(OMP_NUM_THREADS="1"))
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-5000:]
    epochs = [json.loads(m) for m in re.findall(r"\| INFO \| train \| (\{.*\})", log)]
    assert [int(e["epoch"]) for e in epochs] == [1, 2]
    assert [int(e["train_num_updates"]) for e in epochs] == [2, 4] and period == 4


# --- examples/synthetic/open_benchmark.sh: the joint arm's time budget ---------------------------

OPEN_BENCHMARK = os.path.join(EXAMPLES, "synthetic", "open_benchmark.sh")


def open_benchmark_step3(tmp_path, **env):
    """``DRY_RUN=1`` step 3 (the joint arm) of seed 2 on a WORK_DIR with only data/train.tsv."""
    write_manifest(str(tmp_path / "data" / "train.tsv"), ["a b c d"])
    return subprocess.run(["bash", OPEN_BENCHMARK], capture_output=True, text=True, timeout=120,
                          env=clean_env(DRY_RUN="1", step="3", stop_step="3", SEEDS="2",
                                        WORK_DIR=str(tmp_path), **env))


def test_open_benchmark_joint_seconds_sets_the_joint_arms_budget(tmp_path):
    proc = open_benchmark_step3(tmp_path, JOINT_SECONDS="4584")
    assert proc.returncode == 0, proc.stderr
    train = [shlex.split(line) for line in proc.stdout.splitlines() if "fairseq-train" in line]
    assert len(train) == 1 and "--train-visual-encoder" in train[0]
    assert opt(train[0], "--stop-time-hours") == "1.27333"  # 4584 / 3600
    assert opt(train[0], "--save-dir") == str(tmp_path / "seed2" / "joint" / "checkpoints")


def test_open_benchmark_joint_arm_without_its_factorized_runs_says_what_to_do(tmp_path):
    proc = open_benchmark_step3(tmp_path, JOINT_SECONDS="")
    assert proc.returncode != 0 and "fairseq-train" not in proc.stdout
    assert "seed2/stage1/checkpoints/checkpoint_last.pt, which is missing" in proc.stderr
    assert "set JOINT_SECONDS" in proc.stderr
    bad = open_benchmark_step3(tmp_path, JOINT_SECONDS="76min")
    assert bad.returncode != 0 and "JOINT_SECONDS='76min' is not a whole number" in bad.stderr


def test_open_benchmark_random_llm_arm_is_the_text_llms_architecture_without_its_weights(tmp_path):
    write_manifest(str(tmp_path / "data" / "train.tsv"), ["a b c d"])
    proc = subprocess.run(["bash", OPEN_BENCHMARK], capture_output=True, text=True, timeout=120,
                          env=clean_env(DRY_RUN="1", step="2", stop_step="2", SEEDS="1", LLMS="text random",
                                        LLM_LAYERS="3", LLM_DIM="96", LLM_HEADS="2", WORK_DIR=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    cmds = [shlex.split(line) for line in proc.stdout.splitlines()]
    stage2 = {opt(c, "--save-dir"): c for c in cmds if "fairseq-train" in c[0] and "slt_mbart" in c}
    text = stage2[str(tmp_path / "seed1" / "stage2_text" / "checkpoints")]
    random = stage2[str(tmp_path / "seed1" / "stage2_random" / "checkpoints")]
    assert opt(text, "--mbart-dir") == str(tmp_path / "mbart.text.trimmed") and "--encoder-layers" not in text
    assert "--mbart-dir" not in random
    assert [opt(random, k) for k in ("--encoder-layers", "--decoder-embed-dim", "--encoder-ffn-embed-dim",
                                     "--decoder-attention-heads")] == ["3", "96", "384", "2"]
    # the same dictionary: the random arm's data config is written from the text LLM's
    configs = [c for c in cmds if "fairseq-slt-data-config" in c[0] and "config_random_seed1.yaml" in c]
    assert len(configs) == 1 and opt(configs[0], "--src") == "config_text.yaml"
    assert opt(random, "--config-yaml") == "config_random_seed1.yaml"


def test_open_benchmark_refuses_an_unknown_llm_and_builds_text_for_the_random_arm(tmp_path):
    write_manifest(str(tmp_path / "data" / "train.tsv"), ["a b c d"])
    (tmp_path / "data" / "text_corpus.en").write_text("a b\n", encoding="utf-8")
    run = functools.partial(subprocess.run, ["bash", OPEN_BENCHMARK], capture_output=True, text=True, timeout=120)
    bad = run(env=clean_env(DRY_RUN="1", step="1", stop_step="1", LLMS="text mt5", WORK_DIR=str(tmp_path)))
    assert bad.returncode != 0 and "LLMS: 'mt5' is not one of text, parallel, random" in bad.stderr
    ok = run(env=clean_env(DRY_RUN="1", step="1", stop_step="1", LLMS="random", WORK_DIR=str(tmp_path)))
    assert ok.returncode == 0, ok.stderr
    built = [opt(shlex.split(line), "--out") for line in ok.stdout.splitlines() if "fairseq-slt-build-mbart" in line]
    assert built == [str(tmp_path / "mbart.text")]


def test_open_benchmark_stage2_only_adds_a_tagged_variant_on_the_seeds_stage1(tmp_path):
    write_manifest(str(tmp_path / "data" / "train.tsv"), ["a b c d"])
    env = clean_env(DRY_RUN="1", step="2", stop_step="2", SEEDS="1", LLMS="text", STAGE2_ONLY="1",
                    STAGE2_TAG="_llmlr1", STAGE2_ARGS="--group-lr-scales llm:1", WORK_DIR=str(tmp_path))
    proc = subprocess.run(["bash", OPEN_BENCHMARK], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    cmds = [shlex.split(line) for line in proc.stdout.splitlines()]
    train = [c for c in cmds if "fairseq-train" in c[0]]
    assert len(train) == 1 and "slt_mbart" in train[0]  # no stage 1, no cache build
    assert not any("fairseq-slt-cache-features" in c[0] for c in cmds)
    assert opt(train[0], "--save-dir") == str(tmp_path / "seed1" / "stage2_text_llmlr1" / "checkpoints")
    assert train[0][-2:] == ["--group-lr-scales", "llm:1"]  # after the script's llm:0.1: it wins
    # without DRY_RUN the seed's stage 1 must exist
    env.pop("DRY_RUN")
    missing = subprocess.run(["bash", OPEN_BENCHMARK], capture_output=True, text=True, timeout=120, env=env)
    assert missing.returncode != 0 and "seed1/stage1/checkpoints/checkpoint_best.pt, which is missing" in missing.stderr


def test_llm_benchmark_sets_the_low_resource_defaults_and_skips_the_joint_arm(tmp_path):
    write_manifest(str(tmp_path / "data" / "train.tsv"), ["a b c d"])
    script = os.path.join(EXAMPLES, "synthetic", "llm_benchmark.sh")
    proc = subprocess.run(["bash", script], capture_output=True, text=True, timeout=120,
                          env=clean_env(DRY_RUN="1", step="2", stop_step="3", SEEDS="1", WORK_DIR=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    cmds = [shlex.split(line) for line in proc.stdout.splitlines()]
    runs = [opt(c, "--save-dir") for c in cmds if "fairseq-train" in c[0]]
    assert [os.path.basename(os.path.dirname(r)) for r in runs] == ["stage1", "stage2_text", "stage2_random"]
    random = [c for c in cmds if "fairseq-train" in c[0]][-1]
    assert [opt(random, k) for k in ("--encoder-layers", "--encoder-embed-dim", "--max-update")] == ["3", "256", "1000"]
    old = subprocess.run(["bash", script], capture_output=True, text=True, timeout=120,
                         env=clean_env(DRY_RUN="1", stage="2", WORK_DIR=str(tmp_path)))
    assert old.returncode != 0 and "recipe steps are selected with step=" in old.stderr


def test_open_benchmark_cache_views_gives_stage2_its_own_augmented_cache(tmp_path):
    write_manifest(str(tmp_path / "data" / "train.tsv"), ["a b c d"])
    run = functools.partial(subprocess.run, ["bash", OPEN_BENCHMARK], capture_output=True, text=True, timeout=120)
    base = dict(DRY_RUN="1", step="2", stop_step="2", SEEDS="3", LLMS="text", WORK_DIR=str(tmp_path))
    for env, built in ((dict(base, CACHE_VIEWS="4"), "full run"),
                       (dict(base, CACHE_VIEWS="4", STAGE2_ONLY="1"), "a variant on the seed's stage 1")):
        proc = run(env=clean_env(**env))
        assert proc.returncode == 0, (built, proc.stderr)
        cmds = [shlex.split(line) for line in proc.stdout.splitlines()]
        cache = [c for c in cmds if "fairseq-slt-cache-features" in c[0]]
        assert len(cache) == 1, built
        assert [opt(cache[0], k) for k in ("--out", "--train-views", "--seed")] == ["features_seed3_views4", "4", "3"]
        config = [c for c in cmds if "fairseq-slt-data-config" in c[0]]
        assert opt(config[-1], "--feature-cache") == "features_seed3_views4"
        train = [c for c in cmds if "fairseq-train" in c[0] and "slt_mbart" in c]
        assert opt(train[0], "--config-yaml") == opt(config[-1], "--out") == "config_text_seed3_views4.yaml"
        assert opt(train[0], "--seed") == "3"  # the views' seed
        (tmp_path / "seed3" / "features_seed3_views4_seconds").unlink()
    bad = run(env=clean_env(**dict(base, CACHE_VIEWS="four")))
    assert bad.returncode != 0 and "CACHE_VIEWS='four' is not a whole number" in bad.stderr
