"""Score a ``fairseq-generate`` output file as SLT papers report it.

    fairseq-slt-score runs/generate/generate-test.txt [--char-level] [--lowercase]
        [--manifest DATA/test.tsv [--allow-missing] [--allow-reference-mismatch]]
        [--glosses DATA/glosses_test.tsv]

BLEU-1..4 with sacrebleu (corpus level; ``--char-level`` scores each character as a token, as for
CSL-Daily) and ROUGE-L as the NSLT / signjoey evaluation code computes it: the sentence-level
ROUGE-L F-score with beta = 1.2, averaged over sentences and multiplied by 100. Hypotheses and
references are the detokenized ``D-`` and ``T-`` lines.

With ``fairseq-generate --nbest N`` the output holds N ``D-`` lines per id, sorted by score, best
first: the first one of each id is scored (the one fairseq-generate itself scores), and the report
says so. An id whose ``S-``/``T-`` line occurs twice (the output of two runs appended into one
file) is an error: score each run's file alone.

``fairseq-generate --skip-bad-videos`` leaves unreadable videos out of its output. With
``--manifest`` (or ``--expected-rows``) the output must hold every row of the split: the ``D-<i>``
/ ``T-<i>`` ids are dataset indices, i.e. positions in the manifest. Missing rows are an error
naming them, unless ``--allow-missing`` scores the others with a warning. The ``T-`` lines must
also be the manifest's ``tgt_text`` (row i for id i), compared after NFKC normalisation (as
sentencepiece normalises), without whitespace (detokenization may move spaces) and, with
``--lowercase``, lowercased; an unknown piece (``<<unk>>``) matches any text. A manifest of
another split or corpus is an error naming how many rows differ and the first one, unless
``--allow-reference-mismatch`` scores all the same with a warning.

Diagnostics, printed after the scores: the number of distinct hypotheses (next to the number of
distinct references) and the share of the most frequent one, so that a model that writes one
sentence for every video is visible at a glance; and, with ``--glosses`` (the
``glosses_<split>.tsv`` that ``fairseq-slt-synth`` writes), the per-slot accuracy: the share of
the reference's glosses whose target words occur in the hypothesis, overall and per gloss
category (defined in :mod:`fairseq_slt.synthetic.slots`).
"""

import argparse
import re
import sys
import unicodedata
from collections import Counter
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import sacrebleu


class GenerateOutput(NamedTuple):
    """A fairseq-generate output: the reference (``T-`` line) of every id and its hypotheses
    (``D-`` lines) in file order, best first."""

    references: Dict[int, str]
    hypotheses: Dict[int, List[str]]


def generate_lines(path: str) -> Iterator[Tuple[int, str, int, str]]:
    """``(line number, kind, sample id, rest)`` of every ``S-/T-/H-/D-`` line of a fairseq-generate log."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            m = re.match(r"^([STHD])-(\d+)\t(.*)$", line.rstrip("\n"))
            if m is not None:
                yield number, m.group(1), int(m.group(2)), m.group(3)


def read_generate_file(path: str) -> GenerateOutput:
    """The references and hypotheses of a fairseq-generate log.

    fairseq-generate writes the ``S-``/``T-`` lines of a sample once, then its ``--nbest``
    hypotheses sorted by score, best first. An ``S-``/``T-`` line whose id came before is the
    output of a second run appended to the file: a ``ValueError`` naming the id.
    """
    refs: Dict[int, str] = {}
    hyps: Dict[int, List[str]] = {}
    seen: Dict[Tuple[str, int], int] = {}
    for number, kind, idx, rest in generate_lines(path):
        if kind in "ST":
            if (kind, idx) in seen:
                raise ValueError(
                    f"{path} line {number}: id {idx} repeats (its {kind}- line is also on line "
                    f"{seen[kind, idx]}): the file holds the output of more than one fairseq-generate "
                    "run; score each run's output file alone"
                )
            seen[kind, idx] = number
            if kind == "T":
                refs[idx] = rest
        elif kind == "D":
            hyps.setdefault(idx, []).append(rest.split("\t", 1)[1] if "\t" in rest else "")
    if not refs:
        raise ValueError(f"{path}: no T- (reference) lines; score the output of fairseq-generate")
    missing = sorted(set(refs) - set(hyps))
    if missing:
        raise ValueError(f"{path}: {len(missing)} references have no D- hypothesis (ids {missing[:10]})")
    return GenerateOutput(refs, hyps)


def best_rows(output: GenerateOutput) -> Dict[int, Tuple[str, str]]:
    """``{sample id: (best hypothesis, reference)}`` in id order: the first ``D-`` line of an id
    (the one fairseq-generate itself scores)."""
    return {i: (output.hypotheses[i][0], output.references[i]) for i in sorted(output.references)}


def nbest_note(output: GenerateOutput) -> Optional[str]:
    """What the report says of ``--nbest`` output (several hypotheses per id); None for one each."""
    counts = {len(output.hypotheses[i]) for i in output.references}
    if max(counts) == 1:
        return None
    per_id = f"{max(counts)}" if len(counts) == 1 else f"up to {max(counts)}"
    return f"n-best output ({per_id} per id): scoring the best hypothesis of each (its first D- line)"


def read_generate_rows(path: str) -> Dict[int, Tuple[str, str]]:
    """``{sample id: (best hypothesis, reference)}`` from a fairseq-generate log."""
    return best_rows(read_generate_file(path))


def read_generate_output(path: str) -> Tuple[List[str], List[str]]:
    """``(hypotheses, references)`` ordered by sample id, from a fairseq-generate log."""
    rows = read_generate_rows(path)
    return [h for h, _ in rows.values()], [r for _, r in rows.values()]


def manifest_texts(path: str) -> List[str]:
    """The raw ``tgt_text`` of every row of a split's manifest, in order (the references as the
    corpus gives them: fairseq-generate's ``T-`` lines are the target pieces detokenized, after
    sentencepiece's normalisation, e.g. CSL-Daily's full-width "，" becomes ",")."""
    from fairseq_slt.data.manifest_utils import read_split_manifest

    return [row["tgt_text"].strip() for row in read_split_manifest(path)]


def manifest_ids(path: str) -> List[str]:
    """The ``id`` of every row of a split's manifest, in order (parsed as the dataset parses it)."""
    from fairseq_slt.data.manifest_utils import read_split_manifest

    return [str(row["id"]) for row in read_split_manifest(path)]


UNK = re.compile(r"<<unk>>|<unk>")  # fairseq-generate writes an unknown target piece as <<unk>>


def comparable(text: str, lowercase: bool = False) -> str:
    """``text`` as a ``T-`` line and a manifest's ``tgt_text`` are compared: NFKC-normalised (as
    sentencepiece normalises, e.g. "，" to ","), without any whitespace (detokenization may move
    spaces, e.g. around punctuation) and, with ``lowercase``, lowercased."""
    text = "".join(unicodedata.normalize("NFKC", text).split())
    return text.lower() if lowercase else text


def reference_matches(generated: str, corpus: str, lowercase: bool = False) -> bool:
    """Whether a ``T-`` line is the detokenized ``corpus`` text; each ``<unk>`` in it stands for
    any non-empty text (each piece between them is matched leftmost: exact for such gaps, and
    without the backtracking of a regular expression)."""
    pieces = [comparable(p, lowercase) for p in UNK.split(generated)]
    text = comparable(corpus, lowercase)
    if len(pieces) == 1:
        return text == pieces[0]
    first, *middle, last = pieces
    if not text.startswith(first):
        return False
    pos = len(first)
    for piece in middle:
        found = text.find(piece, pos + 1)  # an unknown piece before it: at least one character
        if found < 0:
            return False
        pos = found + len(piece)
    return len(text) - len(last) > pos and text.endswith(last)


def reference_mismatches(references: Dict[int, str], texts: Sequence[str], lowercase: bool = False) -> List[int]:
    """The ids whose ``T-`` line is not ``texts[id]`` (ids past ``texts`` are not compared)."""
    return [
        i for i in sorted(references)
        if i < len(texts) and not reference_matches(references[i], texts[i], lowercase)
    ]


def check_references(
    path: str,
    references: Dict[int, str],
    manifest: str,
    lowercase: bool = False,
    allow_mismatch: bool = False,
) -> Optional[str]:
    """Compare the ``T-`` lines of a generate output with the ``tgt_text`` of the manifest (row i
    is id i), to refuse the manifest of another split or corpus.

    Returns None when they agree, the warning to print when some differ and ``allow_mismatch``
    is set; raises ``ValueError`` naming how many differ and the first otherwise.
    """
    from fairseq_slt.data.manifest_utils import read_split_manifest

    rows = read_split_manifest(manifest)
    texts = [row["tgt_text"].strip() for row in rows]
    differ = reference_mismatches(references, texts, lowercase)
    if not differ:
        return None
    i = differ[0]
    compared = sum(1 for j in references if j < len(texts))
    what = (
        f"{len(differ)} of {compared} references (T- lines) of {path} differ from the tgt_text of "
        f"{manifest}, first T-{i} {references[i]!r} vs line {rows[i]['_row']} (id {rows[i]['id']}) "
        f"{texts[i]!r}"
    )
    if not allow_mismatch:
        raise ValueError(
            f"{what}; pass the manifest of the decoded split, or --allow-reference-mismatch to "
            "score all the same"
        )
    return f"WARNING: {what}; scoring all the same"


def missing_rows(found: Iterable[int], n_rows: int, where: str = "the split") -> List[int]:
    """Indices in ``range(n_rows)`` without a hypothesis; an id past the split is an error."""
    found = set(found)
    beyond = sorted(i for i in found if i < 0 or i >= n_rows)
    if beyond:
        raise ValueError(
            f"the output has ids {beyond[:10]} but {where} has only {n_rows} rows (ids 0..{n_rows - 1}): "
            "pass the manifest of the split that was decoded"
        )
    return [i for i in range(n_rows) if i not in found]


def describe_rows(indices: Sequence[int], ids: Optional[Sequence[str]] = None, limit: int = 20) -> str:
    """``3 (id test_00003), 7 (id test_00007)``, at most ``limit`` of them."""
    shown = [f"{i} (id {ids[i]})" if ids is not None else str(i) for i in indices[:limit]]
    more = f" and {len(indices) - limit} more" if len(indices) > limit else ""
    return ", ".join(shown) + more


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


def hypothesis_diversity(hyps: Sequence[str], refs: Sequence[str]) -> Dict:
    """Distinct hypotheses and references, and the most frequent hypothesis with its share."""
    counts = Counter(hyps)
    top, n_top = counts.most_common(1)[0] if counts else ("", 0)
    return {
        "distinct_hypotheses": len(counts),
        "distinct_references": len(set(refs)),
        "most_frequent": top,
        "most_frequent_count": n_top,
        "most_frequent_share": n_top / max(len(hyps), 1),
    }


def format_diversity(d: Dict, n: int, width: int = 60) -> str:
    """``distinct hypotheses 3 of 60 (references: 58) | most frequent 55 of 60 (91.67%): "..."``"""
    top = d["most_frequent"]
    top = top if len(top) <= width else top[: width - 3] + "..."
    return (
        f"distinct hypotheses {d['distinct_hypotheses']} of {n} (references: {d['distinct_references']}) | "
        f"most frequent {d['most_frequent_count']} of {n} ({100.0 * d['most_frequent_share']:.2f}%): \"{top}\""
    )


def gloss_references(
    path: str, rows: Dict[int, Tuple[str, str]], lowercase: bool = False
) -> Tuple[List, List[int]]:
    """The gloss-file sentences of the scored rows (ids = rows of the gloss file), checked against
    the output's references: an id past the file, or references that mostly differ from the
    file's targets (another split's file), are a ``ValueError``. Returns the sentences in id order
    and, as a second value, the ids whose reference differs (e.g. ``<unk>`` in it)."""
    from fairseq_slt.synthetic.corpus import read_gloss_file

    sentences = read_gloss_file(path)
    missing_rows(rows, len(sentences), path)  # raises on ids past the file

    def norm(t: str) -> str:
        t = " ".join(t.split())
        return t.lower() if lowercase else t

    differ = [i for i, (_, ref) in rows.items() if norm(ref) != norm(sentences[i].text)]
    if rows and len(differ) > len(rows) / 2:
        i = differ[0]
        raise ValueError(
            f"{len(differ)} of {len(rows)} references differ from the targets of {path} (id {i}: "
            f"{rows[i][1]!r} vs {sentences[i].text!r}): pass the gloss file of the decoded split"
        )
    return [sentences[i] for i in rows], differ


def check_complete(
    path: str,
    found: Iterable[int],
    manifest: Optional[str] = None,
    expected_rows: Optional[int] = None,
    allow_missing: bool = False,
) -> Optional[str]:
    """Compare the ids of a generate output with the split's size (from its manifest or given).

    Returns None when nothing is to be checked or every row is there, the warning to print when
    rows are missing and ``allow_missing`` is set; raises ``ValueError`` naming them otherwise.
    """
    found = set(found)
    if manifest is not None:
        ids = manifest_ids(manifest)
        n_rows, where = len(ids), manifest
    elif expected_rows is not None:
        ids, n_rows, where = None, expected_rows, f"--expected-rows {expected_rows}"
    else:
        return None
    missing = missing_rows(found, n_rows, where)
    if not missing:
        return None
    what = (
        f"{len(missing)} of {n_rows} rows of {where} have no hypothesis in {path}: "
        f"{describe_rows(missing, ids)}"
    )
    if not allow_missing:
        raise ValueError(
            f"{what}; fix their videos and decode again (fairseq-generate --skip-bad-videos logged "
            f"why), or pass --allow-missing to score the other {n_rows - len(missing)} rows"
        )
    return f"WARNING: {what}; scoring the other {n_rows - len(missing)} rows only"


def gaps(found: Iterable[int]) -> List[int]:
    """Ids absent between 0 and the largest id of an output (rows that surely were not decoded)."""
    found = set(found)
    return [i for i in range(max(found) + 1) if i not in found] if found else []


def cli_main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("generate_output", help="the text fairseq-generate printed (or --results-path's file)")
    p.add_argument("--char-level", action="store_true", help="score characters (CSL-Daily)")
    p.add_argument("--lowercase", action="store_true", help="lowercase hypotheses and references")
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--manifest", metavar="TSV",
        help="the decoded split's manifest (DATA/test.tsv): refuse an output that lacks any of its rows",
    )
    size.add_argument(
        "--expected-rows", type=int, metavar="N",
        help="the decoded split's number of rows: refuse an output that lacks any of them",
    )
    p.add_argument(
        "--allow-missing", action="store_true",
        help="with --manifest/--expected-rows: score the rows that are there, with a warning",
    )
    p.add_argument(
        "--allow-reference-mismatch", action="store_true",
        help="with --manifest: score even when T- lines differ from the manifest's tgt_text, with a warning",
    )
    p.add_argument(
        "--references", choices=("manifest", "generate"),
        help="with --manifest, the references scored: 'manifest' (default there): its raw tgt_text, "
        "the paper's references; 'generate': fairseq-generate's T- lines (detokenized target pieces, "
        "after sentencepiece's normalisation). Without --manifest: 'generate'",
    )
    p.add_argument(
        "--glosses", metavar="TSV",
        help="a synthetic corpus's glosses_<split>.tsv (fairseq-slt-synth): also print the per-slot "
        "accuracy, overall and per gloss category",
    )
    args = p.parse_args(argv)
    if args.allow_missing and args.manifest is None and args.expected_rows is None:
        p.error("--allow-missing needs --manifest or --expected-rows (the split's size)")
    if args.expected_rows is not None and args.expected_rows < 1:
        p.error(f"--expected-rows {args.expected_rows}: a split has at least one row")
    if args.allow_reference_mismatch and args.manifest is None:
        p.error("--allow-reference-mismatch needs --manifest (the split's manifest)")
    if args.references == "manifest" and args.manifest is None:
        p.error("--references manifest needs --manifest (the split's manifest)")
    references = args.references or ("manifest" if args.manifest else "generate")
    warnings = []
    try:
        output = read_generate_file(args.generate_output)
        rows = best_rows(output)
        if args.manifest is not None:
            warnings.append(check_references(
                args.generate_output, output.references, args.manifest, args.lowercase,
                args.allow_reference_mismatch,
            ))
        warnings.append(check_complete(
            args.generate_output, rows, args.manifest, args.expected_rows, args.allow_missing
        ))
        if references == "manifest":
            raw = manifest_texts(args.manifest)
            rows = {i: (h, raw[i]) for i, (h, _) in rows.items()}  # ids < len(raw): checked above
        if args.glosses is not None:
            gloss_refs, differ = gloss_references(args.glosses, rows, args.lowercase)
    except (OSError, ValueError) as e:
        sys.exit(f"fairseq-slt-score: error: {e}")
    absent = gaps(rows) if args.manifest is None and args.expected_rows is None else []
    for warning in filter(None, warnings):
        sys.stdout.write(warning + "\n")
    if absent:
        sys.stderr.write(
            f"fairseq-slt-score: note: {args.generate_output} has no hypothesis for ids "
            f"{describe_rows(absent)}; pass --manifest DATA/<split>.tsv to check that the whole "
            "split was decoded\n"
        )
    hyps, refs = [h for h, _ in rows.values()], [r for _, r in rows.values()]
    r = score(hyps, refs, args.char_level, args.lowercase)
    sys.stdout.write(
        f"sentences {r['sentences']} | ROUGE-L {r['ROUGE-L']:.2f} | BLEU-1 {r['BLEU-1']:.2f} | "
        f"BLEU-2 {r['BLEU-2']:.2f} | BLEU-3 {r['BLEU-3']:.2f} | BLEU-4 {r['BLEU-4']:.2f}\n"
        f"sacrebleu signature (BLEU-4): {r['signature']}\n"
    )
    sys.stdout.write(format_diversity(hypothesis_diversity(hyps, refs), len(hyps)) + "\n")
    if args.glosses is not None:
        from fairseq_slt.synthetic.slots import format_slot_accuracy, slot_accuracy

        if differ:
            sys.stderr.write(
                f"fairseq-slt-score: note: {len(differ)} references differ from the targets of "
                f"{args.glosses} (ids {describe_rows(differ)}); their glosses are scored all the same\n"
            )
        sys.stdout.write(format_slot_accuracy(slot_accuracy(hyps, gloss_refs)) + "\n")
    note = nbest_note(output)
    if note is not None:
        sys.stdout.write(f"hypotheses: {note}\n")
    sys.stdout.write(
        f"references: the raw tgt_text of {args.manifest}\n" if references == "manifest"
        else "references: fairseq-generate's T- lines (detokenized target pieces)\n"
    )


if __name__ == "__main__":
    cli_main()
