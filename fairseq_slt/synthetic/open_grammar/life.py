"""Everyday clauses of the open grammar: ``[TIME] SUBJECT [OBJECT [NUMBER]] [PLACE] VERB [CAN|MUST|
WANT] [NOT] [Q|WHO|WHAT|WHERE|WHEN]``, and a weather clause giving the reason for one (``SO``).

English puts the verb before its object, inflects it for tense (past: ``YESTERDAY``,
``LAST-WEEK``; future: ``TOMORROW``, week days ...; habitual: ``EVERYDAY`` or no time;
progressive: ``NOW``) and agreement, uses object pronouns (``HE`` -> him), plurals after numbers
(``BOOK THREE`` -> three books), articles by noun class (a book, some bread / any bread under
negation and in questions, the bus, football) and ``do``-support in negations and questions.
"""

from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

from numpy.random import Generator

from ..sentence import Sentence, SentenceBuilder
from . import lexicon as L
from .common import (
    Modal, Pieces, Time, copula, not_pieces, pick, question_end, sign, sign_region, sign_time, sign_weather,
)

BE = {"1": "am", "2": "are", "3": "is", "pl": "are"}


def _do(person: str) -> str:
    """The do-support auxiliary agreeing with ``person``."""
    return "does" if person == "3" else "do"


@dataclass
class Person:
    gloss: str
    subject: Pieces
    object: Pieces
    person: str  # "1", "2", "3" (singular) or "pl"


def sign_person(b: SentenceBuilder, rng: Generator, exclude: Sequence[str] = ()) -> Person:
    """A pronoun (``HE``: he / him) or ``[MY] MOTHER`` (kinship nouns need the possessive; other
    persons without one take "the")."""
    if rng.random() < 0.45:
        gloss = pick(rng, [p for p in L.PRONOUNS if p not in exclude])
        subject, obj, person = L.PRONOUNS[gloss]
        i = sign(b, gloss)
        return Person(gloss, [(subject, i)], [(obj, i)], person)
    gloss = pick(rng, [p for p in L.PERSONS if p not in exclude])
    noun, plural, needs_possessive = L.PERSONS[gloss]
    if needs_possessive or rng.random() < 0.3:
        possessive = pick(rng, L.POSSESSIVES)
        determiner = [(L.POSSESSIVES[possessive], sign(b, possessive))]
    else:
        determiner = [("the", None)]
    pieces = determiner + [(noun, sign(b, gloss))]
    return Person(gloss, pieces, pieces, "pl" if plural else "3")


def sign_object(
    b: SentenceBuilder, rng: Generator, classes: Sequence[str], any_: bool, subject: Optional[str]
) -> Pieces:
    """The verb's object; ``any_``: mass nouns take "any" (negation, question) instead of "some"."""
    cls = pick(rng, classes)
    if cls == "visit" and rng.random() < 0.6:
        cls = "person"
    if cls == "person":
        return sign_person(b, rng, exclude=[subject]).object
    if cls == "visit":
        gloss = pick(rng, list(L.PLACE_GROUPS["visit"]) + list(L.CITIES))
        if gloss in L.CITIES:
            return [(L.CITIES[gloss], sign(b, gloss))]
        return [("the", None), (L.PLACES[gloss][1], sign(b, gloss))]
    gloss = pick(rng, L.OBJECTS[cls])
    singular, plural = L.OBJECTS[cls][gloss]
    o = sign(b, gloss)
    if cls in ("vehicle", "household"):
        return [("the", None), (singular, o)]
    if cls in ("game", "subject"):
        return [(singular, o)]
    if plural is None:
        return [("any" if any_ else "some", None), (singular, o)]
    if rng.random() < 0.35:
        k = int(rng.integers(1, len(L.OBJECT_NUMBERS) + 1))
        number = L.OBJECT_NUMBERS[k - 1]
        return [(L.UNITS[number], sign(b, number)), (singular if k == 1 else plural, o)]
    return [("an" if singular[0] in "aeiou" else "a", None), (singular, o)]


def sign_place(b: SentenceBuilder, rng: Generator, role: str, group: str) -> Pieces:
    """``at the shop`` (location) or ``to the shop`` / ``home`` / ``to berlin`` (destination)."""
    options = list(L.PLACE_GROUPS[group]) + (list(L.CITIES) if role == "destination" else [])
    gloss = pick(rng, options)
    if gloss in L.CITIES:
        return [("to", None), (L.CITIES[gloss], sign(b, gloss))]
    location, name, destination = L.PLACES[gloss]
    return [(location if role == "location" else destination, None), (name, sign(b, gloss))]


def statement_vp(forms: Tuple[str, str, str, str], v: int, tense: str, person: str, modal: Modal,
                 neg: Optional[int]) -> Pieces:
    """``bought`` / ``did not buy`` / ``will buy`` / ``buys`` / ``is buying`` / ``can buy`` /
    ``wants to buy`` ..."""
    base, third, past, ing = forms
    if modal is not None:
        gloss, m = modal
        if gloss == "WANT":
            if neg is not None:
                return [(_do(person), None), ("not", neg), ("want", m), ("to", None), (base, v)]
            return [("wants" if person == "3" else "want", m), ("to", None), (base, v)]
        return [(L.MODALS[gloss], m)] + not_pieces(neg) + [(base, v)]
    if tense == "past":
        return [("did", None), ("not", neg), (base, v)] if neg is not None else [(past, v)]
    if tense == "future":
        return [("will", None)] + not_pieces(neg) + [(base, v)]
    if tense == "habitual":
        if neg is not None:
            return [(_do(person), None), ("not", neg), (base, v)]
        return [(third if person == "3" else base, v)]
    return [(BE[person], None)] + not_pieces(neg) + [(ing, v)]


def inverted_vp(forms: Tuple[str, str, str, str], v: int, tense: str, person: str,
                modal: Modal) -> Tuple[Pieces, Pieces]:
    """(auxiliary before the subject, rest after it): ``did`` + ``buy``, ``does`` + ``want to buy``."""
    base, _, _, ing = forms
    if modal is not None:
        gloss, m = modal
        if gloss == "WANT":
            return [(_do(person), None)], [("want", m), ("to", None), (base, v)]
        return [(L.MODALS[gloss], m)], [(base, v)]
    aux = {"past": "did", "future": "will", "habitual": _do(person), "progressive": BE[person]}[tense]
    return [(aux, None)], [(ing if tense == "progressive" else base, v)]


@dataclass
class Life:
    """A signed everyday clause, as English pieces to assemble."""

    qtype: Optional[str]
    q: Optional[int]
    subject: Pieces
    person: str
    vp: Pieces
    aux: Pieces
    rest: Pieces
    tail: Pieces = field(default_factory=list)  # object and place

    def pieces(self, time: Time) -> Pieces:
        """The clause in English order, with ``time``'s words in their place."""
        if self.qtype is None:
            front, end = time.pieces()
            return front + self.subject + self.vp + self.tail + end
        end = time.question_pieces() + question_end(self.qtype, self.q)
        if self.qtype == "WHO":
            return [("who", self.q)] + self.vp + self.tail + end
        wh = [] if self.qtype == "Q" else [(self.qtype.lower(), self.q)]
        return wh + self.aux + self.subject + self.rest + self.tail + end


def sign_life(b: SentenceBuilder, rng: Generator, verb: str, tense: str, qtype: Optional[str],
              p_modal: float = 0.2, p_neg: float = 0.25) -> Life:
    """Sign ``SUBJECT [OBJECT] [PLACE] VERB [MODAL] [NOT] [Q/WH]`` (after any signs already there)."""
    forms, classes, place_role, place_group, preposition = L.VERBS[verb]
    modal_gloss = None
    if tense in ("future", "habitual") and rng.random() < p_modal:
        modal_gloss = pick(rng, L.MODALS)
    negated = qtype is None and rng.random() < p_neg
    any_ = negated or qtype == "Q"
    person, subject, subject_gloss = "3", [], None
    if qtype != "WHO":
        who = sign_person(b, rng)
        person, subject, subject_gloss = who.person, who.subject, who.gloss
    tail: Pieces = []
    if classes and qtype != "WHAT":
        tail += ([(preposition, None)] if preposition else []) + sign_object(b, rng, classes, any_, subject_gloss)
    elif classes and preposition:
        tail.append((preposition, None))  # what are you waiting for
    if place_role and qtype != "WHERE" and (place_role == "destination" or rng.random() < 0.35):
        tail += sign_place(b, rng, place_role, place_group)
    v = sign(b, verb)
    modal = (modal_gloss, sign(b, modal_gloss)) if modal_gloss else None
    neg = sign(b, "NOT") if negated else None
    q = sign(b, qtype) if qtype else None
    vp = statement_vp(forms, v, tense, person, modal, neg)
    aux, rest = inverted_vp(forms, v, tense, person, modal)
    return Life(qtype, q, subject, person, vp, aux, rest, tail)


def life_sentence(rng: Generator) -> Sentence:
    """An everyday statement or question."""
    b = SentenceBuilder()
    verb = pick(rng, L.VERBS)
    _, classes, place_role, _, _ = L.VERBS[verb]
    qtypes = [None] * 11 + ["Q", "Q", "WHO", "WHEN"] + (["WHAT"] if classes else []) + (
        ["WHERE"] if place_role else [])
    qtype = pick(rng, qtypes)
    if qtype != "WHEN" and rng.random() < 0.8:
        time = sign_time(b, rng, L.WEATHER_TIMES + tuple(L.LIFE_TIMES), p_daypart=0.15)
        tense = time.tense
    else:
        time, tense = Time(), "future" if qtype == "WHEN" else "habitual"
    b.extend(sign_life(b, rng, verb, tense, qtype).pieces(time))
    return b.build()


def reason_sentence(rng: Generator) -> Sentence:
    """``TIME [REGION] SNOW SO FATHER CAR DRIVE NOT`` -> "tomorrow my father will not drive ...
    because there will be snow ..." (the signed reason comes first, the English one last)."""
    b = SentenceBuilder()
    time = sign_time(b, rng, L.WEATHER_TIMES, p_daypart=0.2)
    region = sign_region(b, rng) if rng.random() < 0.6 else []
    weather = sign_weather(b, rng, p_intensity=0.4)
    so = sign(b, "SO")
    life = sign_life(b, rng, pick(rng, L.VERBS), time.tense, None, p_modal=0.25, p_neg=0.4)
    front, end = time.pieces()
    b.extend(front + life.subject + life.vp + life.tail + [("because", so)]
             + copula(time.tense, weather.plural, None, None, there=True) + weather.pieces + region + end)
    return b.build()
