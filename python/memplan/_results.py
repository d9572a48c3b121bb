"""Typed views of the library's reports.

Each result keeps the JSON text the library wrote (the CLI's ``--format json`` output) and the
object parsed from it; fields are attributes (``est.per_gpu.total_bytes``), nested objects are
typed views too, and ``to_dict()`` returns the parsed JSON unchanged.
"""

import copy
import html
import json
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ._format import fmt_bytes, fmt_count


class Record:
    """A JSON object of a report with its fields as attributes."""

    __slots__ = ("_data",)
    #: Field name -> the view of its value (a Record subclass, or a one-item list for a list).
    _types: Dict[str, Any] = {}
    #: Fields the JSON leaves out when they do not apply, with the value they read as.
    _optional: Dict[str, Any] = {}

    def __init__(self, data: Dict[str, Any]) -> None:
        object.__setattr__(self, "_data", data)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            value = self._data[name]
        except KeyError:
            if name in type(self)._optional:
                return type(self)._optional[name]
            raise AttributeError(
                "{} has no field {!r} (fields: {})".format(type(self).__name__, name, ", ".join(self._data))
            ) from None
        return _view(value, type(self)._types.get(name))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("{} is read-only".format(type(self).__name__))

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def keys(self) -> List[str]:
        return list(self._data)

    def __dir__(self) -> List[str]:
        return sorted(set(object.__dir__(self)) | set(self._data))

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._data == other._data  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object, as ``json.loads`` of the CLI's ``--format json`` output reads it."""
        return copy.deepcopy(self._data)

    def __repr__(self) -> str:
        parts = []
        for k, v in self._data.items():
            if isinstance(v, (dict, list)):
                v = "{…}" if isinstance(v, dict) else "[{} items]".format(len(v))
                parts.append("{}={}".format(k, v))
            else:
                parts.append("{}={!r}".format(k, v))
        return "{}({})".format(type(self).__name__, ", ".join(parts))


def _view(value: Any, kind: Any) -> Any:
    if isinstance(kind, list):
        cls = kind[0]
        return [cls(x) if isinstance(x, dict) else x for x in value] if isinstance(value, list) else value
    if isinstance(value, dict):
        return (kind or Record)(value)
    if isinstance(value, list) and any(isinstance(x, dict) for x in value):
        return [Record(x) if isinstance(x, dict) else x for x in value]
    return value


class Report(Record):
    """A top-level result: also its JSON text and the CLI's table."""

    __slots__ = ("_json", "_table")

    def __init__(self, text: str, table: str = "") -> None:
        super().__init__(json.loads(text))
        object.__setattr__(self, "_json", text)
        object.__setattr__(self, "_table", table)

    def to_json(self) -> str:
        """The JSON text the CLI prints with ``--format json`` (without its final newline)."""
        return self._json

    def __str__(self) -> str:
        """The table the CLI prints by default."""
        return self._table or repr(self)


def _table_html(head: List[str], rows: List[List[str]], right: Tuple[int, ...] = ()) -> str:
    out = ['<table style="border-collapse:collapse;font-variant-numeric:tabular-nums">', "<thead><tr>"]
    for i, h in enumerate(head):
        align = "right" if i in right else "left"
        out.append('<th style="text-align:{};padding:2px 10px">{}</th>'.format(align, html.escape(h)))
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            align = "right" if i in right else "left"
            out.append('<td style="text-align:{};padding:2px 10px">{}</td>'.format(align, html.escape(str(cell))))
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


# ---- estimate ---------------------------------------------------------------------------------


class StackInfo(Record):
    """One layer stack's shape: layers, hidden, heads, kv_heads, ffn, seq, vocab."""


class ModelInfo(Record):
    """name, family, architecture, parameters, active_parameters, trainable_parameters, shape."""

    _types = {"shape": [StackInfo]}


class PerGpu(Record):
    """Bytes per GPU, term by term: weights_bytes, gradients_bytes, ..., peak_allocated_bytes,
    runtime_overhead_bytes, total_bytes (exact integers)."""


class Stage(PerGpu):
    """One pipeline stage: its layers, parameters, microbatches in flight and the byte fields."""


class Alive(Record):
    """Bytes alive at the peak: weights, gradients, optimizer_states, activations, ..."""


class Peak(Record):
    """Where the peak is (point, description) and what is alive then (alive)."""

    _types = {"alive": Alive}


class Overheads(Record):
    """cuda_context_bytes, workspace_bytes, fragmentation_bytes, nccl_bytes."""

    _optional = {"nccl_bytes": 0}


class Fit(Record):
    """gpu, memory_bytes, usable_bytes, total_bytes (with this GPU's runtime), fits,
    headroom_bytes (usable less total; negative: missing), max_concurrent_sequences."""

    _optional = {"max_concurrent_sequences": None}

    def __repr__(self) -> str:
        d = self._data
        return "Fit({}: {}, headroom {})".format(
            d["gpu"], "fits" if d["fits"] else "does not fit", fmt_bytes(d["headroom_bytes"])
        )


class Serving(Record):
    """Inference capacity: context_tokens, kv_bytes_per_sequence, base_bytes, bytes_per_sequence."""


class Setup(Record):
    """The training or inference step as resolved: phase, precision, micro_batch, seq, ..."""


class ParallelPlan(Record):
    """dp, tp, pp, cp, ep, sp, zero, fsdp, distributed_optimizer, offload, schedule, vpp, ..."""


class EstimateReport(Report):
    """``memplan.estimate(...)``: per-GPU memory, term by term, and the fit on each GPU.

    ``to_dict()`` equals ``json.loads`` of ``memplan estimate --format json`` for the same
    settings; ``str(report)`` is the table ``memplan estimate`` prints.
    """

    _types = {
        "model": ModelInfo,
        "per_gpu": PerGpu,
        "stages": [Stage],
        "peak": Peak,
        "overheads": Overheads,
        "fits": [Fit],
        "serving": Serving,
        "setup": Setup,
        "plan": ParallelPlan,
    }
    _optional = {"serving": None, "serving_framework": None, "deepspeed_zero3_estimator": None}

    def fit(self, gpu: str) -> Fit:
        """The fit on one GPU preset of the report (KeyError if it was not checked)."""
        for f in self._data["fits"]:
            if f["gpu"] == gpu:
                return Fit(f)
        raise KeyError("{} was not checked; checked: {}".format(gpu, ", ".join(f["gpu"] for f in self._data["fits"])))

    def breakdown(self) -> List[Tuple[str, int, str]]:
        """The rows of the CLI's table: (term, bytes per GPU, note)."""
        d = self._data
        p = d["per_gpu"]
        training = d["setup"]["phase"] == "train"
        rows = [("weights", p["weights_bytes"], "{} params on this rank".format(fmt_count(p["rank_parameters"])))]
        if training:
            rows.append(("gradients", p["gradients_bytes"], ""))
            rows.append(("optimizer states", p["optimizer_states_bytes"], d["setup"]["optimizer"]))
            rows.append(("activations (layer stacks)", p["activations_bytes"], "saved for backward"))
        else:
            rows.append(("activations (largest layer)", p["activations_bytes"], "working set"))
        rows.append(("other activations", p["other_activations_bytes"], "embeddings, logits, loss, inputs"))
        if not training:
            rows.append(("KV cache", p["kv_cache_bytes"], ""))
        rows.append(("peak allocated (live tensors)", p["peak_allocated_bytes"], "at the " + d["peak"]["description"]))
        o = d["overheads"]
        rows.append(("CUDA context", o["cuda_context_bytes"], "runtime overhead"))
        rows.append(("cuBLAS workspace", o["workspace_bytes"], "runtime overhead"))
        if o.get("nccl_bytes"):
            rows.append(("NCCL buffers", o["nccl_bytes"], "NCCL_BUFFSIZE × channels × peers per communicator"))
        rows.append(("fragmentation margin", o["fragmentation_bytes"], "allocator"))
        rows.append(("total (reserved)", p["total_bytes"], "peak + overheads"))
        return rows

    def _fit_summary(self) -> str:
        fits = self._data["fits"]
        if len(fits) == 1:
            f = fits[0]
            if f["fits"]:
                return "fits {} ({} free)".format(f["gpu"], fmt_bytes(f["headroom_bytes"]))
            return "does not fit {} (short by {})".format(f["gpu"], fmt_bytes(-f["headroom_bytes"]))
        return "fits {} of {} GPUs".format(sum(1 for f in fits if f["fits"]), len(fits))

    def __repr__(self) -> str:
        d = self._data
        return "<EstimateReport {} ({} parameters): {} per GPU (peak {}), {}>".format(
            d["model"]["name"],
            fmt_count(d["model"]["parameters"]),
            fmt_bytes(d["per_gpu"]["total_bytes"]),
            fmt_bytes(d["per_gpu"]["peak_allocated_bytes"]),
            self._fit_summary(),
        )

    def _repr_html_(self) -> str:
        d = self._data
        title = "<p><b>{}</b> ({} parameters): <b>{}</b> per GPU, {}</p>".format(
            html.escape(d["model"]["name"]),
            fmt_count(d["model"]["parameters"]),
            fmt_bytes(d["per_gpu"]["total_bytes"]),
            html.escape(self._fit_summary()),
        )
        rows = [[t, fmt_bytes(b), "{:,}".format(b), n] for t, b, n in self.breakdown()]
        fits = [
            [f["gpu"], fmt_bytes(f["usable_bytes"]), fmt_bytes(f["total_bytes"]), "yes" if f["fits"] else "no",
             fmt_bytes(f["headroom_bytes"])]
            for f in d["fits"]
        ]
        return (
            title
            + _table_html(["term", "per GPU (GiB)", "bytes", "note"], rows, right=(1, 2))
            + _table_html(["GPU", "usable", "total on it", "fits", "headroom"], fits, right=(1, 2, 4))
        )


# ---- plan -------------------------------------------------------------------------------------


class StepTime(Record):
    """compute_s, bubble_s, tp_comm_s, pp_comm_s, dp_comm_s, total_s, tokens_per_s, mfu, hfu, flops."""


class PlanRow(Record):
    """A ranked plan: rank, description, plan, micro_batch, recompute, worst_stage,
    worst_total_bytes, worst_peak_allocated_bytes, time, days_to_train, cost_usd."""

    _types = {"plan": ParallelPlan, "time": StepTime}

    def __repr__(self) -> str:
        d = self._data
        return "PlanRow(#{} {}, micro-batch {}, recompute {}: {} per GPU, {:.3f} s/step)".format(
            d["rank"], d["description"], d["micro_batch"], d["recompute"], fmt_bytes(d["worst_total_bytes"]), d["time"]["total_s"]
        )


class Rejection(Record):
    """A plan family that does not fit: family, over_bytes, reason."""


class PlanReport(Report):
    """``memplan.plan(...)``: the plans that fit the cluster, ranked by predicted step time.

    ``to_dict()`` equals ``json.loads`` of ``memplan plan --format json``.
    """

    _types = {"setup": Setup, "plans": [PlanRow], "rejections": [Rejection]}

    @property
    def best(self) -> Optional[PlanRow]:
        """The fastest plan that fits (None when nothing fits)."""
        plans = self._data["plans"]
        return PlanRow(plans[0]) if plans else None

    def __repr__(self) -> str:
        d = self._data
        best = d["plans"][0]["description"] if d["plans"] else "no plan fits"
        return "<PlanReport {} on {} × {}: {} of {} plans fit; best: {}>".format(
            d["model"], d["gpus"], d["gpu"], d["fitting"], d["evaluated"], best
        )

    def _repr_html_(self) -> str:
        d = self._data
        rows = [
            [
                p["rank"],
                p["description"],
                p["micro_batch"],
                p["recompute"],
                fmt_bytes(p["worst_total_bytes"]),
                "{:.3f}".format(p["time"]["total_s"]),
                fmt_count(round(p["time"]["tokens_per_s"])),
                "{:.1f}%".format(p["time"]["mfu"] * 100),
            ]
            for p in d["plans"]
        ]
        head = "<p><b>{}</b> on {} × {}: {} of {} plans fit</p>".format(
            html.escape(d["model"]), d["gpus"], html.escape(d["gpu"]), d["fitting"], d["evaluated"]
        )
        if not rows:
            return head + "<p>No plan fits. {}</p>".format(html.escape(d.get("suggestion") or ""))
        return head + _table_html(
            ["#", "plan", "micro-batch", "recompute", "memory (worst rank)", "step (s)", "tokens/s", "MFU"],
            rows,
            right=(0, 2, 4, 5, 6, 7),
        )


# ---- compare ----------------------------------------------------------------------------------


class RowFit(Record):
    """gpu, fits, headroom_bytes."""


class CompareRow(Record):
    """One scenario of a comparison: name, model, parameters, settings, the byte fields, fits."""

    _types = {"fits": [RowFit]}


class CompareReport(Report):
    """``memplan.compare(...)``: scenarios side by side (``memplan compare --format json``)."""

    _types = {"rows": [CompareRow]}

    def __repr__(self) -> str:
        rows = self._data["rows"]
        return "<CompareReport {} rows: {}>".format(
            len(rows), "; ".join("{} {}".format(r["name"], fmt_bytes(r["total_bytes"])) for r in rows[:6])
        )

    def _repr_html_(self) -> str:
        rows = [
            [r["name"], fmt_count(r["parameters"]), r["plan"], fmt_bytes(r["peak_allocated_bytes"]), fmt_bytes(r["total_bytes"])]
            for r in self._data["rows"]
        ]
        return _table_html(["scenario", "parameters", "plan", "peak allocated", "total per GPU"], rows, right=(1, 3, 4))


# ---- presets and settings ---------------------------------------------------------------------


class ModelPreset(Record):
    """name, family, architecture, parameters."""


class GpuPreset(Record):
    """name, memory_bytes."""


class Presets(Record):
    """The model and GPU presets (built-in and your own)."""

    _types = {"models": [ModelPreset], "gpus": [GpuPreset]}

    def __repr__(self) -> str:
        return "<Presets: {} models, {} GPUs>".format(len(self._data["models"]), len(self._data["gpus"]))


class Setting(Record):
    """One setting of the table: key, group, kind, choices, default, check, help, heading, and
    which entry points take it (estimate, plan; plan_searches: plan chooses it itself)."""

    @property
    def python_name(self) -> str:
        """The keyword argument: the key with ``_`` for ``-``."""
        return self._data["key"].replace("-", "_")

    def __repr__(self) -> str:
        d = self._data
        default = "" if d["default"] is None else " = {}".format(d["default"])
        return "Setting({} ({}){}: {})".format(self.python_name, d["kind"], default, d["help"])
