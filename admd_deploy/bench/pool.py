"""``admd-deploy bench pool``: one paired table from ``bench kd`` folders run on several machines.

Training is deterministic on one machine but not across machines (another CPU gives another result for
the same seed), so runs from two machines must not be compared with each other. Pairs can be: each
method's run is paired with the baseline's run of the same seed *in the same folder* (same machine,
same data order and initialisation), and the pooled statistics (:func:`.stats.summarize`) treat every
such pair as one observation. The share of the gap closed sums each folder's own teacher-baseline gap
over its pairs, so a folder's teacher is only ever set against its own baseline.

Methods are matched across folders by their resolved distillation config (``configs`` in
``bench-kd.json``), not by spec: ``admd`` in a folder run at ADMD's default weight 0.25 and
``admd:loss_weight=0.25`` in another are the same method; ``admd`` run before the default changed is
not. Folders with a ``recipe.yaml`` must share data, teacher, student and schedule (everything but the
recipe's name, seed and device), or pooling is refused with the fields that differ, unless the caller
allows those fields by name (``allow``: each machine trained its own pretrained start, say); every allowed
difference is written into the pooled table's notes with both values.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from admd_deploy.bench import stats
from admd_deploy.errors import UsageError

BASELINE = "none"
IGNORED_RECIPE_KEYS = ("name", "seed", "device")  # may differ between pooled folders


@dataclass(frozen=True)
class Source:
    """One ``bench kd`` result: its label, ``bench-kd.json`` and (when the folder has it) its recipe."""

    label: str
    path: Path
    result: dict[str, Any]
    recipe: dict[str, Any] | None

    def per_seed(self, method: str) -> dict[int, dict[str, Any]]:
        """seed -> run record of ``method`` in this folder."""
        return dict(zip(self.result.get("seeds", []), self.result.get("runs", {}).get(method, [])))

    def teacher_map(self) -> float | None:
        t = self.result.get("teacher") or {}
        return float(t["map50_95"]) if "map50_95" in t else None

    def machines(self) -> list[str]:
        """The CPUs the folder's runs recorded (runs from before machines were recorded name none)."""
        found = {str(r["machine"].get("cpu")) for rs in self.result.get("runs", {}).values() for r in rs
                 if isinstance(r, dict) and isinstance(r.get("machine"), dict)}
        return sorted(found)


def load_source(spec: str) -> Source:
    """``[LABEL=]PATH``: a ``bench kd`` output folder or its ``bench-kd.json``; the label defaults to the
    folder's name.

    Raises:
        UsageError: no such file, not a ``bench kd`` result, or an empty label.
    """
    label, sep, rest = spec.partition("=")
    if not sep or "/" in label or not rest:
        label, rest = "", spec
    path = Path(rest)
    file = path / "bench-kd.json" if path.is_dir() else path
    if not file.is_file():
        raise UsageError(f"bench pool: {spec!r}: no {file}; give a `bench kd` output folder (with bench-kd.json) "
                         "or the json itself")
    try:
        result = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise UsageError(f"bench pool: {file} is not JSON ({err})") from err
    missing = [k for k in ("runs", "seeds", "configs") if k not in result]
    if missing:
        raise UsageError(f"bench pool: {file} has no {', '.join(missing)}: not written by `admd-deploy bench kd`")
    recipe_file = file.parent / "recipe.yaml"
    recipe = yaml.safe_load(recipe_file.read_text()) if recipe_file.is_file() else None
    name = label or (file.parent.name if file.name == "bench-kd.json" else file.stem)
    return Source(name, file, result, recipe)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _comparable(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe's dotted fields that must match between pooled folders (all but :data:`IGNORED_RECIPE_KEYS`)."""
    return {k: v for k, v in _flatten(recipe).items() if k.split(".")[0] not in IGNORED_RECIPE_KEYS}


def _allowed(key: str, allow: Sequence[str]) -> bool:
    return any(key == a or key.startswith(a + ".") for a in allow)


def check_recipes(sources: Sequence[Source], allow: Sequence[str] = ()) -> list[str]:
    """Refuse folders whose recipes differ (but for name, seed, device and the ``allow`` fields); return a note
    for each folder without a recipe (a lone json: not checked) and for each allowed difference.

    Args:
        sources: The folders, the first one the reference.
        allow: Dotted recipe fields (``teacher.model``) or sections (``pretrain``) that may differ.

    Raises:
        UsageError: the differing fields, with both values and the ``--allow`` that would accept them.
    """
    notes = [f"{s.label}: no recipe.yaml beside {s.path.name}; its data and schedule were not checked"
             for s in sources if s.recipe is None]
    checked = [s for s in sources if s.recipe is not None]
    if len(checked) < 2:
        return notes
    ref = checked[0]
    flat_ref = _comparable(ref.recipe or {})
    for s in checked[1:]:
        flat = _comparable(s.recipe or {})
        diff = {k: f"{k}: {flat_ref.get(k)!r} in {ref.label}, {flat.get(k)!r} in {s.label}"
                for k in sorted(flat_ref.keys() | flat.keys()) if flat_ref.get(k) != flat.get(k)}
        refused = [k for k in diff if not _allowed(k, allow)]
        if refused:
            shown = "; ".join(diff[k] for k in refused[:6])
            raise UsageError(f"bench pool: {ref.label} and {s.label} ran different recipes ({shown}"
                             f"{'; ...' if len(refused) > 6 else ''}). Pool only folders of one recipe "
                             "(the same data, teacher, student and schedule), or, if these fields may differ, "
                             f"say so: --allow {','.join(refused)}")
        notes += [f"allowed to differ: {both}" for both in diff.values()]
    return notes


@dataclass(frozen=True)
class PooledDelta(stats.PairedDelta):
    """One method pooled over folders: every (folder, seed) pair with the baseline of the same folder and seed.

    As :class:`.stats.PairedDelta` over all pairs, but ``seeds`` names each pair ``folder:seed``, ``method`` is
    the spec's name in the first folder that ran it, and ``gap_closed`` is the sum of deltas over the sum of
    each pair's own folder's ``teacher - baseline mean`` (None when a folder has no teacher).

    Attributes:
        config: The resolved distillation config every pooled run shares.
        per_source: folder -> number of pairs.
        aliases: The method's other spec names in later folders.
    """

    config: dict[str, Any]
    per_source: dict[str, int]
    aliases: tuple[str, ...] = field(default=())


def _config_key(cfg: Mapping[str, Any]) -> str:
    """The config as the cache keys see it: a knob added after a folder ran, at the value that trains as before it
    existed, matches the folder's config without it (:func:`~admd_deploy.kd.config.cache_form`)."""
    from admd_deploy.kd.config import cache_form

    return json.dumps(cache_form(dict(cfg)), sort_keys=True, default=str)


def pool(sources: Sequence[Source], confidence: float = 0.95, notes: list[str] | None = None) -> list[PooledDelta]:
    """Pool every non-baseline method's paired deltas over ``sources`` (see the module docstring).

    A pair whose two runs both appear in an earlier folder (the same weights' sha256: one folder's results
    copied into another) counts once; ``notes``, when given, gets a line for each such pair.

    Raises:
        UsageError: fewer than two folders, two folders with one label, or no folder with a baseline.
    """
    labels = [s.label for s in sources]
    if len(sources) < 2:
        raise UsageError("bench pool: give at least two `bench kd` folders (one folder's own table is bench-kd.md)")
    if len(set(labels)) != len(labels):
        raise UsageError(f"bench pool: two folders share a label ({', '.join(labels)}); name them LABEL=PATH")
    if not any(BASELINE in s.result["runs"] for s in sources):
        raise UsageError(f"bench pool: no folder ran the baseline '{BASELINE}'; nothing to pair with")
    groups: dict[str, dict[str, Any]] = {}
    seen: dict[tuple[str, str], str] = {}  # (method run sha256, baseline run sha256) -> first folder:seed
    for s in sources:
        base = {seed: r for seed, r in s.per_seed(BASELINE).items() if "map50_95" in r}
        teacher = s.teacher_map()
        base_mean = statistics.fmean(float(r["map50_95"]) for r in base.values()) if base else None
        for method in s.result["runs"]:
            if method == BASELINE:
                continue
            cfg = s.result["configs"].get(method, {"method": method})
            g = groups.setdefault(_config_key(cfg), {"names": [], "config": cfg, "pairs": [], "deltas": [],
                                                     "gaps": [], "per_source": {}})
            if method not in g["names"]:
                g["names"].append(method)
            for seed, run in s.per_seed(method).items():
                if seed not in base or "map50_95" not in run:
                    continue
                shas = (str(run.get("sha256")), str(base[seed].get("sha256")))
                if run.get("sha256") and base[seed].get("sha256"):
                    if shas in seen:
                        if notes is not None:
                            notes.append(f"{method} {s.label}:{seed} is the same pair of runs as {seen[shas]} "
                                         "(same weights); counted once")
                        continue
                    seen[shas] = f"{s.label}:{seed}"
                g["pairs"].append(f"{s.label}:{seed}")
                g["deltas"].append(float(run["map50_95"]) - float(base[seed]["map50_95"]))
                g["gaps"].append(None if teacher is None or base_mean is None else teacher - base_mean)
                g["per_source"][s.label] = g["per_source"].get(s.label, 0) + 1
    rows = []
    for g in groups.values():
        if not g["deltas"]:
            continue
        mean, std, low, high, verdict = stats.summarize(g["deltas"], confidence)
        gaps = g["gaps"]
        gap = sum(g["deltas"]) / sum(gaps) if all(x is not None for x in gaps) and abs(sum(gaps)) > 1e-12 else None
        rows.append(PooledDelta(g["names"][0], tuple(g["pairs"]), tuple(g["deltas"]), mean, std, low, high, gap, verdict,
                                config=g["config"], per_source=g["per_source"], aliases=tuple(g["names"][1:])))
    names = [r.method for r in rows]
    # one name, two configs (e.g. `admd` before and after a default changed): say which is which
    return [r if names.count(r.method) == 1 else
            dataclasses.replace(r, method=f"{r.method} ({_knobs(r.config)})") for r in rows]


def _knobs(cfg: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in cfg.items() if k in ("loss_weight", "weight", "w_max", "params") and v)


def markdown(sources: Sequence[Source], rows: Sequence[PooledDelta], notes: Sequence[str], scale: float = 100.0) -> str:
    lines = ["# KD comparison pooled over folders (machines, data splits)", "",
             "Each method's run is paired with the baseline's run of the same seed in the same folder (same machine); "
             "the statistics treat every pair as one observation. mAP50-95 in points.", "",
             "| folder | machine | seeds | teacher | none (mean) |", "|---|---|---|---|---|"]
    for s in sources:
        base = [float(r["map50_95"]) for r in s.result["runs"].get(BASELINE, []) if "map50_95" in r]
        t = s.teacher_map()
        lines.append(f"| {s.label} | {', '.join(s.machines()) or 'not recorded'} | {s.result['seeds']} | "
                     f"{'n/a' if t is None else f'{scale * t:.1f}'} | "
                     f"{f'{scale * statistics.fmean(base):.1f}' if base else 'not run'} |")
    lines += ["", "| method | pairs | per-pair delta (points) | mean ± std | 95% CI (t) | gap closed | verdict |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        per = ", ".join(f"{p} {scale * d:+.2f}" for p, d in zip(r.seeds, r.deltas))
        ci = "n/a" if r.ci_low is None else f"[{scale * r.ci_low:+.2f}, {scale * r.ci_high:+.2f}]"  # type: ignore[operator]
        gap = "n/a" if r.gap_closed is None else f"{100 * r.gap_closed:+.0f}%"
        name = r.method + (f" (= {', '.join(r.aliases)})" if r.aliases else "")
        lines.append(f"| {name} | {len(r.seeds)} | {per} | {scale * r.mean:+.2f} ± {scale * r.std:.2f} | {ci} | {gap} | "
                     f"{r.verdict} |")
    lines += ["", "The interval is the 95% Student-t interval of the mean delta over all pairs; the gap closed is the "
              "sum of deltas over the sum of each pair's own folder's teacher-baseline gap."]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def run_pool(specs: Sequence[str], out: Path, allow: Sequence[str] = ()) -> dict[str, Any]:
    """Load, check (``allow``: recipe fields that may differ, see :func:`check_recipes`) and pool ``specs``;
    write ``bench-kd-pooled.md/.json/.png`` into ``out``."""
    sources = [load_source(s) for s in specs]
    notes = check_recipes(sources, allow)
    rows = pool(sources, notes=notes)
    out.mkdir(parents=True, exist_ok=True)
    result = {"sources": [{"label": s.label, "path": str(s.path), "machines": s.machines(), "seeds": s.result["seeds"],
                           "teacher_map50_95": s.teacher_map()} for s in sources],
              "pooled": [asdict(r) for r in rows], "notes": list(notes)}
    (out / "bench-kd-pooled.json").write_text(json.dumps(result, indent=2, default=str))
    (out / "bench-kd-pooled.md").write_text(markdown(sources, rows, notes))
    if rows:
        from admd_deploy import plots

        plots.plot_paired_deltas([asdict(r) for r in rows], out / "bench-kd-pooled.png",
                                 point="one pair (folder:seed)",
                                 title="Pooled over folders: each pair, mean and 95% interval")
    return result
