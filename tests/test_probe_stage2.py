"""examples/synthetic/probe_stage2.py: the linear probes along the stage-2 path and the count of
what a translation wrote instead of a missed sign."""

import importlib.util
import os

import torch

from fairseq_slt.synthetic.sentence import Sentence

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "synthetic", "probe_stage2.py")
spec = importlib.util.spec_from_file_location("probe_stage2", SCRIPT)
probe_stage2 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe_stage2)

ROWS = [
    Sentence(("TEN", "DEGREE"), ("number", "unit"), ("ten", "degrees"), "ten degrees"),
    Sentence(("NINE", "RAIN"), ("number", "weather"), ("nine", "rain"), "nine rain"),
]


def test_misses_tell_a_substituted_sign_from_an_omitted_one():
    words = {"number": {"ten", "nine"}, "unit": {"degrees"}, "weather": {"rain"}}
    hyps = {0: "it will be nine degrees .", 1: "rain"}
    counts = probe_stage2.misses(hyps, ROWS, words)
    assert counts["number"] == [0, 1, 1]  # "ten" written as "nine"; "nine" left out
    assert counts["unit"] == [1, 0, 0] and counts["weather"] == [1, 0, 0]


def test_the_probe_reads_glosses_that_are_linearly_present_and_not_others():
    # 2 glosses, each marked by one feature dimension at one step of its sentences
    torch.manual_seed(0)
    seqs, y = [], torch.zeros(40, 2)
    for i in range(40):
        x = torch.randn(6, 4) * 0.1
        g = i % 2
        x[3, g] += 3.0
        seqs.append(x)
        y[i, g] = 1.0
    x, mask = probe_stage2.pad(seqs)
    probe = probe_stage2.train_probe(x, mask, y, steps=100, seed=1)
    rows = [Sentence(("A" if i % 2 == 0 else "B",), ("c",), ("a" if i % 2 == 0 else "b",), "x") for i in range(40)]
    read = probe_stage2.read_by_category(probe, x, mask, rows, {"A": 0, "B": 1})
    assert read["all"] == (40, 40)
    # with the signal removed, the probe reads at chance (about half)
    blank, _ = probe_stage2.pad([torch.randn(6, 4) * 0.1 for _ in range(40)])
    chance = probe_stage2.read_by_category(probe, blank, mask, rows, {"A": 0, "B": 1})
    assert chance["all"][0] < 32
