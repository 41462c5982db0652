import re

import pytest

from fairseq_slt.cli.score import cli_main
from fairseq_slt.scoring import (
    best_rows,
    check_complete,
    check_references,
    describe_rows,
    gaps,
    lcs,
    missing_rows,
    nbest_note,
    read_generate_file,
    read_generate_output,
    reference_matches,
    rouge_l_sentence,
    score,
)


def test_lcs_and_rouge_l_by_hand():
    assert lcs("a b c d".split(), "a c d e".split()) == 3
    # hyp 4 tokens, ref 5 tokens, LCS 3: P = 3/4, R = 3/5
    p, r, b = 0.75, 0.6, 1.2
    expected = (1 + b * b) * p * r / (r + b * b * p)
    got = rouge_l_sentence("a c d e".split(), "a b c d f".split())
    assert got == pytest.approx(expected)
    assert rouge_l_sentence([], ["a"]) == 0.0
    assert rouge_l_sentence(["x"], ["a"]) == 0.0


def test_score_matches_hand_computed_values():
    hyps = ["a c d e", "x y"]
    refs = ["a b c d f", "x y"]
    r = score(hyps, refs)
    p, rc, b = 0.75, 0.6, 1.2
    assert r["ROUGE-L"] == pytest.approx(100 * ((1 + b * b) * p * rc / (rc + b * b * p) + 1.0) / 2)
    # BLEU-1: clipped unigram matches 3 + 2 = 5 of 6 hypothesis tokens; brevity 6 vs 7
    import math

    assert r["BLEU-1"] == pytest.approx(100 * (5 / 6) * math.exp(1 - 7 / 6), rel=1e-6)
    assert "nrefs:1" in r["signature"] and "tok:13a" in r["signature"]


def test_char_level_scores_characters():
    r = score(["今天下雨"], ["今天下雪"], char_level=True)
    # 3 of 4 characters match; LCS 3 of 4 on both sides
    assert r["BLEU-1"] == pytest.approx(75.0)
    assert r["ROUGE-L"] == pytest.approx(75.0)
    assert "tok:char" in r["signature"]


def test_read_generate_output(tmp_path):
    out = tmp_path / "generate-test.txt"
    out.write_text(
        "S-1\t\nT-1\tthe rain\nH-1\t-0.1\t▁the ▁rain\nD-1\t-0.1\tthe rain\n"
        "T-0\tsun today\nH-0\t-0.2\t▁sun\nD-0\t-0.2\tsun\nGenerate test with beam=5: BLEU = 1\n"
    )
    hyps, refs = read_generate_output(str(out))
    assert hyps == ["sun", "the rain"] and refs == ["sun today", "the rain"]
    (tmp_path / "bad.txt").write_text("T-0\tx\n")
    with pytest.raises(ValueError, match="have no D- hypothesis"):
        read_generate_output(str(tmp_path / "bad.txt"))


def write_output(path, ids):
    """A fairseq-generate output with one T-/H-/D- triple per sample id."""
    lines = []
    for i in ids:
        lines += [f"T-{i}\tref {i}", f"H-{i}\t-0.1\t▁ref", f"D-{i}\t-0.1\tref {i}"]
    path.write_text("\n".join(lines + ["Generate test with beam=5: BLEU = 1"]) + "\n")
    return str(path)


def write_manifest(path, n):
    rows = ["id\tvideo\tn_frames\ttgt_text"] + [f"test_{i:05d}\tv/{i}.mp4\t10\tref {i}" for i in range(n)]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_missing_rows_and_ids_beyond_the_split():
    assert missing_rows({0, 2, 4}, 5) == [1, 3]
    assert missing_rows(range(3), 3) == []
    with pytest.raises(ValueError, match=r"ids \[5, 7\] but test\.tsv has only 5 rows \(ids 0\.\.4\): pass the manifest"):
        missing_rows({0, 5, 7}, 5, "test.tsv")
    assert gaps({0, 1, 3, 6}) == [2, 4, 5] and gaps({0, 1}) == []
    assert describe_rows([1, 3], ["a", "b", "c", "d"]) == "1 (id b), 3 (id d)"
    assert describe_rows(list(range(5)), limit=2) == "0, 1 and 3 more"


def test_check_complete_with_a_manifest(tmp_path):
    manifest = write_manifest(tmp_path / "test.tsv", 5)
    assert check_complete("gen.txt", range(5), manifest) is None
    assert check_complete("gen.txt", {0}) is None  # nothing to compare with
    with pytest.raises(ValueError) as e:
        check_complete("gen.txt", {0, 1, 3}, manifest)
    assert str(e.value) == (
        f"2 of 5 rows of {manifest} have no hypothesis in gen.txt: 2 (id test_00002), 4 (id test_00004); "
        "fix their videos and decode again (fairseq-generate --skip-bad-videos logged why), or pass "
        "--allow-missing to score the other 3 rows"
    )
    warning = check_complete("gen.txt", {0, 1, 3}, manifest, allow_missing=True)
    assert warning.startswith("WARNING: 2 of 5 rows") and warning.endswith("scoring the other 3 rows only")
    with pytest.raises(ValueError, match=r"2 of 4 rows of --expected-rows 4 have no hypothesis in gen\.txt: 1, 3;"):
        check_complete("gen.txt", {0, 2}, expected_rows=4)


def test_cli_refuses_missing_rows_unless_allowed(tmp_path, capsys):
    out = write_output(tmp_path / "generate-test.txt", [0, 1, 3, 4])
    manifest = write_manifest(tmp_path / "test.tsv", 5)
    with pytest.raises(SystemExit) as e:
        cli_main([out, "--manifest", manifest])
    assert re.fullmatch(
        r"fairseq-slt-score: error: 1 of 5 rows of \S+ have no hypothesis in \S+: 2 \(id test_00002\); .*",
        str(e.value),
    )
    assert capsys.readouterr().out == ""
    cli_main([out, "--manifest", manifest, "--allow-missing"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("WARNING: 1 of 5 rows") and lines[1].startswith("sentences 4 | ROUGE-L 100.00")
    cli_main([out, "--expected-rows", "5", "--allow-missing"])
    assert "sentences 4 |" in capsys.readouterr().out


def test_cli_without_manifest_scores_and_notes_gaps(tmp_path, capsys):
    out = write_output(tmp_path / "generate-test.txt", [0, 1, 3])
    cli_main([out])
    captured = capsys.readouterr()
    assert captured.out.startswith("sentences 3 | ROUGE-L 100.00 | BLEU-1 100.00")
    assert "has no hypothesis for ids 2; pass --manifest DATA/<split>.tsv" in captured.err
    cli_main([write_output(tmp_path / "full.txt", [0, 1])])
    assert capsys.readouterr().err == ""


def test_cli_bad_arguments_and_files(tmp_path, capsys):
    out = write_output(tmp_path / "generate-test.txt", [0, 1])
    with pytest.raises(SystemExit) as e:
        cli_main([out, "--allow-missing"])
    assert e.value.code == 2 and "--allow-missing needs --manifest or --expected-rows" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli_main([out, "--expected-rows", "0"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        cli_main([out, "--manifest", str(tmp_path / "nope.tsv")])
    assert str(e.value) == f"fairseq-slt-score: error: manifest not found: {tmp_path / 'nope.tsv'}"
    with pytest.raises(SystemExit) as e:  # the output of another, larger split
        cli_main([out, "--manifest", write_manifest(tmp_path / "dev.tsv", 1)])
    assert "the output has ids [1] but" in str(e.value) and "has only 1 rows" in str(e.value)
    with pytest.raises(SystemExit) as e:
        cli_main([str(tmp_path / "missing.txt")])
    assert str(e.value).startswith("fairseq-slt-score: error: [Errno 2] No such file")


def test_with_a_manifest_the_raw_tgt_text_is_the_reference(tmp_path, capsys):
    """fairseq-generate's T- lines went through sentencepiece's normalisation (CSL-Daily's
    full-width comma becomes ','); with --manifest the manifest's raw text is scored."""
    manifest = tmp_path / "test.tsv"
    manifest.write_text("id\tvideo\tn_frames\ttgt_text\na\tv.mp4\t5\t今天，下雨\nb\tw.mp4\t5\t你好\n", encoding="utf-8")
    out = tmp_path / "generate-test.txt"
    out.write_text("T-0\t今天,下雨\nD-0\t-0.1\t今天，下雨\nT-1\t你好\nD-1\t-0.1\t你好\n", encoding="utf-8")
    cli_main([str(out), "--manifest", str(manifest), "--char-level"])
    lines = capsys.readouterr().out.splitlines()
    assert "BLEU-4 100.00" in lines[0] and lines[-1] == f"references: the raw tgt_text of {manifest}"
    cli_main([str(out), "--manifest", str(manifest), "--char-level", "--references", "generate"])
    lines = capsys.readouterr().out.splitlines()
    assert "BLEU-4 100.00" not in lines[0] and lines[-1].startswith("references: fairseq-generate's T- lines")


def write_nbest_output(path, hypotheses):
    """A fairseq-generate ``--nbest`` output: per id its T- line, then its H-/D- lines, best first
    (scores decreasing, as fairseq-generate sorts them)."""
    lines = []
    for i, hyps in hypotheses.items():
        lines.append(f"T-{i}\tref {i}")
        for rank, h in enumerate(hyps):
            lines += [f"H-{i}\t{-0.1 * (rank + 1)}\t▁{h}", f"D-{i}\t{-0.1 * (rank + 1)}\t{h}"]
    path.write_text("\n".join(lines + ["Generate test with beam=5: BLEU = 1"]) + "\n")
    return str(path)


def test_nbest_output_scores_the_best_hypothesis_of_each_id(tmp_path, capsys):
    out = write_nbest_output(tmp_path / "generate-test.txt", {
        0: ["ref 0", "ref zero", "wrong"], 1: ["ref 1", "wrong", "ref one"],
    })
    output = read_generate_file(out)
    assert output.hypotheses[0] == ["ref 0", "ref zero", "wrong"]
    assert best_rows(output) == {0: ("ref 0", "ref 0"), 1: ("ref 1", "ref 1")}
    assert nbest_note(output) == "n-best output (3 per id): scoring the best hypothesis of each (its first D- line)"
    assert read_generate_output(out) == (["ref 0", "ref 1"], ["ref 0", "ref 1"])
    cli_main([out])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("sentences 2 | ROUGE-L 100.00 | BLEU-1 100.00")  # not the last (worst) ones
    assert lines[-2] == "hypotheses: n-best output (3 per id): scoring the best hypothesis of each (its first D- line)"
    uneven = read_generate_file(write_nbest_output(tmp_path / "uneven.txt", {0: ["a", "b"], 1: ["c"]}))
    assert nbest_note(uneven).startswith("n-best output (up to 2 per id)")
    cli_main([write_output(tmp_path / "one.txt", [0, 1])])
    assert "hypotheses:" not in capsys.readouterr().out  # one hypothesis per id: nothing to say


def test_two_runs_appended_into_one_file_are_refused(tmp_path, capsys):
    first = write_output(tmp_path / "run1.txt", [0, 1])
    appended = tmp_path / "generate-test.txt"
    appended.write_text(open(first).read() * 2)
    with pytest.raises(ValueError) as e:
        read_generate_file(str(appended))
    assert str(e.value) == (
        f"{appended} line 8: id 0 repeats (its T- line is also on line 1): the file holds the output of "
        "more than one fairseq-generate run; score each run's output file alone"
    )
    with pytest.raises(SystemExit) as e:
        cli_main([str(appended)])
    assert str(e.value).startswith(f"fairseq-slt-score: error: {appended} line 8: id 0 repeats")
    assert capsys.readouterr().out == ""
    source = tmp_path / "with_source.txt"  # a repeated S- line alone is a second run as well
    source.write_text("S-0\ta\nT-0\tref 0\nD-0\t-0.1\tref 0\nS-0\ta\n")
    with pytest.raises(ValueError, match=r"line 4: id 0 repeats \(its S- line is also on line 1\)"):
        read_generate_file(str(source))


def test_reference_matching_normalises_and_skips_unknown_pieces():
    assert reference_matches("今天,下雨", "今天，下雨")  # sentencepiece's NFKC
    assert reference_matches("hello , world !", "hello, world!")  # detokenized spacing
    assert reference_matches("the<<unk>> rain", "the ünicorn rain")  # an unknown piece took a space
    assert reference_matches("<<unk>> rain <<unk>>", "Ωmega rain ¿")
    assert not reference_matches("the <<unk>> rain", "the rain")  # an unknown piece is some text
    assert not reference_matches("the rain", "the sun")
    assert not reference_matches("The Rain", "the rain")
    assert reference_matches("The Rain", "the rain", lowercase=True)
    assert reference_matches("<<unk>><<unk>>", "ab") and not reference_matches("<<unk>><<unk>>", "a")
    assert reference_matches("a<unk>a", "aba") and not reference_matches("a<unk>a", "aa")
    # no backtracking: many unknown pieces against another sentence answer at once
    assert not reference_matches("a<<unk>>" * 40 + "b", "a" * 2000)


def test_check_references_against_the_manifest(tmp_path):
    manifest = write_manifest(tmp_path / "test.tsv", 4)
    assert check_references("gen.txt", {i: f"ref {i}" for i in range(4)}, manifest) is None
    assert check_references("gen.txt", {0: "ref 0", 9: "beyond"}, manifest) is None  # ids past it: check_complete
    refs = {0: "ref 0", 1: "other 1", 2: "ref 2", 3: "other 3"}
    with pytest.raises(ValueError) as e:
        check_references("gen.txt", refs, manifest)
    assert str(e.value) == (
        f"2 of 4 references (T- lines) of gen.txt differ from the tgt_text of {manifest}, first T-1 "
        "'other 1' vs line 3 (id test_00001) 'ref 1'; pass the manifest of the decoded split, or "
        "--allow-reference-mismatch to score all the same"
    )
    warning = check_references("gen.txt", refs, manifest, allow_mismatch=True)
    assert warning.startswith("WARNING: 2 of 4 references") and warning.endswith("scoring all the same")


def test_cli_refuses_the_manifest_of_another_split_unless_allowed(tmp_path, capsys):
    out = write_output(tmp_path / "generate-test.txt", [0, 1, 2])
    dev = tmp_path / "dev.tsv"  # as many rows as the decoded split, other sentences
    dev.write_text("id\tvideo\tn_frames\ttgt_text\n" + "".join(f"dev_{i}\tv/{i}.mp4\t10\tdev {i}\n" for i in range(3)))
    with pytest.raises(SystemExit) as e:
        cli_main([out, "--manifest", str(dev)])
    assert str(e.value) == (
        f"fairseq-slt-score: error: 3 of 3 references (T- lines) of {out} differ from the tgt_text of "
        f"{dev}, first T-0 'ref 0' vs line 2 (id dev_0) 'dev 0'; pass the manifest of the decoded split, "
        "or --allow-reference-mismatch to score all the same"
    )
    assert capsys.readouterr().out == ""
    cli_main([out, "--manifest", str(dev), "--allow-reference-mismatch"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("WARNING: 3 of 3 references") and lines[1].startswith("sentences 3 | ROUGE-L 50.00")
    with pytest.raises(SystemExit) as e:
        cli_main([out, "--allow-reference-mismatch"])
    assert e.value.code == 2 and "--allow-reference-mismatch needs --manifest" in capsys.readouterr().err


def test_cli_accepts_the_right_manifest_despite_unknown_pieces_and_case(tmp_path, capsys):
    manifest = tmp_path / "test.tsv"
    manifest.write_text("id\tvideo\tn_frames\ttgt_text\na\tv.mp4\t5\tThe Ünicorn, here.\nb\tw.mp4\t5\tgood day\n")
    out = tmp_path / "generate-test.txt"
    out.write_text(
        "T-0\tthe<<unk>> nicorn , here .\nD-0\t-0.1\tthe unicorn, here.\n"
        "T-1\tgood day\nD-1\t-0.1\tgood day\n", encoding="utf-8"
    )
    with pytest.raises(SystemExit) as e:  # case differs: only --lowercase scores it as equal
        cli_main([str(out), "--manifest", str(manifest)])
    assert "1 of 2 references (T- lines)" in str(e.value)
    cli_main([str(out), "--manifest", str(manifest), "--lowercase"])
    captured = capsys.readouterr()
    assert not captured.out.startswith("WARNING") and captured.out.startswith("sentences 2 |")
