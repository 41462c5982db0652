"""Start-up: the console scripts import only what they need; ``import fairseq_slt`` registers
where fairseq is already imported (fairseq's CLIs and ``--user-dir``), and only there.

Structure only (which modules a process imports), no timing: benchmarks/startup.py measures it.
"""

import os
import subprocess
import sys

import pytest

from helpers import BIN_DIR, PLUGIN_DIR

HEAVY = ("torch", "torchvision", "fairseq", "matplotlib", "decord", "av", "torchcodec", "PIL")
# console-script modules: each imports nothing heavy before its arguments are parsed
LIGHT_COMMANDS = (
    "fairseq_slt.cli.score", "fairseq_slt.cli.translate", "fairseq_slt.cli.audit", "fairseq_slt.cli.plot",
    "fairseq_slt.cli.data_config", "fairseq_slt.cli.prep", "fairseq_slt.cli.trim_mbart",
    "fairseq_slt.cli.convert_mbart", "fairseq_slt.synthetic.generate", "fairseq_slt.cli.cache_features",
    "fairseq_slt.cli.build_tiny_mbart",
)


def run_python(code: str) -> str:
    """Run ``code`` in a fresh python (``sys`` imported) and return its stdout."""
    proc = subprocess.run([sys.executable, "-c", "import sys\n" + code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def imported_modules(cmd) -> set:
    """Top-level names of the modules a console script imports (``python -X importtime``)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *map(str, cmd)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in proc.stderr.splitlines()
            if line.startswith("import time:") and "self [us]" not in line}


def test_console_script_modules_import_nothing_heavy():
    imports = "\n".join(f"import {m}" for m in LIGHT_COMMANDS)
    out = run_python(f"{imports}\nprint([m for m in {HEAVY!r} if m in sys.modules])")
    assert out.strip() == "[]"


def test_translate_help_and_score_import_neither_torch_nor_fairseq(tmp_path):
    hyp = tmp_path / "generate-test.txt"
    hyp.write_text("T-0\ta b c\nH-0\t-0.1\ta b c\nD-0\t-0.1\ta b c\n", encoding="utf-8")
    for cmd in ([os.path.join(BIN_DIR, "fairseq-slt-translate"), "--help"],
                [os.path.join(BIN_DIR, "fairseq-slt-score"), hyp]):
        found = imported_modules(cmd) & set(HEAVY)
        assert not found, f"{os.path.basename(cmd[0])} imports {sorted(found)}"


def test_register_registers_task_archs_and_optimizer_and_patches():
    # the conftest calls fairseq_slt.register()
    from fairseq.file_io import PathManager
    from fairseq.models import ARCH_MODEL_NAME_REGISTRY
    from fairseq.optim import OPTIMIZER_REGISTRY
    from fairseq.tasks import TASK_REGISTRY

    from fairseq_slt.patches import PATCHES

    assert "sign_translation" in TASK_REGISTRY
    assert {a: ARCH_MODEL_NAME_REGISTRY.get(a) for a in ("slt_lightt", "slt_lightt_tiny", "slt_mbart")} == {
        "slt_lightt": "slt_lightt", "slt_lightt_tiny": "slt_lightt", "slt_mbart": "slt_mbart"}
    assert "adam_grouped" in OPTIMIZER_REGISTRY
    assert getattr(PathManager.copy, "_fairseq_slt_atomic", False)
    from fairseq.trainer import Trainer

    assert getattr(Trainer.load_checkpoint, "_fairseq_slt_task_state", False)  # resuming shows the task_state
    assert len({p.name for p in PATCHES}) == len(PATCHES) and all(p.changes and p.why for p in PATCHES)


def test_light_data_package_resolves_its_names():
    out = run_python(
        "from fairseq_slt.data import ManifestError, SignDataConfig, VideoReadError, VideoSource\n"
        "print('torch' in sys.modules)\n"
        "from fairseq_slt.data import SignVideoDatasetCreator, collate_frames\n"
        "print('torch' in sys.modules, SignVideoDatasetCreator.__module__)"
    )
    assert out.split("\n")[:2] == ["False", "True fairseq_slt.data.sign_video_dataset"]


@pytest.mark.slow  # imports torch and fairseq in a subprocess (several seconds)
def test_import_after_fairseq_registers_as_user_dir_does():
    """fairseq's CLIs import fairseq, then ``import_user_module`` imports the package: it registers
    and applies the patches, with nothing to call."""
    out = run_python(
        "import argparse\n"
        "from fairseq import utils\n"
        f"utils.import_user_module(argparse.Namespace(user_dir={PLUGIN_DIR!r}))\n"
        "from fairseq.file_io import PathManager\n"
        "from fairseq.tasks import TASK_REGISTRY\n"
        "print('sign_translation' in TASK_REGISTRY, getattr(PathManager.copy, '_fairseq_slt_atomic', False))\n"
    )
    assert out.split("\n")[:1] == ["True True"]


@pytest.mark.slow  # imports torch and fairseq in a subprocess (several seconds)
def test_console_script_process_registers_on_demand():
    """In a console-script process the package is light; what needs fairseq's registries registers
    first, and after :func:`fairseq_slt.register` fairseq's ``--user-dir`` sees everything."""
    out = run_python(
        "import argparse\n"
        "import fairseq_slt\n"
        "print('fairseq' in sys.modules)\n"
        "from fairseq_slt.checkpoints import registered_model_of_arch\n"
        "print(registered_model_of_arch('slt_lightt_tiny'))\n"
        "fairseq_slt.register()\n"
        "from fairseq import utils\n"
        "utils.import_user_module(argparse.Namespace(user_dir=fairseq_slt.__path__[0]))\n"
        "from fairseq.optim import OPTIMIZER_REGISTRY\n"
        "from fairseq.tasks import TASK_REGISTRY\n"
        "print('sign_translation' in TASK_REGISTRY, 'adam_grouped' in OPTIMIZER_REGISTRY)\n"
    )
    assert out.split("\n")[:3] == ["False", "slt_lightt", "True True"]
