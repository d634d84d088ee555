"""Training for the driving game: self-play agents (A2C), English models of the drivers, faithfulness,
the import of a foreign agent's episodes."""
