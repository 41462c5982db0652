"""fairseq-slt-audit: a checkpoint's settings beside the paper's, each difference flagged."""

import json
import os
import subprocess
import sys
from argparse import Namespace

import pytest
import torch

from fairseq_slt.audit import (
    DIFFERS,
    NOT_APPLICABLE,
    OK,
    UNKNOWN,
    AuditError,
    audit_checkpoint,
    audit_state,
    batch_check,
    epochs_check,
    format_audit,
    lightt_size_check,
    stage2_lr_check,
    temporal_module_check,
)
from fairseq_slt.data.manifest_utils import gen_config_yaml
from fairseq_slt.paper import SETTINGS, fmt_lr, paper_value

BIN_DIR = os.path.dirname(sys.executable)
N_ROWS = 20  # training manifest rows of the hand-built runs: ceil(20 / 8) = 3 updates per epoch


def by_setting(audit):
    return {c.setting: c for c in audit.checks}


def paper_data_root(tmp_path, resize=(256, 256)):
    """A data root with the paper's data config and a training manifest of N_ROWS rows."""
    root = tmp_path / "data"
    root.mkdir()
    gen_config_yaml(str(root), video_root=".", resize=resize, crop=224)
    rows = [f"v{i}\tv{i}.mp4\t100\tsome text" for i in range(N_ROWS)]
    (root / "train.tsv").write_text("\n".join(["id\tvideo\tn_frames\ttgt_text", *rows]) + "\n")
    return root


def paper_state(data_root, stage=1, **model):
    """A checkpoint state (``cfg`` sections as fairseq stores them) with the paper's settings."""
    if stage == 1:
        model_cfg = {"_name": "slt_lightt", "arch": "slt_lightt", "resnet_pretrained": "/weights/resnet18.pth"}
        optimizer = {"_name": "sgd", "momentum": 0.9, "lr": [1e-2]}
        lr, batch, max_update = [1e-2], 8, 75 * 3
    else:
        model_cfg = {"_name": "slt_mbart", "arch": "slt_mbart", "stage1_checkpoint": "/runs/stage1/best.pt",
                     "mbart_dir": "/data/mbart.trimmed", "train_visual_encoder": False,
                     # stored by build_model, which reads them from the mBART checkpoint
                     "encoder_layers": 12, "decoder_layers": 12, "encoder_embed_dim": 1024,
                     "decoder_embed_dim": 1024}
        optimizer = {"_name": "adam_grouped", "group_lr_scales": "llm:0.01", "lr": [1e-3]}
        lr, batch, max_update = [1e-3], 16, 1000
    model_cfg.update(model)
    return {"cfg": {
        "model": model_cfg,
        "task": {"_name": "sign_translation", "data": str(data_root), "config_yaml": "config.yaml",
                 "langs": "de_DE,en_XX" if stage == 1 else "cc25"},
        "dataset": {"batch_size": batch, "max_tokens": None, "train_subset": "train"},
        "optimization": {"lr": lr, "update_freq": [1], "max_epoch": 0, "max_update": max_update},
        "distributed_training": {"distributed_world_size": 1},
        "criterion": {"_name": "label_smoothed_cross_entropy", "label_smoothing": 0.2},
        "optimizer": optimizer,
        "lr_scheduler": {"_name": "cosine"},
    }}


# --- the runs ----------------------------------------------------------------------------------


def test_paper_stage1_has_no_differences(tmp_path):
    audit = audit_state(paper_state(paper_data_root(tmp_path)))
    checks = by_setting(audit)
    assert audit.stage == 1 and not audit.differs, format_audit(audit)
    assert {c.status for c in audit.checks} == {OK, NOT_APPLICABLE}
    assert "(Base)" in checks["Light-T size"].run  # the sizes came from the arch's defaults
    assert checks["epochs"].run.startswith("max_update 225 = 75.0 epochs (20 rows / batch 8 = 3 updates")
    assert checks["resize (GFSLT)"].run == "resize 256x256 (whole frame, GFSLT-VLP)"
    assert checks["decoding"].status == NOT_APPLICABLE and "--beam 5" in checks["decoding"].run


def test_paper_stage2_has_no_differences(tmp_path):
    audit = audit_state(paper_state(paper_data_root(tmp_path), stage=2))
    assert audit.stage == 2 and not audit.differs, format_audit(audit)
    assert {c.status for c in audit.checks} == {OK, NOT_APPLICABLE}
    checks = by_setting(audit)
    assert checks["mBART size"].run == "12+12 layers, d=1024"
    assert checks["learning rates"].run.startswith("LLM-adapter 1e-3, mBART 1e-5")


def test_tiny_light_t_and_max_epoch_are_the_paper_too(tmp_path):
    state = paper_state(paper_data_root(tmp_path), arch="slt_lightt_tiny")
    state["cfg"]["optimization"].update(max_epoch=75, max_update=0)
    audit = audit_state(state)
    assert not audit.differs, format_audit(audit)
    assert by_setting(audit)["Light-T size"].run.endswith("(Tiny)")


def test_one_change_is_one_difference(tmp_path):
    """A run that differs in one setting only: that row, and no other, is flagged."""
    root = paper_data_root(tmp_path, resize=256)
    state = paper_state(root)
    state["cfg"]["distributed_training"]["distributed_world_size"] = 4  # --batch-size is per GPU
    audit = audit_state(state)
    assert sorted(c.setting for c in audit.differs) == ["batch size (global)", "epochs", "resize (GFSLT)"]
    checks = by_setting(audit)
    assert checks["batch size (global)"].run == "32 = 8 per GPU x update_freq 1 x 4 GPUs"
    assert "= 225.0 epochs" in checks["epochs"].run  # 225 updates of 32 over 20 rows
    assert checks["resize (GFSLT)"].run == "shorter side 256"


def test_stage2_joint_baseline_and_plain_adam_differ(tmp_path):
    state = paper_state(paper_data_root(tmp_path), stage=2, train_visual_encoder=True, stage1_checkpoint=None)
    state["cfg"]["optimizer"] = {"_name": "adam", "lr": [1e-3]}
    checks = by_setting(audit_state(state))
    assert checks["visual encoder"].status == DIFFERS and "--train-visual-encoder" in checks["visual encoder"].run
    assert checks["stage-1 checkpoint"].status == DIFFERS
    assert checks["optimizer"].status == OK  # Adam
    assert checks["learning rates"].status == DIFFERS
    assert checks["learning rates"].run.startswith("LLM-adapter 1e-3, mBART 1e-3")


def test_stage2_sizes_not_stored_are_unknown(tmp_path):
    state = paper_state(paper_data_root(tmp_path), stage=2)
    for key in ("encoder_layers", "decoder_layers", "encoder_embed_dim", "decoder_embed_dim"):
        del state["cfg"]["model"][key]  # --mbart-dir without the sizes build_model stores
    check = by_setting(audit_state(state))["mBART size"]
    assert (check.run, check.status) == ("not stored", UNKNOWN)


def test_data_config_gone_is_unknown_not_ok(tmp_path):
    root = paper_data_root(tmp_path)
    os.remove(root / "config.yaml")
    audit = audit_state(paper_state(root))
    unknown = [c.setting for c in audit.checks if c.status == UNKNOWN]
    assert unknown == ["frames kept", "max frames (GFSLT)", "crop", "resize (GFSLT)", "augmentation (GFSLT)"]
    assert not audit.differs and audit.data_config_error.startswith("data config not found")
    assert "data settings unknown: data config not found" in format_audit(audit).splitlines()[0]


@pytest.mark.slow
def test_stage1_run_of_the_tests_is_flagged(stage1_run):
    """conftest's stage-1 run: tiny Light-T, adam, --max-tokens, 3 updates, 48-pixel frames."""
    audit = audit_checkpoint(str(stage1_run[0] / "checkpoint_last.pt"))
    checks = by_setting(audit)
    assert audit.stage == 1 and audit.arch == "slt_lightt"
    for setting in ("Light-T size", "Light-T vocabulary", "temporal module", "backbone", "optimizer",
                    "learning rate", "lr scheduler", "batch size (global)", "epochs", "crop", "resize (GFSLT)",
                    "augmentation (GFSLT)"):
        assert checks[setting].status == DIFFERS, checks[setting]
    for setting in ("backbone precision", "loss", "label smoothing", "frames kept", "max frames (GFSLT)"):
        assert checks[setting].status == OK, checks[setting]
    assert checks["Light-T size"].run == "1+1 layers, 2 heads, d=16, FFN 32, sinusoidal"
    assert checks["temporal module"].run == "K5,P2: 1 conv, 1 pool"
    runs = (checks["optimizer"].run, checks["learning rate"].run, checks["lr scheduler"].run)
    assert runs == ("adam", "1e-3", "fixed")
    assert checks["batch size (global)"].run.startswith("not fixed: --max-tokens 200")
    assert checks["epochs"].run.endswith("at most 3 epochs")
    assert checks["resize (GFSLT)"].run == "shorter side 48"
    lines = format_audit(audit).splitlines()
    assert [f.strip() for f in lines[1].split(" | ")] == ["setting", "paper", "this run", "ok/DIFFERS"]
    rows = [[f.strip() for f in line.split(" | ")] for line in lines[3:-1]]
    assert [r[0] for r in rows] == [c.setting for c in audit.checks]
    assert [r[3] for r in rows] == [c.status for c in audit.checks]
    n = len(audit.checks)
    assert lines[-1] == f"{len(audit.differs)} of {n} settings differ from the paper, 0 unknown, 5 ok"


# --- the checks --------------------------------------------------------------------------------


@pytest.mark.parametrize("args, expected", [
    ((8, None, [1], 1), ("8 = 8 per GPU x update_freq 1 x 1 GPU", OK)),
    ((4, None, [2], 1), ("8 = 4 per GPU x update_freq 2 x 1 GPU", OK)),
    ((2, None, [1], 4), ("8 = 2 per GPU x update_freq 1 x 4 GPUs", OK)),
    ((8, None, [1], 2), ("16 = 8 per GPU x update_freq 1 x 2 GPUs", DIFFERS)),
    ((8, None, [1, 2], 1), ("8 = 8 per GPU x update_freq [1, 2] (varies by epoch) x 1 GPU", DIFFERS)),
    ((None, 4000, [1], 1), ("not fixed: --max-tokens 4000", DIFFERS)),
    ((8, 4000, [1], 1), ("not fixed: at most 8 = 8 per GPU", DIFFERS)),
    ((None, None, [1], 1), ("not stored", UNKNOWN)),
])
def test_batch_check(args, expected):
    check = batch_check(*args, paper=8)
    assert check.run.startswith(expected[0]) and check.status == expected[1], check


@pytest.mark.parametrize("args, status, text", [
    ((75, 0, None, None, "?"), OK, "max_epoch 75"),
    ((74, 0, None, None, "?"), DIFFERS, "max_epoch 74"),
    ((0, 750, 80, 8), OK, "max_update 750 = 75.0 epochs (80 rows / batch 8 = 10 updates per epoch)"),
    ((0, 755, 80, 8), OK, "= 75.5 epochs"),
    ((0, 760, 80, 8), DIFFERS, "= 76.0 epochs"),
    ((75, 10_000, 80, 8), OK, "(training stops at whichever comes first)"),
    ((30, 750, 80, 8), DIFFERS, "max_epoch 30, max_update 750"),
    ((0, 3, None, None, "the batch is not fixed"), DIFFERS, "at most 3 epochs"),
    ((0, 100_000, None, None, "manifest not found"), UNKNOWN, "updates per epoch unknown: manifest not found"),
    ((0, 0, None, None, "?"), DIFFERS, "no limit"),
])
def test_epochs_check(args, status, text):
    check = epochs_check(*args) if len(args) == 5 else epochs_check(*args, why_unknown="?")
    assert check.status == status and text in check.run, check


def test_size_and_module_checks():
    keys = ("layers", "attention_heads", "embed_dim", "ffn_embed_dim")
    sizes = dict(zip(keys, (3, 8, 512, 2048)))
    base = Namespace(**{f"{side}_{k}": v for side in ("encoder", "decoder") for k, v in sizes.items()})
    assert lightt_size_check(base).status == OK
    assert lightt_size_check(Namespace(**vars(base), decoder_learned_pos=True)).status == DIFFERS
    assert lightt_size_check(Namespace(**{**vars(base), "decoder_layers": 6})).run.startswith("3+6 layers")
    missing = Namespace(**{k: v for k, v in vars(base).items() if k != "encoder_layers"})
    assert lightt_size_check(missing).status == UNKNOWN
    assert temporal_module_check("K5").status == OK and temporal_module_check("K3").status == OK
    assert temporal_module_check(None).run == "K5: 1 conv, 0 pools"  # the default
    assert temporal_module_check("K5,P2,K5,P2").run == "K5,P2,K5,P2: 2 convs, 2 pools"
    assert temporal_module_check("K5,P2,K5,P2").status == DIFFERS
    assert temporal_module_check("X9").status == DIFFERS


def test_stage2_lr_and_format():
    assert stage2_lr_check("adam_grouped", [1e-3], "llm:0.01").status == OK
    assert stage2_lr_check("adam_grouped", [1e-3], "llm:0.1").run.startswith("LLM-adapter 1e-3, mBART 1e-4")
    assert stage2_lr_check("adam_grouped", [1e-3], "llm").status == DIFFERS  # not group:scale
    assert stage2_lr_check("adam_grouped", [1e-3, 1e-4], "llm:0.01").status == DIFFERS
    assert (fmt_lr(1e-2), fmt_lr(1.5e-3), fmt_lr(1e-05)) == ("1e-2", "1.5e-3", "1e-5")


def test_bad_checkpoints_are_refused(tmp_path):
    with pytest.raises(AuditError, match=r"checkpoint not found: .*nope\.pt; give the \.pt file"):
        audit_checkpoint(str(tmp_path / "nope.pt"))
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    with pytest.raises(AuditError, match="not a readable checkpoint"):
        audit_checkpoint(str(tmp_path / "text.pt"))
    torch.save({"model": {}}, tmp_path / "weights.pt")
    with pytest.raises(AuditError, match=r"weights\.pt: holds no training config \(cfg or args\)"):
        audit_checkpoint(str(tmp_path / "weights.pt"))
    with pytest.raises(AuditError, match=r"--arch transformer is not a fairseq-slt model"):
        audit_state({"cfg": {"model": {"_name": "transformer", "arch": "transformer"}}})


# --- the command line --------------------------------------------------------------------------


def save_checkpoints(tmp_path):
    """paper.pt (the paper's settings) and smoothing.pt (label smoothing 0.1), saved as files."""
    root = paper_data_root(tmp_path)
    weights = {"encoder.adapter.weight": torch.zeros(2, 2)}  # a fairseq checkpoint has its weights
    torch.save({**paper_state(root), "model": weights}, tmp_path / "paper.pt")
    differing = paper_state(root)
    differing["cfg"]["criterion"]["label_smoothing"] = 0.1
    torch.save({**differing, "model": weights}, tmp_path / "smoothing.pt")
    return str(tmp_path / "paper.pt"), str(tmp_path / "smoothing.pt")


@pytest.mark.slow
def test_cli_prints_the_tables_and_strict_fails_on_a_difference(tmp_path):
    paper, smoothing = save_checkpoints(tmp_path)
    proc = subprocess.run([os.path.join(BIN_DIR, "fairseq-slt-audit"), paper, smoothing, "--strict"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 1, proc.stderr[-3000:]
    blocks = proc.stdout.split("\n\n")
    assert len(blocks) == 2 and blocks[0].startswith(paper) and blocks[1].startswith(smoothing)
    assert "0 of 18 settings differ" in blocks[0] and "1 of 18 settings differ" in blocks[1]
    row = next(line for line in blocks[1].splitlines() if line.startswith("label smoothing"))
    assert [f.strip() for f in row.split(" | ")] == ["label smoothing", "0.2", "0.1", "DIFFERS"]


def test_cli_json_exit_status_and_errors(tmp_path, capsys):
    from fairseq_slt.cli.audit import cli_main

    paper, smoothing = save_checkpoints(tmp_path)
    cli_main(["--json", "--strict", paper])  # returns: nothing differs
    (report,) = json.loads(capsys.readouterr().out)
    assert report["stage"] == 1 and report["n_differs"] == 0 and report["data_config_error"] is None
    assert {c["status"] for c in report["checks"]} == {"ok", "n/a"}

    cli_main(["--json", paper, smoothing])  # it reports: exit 0 without --strict
    assert [r["n_differs"] for r in json.loads(capsys.readouterr().out)] == [0, 1]
    with pytest.raises(SystemExit) as e:
        cli_main(["--strict", smoothing])
    assert e.value.code == 1 and "1 of 18 settings differ" in capsys.readouterr().out

    with pytest.raises(SystemExit) as e:
        cli_main([paper, str(tmp_path / "nope.pt")])
    assert str(e.value.code).startswith("fairseq-slt-audit: error: checkpoint not found: ")
    assert capsys.readouterr().out == ""  # nothing printed before the error


def test_resnet_check_reads_none_as_random_init():
    from fairseq_slt.audit import DIFFERS, OK, resnet_check

    assert resnet_check("none").status == DIFFERS and "random init (--resnet-pretrained none)" in resnet_check("none").run
    assert resnet_check(None).status == DIFFERS and resnet_check("imagenet").status == OK


def test_paper_settings_command_prints_the_table_for_a_shell():
    # the recipes eval this output: one PAPER_<NAME>=value line per setting of fairseq_slt.paper
    proc = subprocess.run(
        ["bash", "-c", f'eval "$("{BIN_DIR}/fairseq-slt-audit" --paper-settings)"; '
         'echo "$PAPER_RESIZE|$PAPER_STAGE1_LR|$PAPER_STAGE2_LLM_LR_SCALE|$PAPER_STAGE1_MOMENTUM|$PAPER_BEAM"'],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "256,256|1e-2|0.01|0.9|5"
    from fairseq_slt.cli.audit import cli_main

    with pytest.raises(SystemExit) as e:
        cli_main(["--paper-settings", "some.pt"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        cli_main([])
    assert e.value.code == 2


def test_prep_and_data_config_defaults_are_the_papers():
    from fairseq_slt.cli.prep import get_parser, video_config
    from fairseq_slt.data.data_cfg import AUGMENT_DEFAULTS, VIDEO_DEFAULTS

    args = get_parser().parse_args(["t.tsv", "--out", "o"])
    config = video_config(args)
    assert config["resize"] == paper_value("RESIZE") == (256, 256)
    for key in ("crop", "keep_ratio", "max_frames"):
        assert config[key] == VIDEO_DEFAULTS[key] == paper_value(key.upper())
    assert config["augment"] == AUGMENT_DEFAULTS == {
        k: paper_value(f"AUGMENT_{k.upper()}") for k in ("rotate", "scale", "translate", "p")}
    assert VIDEO_DEFAULTS["resize"] == 256  # a config without resize keeps the aspect ratio
    # every setting names where the paper (or the code it builds on) states it
    assert all(s.source.startswith(("Chen et al., LREC-COLING 2024", "GFSLT-VLP")) for s in SETTINGS.values())
