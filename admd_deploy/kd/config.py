"""The distillation knobs, each declared once, and the settings a trainer needs.

Every knob is one field of :class:`DistillConfig` made with :func:`knob`: its type (the annotation),
default, valid values or bounds and help text. Everything else is derived from those fields:

- validation: :func:`check_knob` (one value) and :func:`check_knobs` (a set of values, with the
  rules across them); :class:`~admd_deploy.kd.weighting.KDWeight` and
  :class:`~admd_deploy.kd.criterion.KDCriterion` guard their own inputs with :func:`check_knob` too;
- the recipe's ``distill`` section (:func:`with_knobs` adds the recipe knobs to it) and so
  ``docs/recipe.md`` (``docs/recipe_reference.py`` reads the fields' help and valid values);
- the ``admd-deploy distill`` flags (:func:`admd_deploy.cli.add_knob_arguments`);
- the keyword arguments of :func:`admd_deploy.distill` (:func:`knob_signature`, :func:`knob_docs`).

Adding a knob is one edit: a new field here (and the code that uses it). The dict form travels inside
Ultralytics' ``trainer.args`` (key ``distill``), so it survives the multi-GPU relaunch (the DDP child
rebuilds the trainer from ``vars(trainer.args)``) and is written into ``args.yaml`` and the training
checkpoints; its keys and values are part of the benchmark cache keys (``bench kd``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import inspect
import logging
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from admd_deploy.errors import UsageError

LOGGER = logging.getLogger(__name__)

WEIGHT_MODES = ("adaptive", "constant", "linear")

ALIGN_INITS = ("random", "lstsq")

TEACHER_SUFFIXES = (".pt", ".yaml", ".yml")


def resolve_loss_weight(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` (a config's dict form) with ``loss_weight: None`` replaced by its method's default.

    The dict form is what the cache keys hash, so a key names the weight that runs: when a loss's default
    changes, a run cached at the old default is trained again instead of being reused. ``none`` (no KD)
    keeps ``None``.
    """
    if cfg.get("loss_weight") is None and cfg.get("method", "none") != "none":
        from admd_deploy.kd.registry import LOSSES, available_methods

        if cfg["method"] in available_methods():  # loads the built-in losses
            cfg = {**cfg, "loss_weight": LOSSES[cfg["method"]].default_weight}
    return cfg


# Knobs added after cache keys were first written, each with its value that trains exactly as before it existed.
# cache_form() leaves such a knob out while it holds that value, so runs finished before it was added stay cached.
KEY_NEUTRAL: dict[str, tuple[Any, ...]] = {"ramp_epochs": (0.0,), "align_init": ("random", None), "levels": (None,),
                                          "unlabelled": (None,), "pseudo_conf": (None,)}


def uses_teacher(method: str, pseudo_conf: float | None = None) -> bool:
    """Whether a student of ``method`` needs the teacher: for its KD term, or (``pseudo_conf``) to draw pseudo-labels.

    ``none`` with ``pseudo_conf`` is the student alone on the labelled and the teacher-labelled images: hard-label
    distillation without a feature term."""
    return method != "none" or pseudo_conf is not None


def cache_form(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` (a config's dict form) as the cache keys hash it: without the :data:`KEY_NEUTRAL` knobs at their
    neutral values. Only for hashing: a dict read back (``from_dict``) must keep every knob."""
    return {k: v for k, v in cfg.items() if not (k in KEY_NEUTRAL and v in KEY_NEUTRAL[k])}


# ADMD's defaults when the student starts from trained weights (fine-tuning a pretrained student), chosen on the
# pretrained tuning split and checked on the evaluation split (BENCHMARKS.md, "The epoch-2 fall is BatchNorm lag; a
# least-squares connector" and "Leaving P5 out"): the connector fitted by least squares at the end of its warm-up, a
# constant weight, and P3 and P4 distilled (P5 left out). From scratch the library defaults (a trained connector, the
# adaptive weight, every level) keep their measured gain.
TRAINED_START_DEFAULTS: dict[str, dict[str, Any]] = {
    "admd": {"align_init": "lstsq", "weight": "constant", "levels": "P3,P4"}}


def start_defaults(knobs: Mapping[str, Any], trained: bool) -> dict[str, Any]:
    """``knobs`` with the defaults for the student's start filled in: a copy, every value set by the user kept.

    When the student starts from trained weights (``trained``) and ``align_init`` is left at ``None``, a method
    in :data:`TRAINED_START_DEFAULTS` gets those values for every knob left at ``None`` (for ADMD: ``align_init:
    lstsq``, ``weight: constant`` and ``levels: P3,P4``). Nothing changes from scratch, for the other methods, when
    ``align_init`` is set (``random`` keeps ADMD's from-scratch defaults), or without a connector warm-up (``lstsq``
    fits on it).
    """
    out = dict(knobs)
    fills = TRAINED_START_DEFAULTS.get(out.get("method", DistillConfig.method), {})
    warmup = out.get("align_warmup_epochs", DistillConfig.align_warmup_epochs)
    if not trained or not fills or out.get("align_init") is not None or not warmup or warmup <= 0:
        return out
    filled = {k: v for k, v in fills.items() if out.get(k) is None}
    if filled:
        LOGGER.info("distill: the student starts from trained weights, so %s runs with %s (its fine-tuning defaults, "
                    "BENCHMARKS.md); set them in the recipe to override", out.get("method", DistillConfig.method),
                    ", ".join(f"{k}: {v}" for k, v in filled.items()))
    return {**out, **filled}


@dataclass(frozen=True)
class Knob:
    """What one :class:`DistillConfig` field is, beyond its type and default.

    Attributes:
        help: One or two sentences for the user (CLI ``--help``, docs/recipe.md, the API docstring).
        choices: The valid values of a string knob, or a function returning them (``method``: the loss
            registry, read when a value is checked).
        low: Lower bound of a number knob.
        high: Upper bound of a number knob.
        low_open: ``low`` itself is not allowed (``> low`` instead of ``>= low``).
        high_open: ``high`` itself is not allowed.
        note: Why the bound is what it is, or what a value means; appended to the error in brackets.
        flag: The command-line flag; default ``--`` and the name with dashes (``--w-max``).
        recipe: Whether the recipe's ``distill`` section has this key (the teacher has its own section).
    """

    help: str
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    note: str = ""
    flag: str | None = None
    recipe: bool = True

    def valid_values(self) -> list[str]:
        """The valid values of a string knob (empty for the others)."""
        return list(self.choices() if callable(self.choices) else self.choices or ())

    def bounds(self) -> str:
        """The bounds in words: ``in [0, 1)``, ``>= 1``, ``> 0``; empty when unbounded."""
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return ""

    def cli_flag(self, name: str) -> str:
        return self.flag or "--" + name.replace("_", "-")


def knob(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **spec: Any) -> Any:
    """A :class:`DistillConfig` field: its default and its :class:`Knob` (``help``, bounds, ...)."""
    return field(default=default, default_factory=default_factory, metadata={"knob": Knob(**spec)})


def _methods() -> list[str]:
    from admd_deploy.kd.registry import available_methods  # imports torch: only when a method is checked

    return available_methods()


@dataclass(frozen=True)
class DistillConfig:
    """How to distil: every distillation knob, declared once (see the module docstring).

    A config holds a teacher unless its method is ``none`` (the student trained alone, the baseline):
    that run is a legal config without one. The knobs alone, before a teacher is known (a recipe at
    load time), are checked with :func:`check_knobs`.
    """

    method: str = knob(
        "admd", choices=_methods,
        help="A registered loss name (``admd``, ``mse``, ``score_l2``, ``cwd``, ``mgd``, ``pkd``) or ``none`` (the "
             "student trained alone, the baseline).")
    teacher: str | None = knob(
        None, recipe=False,
        help="Teacher checkpoint (``.pt``) or model YAML (plumbing tests only: an untrained teacher). Required "
             "unless ``method`` is ``none``.")
    loss_weight: float | None = knob(
        None, low=0, low_open=True, note="use method 'none' for no KD",
        help="Lambda in ``L = L_det + lambda * w_t * L_kd``; ``None`` takes the loss's default.")
    params: dict[str, Any] = knob(
        default_factory=dict, flag="--param",
        help="Keyword parameters of the loss, e.g. ``mask=softmax``, ``tau=0.5`` for admd; each method's are "
             "listed in docs/recipe.md.")
    weight: str | None = knob(
        None, choices=WEIGHT_MODES,
        help="KD weight schedule: ``adaptive`` (ADMD's weight-increasing module), ``constant``, ``linear``; "
             "``None`` means ``adaptive`` for admd and ``constant`` for the peers (and ``constant`` for admd when its "
             "student starts from trained weights: see ``align_init``).")
    beta: float = knob(
        0.99, low=0, high=1, high_open=True, note="EMA factor, e.g. 0.99",
        help="EMA factor of the KD loss tracked by the weighting module.")
    warmup_epochs: float = knob(
        1.0, low=0,
        help="Epochs before the adaptive weight freezes its reference loss.")
    w_max: float = knob(
        10.0, low=1, note="the weight only ever increases from 1",
        help="Upper bound of the KD weight.")
    align_warmup_epochs: float = knob(
        1.0, low=0, note="0 = off",
        help="Epochs at the start during which the KD loss trains only the align connectors (the student's maps "
             "are detached), so that a randomly initialised connector does not push a pretrained student's "
             "features around (FitNets' hint stage). 0 = off.")
    align_init: str | None = knob(
        None, choices=ALIGN_INITS,
        help="How the align connectors start distilling: ``random`` (PyTorch's init, trained by the KD loss) or "
             "``lstsq`` (during the connector warm-up the student and teacher maps are accumulated, and when it ends "
             "each connector is set to the least-squares map from student to teacher features, so the student is "
             "taught the part of the discrepancy no linear map explains). ``lstsq`` needs "
             "``align_warmup_epochs > 0``. ``None``: ``random``, except for admd with a student that starts from "
             "trained weights (a ``.pt`` or a recipe's pretrain stage), which gets ``lstsq`` and, for ``weight`` and "
             "``levels`` left unset, a constant weight and P3,P4: its measured setting for fine-tuning "
             "(BENCHMARKS.md).")
    ramp_epochs: float = knob(
        0.0, low=0, note="0 = the student gets the whole KD gradient at once",
        help="Epochs after the connector warm-up over which the share of the KD gradient that reaches the student "
             "rises linearly from 0 to 1 (the loss value and the connectors' gradient are unchanged), so that "
             "the optimiser's moment estimates follow the new gradient instead of taking one large step when "
             "KD switches on. 0 = off.")
    levels: str | None = knob(
        None, note="comma-separated level names, e.g. P3,P4",
        help="Which pyramid levels feeding the head are distilled, by name (``P3,P4``; ``P3+P4`` in a ``bench kd`` "
             "method spec); ``None``: every level. "
             "A level left out still has its connector and its discrepancy logged, but adds nothing to the KD loss. "
             "For admd with a student that starts from trained weights, ``None`` means ``P3,P4`` (see ``align_init``).")
    unlabelled: str | None = knob(
        None, recipe=False,
        help="A folder of unlabelled target images (searched recursively) for the KD term: each training step also "
             "distils on a batch of them, as large as the labelled batch, while the detection loss sees the labelled "
             "images only. A recipe sets it with ``data.unlabelled``; ``None``: labelled images only.")
    pseudo_conf: float | None = knob(
        None, low=0, high=1, low_open=True, high_open=True, note="a detection confidence, e.g. 0.5",
        help="Pseudo-labels: before training, the teacher predicts on the unlabelled images (``data.unlabelled``) and "
             "its detections with at least this confidence become their labels, so those images join the training "
             "set (detection loss and KD term alike) instead of feeding the KD term alone. With method ``none`` the "
             "student trains alone on them (pseudo-labels without a feature term). ``None``: off.")

    def __post_init__(self) -> None:
        check_knobs(self.knob_values(), type(self))
        object.__setattr__(self, "levels", canonical_levels(self.levels))
        if not uses_teacher(self.method, self.pseudo_conf):
            return
        if self.teacher is None:
            if self.method == "none":
                raise UsageError("distill.pseudo_conf is set but method 'none' has no teacher to draw pseudo-labels "
                                 "from: pass a teacher .pt, or remove pseudo_conf")
            raise UsageError(f"distill.teacher is required for method {self.method!r}: pass a teacher .pt (or a YAML)")
        if Path(self.teacher).suffix not in TEACHER_SUFFIXES:
            raise UsageError(f"distill.teacher must be a local .pt checkpoint or a model .yaml; got {self.teacher!r}")

    def knob_values(self) -> dict[str, Any]:
        """Every field but the teacher, by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "teacher"}

    @property
    def align_init_mode(self) -> str:
        """The connector start in effect (resolving ``None``; :func:`start_defaults` fills it for a trained start)."""
        return self.align_init or "random"

    @property
    def weight_mode(self) -> str:
        """The weight schedule in effect (resolving ``None``)."""
        return self.weight or ("adaptive" if self.method == "admd" else "constant")

    def weighting(self) -> dict[str, Any]:
        """Keyword arguments of :class:`admd_deploy.kd.weighting.KDWeight`."""
        return {"mode": self.weight_mode, "beta": self.beta, "warmup_epochs": self.warmup_epochs, "w_max": self.w_max}

    def to_dict(self) -> dict[str, Any]:
        """Plain-types form (YAML, checkpoints, the DDP relaunch, the benchmark cache keys).

        ``loss_weight`` holds the value that runs (see :func:`resolve_loss_weight`).
        """
        return resolve_loss_weight(dataclasses.asdict(self))

    @classmethod
    def knob_dict(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`to_dict` of a config with these knobs and no teacher yet, the knobs checked as a recipe's are.

        For settings checked before their teacher exists (a benchmark's method list before the teacher has
        trained); every field not in ``values`` has its default.
        """
        _reject_unknown(cls, values, "distill")
        check_knobs(values, cls)
        out = copy.deepcopy({**{f.name: knob_default(f) for f in knob_fields(cls)}, **values})
        return resolve_loss_weight({**out, "levels": canonical_levels(out.get("levels"))})

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "distill") -> DistillConfig:
        """Build from a mapping, rejecting unknown keys with the valid ones listed."""
        if isinstance(data, DistillConfig):
            return data
        if not isinstance(data, dict):
            raise UsageError(f"{where} must be a mapping; got {type(data).__name__}")
        _reject_unknown(cls, data, where)
        return cls(**data)


def _reject_unknown(cls: type, data: Mapping[str, Any], where: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        keys = ", ".join(f"{where}.{k}" for k in unknown)
        raise UsageError(f"unknown key(s) {keys}; valid keys: {', '.join(sorted(known))}")


# --------------------------------------------------------------------------------------------- the spec, read
def knob_fields(spec: type = DistillConfig, *, recipe: bool | None = None) -> list[dataclasses.Field]:
    """The knob fields of ``spec`` in declaration order; ``recipe=True`` keeps the recipe's keys only."""
    out = [f for f in dataclasses.fields(spec) if "knob" in f.metadata]
    return out if recipe is None else [f for f in out if f.metadata["knob"].recipe is recipe]


@functools.cache
def knob_types(spec: type = DistillConfig) -> types.MappingProxyType:
    """The knobs' types (``float``, ``float | None``, ``dict[str, Any]``, ...), resolved once per spec."""
    return types.MappingProxyType(typing.get_type_hints(spec))


def knob_default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _spec_field(name: str, spec: type) -> tuple[Knob, Any]:
    for f in knob_fields(spec):
        if f.name == name:
            return f.metadata["knob"], knob_types(spec)[name]
    raise KeyError(f"{spec.__name__} has no knob {name!r}")  # a bug in the caller, not user input


def knob_kinds(tp: Any) -> tuple[set[Any], bool]:
    """The non-None origins of a type (``float | None`` -> ``{float}``, True)."""
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    return {typing.get_origin(a) or a for a in args if a is not type(None)}, type(None) in args


# --------------------------------------------------------------------------------------------- validation
def check_knob(name: str, value: Any, where: str | None = None, *, required: bool = False,
               spec: type = DistillConfig) -> Any:
    """Check one knob's value against its declaration; return it unchanged.

    Args:
        name: The knob (a :class:`DistillConfig` field).
        value: The value given.
        where: How the message names the value; default ``distill.<name>``.
        required: Refuse ``None`` even where the knob allows it (a library argument with no default).
        spec: The spec class (a subclass of :class:`DistillConfig` with more knobs).

    Raises:
        UsageError: One line: the field, what is valid, what was given.
    """
    k, tp = _spec_field(name, spec)
    where = where or f"distill.{name}"
    kinds, nullable = knob_kinds(tp)
    if value is None:
        if nullable and not required:
            return value
        raise UsageError(f"{where} must be set; got None")
    if float in kinds:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{where} must be a number; got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise UsageError(f"{where} must be a finite number; got {value!r}")
        ok = ((k.low is None or (value > k.low if k.low_open else value >= k.low))
              and (k.high is None or (value < k.high if k.high_open else value <= k.high)))
        if not ok:
            note = f" ({k.note})" if k.note else ""
            raise UsageError(f"{where} must be {k.bounds()}{note}; got {value!r}")
    elif dict in kinds:
        if not isinstance(value, Mapping):
            raise UsageError(f"{where} must be a mapping of loss parameters; got {type(value).__name__}")
    elif str in kinds:
        valid = k.valid_values()
        if not isinstance(value, str) or (valid and value not in valid):
            close = difflib.get_close_matches(str(value), valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"{where} must be one of {', '.join(valid)}; got {value!r}{hint}")
    return value


def check_knobs(values: Mapping[str, Any], spec: type = DistillConfig) -> None:
    """Check a set of knob values (a recipe section, a config without its teacher) and the rules across them.

    Knobs absent from ``values`` are not checked (their defaults are valid); ``teacher`` is not a knob here.

    Raises:
        UsageError: The first wrong value, naming ``distill.<name>``, what is valid and the fix.
    """
    for f in knob_fields(spec):
        if f.name in values and f.name != "teacher":
            check_knob(f.name, values[f.name], spec=spec)
    if values.get("align_init") == "lstsq" and values.get("align_warmup_epochs", spec.align_warmup_epochs) == 0:
        raise UsageError("distill.align_init 'lstsq' fits the connectors on the maps seen during the connector warm-up, "
                         "but distill.align_warmup_epochs is 0: set align_warmup_epochs > 0 (e.g. 1) or "
                         "align_init: random")
    if values.get("levels") is not None:
        parse_levels(values["levels"])
    method, params = values.get("method", spec.method), values.get("params") or {}
    if method == "none":
        if params:
            raise UsageError("distill.params is set but method 'none' has no loss; remove params or pick a method")
        if values.get("unlabelled") is not None and values.get("pseudo_conf") is None:
            raise UsageError("distill.unlabelled is set but method 'none' has no KD term to run on them; remove it, "
                             "pick a method (e.g. admd), or set pseudo_conf (the teacher labels them)")
        return
    # Build the loss once now: a wrong parameter fails at load, not after the teacher has loaded.
    from admd_deploy.kd.registry import build_loss

    try:
        build_loss(method, 8, **params)
    except (TypeError, ValueError) as err:  # the loss refused the user's parameters (it names which and why)
        raise UsageError(f"distill.params: {err}") from err


LEVEL_NAME = re.compile(r"P[1-9]")


def parse_levels(levels: str, where: str = "distill.levels") -> list[str]:
    """``"P3, P4"`` (or ``"P3+P4"``, for a ``bench kd --methods`` spec) -> ``["P3", "P4"]``; refuses an empty list, a
    name that is not ``P<digit>``, a repeat."""
    names = [n.strip() for n in re.split(r"[,+]", str(levels))]
    bad = [n for n in names if not LEVEL_NAME.fullmatch(n)]
    if bad:
        raise UsageError(f"{where} must be comma-separated pyramid level names like P3,P4; got {levels!r}")
    if len(set(names)) != len(names):
        raise UsageError(f"{where} names a level twice; got {levels!r}")
    return names


def canonical_levels(levels: str | None) -> str | None:
    """One spelling per setting, so one cache key: ``"P3+P4"``, ``" P3, P4"`` -> ``"P3,P4"``; ``None`` stays."""
    return None if levels is None else ",".join(parse_levels(levels))


def level_mask(levels: str | None, available: Sequence[str], where: str = "distill.levels") -> list[bool]:
    """Per level of ``available`` (the student's level names, head order), whether it is distilled."""
    if levels is None:
        return [True] * len(available)
    names = parse_levels(levels, where)
    missing = [n for n in names if n not in available]
    if missing:
        raise UsageError(f"{where}: {', '.join(missing)} is not a level of this student (its levels: "
                         f"{', '.join(available)}); fix: name some of those, or remove levels to distil all")
    return [n in names for n in available]


# --------------------------------------------------------------------------------------------- derived forms
def with_knobs(spec: type = DistillConfig) -> Callable[[type], type]:
    """Class decorator (under ``@dataclass``): add the recipe knobs of ``spec`` as fields.

    They come before the class's own fields, with the same types, defaults and :class:`Knob`; the class
    attribute ``knob_spec`` names ``spec``.
    """

    def add(cls: type) -> type:
        hints = knob_types(spec)
        own = dict(cls.__dict__.get("__annotations__", {}))
        added = {}
        for f in knob_fields(spec, recipe=True):
            added[f.name] = hints[f.name]
            setattr(cls, f.name, field(default=f.default, default_factory=f.default_factory, metadata=f.metadata))
        cls.__annotations__ = {**added, **own}
        cls.knob_spec = spec
        return cls

    return add


def knob_signature(fn: Callable[..., Any], after: str, spec: type = DistillConfig) -> inspect.Signature:
    """``fn``'s signature with every knob not already in it added as a keyword argument after ``after``.

    A knob given as ``None`` (the default here) takes the spec's default.
    """
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    hints = knob_types(spec)
    names = {p.name for p in params}
    extra = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                               annotation=hints[f.name] | None)
             for f in knob_fields(spec) if f.name not in names]
    at = [p.name for p in params].index(after) + 1
    return sig.replace(parameters=[*params[:at], *extra, *params[at:]])


def knob_docs(indent: str = "        ", skip: tuple[str, ...] = (), spec: type = DistillConfig) -> str:
    """Google-docstring ``Args`` items for every knob (``name: help (default ...)``)."""
    lines = []
    for f in knob_fields(spec):
        if f.name in skip:
            continue
        default = knob_default(f)
        text = f"{f.metadata['knob'].help} Default: ``{default!r}``."
        lines.append(f"{indent}{f.name}: {text}")
    return "\n".join(lines)


DistillConfig.__doc__ = f"{DistillConfig.__doc__.rstrip()}\n\n    Attributes:\n{knob_docs()}\n"
