"""Every command the README shows in a code block works on a fresh clone.

The README's two first commands are exempt (the second is CI itself, the first is the main job, which
trains for half an hour). Every other ``bash`` block is run as written, on a fresh clone's layout (no
``data/``, no ``runs/``), with tiny overrides appended where a command trains, so a documented
command that breaks fails CI. Placeholders the README uses are made real first: the example run
folder ``runs/default-20260101-120000`` is a tiny run of the shipped config, and the example CelebA
copy ``/data/celeba`` is the clone's synthetic faces, which are in CelebA's exact layout.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

EXAMPLE_RUN = "runs/default-20260101-120000"
EXAMPLE_CELEBA = "/data/celeba"
TINY_DATA = ["data.synthetic_images=48", "data.image_size=32"]
TINY = TINY_DATA + ["model.generator.width=4", "model.discriminator.width=4", "training.epochs=1",
                    "training.steps_per_epoch=2", "training.batch_size=4", "logging.progress=none",
                    "logging.tensorboard=false", "evaluation.every_epochs=0", "evaluation.num_samples=16",
                    "evaluation.num_real=16", "evaluation.per_combination=2", "evaluation.classifier_epochs=1"]
TIMEOUT = 300


def readme_commands(text: str) -> list[str]:
    """The shell commands of the README's ``bash`` code blocks, continuation lines joined, in order."""
    return [command for kind, command in readme_blocks(text) if kind == "bash"]


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """("bash", one command) and ("python", one whole snippet) for every such code block, in README order."""
    out = []
    for kind, block in re.findall(r"^```(bash|python)\n(.*?)^```", text, flags=re.S | re.M):
        if kind == "python":
            out.append((kind, block))
            continue
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip():
                out.append((kind, command.strip()))
    return out


def set_args(items):
    return [arg for item in items for arg in ("--set", item)]


def tiny(argv: list[str]) -> list[str]:
    """``argv`` (after ``python``) with the tiny overrides a command of its kind accepts."""
    script = argv[0]
    sub = argv[2] if argv[:2] == ["-m", "homogan"] and len(argv) > 2 else None
    if script == "main.py" or script.startswith("experiments/") or sub in ("train", "train-classifier", "prepare"):
        return argv + set_args(TINY)
    if sub == "doctor":
        return argv + set_args(TINY) + ["--steps", "1", "--rounds", "1"]
    if sub == "evaluate":
        return argv + ["--n", "2", "--num-samples", "16"]
    if script == "bench/make_glyph_folder.py":  # 30 digits, not 10,000
        return argv + ["--per-class", "3"]
    if script == "bench/bench_small_data.py":  # the last --limits wins: 8 images, one epoch of 2 steps per run
        return argv + ["--limits", "8", "--steps", "2"] + set_args(TINY)
    return argv


def bench_shape(argv: list[str]) -> tuple | None:
    """What a ``bench/bench_small_data.py`` command exercises beyond its ``--set`` values: where it trains, which
    contenders, whether it evaluates during training. ``None`` for any other command."""
    if argv[:1] != ["bench/bench_small_data.py"]:
        return None
    flags = dict(zip(argv, argv[1:]))
    return (flags.get("--layout", "celeba"), "--folder" in flags, flags.get("--contenders", "no_ada,ada"),
            "--evals" in flags)


def prepare_argv(command: str, clone: Path, shapes_run: set | None = None) -> list[str]:
    """The README command as argv for this test: placeholders made real, python = this interpreter."""
    words = shlex.split(command.replace(EXAMPLE_CELEBA, str(celeba_copy(clone))), comments=True)
    assert words and words[0] in ("python", ".venv/bin/python", "python3"), f"not a python command: {command!r}"
    argv = tiny(words[1:])
    shape = bench_shape(words[1:])
    if shape is not None and shapes_run is not None:
        if shape in shapes_run:  # trained and evaluated once already: validate this one's every run, train nothing
            argv.append("--dry-run")
        shapes_run.add(shape)
    return [sys.executable, *argv]


def celeba_copy(clone: Path) -> Path:
    return clone / "data" / "synthetic" / "celeba-synthetic-v1-n48-seed0"


def run(argv, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


COMMANDS = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_two_first_commands_are_install_and_run_then_install_and_test():
    main_job, tests = COMMANDS[:2]
    assert main_job.endswith(".venv/bin/python main.py")
    assert tests == (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A fresh clone's files, plus the README's example run folder (a tiny run of the shipped config)."""
    clone = tmp_path_factory.mktemp("readme") / "clone"
    ignore = shutil.ignore_patterns("__pycache__", "results*")
    for name in ("homogan", "experiments", "bench"):
        shutil.copytree(ROOT / name, clone / name, ignore=ignore)
    for name in ("main.py", "config.json", "requirements.txt"):
        shutil.copy(ROOT / name, clone / name)
    made = run([sys.executable, "main.py", *set_args(TINY)], clone)
    assert made.returncode == 0, made.stderr[-2000:]
    (run_dir,) = (clone / "runs").iterdir()
    run_dir.rename(clone / EXAMPLE_RUN)
    assert celeba_copy(clone).is_dir()
    return clone


def test_every_readme_command_and_snippet_works_on_a_fresh_clone(clone):
    """In README order (a snippet may use what a command before it made, e.g. an export), one after the other.

    The README shows twenty small-data bench commands; the first of each shape (see :func:`bench_shape`) trains
    and evaluates, the others only ``--dry-run`` (each of their runs' configuration validated) — a whole tiny
    bench is a train and an evaluate process per contender, and ran for a quarter of the suite's time."""
    failures = []
    shapes_run: set = set()
    for kind, text in readme_blocks((ROOT / "README.md").read_text(encoding="utf-8"))[2:]:
        if kind == "bash":
            argv = prepare_argv(text, clone, shapes_run)
        else:
            argv = [sys.executable, "-c", text.replace(EXAMPLE_CELEBA, str(celeba_copy(clone)))]
        done = run(argv, clone)
        if done.returncode != 0:
            failures.append(f"{text}\n→ {' '.join(argv[1:])[:300]}\nexit {done.returncode}\n{done.stderr[-1500:]}")
    assert not failures, "\n\n".join(failures)
