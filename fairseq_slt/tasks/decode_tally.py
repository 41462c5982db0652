"""Which rows of the decoded split fairseq-generate decoded, and which ``--skip-bad-videos`` skipped.

fairseq-generate has no end-of-run hook, so the task counts each decoded batch
(:meth:`DecodeTally.add`): the ids it decoded and the number of videos its collater skipped
(``n_skipped``). Once every row of the split is accounted for, the count is finished: it names the
rows that are not in the BLEU (:attr:`SplitCount.skipped_ids`), and the task logs
:func:`skip_summary`. A batch whose videos were all skipped never reaches the task (the collater
returns ``{}``); its rows are then never accounted for, and only the running count is known.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set


@dataclass
class SplitCount:
    """The rows of one pass over ``split`` decoded so far (indices) and skipped (a number)."""

    split: str
    row_ids: Sequence[str]  # the manifest's ids, in row order
    decoded: Set[int] = field(default_factory=set)
    skipped: int = 0

    @property
    def n_rows(self) -> int:
        return len(self.row_ids)

    @property
    def n_seen(self) -> int:
        return len(self.decoded) + self.skipped

    @property
    def done(self) -> bool:
        return self.n_seen >= self.n_rows

    @property
    def skipped_ids(self) -> List[str]:
        """The ids of the rows not decoded (once :attr:`done`: those skipped)."""
        return [str(self.row_ids[i]) for i in range(self.n_rows) if i not in self.decoded]


class DecodeTally:
    """The running count of each split being decoded and the finished counts, in order."""

    def __init__(self):
        self.running: Dict[str, SplitCount] = {}
        self.finished: List[SplitCount] = []

    def add(self, split: str, row_ids: Sequence[str], decoded_ids: Sequence[int], n_skipped: int) -> SplitCount:
        """Count a batch of ``split`` (whose rows have the ids ``row_ids``); returns the split's
        count, finished (and a later batch of the split starts a new one) once every row is counted."""
        count = self.running.setdefault(split, SplitCount(split, row_ids))
        count.decoded.update(decoded_ids)
        count.skipped += int(n_skipped)
        if count.done:
            del self.running[split]
            self.finished.append(count)
        return count

    @property
    def last(self) -> Optional[SplitCount]:
        """The last finished count (None before any)."""
        return self.finished[-1] if self.finished else None


def running_line(count: SplitCount) -> str:
    """The line logged after each batch with ``--skip-bad-videos``."""
    return f"{count.split}: {count.n_seen} of {count.n_rows} rows so far, {count.skipped} skipped (unreadable videos)"


def skip_summary(split: str, n_rows: int, skipped_ids: List[str], max_ids: int = 20) -> str:
    """The end-of-decoding line: how many (and which) of the split's rows are not in the BLEU."""
    n = len(skipped_ids)
    if n == 0:
        return (
            f"{split}: 0 of {n_rows} rows skipped (unreadable videos); "
            f"the BLEU below covers all {n_rows} rows"
        )
    shown = ", ".join(skipped_ids[:max_ids]) + (f" and {n - max_ids} more" if n > max_ids else "")
    return (
        f"{split}: {n} of {n_rows} rows skipped (unreadable videos), ids: {shown}; "
        f"the BLEU below covers {n_rows - n} of {n_rows} rows"
    )
