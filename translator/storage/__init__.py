"""Storage: atomic writes, verified bundles (`save_pretrained` / `from_pretrained`), where a run
keeps its translators, and where the bundled corpora are."""
