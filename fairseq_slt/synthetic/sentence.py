"""A gloss sentence with its translation and the target words each gloss is realized as.

Both grammars (:mod:`.grammar`, the demo's; :mod:`.grammar_open`, the benchmark's) return a
:class:`Sentence`. ``words[i]`` is the phrase of the English ``text`` that gloss ``i`` produced in
this sentence (``STRONG`` next to ``RAIN`` is ``heavy``, ``BUY`` after ``YESTERDAY`` is
``bought``, ``NOT`` is ``no`` or ``not``, ``Q`` is ``?``); function words that no gloss produced
(``there will be``, ``the``, ``did``) belong to no gloss. The per-slot accuracy of
:mod:`.slots` checks these phrases in a hypothesis.
"""

import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def word_tokens(text: str) -> List[str]:
    """Lowercased words and punctuation marks (``"rain?"`` -> ``["rain", "?"]``)."""
    return TOKEN_RE.findall(text.lower())


@dataclass(frozen=True)
class Sentence:
    """One sample of a grammar: glosses in signing order, their categories, their target words
    (one phrase per gloss, words separated by spaces) and the target text."""

    glosses: Tuple[str, ...]
    categories: Tuple[str, ...]
    words: Tuple[str, ...]
    text: str

    def __post_init__(self):
        n = len(self.glosses)
        if not (len(self.categories) == len(self.words) == n > 0):
            raise ValueError(f"{self}: glosses, categories and words differ in length")
        if any(not w.strip() for w in self.words):
            raise ValueError(f"{self}: every gloss must be realized as at least one word")


class SentenceBuilder:
    """Collect glosses (signing order) and English pieces (target order) that point at them.

    >>> b = SentenceBuilder()
    >>> r = b.sign("RAIN", "weather"); n = b.sign("NOT", "negation")
    >>> b.say("there will be"); b.say("no", n); b.say("rain", r)
    >>> b.build().text
    'there will be no rain'
    """

    def __init__(self):
        self.glosses: List[str] = []
        self.categories: List[str] = []
        self.pieces: List[Tuple[str, Optional[int]]] = []

    def sign(self, gloss: str, category: str) -> int:
        """Append a gloss; returns its index, for :meth:`say`."""
        self.glosses.append(gloss)
        self.categories.append(category)
        return len(self.glosses) - 1

    def say(self, text: str, gloss: Optional[int] = None) -> None:
        """Append target words, produced by the gloss at index ``gloss`` (None: function words)."""
        if text:
            self.pieces.append((text, gloss))

    def extend(self, pieces: List[Tuple[str, Optional[int]]]) -> None:
        for text, gloss in pieces:
            self.say(text, gloss)

    def build(self) -> Sentence:
        text = " ".join(t for t, _ in self.pieces).replace(" ?", "?")
        words = tuple(
            " ".join(t for t, g in self.pieces if g == i) for i in range(len(self.glosses))
        )
        return Sentence(tuple(self.glosses), tuple(self.categories), words, text)
