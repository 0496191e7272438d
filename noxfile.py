"""Developer tasks: `nox -s tests`, `lint`, `typing`, `docs` and `bench`."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests", "lint", "typing", "docs"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

PYTHON = "3.11"
# The CPU build of PyTorch, pinned: an unpinned `torch` would pull the newest CUDA build (GBs).
# The package itself only asks for a range, so users get the build that suits their machine.
TORCH = "torch==2.13.0"
TEST_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def _install(session: nox.Session, *args: str) -> None:
    # Dependency groups need pip >= 25.1; the interpreter's bundled pip may be older.
    session.install("pip>=25.1")
    session.install(*args)


@nox.session(python=PYTHON)
@nox.parametrize("extra", ["core", "generate"])
def tests(session: nox.Session, extra: str) -> None:
    """The test suite, with only the core dependencies and with the generate extra."""
    if extra == "generate":
        _install(session, TORCH)
        _install(session, "-e", ".[generate]", "--group", "test", "--group", "test-generate")
    else:
        _install(session, "-e", ".", "--group", "test")
    session.run("pytest", *session.posargs, env=TEST_ENV)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff on everything."""
    _install(session, "--group", "lint")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def typing(session: nox.Session) -> None:
    """mypy --strict on the package (with the generate extra, so its types are checked)."""
    _install(session, TORCH)
    _install(session, "-e", ".[generate]", "--group", "typing")
    session.run("mypy")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly (warnings are errors)."""
    _install(session, "-e", ".", "--group", "docs")
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", os.path.join(session.create_tmp(), "site")
    )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks, results written to benchmarks/results/ (`nox -s bench -- --quick`: smoke run)."""
    _install(session, TORCH)
    _install(session, "-e", ".[generate]", "--group", "bench")
    env = {**TEST_ENV, "PYTHONPATH": "."}
    for script in sorted(os.listdir("benchmarks")):
        if script.startswith("bench_") and script.endswith(".py"):
            session.run("python", os.path.join("benchmarks", script), *session.posargs, env=env)
