"""The play page: its SQLite store, its API on a real uvicorn process, and the page itself in headless Chromium."""

from __future__ import annotations

import colorsys
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from translator.games.colors.plays_db import PlaysDB, format_plays, plays_report

ROOT = Path(__file__).resolve().parents[1]
# `neuralese serve` through `add_live_commands`, as cli.py wires it
SERVE = (
    "import argparse, sys; from translator.apps.live_cli import add_live_commands; "
    "p = argparse.ArgumentParser(); add_live_commands(p.add_subparsers(dest='command', required=True)); "
    "a = p.parse_args(sys.argv[1:]); a.func(a)"
)
COLORS = [[10.0, 50.0, 50.0], [200.0, 60.0, 40.0], [120.0, 30.0, 70.0]]


def _row(i: int = 0, **kw) -> dict:
    row = {"role": "listener", "channel": "continuous", "round_id": f"g{i % 5}/{i}", "game_id": f"g{i % 5}", "condition": "far",
           "colors": COLORS, "target": 1, "message": [0.5] * 4, "translation": "blue", "choice": 1, "correct": True}  # fmt: skip
    return {**row, **kw}


# -- the store ----------------------------------------------------------------------------------------


def test_rows_round_trip_and_survive_a_restart(tmp_path):
    path = tmp_path / "sub" / "plays.sqlite"
    with PlaysDB(path) as db:
        a = db.record(**_row(0, faithful=False, player="p1"))
        b = db.record(**_row(1, role="speaker", message=[1, 2, 0], translation=None, utterance="the ~ blue one", choice=2, correct=False))
        assert db.rows() == [a, b] and len(db) == 2
        assert db._con().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with pytest.raises(ValueError, match="role"):
            db.record(**_row(2, role="referee"))
        with pytest.raises(ValueError, match=r"missing \['target'\]"):
            db.record(**_row(2, target=None))
    with PlaysDB(path) as db:  # a restart: a new process would see the same
        rows = db.rows()
    assert rows == [a, b]
    assert rows[0]["colors"] == COLORS and rows[0]["correct"] is True and rows[0]["faithful"] is False and rows[0]["player"] == "p1"
    assert rows[1]["message"] == [1, 2, 0] and rows[1]["utterance"] == "the ~ blue one" and rows[1]["correct"] is False
    assert rows[0]["created_at"].endswith("+00:00") and rows[0]["id"] < rows[1]["id"]


def test_concurrent_writers_do_not_corrupt_the_database(tmp_path):
    path = tmp_path / "plays.sqlite"
    dbs = [PlaysDB(path), PlaysDB(path)]  # two "processes" worth of connections, 4 threads each
    errors: list[BaseException] = []
    spent: list[dict | None] = []

    def writer(k: int) -> None:
        try:
            db = dbs[k % 2]
            for i in range(40):
                db.record(**_row(1000 * k + i, player=f"t{k}"))
                if i % 10 == 0:
                    db.rows()  # readers alongside writers
            spent.append(db.answer("shared", _row(9999, player=f"t{k}")))  # one token, raced by every thread
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    dbs[0].issue("shared", {"round": "r"})
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sum(s is not None for s in spent) == 1  # the token was spent exactly once
    rows = PlaysDB(path).rows()
    assert len(rows) == 8 * 40 + 1 and len({r["id"] for r in rows}) == len(rows)
    for k in range(8):  # each thread's rows, all there, in its order
        mine = [r["round_id"] for r in rows if r["player"] == f"t{k}" and r["round_id"] != "g4/9999"]
        assert mine == [f"g{(1000 * k + i) % 5}/{1000 * k + i}" for i in range(40)]
    assert dbs[1]._con().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for db in dbs:
        db.close()


def test_tokens_are_spent_once_and_expire(tmp_path):
    db = PlaysDB(tmp_path / "plays.sqlite", token_ttl=0.3)
    db.issue("t1", {"target": 2})
    db.issue("t2", {"target": 0})
    assert db.pending("t1") == {"target": 2} and db.pending("nope") is None
    assert db.answer("t1", _row(1))["round_id"] == "g1/1"
    assert db.answer("t1", _row(2)) is None and db.pending("t1") is None  # spent
    time.sleep(0.35)
    assert db.pending("t2") is None and db.answer("t2", _row(3)) is None  # expired
    db.issue("t3", {})  # issuing forgets expired tokens
    assert db._con().execute("SELECT token FROM tokens").fetchall() == [("t3",)]
    assert len(db) == 1
    db.close()


# One "server process" on a plays database: deals its tokens, then answers another process's tokens
# and races for a shared one. Prints what it got, as JSON.
_PROCESS = """
import json, sys, time
from translator.games.colors.plays_db import PlaysDB
path, k, phase = sys.argv[1], int(sys.argv[2]), sys.argv[3]
row = {"role": "listener", "channel": "c", "round_id": "g/1", "game_id": "g", "condition": "far",
       "colors": [[1, 2, 3]] * 3, "target": 1, "choice": 1, "correct": True}
with PlaysDB(path) as db:  # phase "deal": all processes create the fresh file at once
    if phase == "deal":
        for i in range(25):
            db.issue(f"p{k}-{i}", {"by": k, "i": i})
            db.record(**row, player=f"deal{k}")
        if k == 0:
            db.issue("shared", {"by": 0})
        print(json.dumps([]))
    else:
        other = (k + 1) % 4
        got = [db.pending(f"p{other}-{i}") for i in range(25)]
        answered = [db.answer(f"p{other}-{i}", {**row, "player": f"answer{k}"}) is not None for i in range(25)]
        shared = db.answer("shared", {**row, "player": f"shared{k}"}) is not None
        print(json.dumps([got, answered, shared]))
"""


def _processes(path: Path, phase: str) -> list:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _PROCESS, str(path), str(k), phase], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(4)]  # fmt: skip
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    return [json.loads(out) for out, _ in outs]


def test_tokens_are_shared_by_processes(tmp_path):
    """Tokens and rows live in the SQLite file, not in a process: four processes create a fresh
    database at once, deal rounds, and then answer each other's rounds, each exactly once."""
    path = tmp_path / "plays.sqlite"
    _processes(path, "deal")
    results = _processes(path, "answer")
    for k, (got, answered, _) in enumerate(results):
        assert got == [{"by": (k + 1) % 4, "i": i} for i in range(25)] and all(answered)
    assert sum(shared for *_, shared in results) == 1  # the shared token was spent once
    with PlaysDB(path) as db:
        rows = db.rows()
        assert db._con().execute("SELECT COUNT(*) FROM tokens").fetchone()[0] == 0
    players = [r["player"] for r in rows]
    assert len(rows) == 4 * 25 + 4 * 25 + 1
    assert all(players.count(f"deal{k}") == 25 and players.count(f"answer{k}") == 25 for k in range(4))


def test_not_a_plays_database(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="not a plays database"):
        PlaysDB(bad)
    with pytest.raises(ValueError, match="no such plays database"):
        plays_report(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()  # reporting never creates a database


def test_plays_report_by_condition_beside_model_numbers(tmp_path):
    path = tmp_path / "plays.sqlite"
    with PlaysDB(path) as db:
        for i, (cond, ok) in enumerate([("far", True), ("far", True), ("close", False), ("close", True), ("split", False)]):
            db.record(**_row(i, condition=cond, correct=ok, player="a" if i < 3 else "b"))
        for i, (cond, ok) in enumerate([("far", True), ("close", False)]):
            db.record(**_row(10 + i, role="speaker", channel="gumbel", condition=cond, correct=ok, utterance="blue"))
    rep = plays_report(path)
    assert rep["rounds"] == 7
    lis, spk = rep["listener"], rep["speaker"]
    assert lis["rounds"] == 5 and lis["accuracy"] == pytest.approx(3 / 5)
    assert lis["by_condition"]["far"]["accuracy"] == 1.0 and lis["by_condition"]["close"]["accuracy"] == 0.5
    assert lis["by_condition"]["split"] == {"accuracy": 0.0, "ci95": [0.0, 0.0], "rounds": 1}
    assert spk["rounds"] == 2 and spk["accuracy"] == 0.5 and set(spk["by_condition"]) == {"far", "close"}
    assert set(rep["by_channel"]) == {"continuous", "gumbel"}
    assert rep["by_channel"]["gumbel"]["listener"]["rounds"] == 0 and math.isnan(rep["by_channel"]["gumbel"]["listener"]["accuracy"])
    assert rep["by_channel"]["continuous"]["listener"] == lis
    model = {"accuracy": 0.7, "ci95": [0.6, 0.8], "rounds": 100, "by_condition": {"far": {"accuracy": 0.9, "ci95": [0, 1], "rounds": 40}}}
    text = format_plays({"human_play": rep, "translation": {"continuous": {"belief": {"to_english": model}}}})
    lines = text.splitlines()
    assert "7 rounds" in lines[0]
    assert any("model R->H" in ln and "0.700 (n=100)" in ln and "0.900 (n=40)" in ln for ln in lines)
    assert any("people R->H" in ln and "continuous" in ln and "0.600 (n=5)" in ln and "1.000 (n=2)" in ln for ln in lines)
    assert any("people H->R" in ln and "gumbel" in ln and "0.500 (n=2)" in ln for ln in lines)
    assert format_plays({}) == ""
    json.dumps(rep)  # JSON-ready (NaN for a role nobody played, as other reports)


# -- the service ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`neuralese serve --plays DB --play-data CSV` in a subprocess; restartable on the same database."""

    def __init__(self, run: Path, db: Path, data: Path, workers: int = 1):
        self.run, self.db, self.data, self.workers = run, db, data, workers
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> str:
        port = _free_port()
        self.starts += 1
        self.log = self.run / f"server{self.starts}.log"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVE, "serve", "--run", str(self.run), "--port", str(port), "--threads", "1",
                 "--plays", str(self.db), "--play-data", str(self.data), "--workers", str(self.workers), "--log-level", "warning"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self.url
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def play_run(saved_belief_translator, tiny_agents, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("play") / "run"
    shutil.copytree(saved_belief_translator, run / "translators" / "continuous" / "belief")
    tiny_agents.save_pretrained(run / "agents" / "continuous")
    return run


@pytest.fixture(scope="module")
def held_out(game_slice):
    from translator.games.colors.corpus import load_rounds

    path = game_slice(48, 68)  # games none of the tiny models trained on
    return path, {r.round_id: r for r in load_rounds(path)}


@pytest.fixture(scope="module")
def server(play_run, held_out):
    s = Server(play_run, play_run.parent / "plays.sqlite", held_out[0])
    s.start()
    yield s
    s.stop()


def _hsl_css(c) -> str:
    return f"hsl({c[0]:g}, {c[1]:g}%, {c[2]:g}%)"


def test_play_api_both_roles(server, held_out, saved_belief_translator, tiny_agents):
    from translator.translate.colors.api import Translator

    url, rounds = server.url, held_out[1]
    before = len(PlaysDB(server.db).rows())
    info = httpx.get(url + "/v1/play/channels").json()
    assert info == {"channels": ["continuous"], "rounds": len(rounds)}

    # listener: the agent speaks, the person reads its English and clicks
    r = httpx.get(url + "/v1/play/round", params={"role": "listener", "channel": "continuous"})
    assert r.status_code == 200, r.text
    rnd = r.json()
    assert set(rnd) == {"token", "role", "channel", "condition", "colors", "translation", "faithful"}  # no target, no round id
    assert isinstance(rnd["translation"], str) and rnd["translation"] and all(c.startswith("hsl(") for c in rnd["colors"])
    a = httpx.post(url + "/v1/play/answer", json={"token": rnd["token"], "choice": 2, "player": "api-test"}).json()
    truth = rounds[a["round_id"]]
    assert [_hsl_css(c) for c in truth.colors] == rnd["colors"] and a["condition"] == truth.condition == rnd["condition"]
    assert a["target"] == truth.target and a["choice"] == 2 and a["correct"] == (truth.target == 2)
    row = PlaysDB(server.db).rows()[-1]
    assert row["role"] == "listener" and row["round_id"] == truth.round_id and row["game_id"] == truth.game_id
    assert row["colors"] == [list(c) for c in truth.colors] and row["target"] == truth.target and row["choice"] == 2
    assert row["translation"] == rnd["translation"] and row["faithful"] == rnd["faithful"] and len(row["message"]) == 64
    assert row["correct"] == a["correct"] and row["player"] == "api-test" and row["utterance"] is None
    translator = Translator.from_pretrained(saved_belief_translator)  # the stored message says what the page showed
    assert translator.to_english([row["message"]], [row["colors"]])[0].translation == rnd["translation"]

    # speaker: the person sees the target and describes it; the agent listener picks
    rnd = httpx.get(url + "/v1/play/round", params={"role": "speaker", "channel": "continuous"}).json()
    assert set(rnd) == {"token", "role", "channel", "condition", "colors", "target"}
    a = httpx.post(url + "/v1/play/answer", json={"token": rnd["token"], "utterance": "the bright blue one"}).json()
    truth = rounds[a["round_id"]]
    assert rnd["target"] == a["target"] == truth.target and a["choice"] in (0, 1, 2)
    assert a["correct"] == (a["choice"] == truth.target) and sum(a["probabilities"]) == pytest.approx(1, abs=1e-5)
    row = PlaysDB(server.db).rows()[-1]
    assert row["role"] == "speaker" and row["utterance"] == "the bright blue one" and row["translation"] is None
    assert row["choice"] == a["choice"] and row["correct"] == a["correct"] and row["player"] is None
    colors = [list(c) for c in truth.colors]
    message = translator.to_neuralese(["the bright blue one"], [colors])[0].translation
    assert row["message"] == pytest.approx(message, abs=1e-5)  # the utterance was translated in context
    assert int(tiny_agents.listen([message], [colors]).argmax()) == a["choice"]  # and the agent listener picked
    assert len(PlaysDB(server.db).rows()) == before + 2


def test_play_api_refuses_bad_requests(server):
    url = server.url

    def new(role: str) -> str:
        return httpx.get(url + "/v1/play/round", params={"role": role, "channel": "continuous"}).json()["token"]

    def answer(body: dict) -> httpx.Response:
        return httpx.post(url + "/v1/play/answer", json=body)

    before = len(PlaysDB(server.db).rows())
    r = httpx.get(url + "/v1/play/round", params={"role": "referee", "channel": "continuous"})
    assert r.status_code == 422 and "role" in r.json()["detail"]
    r = httpx.get(url + "/v1/play/round", params={"role": "listener", "channel": "../etc"})
    assert r.status_code == 422 and "unknown channel" in r.json()["detail"]
    assert httpx.get(url + "/v1/play/round", params={"role": "listener"}).status_code == 422
    assert answer({"token": "forged", "choice": 0}).status_code == 404
    lt, st = new("listener"), new("speaker")
    for body, pattern in [
        ({"token": lt, "choice": 3}, "not 0, 1 or 2"),
        ({"token": lt, "utterance": "blue"}, "listener round"),
        ({"token": lt, "choice": 1, "target": 1}, "Extra inputs"),  # a client cannot name the target
        ({"token": lt, "choice": True}, "valid integer"),
        ({"token": st, "choice": 0}, "speaker round"),
        ({"token": st, "utterance": "   "}, "empty"),
        ({"token": st, "utterance": "x" * 2001}, "limit of 2000"),
        ({"token": st, "utterance": "blue", "player": "<script>"}, "player"),
    ]:
        r = answer(body)
        assert r.status_code == 422 and pattern in r.json()["detail"], (body, r.text)
    assert answer({"token": lt, "choice": 0}).status_code == 200  # refused answers did not spend the tokens
    assert answer({"token": st, "utterance": "dark green"}).status_code == 200
    r = answer({"token": lt, "choice": 1})
    assert r.status_code == 404 and "already answered" in r.json()["detail"]
    assert len(PlaysDB(server.db).rows()) == before + 2
    # the page: self-contained, nothing fetched from elsewhere
    page = httpx.get(url + "/play")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"] and "connect-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text and "<script src" not in page.text
    assert "/play" not in httpx.get(url + "/openapi.json").json()["paths"]


def _rgb(css: str) -> tuple[int, int, int]:
    return tuple(int(x) for x in css[css.index("(") + 1 : css.index(")")].split(","))  # type: ignore[return-value]


def test_play_page_in_headless_chromium(server, held_out):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    missing = [what for what, found in (("the playwright package (pip install playwright)", sync_playwright),
                                        ("Debian's chromium (apt-get install chromium)", chromium)) if found is None]  # fmt: skip
    if missing:  # `make test` installs both where it can; CI must run this test
        if os.environ.get("CI"):
            pytest.fail(f"the browser test cannot run under CI: missing {' and '.join(missing)}")
        pytest.skip(f"browser test skipped: missing {' and '.join(missing)}")
    url, rounds = server.url, held_out[1]
    before = len(PlaysDB(server.db).rows())
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(url + "/play")

            # as listener: read the agent's English, click the second colour
            page.wait_for_selector("body[data-state=ready]")
            assert page.input_value("#role") == "listener" and page.input_value("#channel") == "continuous"
            said = page.text_content("#translation")
            assert said and page.is_visible("#said") and not page.is_visible("#describe")
            shown = [page.eval_on_selector(f"#swatch-{i}", "el => getComputedStyle(el).backgroundColor") for i in range(3)]
            page.click("#swatch-1")
            page.wait_for_selector("body[data-state=answered]")
            result = page.text_content("#result")
            listener = PlaysDB(server.db).rows()[-1]
            assert listener["role"] == "listener" and listener["choice"] == 1 and listener["translation"] == said
            assert ("picked the target" in result) == listener["correct"] == (listener["target"] == 1)
            truth = rounds[listener["round_id"]]
            for css, (h, s, l) in zip(shown, truth.colors):  # the swatches are the round's colours  # noqa: E741
                want = [round(255 * x) for x in colorsys.hls_to_rgb(h / 360, l / 100, s / 100)]
                assert all(abs(a - b) <= 1 for a, b in zip(_rgb(css), want)), (css, want)
            assert page.is_visible(f"#swatch-{truth.target}.target")
            assert page.text_content("#score").startswith(f"As listener: {int(listener['correct'])}/1")

            # as speaker: describe the marked target, the agent listener picks
            page.select_option("#role", "speaker")
            page.wait_for_selector("body[data-state=ready]")
            assert page.is_visible("#describe") and not page.is_visible("#said")
            assert page.locator(".swatch.target").count() == 1 and page.is_disabled("#swatch-0")
            target_shown = int(page.get_attribute(".swatch.target", "data-index"))
            page.fill("#utterance", "the light green one")
            page.click("#send")
            page.wait_for_selector("body[data-state=answered]")
            speaker = PlaysDB(server.db).rows()[-1]
            assert speaker["role"] == "speaker" and speaker["utterance"] == "the light green one"
            assert speaker["target"] == target_shown == rounds[speaker["round_id"]].target
            assert page.is_visible(f"#swatch-{speaker['choice']}.picked")
            assert ("picked the target" in page.text_content("#result")) == speaker["correct"]
            assert speaker["player"] == listener["player"] and len(speaker["player"]) == 18  # one tab, one player
            assert page.is_visible("#next")
        finally:
            browser.close()
    assert len(PlaysDB(server.db).rows()) == before + 2
    assert not problems, problems
    assert requests and all(r.startswith(url + "/") for r in requests), requests  # nothing fetched from elsewhere


def test_rows_survive_a_server_restart(server):
    rows = PlaysDB(server.db).rows()
    assert len(rows) >= 4  # from the tests above
    rnd = httpx.get(server.url + "/v1/play/round", params={"role": "listener", "channel": "continuous"}).json()
    server.stop()
    url = server.start()  # a new process on the same database
    assert PlaysDB(server.db).rows() == rows
    # the round dealt before the restart is still answerable: its token is in the database
    assert httpx.post(url + "/v1/play/answer", json={"token": rnd["token"], "choice": 0}).status_code == 200
    after = PlaysDB(server.db).rows()
    assert after[: len(rows)] == rows and len(after) == len(rows) + 1 and after[-1]["id"] > rows[-1]["id"]
    rep = plays_report(server.db)
    assert rep["rounds"] == len(after) and rep["listener"]["rounds"] + rep["speaker"]["rounds"] == len(after)


def test_play_page_with_several_server_processes(play_run, held_out, tmp_path):
    """`serve --workers 2 --plays`: whichever process deals a round, any process takes its answer."""
    server = Server(play_run, tmp_path / "plays.sqlite", held_out[0], workers=2)
    server.start()
    try:
        dealt = []
        for role in ("listener", "speaker") * 4:  # a new connection each time: the kernel spreads them over the processes
            r = httpx.get(server.url + "/v1/play/round", params={"role": role, "channel": "continuous"}, headers={"Connection": "close"})
            assert r.status_code == 200, r.text
            dealt.append(r.json())
        for rnd in reversed(dealt):
            answer = {"choice": 1} if rnd["role"] == "listener" else {"utterance": "the blue one"}
            r = httpx.post(server.url + "/v1/play/answer", json={"token": rnd["token"], **answer}, headers={"Connection": "close"})
            assert r.status_code == 200, r.text
            again = httpx.post(server.url + "/v1/play/answer", json={"token": rnd["token"], **answer}, headers={"Connection": "close"})
            assert again.status_code == 404  # spent, whichever process is asked
    finally:
        server.stop()
    rows = PlaysDB(server.db).rows()
    assert [r["role"] for r in rows] == [r["role"] for r in reversed(dealt)]
    assert "Traceback" not in server.log.read_text()


def test_play_options_are_checked(tmp_path, play_run, held_out):
    from translator.apps.service import create_app

    with pytest.raises(ValueError, match="needs --plays"):
        create_app(play_run, play_data=tmp_path / "x.csv")
    empty = tmp_path / "run"
    shutil.copytree(play_run / "translators", empty / "translators")  # translators, but no agents
    with pytest.raises(ValueError, match="nothing to play"):
        create_app(empty, plays_db=tmp_path / "plays.sqlite", play_data=held_out[0])
