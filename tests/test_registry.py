"""The translator registry: every kind of bundle loads through `Translator.from_pretrained` and is
served over HTTP; bundles of formats 1-2 (as the code before format 3 wrote them) still load."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from training.colors.seq2seq import Pairs, Seq2SeqTrainArgs, train_seq2seq
from translator.apps.service import Result, create_app
from translator.models.colors.message_model import ExactMessageModel
from translator.storage.bundle import CONFIG_FILE, FILES_KEY, BundleError, record_files
from translator.storage.run_layout import LEGACY_PAIR_FILE
from translator.translate.colors.api import Translator
from translator.translate.colors.registry import TRANSLATORS, bundle_channel, bundle_kind
from translator.translate.colors.reranked_seq2seq import RerankConfig, RerankedSeq2Seq
from translator.translate.colors.seq2seq import Seq2SeqConfig
from translator.translate.colors.seq2seq_pair import Seq2SeqPair
from translator.translate.translations import Translation, Translations

TINY = dict(d_model=32, layers=1, heads=2, ffn_dim=64, max_text_len=24, prefix_tokens=2)
KINDS = ("belief", "direct", "pair", "reranked", "seq2seq")


@pytest.fixture(scope="module")
def pair(english_models, tiny_agents, tiny_pairs) -> Seq2SeqPair:
    """Both directions trained for a few steps on the agents' co-occurrence pairs."""
    both = Pairs.from_collection(tiny_pairs)
    args = Seq2SeqTrainArgs(epochs=1, batch_size=32, max_steps=6)
    models = {}
    for direction in ("to_english", "to_neuralese"):
        beliefs = direction == "to_english"
        config = Seq2SeqConfig(
            direction=direction, channel=tiny_agents.channel, use_context=True, context_dropout=0.25, belief_input=beliefs, **TINY
        )
        models[direction] = train_seq2seq(
            both,
            config,
            tokenizer=english_models.tokenizer,
            args=args,
            message_model=ExactMessageModel(tiny_agents) if beliefs else None,
        )
    return Seq2SeqPair(
        RerankedSeq2Seq(models["to_english"], english_models, RerankConfig(n_best=3)), models["to_neuralese"], "cooccurrence"
    )


@pytest.fixture(scope="module")
def bundles(pair, saved_belief_translator, english_models, tiny_agents, tiny_pairs, tmp_path_factory) -> dict[str, Path]:
    """One saved bundle of every kind."""
    from training.colors.translators import build_direct_translator

    root = tmp_path_factory.mktemp("kinds")
    shutil.copytree(saved_belief_translator, root / "belief")
    build_direct_translator(english_models, ExactMessageModel(tiny_agents), tiny_pairs).save_pretrained(root / "direct")
    pair.save_pretrained(root / "pair")
    pair.models["to_english"].save_pretrained(root / "reranked")
    pair.models["to_neuralese"].save_pretrained(root / "seq2seq")
    return {k: root / k for k in KINDS}


@pytest.fixture(scope="module")
def rows(tiny_pairs):
    sel = tiny_pairs.select(range(6))
    return sel["message"], sel["colors"], ["the blue one", "dark green", "the brightest", "grey", "red", "pale pink"]


def test_the_registry_lists_every_kind():
    assert set(TRANSLATORS.kinds()) == {
        "neuralese.belief_translator",
        "neuralese.direct_translator",
        "neuralese.seq2seq_pair",
        "neuralese.reranked_seq2seq",
        "neuralese.seq2seq",
    }
    assert TRANSLATORS.cls("neuralese.seq2seq_pair", Path("x")) is Seq2SeqPair


def test_an_unknown_kind_is_a_bundle_error_naming_the_file(tmp_path):
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / CONFIG_FILE).write_text(json.dumps({"kind": "neuralese.telepathy", "format_version": 3}))
    header = re.escape(str(tmp_path / "odd" / CONFIG_FILE))
    with pytest.raises(
        BundleError, match=rf"^{header}: kind 'neuralese.telepathy' is not a translator; known kinds: .*seq2seq_pair"
    ):
        Translator.from_pretrained(tmp_path / "odd")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=rf"^{re.escape(str(tmp_path / 'empty' / CONFIG_FILE))}: missing"):
        Translator.from_pretrained(tmp_path / "empty")


def _english(tr: Translator, rows) -> list[Translation]:
    messages, colors, _ = rows
    return tr.to_english(messages, colors)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_round_trips_through_from_pretrained(kind, bundles, pair, tiny_belief_translator, rows):
    tr = Translator.from_pretrained(bundles[kind])
    assert bundle_channel(bundles[kind]) == tr.channel and tr.channel_name == "continuous"
    messages, colors, texts = rows
    if kind == "seq2seq":  # English → neuralese only
        with pytest.raises(ValueError, match="translates to neuralese only"):
            tr.to_english(messages, colors)
    else:
        out = _english(tr, rows)
        assert len(out) == len(messages) and all(isinstance(r.translation, str) for r in out)
        if kind in ("pair", "reranked"):  # the same as the model that was saved
            want = pair.to_english(torch.tensor(messages), torch.tensor(colors, dtype=torch.float32))
            assert [r.translation for r in out] == want.translations
            assert [r.divergence for r in out] == pytest.approx(want.divergence.tolist(), abs=1e-6)
        if kind == "belief":
            want = tiny_belief_translator.to_english(torch.tensor(messages), torch.tensor(colors)).translations
            assert [r.translation for r in out] == want
    if kind == "reranked":
        with pytest.raises(ValueError, match="translates to English only"):
            tr.to_neuralese(texts, colors)
    else:
        back = tr.to_neuralese(texts, colors)
        assert all(len(r.translation) == tr.channel.dim and all(math.isfinite(x) for x in r.translation) for r in back)
        if kind in ("pair", "seq2seq"):
            want = pair.to_neuralese(texts, torch.tensor(colors, dtype=torch.float32)).translations
            assert torch.allclose(torch.tensor([r.translation for r in back]), want, atol=1e-6)
    for r in tr.to_english(messages) if kind != "seq2seq" else tr.to_neuralese(texts):
        Result.model_validate({"id": 1, **r.to_json()})  # the service's schema accepts what every kind returns
        json.dumps(r.to_json(), allow_nan=False)


def test_the_service_schema_is_the_translation_dataclass():
    from dataclasses import fields

    assert list(Result.model_fields) == ["id"] + [f.name for f in fields(Translation)]


# -- bundles as formats 1-2 wrote them -------------------------------------------------------------


def _strip_side_file(path: Path) -> None:
    data = json.loads(path.read_text())
    for key in ("kind", "format_version"):
        data.pop(key, None)
    path.write_text(json.dumps(data["texts"] if path.name == "texts.json" else data, indent=2))


def _as_format(root: Path, version: int) -> None:
    """Rewrite a bundle written by this code as formats 1-2 wrote it: a seq2seq pair's header in
    `translator.json`, a reranked model's generator at the top of its directory, side files with
    no kind, every header of format `version` (format 1: no hashes)."""
    for gen in sorted(root.rglob("generator")):
        (gen.parent / CONFIG_FILE).unlink()
        for p in gen.iterdir():
            p.rename(gen.parent / p.name)
        gen.rmdir()
    for name in ("rerank.json", "texts.json", "training.json"):
        for p in root.rglob(name):
            _strip_side_file(p)
    if version == 1:  # the faithfulness models came with format 2's hashes: format 1 never had them
        for p in root.rglob("faithfulness.json"):
            p.unlink()
    if (root / "to_english").is_dir():
        header = json.loads((root / CONFIG_FILE).read_text())
        (root / CONFIG_FILE).unlink()
        (root / LEGACY_PAIR_FILE).write_text(
            json.dumps({"kind": header["kind"], "source": header["source"], "directions": header["directions"], FILES_KEY: {}})
        )
    headers = sorted([*root.rglob(CONFIG_FILE), *root.glob(LEGACY_PAIR_FILE)], key=lambda p: -len(p.parts))  # nested first
    for h in headers:
        data = json.loads(h.read_text())
        if "kind" not in data:  # the Hugging Face model's own config.json
            continue
        data["format_version"] = version
        data.pop(FILES_KEY, None)
        if version >= 2:
            data[FILES_KEY] = record_files(h.parent, h.name)
        h.write_text(json.dumps(data))


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("kind", ["pair", "reranked", "belief"])
def test_bundles_of_formats_1_and_2_still_load(kind, version, bundles, rows, tmp_path):
    old = tmp_path / kind
    shutil.copytree(bundles[kind], old)
    _as_format(old, version)
    if kind == "pair":
        assert not (old / CONFIG_FILE).exists() and (old / LEGACY_PAIR_FILE).is_file()
    if kind == "reranked":
        assert json.loads((old / CONFIG_FILE).read_text())["kind"] == "neuralese.seq2seq" and "kind" not in json.loads(
            (old / "rerank.json").read_text()
        )
    assert bundle_kind(old) == bundle_kind(bundles[kind])
    now, then = Translator.from_pretrained(bundles[kind]), Translator.from_pretrained(old)
    now_rows, then_rows = [r.to_json() for r in now.to_english(*rows[:2])], [r.to_json() for r in then.to_english(*rows[:2])]
    if version == 1 and kind == "belief":  # without its faithfulness models the flag is the divergence's
        assert all(r["faithfulness"] is None for r in then_rows)
        now_rows, then_rows = ([{k: v for k, v in r.items() if k not in ("faithful", "faithfulness")} for r in x] for x in (now_rows, then_rows))
    assert now_rows == then_rows


@pytest.mark.slow
@pytest.mark.skipif(not Path("/work/runs/demo/translators/continuous").is_dir(), reason="no demo run on this machine")
def test_the_demo_runs_format_1_bundles_load():
    run = Path("/work/runs/demo")
    for name in ("belief", "direct", "seq2seq_belief", "seq2seq_cooccurrence"):
        tr = Translator.from_run(run, "continuous", name)
        out = tr.to_english([[0.1] * tr.channel.dim], [[[10, 50, 50], [200, 50, 50], [120, 50, 50]]])
        assert isinstance(out[0].translation, str)
        assert len(tr.to_neuralese(["the blue one"])[0].translation) == tr.channel.dim


# -- serving a seq2seq translator ------------------------------------------------------------------


def test_a_seq2seq_pair_is_served_over_http(bundles, rows, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(bundles["pair"], run / "translators" / "continuous" / "seq2seq_cooccurrence")
    messages, colors, texts = rows
    with TestClient(create_app(run, name="seq2seq_cooccurrence", batch_wait=0)) as client:
        health = client.get("/healthz").json()
        assert health["translator"] == "seq2seq_cooccurrence" and set(health["channels"]) == {"continuous"}
        items = [{"message": m, "context": c, "id": i} for i, (m, c) in enumerate(zip(messages, colors))]
        r = client.post("/v1/translate", json={"channel": "continuous", "to": "english", "items": items})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["translator"] == "seq2seq_cooccurrence" and [x["id"] for x in body["results"]] == list(range(len(messages)))
        direct = Translator.from_pretrained(run / "translators" / "continuous" / "seq2seq_cooccurrence").to_english(
            messages, colors
        )
        assert [x["translation"] for x in body["results"]] == [d.translation for d in direct]
        r = client.post(
            "/v1/translate", json={"channel": "continuous", "to": "neuralese", "items": [{"utterance": t} for t in texts]}
        )
        assert r.status_code == 200, r.text
        assert all(len(x["translation"]) == 64 and x["divergence"] is None and x["faithful"] for x in r.json()["results"])


# -- one JSON form ---------------------------------------------------------------------------------

finite_or_not = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.just(float("nan")))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(max_size=8), finite_or_not, st.booleans(), st.lists(st.tuples(st.text(max_size=8), finite_or_not), max_size=3)
        ),
        max_size=5,
    )
)
def test_rows_are_strict_json_with_null_for_what_is_not_a_number(rows):
    a = max((len(r[3]) for r in rows), default=0)
    alts = [[t for t, _ in r[3]] + [""] * (a - len(r[3])) for r in rows]
    alt_div = torch.tensor([[d for _, d in r[3]] + [0.0] * (a - len(r[3])) for r in rows]).reshape(len(rows), a)
    batch = Translations(
        [r[0] for r in rows],
        torch.tensor([r[1] for r in rows]),
        torch.tensor([r[2] for r in rows], dtype=torch.bool),
        alts,
        alt_div,
    )
    for src, row in zip(rows, batch.rows()):
        out = json.loads(json.dumps(row.to_json(), allow_nan=False))
        assert out["translation"] == src[0] and out["faithful"] == src[2]
        want = torch.tensor(src[1]).item()
        assert out["divergence"] == (want if math.isfinite(want) else None)
        assert all(d is None or math.isfinite(d) for d in (x["divergence"] for x in out["alternatives"]))
