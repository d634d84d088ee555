"""`neuralese demo`: the whole pipeline on the bundled corpus, as the CLI commands a user would run.

The steps form a small dependency graph (agents do not need the English models; each channel's
translators need only its own collection; evaluation needs everything). They run as `neuralese`
subprocesses, `jobs` at a time, each with a fixed number of torch threads (one, mostly), so that
the results do not depend on `jobs`; docs/decisions.md says why one thread.

Each step writes its output to `RUN/logs/STEP.out` and its progress bars to `RUN/logs/STEP.err`;
a step that ends well leaves `STEP.done`, so a rerun of the same command skips it. A failing step
stops the demo with the end of its log; Ctrl-C or SIGTERM stops every step and what it started.

With several seeds, each seed S of the colour game is a complete run in `RUN/seed-S/` (steps
`seed-S-NAME`, evaluated to `RUN/eval/seed-S/`), and a last step evaluates `RUN` as a whole:
means over seeds and their spread (`eval/seeds.py`). One seed keeps the layout of a single run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from translator.apps import games
from translator.models.channels import CHANNEL_KINDS as CHANNELS
from translator.storage.bundle import write_json

# Which translators the demo builds per channel (seq2seq models cost minutes each on 2 cores).
DEMO_TRANSLATORS = {
    "continuous": ("belief", "seq2seq_cooccurrence", "seq2seq_belief", "direct"),
    "gumbel": ("belief", "direct"),
    "reinforce": ("belief", "direct"),
}


@dataclass
class Step:
    name: str
    argv: list[str]  # `neuralese` arguments
    after: list[str] = field(default_factory=list)  # steps that must finish first
    threads: int | None = 1  # torch threads (None: torch's choice)
    outputs: list[str] = field(default_factory=list)  # what it writes: a rerun skips it only while these exist


# Share of the training games the English models hold out for validation (`EnglishTrainArgs.val_fraction`,
# split by their seed): the evaluation listener trains on exactly these games.
ENGLISH_HELD_OUT = 0.1
JUDGE_SHARE = 0.5  # of the games the English models do not hold out: the judge's, disjoint from theirs


def demo_steps(out: Path, data: Path, quick: bool, jobs: int = 2, game: str = "all", seeds: int = 1) -> list[Step]:
    """The demo's steps for `game` ("all": every registered game's), in the order they are started when their inputs
    are ready (long chains first). `data` is the folder of the bundled corpora. `seeds` applies to
    the colour game; the driving game runs once (its seed 0). Each game's steps come from its entry
    in the game registry (translator/apps/games.py), in the order of registration."""
    if game != "all" and game not in games.names():
        raise ValueError(f"game {game!r}: expected one of {', '.join(('all', *games.names()))}")
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    return games.demo_steps(game, out, data, quick, jobs, seeds)


def seeded_steps(out: Path, data: Path, quick: bool, jobs: int, seeds: int) -> list[Step]:
    """`seeds` complete colour-game runs, seed S in `out/seed-S` and evaluated to `out/eval/seed-S`,
    then the evaluation of `out` as a whole, which reuses those (`eval.seeds`). Seed 0's steps come
    first, so that with few jobs the seeds finish one after the other."""
    steps: list[Step] = []
    for seed in range(seeds):
        own = color_steps(out / f"seed-{seed}", data, quick, jobs, seed=seed, eval_out=out / "eval" / f"seed-{seed}")
        names = {s.name for s in own}
        steps += [replace(s, name=f"seed-{seed}-{s.name}", after=[f"seed-{seed}-{a}" if a in names else a for a in s.after]) for s in own]
    steps.append(Step("evaluate", ["evaluate", "--run", str(out), "--data", str(data / "dev.csv"), "--out", f"{out}/eval", "--jobs", str(jobs)]
                      + (["--games", "12"] if quick else []), [f"seed-{seed}-evaluate" for seed in range(seeds)],
                      outputs=[f"{out}/eval/metrics.json"]))
    return steps


def color_steps(out: Path, data: Path, quick: bool, jobs: int = 2, seed: int = 0, eval_out: Path | None = None) -> list[Step]:
    """The colour game's steps for one seed; `data` holds its train.csv and dev.csv. Every model is
    seeded with `seed`. The English models hold out a tenth of the training games (`split_games(train,
    0.1, seed)`, where every choice is made) and leave half of the others to the evaluation
    listener: the judge and the listener and speaker the translators consult are trained on disjoint
    games of equal number. Evaluation goes to `eval_out` (`out/eval`)."""
    train, run = str(data / "train.csv"), str(out)
    q = quick
    seeded = ["--seed", str(seed)] if seed else []  # seed 0 is every command's default
    steps = [Step("english", ["train", "english", "--train", train, "--out", run, "--jobs", "2",
                              "--judge-share", str(JUDGE_SHARE)] + seeded
                  + (["--listener-epochs", "1", "--speaker-epochs", "1", "--max-steps", "60"] if q else []),
                  outputs=[f"{run}/english"])]
    channels = ("continuous",) if q else CHANNELS
    for channel in channels:
        steps.append(Step(f"agents-{channel}", ["train", "agents", "--channel", channel, "--train", train, "--out", run] + seeded
                          + (["--steps", "150"] if q else []), outputs=[f"{run}/agents/{channel}"]))
    for channel in channels:
        steps.append(Step(f"collect-{channel}", ["collect", "--agents", f"{run}/agents/{channel}", "--data", train,
                                                 "--out", f"{run}/pairs/{channel}"] + seeded, [f"agents-{channel}"],
                          outputs=[f"{run}/pairs/{channel}"]))
    for channel in channels:
        for name in DEMO_TRANSLATORS[channel]:
            kind, _, source = name.partition("_")
            argv = ["train", "translator", "--kind", kind, "--pairs", f"{run}/pairs/{channel}", "--out", run] + seeded
            argv += ["--source", source] if source else []
            argv += ["--contexts", "32", "--min-count", "2", "--max-steps", "20", "--epochs", "1"] if q else ["--epochs", "4"]
            after = ["english", f"collect-{channel}"] + (["translator-continuous-belief"] if name == "seq2seq_belief" else [])
            steps.append(Step(f"translator-{channel}-{name}", argv, after, outputs=[f"{run}/translators/{channel}/{name}"]))
        if channel == "continuous":  # the continuous agents treated as a black box: p(z | c, x) from their messages alone
            steps.append(Step("translator-continuous_learned-belief",
                              ["train", "translator", "--kind", "belief", "--message-model", "learned", "--name",
                               "continuous_learned", "--pairs", f"{run}/pairs/continuous", "--out", run] + seeded
                              + (["--contexts", "32", "--min-count", "2", "--epochs", "2"] if q else []),
                              ["english", "collect-continuous"], outputs=[f"{run}/translators/continuous_learned/belief"]))
    steps.append(Step("eval-listener", ["train", "eval-listener", "--train", train, "--out", run, "--seed", str(seed + 1),
                                        "--games-fraction", str(ENGLISH_HELD_OUT), "--games-seed", str(seed), "--games-part", "judge",
                                        "--judge-share", str(JUDGE_SHARE)]
                      + (["--epochs", "6", "--max-steps", "60"] if q else []), ["english"], outputs=[f"{run}/eval_listener"]))
    before_eval = [s.name for s in steps]
    evaluated = str(eval_out or out / "eval")
    steps.append(Step("evaluate", ["evaluate", "--run", run, "--data", str(data / "dev.csv"), "--out", evaluated, "--jobs", str(jobs)]
                      + (["--games", "12"] if q else []), before_eval, outputs=[f"{evaluated}/metrics.json"]))
    return steps


def _argv(step: Step) -> list[str]:
    return [sys.executable, "-m", "translator.apps.cli", *step.argv] + (["--threads", str(step.threads)] if step.threads else [])


def _launch(step: Step, logs: Path) -> subprocess.Popen:
    """Start `step` in a session of its own, so that a Ctrl-C at the terminal reaches only the demo,
    which then stops each step with all the processes the step started (`_stop`)."""
    with open(logs / f"{step.name}.out", "w") as out, open(logs / f"{step.name}.err", "w") as err:
        return subprocess.Popen(_argv(step), stdout=out, stderr=err, env={**os.environ, "TQDM_MININTERVAL": "5"},
                                start_new_session=True)


def _stop(procs: list[subprocess.Popen], grace: float = 10.0) -> None:
    """SIGTERM every process group of `procs`, then SIGKILL what is still there after `grace` seconds."""
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(proc, signal.SIGKILL)  # the step's own children too, even when the step has ended
        proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").replace("\r", "\n") if path.is_file() else ""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def _done_file(logs: Path, step: Step) -> Path:
    return logs / f"{step.name}.done"


def _finished_before(step: Step, logs: Path, rerun: set[str]) -> bool:
    """Whether a step can be skipped: it finished with the same arguments, nothing it needs runs
    again, and its output is still there."""
    marker = _done_file(logs, step)
    if not marker.is_file() or rerun & set(step.after):
        return False
    try:
        same = json.loads(marker.read_text(encoding="utf-8")).get("argv") == step.argv
    except (OSError, ValueError, AttributeError):
        return False
    return same and all(Path(p).exists() for p in step.outputs)


class _Stopped(Exception):
    def __init__(self, signum: int):
        self.signum = signum


def _raise_stopped(signum: int, _frame: object) -> None:
    raise _Stopped(signum)


def run_steps(steps: list[Step], logs: Path, jobs: int, resume: bool = True) -> None:
    """Run `steps` as subprocesses, at most `jobs` at once, each when the steps it needs are done.

    With `resume`, a step that finished in an earlier run of the same steps is skipped (its
    `STEP.done` in `logs` records its arguments); agent training resumes from its own checkpoint.
    `SystemExit` naming the step and its log when one fails (the others are stopped); on Ctrl-C or
    SIGTERM every running step and its children are stopped, one line is printed, and the exit
    status is 130 or 143."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    known = {s.name for s in steps}
    for s in steps:
        if not set(s.after) <= known:
            raise ValueError(f"step {s.name} waits for unknown steps {sorted(set(s.after) - known)}")
    logs.mkdir(parents=True, exist_ok=True)
    running: dict[str, tuple[Step, subprocess.Popen, float]] = {}
    handlers = {sig: signal.signal(sig, _raise_stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    bar = tqdm(total=len(steps), desc="demo steps", unit="step", disable=None)  # no bar when stderr is not a terminal
    try:
        _schedule(steps, logs, jobs, resume, running, bar)
    except _Stopped as stop:
        for sig in handlers:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C does not cut the clean-up short
        _stop([proc for _, proc, _ in running.values()])
        running.clear()
        bar.close()
        name = signal.Signals(stop.signum).name
        print(f"demo: stopped by {name}; finished steps are kept, a rerun of the same command resumes", file=sys.stderr)
        raise SystemExit(128 + stop.signum) from None
    finally:
        _stop([proc for _, proc, _ in running.values()], grace=5.0)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        bar.close()


def _schedule(steps: list[Step], logs: Path, jobs: int, resume: bool, running: dict, bar: tqdm) -> None:
    pending, done, rerun = list(steps), set(), set()
    while pending or running:
        while resume and (skip := [s for s in pending if set(s.after) <= done and _finished_before(s, logs, rerun)]):
            for s in skip:
                pending.remove(s)
                done.add(s.name)
                bar.update(1)
                tqdm.write(f"[{s.name}] finished in an earlier run (logs: {logs / s.name}.out); skipped")
        for s in [s for s in pending if set(s.after) <= done][: max(0, jobs - len(running))]:
            pending.remove(s)
            rerun.add(s.name)
            _done_file(logs, s).unlink(missing_ok=True)
            running[s.name] = (s, _launch(s, logs), time.perf_counter())
        if not running:
            if pending:
                raise ValueError(f"steps {[s.name for s in pending]} wait for each other")
            break
        bar.set_postfix_str(", ".join(running), refresh=False)
        time.sleep(0.2)
        for name, (s, proc, start) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            if proc.returncode != 0:
                raise SystemExit(f"demo: step {name} failed (exit {proc.returncode}): neuralese {' '.join(s.argv)}\n"
                                 f"{_tail(logs / f'{name}.err')}\n{_tail(logs / f'{name}.out')}\n"
                                 f"logs: {logs / name}.out, .err")
            write_json(_done_file(logs, s), {"argv": s.argv})
            done.add(name)
            bar.update(1)
            summary = (logs / f"{name}.out").read_text(errors="replace").strip()
            tqdm.write(f"[{name}, {time.perf_counter() - start:.0f} s] {summary}")
