"""One-off studies: scripts that measured one question once (copy fields, bounded lists,
NGRAM replay and served speculation, gateway soak, real-world schemas) and whose saved results
the README cites. Run by path (`./dev python perf/studies/NAME.py`); nothing in the CLI loads
them."""
