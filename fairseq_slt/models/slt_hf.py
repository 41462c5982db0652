"""Stage 2 over any Hugging Face language model: frozen stage-1 visual encoder -> LLM-adapter -> LLM.

FLa-LLM's factorization (Chen et al., LREC-COLING 2024, Sec. 3.2) does not depend on which LLM
follows the LLM-adapter; ``slt_mbart`` is the paper's (mBART-large-cc25), this is the same stage
2 over a local Hugging Face model folder (``--llm-dir``: ``config.json``, weights, tokenizer):

* encoder-decoder models (mBART-50, mT5, Flan-T5, ...): the adapter's output (after an optional
  ``--llm-prompt``) is the LLM encoder's input embeddings, in place of its token embeddings;
* decoder-only models (Llama, Qwen2, GPT-2, XGLM, ...): the adapter's output is a prefix,
  followed by the optional prompt, then the target tokens; the loss is on the target tokens only
  (``[visual prefix; prompt; start; y_1 ... y_n]``, as in Sign2GPT and SpaMo).

Targets are the LLM's own token ids (the data config's ``bpe: hf_tokenizer``,
:mod:`fairseq_slt.hf.vocab`). The LLM trains fully, frozen or with LoRA
(:mod:`fairseq_slt.hf.training_mode`); decoding keeps the LLM's key/value cache in fairseq's
incremental state and reorders it with the beams.
"""

import inspect
import logging
import os
from typing import Dict, List

import torch
import torch.nn as nn
from fairseq.models import (
    FairseqEncoder,
    FairseqEncoderDecoderModel,
    FairseqIncrementalDecoder,
    register_model,
    register_model_architecture,
)

from ..hf.training_mode import DTYPES, MODES
from .model_args import add_stage2_args
from .pretrained import StageTwoVisualMixin, count_parameters
from .slt_mbart import build_visual_encoder
from .visual_frontend import MLPAdapter, SignVisualEncoder, lengths_to_padding_mask

logger = logging.getLogger(__name__)

LLM_PREFIX = "decoder.llm."  # the LLM's entries in the model's state dict


def left_align(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``B x T x D`` right-padded -> left-padded (row ``b``'s ``lengths[b]`` steps end at ``T``)."""
    T = x.size(1)
    shift = (T - lengths).unsqueeze(1)  # B x 1
    src = torch.arange(T, device=x.device).unsqueeze(0) - shift  # B x T
    out = x.gather(1, src.clamp(min=0).unsqueeze(-1).expand(-1, -1, x.size(2)))
    return out.masked_fill((src < 0).unsqueeze(-1), 0.0)


class SLTHFEncoder(StageTwoVisualMixin, FairseqEncoder):
    """Frames (or cached sign-wise features) -> frozen visual encoder -> LLM-adapter, then the
    LLM's encoder (encoder-decoder LLMs) or a left-padded prefix (decoder-only LLMs).

    Output (batch first): ``encoder_out`` ``B x S x D``, ``encoder_padding_mask`` ``B x S`` (True
    at padding), ``sign_features`` ``B x T' x C``."""

    def __init__(self, dictionary, visual: SignVisualEncoder, freeze_visual: bool, llm: nn.Module,
                 hidden_dim: int, prompt_ids: List[int]):
        super().__init__(dictionary)
        self.set_visual(visual, freeze_visual)
        width = llm.get_input_embeddings().embedding_dim
        self.adapter = MLPAdapter(visual.out_dim, hidden_dim or width, width)
        self._llm = (llm,)  # the decoder owns the LLM; a tuple keeps it out of this module's state
        self.encoder_decoder = bool(llm.config.is_encoder_decoder)
        self.register_buffer("prompt_ids", torch.tensor(prompt_ids, dtype=torch.long), persistent=False)

    @property
    def llm(self) -> nn.Module:
        return self._llm[0]

    def prompt_embeddings(self, batch: int) -> torch.Tensor:
        emb = self.llm.get_input_embeddings()(self.prompt_ids)  # P x D
        return emb.unsqueeze(0).expand(batch, -1, -1)  # B x P x D

    def forward(self, src_tokens, src_lengths, **kwargs) -> Dict[str, List[torch.Tensor]]:
        feats, lengths = self.sign_features(src_tokens, src_lengths)  # B x T' x C
        x = self.adapter(feats)  # B x T' x D
        B, T = x.shape[:2]
        prompt = self.prompt_embeddings(B).to(x.dtype)  # B x P x D
        P = prompt.size(1)
        pad = lengths_to_padding_mask(lengths, T)  # B x T'
        if self.encoder_decoder:  # [prompt; visual; padding]
            x = torch.cat([prompt, x], dim=1)
            pad = torch.cat([pad.new_zeros(B, P), pad], dim=1)
            dtype = self.llm.get_input_embeddings().weight.dtype  # the LLM's (--llm-dtype), not LoRA's
            x = self.llm.get_encoder()(inputs_embeds=x.to(dtype), attention_mask=(~pad).long()).last_hidden_state
        else:  # [padding; visual; prompt]: the prompt right before the target
            x = torch.cat([left_align(x, lengths), prompt], dim=1)
            pad = torch.arange(T, device=x.device).unsqueeze(0) < (T - lengths).unsqueeze(1)  # B x T'
            pad = torch.cat([pad, pad.new_zeros(B, P)], dim=1)
        return {"encoder_out": [x], "encoder_padding_mask": [pad], "sign_features": [feats]}

    def reorder_encoder_out(self, encoder_out: Dict[str, List[torch.Tensor]], new_order: torch.Tensor):
        return {k: [t.index_select(0, new_order) for t in v] for k, v in encoder_out.items()}

    def max_positions(self) -> int:
        return 1_000_000  # the frame count is capped by the task (--max-source-positions)


class SLTHFDecoder(FairseqIncrementalDecoder):
    """The LLM's decoder (or the whole decoder-only LLM) over fairseq's ``prev_output_tokens``.

    fairseq starts every target with eos; the LLM's own start token replaces it
    (``decoder_start_token_id`` of an encoder-decoder, bos, or eos where there is none). With
    ``incremental_state`` only the newest token is fed and the LLM's key/value cache, kept there,
    is reordered with the beams; ``use_cache = False`` recomputes every step (for tests)."""

    packable = False  # fairseq-slt-translate leaves the LLM's linear layers as they are

    def __init__(self, dictionary, llm: nn.Module, start_id: int):
        super().__init__(dictionary)
        self.llm = llm
        self.start_id = start_id
        self.encoder_decoder = bool(llm.config.is_encoder_decoder)
        self.n_rows = llm.get_output_embeddings().weight.size(0)
        self.extra_pad = len(dictionary) == self.n_rows + 1  # a pad row the LLM does not have
        self.use_cache = True
        self.cache_kwarg = cache_kwarg(llm)
        config = llm.config
        self.n_positions = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
        self.llm_record: Dict = {}

    def input_ids(self, prev_output_tokens: torch.Tensor):
        """LLM ids (the start token first, padding replaced) and the ``B x N`` mask of real tokens."""
        real = prev_output_tokens.ne(self.dictionary.pad())
        real[:, 0] = True
        ids = prev_output_tokens.masked_fill(~real, self.start_id).clone()
        ids[:, 0] = self.start_id
        return ids, real

    def forward(self, prev_output_tokens, encoder_out=None, incremental_state=None, **kwargs):
        ids, real = self.input_ids(prev_output_tokens)  # B x N
        if incremental_state is not None and self.use_cache:
            logits = self.step(ids, encoder_out, incremental_state)  # B x 1 x V
        else:
            logits = self.run(ids, real, encoder_out)[0]  # B x N x V
        return self.output_logits(logits), {"attn": [None], "inner_states": None}

    def output_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """float32 logits, with the extra pad row's column (the row's smallest logit: no beam takes it,
        fairseq masks pad, and label smoothing spreads over it as over a rare word)."""
        logits = logits.float()
        if self.extra_pad:
            logits = torch.cat([logits, logits.detach().min(dim=-1, keepdim=True).values], dim=-1)
        return logits

    def run(self, ids, real, encoder_out, use_cache: bool = False):
        """The LLM over whole target prefixes: ``(logits B x N x V, past, attention mask, positions)``."""
        src, src_pad = encoder_out["encoder_out"][0], encoder_out["encoder_padding_mask"][0]
        if self.encoder_decoder:
            from transformers.modeling_outputs import BaseModelOutput

            out = self.llm(encoder_outputs=BaseModelOutput(last_hidden_state=src),
                           attention_mask=(~src_pad).long(), decoder_input_ids=ids,
                           decoder_attention_mask=real.long(), use_cache=use_cache)
            return out.logits, output_cache(out), None, None
        emb = self.llm.get_input_embeddings()(ids)  # B x N x D
        x = torch.cat([src.to(emb.dtype), emb], dim=1)  # B x (S + N) x D
        mask = torch.cat([~src_pad, real], dim=1).long()
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        self.check_positions(int(positions.max()) + 1, src.size(1))
        out = self.llm(inputs_embeds=x, attention_mask=mask, position_ids=positions, use_cache=use_cache)
        return out.logits[:, src.size(1):], output_cache(out), mask, positions[:, -1:]

    def step(self, ids, encoder_out, incremental_state) -> torch.Tensor:
        state = self.get_incremental_state(incremental_state, "llm")
        if state is None:  # the first step: the prefix (decoder-only) and the start token
            last = ids[:, -1:]
            logits, past, mask, position = self.run(last, torch.ones_like(last, dtype=torch.bool),
                                                    encoder_out, use_cache=True)
        elif self.encoder_decoder:
            src, src_pad = encoder_out["encoder_out"][0], encoder_out["encoder_padding_mask"][0]
            from transformers.modeling_outputs import BaseModelOutput

            out = self.llm(encoder_outputs=BaseModelOutput(last_hidden_state=src),
                           attention_mask=(~src_pad).long(), decoder_input_ids=ids[:, -1:],
                           use_cache=True, **{self.cache_kwarg: state["past"]})
            logits, past, mask, position = out.logits, output_cache(out), None, None
        else:
            mask = torch.cat([state["mask"], state["mask"].new_ones(ids.size(0), 1)], dim=1)
            position = state["position"] + 1
            out = self.llm(inputs_embeds=self.llm.get_input_embeddings()(ids[:, -1:]), attention_mask=mask,
                           position_ids=position, use_cache=True, **{self.cache_kwarg: state["past"]})
            logits, past = out.logits, output_cache(out)
        self.set_incremental_state(incremental_state, "llm", {"past": past, "mask": mask, "position": position})
        logits = logits[:, -1:]
        if position is not None and self.n_positions and int(position.max()) + 1 >= self.n_positions:
            # the LLM has no position for a further token: the hypotheses end here
            logits = torch.full_like(logits, float("-inf")).index_fill_(-1, logits.new_tensor(
                [self.dictionary.eos()], dtype=torch.long), 0.0)
        return logits

    def check_positions(self, used: int, prefix: int) -> None:
        """A decoder-only LLM's positions (learned ones end there) hold the prefix and the target."""
        if self.n_positions and used > self.n_positions:
            raise ValueError(
                f"the visual prefix and prompt ({prefix} steps) and the target need {used} positions, but the "
                f"LLM has {self.n_positions}: lower video.max_frames or --max-target-positions, or shorten "
                "--llm-prompt"
            )

    def reorder_incremental_state(self, incremental_state, new_order: torch.Tensor):
        state = self.get_incremental_state(incremental_state, "llm")
        if state is None:
            return
        state["past"].reorder_cache(new_order)
        for key in ("mask", "position"):
            if state[key] is not None:
                state[key] = state[key].index_select(0, new_order)
        self.set_incremental_state(incremental_state, "llm", state)

    def max_positions(self) -> int:
        config = self.llm.config
        return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 1024

    # the LLM's record (folder, fingerprint, mode) travels in the state dict as ``decoder._extra_state``
    def get_extra_state(self) -> Dict:
        return dict(self.llm_record)

    def set_extra_state(self, state: Dict) -> None:
        check_llm_record(state, self.llm_record)


def cache_kwarg(llm: nn.Module) -> str:
    """The name of the key/value cache argument: ``cache`` (transformers 5), ``past_key_values`` before."""
    base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
    return "cache" if "cache" in inspect.signature(type(base).forward).parameters else "past_key_values"


def output_cache(out):
    """The key/value cache of a model output (``cache`` in transformers 5, ``past_key_values`` before)."""
    if "cache" in getattr(type(out), "__dataclass_fields__", {}):
        return out.cache
    return getattr(out, "past_key_values", None)


def check_llm_record(saved: Dict, current: Dict) -> None:
    """A checkpoint holds only what was trained: it must be used with the LLM folder it was trained on."""
    if not saved or not current:
        return
    if saved.get("fingerprint") != current.get("fingerprint"):
        raise ValueError(
            f"this checkpoint was trained on the LLM folder {saved.get('llm_dir')} (weights fingerprint "
            f"{str(saved.get('fingerprint'))[:12]}...), but --llm-dir {current.get('llm_dir')} holds other "
            f"weights ({str(current.get('fingerprint'))[:12]}...): give the folder it was trained on, e.g. "
            "fairseq-generate --model-overrides \"{'llm_dir': 'FOLDER'}\""
        )
    for key in ("mode", "model_type"):
        if saved.get(key) != current.get(key):
            raise ValueError(f"this checkpoint's LLM {key} is {saved.get(key)}, the model built now has "
                             f"{current.get(key)}; decode it with the settings it was trained with")


@register_model("slt_hf")
class SLTHFModel(FairseqEncoderDecoderModel):
    """FLa-LLM stage 2 over a Hugging Face LLM folder (``--arch slt_hf``)."""

    @staticmethod
    def add_args(parser):
        parser.add_argument("--llm-dir", type=str, metavar="DIR",
                            help="Hugging Face model folder (config.json, weights, tokenizer files; read "
                            "from local disk only): an encoder-decoder (mBART-50, mT5, Flan-T5) or a "
                            "decoder-only LLM (Llama, Qwen2, GPT-2, XGLM). The data config must use its "
                            "tokenizer (fairseq-slt-data-config --llm-dir)")
        parser.add_argument("--llm-mode", type=str, choices=MODES,
                            help="how the LLM trains: full (every weight; the paper's stage 2), frozen, "
                            "or lora (peft adapters; the LLM frozen). Default: full")
        parser.add_argument("--llm-dtype", type=str, choices=list(DTYPES),
                            help="precision of the LLM's weights with --llm-mode frozen or lora (default "
                            "float32); bfloat16 halves their memory on a GPU")
        parser.add_argument("--llm-prompt", type=str, metavar="TEXT",
                            help="text after the visual prefix of a decoder-only LLM (before the visual "
                            "tokens of an encoder-decoder), e.g. 'Translate the German sign language "
                            "video into German:'; default: none")
        parser.add_argument("--lora-rank", type=int, metavar="R", help="LoRA rank (default 8)")
        parser.add_argument("--lora-alpha", type=float, metavar="A", help="LoRA alpha (default 16)")
        parser.add_argument("--lora-dropout", type=float, metavar="P", help="LoRA dropout (default 0.05)")
        parser.add_argument("--lora-target-modules", type=str, metavar="NAMES",
                            help="comma-separated names of the linear layers LoRA adapts (default: "
                            "peft's for the model family, e.g. q_proj,v_proj for Llama, q,v for T5)")
        add_stage2_args(parser)

    @classmethod
    def build_model(cls, args, task):
        from ..hf.folder import load_llm, weights_fingerprint
        from ..hf.training_mode import apply_training_mode, llm_dtype
        from ..hf.vocab import hf_dictionary, load_tokenizer

        base_architecture(args)
        if not args.llm_dir:
            raise ValueError("--arch slt_hf needs --llm-dir: a Hugging Face model folder")
        from_checkpoint = task.building_from_checkpoint
        if not from_checkpoint:
            args.llm_dir = os.path.abspath(args.llm_dir)
        dtype = llm_dtype(args.llm_mode, args.llm_dtype)
        tokenizer = load_tokenizer(args.llm_dir)
        check_task_dictionary(task.target_dictionary, hf_dictionary(args.llm_dir, tokenizer), args.llm_dir)
        visual = build_visual_encoder(args, from_checkpoint)
        llm = load_llm(args.llm_dir, dtype)
        record = {
            "llm_dir": args.llm_dir,
            "fingerprint": weights_fingerprint(args.llm_dir),
            "model_type": llm.config.model_type,
            "encoder_decoder": bool(llm.config.is_encoder_decoder),
            "parameters": count_parameters(llm.parameters()),
            "mode": args.llm_mode,
            "dtype": args.llm_dtype,
        }
        llm = apply_training_mode(llm, args.llm_mode, args.lora_rank, args.lora_alpha, args.lora_dropout,
                                  args.lora_target_modules)
        if args.llm_mode == "lora":
            record["lora"] = {"rank": args.lora_rank, "alpha": args.lora_alpha, "dropout": args.lora_dropout,
                              "target_modules": sorted(llm.peft_config["default"].target_modules)}
        prompt = tokenizer(args.llm_prompt, add_special_tokens=False)["input_ids"] if args.llm_prompt else []
        tgt_dict = task.target_dictionary
        encoder = SLTHFEncoder(tgt_dict, visual, not args.train_visual_encoder, llm,
                               args.llm_adapter_hidden_dim, prompt)
        decoder = SLTHFDecoder(tgt_dict, llm, start_token(llm.config, tokenizer))
        decoder.llm_record = record
        model = cls(encoder, decoder)
        tag_param_groups(model)
        trainable = count_parameters(p for p in model.parameters() if p.requires_grad)
        logger.info(
            f"slt_hf: {record['model_type']} from {args.llm_dir} ({record['parameters'] / 1e6:.1f}M parameters, "
            f"{'encoder-decoder' if record['encoder_decoder'] else 'decoder-only'}, {args.llm_mode}, "
            f"{args.llm_dtype}); {trainable / 1e6:.2f}M trainable parameters; prompt of {len(prompt)} tokens"
        )
        return model

    def max_positions(self):
        return (self.encoder.max_positions(), self.decoder.max_positions())

    def frozen_llm_keys(self) -> List[str]:
        """The state-dict entries of LLM weights that do not train (read from ``--llm-dir``)."""
        trained = {n for n, p in self.named_parameters(remove_duplicate=False) if p.requires_grad}
        return [k for k in super().state_dict() if k.startswith(LLM_PREFIX) and k not in trained]

    def state_dict(self, *args, **kwargs):
        """What was trained (the adapter, LoRA or the fine-tuned LLM, and the frozen visual encoder,
        which a feature cache is checked against); the frozen LLM's weights stay in its folder."""
        state = super().state_dict(*args, **kwargs)
        if self.decoder.llm_record.get("mode") != "full":
            prefix = kwargs.get("prefix", "")
            for key in self.frozen_llm_keys():
                state.pop(prefix + key, None)
        return state

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        """A compact checkpoint's missing LLM weights are this model's (read from ``--llm-dir``)."""
        state_dict = dict(state_dict)
        if self.decoder.llm_record.get("mode") != "full":
            current = super().state_dict()
            for key in self.frozen_llm_keys():
                state_dict.setdefault(key, current[key])
        return super().load_state_dict(state_dict, strict=strict, model_cfg=model_cfg, args=args)


def start_token(config, tokenizer) -> int:
    """The LLM's first decoder input: ``decoder_start_token_id`` (encoder-decoder), else bos, else eos."""
    if config.is_encoder_decoder and getattr(config, "decoder_start_token_id", None) is not None:
        return config.decoder_start_token_id
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def check_task_dictionary(tgt_dict, llm_dict, llm_dir: str) -> None:
    """The task's dictionary must be the LLM tokenizer's (row ``i`` is token id ``i``)."""
    if tgt_dict.symbols != llm_dict.symbols or tgt_dict.pad() != llm_dict.pad() or tgt_dict.eos() != llm_dict.eos():
        raise ValueError(
            f"the task's target dictionary ({len(tgt_dict)} types) is not the tokenizer of --llm-dir {llm_dir} "
            f"({len(llm_dict)} types): point the data config at it with fairseq-slt-data-config DATA "
            f"--src config.yaml --out config_llm.yaml --llm-dir {llm_dir}, and train with --config-yaml config_llm.yaml"
        )


def tag_param_groups(model: nn.Module) -> None:
    """``param_group`` tags for ``--optimizer adam_grouped``: ``llm`` for a fully trained LLM,
    ``lora`` for LoRA weights, ``visual`` for a trained visual encoder; the LLM-adapter untagged."""
    from ..hf.training_mode import is_lora_parameter

    for name, p in model.named_parameters():
        if name.startswith("encoder.visual."):
            p.param_group = "visual"
        elif name.startswith(LLM_PREFIX):
            p.param_group = "lora" if is_lora_parameter(name) else "llm"


@register_model_architecture("slt_hf", "slt_hf")
def base_architecture(args):
    args.llm_dir = getattr(args, "llm_dir", None)
    args.llm_mode = getattr(args, "llm_mode", None) or "full"
    args.llm_dtype = getattr(args, "llm_dtype", None) or "float32"
    args.llm_prompt = getattr(args, "llm_prompt", None)
    args.lora_rank = getattr(args, "lora_rank", None) or 8
    args.lora_alpha = getattr(args, "lora_alpha", None) or 16.0
    lora_dropout = getattr(args, "lora_dropout", None)
    args.lora_dropout = 0.05 if lora_dropout is None else lora_dropout
    args.lora_target_modules = getattr(args, "lora_target_modules", None)
    args.llm_adapter_hidden_dim = getattr(args, "llm_adapter_hidden_dim", None)
    args.stage1_checkpoint = getattr(args, "stage1_checkpoint", None)
    args.train_visual_encoder = getattr(args, "train_visual_encoder", False)
    args.resnet_pretrained = getattr(args, "resnet_pretrained", None)
    args.backbone_bf16 = getattr(args, "backbone_bf16", False)
