"""Scoring a ``fairseq-generate`` output as SLT papers report it (the library of
``fairseq-slt-score``, whose help describes the command).

BLEU-1..4 with sacrebleu (corpus level; ``char_level`` scores each character as a token, as for
CSL-Daily) and ROUGE-L as the NSLT / signjoey evaluation code computes it: the sentence-level
ROUGE-L F-score with beta = 1.2, averaged over sentences and multiplied by 100. Hypotheses and
references are the detokenized ``D-`` and ``T-`` lines (:func:`read_generate_file`); the checks
compare an output with the decoded split's manifest (:func:`check_complete`,
:func:`check_references`). Light: no torch, no fairseq.
"""


import re
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
    from .data.manifest_utils import read_split_manifest

    return [row["tgt_text"].strip() for row in read_split_manifest(path)]


def manifest_ids(path: str) -> List[str]:
    """The ``id`` of every row of a split's manifest, in order (parsed as the dataset parses it)."""
    from .data.manifest_utils import read_split_manifest

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
    from .data.manifest_utils import read_split_manifest

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
