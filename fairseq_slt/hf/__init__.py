"""Hugging Face model folders as stage-2 LLMs (``--arch slt_hf``): the folder, its tokenizer as
fairseq's dictionary and BPE, and how the LLM trains. ``transformers`` (and ``peft`` for LoRA) are
imported only where a model folder is used: ``pip install -e '.[llm]'``."""
