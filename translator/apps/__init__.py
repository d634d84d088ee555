"""The apps built on the library: the `neuralese` command line, streaming translation, the HTTP
service, the play page and the demo. They import the library; the library never imports them."""
