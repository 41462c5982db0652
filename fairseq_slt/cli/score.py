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
import sys

from ..scoring import (
    best_rows,
    check_complete,
    check_references,
    describe_rows,
    format_diversity,
    gaps,
    hypothesis_diversity,
    manifest_texts,
    nbest_note,
    read_generate_file,
    score,
)


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
            from ..synthetic.corpus import gloss_references

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
        from ..synthetic.slots import format_slot_accuracy, slot_accuracy

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
