"""Per-slot (per-gloss) accuracy of translations of a synthetic corpus.

``fairseq-slt-synth`` writes ``glosses_<split>.tsv``: for every video (in manifest order) its
glosses, their categories and the target words each gloss is realized as in the reference
(:class:`~fairseq_slt.synthetic.sentence.Sentence`). A gloss of the reference counts as read
when its target words occur in the hypothesis:

- texts are lowercased and split into words and punctuation marks (``"rain?"`` is ``rain``,
  ``?``); a gloss's words are a phrase (``last week``) that must occur contiguously;
- occurrences are counted without overlap, and clipped as BLEU clips n-grams: when k glosses of
  the reference are realized as the same phrase and the hypothesis holds it j times, the first
  min(j, k) of them (in signing order) count as read;
- a phrase counts wherever it occurs: the check is that the sign was read and translated, not
  that it was put in the right place (BLEU and ROUGE-L measure order).

The accuracy is the share of read glosses, over all glosses of the scored references and per
gloss category (day, region, weather, number, verb, ...).
"""

from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

from .sentence import Sentence, word_tokens


def count_phrase(tokens: Sequence[str], phrase: Sequence[str]) -> int:
    """Non-overlapping occurrences of ``phrase`` in ``tokens``, scanning left to right."""
    n, k, i, count = len(tokens), len(phrase), 0, 0
    if k == 0:
        return 0
    while i + k <= n:
        if tuple(tokens[i:i + k]) == tuple(phrase):
            count, i = count + 1, i + k
        else:
            i += 1
    return count


def slot_hits(hypothesis: str, reference: Sentence) -> List[bool]:
    """For each gloss of ``reference``: are its target words in ``hypothesis`` (clipped counts)?"""
    tokens = word_tokens(hypothesis)
    phrases = [tuple(word_tokens(w)) for w in reference.words]
    left = {p: count_phrase(tokens, p) for p in set(phrases)}
    hits = []
    for p in phrases:
        hits.append(left[p] > 0)
        left[p] -= 1
    return hits


def slot_accuracy(hypotheses: Sequence[str], references: Sequence[Sentence],
                  by: str = "category") -> "OrderedDict[str, Tuple[int, int]]":
    """``{"all": (read, total), <category or gloss>: (read, total), ...}``; the keys after
    ``"all"`` are sorted by name. ``by``: ``"category"`` or ``"gloss"``."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if by not in ("category", "gloss"):
        raise ValueError(f"by={by!r}: 'category' or 'gloss'")
    counts: Dict[str, List[int]] = {}
    total = [0, 0]
    for hyp, ref in zip(hypotheses, references):
        keys = ref.categories if by == "category" else ref.glosses
        for key, hit in zip(keys, slot_hits(hyp, ref)):
            c = counts.setdefault(key, [0, 0])
            c[0] += hit
            c[1] += 1
            total[0] += hit
            total[1] += 1
    result = OrderedDict([("all", (total[0], total[1]))])
    for key in sorted(counts):
        result[key] = (counts[key][0], counts[key][1])
    return result


def format_slot_accuracy(result: "OrderedDict[str, Tuple[int, int]]") -> str:
    """``per-slot accuracy 75.00% (3 of 4 glosses) | day 100.00% (1/1) | ...``"""
    read, total = result["all"]
    parts = [f"per-slot accuracy {100.0 * read / max(total, 1):.2f}% ({read} of {total} glosses)"]
    parts += [f"{k} {100.0 * r / t:.2f}% ({r}/{t})" for k, (r, t) in result.items() if k != "all"]
    return " | ".join(parts)
