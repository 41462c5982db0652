"""``bpe: hf_tokenizer``: a Hugging Face model folder's own tokenizer as fairseq's BPE.

The data config names it (``fairseq-slt-data-config --llm-dir`` writes it)::

    bpe_tokenizer: {bpe: hf_tokenizer, hf_tokenizer_dir: /models/mt5-base}

``encode`` turns a sentence into the dictionary symbols of its token ids (no special tokens;
the dataset appends eos), ``decode`` turns symbols back into text with the tokenizer's own
decoder, so that ``fairseq-generate``'s ``D-`` lines, sacrebleu and ``fairseq-slt-score`` see
plain text. The symbols are those of :func:`fairseq_slt.hf.vocab.token_symbols`.
"""

from dataclasses import dataclass, field

from fairseq.data.encoders import register_bpe
from fairseq.dataclass import FairseqDataclass

from .vocab import load_tokenizer, output_rows, symbol_to_id, token_symbols


@dataclass
class HFTokenizerBPEConfig(FairseqDataclass):
    hf_tokenizer_dir: str = field(
        default="", metadata={"help": "Hugging Face model folder whose tokenizer is used"}
    )


@register_bpe("hf_tokenizer", dataclass=HFTokenizerBPEConfig)
class HFTokenizerBPE:
    """The tokenizer of a Hugging Face model folder, through fairseq's BPE interface."""

    def __init__(self, cfg: HFTokenizerBPEConfig):
        if not cfg.hf_tokenizer_dir:
            raise ValueError("bpe_tokenizer.hf_tokenizer_dir is empty: give the Hugging Face model folder")
        self.tokenizer = load_tokenizer(cfg.hf_tokenizer_dir)
        self.symbols = token_symbols(self.tokenizer.get_vocab(), output_rows(cfg.hf_tokenizer_dir))
        self.ids = {s: i for i, s in enumerate(self.symbols)}
        self.n_tokens = len(self.tokenizer)

    def encode(self, x: str) -> str:
        ids = self.tokenizer(x, add_special_tokens=False)["input_ids"]
        return " ".join(self.symbols[i] for i in ids)

    def decode(self, x: str) -> str:
        ids = [symbol_to_id(s, self.ids) for s in x.split()]
        ids = [i for i in ids if i is not None and i < self.n_tokens]
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False).strip()

    def is_beginning_of_word(self, x: str) -> bool:
        return x.startswith(("\u2581", "\u0120"))  # sentencepiece's and byte-level BPE's space marks
