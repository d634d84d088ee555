"""Translation: the game-free parts at the top (belief matching as tensor algebra, the result type every
translator returns, the faithfulness probability: features, flag, side file); each game's translators, bundles
and Python API in its subpackage (`colors/`, `driving/`)."""
