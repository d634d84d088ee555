"""Evaluation: game-free metrics (calibration, faithfulness, language analysis, seeds) and the colour
game's evaluation at the top; each game's own parts in its subpackage (`colors/`, `driving/`)."""
