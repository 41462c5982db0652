import numpy as np
import pytest
import sentencepiece
import torch
from fairseq.data import Dictionary

from fairseq_slt.data.data_cfg import SignDataConfig
from fairseq_slt.data.transforms import build_video_transform
from fairseq_slt.synthetic.grammar import sample_sentence, translate
from fairseq_slt.synthetic.open_grammar import GLOSS_CATEGORIES
from fairseq_slt.synthetic.render import SIGNS, render_sentence, signer_style
from fairseq_slt.synthetic.signs import INVENTORY_PATHS, INVENTORY_SHAPES, OPEN_SIGNS


def glove_masks(videos):
    """``N x D`` 0/1 silhouettes of the right (yellow) and left (cyan) gloves over all frames."""
    v = np.stack(videos).astype(np.int16)
    r, g, b = v[..., 0], v[..., 1], v[..., 2]
    right, left = (r > 180) & (g > 180) & (b < 120), (r < 120) & (g > 160) & (b > 180)
    return np.concatenate([right.reshape(len(v), -1), left.reshape(len(v), -1)], 1).astype(np.float32)


@pytest.mark.parametrize("inventory", ["demo", "open"])
def test_every_gloss_is_a_distinct_sign(inventory):
    signs = SIGNS if inventory == "demo" else OPEN_SIGNS
    combos = {(s.shape, s.place, s.path, s.two_hands) for s in signs.values()}
    assert len(combos) == len(signs)
    if inventory == "open":  # every gloss the open grammar can sign, and nothing else
        assert set(signs) == set(GLOSS_CATEGORIES) and len(signs) >= 250
        assert {s.shape for s in signs.values()} == set(INVENTORY_SHAPES)
        assert {s.path for s in signs.values()} == set(INVENTORY_PATHS)
    # rendered alone, by the same signer with the same draws, any two glosses move the gloved
    # hands differently: their silhouettes differ in at least 50 pixel-frames at 32 px
    names = sorted(signs)
    masks = glove_masks([render_sentence([g], 0, 32, 1, np.random.default_rng(0), signs=signs) for g in names])
    sq = masks.sum(1)
    differ = sq[:, None] + sq[None, :] - 2 * masks @ masks.T  # pixel-frames in one silhouette only
    np.fill_diagonal(differ, np.inf)
    i, j = np.unravel_index(differ.argmin(), differ.shape)
    assert differ.min() >= 50, (names[i], names[j], differ.min())


def test_target_is_a_translation_not_a_gloss_transcript():
    assert translate(["TOMORROW", "NORTH", "RAIN", "STRONG", "NOT"]) == (
        "tomorrow there will be no heavy rain in the north"
    )
    assert translate(["WEEKEND", "EAST", "WIND", "WEAK"]) == "there will be gentle wind in the east at the weekend"
    rng = np.random.default_rng(0)
    for _ in range(50):
        glosses, text = sample_sentence(rng)
        assert all(g in SIGNS for g in glosses)
        assert text != " ".join(glosses).lower()


def test_rendering_is_deterministic_and_signers_differ():
    a = render_sentence(["TODAY", "SOUTH", "SUN"], signer=0, size=32, seed=1, rng=np.random.default_rng(4))
    b = render_sentence(["TODAY", "SOUTH", "SUN"], signer=0, size=32, seed=1, rng=np.random.default_rng(4))
    assert a.dtype == np.uint8 and a.shape[1:] == (32, 32, 3)
    assert np.array_equal(a, b)
    s0, s1 = signer_style(0, 1), signer_style(1, 1)
    assert not np.allclose(s0.background, s1.background)
    # different glosses move the hands differently
    c = render_sentence(["TODAY", "NORTH", "SUN"], signer=0, size=32, seed=1, rng=np.random.default_rng(4))
    n = min(len(a), len(c))
    moved = np.abs(a[:n].astype(int) - c[:n].astype(int)).max(-1) > 40  # T x H x W
    assert moved.any(axis=(1, 2)).sum() > n // 4


def test_generated_corpus_is_complete(tiny_corpus):
    for split, n in (("train", 12), ("dev", 4), ("test", 5)):
        lines = (tiny_corpus / f"{split}.tsv").read_text().splitlines()
        assert lines[0].split("\t")[:4] == ["id", "video", "n_frames", "tgt_text"]
        assert len(lines) == n + 1
    assert len(list((tiny_corpus / "frames" / "test").iterdir())) == 5
    # the data config names the dictionary and the sentencepiece model, which cover every target
    cfg = SignDataConfig(str(tiny_corpus / "config.yaml"))
    assert cfg.vocab_filename == str(tiny_corpus / "dict.txt")
    d = Dictionary.load(cfg.vocab_filename)
    spm = sentencepiece.SentencePieceProcessor(model_file=cfg.bpe_tokenizer["sentencepiece_model"])
    for line in (tiny_corpus / "train.tsv").read_text().splitlines()[1:]:
        pieces = spm.encode(line.split("\t")[3], out_type=str)
        assert pieces and all(d.index(p) != d.unk() for p in pieces), pieces


def test_train_transform_is_consistent_over_time():
    torch.manual_seed(0)
    frame = torch.randint(0, 255, (1, 40, 40, 3), dtype=torch.uint8)
    video = frame.repeat(6, 1, 1, 1)
    train = build_video_transform(40, 32, train=True, rotate=30, scale=0.2, translate=4, p=1.0)
    out = train(video)
    assert out.shape == (6, 3, 32, 32)
    for t in range(1, 6):  # one random crop/rotation/scale/shift for the whole video
        assert torch.equal(out[t], out[0])
    ev = build_video_transform(40, 32, train=False)
    torch.testing.assert_close(ev(video), ev(video))
    # eval: centre crop, ImageNet normalisation
    x = ev(frame)[0]
    ref = frame[0, 4:36, 4:36].permute(2, 0, 1).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    torch.testing.assert_close(x, (ref - mean) / std, atol=1e-5, rtol=1e-5)
