"""Translate driving messages outside the evaluation: `DrivingTranslator`, the driving game's Python API.

    tr = DrivingTranslator.from_run("runs/demo/driving", translator="belief")
    tr.to_english([{"map": 0, "car": {"cell": [6, 5], "heading": "N", "goal": [0, 3]}, "message": [...]}])
    tr.to_neuralese([{"map": 0, "car": {...}, "utterance": "going north"}])

Records are JSON objects or checked `DrivingRecord`s (translator/games/driving/records.py); a bad
one raises `RecordError` naming its row and field. Results are `Translation`s (one `to_json()`, as
the colour game's API, the stream and the service give them): belief matching fills `divergence`
(the KL it minimised, nats) and the next-best `alternatives`; direct, random and silent leave it
None. Belief translation draws each record's fresh speaker states from the run's seed alone, so a
record translates the same in any batch, and as the evaluation's translator reads that state.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from translator.games.driving.agents import DrivingAgent
from translator.games.driving.english import HumanSpeaker
from translator.games.driving.imported import ImportedAgent, build_imported_translator, is_import
from translator.games.driving.logs import read_logs
from translator.games.driving.play import Said
from translator.games.driving.records import DrivingRecord, RecordError, parse_record, to_state
from translator.games.driving.translate import BeliefTranslator
from translator.games.driving.translators import KINDS, build_translator, driving_dir, run_info
from translator.translate.driving.faithfulness import (
    DrivingFaithfulness,
    load_optional,
    read_english,
    read_neuralese,
    with_probability,
)
from translator.translate.translations import Alternative, Translation

ALTERNATIVES = 3


class DrivingTranslator:
    """One driving translator (`kind`: belief, direct, random or silent) with the agent whose messages it reads."""

    def __init__(self, kind: str, agent: DrivingAgent, inner: Any, faithfulness: DrivingFaithfulness | None = None):
        self.kind, self.agent, self.inner, self.faithfulness = kind, agent.eval(), inner, faithfulness

    @classmethod
    def from_run(cls, run: str | Path, translator: str = "belief", seed: int | None = None) -> DrivingTranslator:
        """The translator `translator` of a driving run (`RUN/driving/` or RUN holding `agents/` and
        `english_speaker/`), rebuilt as the evaluation builds it (training logs and seed of its `run.json`);
        or of a foreign agent's import folder (`from_import`)."""
        if is_import(run):
            return cls.from_import(run, translator, seed)
        if translator not in KINDS:
            raise ValueError(f"translator {translator!r}: expected one of {', '.join(KINDS)}")
        base = driving_dir(run, ("agents", "english_speaker"))
        info = run_info(base)
        agent = DrivingAgent.from_pretrained(base / "agents")
        speaker = HumanSpeaker.from_pretrained(base / "english_speaker")
        games = read_logs(info.train) if translator == "direct" else []
        seed = info.seed if seed is None else seed
        faithfulness = load_optional(base) if translator == "belief" else None  # RUN/driving/faithfulness/
        return cls(translator, agent, build_translator(translator, agent, speaker, games, seed), faithfulness)

    @classmethod
    def from_import(cls, folder: str | Path, translator: str = "belief", seed: int | None = None) -> DrivingTranslator:
        """The translator `translator` (belief, random or silent) of a foreign agent imported with
        `neuralese import-messages --game driving` (translator/games/driving/imported.py)."""
        agent = ImportedAgent.load(folder, seed)
        return cls(translator, agent.model, build_imported_translator(translator, agent))  # type: ignore[arg-type]

    @property
    def message_size(self) -> int:
        return self.agent.config.message_size

    @property
    def hidden_size(self) -> int:
        return getattr(self.agent.config, "hidden", 0)  # an imported agent's recurrent state is unknown

    def parse(self, obj: Any, to: str, line: int | None = None) -> DrivingRecord:
        """One checked record from a decoded JSON object; `RecordError` naming `line` and field."""
        return parse_record(obj, to, line, self.message_size, self.hidden_size)

    def _records(self, records: Sequence[Any], to: str) -> list[DrivingRecord]:
        if isinstance(records, (str, bytes, dict)) or not isinstance(records, Sequence):
            raise ValueError(f"records: expected a sequence (a batch), got {type(records).__name__}")
        return [
            r if isinstance(r, DrivingRecord) and self._fits(r, to) else self.parse(r, to, i + 1) for i, r in enumerate(records)
        ]

    def _fits(self, record: DrivingRecord, to: str) -> bool:
        if to == "neuralese":
            return isinstance(record.source, str)
        return not isinstance(record.source, str) and len(record.source) == self.message_size

    def _context(self, records: Sequence[DrivingRecord], messages: torch.Tensor | None = None) -> Said:
        def rows(values: list, size: int) -> torch.Tensor:
            filled = [v if v is not None else [0.0] * size for v in values]
            return torch.tensor(filled, dtype=torch.float32).reshape(len(values), size)

        heard = rows([r.heard for r in records], self.message_size)
        h = rows([r.recurrent for r in records], self.hidden_size)
        return Said(messages if messages is not None else torch.zeros_like(heard), h, heard)

    def to_english(self, records: Sequence[Any]) -> list[Translation]:
        """Each record's message (`message`, 64 numbers) in English ("" is silence)."""
        checked = self._records(records, "english")
        return self.english_checked(checked) if checked else []

    def to_neuralese(self, records: Sequence[Any]) -> list[Translation]:
        """Each record's utterance (`utterance`) as a message the agents understand (a list of floats)."""
        checked = self._records(records, "neuralese")
        return self.neuralese_checked(checked) if checked else []

    def english_checked(self, records: list[DrivingRecord], contexts: None = None) -> list[Translation]:
        """Checked records (their context is their own: `contexts` is for the stream's call)."""
        said = self._context(records, torch.tensor([r.source for r in records], dtype=torch.float32))
        state = to_state(records)
        if not isinstance(self.inner, BeliefTranslator):
            return [Translation(t, None, True) for t in self.inner.to_english(said, state, 0)]
        reading = read_english(self.inner, said, self.inner.c.states_each(state, 0))
        ranked = _ranked(reading.scores, lambda i: self.inner.utterances[i])
        return with_probability(ranked, reading, state, self.faithfulness, "to_english")

    def neuralese_checked(self, records: list[DrivingRecord], contexts: None = None) -> list[Translation]:
        texts = [str(r.source) for r in records]
        context, state = self._context(records), to_state(records)
        if not isinstance(self.inner, BeliefTranslator):
            return [Translation(z, None, True) for z in self.inner.to_neuralese(texts, context, state, 0).tolist()]
        reading = read_neuralese(self.inner, texts, context, self.inner.c.states_each(state, 0))
        ranked = _ranked(reading.scores, lambda i: self.inner.pool[i].tolist())
        return with_probability(ranked, reading, state, self.faithfulness, "to_neuralese")

    def __repr__(self) -> str:
        return f"DrivingTranslator({self.kind}, message_size={self.message_size})"


def _ranked(scores: torch.Tensor, candidate: Any) -> list[Translation]:
    """One `Translation` per row of `scores` (B, K): the lowest-KL candidate and the runners-up."""
    k = min(ALTERNATIVES + 1, scores.shape[1])
    values, index = scores.topk(k, dim=1, largest=False)
    out = []
    for vals, idx in zip(values.tolist(), index.tolist()):
        alts = [Alternative(candidate(i), v) for i, v in zip(idx[1:], vals[1:])]
        out.append(Translation(candidate(idx[0]), vals[0], True, alts))
    return out


__all__ = ["DrivingTranslator", "RecordError"]
