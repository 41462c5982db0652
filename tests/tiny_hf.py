"""Tiny Hugging Face model folders for tests: a small config of each family with random weights
(``save_pretrained``) and a tokenizer trained on the fly with the ``tokenizers`` library."""

import os
from typing import Dict, List

import torch

TEXTS = [
    "tomorrow there will be heavy rain in the north",
    "there will be no wind in the east at the weekend",
    "today there will be bright sunshine in the south",
    "in the west it stays cloudy with light snow",
]

# family: (config class, model class, special tokens in id order, roles, tokenizer style)
SPECIALS: Dict[str, dict] = {
    "mbart": dict(tokens=["<s>", "<pad>", "</s>", "<unk>"], bos="<s>", pad="<pad>", eos="</s>", unk="<unk>"),
    "t5": dict(tokens=["<pad>", "</s>", "<unk>"], pad="<pad>", eos="</s>", unk="<unk>"),
    "llama": dict(tokens=["<unk>", "<s>", "</s>"], bos="<s>", eos="</s>", unk="<unk>"),
    "qwen2": dict(tokens=["<|endoftext|>"], eos="<|endoftext|>", pad="<|endoftext|>"),
    "gpt2": dict(tokens=["<|endoftext|>"], bos="<|endoftext|>", eos="<|endoftext|>", unk="<|endoftext|>"),
    "xglm": dict(tokens=["<s>", "<pad>", "</s>", "<unk>"], bos="<s>", pad="<pad>", eos="</s>", unk="<unk>"),
}
FAMILIES = tuple(SPECIALS)
ENCODER_DECODER = ("mbart", "t5")
BYTE_LEVEL = ("gpt2", "qwen2")


def train_tokenizer(family: str, texts: List[str], vocab_size: int = 120):
    """A BPE tokenizer of the family's style (byte-level for GPT-2 and Qwen2, sentencepiece-like
    metaspace otherwise) with the family's special tokens at its first ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    spec = SPECIALS[family]
    if family in BYTE_LEVEL:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tok = Tokenizer(models.BPE(unk_token=spec.get("unk")))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        alphabet = []
    vocab_size += len(alphabet)  # byte-level: merges beyond the 256 bytes
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=spec["tokens"], initial_alphabet=alphabet)
    tok.train_from_iterator(texts, trainer)
    roles = {f"{k}_token": spec[k] for k in ("bos", "pad", "eos", "unk") if k in spec}
    return PreTrainedTokenizerFast(tokenizer_object=tok, **roles)


def tiny_config(family: str, tokenizer, vocab_size: int):
    import transformers as tf

    ids = {k: tokenizer.convert_tokens_to_ids(v) for k, v in SPECIALS[family].items() if k != "tokens"}
    common = dict(vocab_size=vocab_size, eos_token_id=ids["eos"], pad_token_id=ids.get("pad"),
                  bos_token_id=ids.get("bos"))
    if family == "mbart":
        return tf.MBartConfig(d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                              decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                              max_position_embeddings=128, decoder_start_token_id=ids["eos"], **common)
    if family == "t5":
        return tf.T5Config(d_model=16, d_kv=8, d_ff=32, num_layers=2, num_decoder_layers=2, num_heads=2,
                           decoder_start_token_id=ids["pad"], feed_forward_proj="gated-gelu", **common)
    if family == "llama":
        return tf.LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                              num_key_value_heads=1, max_position_embeddings=128, **common)
    if family == "qwen2":
        return tf.Qwen2Config(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                              num_key_value_heads=1, max_position_embeddings=128, **common)
    if family == "gpt2":
        return tf.GPT2Config(n_embd=16, n_layer=2, n_head=2, n_positions=128, **common)
    if family == "xglm":
        return tf.XGLMConfig(d_model=16, num_layers=2, attention_heads=2, ffn_dim=32, max_position_embeddings=128,
                             decoder_start_token_id=ids["eos"], **common)
    raise ValueError(family)


def save_tiny_llm(family: str, out: str, texts: List[str] = TEXTS, seed: int = 0, extra_rows: int = 3) -> str:
    """A tiny random model of ``family`` with its tokenizer in ``out``; its output layer has
    ``extra_rows`` rows more than the tokenizer has tokens (as Qwen2's and mT5's do)."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    tokenizer = train_tokenizer(family, texts)
    config = tiny_config(family, tokenizer, len(tokenizer) + extra_rows)
    torch.manual_seed(seed)
    auto = AutoModelForSeq2SeqLM if family in ENCODER_DECODER else AutoModelForCausalLM
    model = auto.from_config(config)
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
