import pytest

from fairseq_slt.cli.score import lcs, read_generate_output, rouge_l_sentence, score


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
