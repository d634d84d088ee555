"""The models translators are built from: message channels, English listeners and speakers with
their tokenizer, models of the agent speaker, seq2seq translators and small helpers."""
