"""Developer tasks: `nox -s tests`, `lint`, `typing`, `docs` and `bench`.

Which Pythons
    `tests` runs on every CPython from 3.10 to 3.14 that is on the PATH as `python3.X` and starts
    (a version-manager shim for a version that is not active does not count), or, when none is,
    on the interpreter running nox. The other sessions run on one of them, 3.11 where present.
    Missing interpreters are errors, never skips: `nox -s tests` cannot exit 0 having run nothing.

PyTorch
    The generate variant of `tests`, `typing` and `bench` install the pinned CPU build
    `torch==2.13.0` first. It comes from a local CPU wheel where pip is configured with one (its
    `find-links`, as on the project's CI machines, which hold one for CPython 3.11 only);
    anywhere else from PyTorch's CPU index (`download.pytorch.org/whl/cpu`), because PyPI's own
    Linux wheel is the multi-gigabyte CUDA build. The package itself only asks for a range.

CI (the `CI` environment variable set)
    CI machines reach PyPI and Debian only, so PyTorch's CPU index is out of reach: there the
    generate variant runs only on CPython 3.11, the Python of the local wheel, and the core
    variant on 3.11 and every other Python present. CPython 3.11 missing in CI is an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nox

nox.options.sessions = ["tests", "lint", "typing", "docs"]
nox.options.reuse_existing_virtualenvs = True
# Sessions only ask for interpreters that are present (or, in CI, required): a missing one is an
# error, never a silent skip.
nox.options.error_on_missing_interpreters = True

CANDIDATES = ("3.10", "3.11", "3.12", "3.13", "3.14")
#: The Python the CI machines' local CPU wheel of torch is built for.
CI_TORCH_PYTHON = "3.11"
# The CPU build of PyTorch, pinned: an unpinned `torch` would pull the newest CUDA build (GBs).
# The package itself only asks for a range, so users get the build that suits their machine.
TORCH = "torch==2.13.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: What the generate extra must make importable before its tests may run.
GENERATE_IMPORTS = "torch, diffusers, transformers, accelerate, safetensors, PIL, numpy, tqdm, "
GENERATE_IMPORTS += (
    "torchsde, peft, huggingface_hub, fastapi, uvicorn, platformdirs, webuiapi, playwright, "
)
GENERATE_IMPORTS += "nbclient, ipykernel"
TEST_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _starts(command: str) -> bool:
    """Whether `command` is on the PATH and is a CPython that starts."""
    if shutil.which(command) is None:
        return False
    try:
        result = subprocess.run(
            [command, "-c", "import sys; sys.exit(sys.implementation.name != 'cpython')"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _present_pythons() -> list[str]:
    """The CPythons >= 3.10 to test on: those on the PATH, else the one running nox."""
    found = [version for version in CANDIDATES if _starts(f"python{version}")]
    if found:
        return found
    if sys.implementation.name == "cpython" and sys.version_info >= (3, 10):
        return [sys.executable]
    return []


PRESENT = _present_pythons()
if IN_CI:
    CORE_PYTHONS = PRESENT if CI_TORCH_PYTHON in PRESENT else [CI_TORCH_PYTHON, *PRESENT]
    GENERATE_PYTHONS = [CI_TORCH_PYTHON]
    MAIN_PYTHON: str | None = CI_TORCH_PYTHON
else:
    CORE_PYTHONS = GENERATE_PYTHONS = PRESENT
    MAIN_PYTHON = CI_TORCH_PYTHON if CI_TORCH_PYTHON in PRESENT else next(iter(PRESENT), None)

TEST_PARAMS = [
    nox.param(python, extra, id=f"{extra}, python {python}")
    for extra, pythons in (("core", CORE_PYTHONS), ("generate", GENERATE_PYTHONS))
    for python in pythons
]
if not TEST_PARAMS:  # an explicit failure instead of a session list with nothing to run
    TEST_PARAMS = [nox.param(False, "none", id="no CPython >= 3.10 found")]


def _install(session: nox.Session, *args: str) -> None:
    # Dependency groups need pip >= 25.1; the interpreter's bundled pip may be older.
    session.install("pip>=25.1")
    session.install(*args)


def _require_python(session: nox.Session) -> None:
    if session.python is False or MAIN_PYTHON is None:
        session.error(
            f"No CPython >= 3.10 found: none of python{', python'.join(CANDIDATES)} is on the "
            "PATH and starts, and nox itself runs on another Python"
        )


def _install_torch(session: nox.Session) -> None:
    """The pinned CPU build of torch, from a local wheel where pip has one, else the CPU index."""
    session.install("pip>=25.1")
    # Only a wheel in pip's `find-links` can satisfy this (its dependencies come next, below).
    python = os.path.join(session.bin, "python")
    local = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", TORCH],
        capture_output=True,
        text=True,
        check=False,
    )
    if local.returncode == 0:
        session.log(f"{TORCH} from a local wheel")
        session.install(TORCH)  # the wheel's dependencies, from the package index
    elif IN_CI:
        session.error(
            f"No local wheel for {TORCH} on this Python, and CI cannot reach PyTorch's CPU index."
            f"\n{local.stdout}{local.stderr}"
        )
    else:
        session.install(TORCH, "--index-url", TORCH_CPU_INDEX)


@nox.session
@nox.parametrize(("python", "extra"), TEST_PARAMS)
def tests(session: nox.Session, extra: str) -> None:
    """The test suite, with only the core dependencies and with the generate extra."""
    _require_python(session)
    if extra == "generate":
        _install_torch(session)
        _install(
            session,
            "-e",
            ".[generate,app]",
            "--group",
            "test",
            "--group",
            "test-generate",
            "--group",
            "test-app",
        )
        # The generate tests skip themselves without the extra; here that is a failure.
        session.run("python", "-c", f"import {GENERATE_IMPORTS}", env=TEST_ENV)
    else:
        _install(session, "-e", ".", "--group", "test")
    session.run("pytest", *session.posargs, env=TEST_ENV)


@nox.session(python=MAIN_PYTHON or False)
def lint(session: nox.Session) -> None:
    """ruff (lint and format) on everything, and the import-layer contract (import-linter)."""
    _require_python(session)
    _install(session, "-e", ".", "--group", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session(python=MAIN_PYTHON or False)
def typing(session: nox.Session) -> None:
    """mypy --strict on the package (with the generate extra, so its types are checked)."""
    _require_python(session)
    _install_torch(session)
    _install(session, "-e", ".[generate,app]", "--group", "typing")
    session.run("mypy")


@nox.session(python=MAIN_PYTHON or False)
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly (warnings are errors)."""
    _require_python(session)
    _install(session, "-e", ".", "--group", "docs")
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", os.path.join(session.create_tmp(), "site")
    )


@nox.session(python=MAIN_PYTHON or False)
def bench(session: nox.Session) -> None:
    """Benchmarks, results written to benchmarks/results/ (`nox -s bench -- --quick`: smoke run)."""
    _require_python(session)
    _install_torch(session)
    _install(session, "-e", ".[generate,app]", "--group", "bench")
    env = {**TEST_ENV, "PYTHONPATH": "."}
    for script in sorted(os.listdir("benchmarks")):
        if script.startswith("bench_") and script.endswith(".py"):
            session.run("python", os.path.join("benchmarks", script), *session.posargs, env=env)
