"""The colour reference game (Colors in Context): its corpus, colour features and differences,
context sampling, the agent pair, and the collection of their messages beside people's."""
