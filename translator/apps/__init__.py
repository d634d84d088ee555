"""The apps built on the library: the `neuralese` command line, streaming translation, the HTTP
service and the demo; each game's own commands, entry in the game registry and pages in `colors/`
and `driving/`. They import the library; the library never imports them."""
