"""Pieces shared by the clause types of the open grammar: time phrases, regions, weather noun
phrases, numbers and verb groups. Each ``sign_*`` function appends glosses (signing order) to a
:class:`~fairseq_slt.synthetic.sentence.SentenceBuilder` and returns the English pieces that
point at them; the clause builders put the pieces in English order.
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
from numpy.random import Generator

from ..sentence import SentenceBuilder
from . import lexicon as L

Pieces = List[Tuple[str, Optional[int]]]  # (target words, index of the gloss producing them)
Modal = Optional[Tuple[str, int]]  # a signed modality (gloss, index), or None
CATEGORIES = L.GLOSS_CATEGORIES
NO_DAYPART = ("WEEKEND", "LAST-WEEK", "NEXT-WEEK", "EVERYDAY", "NOW")
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
ALL_TIMES = {**L.TIMES, **L.LIFE_TIMES}


def pick(rng: np.random.Generator, options: Sequence):
    """One of ``options`` (a sequence or a dict's keys, in their order), uniformly."""
    options = list(options)
    return options[int(rng.integers(len(options)))]


def sign(b: SentenceBuilder, gloss: str) -> int:
    """Append ``gloss`` with its category; returns its index."""
    return b.sign(gloss, CATEGORIES[gloss])


@dataclass
class Time:
    """A signed time (and day part): the gloss indices and the tense they set."""

    gloss: Optional[str] = None
    index: Optional[int] = None
    daypart: Optional[str] = None
    daypart_index: Optional[int] = None

    @property
    def tense(self) -> str:
        """``past`` / ``future`` / ``habitual`` / ``progressive`` (no time sign: future)."""
        return ALL_TIMES[self.gloss][1] if self.gloss else "future"

    def pieces(self) -> Tuple[Pieces, Pieces]:
        """(words opening the sentence, words closing it)."""
        if self.gloss is None:
            return [], daypart_pieces(self.daypart, self.daypart_index) if self.daypart else []
        word, _, position = ALL_TIMES[self.gloss]
        t, d = self.index, self.daypart_index
        if self.gloss == "WEEKEND":
            p = [("at the", None), (word, t)]
        elif self.gloss == "TODAY" and self.daypart:
            p = [("this", t), (L.DAYPARTS[self.daypart], d)]
        elif self.gloss == "YESTERDAY" and self.daypart == "NIGHT":
            p = [("last", t), ("night", d)]
        else:
            p = ([("on", None)] if self.gloss in WEEKDAYS else []) + [(word, t)]
            if self.daypart:
                p.append((L.DAYPARTS[self.daypart], d))
        return (p, []) if position == "front" else ([], p)

    def question_pieces(self) -> Pieces:
        """A question puts every time phrase at the end."""
        front, end = self.pieces()
        return front + end


def daypart_pieces(daypart: str, index: int) -> Pieces:
    """``in the morning`` / ``at night`` (a day part without a day)."""
    return [("at" if daypart == "NIGHT" else "in the", None), (L.DAYPARTS[daypart], index)]


def sign_time(b: SentenceBuilder, rng: Generator, times: Sequence[str], p_daypart: float = 0.3) -> Time:
    """One of ``times``, then with probability ``p_daypart`` a day part (``TOMORROW MORNING``)."""
    gloss = pick(rng, times)
    time = Time(gloss, sign(b, gloss))
    if gloss not in NO_DAYPART and rng.random() < p_daypart:
        dayparts = [d for d in L.DAYPARTS if not (gloss == "TODAY" and d == "NIGHT")]  # no "tonight"
        time.daypart = pick(rng, dayparts)
        time.daypart_index = sign(b, time.daypart)
    return time


def sign_region(b: SentenceBuilder, rng: Generator, exclude: Sequence[str] = ()) -> Pieces:
    """A region: ``in the north``, ``along the coast``, ``in berlin``, ``everywhere``."""
    gloss = pick(rng, [r for r in L.REGIONS if r not in exclude])
    prep, name = L.REGIONS[gloss]
    return [(prep, None), (name, sign(b, gloss))]


@dataclass
class WeatherNP:
    """A signed weather noun phrase and its English pieces."""

    gloss: str
    pieces: Pieces

    @property
    def plural(self) -> bool:
        return L.WEATHER[self.gloss][1]


def sign_weather(
    b: SentenceBuilder, rng: Generator, exclude: Sequence[str] = (), p_intensity: float = 0.5
) -> WeatherNP:
    """``RAIN [STRONG|WEAK [VERY|QUITE]]`` -> ``[very] [heavy] rain``."""
    gloss = pick(rng, [w for w in L.WEATHER if w not in exclude])
    noun, _, strong, weak = L.WEATHER[gloss]
    w = sign(b, gloss)
    pieces: Pieces = [(noun, w)]
    if rng.random() < p_intensity:
        intensity = pick(rng, L.INTENSITY)
        adjective = [(strong if intensity == "STRONG" else weak, sign(b, intensity))]
        pieces = adjective + pieces
        if rng.random() < 0.25:
            degree = pick(rng, L.DEGREE_ADVERBS)
            pieces = [(L.DEGREE_ADVERBS[degree], sign(b, degree))] + pieces
    return WeatherNP(gloss, pieces)


def sign_number(b: SentenceBuilder, value: int) -> Pieces:
    """``MINUS TWENTY FIVE`` for -25: one gloss per English number word."""
    pieces: Pieces = []
    if value < 0:
        pieces.append(("minus", sign(b, "MINUS")))
    v = abs(value)
    units = list(L.UNITS)
    if v < 20:
        glosses = [units[v]]
    else:
        glosses = [list(L.TENS)[v // 10 - 2]] + ([units[v % 10]] if v % 10 else [])
    for g in glosses:
        pieces.append(({**L.UNITS, **L.TENS}[g], sign(b, g)))
    return pieces


def sign_modal_neg(
    b: SentenceBuilder, rng: Generator, modals: Sequence[str], p_modal: float, p_neg: float
) -> Tuple[Modal, Optional[int]]:
    """Optional modality sign then optional ``NOT``: ((gloss, index) or None, index or None)."""
    modal = None
    if modals and rng.random() < p_modal:
        g = pick(rng, modals)
        modal = (g, sign(b, g))
    neg = sign(b, "NOT") if rng.random() < p_neg else None
    return modal, neg


def not_pieces(neg: Optional[int]) -> Pieces:
    """``not`` when negated."""
    return [("not", neg)] if neg is not None else []


def verb_group(tense: str, forms: Tuple[str, str, str], v: Optional[int], modal: Modal,
               neg: Optional[int]) -> Pieces:
    """Statement verb group of a weather verb (``forms`` = base, past, participle)."""
    base, past, participle = forms
    m = modal[1] if modal else None
    if tense == "future":
        if modal is None:
            return [("will", None)] + not_pieces(neg) + [(base, v)]
        if modal[0] == "PROBABLY":
            return [("will", None), ("probably", m)] + not_pieces(neg) + [(base, v)]
        return [("may", m)] + not_pieces(neg) + [(base, v)]
    simple = [("did", None), ("not", neg), (base, v)] if neg is not None else [(past, v)]
    if modal is None:
        return simple
    if modal[0] == "PROBABLY":
        return [("probably", m)] + simple
    return [("may", m)] + not_pieces(neg) + [("have", None), (participle, v)]


def copula(tense: str, plural: bool, modal: Modal, neg: Optional[int], there: bool = False) -> Pieces:
    """``[there] will be`` / ``was`` / ``may have been`` ...; with ``there``, ``NOT`` is ``no``."""
    m = modal[1] if modal else None
    no = [("no", neg)] if there and neg is not None else []
    neg = None if there else neg
    was = "were" if plural else "was"
    if tense == "future":
        if modal is None:
            p = [("will", None)] + not_pieces(neg) + [("be", None)]
        elif modal[0] == "PROBABLY":
            p = [("will", None), ("probably", m)] + not_pieces(neg) + [("be", None)]
        else:
            p = [("may", m)] + not_pieces(neg) + [("be", None)]
    elif modal is None:
        p = [(was, None)] + not_pieces(neg)
    elif modal[0] == "PROBABLY":
        p = [(was, None), ("probably", m)] + not_pieces(neg)
    else:
        p = [("may", m)] + not_pieces(neg) + [("have been", None)]
    return ([("there", None)] if there else [("it", None)]) + p + no


def question_end(qtype: str, q: int) -> Pieces:
    """The question mark; it is the ``Q`` sign's word (a wh-sign's word is the wh-word)."""
    return [("?", q if qtype == "Q" else None)]


