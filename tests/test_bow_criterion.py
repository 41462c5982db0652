"""--criterion label_smoothed_cross_entropy_with_bow: the bag-of-words loss on the sign-wise features."""

import os
import subprocess
import sys
from argparse import Namespace

import pytest
import torch
from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion
from fairseq.data import Dictionary

from fairseq_slt.criterions.label_smoothed_ce_with_bow import (
    LabelSmoothedCrossEntropyWithBowCriterion,
    bag_of_words,
    bow_logits,
    bow_loss,
    bow_word_mask,
    content_word_mask,
)
from fairseq_slt.models.slt_lightt import SLTLightTModel, base_architecture

from helpers import run_cli, stage1_train_cmd


def dictionary(words="rain sun snow north south", tags=("[en_XX]", "<mask>")):
    d = Dictionary()
    for w in words.split() + list(tags):
        d.add_symbol(w)
    return d


class Task:
    def __init__(self, d, sign_feature_dim=8):
        self.target_dictionary = self.source_dictionary = d
        self.sign_feature_dim = sign_feature_dim  # what SignTranslationTask.build_model records

    building_from_checkpoint = False  # the task interface the models read


def tiny_model(d):
    args = Namespace(arch="slt_lightt", encoder_embed_dim=16, encoder_ffn_embed_dim=32, encoder_layers=1,
                     decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                     temporal_dim=8, temporal_module="K3,P2", dropout=0.0)
    base_architecture(args)
    return SLTLightTModel.build_model(args, Task(d))


def sample_of(d, lengths=(8, 6), sentences=("rain north", "sun")):
    torch.manual_seed(0)
    targets = [torch.tensor([d.index(w) for w in s.split()] + [d.eos()]) for s in sentences]
    width = max(len(t) for t in targets)
    target = torch.full((len(targets), width), d.pad())
    prev = torch.full((len(targets), width), d.pad())
    for i, t in enumerate(targets):
        target[i, : len(t)] = t
        prev[i, : len(t)] = torch.cat([t[-1:], t[:-1]])  # eos first, as fairseq shifts
    frames = torch.randn(len(lengths), max(lengths), 3, 32, 32)
    return {
        "net_input": {"src_tokens": frames, "src_lengths": torch.tensor(lengths), "prev_output_tokens": prev},
        "target": target,
        "ntokens": int(target.ne(d.pad()).sum()),
    }


def test_word_mask_leaves_out_specials_language_tags_and_mask():
    d = dictionary()
    keep = bow_word_mask(d)
    assert [d[i] for i in range(len(d)) if keep[i]] == "rain sun snow north south".split()


def test_content_words_are_those_seen_in_training_and_not_in_most_sentences():
    d = dictionary()
    keep = bow_word_mask(d)
    rain, sun, north = d.index("rain"), d.index("sun"), d.index("north")
    targets = [torch.tensor([rain, north, d.eos()]), torch.tensor([sun, north, d.eos()]),
               torch.tensor([north, north, d.eos()])]
    kept = content_word_mask(keep, targets, max_doc_freq=0.5)
    assert [d[i] for i in kept.nonzero().flatten()] == ["rain", "sun"]  # north: 3 of 3; snow, south: unseen
    assert [d[i] for i in content_word_mask(keep, targets, 1.0).nonzero().flatten()] == ["rain", "sun", "north"]


def test_bag_of_words_marks_each_kept_word_once():
    d = dictionary()
    keep = bow_word_mask(d)
    target = torch.tensor([[d.index("rain"), d.index("rain"), d.eos()], [d.index("sun"), d.eos(), d.pad()]])
    bags = bag_of_words(target, keep)
    assert bags[0].nonzero().flatten().tolist() == [d.index("rain")]
    assert bags[1].nonzero().flatten().tolist() == [d.index("sun")]


def test_a_word_scores_at_its_best_real_step_never_at_a_pad():
    head = torch.nn.Linear(3, 3, bias=False)
    head.weight.data = torch.eye(3)  # word w reads feature w
    feats = torch.zeros(1, 3, 3)
    feats[0, 0, 0] = 2.0  # step 0 shows word 0
    feats[0, 1, 0] = 1.0
    feats[0, 2, 1] = 50.0  # step 2 would show word 1, but it is padding
    pad = torch.tensor([[False, False, True]])
    with torch.no_grad():
        assert bow_logits(feats, pad, head)[0].tolist() == pytest.approx([2.0, 0.0, 0.0])
        assert bow_logits(feats, None, head)[0, 1] == pytest.approx(50.0)


def test_loss_balances_the_few_words_of_a_sentence_against_the_rest():
    keep = torch.tensor([False, True, True, True, True])
    bags = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0]])
    right = torch.tensor([[0.0, 20.0, -20.0, -20.0, -20.0]])
    assert float(bow_loss(right, bags, keep)[0]) < 1e-6
    # all words at 0: log 2 for the sentence's words plus log 2 for the others, whatever their number
    assert float(bow_loss(torch.zeros(1, 5), bags, keep)[0]) == pytest.approx(2 * torch.log(torch.tensor(2.0)))


def test_weight_zero_is_the_papers_loss_and_the_bag_loss_reaches_the_backbone():
    d = dictionary()
    model = tiny_model(d).eval()  # no dropout, BatchNorm on running statistics: deterministic
    sample = sample_of(d)
    paper = LabelSmoothedCrossEntropyCriterion(Task(d), False, 0.2)
    plain, size, _ = paper(model, sample)
    zero, size0, log0 = LabelSmoothedCrossEntropyWithBowCriterion(Task(d), False, 0.2, bow_weight=0.0)(model, sample)
    assert size0 == size and float(zero) == pytest.approx(float(plain), rel=1e-6)
    assert float(log0["bow_loss"]) > 0  # measured, not optimised

    crit = LabelSmoothedCrossEntropyWithBowCriterion(Task(d), False, 0.2, bow_weight=1.0)
    assert sum(p.numel() for p in crit.parameters()) == 9 * len(d)  # its head: the 8 temporal channels -> V, and a bias
    total, _, log = crit(model, sample)
    assert float(total) == pytest.approx(float(plain) + float(log["bow_loss"]), rel=1e-5)
    model.zero_grad()
    (total - paper(model, sample)[0]).backward()  # the same cross-entropy cancels: the bag loss alone
    conv1 = model.encoder.visual.backbone.conv1.weight.grad
    assert conv1 is not None and float(conv1.abs().sum()) > 0
    assert float(crit.head.weight.grad.abs().sum()) > 0
    # the bag loss reads the encoder's features with its own head, not the decoder
    assert all(p.grad is None or float(p.grad.abs().max()) < 1e-6 for p in model.decoder.parameters())


def test_a_criterion_built_before_the_model_is_refused():
    with pytest.raises(ValueError, match="build the model"):
        LabelSmoothedCrossEntropyWithBowCriterion(Task(dictionary(), sign_feature_dim=None), False, 0.2)


def test_an_encoder_without_sign_wise_features_is_refused():
    d = dictionary()
    model = tiny_model(d)
    forward = model.encoder.forward
    model.encoder.forward = lambda *a, **k: {**forward(*a, **k), "sign_features": []}
    crit = LabelSmoothedCrossEntropyWithBowCriterion(Task(d), False, 0.2)
    with pytest.raises(ValueError, match="sign_features"):
        crit(model, sample_of(d))


@pytest.mark.slow
def test_fairseq_train_logs_the_bag_loss_apart(tiny_corpus, tmp_path):
    cmd = stage1_train_cmd(tiny_corpus, tmp_path / "ckpt", 2)
    i = cmd.index("label_smoothed_cross_entropy")
    cmd[i] = "label_smoothed_cross_entropy_with_bow"
    log = run_cli(cmd + ["--bow-weight", "0.5"])
    assert "bow_loss=" in log and "nll_loss=" in log
    assert "bag-of-words loss:" in log and "training targets in at most 0.2 of them" in log
    # the head is saved with the checkpoint and restored on resuming (strictly, by fairseq)
    state = torch.load(tmp_path / "ckpt" / "checkpoint_last.pt", weights_only=False)
    assert "head.weight" in state["criterion"]
    cmd[cmd.index("--max-update") + 1] = "3"
    resumed = run_cli(cmd + ["--bow-weight", "0.5"])
    assert "Loaded checkpoint" in resumed and "@ 2 updates" in resumed
    assert "num_updates=3" in resumed or "num_updates 3" in resumed
    with pytest.raises(AssertionError, match="bow-weight must be >= 0"):
        run_cli(cmd + ["--bow-weight", "-1"])


@pytest.mark.parametrize("probe", [["signs", "--side", "32"], ["bag", "--bag", "content"], ["bag", "--bag", "glosses"]])
def test_the_visual_encoder_probes_run(tiny_corpus, probe):
    script = os.path.join(os.path.dirname(__file__), "..", "examples", "synthetic", "probe_visual_encoder.py")
    proc = subprocess.run([sys.executable, script, *probe, "--data", str(tiny_corpus), "--steps", "1",
                           "--batch-size", "4"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "step 1:" in proc.stderr and "prior" in proc.stderr
