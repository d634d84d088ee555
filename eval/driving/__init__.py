"""Evaluation of the driving game on logged games: people, agents and translations, faithfulness,
what an import recovers, and the scoring of a run's driving bundles."""
