"""Training for the driving game: self-play agents (A2C), English models of the drivers, demo."""
