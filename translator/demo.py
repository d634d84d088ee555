"""`neuralese demo`: the whole pipeline on the bundled corpus, as the CLI commands a user would run.

The steps form a small dependency graph (agents do not need the English models; each channel's
translators need only its own collection; evaluation needs everything). They run as `neuralese`
subprocesses, `jobs` at a time, each with one torch thread: on this project's 2-core machine the
models are too small for a second thread to help much (a seq2seq epoch takes 16 s with one thread
and 18 s with two), while two steps side by side take half the time. A second thread beside another
step costs more than it gives: the English models took 591 s with two threads next to the agents,
439 s with one. Two steps spread their own work over processes of one thread: the English models
(the listener and the speaker side by side, `train english --jobs 2`) and the evaluation. Thread
counts are fixed per step whatever `jobs` is, so the results do not depend on it.

Each step writes its output to `RUN/logs/STEP.out` and its progress bars to `RUN/logs/STEP.err`;
the demo shows one progress bar over the steps and each step's summary as it finishes. A failing
step stops the demo with the end of its log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from translator.channels import CHANNEL_KINDS as CHANNELS

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


def demo_steps(out: Path, data: Path, quick: bool, jobs: int = 2) -> list[Step]:
    """The demo's steps in the order they are started when their inputs are ready (long chains first)."""
    train, run = str(data / "train.csv"), str(out)
    q = quick
    steps = [Step("english", ["train", "english", "--train", train, "--out", run, "--jobs", "2"]
                  + (["--listener-epochs", "1", "--speaker-epochs", "1", "--max-steps", "60"] if q else []))]
    channels = ("continuous",) if q else CHANNELS
    for channel in channels:
        steps.append(Step(f"agents-{channel}", ["train", "agents", "--channel", channel, "--train", train, "--out", run]
                          + (["--steps", "150"] if q else [])))
    for channel in channels:
        steps.append(Step(f"collect-{channel}", ["collect", "--agents", f"{run}/agents/{channel}", "--data", train,
                                                 "--out", f"{run}/pairs/{channel}"], [f"agents-{channel}"]))
    for channel in channels:
        for name in DEMO_TRANSLATORS[channel]:
            kind, _, source = name.partition("_")
            argv = ["train", "translator", "--kind", kind, "--pairs", f"{run}/pairs/{channel}", "--out", run]
            argv += ["--source", source] if source else []
            argv += ["--contexts", "32", "--min-count", "2", "--max-steps", "20", "--epochs", "1"] if q else ["--epochs", "4"]
            after = ["english", f"collect-{channel}"] + (["translator-continuous-belief"] if name == "seq2seq_belief" else [])
            steps.append(Step(f"translator-{channel}-{name}", argv, after))
        if channel == "continuous":  # the continuous agents treated as a black box: p(z | c, x) from their messages alone
            steps.append(Step("translator-continuous_learned-belief",
                              ["train", "translator", "--kind", "belief", "--message-model", "learned", "--name",
                               "continuous_learned", "--pairs", f"{run}/pairs/continuous", "--out", run]
                              + (["--contexts", "32", "--min-count", "2", "--epochs", "2"] if q else []),
                              ["english", "collect-continuous"]))
    steps.append(Step("eval-listener", ["train", "eval-listener", "--train", train, "--out", run]
                      + (["--epochs", "1", "--max-steps", "60"] if q else []), ["english"]))
    before_eval = [s.name for s in steps]
    steps.append(Step("evaluate", ["evaluate", "--run", run, "--data", str(data / "dev.csv"), "--out", f"{run}/eval", "--jobs", str(jobs)]
                      + (["--games", "12"] if q else []), before_eval))
    return steps


def _launch(step: Step, logs: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "translator.cli", *step.argv] + (["--threads", str(step.threads)] if step.threads else [])
    with open(logs / f"{step.name}.out", "w") as out, open(logs / f"{step.name}.err", "w") as err:
        return subprocess.Popen(argv, stdout=out, stderr=err, env={**os.environ, "TQDM_MININTERVAL": "5"})


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").replace("\r", "\n") if path.is_file() else ""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def run_steps(steps: list[Step], logs: Path, jobs: int) -> None:
    """Run `steps` as subprocesses, at most `jobs` at once, each when the steps it needs are done.
    `SystemExit` naming the step and its log when one fails (the others are stopped)."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    logs.mkdir(parents=True, exist_ok=True)
    known = {s.name for s in steps}
    for s in steps:
        if not set(s.after) <= known:
            raise ValueError(f"step {s.name} waits for unknown steps {sorted(set(s.after) - known)}")
    pending, running, done = list(steps), {}, set()
    bar = tqdm(total=len(steps), desc="demo steps", unit="step", disable=None)
    try:
        while pending or running:
            for s in [s for s in pending if set(s.after) <= done][: max(0, jobs - len(running))]:
                pending.remove(s)
                running[s.name] = (s, _launch(s, logs), time.perf_counter())
            if not running:
                raise ValueError(f"steps {[s.name for s in pending]} wait for each other")
            if getattr(bar, "postfix", None) != (now := ", ".join(running)):  # a disabled bar (no terminal) has none
                bar.set_postfix_str(now)
            time.sleep(0.2)
            for name, (s, proc, start) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[name]
                if proc.returncode != 0:
                    raise SystemExit(f"demo: step {name} failed (exit {proc.returncode}): neuralese {' '.join(s.argv)}\n"
                                     f"{_tail(logs / f'{name}.err')}\n{_tail(logs / f'{name}.out')}\n"
                                     f"logs: {logs / name}.out, .err")
                done.add(name)
                bar.update(1)
                summary = (logs / f"{name}.out").read_text(errors="replace").strip()
                tqdm.write(f"[{name}, {time.perf_counter() - start:.0f} s] {summary}")
    finally:
        for _, proc, _ in running.values():
            proc.terminate()
        bar.close()
