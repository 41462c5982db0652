"""A Hugging Face mBART folder as an mBART directory of fairseq's layout (``fairseq-slt-convert-mbart
--hf-dir``).

The folder is what ``facebook/mbart-large-cc25`` holds (and GFSLT-VLP, Uni-Sign and most current
SLT code load): ``config.json``, the weights (``model.safetensors`` or ``pytorch_model.bin``, or
shards with their ``*.index.json``), ``sentencepiece.bpe.model`` and optionally
``tokenizer.json``. It becomes ``model.pt`` + ``dict.txt`` + ``sentence.bpe.model``:

* the parameters: ``model.encoder.*`` / ``model.decoder.*`` are fairseq's names without the
  ``model.`` prefix (both are fairseq's pre-norm transformer with ``layernorm_embedding``, final
  layer norms and learned positions with an offset of 2); ``model.shared`` is the tied embedding
  of fairseq's ``share_all_embeddings``; ``lm_head`` is the decoder's output projection (tied
  unless ``tie_word_embeddings`` is false); ``final_logits_bias`` has no fairseq counterpart
  and must be zero;
* ``dict.txt``: the sentencepiece pieces after its ``<unk> <s> </s>``, in id order. Hugging
  Face's ``MBartTokenizer`` gives piece ``i`` the id ``i + 1`` (its ``fairseq_offset``) after
  fairseq's four specials, so that is fairseq's dictionary id for the line; the language codes
  and ``<mask>`` are the rows after it (stage 2's ``--langs``), checked against ``tokenizer.json``
  where the folder has one;
* the architecture: a complete fairseq training Namespace (``args``) of ``--task
  multilingual_denoising --arch mbart_large`` with the sizes of ``config.json``, as the released
  archive stores it (``scale_embedding`` is fairseq's ``not no_scale_embedding``).

The weights are checked strictly (names and shapes) against fairseq's transformer of those sizes.
"""

import logging
import os
import shutil
from argparse import Namespace
from typing import Dict, List, Optional

import torch

from ..checkpoints import load_torch_file
from ..data.vocab import write_fairseq_dict
from ..hf.folder import check_safetensors, read_config, read_json
from . import CC25_LANGS, MBART_FILES, count_unique, dict_pieces, save_state, weights_and_args_state
from .legacy import N_SPECIAL, upgrade_mbart_weights

logger = logging.getLogger(__name__)

HF_CONFIG = "config.json"
HF_SPM = "sentencepiece.bpe.model"
HF_TOKENIZER = "tokenizer.json"
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
HF_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # fairseq's Dictionary, and HF's ids 0-3
# transformers' activation names -> fairseq's (gelu_new / gelu_pytorch_tanh: the tanh form)
ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "gelu_new": "gelu_accurate",
               "gelu_pytorch_tanh": "gelu_accurate", "tanh": "tanh", "linear": "linear"}
EMBEDDINGS = ("shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight")
MODEL_VERSION = torch.tensor([3.0])  # fairseq's encoder/decoder ``version``: final layer norms kept


def read_hf_config(hf_dir: str) -> Dict:
    """``config.json`` of an mBART model (``model_type`` mbart, fairseq's special ids); a
    malformed file is one line naming it (:func:`fairseq_slt.hf.folder.read_config`)."""
    path = os.path.join(hf_dir, HF_CONFIG)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{hf_dir} has no {HF_CONFIG}: give a Hugging Face mBART folder "
                                f"({HF_CONFIG}, {' or '.join(HF_WEIGHTS)}, {HF_SPM})")
    config = read_config(hf_dir)
    if config.get("model_type") != "mbart":
        raise ValueError(f"{path}: model_type is {config.get('model_type')!r}, not 'mbart' (only mBART "
                         "converts to fairseq's mbart layout)")
    ids = {k: config.get(f"{k}_token_id") for k in ("bos", "pad", "eos")}
    if ids != {"bos": 0, "pad": 1, "eos": 2}:
        raise ValueError(f"{path}: special token ids {ids}, fairseq's dictionary has bos 0, pad 1, eos 2")
    if config.get("activation_function", "gelu") not in ACTIVATIONS:
        raise ValueError(f"{path}: activation_function {config['activation_function']!r} has no fairseq "
                         f"equivalent ({', '.join(ACTIVATIONS)})")
    return config


def hf_mbart_args(config: Dict, langs: List[str], data: str) -> Namespace:
    """fairseq's complete training Namespace of ``--task multilingual_denoising --arch
    mbart_large`` with the architecture of ``config`` (``data``: the directory of ``dict.txt``)."""
    from fairseq import options

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [
        data, "--task", "multilingual_denoising", "--arch", "mbart_large", "--langs", ",".join(langs),
    ])
    d = config["d_model"]
    sizes = {
        "encoder_embed_dim": d, "decoder_embed_dim": d, "decoder_input_dim": d, "decoder_output_dim": d,
        "encoder_ffn_embed_dim": config["encoder_ffn_dim"], "decoder_ffn_embed_dim": config["decoder_ffn_dim"],
        "encoder_layers": config["encoder_layers"], "decoder_layers": config["decoder_layers"],
        "encoder_attention_heads": config["encoder_attention_heads"],
        "decoder_attention_heads": config["decoder_attention_heads"],
        "max_source_positions": config["max_position_embeddings"],
        "max_target_positions": config["max_position_embeddings"],
        "activation_fn": ACTIVATIONS[config.get("activation_function", "gelu")],
        # transformers' MBartConfig defaults
        "no_scale_embedding": not config.get("scale_embedding", False),
        "share_decoder_input_output_embed": config.get("tie_word_embeddings", True),
        "dropout": config.get("dropout", 0.1), "attention_dropout": config.get("attention_dropout", 0.0),
        "activation_dropout": config.get("activation_dropout", 0.0),
        # transformers' MBart is always this transformer
        "encoder_normalize_before": True, "decoder_normalize_before": True, "layernorm_embedding": True,
        "encoder_learned_pos": True, "decoder_learned_pos": True, "share_all_embeddings": True,
    }
    for key, value in sizes.items():
        setattr(args, key, value)
    return args


def load_hf_weights(hf_dir: str) -> Dict[str, torch.Tensor]:
    """The weights of a Hugging Face folder: ``model.safetensors``, ``pytorch_model.bin`` or the
    shards listed by their ``.index.json`` (torch files are read weights-only)."""
    for name in HF_WEIGHTS:
        index = os.path.join(hf_dir, name + ".index.json")
        if os.path.isfile(os.path.join(hf_dir, name)):
            return _load_weights_file(os.path.join(hf_dir, name))
        if os.path.isfile(index):
            shards = sorted(set(read_json(index).get("weight_map", {}).values()))
            weights = {}
            for shard in shards:
                weights.update(_load_weights_file(os.path.join(hf_dir, shard)))
            return weights
    raise FileNotFoundError(f"{hf_dir} has no weights ({' or '.join(HF_WEIGHTS)}, or their .index.json)")


def _load_weights_file(path: str) -> Dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError as e:
            raise ImportError(f"reading {path} needs the safetensors package: pip install safetensors") from e
        check_safetensors(path)  # a truncated copy: one line naming it
        try:
            return load_file(path)
        except Exception as e:  # safetensors raises its own SafetensorError
            raise ValueError(f"{path}: not a readable safetensors file ({e}); copy the file again") from e
    weights = load_torch_file(path, "Hugging Face weights")
    if not isinstance(weights, dict) or not all(torch.is_tensor(v) for v in weights.values()):
        raise ValueError(f"{path} is not a Hugging Face state dict (a dict of tensors)")
    return weights


def hf_to_fairseq_weights(hf: Dict[str, torch.Tensor], tied_output: bool, where: str) -> Dict[str, torch.Tensor]:
    """Parameter names of transformers' ``MBartForConditionalGeneration`` (or ``MBartModel``) ->
    fairseq's (see the module doc)."""
    hf = dict(hf)
    lm_head, bias = hf.pop("lm_head.weight", None), hf.pop("final_logits_bias", None)
    if any(k.startswith("model.") for k in hf):
        other = sorted(k for k in hf if not k.startswith("model."))
        if other:
            raise ValueError(f"{where}: unexpected parameters {other[:5]}")
        hf = {k[len("model."):]: v for k, v in hf.items()}
    if bias is not None and bias.abs().max() > 0:
        raise ValueError(f"{where}: final_logits_bias is not zero; fairseq's mBART has no output bias")
    found = [hf.pop(k) for k in EMBEDDINGS if k in hf]
    if not found:
        raise ValueError(f"{where}: no token embedding ({', '.join(EMBEDDINGS)})")
    if any(not torch.equal(found[0], t) for t in found[1:]):
        raise ValueError(f"{where}: the encoder and decoder token embeddings differ; fairseq's mBART "
                         "shares them (share_all_embeddings)")
    embed = found[0]
    unexpected = sorted(k for k in hf if not k.startswith(("encoder.", "decoder.")))
    if unexpected:
        raise ValueError(f"{where}: unexpected parameters {unexpected[:5]}")
    if not tied_output and lm_head is None:
        raise ValueError(f"{where}: tie_word_embeddings is false but there is no lm_head.weight")
    fs = dict(hf)
    fs["encoder.embed_tokens.weight"] = fs["decoder.embed_tokens.weight"] = embed
    fs["decoder.output_projection.weight"] = embed if tied_output else lm_head
    fs["encoder.version"], fs["decoder.version"] = MODEL_VERSION.clone(), MODEL_VERSION.clone()
    return fs


def spm_pieces(spm_model: str) -> int:
    """Number of pieces of an mBART sentencepiece model (``<unk>``=0, ``<s>``=1, ``</s>``=2, then
    the pieces: the layout for which transformers' offset of 1 gives fairseq's ids)."""
    import sentencepiece as sp

    try:
        m = sp.SentencePieceProcessor(model_file=spm_model)
    except (RuntimeError, OSError) as e:  # sentencepiece's parse error names no file
        raise ValueError(f"{spm_model}: not a sentencepiece model ({str(e).strip()[:200]}); give mBART's "
                         "sentencepiece.bpe.model") from e
    special = [i for i in range(m.get_piece_size()) if m.is_control(i) or m.is_unknown(i)]
    if not (m.is_unknown(0) and special == [0, 1, 2]):
        raise ValueError(
            f"{spm_model}: its special pieces are at ids {special[:6]} (<unk> at "
            f"{m.unk_id()}); mBART's has <unk> 0, <s> 1, </s> 2 and no others, the layout for which "
            "Hugging Face's ids are fairseq's"
        )
    return m.get_piece_size() - 3


def tokenizer_ids(hf_dir: str) -> Optional[Dict[int, str]]:
    """id -> token of the folder's ``tokenizer.json`` (its model vocabulary and added tokens)."""
    path = os.path.join(hf_dir, HF_TOKENIZER)
    if not os.path.isfile(path):
        return None
    tok = read_json(path)
    vocab = tok.get("model", {}).get("vocab", [])
    if isinstance(vocab, dict):
        ids = {i: t for t, i in vocab.items()}
    else:  # Unigram: [[piece, score], ...] in id order
        ids = {i: entry[0] for i, entry in enumerate(vocab)}
    ids.update({a["id"]: a["content"] for a in tok.get("added_tokens", [])})
    return ids


def resolve_langs(hf_dir: str, pieces: List[str], n_rows: int, langs: Optional[List[str]]) -> List[str]:
    """The language codes of rows ``4 + len(pieces) ..`` (before ``<mask>``): from
    ``tokenizer.json``, whose ids must be fairseq's, else ``langs``, else cc25's when the count fits."""
    n_extra = n_rows - N_SPECIAL - len(pieces)
    ids = tokenizer_ids(hf_dir)
    where = os.path.join(hf_dir, HF_TOKENIZER)
    if ids is not None:
        expected = list(HF_SPECIALS) + pieces
        for i, token in enumerate(expected):
            if ids.get(i) != token:
                raise ValueError(
                    f"{where}: id {i} is {ids.get(i)!r} but fairseq's dictionary from {HF_SPM} has "
                    f"{token!r} there: the tokenizer does not match the sentencepiece model"
                )
        tail = [ids.get(i) for i in range(len(expected), n_rows)]
        if not tail or tail[-1] != "<mask>" or None in tail:
            raise ValueError(f"{where}: the ids after the pieces are {tail[:3]}...{tail[-2:]}, "
                             "not the language codes then <mask>")
        found = tail[:-1]
        if langs and langs != found:
            raise ValueError(f"--langs {','.join(langs)} is not the language list of {where} ({','.join(found)})")
        return found
    if not langs:
        if n_extra != len(CC25_LANGS) + 1:
            raise ValueError(
                f"{hf_dir} has no {HF_TOKENIZER} and its embeddings have {n_extra} rows after the "
                f"pieces (cc25 has {len(CC25_LANGS)} languages + <mask>): give its languages with --langs"
            )
        langs = list(CC25_LANGS)
    if n_extra != len(langs) + 1:
        raise ValueError(f"--langs has {len(langs)} languages but the embeddings of {hf_dir} have "
                         f"{n_extra} rows after the pieces (the languages + <mask>)")
    return langs


def convert_hf(hf_dir: str, out_dir: str, langs: Optional[List[str]] = None) -> Dict:
    """Write the mBART directory (:data:`~fairseq_slt.mbart.MBART_FILES`) of a Hugging Face mBART
    folder to ``out_dir``. Returns ``{"rows", "pieces", "langs", "params"}``."""
    if not os.path.isdir(hf_dir):
        raise FileNotFoundError(f"Hugging Face folder not found: {hf_dir}")
    if os.path.abspath(out_dir) == os.path.abspath(hf_dir):
        raise ValueError(f"--out {out_dir} is the Hugging Face folder itself: give a new directory")
    config = read_hf_config(hf_dir)
    spm_model = os.path.join(hf_dir, HF_SPM)
    if not os.path.isfile(spm_model):
        raise FileNotFoundError(f"{hf_dir} has no {HF_SPM} (the sentencepiece model of mBART's tokenizer)")
    n_pieces = spm_pieces(spm_model)
    tied = config.get("tie_word_embeddings", True)
    weights = hf_to_fairseq_weights(load_hf_weights(hf_dir), tied, hf_dir)
    rows = weights["encoder.embed_tokens.weight"].size(0)
    if rows != config.get("vocab_size"):
        raise ValueError(f"{hf_dir}: the embeddings have {rows} rows but config.json says vocab_size "
                         f"{config.get('vocab_size')}")

    os.makedirs(out_dir, exist_ok=True)
    dict_path = os.path.join(out_dir, MBART_FILES[1])
    write_fairseq_dict(spm_model, dict_path)
    pieces = dict_pieces(dict_path)
    if len(pieces) != n_pieces:
        raise ValueError(f"{spm_model}: {len(pieces)} pieces in dict.txt, {n_pieces} in the model "
                         "(a piece fairseq's dictionary cannot hold?)")
    langs = resolve_langs(hf_dir, pieces, rows, langs)
    args = hf_mbart_args(config, langs, out_dir)
    weights = upgrade_mbart_weights(weights, args, hf_dir)  # names and shapes, strictly
    shutil.copyfile(spm_model, os.path.join(out_dir, MBART_FILES[2]))
    save_state(weights_and_args_state(weights, args, None, dict_path), os.path.join(out_dir, MBART_FILES[0]))
    params = count_unique(v for k, v in weights.items() if not k.endswith("version"))
    logger.info(
        f"{hf_dir} -> {out_dir}: {args.encoder_layers}+{args.decoder_layers} layers, d="
        f"{args.encoder_embed_dim}, {rows} embedding rows ({len(pieces)} pieces, {len(langs)} "
        f"languages, <mask>); stage 2: --mbart-dir {out_dir} --langs {','.join(langs)}"
    )
    return {"rows": rows, "pieces": len(pieces), "langs": langs, "params": params}
