"""The driving game's door in the HTTP service: `POST /v1/driving/translate` (docs/live_translation.md).

    {"to": "english", "items": [{"map": 0, "car": {"cell": [6, 5], "heading": "N", "goal": [0, 3]}, "message": [...]}]}

Each item is a driving record (docs/driving.md, translator/games/driving/records.py), checked by
the record parser: a bad item answers 422 naming `items[i].field`. Results are `Translation`s, one
per item, as the colour route gives them. A request is translated in one call on the event loop
(driving requests are not micro-batched with each other).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from translator.games.driving.records import RecordError
from translator.translate.driving.api import DrivingTranslator


class DrivingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Literal["english", "neuralese"]
    items: list[Any] = Field(description="driving records (docs/driving.md), at most max_batch")


def checked_records(tr: DrivingTranslator, to: str, items: list[Any]) -> list:
    """Each item as a checked record; 422 naming the first bad item and its field."""
    records = []
    for i, item in enumerate(items):
        try:
            records.append(tr.parse(item, to))
        except RecordError as e:
            where = f"items[{i}].{e.field}" if e.field else f"items[{i}]"
            raise HTTPException(422, f"{where}: {e.problem}") from None
    return records


def add_driving_routes(app: FastAPI, tr: DrivingTranslator, max_batch: int, describe: Any) -> None:
    """`POST /v1/driving/translate` for the run's driving translator `tr`."""

    @app.post("/v1/driving/translate", responses={413: {"description": "batch too large"}})
    async def translate_driving(request: Request) -> Response:
        try:
            req = DrivingRequest.model_validate_json(await request.body())
        except ValidationError as e:
            raise HTTPException(422, describe(e.errors())) from None
        if len(req.items) > max_batch:
            raise HTTPException(413, f"batch of {len(req.items)} items is over the limit of {max_batch}; split it")
        records = checked_records(tr, req.to, req.items)
        if not records:
            results = []
        elif req.to == "english":
            results = tr.english_checked(records)
        else:
            results = tr.neuralese_checked(records)
        rows = [({"id": r.id} if r.id is not None else {}) | t.to_json() for r, t in zip(records, results)]
        body = {"game": "driving", "to": req.to, "translator": tr.kind, "results": rows}
        return Response(json.dumps(body, ensure_ascii=False, allow_nan=False), media_type="application/json")
