"""Stage 2 over Hugging Face LLM folders (``--arch slt_hf``) on tiny models of each family."""

import os
import re
from argparse import Namespace

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from fairseq.data import Dictionary  # noqa: E402
from fairseq.sequence_generator import SequenceGenerator  # noqa: E402
from tiny_hf import ENCODER_DECODER, FAMILIES, TEXTS, save_tiny_llm  # noqa: E402

from fairseq_slt.hf.bpe import HFTokenizerBPE, HFTokenizerBPEConfig  # noqa: E402
from fairseq_slt.hf.folder import check_folder, weights_fingerprint  # noqa: E402
from fairseq_slt.hf.vocab import PAD_SYMBOL, hf_dictionary  # noqa: E402
from fairseq_slt.models.slt_hf import SLTHFModel, left_align  # noqa: E402
from fairseq_slt.models.slt_lightt import SLTLightTModel  # noqa: E402
from fairseq_slt.models.slt_lightt import base_architecture as lightt_arch  # noqa: E402

PROMPT = "translate the sign video:"


class StubTask:
    def __init__(self, d, from_checkpoint=False):
        self.target_dictionary = self.source_dictionary = d
        self.building_from_checkpoint = from_checkpoint


@pytest.fixture(scope="module")
def stage1_path(tmp_path_factory):
    """A tiny stage-1 checkpoint (its visual encoder: 8-channel sign-wise features)."""
    d = Dictionary()
    args = Namespace(arch="slt_lightt", encoder_embed_dim=16, encoder_ffn_embed_dim=32, encoder_layers=1,
                     decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2, temporal_dim=8,
                     temporal_module="K3,P2")
    lightt_arch(args)
    torch.manual_seed(1)
    model = SLTLightTModel.build_model(args, StubTask(d))
    path = tmp_path_factory.mktemp("stage1") / "checkpoint_best.pt"
    torch.save({"cfg": {"model": args}, "model": model.state_dict()}, path)
    return str(path)


@pytest.fixture(scope="module")
def llm_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("llms")
    return {family: save_tiny_llm(family, str(root / family)) for family in FAMILIES}


def build(folder, stage1_path, from_checkpoint=False, **kw):
    d = hf_dictionary(folder)
    args = Namespace(stage1_checkpoint=stage1_path, llm_dir=folder, llm_prompt=PROMPT, **kw)
    if from_checkpoint:  # as fairseq restores them from the checkpoint's cfg
        args.temporal_module, args.temporal_dim = "K3,P2", 8
    torch.manual_seed(2)
    model = SLTHFModel.build_model(args, StubTask(d, from_checkpoint))
    return model.eval(), d


def test_left_align_moves_each_row_to_the_end():
    x = torch.arange(1, 9, dtype=torch.float).view(2, 4, 1)
    out = left_align(x, torch.tensor([4, 2]))
    assert out[:, :, 0].tolist() == [[1, 2, 3, 4], [0, 0, 5, 6]]


@pytest.mark.parametrize("family", FAMILIES)
def test_dictionary_and_bpe_are_the_tokenizers(llm_dirs, family):
    from transformers import AutoTokenizer

    folder = llm_dirs[family]
    tok = AutoTokenizer.from_pretrained(folder)
    d = hf_dictionary(folder)
    bpe = HFTokenizerBPE(HFTokenizerBPEConfig(hf_tokenizer_dir=folder))
    # row i is token id i, the output layer's rows beyond the tokenizer included
    assert len(d) == len(tok) + 3 + (tok.pad_token_id in (None, tok.eos_token_id))
    assert d.eos() == tok.eos_token_id
    if tok.pad_token_id is None or tok.pad_token_id == tok.eos_token_id:
        assert d[d.pad()] == PAD_SYMBOL and d.pad() == len(d) - 1
    else:
        assert d.pad() == tok.pad_token_id
    for text in TEXTS:
        ids = d.encode_line(bpe.encode(text), add_if_not_exist=False, append_eos=False).tolist()
        assert ids == tok(text, add_special_tokens=False)["input_ids"]
        assert bpe.decode(d.string(torch.tensor(ids + [d.eos()]))) == text


@pytest.mark.parametrize("family", FAMILIES)
def test_logits_equal_the_hf_models_own_forward(llm_dirs, stage1_path, family):
    """The padded batch through the wrapper gives, row by row, the logits of the Hugging Face model's
    own forward on that row alone (input embeddings: prompt / visual prefix / target tokens)."""
    model, d = build(llm_dirs[family], stage1_path)
    llm, enc = model.decoder.llm, model.encoder
    feats, lengths = torch.randn(2, 5, 8), torch.tensor([5, 3])
    prev = torch.tensor([[d.eos(), 10, 11, 12], [d.eos(), 13, d.pad(), d.pad()]])
    with torch.no_grad():
        logits, _ = model(feats, lengths, prev)
        assert logits.shape == (2, 4, len(d))
        start = model.decoder.start_id
        for b, n in ((0, 4), (1, 2)):
            vis = enc.adapter(feats[b:b + 1, :lengths[b]])
            prompt = llm.get_input_embeddings()(enc.prompt_ids)[None]
            ids = prev[b:b + 1, :n].clone()
            ids[0, 0] = start
            if family in ENCODER_DECODER:
                ref = llm(inputs_embeds=torch.cat([prompt, vis], 1), decoder_input_ids=ids).logits
            else:
                x = torch.cat([vis, prompt, llm.get_input_embeddings()(ids)], 1)
                ref = llm(inputs_embeds=x).logits[:, -n:]
            torch.testing.assert_close(logits[b:b + 1, :n, :ref.size(-1)], ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_cached_and_uncached_beam_search_agree(llm_dirs, stage1_path, family):
    model, d = build(llm_dirs[family], stage1_path)
    sample = {"net_input": {"src_tokens": torch.randn(3, 6, 8), "src_lengths": torch.tensor([6, 4, 2])}}
    results = []
    for use_cache in (True, False):
        model.decoder.use_cache = use_cache
        gen = SequenceGenerator([model], d, beam_size=5, max_len_b=12, min_len=2)
        with torch.no_grad():
            hypos = gen.forward(sample)
        results.append([[(h["tokens"].tolist(), round(float(h["score"]), 4)) for h in beams] for beams in hypos])
    assert results[0] == results[1]
    assert any(len(beams[0][0]) > 2 for beams in results[0])  # decoded more than a step or two


def llm_weights(model):
    return {k: v.clone() for k, v in model.decoder.llm.state_dict().items() if ".lora_" not in k}


@pytest.mark.parametrize("family", ["t5", "llama"])
def test_lora_trains_only_the_adapter_and_lora_weights(llm_dirs, stage1_path, family):
    model, d = build(llm_dirs[family], stage1_path, llm_mode="lora", lora_rank=4)
    model.train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("encoder.adapter.") or ".lora_" in n for n in trainable)
    assert {p.param_group for n, p in model.named_parameters() if ".lora_" in n} == {"lora"}
    before_llm, before_lora = llm_weights(model), {n: p.clone() for n, p in model.named_parameters() if ".lora_" in n}
    before_visual = {k: v.clone() for k, v in model.encoder.visual_encoder.state_dict().items()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    prev = torch.tensor([[d.eos(), 10, 11, 12], [d.eos(), 13, 14, d.pad()]])
    for _ in range(2):  # LoRA's B starts at zero: the second step moves A too
        logits, _ = model(torch.randn(2, 6, 3, 32, 32), torch.tensor([6, 4]), prev)
        opt.zero_grad()
        logits.sum().backward()
        opt.step()
    after = llm_weights(model)
    assert all(torch.equal(before_llm[k], after[k]) for k in before_llm)
    assert all(torch.equal(v, model.encoder.visual_encoder.state_dict()[k]) for k, v in before_visual.items())
    moved = [n for n, p in model.named_parameters() if ".lora_" in n and not torch.equal(p, before_lora[n])]
    assert len(moved) == len(before_lora)


def test_lora_checkpoint_is_compact_and_reloads(llm_dirs, stage1_path, tmp_path):
    folder = llm_dirs["llama"]
    model, d = build(folder, stage1_path, llm_mode="lora")
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".lora_B" in n:
                p.normal_()  # a trained LoRA: its output differs from the base model's
    state = model.state_dict()
    llm_keys = [k for k in state if k.startswith("decoder.llm.")]
    assert llm_keys and all(".lora_" in k for k in llm_keys)
    n_llm = sum(p.numel() for p in model.decoder.llm.parameters())
    n_saved = sum(state[k].numel() for k in llm_keys)
    assert n_saved < 0.2 * n_llm
    assert state["decoder._extra_state"]["fingerprint"] == weights_fingerprint(folder)
    assert state["decoder._extra_state"]["mode"] == "lora"
    # a model built from the folder takes the checkpoint's LoRA and gives the same outputs
    again, _ = build(folder, stage1_path, from_checkpoint=True, llm_mode="lora")
    again.load_state_dict(state)
    feats, prev = torch.randn(1, 4, 8), torch.tensor([[d.eos(), 10, 11]])
    with torch.no_grad():
        torch.testing.assert_close(again(feats, torch.tensor([4]), prev)[0], model(feats, torch.tensor([4]), prev)[0])


def test_checkpoint_refused_with_another_llm_folder(llm_dirs, stage1_path, tmp_path):
    folder = llm_dirs["gpt2"]
    model, _ = build(folder, stage1_path, llm_mode="frozen")
    state = model.state_dict()
    other = save_tiny_llm("gpt2", str(tmp_path / "other_gpt2"), seed=5)  # same shapes, other weights
    again, _ = build(other, stage1_path, from_checkpoint=True, llm_mode="frozen")
    with pytest.raises(ValueError, match="was trained on the LLM folder .* holds other weights"):
        again.load_state_dict(state)


def test_full_mode_checkpoint_holds_the_llm(llm_dirs, stage1_path):
    model, _ = build(llm_dirs["t5"], stage1_path)
    state = model.state_dict()
    assert sum(1 for k in state if k.startswith("decoder.llm.")) == len(model.decoder.llm.state_dict())


def test_bad_folders_and_settings_are_refused(llm_dirs, stage1_path, tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        check_folder(str(tmp_path))
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in os.listdir(llm_dirs["llama"]):
        data = open(os.path.join(llm_dirs["llama"], name), "rb").read()
        if name == "config.json":
            data = data[:-10]
        elif name == "model.safetensors":
            data = data[: len(data) // 2]
        (broken / name).write_bytes(data)
    with pytest.raises(ValueError, match="config.json: not valid JSON"):
        check_folder(str(broken))
    (broken / "config.json").write_bytes(open(os.path.join(llm_dirs["llama"], "config.json"), "rb").read())
    with pytest.raises(ValueError, match="model.safetensors: truncated"):
        check_folder(str(broken))
    with pytest.raises(ValueError, match="--llm-dtype bfloat16 .* use --llm-mode lora or frozen"):
        build(llm_dirs["llama"], stage1_path, llm_dtype="bfloat16")
    # a task dictionary of another tokenizer
    args = Namespace(stage1_checkpoint=stage1_path, llm_dir=llm_dirs["llama"])
    with pytest.raises(ValueError, match="is not the tokenizer of --llm-dir"):
        SLTHFModel.build_model(args, StubTask(hf_dictionary(llm_dirs["gpt2"])))


def test_bfloat16_lora_llm_gives_float32_logits(llm_dirs, stage1_path):
    model, d = build(llm_dirs["qwen2"], stage1_path, llm_mode="lora", llm_dtype="bfloat16")
    assert {p.dtype for n, p in model.decoder.llm.named_parameters() if ".lora_" not in n} == {torch.bfloat16}
    logits, _ = model(torch.randn(2, 4, 8), torch.tensor([4, 2]), torch.tensor([[d.eos(), 5], [d.eos(), 6]]))
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


@pytest.fixture(scope="module")
def llm_corpus_dirs(tiny_corpus, tmp_path_factory):
    """A tiny T5 and a tiny Llama whose tokenizers were trained on the synthetic corpus's targets."""
    texts = [line.split("\t")[3] for split in ("train", "dev", "test")
             for line in (tiny_corpus / f"{split}.tsv").read_text().splitlines()[1:]]
    root = tmp_path_factory.mktemp("corpus_llms")
    return {family: save_tiny_llm(family, str(root / family), texts=texts) for family in ("t5", "llama")}


@pytest.mark.slow
@pytest.mark.parametrize("family,model_args", [
    ("t5", ["--llm-mode", "full", "--optimizer", "adam_grouped", "--group-lr-scales", "llm:0.1"]),
    ("llama", ["--llm-mode", "lora", "--lora-rank", "4", "--llm-prompt", PROMPT, "--optimizer", "adam"]),
])
def test_fairseq_train_and_generate_on_the_feature_cache(tiny_corpus, stage1_run, llm_corpus_dirs, tmp_path,
                                                         family, model_args):
    """Stock fairseq-train on the cached features, then fairseq-generate --beam 5 and fairseq-slt-score."""
    from helpers import PLUGIN_DIR, run_cli

    from fairseq_slt.checkpoints import load_checkpoint_state
    from fairseq_slt.inference import SignTranslator

    folder = llm_corpus_dirs[family]
    ckpt = stage1_run[0] / "checkpoint_last.pt"
    data = tmp_path / "data"  # the tiny corpus's manifests and videos, the LLM's tokenizer
    data.mkdir()
    for split in ("train", "dev", "test"):
        (data / f"{split}.tsv").write_text((tiny_corpus / f"{split}.tsv").read_text())
    (data / "config.yaml").write_text((tiny_corpus / "config.yaml").read_text().replace(
        "video_root: .", f"video_root: {tiny_corpus}").replace(
        "dict.txt", str(tiny_corpus / "dict.txt")).replace("spm.model", str(tiny_corpus / "spm.model")))
    run_cli(["fairseq-slt-cache-features", data, "--stage1-checkpoint", ckpt, "--out", data / "features",
             "--train-views", "1", "--splits", "train,dev,test"])
    run_cli(["fairseq-slt-data-config", data, "--out", "config_llm.yaml", "--llm-dir", folder,
             "--feature-cache", "features"])
    task = ["--user-dir", PLUGIN_DIR, "--task", "sign_translation", "--config-yaml", "config_llm.yaml"]
    save_dir = tmp_path / "ckpt"
    run_cli([
        "fairseq-train", data, *task, "--arch", "slt_hf", "--llm-dir", folder,
        "--stage1-checkpoint", ckpt, *model_args, "--valid-subset", "dev",
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.2", "--lr", "1e-3",
        "--max-tokens", "200", "--max-update", "4", "--save-dir", save_dir, "--num-workers", "0",
        "--no-progress-bar", "--log-interval", "1", "--no-epoch-checkpoints",
    ])
    state = load_checkpoint_state(str(save_dir / "checkpoint_last.pt"))
    assert state["model"]["decoder._extra_state"]["mode"] == model_args[1]
    out = run_cli([
        "fairseq-generate", data, *task, "--gen-subset", "test", "--path", save_dir / "checkpoint_last.pt",
        "--beam", "5", "--max-tokens", "400", "--max-len-b", "8", "--scoring", "sacrebleu",
        "--results-path", tmp_path / "gen",
    ])
    n_test = len((tiny_corpus / "test.tsv").read_text().splitlines()) - 1
    gen = (tmp_path / "gen" / "generate-test.txt").read_text()
    refs = sorted(line.split("\t", 1)[1] for line in gen.splitlines() if line.startswith("T-"))
    manifest = sorted(line.split("\t")[3] for line in (tiny_corpus / "test.tsv").read_text().splitlines()[1:])
    assert refs == manifest and len(refs) == n_test  # the tokenizer round-trips the targets
    assert len([line for line in gen.splitlines() if line.startswith("D-")]) == n_test
    scored = run_cli(["fairseq-slt-score", tmp_path / "gen" / "generate-test.txt", "--manifest",
                      tiny_corpus / "test.tsv"])
    assert re.search(rf"sentences {n_test} \| ROUGE-L [0-9.]+ \| BLEU-1 [0-9.]+", scored), out
    # fairseq-slt-translate's API reads the videos; the cache holds their evaluation view, so it
    # translates each as fairseq-generate did
    hyps = dict((int(i), h) for i, h in re.findall(r"^D-(\d+)\t[^\t]*\t(.*)$", gen, re.M))
    translator = SignTranslator.from_checkpoint(str(save_dir / "checkpoint_last.pt"), max_len_b=8, device="cpu")
    rows = [line.split("\t") for line in (data / "test.tsv").read_text().splitlines()[1:]]
    assert [translator.translate(str(tiny_corpus / r[1])).hypothesis for r in rows] == [hyps[i] for i in range(n_test)]
    audit = run_cli(["fairseq-slt-audit", save_dir / "checkpoint_last.pt"])
    assert re.search(rf"LLM .*\| {family}, [0-9.]+M parameters, .*trained {model_args[1]}", audit), audit


def test_decoding_ends_where_the_llms_positions_end(llm_dirs, stage1_path):
    """GPT-2's learned positions (128 in the tiny model) hold the prefix, the prompt and the
    hypothesis: beam search ends each hypothesis at the last position instead of failing; a
    training batch that does not fit is refused naming the remedies."""
    model, d = build(llm_dirs["gpt2"], stage1_path)
    assert model.decoder.n_positions == 128
    feats = torch.randn(2, 60, 8)
    sample = {"net_input": {"src_tokens": feats, "src_lengths": torch.tensor([60, 40])}}
    gen = SequenceGenerator([model], d, beam_size=2, max_len_b=200)
    with torch.no_grad():
        hypos = gen.forward(sample)
    prefix = 60 + model.encoder.prompt_ids.numel()  # left-padded: the longest prefix for both rows
    assert all(len(h["tokens"]) <= 128 - prefix for beams in hypos for h in beams)
    prev = torch.full((1, 128 - prefix + 1), 5)
    with pytest.raises(ValueError, match=r"need 129 positions, but the LLM has 128: lower video.max_frames"):
        model(feats[:1], torch.tensor([60]), prev)
