"""The models translators are built from: game-free parts at the top (message channels, the English
tokenizer, a small logistic regression); the colour game's networks in `colors/` (the driving game's
live with it in `translator/games/driving/`)."""
