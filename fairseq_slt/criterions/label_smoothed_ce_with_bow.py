"""Label-smoothed cross-entropy plus a bag-of-words loss on the sign-wise features (an option).

FLa-LLM trains stage 1 with label-smoothed cross-entropy alone (Chen et al., LREC-COLING 2024,
Sec. 3.1; smoothing 0.2), and ``--criterion label_smoothed_cross_entropy`` is that. On sentences
that do not repeat (docs/open_benchmark.md) a visual encoder trained from scratch with it learns
only through the decoder's cross-attention, and the decoder reaches a low loss by writing the
most likely sentence of the language first: stage 1 then writes one template for every video.

This criterion adds a gloss-free auxiliary loss that reaches the visual encoder directly: a
linear head of the criterion's own scores every word at every sign-wise feature ``h_t`` (the
local temporal module's output, the features stage 2 freezes, before the VL-adapter and the
Transformer encoder mix the steps), a word's score for the
video is its best step (max over time: multiple-instance learning, a word is in the sentence if
some step shows its sign), and a binary cross-entropy asks for the content words of the target
sentence and against the other words of the training targets. Only the target text is used, as
in Sign2GPT's pseudo-gloss pre-training (Wong et al., ICLR 2024), which predicts the words of the
sentence from the visual features without their order. The head lives
in the criterion (fairseq optimises and checkpoints a criterion's parameters): the model, and what
stage 2 and decoding load, stay the paper's.

``loss`` is the cross-entropy plus ``bow_weight`` times the bag-of-words loss (fairseq's
convention: the loss optimised); ``nll_loss`` and ``bow_loss`` are logged apart, so a run can
keep its best checkpoint on ``--best-checkpoint-metric nll_loss``.
"""

import logging
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
)
from fairseq.data import Dictionary

logger = logging.getLogger(__name__)


@dataclass
class LabelSmoothedCrossEntropyWithBowConfig(LabelSmoothedCrossEntropyCriterionConfig):
    bow_weight: float = field(
        default=1.0,
        metadata={
            "help": "weight of the bag-of-words loss on the sign-wise features (the local temporal "
            "module's output) against the label-smoothed cross-entropy; 0 is the paper's loss alone"
        },
    )
    bow_max_doc_freq: float = field(
        default=0.2,
        metadata={
            "help": "the bag of words leaves out the words that occur in more than this fraction of "
            "the training targets (function words: 'the', 'in', 'will' on the synthetic corpora), as "
            "it leaves out the words that never occur in them; 1 keeps every word seen in training"
        },
    )


def bow_word_mask(tgt_dict: Dictionary) -> torch.Tensor:
    """``V`` bool: the symbols a bag of words scores: not fairseq's specials (``<s>``, ``<pad>``,
    ``</s>``, ``<unk>``) nor a language tag (``[de_DE]``) or ``<mask>``."""
    keep = torch.ones(len(tgt_dict), dtype=torch.bool)
    keep[: tgt_dict.nspecial] = False
    for i, sym in enumerate(tgt_dict.symbols):
        if (sym.startswith("[") and sym.endswith("]")) or (sym.startswith("<") and sym.endswith(">")):
            keep[i] = False
    return keep


def content_word_mask(keep: torch.Tensor, targets, max_doc_freq: float) -> torch.Tensor:
    """``keep`` narrowed to the words of the training ``targets`` (token tensors) that occur in at
    most ``max_doc_freq`` of them. Unseen words would only be negatives, hundreds of them (a
    sentencepiece vocabulary trimmed to a corpus still holds the pieces of its words): in the
    balanced loss they drown the negatives that inform, the words of other sentences. On the
    weather corpus that kept the visual encoder at the word-frequency prior (docs/open_benchmark.md)."""
    doc_freq = torch.zeros(keep.numel())
    for t in targets:
        doc_freq[torch.unique(torch.as_tensor(t, dtype=torch.long))] += 1
    return keep & (doc_freq > 0) & (doc_freq <= max_doc_freq * max(len(targets), 1))


def bag_of_words(target: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``B x L`` target tokens -> ``B x V`` float, 1 where a kept word occurs in the sentence."""
    bags = target.new_zeros(target.size(0), keep.numel(), dtype=torch.float)
    bags.scatter_(1, target, 1.0)
    return bags * keep.to(bags)


def bow_logits(features: torch.Tensor, padding_mask, head: nn.Module) -> torch.Tensor:
    """Each word's best step: ``B x T x D`` features, ``B x T`` padding (True = pad) or None,
    a ``D -> V`` head -> ``B x V`` logits ``max_t head(h_t)``."""
    scores = head(features)  # B x T x V
    if padding_mask is not None:
        scores = scores.masked_fill(padding_mask[:, :, None], float("-inf"))
    return scores.max(dim=1).values


def bow_loss(logits: torch.Tensor, bags: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``B`` losses: the mean binary cross-entropy over the sentence's words plus the mean over
    the other kept words (balanced: a sentence has a few words of hundreds)."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), bags, reduction="none")  # B x V
    pos = bags
    neg = (1.0 - bags) * keep.to(bags)
    return (bce * pos).sum(1) / pos.sum(1).clamp(min=1) + (bce * neg).sum(1) / neg.sum(1).clamp(min=1)


@register_criterion("label_smoothed_cross_entropy_with_bow", dataclass=LabelSmoothedCrossEntropyWithBowConfig)
class LabelSmoothedCrossEntropyWithBowCriterion(LabelSmoothedCrossEntropyCriterion):
    """``--criterion label_smoothed_cross_entropy_with_bow --bow-weight W`` (module docstring)."""

    def __init__(self, task, sentence_avg, label_smoothing, ignore_prefix_size=0,
                 report_accuracy=False, bow_weight=1.0, bow_max_doc_freq=0.2):
        super().__init__(task, sentence_avg, label_smoothing, ignore_prefix_size, report_accuracy)
        if bow_weight < 0:
            raise ValueError(f"--bow-weight must be >= 0, got {bow_weight}")
        if not 0 < bow_max_doc_freq <= 1:
            raise ValueError(f"--bow-max-doc-freq must be in (0, 1], got {bow_max_doc_freq}")
        self.bow_weight, self.bow_max_doc_freq = bow_weight, bow_max_doc_freq
        self.register_buffer("keep", bow_word_mask(task.target_dictionary), persistent=False)
        self.keep_from_training_targets = False
        dim = getattr(task, "sign_feature_dim", None)
        if not dim:
            raise ValueError(
                "--criterion label_smoothed_cross_entropy_with_bow sizes its word head from the "
                "model's sign-wise features: build the model (task.build_model) before the criterion"
            )
        self.head = nn.Linear(dim, len(task.target_dictionary))  # C -> V

    def word_mask(self) -> torch.Tensor:
        """The words the bag scores: :func:`content_word_mask` of the training split's targets,
        computed once that split is loaded (the criterion is built before it); until then (and
        without one: validation only) every word but the specials."""
        if not self.keep_from_training_targets:
            datasets = getattr(self.task, "datasets", {}) or {}
            train = [d for d in datasets.values() if getattr(d, "is_train", False) and hasattr(d, "tgt_tokens")]
            if train:
                keep = content_word_mask(self.keep.cpu(), train[0].tgt_tokens, self.bow_max_doc_freq)
                self.keep = keep.to(self.keep.device)
                self.keep_from_training_targets = True
                logger.info(
                    f"bag-of-words loss: {int(keep.sum())} words of {keep.numel()} (those of the "
                    f"{len(train[0].tgt_tokens)} training targets in at most "
                    f"{self.bow_max_doc_freq:g} of them)"
                )
        return self.keep

    def forward(self, model, sample, reduce=True):
        net_input = dict(sample["net_input"])
        prev_output_tokens = net_input.pop("prev_output_tokens")
        encoder_out = model.encoder(**net_input)
        net_output = model.decoder(prev_output_tokens, encoder_out=encoder_out)
        loss, nll_loss = self.compute_loss(model, net_output, sample, reduce=reduce)

        features = encoder_out.get("sign_features") or []
        if not features:
            raise ValueError(
                f"--criterion label_smoothed_cross_entropy_with_bow needs the encoder's sign-wise "
                f"features as encoder_out['sign_features'] ({type(model.encoder).__name__} "
                "returns none): use it with --arch slt_lightt* or slt_mbart"
            )
        features = features[0]  # B x T' x C
        padding = (encoder_out.get("encoder_padding_mask") or [None])[0]  # B x T' or None
        logits = bow_logits(features, padding, self.head)  # B x V
        keep = self.word_mask()
        bags = bag_of_words(sample["target"], keep)
        # on the cross-entropy's scale: each sentence's bag loss counts once per target token
        n_tokens = sample["target"].ne(self.padding_idx).sum(1).to(logits.dtype)
        bow = (bow_loss(logits, bags, keep) * n_tokens).sum()
        total = loss + self.bow_weight * bow

        sample_size = sample["target"].size(0) if self.sentence_avg else sample["ntokens"]
        logging_output = {
            "loss": total.data,
            "nll_loss": nll_loss.data,
            "bow_loss": bow.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["target"].size(0),
            "sample_size": sample_size,
        }
        if self.report_accuracy:
            n_correct, n_total = self.compute_accuracy(model, net_output, sample)
            logging_output["n_correct"] = n_correct.data
            logging_output["total"] = n_total.data
        return total, sample_size, logging_output

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        super().reduce_metrics(logging_outputs)
        bow_sum = sum(log.get("bow_loss", 0) for log in logging_outputs)
        sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
        metrics.log_scalar("bow_loss", bow_sum / max(sample_size, 1) / math.log(2), sample_size, round=3)
