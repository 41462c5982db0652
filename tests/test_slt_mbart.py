"""Stage 2: loading mBART and the stage-1 visual encoder, freezing, vocabulary trimming."""

import json
import re
from argparse import Namespace

import pytest
import torch
from fairseq.data import Dictionary
from fairseq.models.bart import BARTModel

from fairseq_slt.checkpoints import checkpoint_model_args, load_checkpoint_state
from fairseq_slt.mbart.trim import trim
from fairseq_slt.models.slt_mbart import SLTMBartModel
from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask
from fairseq_slt.tasks.target_dictionary import add_mbart_symbols
from helpers import (
    LANGS,
    PLUGIN_DIR,
    STAGE2_TASK,
    TEXTS,
    StubTask,
    build_stage2,
    run_cli,
    stage2_data_root,
    stage2_train_cmd,
)


def test_mbart_layers_match_fairseq_bart(mbart_dir, stage1_ckpt):
    model, d = build_stage2(mbart_dir, stage1_ckpt[0])
    state = torch.load(mbart_dir / "model.pt")
    bart = BARTModel.build_model(state["args"], StubTask(d))
    bart.load_state_dict(state["model"])
    model.eval(), bart.eval()
    tokens = torch.tensor([[5, 9, 7, 2], [6, 8, 2, 1]])  # second row padded
    lengths = torch.tensor([4, 3])
    emb = bart.encoder.embed_tokens(tokens)
    # our mBART encoder with the token embeddings it would normally look up
    from fairseq.models.transformer import TransformerEncoder

    enc_ours = TransformerEncoder.forward(model.encoder, tokens, lengths, token_embeddings=emb)
    enc_ref = bart.encoder(tokens, lengths)
    torch.testing.assert_close(enc_ours["encoder_out"][0], enc_ref["encoder_out"][0])
    prev = torch.tensor([[d.index("[en_XX]"), 5, 9], [d.index("[en_XX]"), 6, 8]])
    out_ours, _ = model.decoder(prev, encoder_out=enc_ref)
    out_ref, _ = bart.decoder(prev, encoder_out=enc_ref)
    torch.testing.assert_close(out_ours, out_ref)


def test_visual_encoder_loaded_strictly_and_frozen(mbart_dir, stage1_ckpt):
    path, stage1 = stage1_ckpt
    model, _ = build_stage2(mbart_dir, path)
    ref = stage1.encoder.visual.state_dict()
    for k, v in model.encoder.visual.module.state_dict().items():
        assert torch.equal(v, ref[k]), k
    assert not any(p.requires_grad for p in model.encoder.visual.parameters())
    assert all(p.requires_grad for p in model.encoder.adapter.parameters())
    model.train()
    assert not model.encoder.visual.module.training  # BatchNorm stays in eval mode


def test_training_updates_leave_frozen_parts_bit_identical(mbart_dir, stage1_ckpt):
    model, d = build_stage2(mbart_dir, stage1_ckpt[0])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    frames = torch.randn(2, 6, 3, 32, 32)
    prev = torch.tensor([[d.index("[en_XX]"), 5, 9], [d.index("[en_XX]"), 6, 8]])
    target = torch.tensor([[5, 9, 2], [6, 8, 2]])
    for _ in range(3):
        opt.zero_grad()
        logits, _ = model(frames, torch.tensor([6, 5]), prev)
        torch.nn.functional.cross_entropy(logits.transpose(1, 2), target).backward()
        opt.step()
    after = model.state_dict()
    for k, v in before.items():
        if k.startswith("encoder.visual."):  # weights AND BatchNorm running statistics
            assert torch.equal(v, after[k]), k
    assert not torch.equal(before["encoder.adapter.net.0.weight"], after["encoder.adapter.net.0.weight"])
    assert not torch.equal(before["decoder.layers.0.fc1.weight"], after["decoder.layers.0.fc1.weight"])


def test_bad_stage1_and_mbart_inputs(mbart_dir, stage1_ckpt, tmp_path):
    with pytest.raises(FileNotFoundError, match="stage-1 checkpoint not found"):
        build_stage2(mbart_dir, tmp_path / "nope.pt")
    wrong = tmp_path / "wrong.pt"
    torch.save({"cfg": {"model": Namespace(arch="transformer")}, "model": {}}, wrong)
    with pytest.raises(ValueError, match="not of stage 1"):
        build_stage2(mbart_dir, wrong)
    with pytest.raises(ValueError, match="--encoder-layers 5 does not match the mBART checkpoint"):
        build_stage2(mbart_dir, stage1_ckpt[0], encoder_layers=5)
    d = Dictionary.load(str(mbart_dir / "dict.txt"))  # without the language tokens
    args = Namespace(stage1_checkpoint=str(stage1_ckpt[0]), mbart_dir=str(mbart_dir))
    with pytest.raises(ValueError, match="dictionary has .* types but the mBART embeddings"):
        SLTMBartModel.build_model(args, StubTask(d))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "dict.txt").write_text("a 1\n")
    with pytest.raises(FileNotFoundError, match="lacks model.pt, sentence.bpe.model"):
        build_stage2(broken, stage1_ckpt[0])


def test_trim_keeps_logits_of_kept_tokens(mbart_dir, tmp_path):
    out = tmp_path / "trimmed"
    stats = trim(str(mbart_dir), TEXTS, str(out))
    assert stats["rows_after"] < stats["rows_before"]
    assert stats["params_after"] < stats["params_before"]
    full_d, small_d = Dictionary.load(str(mbart_dir / "dict.txt")), Dictionary.load(str(out / "dict.txt"))
    for d in (full_d, small_d):
        add_mbart_symbols(d, LANGS, None)
    full = torch.load(mbart_dir / "model.pt")
    small = torch.load(out / "model.pt")  # round trip through save/load
    big = BARTModel.build_model(full["args"], StubTask(full_d)).eval()
    big.load_state_dict(full["model"])
    little = BARTModel.build_model(small["args"], StubTask(small_d)).eval()
    little.load_state_dict(small["model"])
    # the sentencepiece model still tokenizes the corpus, with no <unk> in the trimmed dict
    import sentencepiece as sp

    spm = sp.SentencePieceProcessor(model_file=str(out / "sentence.bpe.model"))
    pieces = " ".join(spm.encode(TEXTS[0], out_type=str))
    small_ids = small_d.encode_line(pieces, add_if_not_exist=False)
    full_ids = full_d.encode_line(pieces, add_if_not_exist=False)
    assert small_d.unk() not in small_ids.tolist()
    kept = [full_d.index(small_d[i]) for i in range(len(small_d))]
    lengths = torch.tensor([len(full_ids)])
    lang_small, lang_full = small_d.index("[en_XX]"), full_d.index("[en_XX]")
    prev_small = torch.cat([torch.tensor([lang_small]), small_ids[:-1]])[None]
    prev_full = torch.cat([torch.tensor([lang_full]), full_ids[:-1]])[None]
    logits_small, _ = little(small_ids[None].long(), lengths, prev_small.long())
    logits_full, _ = big(full_ids[None].long(), lengths, prev_full.long())
    torch.testing.assert_close(logits_small, logits_full[..., kept], rtol=1e-5, atol=1e-5)


def train_inner_records(log: str) -> list:
    return [json.loads(m) for m in re.findall(r"\| train_inner \| (\{.*\})$", log, re.M)]


@pytest.mark.slow
def test_stage2_through_fairseq_train_and_generate(tiny_corpus, stage1_run, mbart_dir, tmp_path):
    from fairseq_slt.inference import SignTranslator

    data = stage2_data_root(tiny_corpus, mbart_dir, tmp_path / "stage2")
    save_dir = tmp_path / "ckpt"
    log = run_cli(stage2_train_cmd(
        data, mbart_dir, save_dir, "--stage1-checkpoint", stage1_run[0] / "checkpoint_last.pt"
    ))
    # model state: the visual encoder is stage 1's, unchanged (frozen); mBART started from its
    # checkpoint and was fine-tuned (small lr: close to it, not equal)
    s1 = load_checkpoint_state(str(stage1_run[0] / "checkpoint_last.pt"))["model"]
    state2 = load_checkpoint_state(str(save_dir / "checkpoint_last.pt"))
    s2 = state2["model"]
    # optimizer state: mBART at 0.01 x the LLM-adapter's learning rate (paper: 1e-5 vs 1e-3)
    groups = {g["group_name"]: g for g in state2["last_optimizer_state"]["param_groups"]}
    assert sorted(groups) == ["default", "llm"]
    assert groups["llm"]["lr"] == pytest.approx(0.01 * groups["default"]["lr"])
    visual1 = {k[len("encoder.visual."):]: v for k, v in s1.items() if k.startswith("encoder.visual.")}
    visual2 = {k[len("encoder.visual.module."):]: v for k, v in s2.items() if k.startswith("encoder.visual.")}
    assert visual1.keys() == visual2.keys() and all(torch.equal(visual1[k], visual2[k]) for k in visual1)
    mbart = load_checkpoint_state(str(mbart_dir / "model.pt"))["model"]
    key = "decoder.layers.0.fc1.weight"
    assert 0 < (s2[key] - mbart[key]).abs().max() < 0.05
    # --log-norms-interval: the frozen visual encoder has a parameter norm and no gradient
    records = train_inner_records(log)
    assert len(records) == 3
    for r in records:
        assert "gnorm_visual_last" not in r and float(r["pnorm_visual_last"]) > 0
        assert float(r["gnorm_llm_last"]) > 0 and float(r["pnorm_llm_last"]) > 0
    assert len({r["pnorm_visual_last"] for r in records}) == 1  # frozen: constant
    out = run_cli([
        "fairseq-generate", data, "--user-dir", PLUGIN_DIR, *STAGE2_TASK, "--gen-subset", "test",
        "--path", save_dir / "checkpoint_last.pt",
        "--beam", "5", "--max-tokens", "400", "--max-len-b", "10", "--scoring", "sacrebleu",
        # generation takes every weight from the checkpoint: mBART's directory is not read again
        "--model-overrides", repr({"mbart_dir": str(tmp_path / "no_such_mbart")}),
    ])
    assert sorted(int(i) for i in re.findall(r"^H-(\d+)\t", out, re.M)) == list(range(5))
    # the translate API strips [tgt_lang] and detokenizes exactly as fairseq-generate does
    hyps = dict((int(i), h) for i, h in re.findall(r"^D-(\d+)\t[^\t]*\t(.*)$", out, re.M))
    translator = SignTranslator.from_checkpoint(str(save_dir / "checkpoint_last.pt"), max_len_b=10, device="cpu")
    rows = [line.split("\t") for line in (tiny_corpus / "test.tsv").read_text().splitlines()[1:]]
    got = [translator.translate(str(tiny_corpus / r[1])).hypothesis for r in rows]
    assert got == [hyps[i] for i in range(5)]


@pytest.mark.slow
def test_joint_baseline_trains_the_visual_encoder(tiny_corpus, mbart_dir, tmp_path):
    data = stage2_data_root(tiny_corpus, mbart_dir, tmp_path / "joint")
    log = run_cli(stage2_train_cmd(
        data, mbart_dir, tmp_path / "ckpt", "--train-visual-encoder", "--temporal-module", "K3",
        "--temporal-dim", "8",
    ))
    records = train_inner_records(log)
    assert len(records) == 3
    for r in records:  # both last layers get gradients in joint training
        assert float(r["gnorm_visual_last"]) > 0 and float(r["gnorm_llm_last"]) > 0
    assert len({r["pnorm_visual_last"] for r in records}) > 1  # trained: it moves
    state = load_checkpoint_state(str(tmp_path / "ckpt" / "checkpoint_last.pt"))
    assert state["model"]["encoder.visual.temporal.layers.0.0.weight"].shape == (8, 512, 3)
    # model state: not wrapped as frozen (no encoder.visual.module.*), random ResNet (no ImageNet file)
    assert not any(k.startswith("encoder.visual.module.") for k in state["model"])
    args = checkpoint_model_args(state)
    assert args.train_visual_encoder and args.resnet_pretrained is None
    groups = {g["group_name"] for g in state["last_optimizer_state"]["param_groups"]}
    assert groups == {"default", "llm", "visual"}  # the visual encoder is among the trained groups


@pytest.mark.slow
def test_cached_features_give_the_live_outputs(tiny_corpus, stage1_run, mbart_dir, tmp_path):
    from fairseq_slt.feature_cache_builder import main as cache_main
    from fairseq_slt.data.feature_cache import FeatureCache
    from fairseq_slt.tasks.cache_checks import check_cache_matches

    ckpt = stage1_run[0] / "checkpoint_last.pt"
    cache = tmp_path / "features"
    cache_main(Namespace(data=str(tiny_corpus), stage1_checkpoint=str(ckpt), config_yaml="config.yaml",
                         splits="train,test", out=str(cache), batch_size=3))
    model, d = build_stage2(mbart_dir, ckpt)
    model.eval()
    check_cache_matches(model, str(cache))  # same stage-1 weights: accepted
    task = SignTranslationTask.setup_task(SignTranslationConfig(data=str(tiny_corpus)))
    task.load_dataset("test")
    live = task.dataset("test")
    cached = FeatureCache(str(cache), "test", live.ids)
    prev = torch.tensor([[d.index("[en_XX]"), 5, 9]])
    for i in range(len(live)):
        frames = live[i].source[None]
        n = torch.tensor([frames.size(1)])
        feats = cached.get(i)[None]
        with torch.no_grad():
            ref, ref_len = model.encoder.sign_features(frames, n)
            torch.testing.assert_close(feats, ref, rtol=1e-4, atol=1e-5)  # batched vs single GEMMs
            out_live, _ = model(frames, n, prev)
            out_cached, _ = model(feats, ref_len, prev)
        torch.testing.assert_close(out_cached, out_live, rtol=1e-4, atol=1e-4)
    # the training split is cached too (as augmented training views by default), at the same width
    task.load_dataset("train")
    assert FeatureCache(str(cache), "train", task.dataset("train").ids).get(0).shape[1] == 16


@pytest.mark.slow
def test_cache_from_another_stage1_is_refused(tiny_corpus, stage1_run, stage1_ckpt, mbart_dir, tmp_path):
    from fairseq_slt.feature_cache_builder import main as cache_main
    from fairseq_slt.tasks.cache_checks import check_cache_matches

    cache = tmp_path / "features"
    cache_main(Namespace(data=str(tiny_corpus), stage1_checkpoint=str(stage1_run[0] / "checkpoint_last.pt"),
                         config_yaml="config.yaml", splits="test", out=str(cache), batch_size=3))
    other, _ = build_stage2(mbart_dir, stage1_ckpt[0])
    with pytest.raises(ValueError, match="visual encoder differs from this model's: rebuild it"):
        check_cache_matches(other, str(cache))


def test_bag_of_words_loss_reaches_the_joint_runs_visual_encoder(mbart_dir, stage1_ckpt):
    from fairseq_slt.criterions.label_smoothed_ce_with_bow import LabelSmoothedCrossEntropyWithBowCriterion

    model, d = build_stage2(mbart_dir, stage1_ckpt[0], train_visual_encoder=True)
    task = StubTask(d)
    task.sign_feature_dim = model.encoder.visual_encoder.out_dim
    crit = LabelSmoothedCrossEntropyWithBowCriterion(task, False, 0.2, bow_weight=1.0)
    target = torch.tensor([[d.index("▁rain"), d.eos()], [d.index("▁wind"), d.eos()]])
    if (target == d.unk()).any():  # the tiny mBART's pieces: take any two words of its dictionary
        target = torch.tensor([[d.nspecial + 5, d.eos()], [d.nspecial + 6, d.eos()]])
    sample = {
        "net_input": {"src_tokens": torch.randn(2, 8, 3, 32, 32), "src_lengths": torch.tensor([8, 5]),
                      "prev_output_tokens": torch.stack([target[:, -1], target[:, 0]], 1)},
        "target": target, "ntokens": 4,
    }
    loss, _, log = crit(model, sample)
    assert float(log["bow_loss"]) > 0
    loss.backward()
    assert float(model.encoder.visual_encoder.backbone.conv1.weight.grad.abs().sum()) > 0
    assert float(crit.head.weight.grad.abs().sum()) > 0
