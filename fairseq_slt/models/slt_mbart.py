"""Stage 2 of FLa-LLM: frozen stage-1 visual encoder -> LLM-adapter -> pre-trained mBART.

Chen et al., LREC-COLING 2024 (arXiv 2403.12556), Sec. 3.2 "LLM fine-tuning": the visual encoder
of stage 1 (ResNet-18 AND local temporal module) is loaded and fully frozen; an LLM-adapter (MLP
with one hidden layer) maps the sign-wise features to mBART's width and replaces mBART's encoder
token embedding, while mBART's positional embeddings and ``layernorm_embedding`` stay; mBART
(mBART-large-cc25: 12+12 layers, d=1024) is fine-tuned.

The mBART encoder is fairseq's own ``TransformerEncoder`` fed with ``token_embeddings``: the
"tokens" it sees are a placeholder id at every real time step and ``<pad>`` at padded ones, so
positions and the padding mask follow exactly fairseq's token path.
"""

import logging
import os
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from fairseq.models import FairseqEncoderDecoderModel, register_model, register_model_architecture
from fairseq.models.transformer import Embedding, TransformerDecoder, TransformerEncoder

from ..mbart import MBART_FILES, dict_pieces
from ..mbart.legacy import N_SPECIAL, load_mbart_dir
from .pretrained import StageTwoVisualMixin, count_parameters, load_stage1_visual_encoder
from .model_args import add_stage2_args, add_transformer_size_args, backbone_dtype
from .visual_frontend import (
    DEFAULT_TEMPORAL_DIM,
    DEFAULT_TEMPORAL_MODULE,
    MLPAdapter,
    SignVisualEncoder,
    lengths_to_padding_mask,
)

logger = logging.getLogger(__name__)

# architecture fields read from the mBART checkpoint (they fix the shapes of its weights)
MBART_ARCH_KEYS = (
    "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_layers", "encoder_attention_heads",
    "encoder_normalize_before", "encoder_learned_pos", "decoder_embed_dim",
    "decoder_ffn_embed_dim", "decoder_layers", "decoder_attention_heads",
    "decoder_normalize_before", "decoder_learned_pos", "activation_fn", "layernorm_embedding",
    "no_scale_embedding", "share_decoder_input_output_embed", "share_all_embeddings",
    "max_source_positions", "max_target_positions",
)


class SLTMBartEncoder(StageTwoVisualMixin, TransformerEncoder):
    """Frames -> frozen visual encoder -> LLM-adapter -> mBART encoder (``T' x B x D``).

    With a frozen visual encoder ``forward`` also takes cached sign-wise features."""

    def __init__(self, args, dictionary, embed_tokens, visual: SignVisualEncoder, freeze_visual: bool):
        super().__init__(args, dictionary, embed_tokens)
        self.set_visual(visual, freeze_visual)
        self.adapter = MLPAdapter(visual.out_dim, args.llm_adapter_hidden_dim, args.encoder_embed_dim)
        self.placeholder_idx = dictionary.unk()

    def forward(self, src_tokens, src_lengths, return_all_hiddens: bool = False, **kwargs):
        # src_tokens: B x T x 3 x H x W frames, or B x T' x C cached sign-wise features
        feats, lengths = self.sign_features(src_tokens, src_lengths)
        return self.forward_features(feats, lengths, return_all_hiddens)

    def forward_features(self, feats, lengths, return_all_hiddens: bool = False) -> Dict[str, List]:
        x = self.adapter(feats)  # B x T' x D
        pad = lengths_to_padding_mask(lengths, x.size(1))  # B x T'
        tokens = torch.full(pad.shape, self.placeholder_idx, dtype=torch.long, device=x.device)
        tokens = tokens.masked_fill(pad, self.padding_idx)
        out = super().forward(tokens, lengths, return_all_hiddens, token_embeddings=x)
        out["sign_features"] = [feats]  # B x T' x C (a criterion reads it; decoding reorders without it)
        return out


@register_model("slt_mbart")
class SLTMBartModel(FairseqEncoderDecoderModel):
    """FLa-LLM stage 2 (``--arch slt_mbart``)."""

    @staticmethod
    def add_args(parser):
        parser.add_argument("--mbart-dir", type=str, metavar="DIR",
                            help="mBART directory in the layout of fairseq's mbart.cc25 archive "
                            "(model.pt, dict.txt, sentence.bpe.model; the released archive, "
                            "fairseq-slt-convert-mbart of a Hugging Face folder, or "
                            "fairseq-slt-trim-mbart / fairseq-slt-build-mbart); without it mBART is "
                            "randomly initialised with the sizes given. dict.txt must be the one "
                            "written with model.pt: one in another order misaligns every embedding; "
                            "our tools store its checksum in model.pt and it is checked, the "
                            "released archive has none (see docs/mbart.md)")
        add_stage2_args(parser)
        add_transformer_size_args(parser, "mBART")

    @classmethod
    def build_model(cls, args, task):
        from_checkpoint = task.building_from_checkpoint
        mbart_state = None
        if args_mbart_dir(args) and not from_checkpoint:
            mbart_state, mbart_args = load_mbart_dir(args.mbart_dir)
            take_mbart_arch(args, mbart_args, args.mbart_dir)
        visual = build_visual_encoder(args, from_checkpoint)
        base_architecture(args)

        tgt_dict = task.target_dictionary
        embed_tokens = Embedding(len(tgt_dict), args.encoder_embed_dim, tgt_dict.pad())
        encoder = SLTMBartEncoder(args, tgt_dict, embed_tokens, visual, not args.train_visual_encoder)
        decoder = TransformerDecoder(args, tgt_dict, embed_tokens)
        model = cls(encoder, decoder)
        if mbart_state is not None:
            vocab_path = getattr(getattr(task, "data_cfg", None), "vocab_filename", None)
            check_task_dictionary(tgt_dict, args.mbart_dir, vocab_path)
            load_mbart_weights(model, mbart_state["model"], len(tgt_dict), args.mbart_dir)
        tag_param_groups(model)
        trainable = count_parameters(p for p in model.parameters() if p.requires_grad)
        frozen = count_parameters(p for p in model.parameters() if not p.requires_grad)
        logger.info(
            f"slt_mbart: {trainable / 1e6:.2f}M trainable, {frozen / 1e6:.2f}M frozen parameters "
            f"(visual encoder {'trained' if args.train_visual_encoder else 'frozen'})"
        )
        return model

    def max_positions(self):
        return (self.encoder.max_positions(), self.decoder.max_positions())


def build_visual_encoder(args, from_checkpoint: bool) -> SignVisualEncoder:
    """The stage-1 visual encoder (factorized, the default), or for the joint baseline
    (``--train-visual-encoder`` without ``--stage1-checkpoint``) a fresh one from ImageNet or
    random weights. Sets ``args.temporal_module`` / ``args.temporal_dim`` to what was built; the
    backbone's autocast (``--backbone-bf16``) is this run's, not stage 1's."""
    stage1 = getattr(args, "stage1_checkpoint", None)
    if from_checkpoint or (getattr(args, "train_visual_encoder", False) and not stage1):
        args.temporal_module = getattr(args, "temporal_module", None) or DEFAULT_TEMPORAL_MODULE
        args.temporal_dim = getattr(args, "temporal_dim", None) or DEFAULT_TEMPORAL_DIM
        pretrained = None if from_checkpoint else getattr(args, "resnet_pretrained", None)
        return SignVisualEncoder(args.temporal_module, args.temporal_dim, pretrained,
                                 from_checkpoint=from_checkpoint, backbone_dtype=backbone_dtype(args))
    visual, stage1_args = load_stage1_visual_encoder(stage1)
    visual.backbone_dtype = backbone_dtype(args)
    for key in ("temporal_module", "temporal_dim"):
        given, value = getattr(args, key, None), getattr(stage1_args, key)
        if given is not None and given != value:
            raise ValueError(
                f"--{key.replace('_', '-')} {given} does not match the stage-1 checkpoint {stage1} "
                f"({value}); drop the flag"
            )
        setattr(args, key, value)
    return visual


def tag_param_groups(model: nn.Module) -> None:
    """``param_group`` tags for per-group learning rates (``--optimizer adam_grouped``, or
    fairseq's composite optimizer): ``llm`` for mBART, ``visual`` for a trained visual encoder,
    the LLM-adapter untagged (``default``). Paper: 1e-3 adapter, 1e-5 mBART."""
    for name, p in model.named_parameters():
        if name.startswith("encoder.visual."):
            p.param_group = "visual"
        elif not name.startswith("encoder.adapter."):
            p.param_group = "llm"


def args_mbart_dir(args) -> Optional[str]:
    return getattr(args, "mbart_dir", None) or None


def take_mbart_arch(args, ckpt_args, where: str) -> None:
    """Copy mBART's architecture from its checkpoint; a size given on the command line that
    differs is an error (the weights could not be loaded)."""
    for key in MBART_ARCH_KEYS:
        if not hasattr(ckpt_args, key):
            continue
        value = getattr(ckpt_args, key)
        given = getattr(args, key, None)
        if given is not None and given != value and key.endswith(("_dim", "_layers", "_heads")):
            raise ValueError(
                f"--{key.replace('_', '-')} {given} does not match the mBART checkpoint in {where} "
                f"({value}); drop the flag to use the checkpoint's size"
            )
        setattr(args, key, value)
    logger.info(
        f"mBART architecture from {where}: {ckpt_args.encoder_layers}+{ckpt_args.decoder_layers} "
        f"layers, d={ckpt_args.encoder_embed_dim}"
    )


def check_task_dictionary(tgt_dict, mbart_dir: str, vocab_path: Optional[str] = None) -> None:
    """The task's dictionary must list mBART's ``dict.txt`` in its order (row ``i`` of the
    embeddings is symbol ``i``): a copy in another order would misalign every embedding."""
    mbart_dict = os.path.join(mbart_dir, MBART_FILES[1])
    pieces = dict_pieces(mbart_dict)
    ours = tgt_dict.symbols[N_SPECIAL:N_SPECIAL + len(pieces)]
    if ours != pieces:
        line = next((i for i, (a, b) in enumerate(zip(ours, pieces)) if a != b), min(len(ours), len(pieces)))
        theirs = repr(pieces[line]) if line < len(pieces) else "the end"
        mine = repr(ours[line]) if line < len(ours) else "the end"
        raise ValueError(
            f"the task dictionary ({vocab_path or 'vocab_filename in config.yaml'}) is not {mbart_dict} "
            f"in its order: line {line + 1} is {mine}, mBART's is {theirs}; set vocab_filename to "
            f"{mbart_dict} (fairseq-slt-data-config --mbart-dir writes it)"
        )


def load_mbart_weights(model: SLTMBartModel, state: Dict[str, torch.Tensor], n_types: int, where: str):
    """Load mBART's encoder (without its token embedding use) and decoder weights strictly;
    ``state`` is in current fairseq's layout (:func:`~fairseq_slt.mbart.legacy.load_mbart_dir`)."""
    rows = state["encoder.embed_tokens.weight"].size(0)
    if rows != n_types:
        raise ValueError(
            f"the task dictionary has {n_types} types but the mBART embeddings in {where} have "
            f"{rows} rows: the dictionary must be {where}/dict.txt plus the language tokens "
            "(--langs, in pre-training order) and <mask>, as translation_from_pretrained_bart builds it"
        )
    ours = model.state_dict()
    missing = [k for k in ours if k not in state and not k.startswith(("encoder.visual.", "encoder.adapter."))]
    unexpected = [k for k in state if k not in ours]
    if missing or unexpected:
        raise ValueError(f"mBART checkpoint in {where} does not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.load_state_dict({k: v for k, v in state.items() if k in ours}, strict=False)
    logger.info(f"mBART weights loaded from {where}")


@register_model_architecture("slt_mbart", "slt_mbart")
def base_architecture(args):
    """mBART-large-cc25 sizes (12+12 layers, d=1024, 16 heads, FFN 4096, pre-norm, learned
    positions, layernorm_embedding); an mBART directory overrides them with its own."""
    args.stage1_checkpoint = getattr(args, "stage1_checkpoint", None)
    args.mbart_dir = getattr(args, "mbart_dir", None)
    args.train_visual_encoder = getattr(args, "train_visual_encoder", False)
    args.resnet_pretrained = getattr(args, "resnet_pretrained", None)
    args.backbone_bf16 = getattr(args, "backbone_bf16", False)
    if not (args.mbart_dir and not hasattr(args, "encoder_embed_dim")):
        # with --mbart-dir the sizes come from its checkpoint (build_model), not from defaults
        _size_defaults(args)
    args.attention_dropout = getattr(args, "attention_dropout", 0.0)
    args.activation_dropout = getattr(args, "activation_dropout", 0.0)
    args.dropout = getattr(args, "dropout", 0.1)
    args.activation_fn = getattr(args, "activation_fn", "gelu")
    args.max_source_positions = getattr(args, "max_source_positions", 1024)
    args.max_target_positions = getattr(args, "max_target_positions", 1024)
    args.share_decoder_input_output_embed = getattr(args, "share_decoder_input_output_embed", True)
    args.share_all_embeddings = getattr(args, "share_all_embeddings", True)
    args.no_scale_embedding = getattr(args, "no_scale_embedding", False)
    args.layernorm_embedding = getattr(args, "layernorm_embedding", True)
    args.adaptive_softmax_cutoff = getattr(args, "adaptive_softmax_cutoff", None)
    args.adaptive_softmax_dropout = getattr(args, "adaptive_softmax_dropout", 0)
    args.adaptive_input = getattr(args, "adaptive_input", False)
    args.no_token_positional_embeddings = getattr(args, "no_token_positional_embeddings", False)
    args.encoder_layerdrop = getattr(args, "encoder_layerdrop", 0.0)
    args.decoder_layerdrop = getattr(args, "decoder_layerdrop", 0.0)
    args.quant_noise_pq = getattr(args, "quant_noise_pq", 0)


def _size_defaults(args) -> None:
    args.encoder_embed_dim = getattr(args, "encoder_embed_dim", 1024)
    args.llm_adapter_hidden_dim = getattr(args, "llm_adapter_hidden_dim", None) or args.encoder_embed_dim
    args.encoder_ffn_embed_dim = getattr(args, "encoder_ffn_embed_dim", 4 * args.encoder_embed_dim)
    args.encoder_layers = getattr(args, "encoder_layers", 12)
    args.encoder_attention_heads = getattr(args, "encoder_attention_heads", 16)
    args.encoder_normalize_before = getattr(args, "encoder_normalize_before", True)
    args.encoder_learned_pos = getattr(args, "encoder_learned_pos", True)
    args.decoder_embed_dim = getattr(args, "decoder_embed_dim", args.encoder_embed_dim)
    args.decoder_ffn_embed_dim = getattr(args, "decoder_ffn_embed_dim", args.encoder_ffn_embed_dim)
    args.decoder_layers = getattr(args, "decoder_layers", 12)
    args.decoder_attention_heads = getattr(args, "decoder_attention_heads", 16)
    args.decoder_normalize_before = getattr(args, "decoder_normalize_before", True)
    args.decoder_learned_pos = getattr(args, "decoder_learned_pos", True)
    args.decoder_output_dim = getattr(args, "decoder_output_dim", args.decoder_embed_dim)
    args.decoder_input_dim = getattr(args, "decoder_input_dim", args.decoder_embed_dim)
