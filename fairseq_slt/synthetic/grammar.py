"""The demo grammar (``fairseq-slt-synth --grammar demo``, the default): weather sentences of the
synthetic sign language and their English translations (360 sentences, 15 glosses; the open
grammar of :mod:`.open_grammar` is the benchmark).

Signed order is topic-first, negation last (``TOMORROW NORTH RAIN STRONG NOT``); the English
translation reorders, inserts function words and picks adjectives that depend on the noun
("there will be no heavy rain in the north tomorrow"), so the target is a translation, not a
gloss transcript.
"""

from typing import List, Tuple

import numpy as np

from .sentence import Sentence

TIMES = {"TODAY": "today", "TOMORROW": "tomorrow", "WEEKEND": "at the weekend"}
PLACES = {"NORTH": "north", "SOUTH": "south", "EAST": "east", "WEST": "west"}
WEATHER = {"RAIN": "rain", "SUN": "sunshine", "SNOW": "snow", "WIND": "wind", "FOG": "fog"}
INTENSITY = {
    ("RAIN", "STRONG"): "heavy", ("RAIN", "WEAK"): "light",
    ("SUN", "STRONG"): "bright", ("SUN", "WEAK"): "hazy",
    ("SNOW", "STRONG"): "heavy", ("SNOW", "WEAK"): "light",
    ("WIND", "STRONG"): "strong", ("WIND", "WEAK"): "gentle",
    ("FOG", "STRONG"): "thick", ("FOG", "WEAK"): "patchy",
}


def translate(glosses: List[str]) -> str:
    """English translation of a gloss sentence ``TIME PLACE WEATHER [STRONG|WEAK] [NOT]``."""
    time, place, weather = glosses[:3]
    rest = glosses[3:]
    negated = "NOT" in rest
    modifier = next((g for g in rest if g in ("STRONG", "WEAK")), None)
    noun = WEATHER[weather]
    if modifier is not None:
        noun = f"{INTENSITY[(weather, modifier)]} {noun}"
    be = "there will be no" if negated else "there will be"
    where = f"in the {PLACES[place]}"
    if time == "WEEKEND":  # the time phrase moves to the end
        return f"{be} {noun} {where} {TIMES[time]}"
    return f"{TIMES[time]} {be} {noun} {where}"


def sample_sentence(rng: np.random.Generator) -> Tuple[List[str], str]:
    """A random gloss sentence of the grammar and its translation."""
    glosses = [
        str(rng.choice(list(TIMES))),
        str(rng.choice(list(PLACES))),
        str(rng.choice(list(WEATHER))),
    ]
    modifier = rng.integers(3)
    if modifier:
        glosses.append("STRONG" if modifier == 1 else "WEAK")
    if rng.random() < 0.4:
        glosses.append("NOT")
    return glosses, translate(glosses)


DEMO_CATEGORIES = {
    **{g: "day" for g in TIMES}, **{g: "region" for g in PLACES}, **{g: "weather" for g in WEATHER},
    "STRONG": "intensity", "WEAK": "intensity", "NOT": "negation",
}


def demo_words(glosses: List[str]) -> Tuple[str, ...]:
    """The target word each gloss of a demo sentence is translated as (``STRONG`` after ``RAIN``:
    heavy; ``NOT``: no; ``WEEKEND``: weekend, of "at the weekend")."""
    weather = glosses[2]
    words = []
    for g in glosses:
        if g in ("STRONG", "WEAK"):
            words.append(INTENSITY[(weather, g)])
        elif g == "NOT":
            words.append("no")
        else:
            words.append({**TIMES, **PLACES, **WEATHER}[g].split()[-1])
    return tuple(words)


def sample_demo_sentence(rng: np.random.Generator) -> Sentence:
    """:func:`sample_sentence` as a :class:`~.sentence.Sentence` (the same draws from ``rng``)."""
    glosses, text = sample_sentence(rng)
    return Sentence(tuple(glosses), tuple(DEMO_CATEGORIES[g] for g in glosses), demo_words(glosses), text)
