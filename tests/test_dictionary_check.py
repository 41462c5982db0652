"""A checkpoint decoded with another target dictionary than it was trained with is refused.

Stage 1 trains with the corpus's own dictionary (config.yaml) or, when the recipes set MBART_DIR,
with the trimmed mBART's (config_stage2.yaml): decoding with the other one, unchecked, is a shape
mismatch or, at the same size, wrong words with exit code 0.
"""

import os
import shutil
import subprocess
from argparse import Namespace

import pytest
import torch

from helpers import BIN_DIR, PLUGIN_DIR, run_cli
from fairseq_slt.tasks.checkpoint_records import MissingRecordsError
from fairseq_slt.tasks.dictionary_check import RECORD_KEY, DictionaryMismatchError
from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask

WORDS = ["▁the", "▁cat", "▁sat", "▁on", "▁mat"]


def write_root(root, dicts: dict):
    """A data root with one config per dictionary: ``config_<name>.yaml`` -> ``<name>.txt``."""
    root.mkdir(exist_ok=True)
    for name, words in dicts.items():
        (root / f"{name}.txt").write_text("".join(f"{w} 1\n" for w in words))
        (root / f"config_{name}.yaml").write_text(f"vocab_filename: {name}.txt\nvideo: {{resize: 48, crop: 32}}\n")
    return root


def task_of(root, name, **cfg):
    return SignTranslationTask.setup_task(SignTranslationConfig(data=str(root), config_yaml=f"config_{name}.yaml", **cfg))


def test_record_refuses_another_dictionary_naming_both(tmp_path):
    root = write_root(tmp_path / "data", {
        "own": WORDS, "swapped": [WORDS[1], WORDS[0]] + WORDS[2:], "short": WORDS[:3],
    })
    trained = task_of(root, "own")
    saved = trained.state_dict()  # what fairseq-train stores as the checkpoint's task_state
    record = saved[RECORD_KEY]
    assert record["size"] == 4 + len(WORDS) and record["path"] == str(root / "own.txt")
    assert record["config_yaml"] == "config_own.yaml" and record["data"] == str(root)

    task_of(root, "own").load_state_dict(saved)  # the same dictionary: accepted
    with pytest.raises(DictionaryMismatchError) as e:
        task_of(root, "swapped").load_state_dict(saved)  # same size, other order: the silent case
    msg = str(e.value)
    assert f"trained with the target dictionary {root / 'own.txt'} (9 types, sha256 " in msg
    assert f"the data config {root / 'config_swapped.yaml'} gives {root / 'swapped.txt'} (9 types" in msg
    assert "same size, other symbols" in msg
    assert f"pass the data config it was trained with: --config-yaml config_own.yaml (data root {root})" in msg
    with pytest.raises(DictionaryMismatchError, match=r"gives .*short\.txt \(7 types.*does not fit"):
        task_of(root, "short").load_state_dict(saved)


def test_resuming_checks_the_dictionary_order_too(tmp_path):
    """fairseq-train continuing from a checkpoint: the record, not only the size of the embeddings."""
    root = write_root(tmp_path / "data", {"own": WORDS, "swapped": [WORDS[1], WORDS[0]] + WORDS[2:]})
    saved = task_of(root, "own").state_dict()
    path = str(tmp_path / "checkpoint_last.pt")
    task_of(root, "own").check_resumed_state(saved, path)
    with pytest.raises(DictionaryMismatchError) as e:
        task_of(root, "swapped").check_resumed_state(saved, path)
    assert e.value.saved == saved[RECORD_KEY] and e.value.current["sha256"] != e.value.saved["sha256"]
    assert str(e.value).startswith(f"{path} (the checkpoint fairseq-train continues from) was trained with the "
                                   f"target dictionary {root / 'own.txt'} (9 types")
    assert "same size, other symbols" in str(e.value)


def test_mbart_vocabulary_record_names_langs(tmp_path):
    """With MBART_DIR the recipes train stage 1 with --langs: the fix names them too."""
    root = write_root(tmp_path / "data", {"mbart": WORDS})
    saved = task_of(root, "mbart", langs="de_DE,en_XX", tgt_lang="de_DE").state_dict()
    with pytest.raises(DictionaryMismatchError) as e:
        task_of(root, "mbart").load_state_dict(saved)  # the same file without the language tokens
    msg = str(e.value)
    assert "+ [lang] for --langs de_DE,en_XX and <mask> (12 types" in msg
    assert "--config-yaml config_mbart.yaml --langs de_DE,en_XX --tgt-lang de_DE" in msg


def tiny_lightt(task):
    args = Namespace(arch="slt_lightt", encoder_embed_dim=16, encoder_ffn_embed_dim=32, encoder_layers=1,
                     decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                     temporal_dim=8, temporal_module="K3,P2")
    return task.build_model(args, from_checkpoint=True)


def test_task_state_without_records_is_refused(tmp_path):
    root = write_root(tmp_path / "data", {"own": WORDS})
    with pytest.raises(MissingRecordsError) as e:
        task_of(root, "own").load_state_dict({})  # the task_state of a checkpoint of another task
    assert e.value.missing == ("target dictionary", "video settings")
    assert str(e.value).startswith("this checkpoint stores no record of its target dictionary and video settings")
    saved = task_of(root, "own").state_dict()
    del saved[RECORD_KEY]
    with pytest.raises(MissingRecordsError) as e:
        task_of(root, "own").load_state_dict(saved)
    assert e.value.missing == ("target dictionary",)


def test_weights_of_another_dictionary_size_are_refused(tmp_path):
    root = write_root(tmp_path / "data", {"own": WORDS, "short": WORDS[:3]})
    weights = tiny_lightt(task_of(root, "own")).state_dict()
    model = tiny_lightt(task_of(root, "short"))
    with pytest.raises(DictionaryMismatchError, match=(
        r"decoder embeddings have 9 rows .* but the data config .*config_short\.yaml gives .*short\.txt "
        r"\(7 types.*pass the data config it was trained with"
    )):
        model.load_state_dict(weights)
    tiny_lightt(task_of(root, "own")).load_state_dict(weights)  # the right size loads


# --- through fairseq-generate and SignTranslator, on a stage-1 model trained by fairseq-train


@pytest.fixture(scope="module")
def other_configs(tiny_corpus, tmp_path_factory):
    """The tiny corpus's data root with two more configs: its dictionary with two symbols swapped
    (same size) and with three fewer symbols; and a copy of the root whose config.yaml is the swapped one."""
    lines = (tiny_corpus / "dict.txt").read_text().splitlines()
    root = tmp_path_factory.mktemp("other_dicts")
    (root / "swapped.txt").write_text("\n".join([lines[1], lines[0]] + lines[2:]) + "\n")
    (root / "short.txt").write_text("\n".join(lines[:-3]) + "\n")
    config = (tiny_corpus / "config.yaml").read_text()
    config = config.replace("video_root: .", f"video_root: {tiny_corpus}").replace(
        "spm.model", str(tiny_corpus / "spm.model"))
    for name in ("swapped", "short"):
        (root / f"config_{name}.yaml").write_text(config.replace("vocab_filename: dict.txt", f"vocab_filename: {name}.txt"))
    for split in ("train", "dev", "test"):
        (root / f"{split}.tsv").write_text((tiny_corpus / f"{split}.tsv").read_text())
    (root / "config.yaml").write_text((root / "config_swapped.yaml").read_text())
    return root


def generate_cmd(data, ckpt, *extra):
    return [
        "fairseq-generate", str(data), "--user-dir", PLUGIN_DIR, "--task", "sign_translation",
        "--gen-subset", "test", "--path", str(ckpt), "--beam", "2", "--max-tokens", "400", "--max-len-b", "5", *extra,
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name, size, why", [
    ("swapped", 40, "same size, other symbols: it would decode every token id to another word"),
    ("short", 37, "its output layer does not fit this dictionary"),
])
def test_generate_refuses_another_dictionary(tiny_corpus, stage1_run, other_configs, name, size, why):
    ckpt = stage1_run[0] / "checkpoint_last.pt"
    cmd = generate_cmd(other_configs, ckpt, "--config-yaml", f"config_{name}.yaml")
    proc = subprocess.run([os.path.join(BIN_DIR, cmd[0]), *cmd[1:]], capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "^H-" not in proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("fairseq_slt.tasks.dictionary_check.DictionaryMismatchError: this checkpoint was "
                           f"trained with the target dictionary {tiny_corpus / 'dict.txt'} (40 types"), last
    assert f"gives {other_configs / (name + '.txt')} ({size} types" in last and why in last
    assert f"pass the data config it was trained with: --config-yaml config.yaml (data root {tiny_corpus})" in last
    assert "size mismatch" not in proc.stderr


@pytest.mark.slow
def test_resume_refuses_a_dictionary_in_another_order(tiny_corpus, stage1_run, other_configs, tmp_path):
    from helpers import stage1_train_cmd

    save_dir = tmp_path / "ckpt"
    save_dir.mkdir()
    ckpt = save_dir / "checkpoint_last.pt"
    shutil.copy(stage1_run[0] / "checkpoint_last.pt", ckpt)
    before = ckpt.read_bytes()
    cmd = stage1_train_cmd(other_configs, save_dir, 4) + ["--config-yaml", "config_swapped.yaml"]
    proc = subprocess.run([os.path.join(BIN_DIR, cmd[0]), *map(str, cmd[1:])], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 1 and ckpt.read_bytes() == before  # nothing trained, nothing saved
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"fairseq_slt.tasks.dictionary_check.DictionaryMismatchError: {ckpt} (the checkpoint "
                           f"fairseq-train continues from) was trained with the target dictionary "
                           f"{tiny_corpus / 'dict.txt'} (40 types"), last
    assert f"gives {other_configs / 'swapped.txt'} (40 types" in last and "same size, other symbols" in last


@pytest.mark.slow
def test_generate_with_the_training_dictionary_checks_it(tiny_corpus, stage1_run):
    out = run_cli(generate_cmd(tiny_corpus, stage1_run[0] / "checkpoint_last.pt"))
    assert f"target dictionary {tiny_corpus / 'dict.txt'} (40 types, sha256 " in out and "is the checkpoint's" in out
    assert len([line for line in out.splitlines() if line.startswith("H-")]) == 5


@pytest.mark.slow
def test_checkpoint_without_records_is_refused_by_fairseq_loader(tiny_corpus, stage1_run, tmp_path):
    from fairseq import checkpoint_utils

    state = torch.load(stage1_run[0] / "checkpoint_last.pt", weights_only=True)
    state["task_state"] = {}  # a checkpoint not written by the sign_translation task
    other = tmp_path / "other.pt"
    torch.save(state, other)
    with pytest.raises(MissingRecordsError):
        checkpoint_utils.load_model_ensemble_and_task([str(other)], arg_overrides={"data": str(tiny_corpus)})


@pytest.mark.slow
def test_translator_with_another_data_root_says_which_to_pass(tiny_corpus, stage1_run, other_configs):
    from fairseq_slt.inference import SignTranslator

    ckpt = stage1_run[0] / "checkpoint_last.pt"
    with pytest.raises(DictionaryMismatchError) as e:
        SignTranslator.from_checkpoint(str(ckpt), data=str(other_configs), device="cpu")
    msg = str(e.value)
    assert msg.startswith(f"{ckpt} was trained with the target dictionary {tiny_corpus / 'dict.txt'}")
    assert f"pass --data with the data root it was trained with ({tiny_corpus}), whose config.yaml" in msg
