"""Translate the emergent messages of neural agents (neuralese) to English and back.

The library is layered by idea (`storage`, `settings` → `games` → `models` → `translate`); the
apps (`translator.apps`: command line, streaming, service, play page, demo) sit on top. The entry
point for users is `Translator` (`from translator import Translator`), and `DrivingTranslator` for
the driving game, each imported on first use.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "Translator":  # imported on first use: `import translator` stays light
        from translator.translate.colors.api import Translator

        return Translator
    if name == "DrivingTranslator":
        from translator.translate.driving.api import DrivingTranslator

        return DrivingTranslator
    raise AttributeError(f"module 'translator' has no attribute {name!r}")
