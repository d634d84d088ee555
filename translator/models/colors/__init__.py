"""The colour game's networks: its agent pair, the English listener and speaker (with the evaluation
listener and the prerank stand-in), and the models of the agent speaker (exact and learned)."""
