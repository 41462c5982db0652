"""The open grammar benchmark corpus (``fairseq-slt-synth --grammar open``), its splits, text
corpus and harder video, and the diagnostics of ``fairseq-slt-score`` (distinct hypotheses,
per-slot accuracy)."""

import collections
import csv
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from helpers import synth_args
from fairseq_slt.cli.score import cli_main as score_main
from fairseq_slt.scoring import format_diversity, hypothesis_diversity
from fairseq_slt.synthetic.corpus import gloss_references
from fairseq_slt.synthetic import corpus
from fairseq_slt.synthetic import generate as generate_module
from fairseq_slt.synthetic.effects import EFFECTS, parse_effects, upsample
from fairseq_slt.synthetic.generate import complete_args, generate, get_parser
from fairseq_slt.synthetic.grammar import sample_demo_sentence, sample_sentence
from fairseq_slt.synthetic.open_grammar import BUILDERS, GLOSS_CATEGORIES, sample_open_sentence
from fairseq_slt.synthetic.open_grammar import lexicon as L
from fairseq_slt.synthetic.open_grammar.common import Time, copula, sign_number, verb_group
from fairseq_slt.synthetic.open_grammar.life import inverted_vp, statement_vp
from fairseq_slt.synthetic.render import render_sentence
from fairseq_slt.synthetic.sentence import Sentence, SentenceBuilder, word_tokens
from fairseq_slt.synthetic.signs import OPEN_SIGNS
from fairseq_slt.synthetic.slots import count_phrase, format_slot_accuracy, slot_accuracy, slot_hits

SYNTH = os.path.join(os.path.dirname(sys.executable), "fairseq-slt-synth")
OPEN = corpus.GRAMMARS["open"]
WEATHER = corpus.GRAMMARS["weather"]
DEMO = corpus.GRAMMARS["demo"]


def read_tsv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


# ---------------------------------------------------------------------------------- the grammar
def test_open_grammar_has_over_10k_distinct_sentences_and_a_few_hundred_words():
    stats = corpus.grammar_stats(OPEN, 12000)
    assert stats["distinct_sentences"] >= 10000
    assert stats["most_frequent_share"] < 0.005
    assert 300 <= stats["words"] <= 800 and stats["glosses_used"] >= 200
    assert stats["glosses_min"] <= 3 and stats["glosses_max"] >= 12 and stats["words_max"] >= 20
    demo = corpus.grammar_stats(DEMO, 5000)
    assert demo["distinct_sentences"] == 360 and demo["glosses_used"] == 15


def test_weather_grammar_is_the_open_grammars_weather_domain():
    """--grammar weather (the benchmark of docs/open_benchmark.md): the open grammar's weather
    clauses only, still mostly unique sentences, with fewer glosses than the open grammar."""
    stats = corpus.grammar_stats(WEATHER, 12000)
    assert stats["distinct_sentences"] >= 10000 and stats["most_frequent_share"] < 0.005
    assert 100 <= stats["glosses_used"] <= 130 and 150 <= stats["words"] <= 300
    rng = np.random.default_rng(0)
    life = {g for g, c in GLOSS_CATEGORIES.items() if c in ("object", "person")}
    for _ in range(300):
        glosses = WEATHER.sample(rng).glosses
        assert all(g in OPEN_SIGNS for g in glosses) and not set(glosses) & life


def test_open_sentences_are_translations_and_a_function_of_the_glosses():
    rng = np.random.default_rng(0)
    texts = collections.defaultdict(set)
    kinds = collections.Counter()
    for kind, build in BUILDERS.items():
        for _ in range(300):
            s = build(rng)
            kinds[kind] += 1
            texts[s.glosses].add(s.text)
            tokens = word_tokens(s.text)
            assert s.categories == tuple(GLOSS_CATEGORIES[g] for g in s.glosses)
            for w in s.words:  # every gloss's words are a phrase of the target
                assert count_phrase(tokens, word_tokens(w)) >= 1, (s, w)
            assert s.text != " ".join(s.glosses).lower()
    assert all(len(t) == 1 for t in texts.values())  # one translation per gloss sequence
    assert len(kinds) == 7


def test_open_grammar_reorders_inflects_and_inserts_function_words():
    b = SentenceBuilder()
    t, n = b.sign("YESTERDAY", "day"), b.sign("NOT", "negation")
    forms = L.VERBS["BUY"][0]
    assert statement_vp(forms, 9, "past", "3", None, None) == [("bought", 9)]
    assert statement_vp(forms, 9, "past", "3", None, n) == [("did", None), ("not", n), ("buy", 9)]
    assert statement_vp(forms, 9, "habitual", "3", None, None) == [("buys", 9)]
    assert statement_vp(forms, 9, "progressive", "pl", None, None) == [("are", None), ("buying", 9)]
    assert statement_vp(forms, 9, "habitual", "3", ("WANT", 4), None) == [("wants", 4), ("to", None), ("buy", 9)]
    assert inverted_vp(forms, 9, "habitual", "2", None) == ([("do", None)], [("buy", 9)])
    assert verb_group("past", L.TRENDS["RISE"], 3, ("MAYBE", 5), None) == [
        ("may", 5), ("have", None), ("risen", 3)]
    assert copula("future", False, None, n, there=True) == [
        ("there", None), ("will", None), ("be", None), ("no", n)]
    assert [w for w, _ in sign_number(SentenceBuilder(), -25)] == ["minus", "twenty", "five"]
    assert Time("TODAY", t, "MORNING", 2).pieces() == ([("this", t), ("morning", 2)], [])
    assert Time("MONDAY", t).pieces() == ([], [("on", None), ("monday", t)])


def test_demo_sentences_keep_their_draws_and_gain_target_words():
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(50):
        glosses, text = sample_sentence(a)
        s = sample_demo_sentence(b)
        assert list(s.glosses) == glosses and s.text == text
        assert all(count_phrase(word_tokens(text), word_tokens(w)) for w in s.words)
    assert sample_demo_sentence(np.random.default_rng(0)).words[-1] in word_tokens(
        sample_demo_sentence(np.random.default_rng(0)).text)


def test_every_open_gloss_has_a_sign():
    assert set(OPEN_SIGNS) == set(GLOSS_CATEGORIES)
    rng = np.random.default_rng(1)
    for _ in range(500):
        assert all(g in OPEN_SIGNS for g in sample_open_sentence(rng).glosses)


# ----------------------------------------------------------------------------------- the splits
def test_sentence_split_keeps_dev_and_test_targets_out_of_train():
    sizes = {"train": 400, "dev": 60, "test": 60}
    for grammar in (OPEN, WEATHER, DEMO):
        plan = corpus.plan_corpus(grammar, 1, sizes, 6, by_sentence=True)
        texts = {split: {s.sentence.text for s in plan[split]} for split in corpus.SPLITS}
        assert not texts["train"] & (texts["dev"] | texts["test"])
        assert not texts["dev"] & texts["test"]
        assert [len(plan[s]) for s in corpus.SPLITS] == [400, 60, 60]
    # without it the demo's 360 sentences repeat across the splits (the README's demo)
    plan = corpus.plan_corpus(DEMO, 1, sizes, 6)
    train = {s.sentence.text for s in plan["train"]}
    assert sum(s.sentence.text in train for s in plan["test"]) > 40


def test_default_demo_plan_is_the_original_draw_sequence():
    plan = corpus.plan_corpus(DEMO, 5, {"train": 20, "dev": 5, "test": 5}, 6)
    for split_id, split in enumerate(corpus.SPLITS):
        for i, sample in enumerate(plan[split]):
            rng = np.random.default_rng([5, split_id, i])
            glosses, text = sample_sentence(rng)
            assert (list(sample.sentence.glosses), sample.sentence.text) == (glosses, text)
            assert sample.signer == int(rng.integers(6))
            assert sample.rng.bit_generator.state == rng.bit_generator.state


def test_signer_split_holds_out_dev_and_test_signers():
    assert corpus.signer_pools(6, True) == {"train": [0, 1, 2, 3], "dev": [4], "test": [5]}
    assert corpus.signer_pools(8, True, held_out=2)["test"] == [6, 7]
    assert corpus.signer_pools(3, False)["train"] is None
    with pytest.raises(ValueError, match="needs at least 5 signers"):
        corpus.signer_pools(4, True, held_out=2)
    plan = corpus.plan_corpus(OPEN, 2, {"train": 200, "dev": 20, "test": 20}, 6, by_signer=True)
    signers = {split: {s.signer for s in plan[split]} for split in corpus.SPLITS}
    assert signers == {"train": {0, 1, 2, 3}, "dev": {4}, "test": {5}}


def test_text_corpus_avoids_dev_and_test_targets():
    plan = corpus.plan_corpus(DEMO, 1, {"train": 10, "dev": 60, "test": 60}, 6, by_sentence=True)
    held_out = {s.sentence.text for split in ("dev", "test") for s in plan[split]}
    text = corpus.sample_text_corpus(DEMO, 1, 500, held_out)
    assert len(text) == 500 and not set(text) & held_out
    assert corpus.sample_text_corpus(DEMO, 1, 50, held_out) == text[:50]  # deterministic by seed
    rng = np.random.default_rng(0)
    every_demo_sentence = {sample_demo_sentence(rng).text for _ in range(5000)}
    assert len(every_demo_sentence) == 360
    with pytest.raises(ValueError, match="too small"):
        corpus.sample_text_corpus(DEMO, 1, 1, every_demo_sentence)


@pytest.fixture(scope="module")
def open_corpus(tmp_path_factory):
    """A small rendered open-grammar corpus: sentence and signer split, text corpus, hard video."""
    out = tmp_path_factory.mktemp("open_corpus")
    generate(synth_args(out, grammar="open", n_train=10, n_dev=3, n_test=3, signers=4, size=32,
                        formats=["mp4"], split_by_signer=True, text_corpus_size=200, hard=True))
    return out


def test_generated_open_corpus_has_the_split_guarantees(open_corpus):
    rows = {split: read_tsv(open_corpus / f"{split}.tsv") for split in corpus.SPLITS}
    train = {r["tgt_text"] for r in rows["train"]}
    for split in ("dev", "test"):
        assert not {r["tgt_text"] for r in rows[split]} & train
    assert {r["signer"] for r in rows["train"]} <= {"signer00", "signer01"}
    assert {r["signer"] for r in rows["dev"]} == {"signer02"}
    assert {r["signer"] for r in rows["test"]} == {"signer03"}
    text = (open_corpus / "text_corpus.en").read_text(encoding="utf-8").splitlines()
    assert len(text) == 200
    assert not set(text) & {r["tgt_text"] for split in ("dev", "test") for r in rows[split]}
    for split in corpus.SPLITS:  # the gloss files follow the manifests row by row
        sentences = corpus.read_gloss_file(str(open_corpus / f"glosses_{split}.tsv"))
        assert [s.text for s in sentences] == [r["tgt_text"] for r in rows[split]]
        assert [" ".join(s.glosses) for s in sentences] == [r["glosses"] for r in rows[split]]


def test_generation_is_deterministic_by_seed(tmp_path):
    def make(name, seed):
        out = tmp_path / name
        generate(synth_args(out, grammar="open", seed=seed, n_train=3, n_dev=2, n_test=2, size=32,
                            formats=["frames"], source="frames", text_corpus_size=20,
                            effects="noise,speed"))
        return out

    a, b, c = make("a", 4), make("b", 4), make("c", 5)
    for name in ("train.tsv", "test.tsv", "glosses_dev.tsv", "text_corpus.en"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
        assert (a / name).read_bytes() != (c / name).read_bytes()
    frame = os.path.join("frames", "train", "train_00000", "images0005.png")
    assert (a / frame).read_bytes() == (b / frame).read_bytes()


def test_options_and_their_defaults(tmp_path):
    args = complete_args(synth_args(tmp_path))  # the demo's defaults are unchanged
    assert (args.grammar, args.sentence_split, args.split_by_signer, args.text_corpus_size) == (
        "demo", False, False, 0)
    assert args.effects == frozenset() and args.vocab_size == 40
    args = complete_args(get_parser().parse_args(["--out", "x", "--grammar", "open"]))
    assert args.sentence_split is True and args.vocab_size == 1000 and args.held_out_signers == 1
    args = complete_args(get_parser().parse_args(["--out", "x", "--grammar", "weather"]))
    assert args.sentence_split is True and args.vocab_size == 1000
    args = complete_args(get_parser().parse_args(["--out", "x", "--grammar", "open", "--no-sentence-split"]))
    assert args.sentence_split is False
    assert complete_args(get_parser().parse_args(["--out", "x", "--hard"])).effects == frozenset(EFFECTS)
    assert parse_effects("texture, jitter") == {"texture", "jitter"}
    with pytest.raises(ValueError, match="unknown video effect.*blur"):
        parse_effects("blur")
    with pytest.raises(ValueError, match="--text-corpus-size -1"):
        generate(synth_args(tmp_path / "x", text_corpus_size=-1))


def parse_stats(stdout):
    return dict(line.split(" ", 1) for line in stdout.splitlines())


@pytest.mark.slow
def test_console_script_prints_stats():
    proc = subprocess.run([SYNTH, "--grammar", "open", "--stats", "3000"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(parse_stats(proc.stdout)["distinct_sentences"]) > 2900


def test_cli_stats_and_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(generate_module, "setup_logging", lambda: None)
    generate_module.cli_main(["--grammar", "open", "--stats", "3000"])
    stats = parse_stats(capsys.readouterr().out)
    assert int(stats["distinct_sentences"]) > 2900 and int(stats["glosses_in_inventory"]) == len(OPEN_SIGNS)
    assert float(stats["glosses_mean"]) > 4 and int(stats["sampled"]) == 3000
    for argv, message in (
        ([], "--out is required"),
        (["--stats", "0"], "--stats 0: sample at least one sentence"),
        (["--out", str(tmp_path), "--split-by-signer", "--signers", "2"], "needs at least 3 signers"),
        (["--out", str(tmp_path), "--effects", "blur"], "unknown video effect"),
    ):
        with pytest.raises(SystemExit) as e:
            generate_module.cli_main(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "train.tsv").exists()  # nothing written on a bad option


# ------------------------------------------------------------------------------- harder video
def test_upsample_interpolates_linearly():
    grid = np.array([[0.0, 2.0], [4.0, 6.0]])[..., None]
    out = upsample(grid, 3, 3)[..., 0]
    np.testing.assert_allclose(out, [[0, 1, 2], [2, 3, 4], [4, 5, 6]])


def test_hard_video_has_the_right_shape_and_differs_from_easy():
    glosses = ["TOMORROW", "NORTH", "RAIN", "STRONG", "NOT"]
    easy = render_sentence(glosses, 1, 112, 1, np.random.default_rng(0), signs=OPEN_SIGNS)
    hard = render_sentence(glosses, 1, 112, 1, np.random.default_rng(0), signs=OPEN_SIGNS, effects=EFFECTS)
    again = render_sentence(glosses, 1, 112, 1, np.random.default_rng(0), signs=OPEN_SIGNS, effects=EFFECTS)
    for video in (easy, hard):
        assert video.dtype == np.uint8 and video.ndim == 4 and video.shape[1:] == (112, 112, 3)
    assert np.array_equal(hard, again)
    n = min(len(easy), len(hard))
    assert np.abs(easy[:n].astype(int) - hard[:n].astype(int)).mean() > 10
    # the harder background is textured: more spatial variation in a corner with no signer
    assert hard[:, :20, :20].std(axis=(1, 2)).mean() > 2 * easy[:, :20, :20].std(axis=(1, 2)).mean()
    # bare hands: no yellow glove pixel left
    yellow = lambda v: ((v[..., 0] > 200) & (v[..., 1] > 200) & (v[..., 2] < 100)).sum()  # noqa: E731
    assert yellow(easy) > 100 and yellow(hard) == 0


@pytest.mark.parametrize("effect", EFFECTS)
def test_each_effect_changes_the_video(effect):
    glosses = ["YESTERDAY", "MY", "MOTHER", "BOOK", "THREE", "BUY", "Q"]
    base = render_sentence(glosses, 0, 48, 2, np.random.default_rng(1), signs=OPEN_SIGNS)
    video = render_sentence(glosses, 0, 48, 2, np.random.default_rng(1), signs=OPEN_SIGNS, effects=[effect])
    assert video.shape[1:] == (48, 48, 3)
    assert video.shape != base.shape or not np.array_equal(video, base)
    assert np.array_equal(video, render_sentence(glosses, 0, 48, 2, np.random.default_rng(1),
                                                 signs=OPEN_SIGNS, effects=[effect]))


def decode_mp4(path):
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_generated_hard_corpus_is_rendered_with_effects(open_corpus, tiny_corpus):
    hard = decode_mp4(open_corpus / "videos" / "test" / "test_00000.mp4")
    row = read_tsv(open_corpus / "test.tsv")[0]
    assert len(hard) == int(row["n_frames"]) and hard.shape[1:] == (32, 32, 3)
    easy = decode_mp4(tiny_corpus / "videos" / "test" / "test_00000.mp4")  # the demo's, gloved
    # yellow glove pixels per frame: bare hands leave only a few (textured, lit background)
    yellow = lambda v: ((v[..., 0] > 200) & (v[..., 1] > 200) & (v[..., 2] < 100)).sum() / len(v)  # noqa: E731
    assert yellow(easy) > 10 and yellow(hard) < yellow(easy) / 5


# ---------------------------------------------------------------------------------- diagnostics
def test_hypothesis_diversity_counts_distinct_hypotheses():
    d = hypothesis_diversity(["a b", "a b", "a b", "c"], ["x", "y", "z", "x"])
    assert d == {"distinct_hypotheses": 2, "distinct_references": 3, "most_frequent": "a b",
                 "most_frequent_count": 3, "most_frequent_share": 0.75}
    assert format_diversity(d, 4) == (
        'distinct hypotheses 2 of 4 (references: 3) | most frequent 3 of 4 (75.00%): "a b"')
    assert format_diversity(hypothesis_diversity(["w " * 40], ["x"]), 1, width=10).endswith('"w w w w..."')


REF_A = Sentence(("TOMORROW", "NORTH", "RAIN", "STRONG", "NOT"),
                 ("day", "region", "weather", "intensity", "negation"),
                 ("tomorrow", "north", "rain", "heavy", "no"),
                 "tomorrow there will be no heavy rain in the north")
REF_B = Sentence(("LAST-WEEK", "BOOK", "TWO", "TWO", "Q"), ("day", "object", "number", "number", "question"),
                 ("last week", "books", "two", "two", "?"), "x")


def test_slot_hits_by_hand():
    assert slot_hits("tomorrow there will be heavy rain in the south", REF_A) == [True, False, True, True, False]
    assert slot_hits("", REF_A) == [False] * 5
    # phrases match contiguously; repeated words are clipped; "?" is a token of its own
    assert slot_hits("two books last week?", REF_B) == [True, True, True, False, True]
    assert slot_hits("two two books last of week", REF_B) == [False, True, True, True, False]
    assert count_phrase("a b a b a".split(), ["a", "b", "a"]) == 1


def test_slot_accuracy_overall_and_per_category():
    result = slot_accuracy(["tomorrow there will be heavy rain in the south", "two books last week?"],
                           [REF_A, REF_B])
    assert result["all"] == (7, 10)
    assert result["day"] == (2, 2) and result["region"] == (0, 1) and result["number"] == (1, 2)
    assert list(result)[0] == "all" and list(result)[1:] == sorted(list(result)[1:])
    by_gloss = slot_accuracy(["two books last week?"], [REF_B], by="gloss")
    assert by_gloss["TWO"] == (1, 2) and by_gloss["Q"] == (1, 1)
    assert format_slot_accuracy(by_gloss).startswith("per-slot accuracy 80.00% (4 of 5 glosses) | BOOK 100.00% (1/1)")
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        slot_accuracy(["a", "b"], [REF_A])


def write_generate(path, pairs):
    lines = []
    for i, (hyp, ref) in enumerate(pairs):
        lines += [f"T-{i}\t{ref}", f"H-{i}\t-0.1\t{hyp}", f"D-{i}\t-0.1\t{hyp}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def write_glosses(path, sentences):
    samples = [corpus.Sample(f"test_{i:05d}", s, 0, None) for i, s in enumerate(sentences)]
    corpus.write_gloss_file(str(path), samples)
    return str(path)


def test_score_cli_prints_diversity_and_per_slot_accuracy(tmp_path, capsys):
    ref_b = Sentence(REF_B.glosses, REF_B.categories, REF_B.words, "did you buy two two books last week?")
    glosses = write_glosses(tmp_path / "glosses_test.tsv", [REF_A, ref_b])
    out = write_generate(tmp_path / "generate-test.txt", [
        ("tomorrow there will be heavy rain in the south", REF_A.text),
        ("two books last week?", ref_b.text),
    ])
    score_main([out, "--glosses", glosses])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("sentences 2 | ROUGE-L ") and lines[1].startswith("sacrebleu signature")
    assert lines[2].startswith("distinct hypotheses 2 of 2 (references: 2) | most frequent 1 of 2 (50.00%)")
    assert lines[3] == (
        "per-slot accuracy 70.00% (7 of 10 glosses) | day 100.00% (2/2) | intensity 100.00% (1/1) | "
        "negation 0.00% (0/1) | number 50.00% (1/2) | object 100.00% (1/1) | question 100.00% (1/1) | "
        "region 0.00% (0/1) | weather 100.00% (1/1)"
    )
    # a template-collapsed model: one hypothesis for every video
    collapsed = write_generate(tmp_path / "collapsed.txt", [("there will be rain", REF_A.text)] * 3)
    score_main([collapsed])
    assert 'distinct hypotheses 1 of 3 (references: 1) | most frequent 3 of 3 (100.00%): "there will be rain"' in (
        capsys.readouterr().out)


def test_score_cli_refuses_the_gloss_file_of_another_split(tmp_path, capsys):
    glosses = write_glosses(tmp_path / "glosses_dev.tsv", [REF_A])
    other = write_generate(tmp_path / "g.txt", [("x", "something else entirely")])
    with pytest.raises(SystemExit) as e:
        score_main([other, "--glosses", glosses])
    assert "references differ from the targets of" in str(e.value)
    longer = write_generate(tmp_path / "g2.txt", [("x", REF_A.text), ("y", REF_A.text)])
    with pytest.raises(SystemExit) as e:
        score_main([longer, "--glosses", glosses])
    assert re.search(r"ids \[1\] but \S+ has only 1 rows", str(e.value))
    refs, differ = gloss_references(glosses, {0: ("h", REF_A.text.upper())}, lowercase=True)
    assert refs == [REF_A] and differ == []
