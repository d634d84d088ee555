"""Evaluation of the colour game: translation (with its baselines: message-blind, transplanted contexts),
the run's models it loads, the gallery and the reports."""
