"""Console scripts of fairseq-slt (see setup.py's entry points).

Each is a thin command line over a library module; nothing outside ``cli/`` imports them.
"""
