"""``--backbone-bf16``: the ResNet-18 under bfloat16 autocast (the CPU's mixed precision), the rest
float32; the flag reaches the visual encoder of both stages and is stored in the checkpoint."""

import logging
from argparse import Namespace

import pytest
import torch
from fairseq.data import Dictionary

from fairseq_slt.audit import DIFFERS, OK, audit_checkpoint, backbone_precision_check
from fairseq_slt.checkpoints import checkpoint_model_args, load_checkpoint_state
from fairseq_slt.models import model_args
from fairseq_slt.models.slt_lightt import SLTLightTModel
from fairseq_slt.models.slt_lightt import base_architecture as lightt_arch
from fairseq_slt.models.slt_mbart import build_visual_encoder
from fairseq_slt.models.visual_frontend import SignVisualEncoder

from helpers import PLUGIN_DIR, run_cli, stage1_train_cmd


def encoder_pair():
    """Two encoders with the same weights: float32, and the backbone under bf16 autocast."""
    torch.manual_seed(0)
    ref = SignVisualEncoder("K5", temporal_dim=16).train()
    low = SignVisualEncoder("K5", temporal_dim=16, backbone_dtype=torch.bfloat16).train()
    low.load_state_dict(ref.state_dict())
    return ref, low


def test_bf16_backbone_keeps_float32_weights_gradients_and_features():
    ref, low = encoder_pair()
    frames, lengths = torch.randn(2, 6, 3, 32, 32), torch.tensor([6, 4])
    seen = []
    low.backbone.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    out_ref, _ = ref(frames, lengths)
    out_low, len_low = low(frames, lengths)
    assert seen == [torch.bfloat16]  # the ResNet ran in bf16 ...
    assert out_low.dtype == torch.float32 and len_low.tolist() == [6, 4]  # ... its output did not stay so
    cos = torch.nn.functional.cosine_similarity(out_ref.flatten(), out_low.flatten(), dim=0)
    assert cos > 0.99, cos
    assert not torch.equal(out_ref, out_low)  # it did change the arithmetic
    out_low.square().mean().backward()
    grads = [p.grad for p in low.backbone.parameters()]
    assert all(g is not None and g.dtype == torch.float32 for g in grads)
    assert all(p.dtype == torch.float32 for p in low.parameters())
    assert sum(g.abs().sum() for g in grads) > 0


def test_without_the_flag_an_outer_autocast_still_applies():
    """No ``autocast(enabled=False)`` of ours: fairseq's --amp (or any outer autocast) still reaches
    the backbone when the flag is off."""
    enc = SignVisualEncoder("K5", temporal_dim=8).eval()
    seen = []
    enc.backbone.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    frames, lengths = torch.randn(1, 4, 3, 32, 32), torch.tensor([4])
    with torch.no_grad():
        enc(frames, lengths)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            enc(frames, lengths)
    assert seen == [torch.float32, torch.bfloat16]


def tiny_stage1_args(**kw):
    args = Namespace(arch="slt_lightt", encoder_embed_dim=16, encoder_ffn_embed_dim=32, encoder_layers=1,
                     decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                     temporal_dim=8, temporal_module="K3", **kw)
    lightt_arch(args)
    return args


class StubTask:
    building_from_checkpoint = False

    def __init__(self):
        self.target_dictionary = self.source_dictionary = Dictionary()


def test_flag_reaches_both_stages_visual_encoder(tmp_path):
    assert tiny_stage1_args().backbone_bf16 is False  # the default
    stage1 = SLTLightTModel.build_model(tiny_stage1_args(backbone_bf16=True), StubTask())
    assert stage1.encoder.visual.backbone_dtype == torch.bfloat16
    plain = SLTLightTModel.build_model(tiny_stage1_args(), StubTask())
    assert plain.encoder.visual.backbone_dtype is None
    ckpt = tmp_path / "stage1.pt"
    torch.save({"cfg": {"model": tiny_stage1_args(backbone_bf16=True)},
                "model": {f"encoder.visual.{k}": v for k, v in stage1.encoder.visual.state_dict().items()}}, ckpt)
    # stage 2 takes this run's flag, not stage 1's
    frozen = build_visual_encoder(Namespace(stage1_checkpoint=str(ckpt)), from_checkpoint=False)
    assert frozen.backbone_dtype is None
    frozen = build_visual_encoder(Namespace(stage1_checkpoint=str(ckpt), backbone_bf16=True), from_checkpoint=False)
    assert frozen.backbone_dtype == torch.bfloat16
    joint = build_visual_encoder(Namespace(train_visual_encoder=True, backbone_bf16=True, temporal_dim=8),
                                 from_checkpoint=False)
    assert joint.backbone_dtype == torch.bfloat16


def test_warns_where_the_cpu_has_no_native_bf16(monkeypatch, caplog):
    monkeypatch.setattr(model_args, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger=model_args.__name__):
        assert model_args.backbone_dtype(Namespace(backbone_bf16=True)) == torch.bfloat16
    assert "no native bfloat16" in caplog.text and "drop the flag" in caplog.text
    caplog.clear()
    assert model_args.backbone_dtype(Namespace()) is None and caplog.text == ""


def test_refused_with_float16_weights():
    for flag in ("fp16", "memory_efficient_fp16"):
        with pytest.raises(ValueError, match="--backbone-bf16 cannot run with --fp16.*use --amp"):
            model_args.backbone_dtype(Namespace(backbone_bf16=True, **{flag: True}))
    assert model_args.backbone_dtype(Namespace(fp16=True)) is None  # --fp16 alone is fairseq's business


def test_audit_flags_the_bf16_backbone():
    assert backbone_precision_check(True).status == DIFFERS
    assert "--backbone-bf16" in backbone_precision_check(True).run
    assert backbone_precision_check(False).status == OK


@pytest.mark.slow
def test_fairseq_train_and_generate_with_backbone_bf16(tiny_corpus, tmp_path):
    save = tmp_path / "ckpt"
    run_cli(stage1_train_cmd(tiny_corpus, save, 2) + ["--backbone-bf16"])
    args = checkpoint_model_args(load_checkpoint_state(str(save / "checkpoint_last.pt")))
    assert args.backbone_bf16 is True  # decoding the checkpoint runs the backbone the same way
    assert {c.setting: c for c in audit_checkpoint(str(save / "checkpoint_last.pt")).checks}["backbone precision"].status == DIFFERS
    out = run_cli([
        "fairseq-generate", tiny_corpus, "--user-dir", PLUGIN_DIR, "--task", "sign_translation",
        "--gen-subset", "test", "--path", save / "checkpoint_last.pt", "--beam", "2",
        "--max-tokens", "400", "--max-len-b", "10",
    ])
    assert len([line for line in out.splitlines() if line.startswith("H-")]) == 5
