"""Score a ``fairseq-generate`` output file as SLT papers report it.

    fairseq-slt-score runs/generate/generate-test.txt [--char-level] [--lowercase]

BLEU-1..4 with sacrebleu (corpus level; ``--char-level`` scores each character as a token, as for
CSL-Daily) and ROUGE-L as the NSLT / signjoey evaluation code computes it: the sentence-level
ROUGE-L F-score with beta = 1.2, averaged over sentences and multiplied by 100. Hypotheses and
references are the detokenized ``D-`` and ``T-`` lines.
"""

import argparse
import re
import sys
from typing import Dict, List, Sequence, Tuple

import sacrebleu


def read_generate_output(path: str) -> Tuple[List[str], List[str]]:
    """``(hypotheses, references)`` ordered by sample id, from a fairseq-generate log."""
    hyps, refs = {}, {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^([DT])-(\d+)\t(.*)$", line.rstrip("\n"))
            if m is None:
                continue
            kind, idx, rest = m.group(1), int(m.group(2)), m.group(3)
            if kind == "D":
                hyps[idx] = rest.split("\t", 1)[1] if "\t" in rest else ""
            else:
                refs[idx] = rest
    if not refs:
        raise ValueError(f"{path}: no T- (reference) lines; score the output of fairseq-generate")
    missing = sorted(set(refs) - set(hyps))
    if missing:
        raise ValueError(f"{path}: {len(missing)} references have no D- hypothesis (ids {missing[:10]})")
    ids = sorted(refs)
    return [hyps[i] for i in ids], [refs[i] for i in ids]


def lcs(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l_sentence(hyp: List[str], ref: List[str], beta: float = 1.2) -> float:
    """ROUGE-L F of one sentence pair (signjoey's ``calc_score`` with a single reference)."""
    if not hyp or not ref:
        return 0.0
    n = lcs(ref, hyp)
    prec, rec = n / len(hyp), n / len(ref)
    if prec == 0 or rec == 0:
        return 0.0
    return (1 + beta**2) * prec * rec / (rec + beta**2 * prec)


def tokens(text: str, char_level: bool) -> List[str]:
    return [c for c in text if not c.isspace()] if char_level else text.split()


def score(hyps: List[str], refs: List[str], char_level: bool = False, lowercase: bool = False) -> Dict:
    if lowercase:
        hyps, refs = [h.lower() for h in hyps], [r.lower() for r in refs]
    result = {}
    tokenize = "char" if char_level else "13a"
    for n in range(1, 5):
        bleu = sacrebleu.metrics.BLEU(max_ngram_order=n, tokenize=tokenize)
        result[f"BLEU-{n}"] = bleu.corpus_score(hyps, [refs]).score
        if n == 4:
            result["signature"] = str(bleu.get_signature())
    rouge = [rouge_l_sentence(tokens(h, char_level), tokens(r, char_level)) for h, r in zip(hyps, refs)]
    result["ROUGE-L"] = 100.0 * sum(rouge) / len(rouge)
    result["sentences"] = len(hyps)
    return result


def cli_main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("generate_output", help="the text fairseq-generate printed (or --results-path's file)")
    p.add_argument("--char-level", action="store_true", help="score characters (CSL-Daily)")
    p.add_argument("--lowercase", action="store_true", help="lowercase hypotheses and references")
    args = p.parse_args(argv)
    hyps, refs = read_generate_output(args.generate_output)
    r = score(hyps, refs, args.char_level, args.lowercase)
    sys.stdout.write(
        f"sentences {r['sentences']} | ROUGE-L {r['ROUGE-L']:.2f} | BLEU-1 {r['BLEU-1']:.2f} | "
        f"BLEU-2 {r['BLEU-2']:.2f} | BLEU-3 {r['BLEU-3']:.2f} | BLEU-4 {r['BLEU-4']:.2f}\n"
        f"sacrebleu signature (BLEU-4): {r['signature']}\n"
    )


if __name__ == "__main__":
    cli_main()
