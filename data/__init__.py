"""The bundled human game corpora, installed with the package as `translator.data`
(found through `translator.bundled_data`, not through the source tree)."""
