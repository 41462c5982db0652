"""Print, for each checkpoint, every setting of the paper's method beside the value the run used.

    fairseq-slt-audit SAVE_DIR/checkpoint_best.pt [MORE.pt ...] [--json] [--strict]
    fairseq-slt-audit --paper-settings

Stage 1 (``slt_lightt*``): Light-T size, vocabulary, temporal module, ImageNet backbone, loss and
label smoothing, optimizer and momentum, learning rate, scheduler, global batch, epochs, and the
data settings (frames kept, most frames, crop, resize, augmentation). Stage 2 (``slt_mbart``):
frozen stage-1 visual encoder, mBART-large-cc25, the learning rates of the adapter and of mBART,
scheduler, global batch, label smoothing, and the data settings. The data settings are read from
the run's data config as it is on disk now. Each row is ``ok``, ``DIFFERS``, ``unknown`` or
``n/a``; the exit status is 0 (it reports), or with ``--strict`` 1 when any setting differs.

``--paper-settings`` prints the paper's values themselves (:mod:`fairseq_slt.paper`), one
``PAPER_<NAME>=value`` line each, shell-quoted: the recipes read their defaults with
``eval "$(fairseq-slt-audit --paper-settings)"``. A thin command line over :mod:`fairseq_slt.audit`.
"""

import argparse
import json
import sys
from typing import List, Optional


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fairseq-slt-audit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT", help="checkpoint(s) written by fairseq-train")
    p.add_argument("--json", action="store_true", help="print a JSON list (one object per checkpoint)")
    p.add_argument("--strict", action="store_true", help="exit 1 when any setting differs from the paper")
    p.add_argument("--paper-settings", action="store_true",
                   help="print the paper's settings as PAPER_<NAME>=value lines (for a shell's eval) and exit")
    return p


def cli_main(argv: Optional[List[str]] = None) -> None:
    p = get_parser()
    args = p.parse_args(argv)
    if args.paper_settings:
        if args.checkpoints:
            p.error("--paper-settings takes no checkpoint")
        from ..paper import shell_lines

        sys.stdout.write("\n".join(shell_lines()) + "\n")
        return
    if not args.checkpoints:
        p.error("the following arguments are required: CHECKPOINT")
    from ..audit import AuditError, audit_checkpoint, format_audit  # torch: after --help

    try:
        audits = [audit_checkpoint(path) for path in args.checkpoints]
    except AuditError as e:
        sys.exit(f"fairseq-slt-audit: error: {e}")
    if args.json:
        sys.stdout.write(json.dumps([a.to_dict() for a in audits], indent=2) + "\n")
    else:
        sys.stdout.write("\n\n".join(format_audit(a) for a in audits) + "\n")
    if args.strict and any(a.differs for a in audits):
        sys.exit(1)


if __name__ == "__main__":
    cli_main()
