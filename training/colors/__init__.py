"""Training for the colour game: English models, agent self-play and its batches, the evaluation
listener, translator building (belief matching, seq2seq), learned speakers and message import."""
