"""mBART from where it is held: the released fairseq archive (legacy layout), a Hugging Face
folder (checked against transformers itself), our own directories; dict.txt's order; checkpoint
files that cannot be read; ResNet-18 weight files."""

import fractions
import logging
import os
import pickle
import re
import shutil
from argparse import Namespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from fairseq.data import Dictionary
from helpers import LANGS, TEXTS, StubTask, build_stage2

from fairseq_slt.checkpoints import CheckpointError, RefusedPickleError, load_checkpoint_state
from fairseq_slt.cli.convert_mbart import main as convert_main
from fairseq_slt.mbart import DICT_KEY, dict_sha256
from fairseq_slt.mbart.trim import trim
from fairseq_slt.models.slt_mbart import MBART_ARCH_KEYS, SLTMBartModel
from fairseq_slt.models.visual_frontend import build_resnet18
from fairseq_slt.tasks.target_dictionary import add_mbart_symbols

MBART_PREFIXES = ("encoder.visual.", "encoder.adapter.")


def mbart_weights(model: nn.Module) -> dict:
    return {k: v for k, v in model.state_dict().items() if not k.startswith(MBART_PREFIXES)}


def assert_same_mbart(a: nn.Module, b: nn.Module) -> None:
    wa, wb = mbart_weights(a), mbart_weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


# -- the released fairseq archive (mbart.cc25 of early 2020): legacy layout ---------------------


def legacy_args(current: Namespace) -> Namespace:
    """A complete training Namespace of fairseq's mbart_large with ``current``'s sizes and field
    names of its time (``max_positions``, ``min_lr``; no fields added since)."""
    from fairseq import options

    args = options.parse_args_and_arch(options.get_training_parser(), [
        "/data/cc25", "--task", "multilingual_denoising", "--arch", "mbart_large", "--langs", LANGS,
    ])
    for key in MBART_ARCH_KEYS + ("decoder_input_dim", "decoder_output_dim"):
        setattr(args, key, getattr(current, key))  # mBART was trained with --*-normalize-before
    args.max_positions = current.max_source_positions
    del args.max_source_positions, args.max_target_positions
    args.min_lr = -1.0
    del args.stop_min_lr
    for late in ("spectral_norm_classification_head", "quant_noise_pq", "checkpoint_activations"):
        if hasattr(args, late):  # fields added to fairseq since
            delattr(args, late)
    return args


def legacy_weights(current: dict) -> dict:
    """A current state dict in the old layout: no output projection, a fused ``in_proj`` (older
    still), a ``_float_tensor`` entry; ``encoder.version`` / ``decoder.version`` stay."""
    old = {k: v.clone() for k, v in current.items() if k != "decoder.output_projection.weight"}
    attn = "encoder.layers.0.self_attn."
    for part in ("weight", "bias"):
        old[attn + "in_proj_" + part] = torch.cat([old.pop(f"{attn}{p}_proj.{part}") for p in "qkv"])
    old["_float_tensor"] = torch.FloatTensor(1)
    return old


def save_legacy_dir(src, out, extra_state=None) -> None:
    """``src`` (an mBART directory of ours) as the released archive would hold it: legacy args and
    weights, training state, torch's pre-1.6 file format, no dict.txt checksum."""
    out.mkdir()
    for name in ("dict.txt", "sentence.bpe.model"):
        shutil.copyfile(src / name, out / name)
    current = torch.load(src / "model.pt")
    embed = current["model"]["encoder.embed_tokens.weight"]
    state = {
        "args": legacy_args(current["args"]),
        "model": legacy_weights(current["model"]),
        "optimizer_history": [{"criterion_name": "CrossEntropyCriterion", "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": np.float64(3.5)}, "num_updates": 500000}],
        "last_optimizer_state": {"state": {0: {"exp_avg": torch.zeros_like(embed)}}, "param_groups": [{"lr": 0.0}]},
        "extra_state": {"epoch": 3, "val_loss": np.float64(3.5), "train_iterator": {"epoch": 3}, **(extra_state or {})},
    }
    torch.save(state, out / "model.pt", _use_new_zipfile_serialization=False)


@pytest.fixture(scope="module")
def legacy_dir(mbart_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("legacy") / "mbart.cc25"
    save_legacy_dir(mbart_dir, out)
    return out


def test_legacy_archive_loads_in_stage2_like_fairseq(legacy_dir, mbart_dir, stage1_ckpt, caplog):
    from fairseq import checkpoint_utils

    # fairseq's own loader reads the fixture as an old checkpoint (its args upgrade applies)
    upgraded = checkpoint_utils.load_checkpoint_to_cpu(str(legacy_dir / "model.pt"))
    assert upgraded["cfg"].model.max_source_positions == 64 and upgraded["cfg"].model.arch == "mbart_large"
    with caplog.at_level(logging.WARNING):
        legacy, _ = build_stage2(legacy_dir, stage1_ckpt[0])
    assert "stores no checksum of its dict.txt" in caplog.text and "cannot be checked" in caplog.text
    current, _ = build_stage2(mbart_dir, stage1_ckpt[0])
    assert_same_mbart(legacy, current)  # every weight, the fused in_proj split by fairseq's upgrade


def test_trim_accepts_the_legacy_archive(legacy_dir, mbart_dir, tmp_path):
    from fairseq import checkpoint_utils

    stats = trim(str(legacy_dir), TEXTS, str(tmp_path / "from_legacy"))
    trim(str(mbart_dir), TEXTS, str(tmp_path / "from_current"))
    a, b = (load_checkpoint_state(str(tmp_path / d / "model.pt")) for d in ("from_legacy", "from_current"))
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["last_optimizer_state"] is None and "val_loss" not in a["extra_state"]  # no training state
    assert a[DICT_KEY]["sha256"] == dict_sha256(str(tmp_path / "from_legacy" / "dict.txt"))
    # the tied embeddings stay one tensor, counted once
    assert a["model"]["decoder.output_projection.weight"].data_ptr() == a["model"]["decoder.embed_tokens.weight"].data_ptr()
    assert stats["params_after"] < stats["params_before"]
    # fairseq's own loader reads what we write (training-state entries in the form it expects)
    assert checkpoint_utils.load_checkpoint_to_cpu(str(tmp_path / "from_legacy" / "model.pt"))["model"]


def test_refused_global_names_it_and_the_one_convert_command(mbart_dir, stage1_ckpt, tmp_path, caplog):
    src = tmp_path / "mbart.cc25"
    save_legacy_dir(mbart_dir, src, extra_state={"meters": fractions.Fraction(1, 3)})
    for load in (lambda: load_checkpoint_state(str(src / "model.pt")),
                 lambda: build_stage2(src, stage1_ckpt[0]),
                 lambda: trim(str(src), TEXTS, str(tmp_path / "t"))):
        with pytest.raises(RefusedPickleError) as info:
            load()
        message = str(info.value)
        assert "\n" not in message and str(src / "model.pt") in message and "fractions.Fraction" in message
        assert f"fairseq-slt-convert-mbart --trust-pickle --fairseq-dir {src} --out {src}.weights" in message
    # without --trust-pickle the converter refuses it too; with it, once, a weights-and-args directory
    with pytest.raises(RefusedPickleError):
        convert_main(["--fairseq-dir", str(src), "--out", str(tmp_path / "no")])
    with caplog.at_level(logging.WARNING):
        convert_main(["--trust-pickle", "--fairseq-dir", str(src), "--out", f"{src}.weights"])
    assert f"--trust-pickle: reading {src / 'model.pt'} with torch.load(weights_only=False)" in caplog.text
    converted = load_checkpoint_state(f"{src}.weights/model.pt")  # weights-only
    assert "meters" not in converted["extra_state"] and converted[DICT_KEY]
    model, _ = build_stage2(tmp_path / "mbart.cc25.weights", stage1_ckpt[0])
    assert_same_mbart(model, build_stage2(mbart_dir, stage1_ckpt[0])[0])
    # a single checkpoint file likewise
    single = tmp_path / "stage1_with_extras.pt"
    torch.save({"cfg": {"model": Namespace(arch="slt_lightt")}, "model": {"w": torch.ones(2)},
                "extra_state": {"x": fractions.Fraction(1, 2)}}, single)
    with pytest.raises(RefusedPickleError, match=f"--trust-pickle --checkpoint {single} --out {tmp_path}/stage1_with_extras.weights.pt"):
        load_checkpoint_state(str(single))
    convert_main(["--trust-pickle", "--checkpoint", str(single), "--out", str(tmp_path / "s.pt")])
    assert torch.equal(load_checkpoint_state(str(tmp_path / "s.pt"))["model"]["w"], torch.ones(2))


def test_unreadable_checkpoint_files_are_one_line_errors(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.zeros(1000)}}, good)
    legacy = tmp_path / "legacy.pt"
    torch.save({"model": {"w": torch.zeros(1000)}}, legacy, _use_new_zipfile_serialization=False)
    cases = {
        "empty.pt": (b"", "is empty"),
        "truncated.pt": (good.read_bytes()[:600], "is truncated or corrupt"),
        "truncated_legacy.pt": (legacy.read_bytes()[:300], "is truncated or corrupt"),
        "notes.pt": (b"not a checkpoint\n", "is not a torch checkpoint"),
        "plain.pkl": (pickle.dumps({"model": {}}), "is not a torch checkpoint"),
    }
    for name, (content, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint_state(str(path))
        assert expected in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value), name
    weights = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, weights)
    with pytest.raises(CheckpointError, match="is a torch file but not a fairseq checkpoint"):
        load_checkpoint_state(str(weights))
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint_state(str(tmp_path / "missing.pt"))


def test_mbart_weights_that_do_not_fit_are_named(mbart_dir, tmp_path):
    from fairseq_slt.mbart.legacy import load_mbart_dir

    broken = tmp_path / "broken"
    shutil.copytree(mbart_dir, broken)
    state = torch.load(broken / "model.pt")
    del state["model"]["decoder.layers.0.fc1.weight"]
    state["model"]["encoder.layers.1.fc2.bias"] = torch.zeros(7)
    torch.save(state, broken / "model.pt")
    with pytest.raises(ValueError) as info:
        load_mbart_dir(str(broken))
    message = str(info.value)
    assert f"the weights of {broken}/model.pt do not fit its configuration" in message
    assert "missing ['decoder.layers.0.fc1.weight']" in message and "encoder.layers.1.fc2.bias (7,) != (16,)" in message
    with pytest.raises(ValueError, match="is the mBART directory itself"):
        trim(str(mbart_dir), TEXTS, str(mbart_dir))


# -- dict.txt's order --------------------------------------------------------------------------


def swap_two_pieces(path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[0], lines[1] = lines[1], lines[0]
    path.write_text("".join(lines), encoding="utf-8")


def test_dict_in_another_order_is_refused(mbart_dir, stage1_ckpt, tmp_path):
    trimmed = tmp_path / "trimmed"
    trim(str(mbart_dir), TEXTS, str(trimmed))
    build_stage2(trimmed, stage1_ckpt[0])  # as written: accepted
    # a task dictionary (config.yaml's vocab_filename) in another order than mBART's dict.txt
    d = Dictionary.load(str(trimmed / "dict.txt"))
    d.symbols[4], d.symbols[5] = d.symbols[5], d.symbols[4]
    add_mbart_symbols(d, LANGS, "en_XX")
    args = Namespace(stage1_checkpoint=str(stage1_ckpt[0]), mbart_dir=str(trimmed), dropout=0.0)
    with pytest.raises(ValueError, match=f"is not {trimmed}/dict.txt in its order: line 1"):
        SLTMBartModel.build_model(args, StubTask(d))
    # mBART's own dict.txt reordered: same size, every check but the checksum passes
    swap_two_pieces(trimmed / "dict.txt")
    for load in (lambda: build_stage2(trimmed, stage1_ckpt[0]), lambda: trim(str(trimmed), TEXTS, str(tmp_path / "t"))):
        with pytest.raises(ValueError) as info:
            load()
        message = str(info.value)
        assert f"{trimmed}/dict.txt is not the dict.txt that {trimmed}/model.pt was written with" in message
        assert "put back the dict.txt written with model.pt" in message


# -- ResNet-18 weight files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet_ref():
    torch.manual_seed(0)
    return build_resnet18(None).state_dict()


def with_fc(state: dict) -> dict:
    return dict(state, **{"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)})


RESNET_FILES = {
    "torchvision": lambda sd: with_fc(sd),  # torchvision's resnet18-*.pth
    "state_dict_no_fc": lambda sd: {"state_dict": sd, "epoch": 90},  # without the classifier
    # torchvision's reference training script, DataParallel keys
    "reference_script": lambda sd: {"model": {f"module.{k}": v for k, v in with_fc(sd).items()},
                                    "optimizer": {"state": {}}, "epoch": 89, "args": Namespace(lr=0.1)},
}


@pytest.mark.parametrize("layout", sorted(RESNET_FILES))
def test_resnet18_accepts_torchvision_state_dicts_and_checkpoints(resnet_ref, tmp_path, layout):
    path = tmp_path / "resnet18.pth"
    torch.save(RESNET_FILES[layout](dict(resnet_ref)), path)
    net = build_resnet18(str(path))
    assert isinstance(net.fc, nn.Identity)
    for k, v in resnet_ref.items():
        if not k.startswith("fc."):
            assert torch.equal(net.state_dict()[k], v), k


def other_keys(sd):
    wrong = {k: v for k, v in sd.items() if not k.startswith("layer4.")}
    wrong["head.weight"] = torch.zeros(3)
    return wrong


RESNET_BAD = {
    "other_keys": (other_keys, ValueError, r"is not a torchvision ResNet-18 state dict: \d+ missing keys \['layer4.*unexpected \['head.weight'\]"),
    "pickled_model": (lambda sd: torchvision_resnet18(), ValueError, r"pickles torchvision.models.resnet.ResNet .*save its state dict"),
    "no_state_dict": (lambda sd: {"epoch": 3}, ValueError, "holds no ResNet-18 state dict"),
    "shape": (lambda sd: dict(sd, **{"conv1.weight": torch.zeros(8, 3, 7, 7)}), ValueError, "is not a ResNet-18: .*conv1.weight"),
    "text": (None, CheckpointError, "is not a torch checkpoint"),
}


def torchvision_resnet18():
    import torchvision

    return torchvision.models.resnet18(weights=None)


@pytest.mark.parametrize("case", sorted(RESNET_BAD))
def test_resnet18_refuses_other_files_naming_them(resnet_ref, tmp_path, case):
    make, error, message = RESNET_BAD[case]
    path = tmp_path / "weights.pth"
    if make is None:
        path.write_text("hello")
    else:
        torch.save(make(dict(resnet_ref)), path)
    with pytest.raises(error, match=message) as info:
        build_resnet18(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# -- a Hugging Face folder, checked against transformers itself --------------------------------


def train_mbart_spm(out) -> str:
    """A small sentencepiece model in mBART's layout (``<unk>``=0, ``<s>``=1, ``</s>``=2, no pad)."""
    import sentencepiece as sp

    (out / "text.txt").write_text("\n".join(TEXTS + ["extra words nobody uses here zebra quartz"]) + "\n")
    sp.SentencePieceTrainer.train(
        input=str(out / "text.txt"), model_prefix=str(out / "spm"), vocab_size=60, model_type="bpe",
        hard_vocab_limit=False, num_threads=1, minloglevel=2,
    )
    return str(out / "spm.model")


def randomize(model: nn.Module, seed: int = 0) -> None:
    """Move every parameter (layer norms, positions included) away from its initial value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A tiny random MBartForConditionalGeneration (d=16, 2+2 layers) and its MBartTokenizer,
    saved as facebook/mbart-large-cc25 holds them."""
    transformers = pytest.importorskip("transformers")
    work = tmp_path_factory.mktemp("hf_work")
    out = tmp_path_factory.mktemp("hf") / "mbart-large-cc25"
    out.mkdir()
    shutil.copyfile(train_mbart_spm(work), out / "sentencepiece.bpe.model")
    tokenizer = transformers.MBartTokenizer.from_pretrained(str(out))
    config = transformers.MBartConfig(
        vocab_size=len(tokenizer), d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
        scale_embedding=True, dropout=0.0, activation_function="gelu",
    )
    torch.manual_seed(0)
    model = transformers.MBartForConditionalGeneration(config).eval()
    randomize(model)
    model.save_pretrained(str(out))  # model.safetensors (tied weights stored once)
    tokenizer.save_pretrained(str(out))  # tokenizer.json
    return out, model


@pytest.fixture(scope="module")
def converted(hf_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted") / "mbart.cc25"
    convert_main(["--hf-dir", str(hf_dir[0]), "--out", str(out)])
    return out


def stage2_cc25(mbart_dir, stage1_path):
    d = Dictionary.load(str(mbart_dir / "dict.txt"))
    add_mbart_symbols(d, "cc25", "en_XX")
    args = Namespace(stage1_checkpoint=str(stage1_path), mbart_dir=str(mbart_dir), dropout=0.0)
    model = SLTMBartModel.build_model(args, StubTask(d)).eval()
    model.encoder.adapter = nn.Identity()  # the LLM-adapter's output is the token embedding
    return model, d


def ours_logits(model, src: torch.Tensor, lengths: torch.Tensor, prev: torch.Tensor):
    """Our slt_mbart encoder fed the token embeddings where the LLM-adapter's output goes, then
    our decoder: (encoder output B x T x D, logits B x T' x V)."""
    with torch.no_grad():
        enc = model.encoder.forward_features(model.encoder.embed_tokens(src), lengths)
        logits, _ = model.decoder(prev, encoder_out=enc)
    return enc["encoder_out"][0].transpose(0, 1), logits


def test_hf_conversion_gives_transformers_logits(hf_dir, converted, stage1_ckpt):
    from transformers import MBartTokenizer

    hf_path, hf_model = hf_dir
    model, d = stage2_cc25(converted, stage1_ckpt[0])
    # HF's tokenizer ids are fairseq's dictionary ids: every piece, language code and <mask>
    tokenizer = MBartTokenizer.from_pretrained(str(hf_path))
    assert len(tokenizer) == len(d)
    for i in range(len(d)):
        token = d[i][1:-1] if d[i].startswith("[") else d[i]
        assert tokenizer.convert_tokens_to_ids(token) == i, (i, d[i])
    # the same source and target tokens, the second source padded
    en = d.index("[en_XX]")
    src = torch.tensor([[8, 12, 20, 9, 2, en], [15, 30, 11, 2, en, 1]])
    mask = src.ne(1)
    lengths = mask.sum(1)
    prev = torch.tensor([[en, 8, 12, 20], [en, 15, 30, 11]])
    with torch.no_grad():
        ref = hf_model(input_ids=src, attention_mask=mask.long(), decoder_input_ids=prev)
    enc, logits = ours_logits(model, src, lengths, prev)
    torch.testing.assert_close(enc[mask], ref.encoder_last_hidden_state[mask], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits, ref.logits, rtol=1e-4, atol=1e-4)
    assert ref.logits.std() > 0.5  # a random model far from its init: the comparison is not trivial


def test_trimmed_hf_conversion_keeps_the_logits_of_kept_tokens(converted, stage1_ckpt, tmp_path):
    import sentencepiece as sp

    trimmed = tmp_path / "trimmed"
    trim(str(converted), TEXTS, str(trimmed))
    full, full_d = stage2_cc25(converted, stage1_ckpt[0])
    small, small_d = stage2_cc25(trimmed, stage1_ckpt[0])
    spm = sp.SentencePieceProcessor(model_file=str(trimmed / "sentence.bpe.model"))
    pieces = " ".join(spm.encode(TEXTS[0], out_type=str))
    ids = {name: dd.encode_line(pieces, add_if_not_exist=False).long() for name, dd in (("full", full_d), ("small", small_d))}
    assert small_d.unk() not in ids["small"].tolist()
    out = {}
    for name, model, dd in (("full", full, full_d), ("small", small, small_d)):
        prev = torch.cat([torch.tensor([dd.index("[en_XX]")]), ids[name][:-1]])[None]
        out[name] = ours_logits(model, ids[name][None], torch.tensor([len(ids[name])]), prev)[1]
    kept = [full_d.index(small_d[i]) for i in range(len(small_d))]
    torch.testing.assert_close(out["small"], out["full"][..., kept], rtol=1e-5, atol=1e-5)


def test_hf_pytorch_model_bin_converts_to_the_same_weights(hf_dir, converted, tmp_path):
    hf_path, hf_model = hf_dir
    bin_dir = tmp_path / "bin"
    shutil.copytree(hf_path, bin_dir)
    os.remove(bin_dir / "model.safetensors")
    torch.save(hf_model.state_dict(), bin_dir / "pytorch_model.bin")  # all names, lm_head included
    os.remove(bin_dir / "tokenizer.json")  # no tokenizer.json: cc25's languages, by their count
    convert_main(["--hf-dir", str(bin_dir), "--out", str(tmp_path / "out")])
    a, b = (load_checkpoint_state(str(p / "model.pt")) for p in (tmp_path / "out", converted))
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert (tmp_path / "out" / "dict.txt").read_text() == (converted / "dict.txt").read_text()
    assert a[DICT_KEY] == b[DICT_KEY]
    args = a["args"]  # a complete fairseq training Namespace, as the released archive stores
    assert (args.arch, args.task, args.encoder_layers, args.encoder_embed_dim) == ("mbart_large", "multilingual_denoising", 2, 16)
    assert args.encoder_normalize_before and args.layernorm_embedding and not args.no_scale_embedding
    from fairseq import checkpoint_utils

    assert checkpoint_utils.load_checkpoint_to_cpu(str(converted / "model.pt"))["cfg"].model.arch == "mbart_large"


def test_bad_hf_folders_are_named(hf_dir, tmp_path):
    import json

    from fairseq_slt.mbart.convert_hf import convert_hf

    hf_path, hf_model = hf_dir

    def variant(name, edit):
        path = tmp_path / name
        shutil.copytree(hf_path, path)
        edit(path)
        return str(path)

    def set_config(**kw):
        def edit(path):
            config = json.loads((path / "config.json").read_text())
            config.update(kw)
            (path / "config.json").write_text(json.dumps(config))
        return edit

    def biased(path):
        sd = hf_model.state_dict()
        sd["final_logits_bias"] = torch.ones_like(sd["final_logits_bias"])
        os.remove(path / "model.safetensors")
        torch.save(sd, path / "pytorch_model.bin")

    def shuffled_tokenizer(path):
        tok = json.loads((path / "tokenizer.json").read_text())
        vocab = tok["model"]["vocab"]
        vocab[5], vocab[6] = vocab[6], vocab[5]
        (path / "tokenizer.json").write_text(json.dumps(tok))

    cases = [
        (variant("bart", set_config(model_type="bart")), ValueError, "model_type is 'bart', not 'mbart'"),
        (variant("no_spm", lambda p: os.remove(p / "sentencepiece.bpe.model")), FileNotFoundError, "has no sentencepiece.bpe.model"),
        (variant("no_config", lambda p: os.remove(p / "config.json")), FileNotFoundError, "has no config.json"),
        (variant("no_weights", lambda p: os.remove(p / "model.safetensors")), FileNotFoundError, "has no weights"),
        (variant("bias", biased), ValueError, "final_logits_bias is not zero"),
        (variant("vocab", set_config(vocab_size=99)), ValueError, "config.json says vocab_size 99"),
        (variant("tok", shuffled_tokenizer), ValueError, "tokenizer.json: id 5 is"),
        (variant("pad", set_config(pad_token_id=0)), ValueError, "special token ids"),
    ]
    for path, error, message in cases:
        with pytest.raises(error, match=message) as info:
            convert_hf(path, str(tmp_path / "out"))
        assert path in str(info.value) and "\n" not in str(info.value)
    no_tok = variant("no_tok", lambda p: os.remove(p / "tokenizer.json"))
    with pytest.raises(ValueError, match="--langs has 2 languages but the embeddings of .* have 26 rows"):
        convert_hf(no_tok, str(tmp_path / "out"), ["de_DE", "en_XX"])


def test_convert_mbart_answers_a_bad_source_with_one_line(hf_dir, tmp_path):
    import subprocess

    from helpers import BIN_DIR
    from fairseq_slt.cli.convert_mbart import cli_main
    from fairseq_slt.data.vocab import train_sentencepiece

    def variant(name, edit):
        path = tmp_path / name
        shutil.copytree(hf_dir[0], path)
        edit(path)
        return path

    def truncate(path):
        data = (path / "model.safetensors").read_bytes()
        (path / "model.safetensors").write_bytes(data[: len(data) - 100])

    def fairseq_layout_spm(path):  # <s> 0, <pad> 1, </s> 2, <unk> 3: fairseq's ids, not mBART's
        spm = train_sentencepiece(TEXTS, str(tmp_path / "fairseq_spm"), 40, "bpe")
        shutil.copyfile(spm, path / "sentencepiece.bpe.model")

    size = (hf_dir[0] / "model.safetensors").stat().st_size
    cases = {
        "json": (lambda p: (p / "config.json").write_text('{"model_type": "mbart",'),
                 "config.json: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 24 "
                 "(char 23)); restore the file (save_pretrained writes it)"),
        "truncated": (truncate, f"model.safetensors: truncated ({size - 100} bytes; its header needs {size}); copy "
                                "the file again"),
        "layout": (fairseq_layout_spm, "sentencepiece.bpe.model: its special pieces are at ids [0, 1, 2, 3] (<unk> "
                                       "at 3); mBART's has <unk> 0, <s> 1, </s> 2 and no others"),
        "not_spm": (lambda p: (p / "sentencepiece.bpe.model").write_bytes(b"not a model"),
                    "sentencepiece.bpe.model: not a sentencepiece model ("),
    }
    for name, (edit, message) in cases.items():
        path, out = variant(name, edit), tmp_path / f"out_{name}"
        with pytest.raises(SystemExit) as e:
            cli_main(["--hf-dir", str(path), "--out", str(out)])
        text = str(e.value.code)
        assert text.startswith(f"fairseq-slt-convert-mbart: error: {path}/") and message in text, text
        assert "\n" not in text and not out.exists()  # nothing written
    # as a user runs it: exit status 1, one line, no traceback
    proc = subprocess.run([os.path.join(BIN_DIR, "fairseq-slt-convert-mbart"), "--hf-dir", str(tmp_path / "truncated"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (f"fairseq-slt-convert-mbart: error: {tmp_path}/truncated/model."
                                                    f"safetensors: truncated ({size - 100} bytes; its header needs "
                                                    f"{size}); copy the file again")


@pytest.mark.slow
def test_convert_mbart_console_script(hf_dir, tmp_path):
    from helpers import run_cli

    out = run_cli(["fairseq-slt-convert-mbart", "--hf-dir", hf_dir[0], "--out", tmp_path / "m"])
    assert f"--mbart-dir {tmp_path / 'm'} --langs ar_AR,cs_CZ" in out
    assert sorted(os.listdir(tmp_path / "m")) == ["dict.txt", "model.pt", "sentence.bpe.model"]


def test_build_mbart_reports_progress_from_the_training_log(caplog):
    """The fairseq-train run of fairseq-slt-build-mbart: each num_updates line is a progress line
    with the rate since the first one and an ETA; a failing command shows its last lines."""
    import sys

    from fairseq_slt.cli.build_tiny_mbart import _run, progress_line

    assert progress_line(150, 600, 30.0, 5.0) == (
        "denoising: 150/600 updates (25%), 0:00:30 elapsed, 5.00 updates/s, ETA 0:01:30"
    )
    assert progress_line(1, 600, 3.0, 0.0).endswith("ETA unknown")
    script = (
        "import time\n"
        "for n in (10, 20, 30):\n"
        "    print(f'epoch 001:  {n} / 30 loss=5.1, num_updates={n}, lr=0.001', flush=True); time.sleep(0.05)\n"
        "print('epoch 001 | loss 5.0 | num_updates 30')\n"
        "print('train | epoch 001 | loss=5.0, num_updates=30')\n"
    )
    with caplog.at_level(logging.INFO, logger="fairseq_slt.cli.build_tiny_mbart"):
        _run([sys.executable, "-c", script], updates=30)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("denoising:")]
    assert [line.split(" updates")[0] for line in lines] == ["denoising: 10/30", "denoising: 20/30", "denoising: 30/30"]
    assert all("ETA " in line for line in lines) and lines[-1].endswith("ETA 0:00:00")
    with pytest.raises(RuntimeError, match=r"failed \(exit status 3\):\nlast words"):
        _run([sys.executable, "-c", "print('last words'); raise SystemExit(3)"])


@pytest.mark.slow
def test_build_mbart_writes_weights_config_and_dict_checksum(tmp_path):
    from helpers import run_cli

    from fairseq_slt.mbart.legacy import load_mbart_dir

    (tmp_path / "train.en").write_text("\n".join(TEXTS) + "\n")
    out = tmp_path / "mbart.tiny"
    log = run_cli(["fairseq-slt-build-mbart", "--text", tmp_path / "train.en", "--out", out, "--dim", "16",
                   "--heads", "2", "--layers", "1", "--updates", "2", "--vocab-size", "40"])
    # which step runs, then fairseq-train's progress with an ETA
    steps = [line.split("| ")[-1] for line in log.splitlines() if "| step " in line]
    assert [s[:9] for s in steps] == ["step 1/3:", "step 2/3:", "step 3/3:"], log[-3000:]
    assert "sentencepiece" in steps[0] and "fairseq-preprocess" in steps[1] and "2 updates" in steps[2]
    assert re.search(r"denoising: 1/2 updates \(50%\), 0:00:\d\d elapsed, [\d.]+ updates/s, ETA 0:\d\d:\d\d", log)
    assert "denoising: 2/2 updates (100%)" in log and "ETA 0:00:00" in log
    state, args = load_mbart_dir(str(out))
    assert state[DICT_KEY]["sha256"] == dict_sha256(str(out / "dict.txt"))
    assert state["last_optimizer_state"] is None and args.encoder_layers == 1
