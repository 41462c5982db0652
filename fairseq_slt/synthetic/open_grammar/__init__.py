"""The open grammar (``fairseq-slt-synth --grammar open``): a benchmark on which most sentences
are unique, so that a test score measures reading signs rather than recalling training sentences.

Seven clause types over the lexicon of :mod:`.lexicon` (see ``docs/synthetic_corpora.md``
for its size): weather (``TOMORROW NORTH RAIN STRONG NOT`` -> "tomorrow there will be no heavy rain in
the north"), temperatures with numbers (``MONDAY COAST TEMPERATURE MINUS FIVE DEGREE`` ->
"temperatures along the coast will reach minus five degrees on monday"), temperature adjectives,
wind, two weather clauses joined by ``THEN`` or ``BUT``, everyday actions (``YESTERDAY MY MOTHER
BOOK THREE BUY Q`` -> "did my mother buy three books yesterday?") and a weather clause giving the
reason for an everyday one (``... SO WE HOME STAY`` -> "we will stay at home because there will
be ..."). Signing order is topic first, subject-object-verb, numbers after the noun, modality,
negation and question signs last; English reorders, inflects (tense from the time sign,
agreement, plurals, object pronouns), inserts function words (articles, prepositions,
auxiliaries, ``some``/``any``) and chooses noun-dependent adjectives. The translation is a
function of the glosses (a test checks it on samples).
"""

from typing import List

import numpy as np

from ..sentence import Sentence
from .lexicon import GLOSS_CATEGORIES
from .life import life_sentence, reason_sentence
from .weather import but_sentence, temperature_sentence, then_sentence, weather_sentence, wind_sentence

# clause types and how often they are drawn
KINDS = ("weather", "temperature", "wind", "then", "but", "life", "reason")
KIND_WEIGHTS = (0.22, 0.14, 0.06, 0.06, 0.06, 0.36, 0.10)
BUILDERS = {
    "weather": weather_sentence, "temperature": temperature_sentence, "wind": wind_sentence,
    "then": then_sentence, "but": but_sentence, "life": life_sentence, "reason": reason_sentence,
}


def sample_open_sentence(rng: np.random.Generator) -> Sentence:
    """A random sentence of the open grammar (its clause type drawn with ``KIND_WEIGHTS``)."""
    kind = KINDS[int(rng.choice(len(KINDS), p=KIND_WEIGHTS))]
    return BUILDERS[kind](rng)


# the weather clauses only (``--grammar weather``): PHOENIX-2014-T's domain, with 113 glosses
WEATHER_KINDS = ("weather", "temperature", "wind", "then", "but")
WEATHER_WEIGHTS = tuple(w / sum(KIND_WEIGHTS[:5]) for w in KIND_WEIGHTS[:5])


def sample_weather_sentence(rng: np.random.Generator) -> Sentence:
    """A random weather sentence of the open grammar: its weather, temperature, wind, ``THEN``
    and ``BUT`` clauses, in the proportions the open grammar draws them."""
    kind = WEATHER_KINDS[int(rng.choice(len(WEATHER_KINDS), p=WEATHER_WEIGHTS))]
    return BUILDERS[kind](rng)


def open_glosses() -> List[str]:
    """Every gloss of the open grammar, sorted."""
    return sorted(GLOSS_CATEGORIES)


__all__ = [
    "BUILDERS", "GLOSS_CATEGORIES", "KINDS", "KIND_WEIGHTS", "WEATHER_KINDS", "open_glosses",
    "sample_open_sentence", "sample_weather_sentence",
]
