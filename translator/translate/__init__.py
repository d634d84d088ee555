"""Translation: belief matching and the baselines, the translator registry and bundles, the result
type every translator returns, the faithfulness probability, and `Translator` (the Python API)."""
