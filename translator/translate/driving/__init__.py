"""Translation in the driving game: `DrivingTranslator` (its Python API) and the faithfulness
probability of driving translations with the rows it is fitted and evaluated on."""
