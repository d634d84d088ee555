"""The HTTP service's driving door: `POST /v1/driving/translate` on a run holding only the driving
game; results equal the Python API's; a bad item answers 422 naming the item and field."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from translator.apps.service import create_app
from translator.translate.driving.api import DrivingTranslator

CAR = {"cell": [6, 5], "heading": "N", "goal": [0, 3]}
ITEMS = [
    {"map": 0, "car": CAR, "message": [0.125] * 64, "id": "a"},
    {"map": 3, "car": {"cell": [3, 6], "heading": "W", "goal": [7, 3]}, "message": [-0.1] * 64},
]


@pytest.fixture(scope="module")
def client(tiny_driving_run):
    with TestClient(create_app(tiny_driving_run)) as c:
        yield c


def test_driving_items_are_translated_as_the_api_translates_them(client, tiny_driving_run):
    health = client.get("/healthz").json()
    assert health["driving"] == "belief" and health["channels"] == {}
    r = client.post("/v1/driving/translate", json={"to": "english", "items": ITEMS})
    assert r.status_code == 200
    body = r.json()
    api = DrivingTranslator.from_run(tiny_driving_run).to_english(ITEMS)
    assert body["game"] == "driving" and body["translator"] == "belief"
    assert [x["translation"] for x in body["results"]] == [t.translation for t in api]
    assert body["results"][0]["id"] == "a" and "id" not in body["results"][1]
    r = client.post("/v1/driving/translate", json={"to": "neuralese", "items": [{"map": 0, "car": CAR, "utterance": "stop"}]})
    assert r.status_code == 200 and len(r.json()["results"][0]["translation"]) == 64


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (
            {"to": "english", "items": [ITEMS[0], ITEMS[1] | {"message": [0.1] * 3}]},
            422,
            "items[1].message: expected 64 numbers, got 3",
        ),
        (
            {"to": "english", "items": [ITEMS[0] | {"car": CAR | {"goal": [0, 0]}}]},
            422,
            "items[0].car.goal: [0, 0] is not a road cell of map 0",
        ),
        ({"to": "english", "items": [3]}, 422, "items[0]: expected a JSON object, got 3"),
        ({"to": "french", "items": []}, 422, "to"),
        ({"to": "english", "items": ITEMS * 200}, 413, "over the limit of 256"),
    ],
)
def test_bad_requests_are_refused_naming_item_and_field(client, body, status, detail):
    r = client.post("/v1/driving/translate", json=body)
    assert r.status_code == status and detail in r.json()["detail"]
    assert client.post("/v1/driving/translate", json={"to": "english", "items": ITEMS[:1]}).status_code == 200  # still serving
