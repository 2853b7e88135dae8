"""The Ultralytics versions admd-deploy supports, and the one check of the installed version.

The range is declared once, as the ``ultralytics`` requirement in ``pyproject.toml``
(``dependencies``), and read back from the installed distribution's ``Requires-Dist``
(:func:`importlib.metadata.requires`), so a wheel install checks the same range as a checkout.
A checkout that is not installed falls back to its ``pyproject.toml``.

:func:`check_version` runs once per process, from :func:`admd_deploy.ultra.env.prepare`, before
any module imports Ultralytics. Outside the range it raises a one-line
:class:`~admd_deploy.errors.UsageError` (exit code 2 through the CLI) naming the installed
version, the supported range and the fix.
"""

from __future__ import annotations

import logging
import re
from importlib import metadata
from pathlib import Path

from admd_deploy.errors import UsageError

LOGGER = logging.getLogger(__name__)

DIST = "ultralytics"
OWN_DIST = "admd-deploy"
_REQUIREMENT = re.compile(r"^\s*ultralytics\s*(?:\[[^\]]*\])?\s*(?P<spec>[^;#\"]*)", re.IGNORECASE)
_OPS = {
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def _spec_of(requirements: list[str]) -> str | None:
    for req in requirements:
        m = _REQUIREMENT.match(req)
        if m and "extra ==" not in req:
            parts = [p.strip() for p in m.group("spec").split(",") if p.strip()]
            return ",".join(sorted(parts, key=lambda p: not p.startswith(">")))  # lower bound first
    return None


def supported_range() -> str | None:
    """The ``ultralytics`` version specifier admd-deploy declares, e.g. ``">=8.4.190,<8.5"``.

    Returns:
        The specifier, or None when neither the installed metadata nor a ``pyproject.toml`` declares one.
    """
    try:
        return _spec_of(metadata.requires(OWN_DIST) or [])
    except metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        if not pyproject.is_file():
            return None
        import tomllib

        deps = tomllib.loads(pyproject.read_text()).get("project", {}).get("dependencies", [])
        return _spec_of(list(deps))


def installed_version() -> str | None:
    """The installed Ultralytics version (from its metadata, without importing it), or None."""
    try:
        return metadata.version(DIST)
    except metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    m = re.match(r"\d+(?:\.\d+)*", version.strip())
    if not m:
        raise ValueError(f"not a release version: {version!r}")
    parts = [int(x) for x in m.group(0).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()  # 8.5 == 8.5.0
    return tuple(parts)


def in_range(version: str, spec: str) -> bool:
    """Whether ``version`` satisfies every clause of ``spec`` (``>=``, ``<=``, ``>``, ``<``, ``==``, ``!=``).

    Release numbers are compared numerically (``8.4.190 > 8.4.19``); pre-release tags are ignored.
    """
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        op = next((o for o in ("<=", ">=", "==", "!=", "<", ">") if clause.startswith(o)), None)
        if op is None:
            raise ValueError(f"unsupported version clause {clause!r} in {spec!r}")
        if not _OPS[op](_release(version), _release(clause[len(op):])):
            return False
    return True


def fix_command(spec: str) -> str:
    """The pip command that installs a supported Ultralytics."""
    return f'pip install "ultralytics{spec}"'


def check_version(version: str | None = None, spec: str | None = None) -> str | None:
    """Refuse an installed Ultralytics outside the supported range.

    Args:
        version: The version to check; default the installed one.
        spec: The supported range; default :func:`supported_range`.

    Returns:
        The checked version (None when the range is unknown: nothing to check against).

    Raises:
        UsageError: Ultralytics is not installed, or its version is outside the range.
    """
    spec = supported_range() if spec is None else spec
    version = installed_version() if version is None else version
    if spec is None:
        LOGGER.debug("no supported ultralytics range declared; version not checked")
        return version
    if version is None:
        raise UsageError(f"ultralytics is not installed; admd-deploy needs ultralytics{spec}. Fix: {fix_command(spec)}")
    if not in_range(version, spec):
        raise UsageError(f"ultralytics {version} is installed but admd-deploy supports ultralytics{spec}. "
                         f"Fix: {fix_command(spec)}")
    return version
