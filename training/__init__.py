"""Training: the game-free loop, checkpoints and calibration at the top; each game's training in its
subpackage (`colors/`, `driving/`)."""
