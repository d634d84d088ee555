"""`neuralese demo`'s step runner: a rerun skips finished steps, and Ctrl-C or SIGTERM stops every
step with the processes it started, prints one line and exits 130 or 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from translator.apps.demo import Step, run_steps


def _mtimes(logs: Path, names: str) -> dict[str, int]:
    return {n: (logs / f"{n}.out").stat().st_mtime_ns for n in names}


def test_a_rerun_skips_finished_steps_and_reruns_what_changed_and_what_follows(tmp_path, capsys):
    out = tmp_path / "out.txt"
    out.write_text("x")
    steps = [Step("a", ["train", "--help"], outputs=[str(out)]), Step("b", ["collect", "--help"], ["a"]),
             Step("c", ["evaluate", "--help"])]  # fmt: skip
    logs = tmp_path / "logs"
    run_steps(steps, logs, jobs=2)
    assert all((logs / f"{n}.done").is_file() for n in "abc")
    first = _mtimes(logs, "abc")
    capsys.readouterr()

    run_steps(steps, logs, jobs=2)  # nothing changed: nothing runs
    assert _mtimes(logs, "abc") == first
    assert capsys.readouterr().out.count("finished in an earlier run") == 3

    steps[2] = Step("c", ["evaluate", "--help", "--help"])  # other arguments: c runs again, alone
    run_steps(steps, logs, jobs=2)
    now = _mtimes(logs, "abc")
    assert now["a"] == first["a"] and now["b"] == first["b"] and now["c"] > first["c"]

    out.unlink()  # a's output is gone: a runs again, and so does b, which needs it
    run_steps(steps, logs, jobs=2)
    again = _mtimes(logs, "abc")
    assert again["a"] > now["a"] and again["b"] > now["b"] and again["c"] == now["c"]

    run_steps(steps, logs, jobs=2, resume=False)  # everything again
    assert all(t > again[n] for n, t in _mtimes(logs, "abc").items())


def test_a_failed_step_is_not_marked_finished(tmp_path):
    logs = tmp_path / "logs"
    bad = [Step("fails", ["import-messages", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "x")])]
    with pytest.raises(SystemExit, match="step fails failed"):
        run_steps(bad, logs, jobs=1)
    assert not (logs / "fails.done").exists()


_SLEEPY_DEMO = textwrap.dedent("""
    import sys
    from pathlib import Path
    import translator.apps.demo as demo

    pids = Path(sys.argv[1])
    child = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
             "open(sys.argv[1], 'a').write(f'{p.pid}\\\\n'); time.sleep(600)")
    demo._argv = lambda step: [sys.executable, "-c", child, str(pids)]  # a step that starts a child of its own
    demo.run_steps([demo.Step("one", []), demo.Step("two", [])], Path(sys.argv[2]), jobs=2)
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie waiting for init to reap it has stopped


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_every_step_and_its_children(tmp_path, sig, status):
    pids = tmp_path / "pids"
    demo = subprocess.Popen([sys.executable, "-c", _SLEEPY_DEMO, str(pids), str(tmp_path / "logs")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not (pids.is_file() and len(pids.read_text().split()) == 2):
        assert time.monotonic() < deadline and demo.poll() is None, demo.communicate()
        time.sleep(0.1)
    grandchildren = [int(p) for p in pids.read_text().split()]
    demo.send_signal(sig)
    _, err = demo.communicate(timeout=60)
    assert demo.returncode == status, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("demo:")] == [
        f"demo: stopped by {signal.Signals(sig).name}; finished steps are kept, a rerun of the same command resumes"
    ]
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in grandchildren) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in grandchildren)
    assert not list((tmp_path / "logs").glob("*.done"))
    for p in grandchildren:  # in case the assertion above failed, leave nothing behind
        if _alive(p):
            os.kill(p, signal.SIGKILL)


def test_several_seeds_are_complete_runs_side_by_side_then_evaluated_together(tmp_path):
    from translator.apps.demo import color_steps, demo_steps

    out, data = tmp_path / "run", tmp_path / "data"
    one = demo_steps(out, data, quick=False, game="colors")
    assert [s.argv for s in one] == [s.argv for s in color_steps(out, data / "colors_in_context", False)]
    assert one[-1].argv[:5] == ["evaluate", "--run", str(out), "--data", str(data / "colors_in_context" / "dev.csv")]

    steps = demo_steps(out, data, quick=False, game="all", seeds=3)
    by_name = {s.name: s for s in steps}
    per_seed = len(one)
    assert len(steps) == 3 * per_seed + 2  # each seed's steps, the evaluation over seeds, driving
    for seed in range(3):
        own = [s for s in steps if s.name.startswith(f"seed-{seed}-")]
        assert len(own) == per_seed
        assert all(a.startswith(f"seed-{seed}-") for s in own for a in s.after)  # a seed waits only for itself
        assert all(str(out / f"seed-{seed}") in " ".join(s.argv) for s in own)
        english = by_name[f"seed-{seed}-english"].argv
        assert (english[-2:] == ["--seed", str(seed)]) == (seed > 0)
        judge = by_name[f"seed-{seed}-eval-listener"].argv
        assert judge[judge.index("--games-seed") + 1] == str(seed) and judge[judge.index("--seed") + 1] == str(seed + 1)
        assert by_name[f"seed-{seed}-evaluate"].argv[by_name[f"seed-{seed}-evaluate"].argv.index("--out") + 1] == str(out / "eval" / f"seed-{seed}")
    last = by_name["evaluate"]
    assert last.after == ["seed-0-evaluate", "seed-1-evaluate", "seed-2-evaluate"]
    assert last.argv[last.argv.index("--run") + 1] == str(out) and last.outputs == [f"{out}/eval/metrics.json"]
    assert [s.name for s in steps if "driving" in s.name] == ["driving"]  # driving runs once
    with pytest.raises(ValueError, match="seeds"):
        demo_steps(out, data, quick=False, seeds=0)


def test_the_evaluation_listener_trains_on_games_the_english_models_never_train_on(small_rounds, tmp_path):
    from training.colors.english import EnglishTrainArgs
    from training.colors.eval_listener import EvalListenerArgs, select_games
    from translator.apps.demo import ENGLISH_HELD_OUT, JUDGE_SHARE, color_steps
    from translator.games.colors.corpus import split_games

    assert ENGLISH_HELD_OUT == EnglishTrainArgs().val_fraction
    rounds = small_rounds["train"]
    for seed in (0, 1, 2):
        steps = {s.name: s.argv for s in color_steps(tmp_path, tmp_path, quick=False, seed=seed)}
        assert steps["english"][steps["english"].index("--judge-share") + 1] == str(JUDGE_SHARE)
        judge_argv = steps["eval-listener"]
        assert judge_argv[judge_argv.index("--games-part") + 1] == "judge"
        english_rest, english_val = split_games(rounds, EnglishTrainArgs(seed=seed).val_fraction, seed=seed)
        english_train = split_games(english_rest, JUDGE_SHARE, seed=seed)[0]  # what train_english keeps
        judge = select_games(rounds, EvalListenerArgs(games_fraction=ENGLISH_HELD_OUT, games_seed=seed, games_part="judge",
                                                      judge_share=JUDGE_SHARE))
        games = lambda rs: {r.game_id for r in rs}  # noqa: E731
        assert not games(judge) & games(english_train) and not games(judge) & games(english_val)
        assert games(judge) | games(english_train) == games(english_rest)
        assert abs(len(games(judge)) - len(games(english_train))) <= 1  # equal halves
