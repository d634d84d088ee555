"""The driving game in the apps: its entry in the game registry, the `neuralese driving` command and
its end-to-end demo, the import of a foreign agent's episodes, and its HTTP route."""
