"""Audit a run against the paper: every setting of FLa-LLM's method beside the value a checkpoint
was trained with, each difference flagged.

The paper's values are those of Chen et al., LREC-COLING 2024 (arXiv 2403.12556), Sec. 4.2, and
of GFSLT-VLP (same authors, ICCV 2023) where the paper builds on its code (frames, augmentation):
the table :data:`fairseq_slt.paper.SETTINGS`, which names the source of each. The run's values are read from the checkpoint's stored
fairseq config (``cfg.model``, ``cfg.optimization``, ``cfg.dataset``, ...; see
:mod:`fairseq_slt.checkpoints`) and, for the data settings, from the run's data config
(``<cfg.task.data>/<cfg.task.config_yaml>``) as it is on disk NOW, which may have changed since.

Each check is ``ok``, ``DIFFERS``, ``unknown`` (the value cannot be read, e.g. the data config is
gone) or ``n/a`` (not a training setting: the beam is a flag of decoding).
"""

import math
import os
from argparse import Namespace
from copy import copy
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .checkpoints import checkpoint_arch, checkpoint_section, load_checkpoint_state, registered_model_of_arch
from .paper import fmt_lr, paper_value

OK, DIFFERS, UNKNOWN, NOT_APPLICABLE = "ok", "DIFFERS", "unknown", "n/a"
STAGE_OF_MODEL = {"slt_lightt": 1, "slt_mbart": 2, "slt_hf": 2}
PAPER_LLM = "pre-trained mBART-large-cc25, trimmed (--mbart-dir)"
# where slt_hf checkpoints record their LLM (fairseq_slt.models.slt_hf.SLTHFDecoder.get_extra_state)
LLM_RECORD_KEY = "decoder._extra_state"

# Light-T sizes: layers, heads, width, FFN of encoder and decoder
LIGHTT_SIZES = {"Base": paper_value("LIGHTT_BASE"), "Tiny": paper_value("LIGHTT_TINY")}


def lightt_text(base: Tuple[int, ...], tiny: Tuple[int, ...]) -> str:
    """The paper's Light-T sizes as the audit shows them."""
    return (f"Base: {base[0]}+{base[0]} layers, {base[1]} heads, d={base[2]}, FFN {base[3]}, sinusoidal "
            f"(or Tiny: {tiny[0]}+{tiny[0]}, {tiny[1]}, {tiny[2]}, {tiny[3]})")


PAPER_LIGHTT = lightt_text(LIGHTT_SIZES["Base"], LIGHTT_SIZES["Tiny"])
PAPER_AUGMENT = {k: paper_value(f"AUGMENT_{k.upper()}") for k in ("rotate", "scale", "translate", "p")}


class AuditError(ValueError):
    """A checkpoint that cannot be audited (missing, unreadable, not a fairseq-slt run)."""


@dataclass(frozen=True)
class Check:
    """One setting: the paper's value, the run's value and whether they agree."""

    setting: str
    paper: str
    run: str
    status: str


@dataclass
class Audit:
    """The checks of one checkpoint."""

    checkpoint: str
    stage: int
    arch: str
    data_config: Optional[str]  # the path of the run's data config
    data_config_error: Optional[str]  # why it could not be read now (None: it was read)
    checks: List[Check] = field(default_factory=list)

    @property
    def differs(self) -> List[Check]:
        return [c for c in self.checks if c.status == DIFFERS]

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out["n_differs"] = len(self.differs)
        return out


# --- formatting (pure) -------------------------------------------------------------------------


def close(a: Optional[float], b: float) -> bool:
    return a is not None and math.isclose(float(a), b, rel_tol=1e-6, abs_tol=1e-12)


def status(ok: bool) -> str:
    return OK if ok else DIFFERS


# --- reading the stored config -----------------------------------------------------------------


class RunConfig:
    """The stored config of a checkpoint: ``cfg.<section>.<key>`` (or a legacy ``args``), with the
    model's arguments completed by its ``--arch`` defaults as fairseq does when it loads it."""

    def __init__(self, state: Dict):
        self.state = state
        self.model = self._model_args(state)

    @staticmethod
    def _model_args(state: Dict) -> Namespace:
        from fairseq.models import ARCH_CONFIG_REGISTRY

        from . import register

        register()  # our archs' defaults
        args = copy(checkpoint_section(state, "model") or Namespace())
        arch = checkpoint_arch(state)
        if arch in ARCH_CONFIG_REGISTRY:
            ARCH_CONFIG_REGISTRY[arch](args)  # the arch's defaults for what was not stored
        return args

    def get(self, section: str, key: str, default: Any = None) -> Any:
        value = getattr(checkpoint_section(self.state, section), key, None)
        return default if value is None else value

    def name(self, section: str) -> Optional[str]:
        """The registered name of a component (``criterion``, ``optimizer``, ``lr_scheduler``)."""
        return self.get(section, "_name") or getattr(self.model, section, None)


def train_rows(run: RunConfig) -> Tuple[Optional[int], str]:
    """Rows of the run's training manifest if it still exists, else None and why."""
    from .data.manifest_utils import ManifestError, read_manifest

    data = run.get("task", "data")
    if not data:
        return None, "no cfg.task.data"
    path = os.path.join(str(data).split(os.pathsep)[0], f"{run.get('dataset', 'train_subset', 'train')}.tsv")
    try:
        return len(read_manifest(path)[1]), path
    except (OSError, ManifestError) as e:
        return None, str(e)


def load_data_config(run: RunConfig) -> Tuple[Any, Optional[str], Optional[str]]:
    """The run's data config (:class:`~fairseq_slt.data.SignDataConfig`) if it can still be read
    (else None), its path, and why it could not be read (None when it was)."""
    from .data.data_cfg import DataConfigError, SignDataConfig

    data = run.get("task", "data")
    if not data:
        return None, None, "the checkpoint stores no cfg.task.data"
    path = os.path.join(str(data).split(os.pathsep)[0], run.get("task", "config_yaml", "config.yaml"))
    try:
        return SignDataConfig(path), path, None
    except (OSError, DataConfigError) as e:
        return None, path, str(e)


# --- checks (pure: values in, a Check out) -----------------------------------------------------


def lightt_size_check(args: Namespace) -> Check:
    """Light-T Base (3+3 layers, 8 heads, d=512, FFN 2048, sinusoidal positions) or Tiny."""
    keys = ("layers", "attention_heads", "embed_dim", "ffn_embed_dim")
    enc = tuple(getattr(args, f"encoder_{k}", None) for k in keys)
    dec = tuple(getattr(args, f"decoder_{k}", None) for k in keys)
    learned = bool(getattr(args, "encoder_learned_pos", False) or getattr(args, "decoder_learned_pos", False))

    def show(e, d, i):
        return f"{e[i]}" if e[i] == d[i] else f"{e[i]}/{d[i]}"

    run = (f"{enc[0]}+{dec[0]} layers, {show(enc, dec, 1)} heads, d={show(enc, dec, 2)}, "
           f"FFN {show(enc, dec, 3)}, {'learned positions' if learned else 'sinusoidal'}")
    size = next((name for name, sizes in LIGHTT_SIZES.items() if enc == dec == sizes), None)
    if None in enc + dec:
        return Check("Light-T size", PAPER_LIGHTT, run + " (some sizes not stored)", UNKNOWN)
    return Check("Light-T size", PAPER_LIGHTT, run + (f" ({size})" if size else ""),
                 status(size is not None and not learned))


def temporal_module_check(spec: Optional[str]) -> Check:
    """One Conv1D + BatchNorm + ReLU over time (kernel not stated; the default K5)."""
    from .models.visual_frontend import DEFAULT_TEMPORAL_MODULE, parse_temporal_spec

    spec = spec or DEFAULT_TEMPORAL_MODULE
    paper = "one Conv1D + BN + ReLU (kernel not stated; default K5)"
    try:
        layers = parse_temporal_spec(spec)
    except ValueError:
        return Check("temporal module", paper, f"{spec} (not a valid spec)", DIFFERS)
    convs = sum(kind == "K" for kind, _ in layers)
    pools = len(layers) - convs
    run = f"{spec}: {convs} conv{'s' if convs != 1 else ''}, {pools} pool{'s' if pools != 1 else ''}"
    return Check("temporal module", paper, run, status(convs == 1 and pools == 0))


def resnet_check(resnet_pretrained: Optional[str]) -> Check:
    paper = "ResNet-18, ImageNet-pretrained (--resnet-pretrained)"
    if resnet_pretrained and resnet_pretrained.strip().lower() == "none":
        return Check("backbone", paper, "ResNet-18, random init (--resnet-pretrained none)", DIFFERS)
    if resnet_pretrained:
        return Check("backbone", paper, f"ResNet-18 from {resnet_pretrained}", OK)
    return Check("backbone", paper, "ResNet-18, random init (no --resnet-pretrained)", DIFFERS)


def backbone_precision_check(backbone_bf16: bool) -> Check:
    """``--backbone-bf16`` (bfloat16 autocast of the ResNet, the CPU's mixed precision) is ours."""
    paper = "not stated (float32 here; fairseq's --amp / --fp16 on a GPU)"
    if backbone_bf16:
        return Check("backbone precision", paper, "bfloat16 autocast (--backbone-bf16)", DIFFERS)
    return Check("backbone precision", paper, "float32 (or the run's --amp / --fp16)", OK)


def loss_checks(criterion: Optional[str], smoothing: Optional[float]) -> List[Check]:
    smoothing_paper = paper_value("LABEL_SMOOTHING")
    return [
        Check("loss", "label_smoothed_cross_entropy", str(criterion),
              status(criterion == "label_smoothed_cross_entropy")),
        Check("label smoothing", f"{smoothing_paper:g}", "none" if smoothing is None else f"{smoothing:g}",
              status(close(smoothing, smoothing_paper))),
    ]


def sgd_check(optimizer: Optional[str], momentum: Optional[float]) -> Check:
    name, paper_momentum = paper_value("STAGE1_OPTIMIZER"), paper_value("STAGE1_MOMENTUM")
    paper = f"{name}, momentum {paper_momentum:g}"
    if optimizer != name:
        return Check("optimizer", paper, str(optimizer), DIFFERS)
    return Check("optimizer", paper, f"sgd, momentum {momentum or 0.0:g}", status(close(momentum, paper_momentum)))


def lr_check(lr: Any, paper: float) -> Check:
    values = list(lr) if isinstance(lr, (list, tuple)) else [lr]
    if None in values or not values:
        return Check("learning rate", fmt_lr(paper), "not stored", UNKNOWN)
    run = fmt_lr(values[0]) if len(values) == 1 else f"per epoch {', '.join(fmt_lr(v) for v in values)}"
    return Check("learning rate", fmt_lr(paper), run, status(len(values) == 1 and close(values[0], paper)))


def scheduler_check(name: Optional[str]) -> Check:
    paper = paper_value("LR_SCHEDULER")
    return Check("lr scheduler", paper, str(name), status(name == paper))


def global_batch(batch_size: Optional[int], max_tokens: Optional[int], update_freq: Any,
                 world_size: Optional[int]) -> Optional[int]:
    """Examples per update over all GPUs (batch_size x update_freq x world size); None when the
    batch is not fixed (``--max-tokens``, an update_freq that varies by epoch)."""
    freqs = list(update_freq) if isinstance(update_freq, (list, tuple)) else [update_freq or 1]
    if not batch_size or max_tokens or len(set(freqs)) != 1:
        return None
    return int(batch_size) * int(freqs[0]) * int(world_size or 1)


def batch_check(batch_size: Optional[int], max_tokens: Optional[int], update_freq: Any,
                world_size: Optional[int], paper: int) -> Check:
    """Global batch = --batch-size (per GPU) x --update-freq x GPUs; --max-tokens makes it vary."""
    freqs = list(update_freq) if isinstance(update_freq, (list, tuple)) else [update_freq or 1]
    world = int(world_size or 1)
    freq = str(freqs[0]) if len(set(freqs)) == 1 else f"{freqs} (varies by epoch)"
    per = f"x update_freq {freq} x {world} GPU{'s' if world != 1 else ''}"
    label, paper_text = "batch size (global)", f"{paper} (= batch_size x update_freq x GPUs)"
    if not batch_size and not max_tokens:
        return Check(label, paper_text, "not stored", UNKNOWN)
    if not batch_size:
        return Check(label, paper_text, f"not fixed: --max-tokens {max_tokens} (frames per GPU batch) {per}; "
                     f"give --batch-size, not --max-tokens (batch_size x update_freq x GPUs = {paper})", DIFFERS)
    total = int(batch_size) * int(freqs[0]) * world
    if max_tokens:
        return Check(label, paper_text, f"not fixed: at most {total} = {batch_size} per GPU {per}, and "
                     f"--max-tokens {max_tokens} can make batches smaller; drop --max-tokens", DIFFERS)
    run = f"{total} = {batch_size} per GPU {per}"
    return Check(label, paper_text, run, status(total == paper and len(set(freqs)) == 1))


def epochs_check(max_epoch: Optional[int], max_update: Optional[int], rows: Optional[int],
                 batch: Optional[int], why_unknown: str, paper: Optional[int] = None) -> Check:
    """Epochs trained: --max-epoch, or --max-update over ceil(rows / global batch) updates per
    epoch (the recipes' arithmetic; cosine needs --max-update); whichever stops training first.
    Where the updates per epoch are unknown, max_update updates are at most max_update epochs
    (an update takes at least one example), which still shows a run that stops too early."""
    max_epoch, max_update = int(max_epoch or 0), int(max_update or 0)
    paper = paper_value("STAGE1_EPOCHS") if paper is None else paper
    label, paper_text = "epochs", f"{paper} (--max-epoch, or --max-update = {paper} x updates per epoch)"
    parts: List[str] = []
    exact: List[float] = []  # epochs at which a limit stops training
    bound: List[float] = []  # upper bounds of those epochs
    if max_epoch > 0:
        parts.append(f"max_epoch {max_epoch}")
        exact.append(float(max_epoch))
    if max_update > 0 and rows and batch:
        per_epoch = math.ceil(rows / batch)
        exact.append(max_update / per_epoch)
        parts.append(f"max_update {max_update} = {exact[-1]:.1f} epochs ({rows} rows / batch {batch} = "
                     f"{per_epoch} update{'s' if per_epoch != 1 else ''} per epoch)")
    elif max_update > 0:
        bound.append(float(max_update))
        parts.append(f"max_update {max_update} (updates per epoch unknown: {why_unknown})")
    if not parts:
        return Check(label, paper_text, "no limit (max_epoch 0, max_update 0)", DIFFERS)
    run = ", ".join(parts) + (" (training stops at whichever comes first)" if len(parts) > 1 else "")
    if bound:
        most = min(exact + bound)
        if most < paper - 0.5:
            return Check(label, paper_text, f"{run}: at most {most:g} epochs", DIFFERS)
        return Check(label, paper_text, run, UNKNOWN)
    return Check(label, paper_text, run, status(abs(min(exact) - paper) <= 0.5))


def data_checks(data_cfg, augment: bool) -> List[Check]:
    """25% of the frames, at most 300, resize 256x256 (whole frame), crop 224 and, for stage 1,
    GFSLT's augmentation, read from the run's data config as it is now (None: unknown)."""
    from .data.transforms import describe_resize

    rows = [("frames kept", "keep_ratio"), ("max frames (GFSLT)", "max_frames"), ("crop", "crop"),
            ("resize (GFSLT)", "resize")] + ([("augmentation (GFSLT)", "augment")] if augment else [])
    video = {key: paper_value(key.upper()) for key in ("keep_ratio", "max_frames", "crop", "resize")}
    paper = {
        "keep_ratio": f"{video['keep_ratio']:g} ({100 * video['keep_ratio']:g}% of the frames)",
        "max_frames": str(video["max_frames"]),
        "crop": f"{video['crop']} (random train / centre eval)",
        "resize": "{}x{} (the whole frame, aspect ratio squashed)".format(*video["resize"]),
        "augment": ", ".join(f"{k} {v:g}" for k, v in PAPER_AUGMENT.items()),
    }
    if data_cfg is None:
        return [Check(label, paper[key], "unknown: the data config cannot be read now", UNKNOWN)
                for label, key in rows]
    aug = data_cfg.augment
    resize = data_cfg.resize
    run = {
        "keep_ratio": (f"{data_cfg.keep_ratio:g}", close(data_cfg.keep_ratio, video["keep_ratio"])),
        "max_frames": (str(data_cfg.max_frames), data_cfg.max_frames == video["max_frames"]),
        "crop": (str(data_cfg.crop), data_cfg.crop == video["crop"]),
        "resize": (describe_resize(resize, data_cfg.crop).split(" -> ")[0],
                   isinstance(resize, tuple) and resize == video["resize"]),
        "augment": (", ".join(f"{k} {aug[k]:g}" for k in PAPER_AUGMENT),
                    all(close(aug[k], v) for k, v in PAPER_AUGMENT.items())),
    }
    return [Check(label, paper[key], run[key][0], status(run[key][1])) for label, key in rows]


def vocabulary_check(langs: Optional[str]) -> Check:
    paper = "the trimmed mBART tokenizer and vocabulary (--langs)"
    if langs:
        return Check("Light-T vocabulary", paper, f"mBART dictionary (--langs {langs})", OK)
    return Check("Light-T vocabulary", paper, "no --langs: not the mBART dictionary", DIFFERS)


def decoding_check() -> Check:
    beam = paper_value("BEAM")
    return Check("decoding", f"beam search, beam {beam}", f"not stored in a checkpoint: --beam {beam} is a flag of "
                 "fairseq-generate (fairseq-slt-translate's default)", NOT_APPLICABLE)


def mbart_size_check(args: Namespace) -> Check:
    enc, dec = getattr(args, "encoder_layers", None), getattr(args, "decoder_layers", None)
    dims = {getattr(args, "encoder_embed_dim", None), getattr(args, "decoder_embed_dim", None)}
    paper = "mBART-large-cc25: 12+12 layers, d=1024"
    if None in (enc, dec) or None in dims:
        return Check("mBART size", paper, "not stored", UNKNOWN)
    dim = "/".join(str(d) for d in sorted(dims))
    return Check("mBART size", paper, f"{enc}+{dec} layers, d={dim}", status(enc == dec == 12 and dims == {1024}))


def describe_llm(record: Dict[str, Any]) -> str:
    """``llama, 1100.0M parameters, decoder-only, lora (rank 8, alpha 16, q_proj,v_proj), bfloat16,
    from /models/x (weights sha256 1a2b3c4d5e6f...)``: an slt_hf checkpoint's LLM record."""
    mode = record.get("mode")
    lora = record.get("lora") or {}
    if mode == "lora" and lora:
        mode += (f" (rank {lora.get('rank')}, alpha {lora.get('alpha'):g}, "
                 f"{','.join(lora.get('target_modules') or [])})")
    kind = "encoder-decoder" if record.get("encoder_decoder") else "decoder-only"
    return (f"{record.get('model_type')}, {record.get('parameters', 0) / 1e6:.1f}M parameters, {kind}, "
            f"trained {mode}, {record.get('dtype')}, from {record.get('llm_dir')} (weights fingerprint "
            f"{str(record.get('fingerprint'))[:12]}...)")


def llm_checks(run: RunConfig, model: str) -> List[Check]:
    """The LLM of stage 2: slt_mbart's mBART directory and size, or slt_hf's recorded folder."""
    args = run.model
    if model != "slt_hf":
        mbart = getattr(args, "mbart_dir", None)
        return [Check("mBART", PAPER_LLM, mbart or "none (randomly initialised)", status(bool(mbart))),
                mbart_size_check(args)]
    record = (run.state.get("model") or {}).get(LLM_RECORD_KEY)
    if not isinstance(record, dict) or not record:
        return [Check("LLM", PAPER_LLM, f"{getattr(args, 'llm_dir', None)} (no record in the checkpoint)", UNKNOWN)]
    return [Check("LLM", PAPER_LLM, describe_llm(record), DIFFERS)]


def stage2_lr_check(optimizer: Optional[str], lr: Any, group_lr_scales: Optional[str]) -> Check:
    """Adapter 1e-3, mBART 1e-5: ``adam_grouped`` scales ``--lr`` per parameter group."""
    from .optim.adam_grouped import parse_scales

    lr_adapter, lr_mbart = paper_value("STAGE2_LR_ADAPTER"), paper_value("STAGE2_LR_LLM")
    paper = f"LLM-adapter {fmt_lr(lr_adapter)}, mBART {fmt_lr(lr_mbart)} (--lr {fmt_lr(lr_adapter)} " \
            f"--group-lr-scales llm:{lr_mbart / lr_adapter:g})"
    values = list(lr) if isinstance(lr, (list, tuple)) else [lr]
    if not values or values[0] is None:
        return Check("learning rates", paper, "not stored", UNKNOWN)
    base = float(values[0])
    scales: Dict[str, float] = {}
    if optimizer == "adam_grouped":
        try:
            scales = parse_scales(group_lr_scales or "")
        except ValueError:
            return Check("learning rates", paper, f"--group-lr-scales {group_lr_scales!r} (not valid)", DIFFERS)
    adapter, mbart = base * scales.get("default", 1.0), base * scales.get("llm", 1.0)
    run = f"LLM-adapter {fmt_lr(adapter)}, mBART {fmt_lr(mbart)} (--lr {fmt_lr(base)}"
    run += f" --group-lr-scales {group_lr_scales})" if scales else ")"
    if len(values) > 1:
        run += f"; per-epoch --lr {values}"
    ok = len(values) == 1 and close(adapter, lr_adapter) and close(mbart, lr_mbart)
    return Check("learning rates", paper, run, status(ok))


# --- per stage ---------------------------------------------------------------------------------


def common_training_checks(run: RunConfig, stage: int) -> Tuple[List[Check], Optional[int]]:
    """Loss, scheduler and global batch of either stage, and that batch (None if not fixed)."""
    batch_size = run.get("dataset", "batch_size") or run.get("dataset", "max_sentences")  # legacy name
    batch_args = (batch_size, run.get("dataset", "max_tokens"),
                  run.get("optimization", "update_freq", [1]),
                  run.get("distributed_training", "distributed_world_size", 1))
    checks = loss_checks(run.name("criterion"), run.get("criterion", "label_smoothing"))
    checks += [scheduler_check(run.name("lr_scheduler")), batch_check(*batch_args, paper=paper_value(f"STAGE{stage}_BATCH"))]
    return checks, global_batch(*batch_args)


def stage1_checks(run: RunConfig, data_cfg) -> List[Check]:
    args = run.model
    training, batch = common_training_checks(run, 1)
    rows, rows_where = train_rows(run)
    why = "the batch is not fixed" if batch is None else rows_where
    checks = [
        lightt_size_check(args),
        vocabulary_check(run.get("task", "langs")),
        temporal_module_check(getattr(args, "temporal_module", None)),
        resnet_check(getattr(args, "resnet_pretrained", None)),
        backbone_precision_check(bool(getattr(args, "backbone_bf16", False))),
        training[0], training[1],
        sgd_check(run.name("optimizer"), run.get("optimizer", "momentum")),
        lr_check(run.get("optimization", "lr"), paper_value("STAGE1_LR")),
        training[2], training[3],
        epochs_check(run.get("optimization", "max_epoch"), run.get("optimization", "max_update"),
                     rows, batch, why),
    ]
    return checks + data_checks(data_cfg, augment=True) + [decoding_check()]


def stage2_checks(run: RunConfig, data_cfg) -> List[Check]:
    args = run.model
    training, _ = common_training_checks(run, 2)
    trained = bool(getattr(args, "train_visual_encoder", False))
    stage1 = getattr(args, "stage1_checkpoint", None)
    optimizer = run.name("optimizer")
    checks = [
        Check("visual encoder", "frozen (backbone and temporal module)",
              "trained (--train-visual-encoder: the joint baseline)" if trained else "frozen",
              status(not trained)),
        Check("stage-1 checkpoint", "the stage-1 visual encoder (--stage1-checkpoint)",
              stage1 or "none (visual encoder from ImageNet or random weights)", status(bool(stage1))),
        *llm_checks(run, registered_model_of_arch(checkpoint_arch(run.state)) or ""),
        backbone_precision_check(bool(getattr(args, "backbone_bf16", False))),
        training[0], training[1],
        Check("optimizer", "Adam (adam_grouped for the two learning rates)", str(optimizer),
              status(optimizer in ("adam", "adam_grouped"))),
        stage2_lr_check(optimizer, run.get("optimization", "lr"), run.get("optimizer", "group_lr_scales")),
        training[2], training[3],
    ]
    return checks + data_checks(data_cfg, augment=False) + [decoding_check()]


def audit_state(state: Dict, checkpoint: str = "<state>") -> Audit:
    """The audit of a loaded checkpoint (a dict with ``cfg`` sections, or a legacy ``args``)."""
    if not isinstance(state, dict) or not (state.get("cfg") or state.get("args")):
        raise AuditError(f"{checkpoint}: holds no training config (cfg or args); audit a checkpoint "
                         "written by fairseq-train")
    arch = checkpoint_arch(state)
    if not arch:
        raise AuditError(f"{checkpoint}: stores no --arch (cfg.model.arch); audit a checkpoint written by "
                         "fairseq-train")
    model = registered_model_of_arch(arch) or arch
    if model not in STAGE_OF_MODEL:
        raise AuditError(f"{checkpoint}: --arch {arch} is not a fairseq-slt model; audit a checkpoint of "
                         "slt_lightt* (stage 1), slt_mbart or slt_hf (stage 2)")
    stage = STAGE_OF_MODEL[model]
    run = RunConfig(state)
    data_cfg, data_path, data_error = load_data_config(run)
    checks = (stage1_checks if stage == 1 else stage2_checks)(run, data_cfg)
    return Audit(checkpoint, stage, arch, data_path, data_error, checks)


def audit_checkpoint(path: str) -> Audit:
    """The audit of the checkpoint file ``path``."""
    if not os.path.isfile(path):
        raise AuditError(f"checkpoint not found: {path}; give the .pt file fairseq-train wrote "
                         "(e.g. SAVE_DIR/checkpoint_best.pt)")
    try:
        state = load_checkpoint_state(path)
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        where = "" if path in reason else f"{path}: "
        raise AuditError(f"{where}not a readable checkpoint ({reason})") from e
    return audit_state(state, path)


def format_audit(audit: Audit) -> str:
    """A plain-text table ``setting | paper | this run | ok/DIFFERS`` with a heading and a summary."""
    header = ("setting", "paper", "this run", "ok/DIFFERS")
    rows = [(c.setting, c.paper, c.run, c.status) for c in audit.checks]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(3)]

    def line(r: Sequence[str]) -> str:
        return " | ".join(r[i].ljust(widths[i]) for i in range(3)) + " | " + r[3]

    if audit.data_config_error is None:
        data = f"data settings from {audit.data_config} as it is now"
    else:
        data = f"data settings unknown: {audit.data_config_error}"
    out = [f"{audit.checkpoint}: stage {audit.stage} ({audit.arch}); {data}",
           line(header), "-+-".join("-" * w for w in widths) + "-+-" + "-" * len(header[3])]
    out += [line(r) for r in rows]
    counts = {s: sum(c.status == s for c in audit.checks) for s in (OK, DIFFERS, UNKNOWN)}
    out.append(f"{counts[DIFFERS]} of {len(audit.checks)} settings differ from the paper, "
               f"{counts[UNKNOWN]} unknown, {counts[OK]} ok")
    return "\n".join(out)
