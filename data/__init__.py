"""The bundled human game corpora, installed with the package as `translator.data`
(found through `translator.storage.bundled_data`, not through the source tree)."""
