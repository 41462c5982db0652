"""examples/release_layouts.py: a synthetic corpus laid out as each dataset's release, read back by
that dataset's prep script (the newcomer walk of the recipes in examples/README.md)."""

import importlib.util
import os

import pytest

from fairseq_slt.data.manifest_utils import read_manifest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_release_layouts_are_read_by_the_prep_scripts(tiny_corpus, tmp_path):
    layouts = load(os.path.join(EXAMPLES, "release_layouts.py"), "release_layouts")
    layouts.main([str(tiny_corpus), "--out", str(tmp_path / "releases"), "--per-video", "2",
                  "--how2sign-size", "64x36"])
    n = {"train": 12, "dev": 4, "test": 5}
    roots = {"phoenix14t": "PHOENIX-2014-T", "csl_daily": "CSL-Daily", "how2sign": "How2Sign"}
    for dataset, root in roots.items():
        out = tmp_path / f"data_{dataset}"
        prep = load(os.path.join(EXAMPLES, dataset, f"prep_{dataset}.py"), f"prep_{dataset}")
        prep.main(["--root", str(tmp_path / "releases" / root), "--out", str(out), "--vocab-size", "40"])
        for split, rows in n.items():
            kept = read_manifest(str(out / f"{split}.tsv"))[1]
            dropped = (out / f"dropped_{split}.tsv").read_text().strip().splitlines()[1:]
            if dataset == "how2sign":
                # the second full video is missing (2 sentences); in test one sentence ends past its video
                assert len(dropped) == 2 + (split == "test") and len(kept) == rows - len(dropped)
            else:
                assert len(dropped) == 1 and len(kept) == rows - 1  # the last listed video is missing
    # the targets are the synthetic sentences; How2Sign keeps them cased, with their time ranges
    train = read_manifest(str(tmp_path / "data_how2sign" / "train.tsv"))[1]
    synth = {r["tgt_text"] for r in read_manifest(str(tiny_corpus / "train.tsv"))[1]}
    assert all(r["tgt_text"] in synth and float(r["end"]) > float(r["start"]) for r in train)
