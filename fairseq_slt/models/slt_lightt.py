"""Stage 1 of FLa-LLM: visual encoder -> VL-adapter -> Light-T translator.

Chen et al., "Factorized Learning Assisted with Large Language Model for Gloss-free Sign Language
Translation", LREC-COLING 2024 (arXiv 2403.12556), Sec. 3.1 "visual initialing": ResNet-18 per frame,
a local temporal module, a VL-adapter (MLP with one hidden layer) and Light-T, a small
Transformer encoder-decoder (Base: 3+3 layers, 8 heads, d=512, FFN 2048, sinusoidal positions;
Tiny: 1 layer, 4 heads, d=256, FFN 1024) trained with label-smoothed cross-entropy (0.2).
"""

import logging
import math
from typing import Dict, List

import torch
import torch.nn as nn
from fairseq.models import (
    FairseqEncoder,
    FairseqEncoderDecoderModel,
    register_model,
    register_model_architecture,
)
from fairseq.models.transformer import Embedding, TransformerDecoder
from fairseq.modules import FairseqDropout, LayerNorm, PositionalEmbedding, TransformerEncoderLayer

from .model_args import add_transformer_size_args, add_visual_encoder_args, backbone_dtype
from .visual_frontend import (
    DEFAULT_TEMPORAL_DIM,
    DEFAULT_TEMPORAL_MODULE,
    MLPAdapter,
    SignEncoderMixin,
    SignVisualEncoder,
    lengths_to_padding_mask,
)

logger = logging.getLogger(__name__)


class SLTLightTEncoder(SignEncoderMixin, FairseqEncoder):
    """Frames -> sign-wise features -> VL-adapter -> Transformer encoder (``T' x B x D``); the
    visual encoder trains (:class:`SignEncoderMixin` defaults)."""

    def __init__(self, args, from_checkpoint: bool = False):
        super().__init__(None)
        dim = args.encoder_embed_dim
        # restoring a checkpoint (decoding, resuming): its weights replace any initialisation
        self.visual = SignVisualEncoder(
            args.temporal_module, args.temporal_dim, args.resnet_pretrained, from_checkpoint=from_checkpoint,
            backbone_dtype=backbone_dtype(args),
        )
        self.adapter = MLPAdapter(self.visual.out_dim, args.adapter_hidden_dim, dim, args.dropout)
        self.embed_scale = 1.0 if args.no_scale_embedding else math.sqrt(dim)
        self.padding_idx = 1
        self.embed_positions = PositionalEmbedding(
            args.max_source_positions, dim, self.padding_idx, learned=False
        )
        self.dropout_module = FairseqDropout(args.dropout, module_name=self.__class__.__name__)
        self.layers = nn.ModuleList([TransformerEncoderLayer(args) for _ in range(args.encoder_layers)])
        self.layer_norm = LayerNorm(dim) if args.encoder_normalize_before else None

    def forward(self, src_tokens: torch.Tensor, src_lengths: torch.Tensor, **kwargs) -> Dict[str, List]:
        # src_tokens: B x T x 3 x H x W frames
        sign_features, lengths = self.visual(src_tokens, src_lengths)  # B x T' x C
        x = self.adapter(sign_features)  # B x T' x D
        padding_mask = lengths_to_padding_mask(lengths, x.size(1))  # B x T'
        # pads are 1 == padding_idx, real steps get positions 2, 3, ... (as in S2T)
        positions = self.embed_positions(padding_mask.long())  # B x T' x D
        x = self.dropout_module(self.embed_scale * x + positions)
        x = x.transpose(0, 1)  # T' x B x D
        for layer in self.layers:
            x = layer(x, padding_mask if padding_mask.any() else None)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return {
            "encoder_out": [x],  # T' x B x D
            "encoder_padding_mask": [padding_mask] if padding_mask.any() else [],  # B x T'
            "encoder_embedding": [],
            "encoder_states": [],
            "src_tokens": [],
            "src_lengths": [lengths],
            "sign_features": [sign_features],  # B x T' x C, what stage 2 freezes (a criterion reads it)
        }

    @torch.jit.export
    def reorder_encoder_out(self, encoder_out: Dict[str, List[torch.Tensor]], new_order):
        def reorder(key: str, dim: int) -> List[torch.Tensor]:
            return [t.index_select(dim, new_order) for t in encoder_out[key]]

        return {
            "encoder_out": reorder("encoder_out", 1),
            "encoder_padding_mask": reorder("encoder_padding_mask", 0),
            "encoder_embedding": reorder("encoder_embedding", 0),
            "encoder_states": reorder("encoder_states", 1),
            "src_tokens": [],
            "src_lengths": reorder("src_lengths", 0),
            "sign_features": reorder("sign_features", 0),
        }

    def max_positions(self):
        return self.embed_positions.max_positions


@register_model("slt_lightt")
class SLTLightTModel(FairseqEncoderDecoderModel):
    """FLa-LLM stage 1 (``--arch slt_lightt``, ``slt_lightt_tiny``)."""

    @staticmethod
    def add_args(parser):
        add_visual_encoder_args(parser)
        parser.add_argument("--adapter-hidden-dim", type=int, metavar="N",
                            help="hidden size of the VL-adapter MLP (default: encoder embed dim)")
        add_transformer_size_args(parser, "Light-T")
        parser.add_argument("--activation-dropout", type=float, metavar="D", help="FFN dropout")

    @classmethod
    def build_model(cls, args, task):
        base_architecture(args)
        tgt_dict = task.target_dictionary
        embed_tokens = Embedding(len(tgt_dict), args.decoder_embed_dim, tgt_dict.pad())
        encoder = SLTLightTEncoder(args, from_checkpoint=task.building_from_checkpoint)
        decoder = TransformerDecoder(args, tgt_dict, embed_tokens)
        model = cls(encoder, decoder)
        n_params = sum(p.numel() for p in model.parameters())
        n_visual = sum(p.numel() for p in encoder.visual.parameters())
        logger.info(
            f"slt_lightt: {n_params / 1e6:.2f}M parameters ({n_visual / 1e6:.2f}M visual encoder, "
            f"{(n_params - n_visual) / 1e6:.2f}M adapter + Light-T)"
        )
        return model


@register_model_architecture("slt_lightt", "slt_lightt")
def base_architecture(args):
    """Light-T "Base" (paper Table 6): 3+3 layers, 8 heads, d=512, FFN 2048, sinusoidal positions."""
    args.resnet_pretrained = getattr(args, "resnet_pretrained", None)
    args.backbone_bf16 = getattr(args, "backbone_bf16", False)
    args.temporal_module = getattr(args, "temporal_module", None) or DEFAULT_TEMPORAL_MODULE
    args.temporal_dim = getattr(args, "temporal_dim", None) or DEFAULT_TEMPORAL_DIM
    args.encoder_embed_dim = getattr(args, "encoder_embed_dim", 512)
    args.adapter_hidden_dim = getattr(args, "adapter_hidden_dim", None) or args.encoder_embed_dim
    args.encoder_ffn_embed_dim = getattr(args, "encoder_ffn_embed_dim", 2048)
    args.encoder_layers = getattr(args, "encoder_layers", 3)
    args.encoder_attention_heads = getattr(args, "encoder_attention_heads", 8)
    args.encoder_normalize_before = getattr(args, "encoder_normalize_before", True)
    args.decoder_embed_dim = getattr(args, "decoder_embed_dim", args.encoder_embed_dim)
    args.decoder_ffn_embed_dim = getattr(args, "decoder_ffn_embed_dim", args.encoder_ffn_embed_dim)
    args.decoder_layers = getattr(args, "decoder_layers", 3)
    args.decoder_attention_heads = getattr(args, "decoder_attention_heads", 8)
    args.decoder_normalize_before = getattr(args, "decoder_normalize_before", True)
    args.decoder_learned_pos = getattr(args, "decoder_learned_pos", False)
    args.encoder_learned_pos = getattr(args, "encoder_learned_pos", False)
    args.dropout = getattr(args, "dropout", 0.1)
    args.attention_dropout = getattr(args, "attention_dropout", args.dropout)
    args.activation_dropout = getattr(args, "activation_dropout", args.dropout)
    args.activation_fn = getattr(args, "activation_fn", "relu")
    args.adaptive_softmax_cutoff = getattr(args, "adaptive_softmax_cutoff", None)
    args.adaptive_softmax_dropout = getattr(args, "adaptive_softmax_dropout", 0)
    args.share_decoder_input_output_embed = getattr(args, "share_decoder_input_output_embed", True)
    args.no_token_positional_embeddings = getattr(args, "no_token_positional_embeddings", False)
    args.adaptive_input = getattr(args, "adaptive_input", False)
    args.decoder_layerdrop = getattr(args, "decoder_layerdrop", 0.0)
    args.encoder_layerdrop = getattr(args, "encoder_layerdrop", 0.0)
    args.decoder_output_dim = getattr(args, "decoder_output_dim", args.decoder_embed_dim)
    args.decoder_input_dim = getattr(args, "decoder_input_dim", args.decoder_embed_dim)
    args.no_scale_embedding = getattr(args, "no_scale_embedding", False)
    args.quant_noise_pq = getattr(args, "quant_noise_pq", 0)
    args.max_source_positions = getattr(args, "max_source_positions", 1024)
    args.max_target_positions = getattr(args, "max_target_positions", 1024)


@register_model_architecture("slt_lightt", "slt_lightt_tiny")
def slt_lightt_tiny(args):
    """Light-T "Tiny" (paper Table 6): 1+1 layers, 4 heads, d=256, FFN 1024."""
    args.encoder_embed_dim = getattr(args, "encoder_embed_dim", 256)
    args.encoder_ffn_embed_dim = getattr(args, "encoder_ffn_embed_dim", 1024)
    args.encoder_layers = getattr(args, "encoder_layers", 1)
    args.encoder_attention_heads = getattr(args, "encoder_attention_heads", 4)
    args.decoder_layers = getattr(args, "decoder_layers", 1)
    args.decoder_attention_heads = getattr(args, "decoder_attention_heads", 4)
    base_architecture(args)
