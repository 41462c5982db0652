"""fairseq-slt: gloss-free sign language translation (FLa-LLM) as a fairseq plugin."""

from setuptools import find_packages, setup

setup(
    name="fairseq-slt",
    version="0.1.0",
    description=(
        "Gloss-free sign language translation (FLa-LLM, Chen et al., LREC-COLING 2024) "
        "as a fairseq plugin"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["fairseq_slt", "fairseq_slt.*"]),
    install_requires=[
        "torch>=2.6,<2.15",
        "torchvision>=0.21,<0.30",
        # the official fairseq 0.12.2 does not import on Python 3.11; fairseq-fixed is
        # upstream main plus the dataclass fix and provides the same `fairseq` package
        "fairseq-fixed>=0.12.3,<0.13",
        "sentencepiece>=0.1.99",
        "sacrebleu>=2.0",
        "numpy>=1.24,<2",  # fairseq uses numpy 1.x APIs (np.compat.long in TokenBlockDataset)
        "decord>=0.6.0",
        "av>=12.0",
        "Pillow>=9.0",
        "PyYAML>=6.0",
        "tqdm>=4.60",
        "matplotlib>=3.5",  # fairseq-slt-plot
    ],
    extras_require={
        # fairseq-slt-plot reads --tensorboard-logdir folders with tensorboard's event reader
        "tensorboard": ["tensorboard>=2.10"],
        # optional video backend (read_frames(backend="torchcodec")); needs FFmpeg's shared
        # libraries (Debian: apt-get install libavcodec-dev libavformat-dev libavutil-dev
        # libswscale-dev libavfilter-dev libavdevice-dev)
        "torchcodec": ["torchcodec"],
        # --arch slt_hf: stage 2 over a local Hugging Face model folder, LoRA through peft
        "llm": ["transformers>=4.56,<6", "peft>=0.13"],
        # transformers: the mBART converter is tested against Hugging Face's own MBart, and
        # slt_hf on tiny models of each family (with peft)
        "test": ["pytest>=7.0", "tensorboard>=2.10", "transformers>=4.56,<6", "peft>=0.13"],
    },
    entry_points={
        "console_scripts": [
            "fairseq-slt-synth=fairseq_slt.synthetic.generate:cli_main",
            "fairseq-slt-trim-mbart=fairseq_slt.cli.trim_mbart:cli_main",
            "fairseq-slt-build-mbart=fairseq_slt.cli.build_tiny_mbart:cli_main",
            "fairseq-slt-cache-features=fairseq_slt.cli.cache_features:cli_main",
            "fairseq-slt-data-config=fairseq_slt.cli.data_config:cli_main",
            "fairseq-slt-score=fairseq_slt.cli.score:cli_main",
            "fairseq-slt-translate=fairseq_slt.cli.translate:cli_main",
            "fairseq-slt-prep=fairseq_slt.cli.prep:cli_main",
            "fairseq-slt-convert-mbart=fairseq_slt.cli.convert_mbart:cli_main",
            "fairseq-slt-audit=fairseq_slt.cli.audit:cli_main",
            "fairseq-slt-plot=fairseq_slt.cli.plot:cli_main",
            "fairseq-slt-frame-store=fairseq_slt.cli.frame_store:cli_main",
        ],
    },
)
