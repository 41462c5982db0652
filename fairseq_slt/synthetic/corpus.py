"""What a synthetic corpus holds before it is rendered: the sentence and signer of every video,
the splits (by sentence and by signer), the monolingual text corpus and the gloss files.

Every sample draws from its own generator ``default_rng([seed, split_id, index])`` (train 0,
dev 1, test 2, text corpus 3), so a corpus is fixed by its seed and options, and the demo
corpus (no exclusions, every signer everywhere) is the one ``fairseq-slt-synth`` always wrote.
"""

import logging
import os
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..data.manifest_utils import read_manifest, write_manifest
from ..scoring import missing_rows
from .grammar import sample_demo_sentence
from .open_grammar import sample_open_sentence, sample_weather_sentence
from .render import SIGNS, Sign
from .sentence import Sentence, word_tokens
from .signs import OPEN_SIGNS

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
SPLIT_IDS = {"train": 0, "dev": 1, "test": 2, "text": 3}
MAX_TRIES = 1000  # draws per sample before a grammar is declared too small for the exclusions
GLOSS_COLUMNS = ["id", "tgt_text", "glosses", "categories", "words"]
WORD_SEPARATOR = " | "  # between the target words of consecutive glosses in a gloss file


@dataclass(frozen=True)
class Grammar:
    """A sentence sampler and the sign of each of its glosses."""

    name: str
    sample: Callable[[np.random.Generator], Sentence]
    signs: Dict[str, Sign]


GRAMMARS = {
    "demo": Grammar("demo", sample_demo_sentence, SIGNS),
    "open": Grammar("open", sample_open_sentence, OPEN_SIGNS),
    # the open grammar's weather clauses, with the open grammar's signs
    "weather": Grammar("weather", sample_weather_sentence, OPEN_SIGNS),
}


@dataclass
class Sample:
    """One video to render: its id, sentence, signer and the generator that renders it."""

    id: str
    sentence: Sentence
    signer: int
    rng: np.random.Generator


def signer_pools(n_signers: int, by_signer: bool, held_out: int = 1) -> Dict[str, Optional[List[int]]]:
    """The signers each split draws from (None: all ``n_signers``). By signer, the last
    ``held_out`` signers sign test only and the ``held_out`` before them dev only."""
    if not by_signer:
        return {split: None for split in SPLITS}
    if held_out < 1 or n_signers < 2 * held_out + 1:
        raise ValueError(
            f"a split by signer with {held_out} held-out signer(s) each for dev and test needs at "
            f"least {2 * held_out + 1} signers (got --signers {n_signers})"
        )
    n_train = n_signers - 2 * held_out
    return {
        "train": list(range(n_train)),
        "dev": list(range(n_train, n_train + held_out)),
        "test": list(range(n_train + held_out, n_signers)),
    }


def draw_sentence(grammar: Grammar, rng: np.random.Generator, exclude: Iterable[str] = ()) -> Sentence:
    """A sentence whose target is not in ``exclude`` (drawn again until it is not)."""
    for _ in range(MAX_TRIES):
        sentence = grammar.sample(rng)
        if sentence.text not in exclude:
            return sentence
    raise ValueError(
        f"the {grammar.name} grammar gave only excluded sentences in {MAX_TRIES} draws: it is too "
        "small for this many dev/test sentences; use --grammar open or fewer dev/test videos"
    )


def sample_split(grammar: Grammar, seed: int, split: str, n: int, n_signers: int,
                 signers: Optional[Sequence[int]] = None, exclude: Iterable[str] = ()) -> List[Sample]:
    """The ``n`` samples of a split; targets in ``exclude`` are not drawn."""
    exclude = set(exclude)
    samples = []
    for i in range(n):
        rng = np.random.default_rng([seed, SPLIT_IDS[split], i])
        sentence = draw_sentence(grammar, rng, exclude)
        if signers is None:
            signer = int(rng.integers(n_signers))
        else:
            signer = int(signers[int(rng.integers(len(signers)))])
        samples.append(Sample(f"{split}_{i:05d}", sentence, signer, rng))
    return samples


def plan_corpus(
    grammar: Grammar, seed: int, sizes: Dict[str, int], n_signers: int,
    by_sentence: bool = False, by_signer: bool = False, held_out: int = 1,
) -> Dict[str, List[Sample]]:
    """Every split's samples. ``by_sentence``: test is drawn first, dev avoids test's targets and
    train avoids both, so no dev or test target occurs in training (nor a test target in dev)."""
    pools = signer_pools(n_signers, by_signer, held_out)
    plan: Dict[str, List[Sample]] = {}
    seen: set = set()
    for split in ("test", "dev", "train") if by_sentence else SPLITS:
        plan[split] = sample_split(grammar, seed, split, sizes[split], n_signers, pools[split], seen)
        if by_sentence:
            seen |= {s.sentence.text for s in plan[split]}
    return {split: plan[split] for split in SPLITS}


def sample_text_corpus(grammar: Grammar, seed: int, n: int, exclude: Iterable[str]) -> List[str]:
    """``n`` target sentences of the grammar, none of them in ``exclude`` (the dev/test targets)."""
    exclude = set(exclude)
    return [
        draw_sentence(grammar, np.random.default_rng([seed, SPLIT_IDS["text"], i]), exclude).text
        for i in range(n)
    ]


def write_text(path: str, lines: Sequence[str]) -> None:
    """One sentence a line, UTF-8, written atomically."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
    os.replace(tmp, path)


def gloss_rows(samples: Sequence[Sample]) -> List[Dict[str, str]]:
    """Rows of a ``glosses_<split>.tsv`` file, in manifest order."""
    return [
        {
            "id": s.id,
            "tgt_text": s.sentence.text,
            "glosses": " ".join(s.sentence.glosses),
            "categories": " ".join(s.sentence.categories),
            "words": WORD_SEPARATOR.join(s.sentence.words),
        }
        for s in samples
    ]


def write_gloss_file(path: str, samples: Sequence[Sample]) -> None:
    """Write ``glosses_<split>.tsv`` (columns :data:`GLOSS_COLUMNS`) for a split's samples."""
    write_manifest(path, gloss_rows(samples), columns=GLOSS_COLUMNS)


def read_gloss_file(path: str) -> List[Sentence]:
    """The sentences of a ``glosses_<split>.tsv`` file, in its row order."""
    header, rows = read_manifest(path)
    missing = [c for c in GLOSS_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: not a gloss file of fairseq-slt-synth (no column {', '.join(missing)})")
    return [
        Sentence(tuple(r["glosses"].split()), tuple(r["categories"].split()),
                 tuple(r["words"].split(WORD_SEPARATOR)), r["tgt_text"])
        for r in rows
    ]


def gloss_references(
    path: str, rows: Dict[int, Tuple[str, str]], lowercase: bool = False
) -> Tuple[List, List[int]]:
    """The gloss-file sentences of the scored rows (ids = rows of the gloss file), checked against
    the output's references: an id past the file, or references that mostly differ from the
    file's targets (another split's file), are a ``ValueError``. Returns the sentences in id order
    and, as a second value, the ids whose reference differs (e.g. ``<unk>`` in it)."""
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


def grammar_stats(grammar: Grammar, n: int, seed: int = 0) -> Dict[str, float]:
    """Statistics of ``n`` sampled sentences: distinct sentences and gloss sequences, glosses and
    target words seen, lengths (glosses and words: min, mean, max)."""
    rng = np.random.default_rng([seed, 17])
    sentences = [grammar.sample(rng) for _ in range(n)]
    n_glosses = [len(s.glosses) for s in sentences]
    n_words = [len(word_tokens(s.text)) for s in sentences]
    counts = Counter(s.text for s in sentences)
    return {
        "sampled": n,
        "distinct_sentences": len(counts),
        "distinct_gloss_sequences": len({s.glosses for s in sentences}),
        "most_frequent_share": counts.most_common(1)[0][1] / n,
        "glosses_used": len({g for s in sentences for g in s.glosses}),
        "glosses_in_inventory": len(grammar.signs),
        "words": len({w for s in sentences for w in word_tokens(s.text)}),
        "glosses_min": min(n_glosses), "glosses_mean": float(np.mean(n_glosses)),
        "glosses_max": max(n_glosses),
        "words_min": min(n_words), "words_mean": float(np.mean(n_words)), "words_max": max(n_words),
    }
