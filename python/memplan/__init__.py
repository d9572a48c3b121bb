"""memplan: how much GPU memory a model needs to train or serve, and which parallel plan fits.

The same library as the ``memplan`` command line and ``memplan serve``'s web page: the same
scenario gives the same bytes in all three.

>>> import memplan
>>> est = memplan.estimate(model="gpt2", batch=4, precision="mixed-bf16")
>>> est.model.parameters
124439808
>>> est.per_gpu.weights_bytes == 2 * est.model.parameters   # bf16 weights: 2 bytes each
True

Keyword arguments are the settings of ``memplan.settings()`` (the CLI's flags, ``_`` for
``-``); values are strings, numbers or booleans and mean what the same text means on the
command line. ``hf_config`` also takes a dict (``AutoConfig.from_pretrained(...).to_dict()``),
a ``transformers`` config object, a path or the JSON text. Bad input raises
:class:`MemplanError` with the CLI's message and hint.
"""

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import _native
from ._errors import MemplanError
from ._format import fmt_bytes, fmt_count
from ._results import (
    CompareReport,
    EstimateReport,
    Fit,
    ModelInfo,
    PerGpu,
    PlanReport,
    PlanRow,
    Presets,
    Record,
    Setting,
)

__version__ = _native.__version__

__all__ = [
    "estimate",
    "plan",
    "compare",
    "presets",
    "settings",
    "MemplanError",
    "EstimateReport",
    "PlanReport",
    "CompareReport",
    "Presets",
    "Setting",
    "PerGpu",
    "ModelInfo",
    "Fit",
    "PlanRow",
    "Record",
    "fmt_bytes",
    "fmt_count",
]


def estimate(**settings: Any) -> EstimateReport:
    # The docstring is written from the settings table below.
    text, table = _native.estimate(settings)
    return EstimateReport(text, table)


def plan(**settings: Any) -> PlanReport:
    text, table = _native.plan(settings)
    return PlanReport(text, table)


def _pairs(arg: Union[None, str, Sequence[str], Mapping[str, Any]], what: str) -> List[str]:
    """``key=value`` strings from a mapping or strings (each value as ``--set`` takes it)."""
    if arg is None:
        return []
    if isinstance(arg, str):
        return [arg]
    if isinstance(arg, Mapping):
        return ["{}={}".format(k, _native.value_text(k, v)) for k, v in arg.items()]
    out = []
    for item in arg:
        if isinstance(item, Mapping):
            out.append(",".join("{}={}".format(k, _native.value_text(k, v)) for k, v in item.items()))
        elif isinstance(item, str):
            out.append(item)
        else:
            raise MemplanError(
                "invalid {}: `{!r}`".format(what, item), "expected a `key=value` string or a dict of settings"
            )
    return out


def compare(
    models: Union[None, str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]] = None,
    *,
    set: Union[None, str, Sequence[str], Mapping[str, Any]] = None,
    vary: Union[None, str, Sequence[str], Mapping[str, Sequence[Any]]] = None,
    variant: Union[None, str, Sequence[Union[str, Mapping[str, Any]]]] = None,
    **settings: Any,
) -> CompareReport:
    """Several models or settings side by side, as ``memplan compare``.

    models: model presets, ``.toml`` model files or ``.json`` Hugging Face configs (one row
        each); none: the model of the settings.
    set: settings applied to every row first: ``{"recompute": "full"}`` or ``["recompute=full"]``.
    vary: one row per value (several: their product): ``{"batch": [1, 2, 4]}`` or
        ``["batch=1,2,4"]``.
    variant: one row each: ``[{"tp": 8, "zero": 1}, "tp=4,zero=3"]``.
    **settings: shared by every row; ``gpu=["h100-sxm", "a100-80gb"]`` are the GPU columns
        (none: every preset).

    >>> c = memplan.compare(["gpt2", "gpt2-medium"], vary={"batch": [1, 8]}, gpu="a100-80gb")
    >>> [r.name for r in c.rows]
    ['gpt2 batch=1', 'gpt2 batch=8', 'gpt2-medium batch=1', 'gpt2-medium batch=8']
    """
    if models is None:
        names: List[str] = []
    elif isinstance(models, (str, os.PathLike)):
        names = [os.fspath(models)]
    else:
        names = [os.fspath(m) for m in models]
    if isinstance(vary, Mapping):
        vary_list = ["{}={}".format(k, ",".join(_native.value_text(k, x) for x in v)) for k, v in vary.items()]
    else:
        vary_list = _pairs(vary, "vary")
    text, table = _native.compare(settings, names, _pairs(set, "set"), vary_list, _pairs(variant, "variant"))
    return CompareReport(text, table)


def presets() -> Presets:
    """The model and GPU presets: ``presets().models``, ``presets().gpus``."""
    import json

    return Presets(json.loads(_native.presets()))


def settings() -> List[Setting]:
    """The settings table: every keyword argument of estimate, plan and compare, with its
    kind, default, bounds and help (the CLI's flags and the web page's form read the same)."""
    import json

    return [Setting(d) for d in json.loads(_native.settings())]


def _document() -> None:
    """Write estimate's and plan's docstrings from the settings table."""
    table = settings()

    def describe(entry: str) -> str:
        lines: List[str] = []
        heading = None
        for s in table:
            d = s.to_dict()
            if not d[entry] or (entry == "plan" and d["plan_searches"]):
                continue
            if d["heading"] != heading:
                heading = d["heading"]
                lines.append("")
                lines.append(heading + ":")
            kind = d["kind"]
            if d["choices"]:
                kind = " | ".join(d["choices"])
            default = "" if d["default"] is None else " Default: {}.".format(d["default"])
            lines.append("    {} ({}): {}{}".format(s.python_name, kind, d["help"], default))
        return "\n".join(lines)

    estimate.__doc__ = (
        "Per-GPU memory of a training step or a forward pass, term by term, as ``memplan estimate``.\n\n"
        "    est = memplan.estimate(model=\"llama-2-7b\", batch=4, seq=4096, precision=\"mixed-bf16\", tp=2)\n"
        "    est.per_gpu.total_bytes, est.fit(\"h100-sxm\").headroom_bytes\n\n"
        "Returns an EstimateReport whose to_dict() equals the CLI's --format json output.\n"
        "Raises MemplanError (the CLI's error and hint) for bad input.\n\n"
        "Keyword arguments (each optional; the default applies when not given):" + describe("estimate")
    )
    plan.__doc__ = (
        "Search the parallel plans that fit a cluster and rank them by predicted step time, as\n"
        "``memplan plan`` (the micro-batch and recomputation are searched too).\n\n"
        "    p = memplan.plan(model=\"llama-2-7b\", gpus=\"16xh100-sxm\", global_batch=256)\n"
        "    p.best.description, p.best.time.total_s\n\n"
        "Returns a PlanReport whose to_dict() equals the CLI's --format json output.\n"
        "Raises MemplanError (the CLI's error and hint) for bad input.\n\n"
        "Keyword arguments (each optional):" + describe("plan")
    )


_document()
