"""The combinatorial sign inventory of the open grammar.

A sign is a hand shape (8), a place of articulation on a 3 x 3 grid in front of the signer (9),
a movement path (8) and one or two hands (2): 1152 distinct signs, of which each gloss of the
open grammar gets one, drawn without replacement by a fixed permutation (the inventory belongs
to the language, so it does not depend on ``--seed``). The demo grammar keeps its 15
hand-picked signs (:data:`fairseq_slt.synthetic.render.SIGNS`).
"""

import itertools
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .open_grammar import open_glosses
from .render import MORE_PATHS, MORE_SHAPES, PATHS, SHAPES, Sign

INVENTORY_SHAPES = SHAPES + MORE_SHAPES
INVENTORY_PATHS = PATHS + MORE_PATHS
# right-hand places (x, y in [0, 1] of the figure); a two-handed sign mirrors the left hand
PLACE_X = (0.57, 0.69, 0.81)
PLACE_Y = (0.24, 0.44, 0.64)
INVENTORY_SEED = 20240521


def all_signs() -> List[Sign]:
    """Every combination of shape, place, path and number of hands, in a fixed order."""
    places: List[Tuple[float, float]] = [(x, y) for y in PLACE_Y for x in PLACE_X]
    return [
        Sign(shape, place, path, two_hands)
        for shape, place, path, two_hands in itertools.product(
            INVENTORY_SHAPES, places, INVENTORY_PATHS, (False, True))
    ]


def sign_inventory(glosses: Sequence[str], seed: int = INVENTORY_SEED) -> Dict[str, Sign]:
    """A distinct sign for each gloss (sorted by name), drawn without replacement."""
    glosses = sorted(set(glosses))
    signs = all_signs()
    if len(glosses) > len(signs):
        raise ValueError(f"{len(glosses)} glosses but only {len(signs)} distinct signs")
    order = np.random.default_rng(seed).permutation(len(signs))
    return {g: signs[int(order[i])] for i, g in enumerate(glosses)}


OPEN_SIGNS: Dict[str, Sign] = sign_inventory(open_glosses())
