"""The colour game in the apps: its entry in the game registry, the `neuralese train` commands of its
models, and the `/play` page where people play with the agents."""
