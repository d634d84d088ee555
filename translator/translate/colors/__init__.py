"""Translation in the colour game: belief matching and the baselines, seq2seq (one direction, a pair,
reranked), the registry of its translator bundles, collection, and `Translator` (its Python API)."""
