"""Weather clauses of the open grammar: forecasts, temperatures, wind, ``THEN`` and ``BUT``."""

from numpy.random import Generator

from ..sentence import Sentence, SentenceBuilder
from . import lexicon as L
from .common import (
    Pieces, Time, copula, daypart_pieces, pick, question_end, sign, sign_modal_neg, sign_number,
    sign_region, sign_time, sign_weather, verb_group,
)


def weather_sentence(rng: Generator) -> Sentence:
    """``TIME [DAYPART] REGION WEATHER [INTENSITY [DEGREE]] [MAYBE|PROBABLY] [NOT] [Q|WHERE|WHEN]``."""
    b = SentenceBuilder()
    qtype = pick(rng, [None] * 8 + ["Q", "Q", "WHERE", "WHEN"])
    time = Time() if qtype == "WHEN" else sign_time(b, rng, L.WEATHER_TIMES)
    region = [] if qtype == "WHERE" else sign_region(b, rng)
    np_ = sign_weather(b, rng)
    if qtype is None:
        modal, neg = sign_modal_neg(b, rng, ("MAYBE", "PROBABLY"), 0.25, 0.3)
        front, end = time.pieces()
        b.extend(front + copula(time.tense, np_.plural, modal, neg, there=True) + np_.pieces + region + end)
        return b.build()
    q = sign(b, qtype)
    was = "were" if np_.plural else "was"
    inverted = [("will there be", None)] if time.tense == "future" else [(was + " there", None)]
    wh = [] if qtype == "Q" else [(qtype.lower(), q)]
    b.extend(wh + inverted + np_.pieces + region + time.question_pieces() + question_end(qtype, q))
    return b.build()


def temperature_sentence(rng: Generator) -> Sentence:
    """Temperatures reaching a value, rising/falling, or an adjective (``WARM [VERY]``)."""
    b = SentenceBuilder()
    variant = pick(rng, ("reach", "reach", "trend", "adjective", "adjective"))
    question = rng.random() < 0.2
    time = sign_time(b, rng, L.WEATHER_TIMES)
    region = sign_region(b, rng)
    if variant == "adjective":
        adjective = pick(rng, L.TEMPERATURE_ADJECTIVES)
        words = [(L.TEMPERATURE_ADJECTIVES[adjective], sign(b, adjective))]
        if rng.random() < 0.3:
            degree = pick(rng, L.DEGREE_ADVERBS)
            words = [(L.DEGREE_ADVERBS[degree], sign(b, degree))] + words
        modal, neg = (None, None) if question else sign_modal_neg(b, rng, ("MAYBE", "PROBABLY"), 0.2, 0.25)
        if question:
            q = sign(b, "Q")
            aux = [("will it be", None)] if time.tense == "future" else [("was it", None)]
            b.extend(aux + words + region + time.question_pieces() + question_end("Q", q))
        else:
            front, end = time.pieces()
            b.extend(front + copula(time.tense, False, modal, neg) + words + region + end)
        return b.build()
    subject = [("temperatures", sign(b, "TEMPERATURE"))]
    forms, v = ("reach", "reached", "reached"), None
    if variant == "trend":
        trend = pick(rng, L.TRENDS)
        forms, v = L.TRENDS[trend], sign(b, trend)
    value: Pieces = []
    if variant == "reach" or rng.random() < 0.6:
        n = int(rng.integers(-20, 41))
        value = sign_number(b, n) + [("degree" if abs(n) == 1 else "degrees", sign(b, "DEGREE"))]
        if variant == "trend":
            value = [("to", None)] + value
    modal, neg = (None, None) if question else sign_modal_neg(b, rng, ("MAYBE", "PROBABLY"), 0.2, 0.25)
    if question:
        q = sign(b, "Q")
        aux = [("will" if time.tense == "future" else "did", None)]
        b.extend(aux + subject + region + [(forms[0], v)] + value + time.question_pieces() + question_end("Q", q))
    else:
        front, end = time.pieces()
        b.extend(front + subject + region + verb_group(time.tense, forms, v, modal, neg) + value + end)
    return b.build()


def wind_sentence(rng: Generator) -> Sentence:
    """``TIME [REGION] WIND [STRONG|WEAK [VERY]] WEST BLOW [MAYBE|PROBABLY] [Q]``."""
    b = SentenceBuilder()
    time = sign_time(b, rng, L.WEATHER_TIMES)
    region = sign_region(b, rng) if rng.random() < 0.6 else []
    np_ = sign_weather(b, rng, exclude=[w for w in L.WEATHER if w != "WIND"], p_intensity=0.6)
    article = [("a" if len(np_.pieces) > 1 else "the", None)]
    compass = pick(rng, [c for c in L.COMPASS if not region or L.COMPASS[c] != region[1][0]])
    source = [("from the", None), (L.COMPASS[compass], sign(b, compass))]
    blow = sign(b, "BLOW")
    if rng.random() < 0.2:
        q = sign(b, "Q")
        aux = [("will" if time.tense == "future" else "did", None)]
        b.extend(aux + article + np_.pieces + [("blow", blow)] + source + region
                 + time.question_pieces() + question_end("Q", q))
    else:
        modal, _ = sign_modal_neg(b, rng, ("MAYBE", "PROBABLY"), 0.25, 0.0)
        front, end = time.pieces()
        b.extend(front + article + np_.pieces + verb_group(time.tense, L.BLOW, blow, modal, None)
                 + source + region + end)
    return b.build()


def then_sentence(rng: Generator) -> Sentence:
    """``TIME MORNING [REGION] RAIN THEN AFTERNOON SUN`` -> "... rain in the morning then sunshine
    in the afternoon"."""
    b = SentenceBuilder()
    time = sign_time(b, rng, L.WEATHER_TIMES, p_daypart=0.0)
    first = int(rng.integers(len(L.DAYPARTS) - 1))
    second = first + 1 + int(rng.integers(len(L.DAYPARTS) - 1 - first))
    dayparts = list(L.DAYPARTS)
    d1 = dayparts[first], sign(b, dayparts[first])
    region = sign_region(b, rng) if rng.random() < 0.5 else []
    np1 = sign_weather(b, rng, p_intensity=0.4)
    then = sign(b, "THEN")
    d2 = dayparts[second], sign(b, dayparts[second])
    np2 = sign_weather(b, rng, exclude=[np1.gloss], p_intensity=0.4)
    front, end = time.pieces()
    b.extend(front + copula(time.tense, np1.plural, None, None, there=True) + np1.pieces + region
             + daypart_pieces(*d1) + [("then", then)] + np2.pieces + daypart_pieces(*d2) + end)
    return b.build()


def but_sentence(rng: Generator) -> Sentence:
    """``TIME NORTH RAIN BUT SOUTH SUN`` -> "... rain in the north but sunshine in the south"."""
    b = SentenceBuilder()
    time = sign_time(b, rng, L.WEATHER_TIMES)
    region1 = sign_region(b, rng, exclude=["EVERYWHERE"])
    np1 = sign_weather(b, rng, p_intensity=0.4)
    but = sign(b, "BUT")
    excluded = ["EVERYWHERE"] + [g for g, (_, name) in L.REGIONS.items() if name == region1[1][0]]
    region2 = sign_region(b, rng, exclude=excluded)
    np2 = sign_weather(b, rng, exclude=[np1.gloss], p_intensity=0.4)
    front, end = time.pieces()
    b.extend(front + copula(time.tense, np1.plural, None, None, there=True) + np1.pieces + region1
             + [("but", but)] + np2.pieces + region2 + end)
    return b.build()
