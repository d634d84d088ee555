"""The `/play` page: people play the colour game with the agents, through the translator.

    GET  /play, /v1/play/channels, /v1/play/round?role=listener|speaker&channel=C
    POST /v1/play/answer   {"token", "choice": 0|1|2} or {"token", "utterance": "..."}

A round is a random round of a held-out corpus (default: the bundled dev.csv). As listener the
person reads the agent's message translated to English and clicks a colour (R→H); as speaker they
describe the target, which is translated to a message for the agent listener (H→R). The round's
data stays server-side under a random token in the plays database, so any service process can take
the answer, a client can neither forge a target nor answer twice, and a restart loses nothing.

Agents come from `RUN/agents/<kind>` for the channel kind of the translator served as channel C.
Agent calls run in one worker thread; translations go through the service's micro-batcher."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import run_in_threadpool

from translator.games.colors.corpus import Round, load_rounds
from translator.games.colors.plays_db import PlaysDB
from translator.models.colors.agents import Agents
from translator.storage.bundled_data import bundled
from translator.translate.colors.api import Translator, load_run_translators
from translator.translate.translations import Translation

PLAY_HTML = Path(__file__).resolve().parent / "static" / "play.html"
# The page talks to this service only: inline script and style, fetches to the same origin.
PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")  # fmt: skip

Submit = Callable[[tuple[str, str, bool], list[Any], list[Any] | None], Awaitable[list[Translation]]]


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=64, description="the round's token from /v1/play/round")
    choice: StrictInt | None = Field(None, description="listener rounds: the colour clicked, 0, 1 or 2 (as listed)")
    utterance: str | None = Field(None, description="speaker rounds: the person's description of the target")
    player: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_-]*$", description="random id kept by the page")


def css_hsl(color: Sequence[float]) -> str:
    h, s, l = color  # noqa: E741
    return f"hsl({h:g}, {s:g}%, {l:g}%)"


class Play:
    """State behind the play routes: rounds, translators, agents per channel, the database."""

    def __init__(
        self,
        run: str | Path,
        db_path: str | Path,
        rounds: list[Round],
        translators: dict[str, Translator],
        submit: Submit | None = None,
        seed: int | None = None,
    ):
        if not rounds:
            raise ValueError("play: no rounds to play")
        self.rounds, self.translators = rounds, translators
        self.agents: dict[str, Agents] = {}
        loaded: dict[str, Agents] = {}
        for channel, tr in sorted(translators.items()):
            path = Path(run) / "agents" / tr.channel.kind
            if not (path / "config.json").is_file():
                continue  # translators of agents this run does not hold (imported messages): nothing to play with
            if tr.channel.kind not in loaded:
                loaded[tr.channel.kind] = Agents.from_pretrained(path)
            if loaded[tr.channel.kind].channel == tr.channel:
                self.agents[channel] = loaded[tr.channel.kind]
        if not self.agents:
            raise ValueError(f"{run}: nothing to play: no channel has both a translator and agents (RUN/agents/<kind>)")
        self.db = PlaysDB(db_path)
        self._rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="play")
        self._submit = submit

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.db.close()

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def translate(self, channel: str, to: str, source: Any, colors: list) -> Translation:
        """One row in context, through the service's batcher when there is one."""
        if self._submit is not None:
            return (await self._submit((channel, to, True), [source], [colors]))[0]
        tr = self.translators[channel]
        fn = tr.english_checked if to == "english" else tr.neuralese_checked
        return (await self._run(fn, [source], [colors]))[0]

    def channel(self, name: str) -> str:
        if name not in self.agents:
            raise HTTPException(422, f"unknown channel {name!r}; playable here: {', '.join(self.agents)}")
        return name

    # -- agents (worker thread) ---------------------------------------------------------------------
    def _speak(self, channel: str, rnd: Round) -> list:
        return self.agents[channel].speak(*Agents.round_inputs([rnd])).value[0].tolist()

    def _listen(self, channel: str, message: list, colors: list) -> list[float]:
        return self.agents[channel].listen([message], [colors])[0].tolist()

    # -- routes -------------------------------------------------------------------------------------
    async def new_round(self, role: str, channel: str) -> dict[str, Any]:
        channel = self.channel(channel)
        rnd = self._rng.choice(self.rounds)
        colors = [list(c) for c in rnd.colors]
        data: dict[str, Any] = {"role": role, "channel": channel, "round_id": rnd.round_id, "game_id": rnd.game_id,
                                "condition": rnd.condition, "colors": colors, "target": rnd.target}  # fmt: skip
        out: dict[str, Any] = {
            "role": role,
            "channel": channel,
            "condition": rnd.condition,
            "colors": [css_hsl(c) for c in colors],
        }
        if role == "listener":
            message = self.translators[channel].check_message(await self._run(self._speak, channel, rnd))
            t = await self.translate(channel, "english", message, colors)
            data.update(message=message, translation=t.translation, faithful=t.faithful)
            out.update(translation=t.translation, faithful=t.faithful)
        else:
            out["target"] = rnd.target  # the person speaks: they must know which colour to describe
        token = secrets.token_urlsafe(18)
        await run_in_threadpool(self.db.issue, token, data)
        return {"token": token, **out}

    async def answer(self, req: AnswerRequest) -> dict[str, Any]:
        data = await run_in_threadpool(self.db.pending, req.token)
        if data is None:
            raise HTTPException(404, "unknown, expired or already answered round token; fetch a new round")
        channel, colors, target = data["channel"], data["colors"], data["target"]
        row = {k: data[k] for k in ("role", "channel", "round_id", "game_id", "condition", "colors", "target")}
        row["player"] = req.player or None
        out: dict[str, Any] = {
            "role": data["role"],
            "round_id": data["round_id"],
            "condition": data["condition"],
            "target": target,
        }
        if data["role"] == "listener":
            if req.choice is None or req.utterance is not None:
                raise HTTPException(422, "choice: a listener round is answered with the colour clicked (0, 1 or 2), no utterance")
            if not 0 <= req.choice <= 2:
                raise HTTPException(422, f"choice: {req.choice} is not 0, 1 or 2")
            row.update(message=data["message"], translation=data["translation"], faithful=data["faithful"], choice=req.choice)
        else:
            if req.utterance is None or req.choice is not None:
                raise HTTPException(422, "utterance: a speaker round is answered with the description typed, no choice")
            try:
                text = self.translators[channel].check_utterance(req.utterance)
            except ValueError as e:
                raise HTTPException(422, str(e)) from None
            t = await self.translate(channel, "neuralese", text, colors)
            probs = await self._run(self._listen, channel, t.translation, colors)
            choice = max(range(3), key=probs.__getitem__)
            row.update(message=t.translation, utterance=text, faithful=t.faithful, choice=choice)
            out.update(probabilities=probs, faithful=t.faithful)
        row["correct"] = row["choice"] == target
        stored = await run_in_threadpool(self.db.answer, req.token, row)
        if stored is None:
            raise HTTPException(409, "this round was answered already; fetch a new round")
        return {**out, "choice": row["choice"], "correct": row["correct"]}


def load_play_rounds(rounds: list[Round] | str | Path | None) -> list[Round]:
    if rounds is None:
        return load_rounds(bundled("colors_in_context", "dev.csv"))
    return rounds if isinstance(rounds, list) else load_rounds(rounds)


def page() -> str:
    if not PLAY_HTML.is_file():
        raise FileNotFoundError(f"{PLAY_HTML}: the play page is missing from this installation (package data)")
    return PLAY_HTML.read_text(encoding="utf-8")


def add_play_routes(
    app: FastAPI,
    run: str | Path,
    db_path: str | Path,
    rounds: list[Round] | str | Path | None = None,
    translators: dict[str, Translator] | None = None,
    submit: Submit | None = None,
    seed: int | None = None,
) -> Play:
    """Add `/play` and `/v1/play/*` to `app`; call the returned `Play.close()` at shutdown.

    `rounds`: rounds or a corpus CSV (default: the bundled dev.csv). `translators`: as the service
    loaded them (default: every `RUN/translators/*/belief`). `submit`: the service's batcher.
    """
    if translators is None:
        translators = load_run_translators(run)
    play = Play(run, db_path, load_play_rounds(rounds), translators, submit, seed)
    html = page()

    @app.get("/play", response_class=HTMLResponse, include_in_schema=False)
    async def play_page() -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                                           "Cache-Control": "no-cache"})  # fmt: skip

    @app.get("/v1/play/channels", tags=["play"])
    async def play_channels() -> dict[str, Any]:
        return {"channels": list(play.agents), "rounds": len(play.rounds)}

    @app.get("/v1/play/round", tags=["play"])
    async def play_round(role: Literal["listener", "speaker"], channel: str) -> dict[str, Any]:
        """A random held-out round: CSS colours, and the agent's translated message (listener) or the target (speaker)."""
        return await play.new_round(role, channel)

    @app.post("/v1/play/answer", tags=["play"])
    async def play_answer(req: AnswerRequest) -> dict[str, Any]:
        """Store the person's click (listener) or description (speaker; the agent listener picks)."""
        return await play.answer(req)

    return play
