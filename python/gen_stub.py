"""Write python/memplan/__init__.pyi: the result classes, and estimate/plan/compare with one
keyword argument per setting of the library's table (`memplan.settings()`), typed by its kind.

Run after a setting is added (python/tests/test_memplan.py fails until the stub matches):

    pip install . && python python/gen_stub.py
"""

import pathlib
import sys

# Import the installed package (with its native module), not the sources beside this script.
HERE = pathlib.Path(__file__).resolve().parent
sys.path = [p for p in sys.path if pathlib.Path(p or ".").resolve() != HERE]

import memplan  # noqa: E402

HEADER = '''"""Type stubs of memplan (written by python/gen_stub.py from the settings table)."""

import os
from typing import Any, Dict, Iterator, List, Literal, Mapping, Optional, Sequence, Tuple, Union

__version__: str

class MemplanError(ValueError):
    message: str
    hint: Optional[str]
    def __init__(self, message: str, hint: Optional[str] = ...) -> None: ...

class Record:
    def to_dict(self) -> Dict[str, Any]: ...
    def keys(self) -> List[str]: ...
    def __getitem__(self, name: str) -> Any: ...
    def __contains__(self, name: object) -> bool: ...
    def __iter__(self) -> Iterator[str]: ...
    def __getattr__(self, name: str) -> Any: ...

class Report(Record):
    def to_json(self) -> str: ...

class StackInfo(Record):
    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    seq: int
    vocab: int

class ModelInfo(Record):
    name: str
    family: str
    architecture: str
    parameters: int
    active_parameters: int
    trainable_parameters: int
    derived_shape: bool
    shape: List[StackInfo]

class PerGpu(Record):
    weights_bytes: int
    gradients_bytes: int
    optimizer_states_bytes: int
    activations_bytes: int
    other_activations_bytes: int
    kv_cache_bytes: int
    input_bytes: int
    optimizer_step_temporary_bytes: int
    peak_allocated_bytes: int
    runtime_overhead_bytes: int
    total_bytes: int
    host_offload_bytes: int
    rank_parameters: int

class Stage(PerGpu):
    stage: int
    layers: int
    layers_by_stack: List[int]
    parameters: int
    microbatches_in_flight: float
    peak_point: str

class Alive(Record):
    weights: int
    gradients: int
    optimizer_states: int
    activations: int
    other_activations: int
    kv_cache: int
    temporaries: int

class Peak(Record):
    point: str
    description: str
    alive: Alive

class Overheads(Record):
    cuda_context_bytes: int
    workspace_bytes: int
    fragmentation_bytes: int
    nccl_bytes: int

class Fit(Record):
    gpu: str
    memory_bytes: int
    usable_bytes: int
    total_bytes: int
    fits: bool
    headroom_bytes: int
    max_concurrent_sequences: Optional[int]

class Serving(Record):
    context_tokens: int
    kv_bytes_per_sequence: int
    base_bytes: int
    bytes_per_sequence: int

class Setup(Record):
    phase: str
    precision: str
    optimizer: str
    micro_batch: int
    seq: int
    recompute: str
    attention: str

class ParallelPlan(Record):
    dp: int
    tp: int
    pp: int
    cp: int
    ep: int
    sp: bool
    zero: int
    fsdp: Optional[str]
    distributed_optimizer: bool
    offload: str
    schedule: str
    vpp: int
    microbatches: int
    gpus_per_node: int

class EstimateReport(Report):
    model: ModelInfo
    serving: Optional[Serving]
    serving_framework: Optional[Record]
    framework: Record
    setup: Setup
    plan: ParallelPlan
    per_gpu: PerGpu
    worst_stage: int
    stages: List[Stage]
    peak: Peak
    overheads: Overheads
    fits: List[Fit]
    ledger: List[Record]
    assumptions: List[str]
    def fit(self, gpu: str) -> Fit: ...
    def breakdown(self) -> List[Tuple[str, int, str]]: ...
    def _repr_html_(self) -> str: ...

class StepTime(Record):
    compute_s: float
    bubble_s: float
    tp_comm_s: float
    pp_comm_s: float
    dp_comm_s: float
    moe_comm_s: float
    cp_comm_s: float
    offload_s: float
    total_s: float
    tokens_per_s: float
    mfu: float
    hfu: float

class PlanRow(Record):
    rank: int
    description: str
    plan: ParallelPlan
    micro_batch: int
    recompute: str
    worst_stage: int
    worst_total_bytes: int
    worst_peak_allocated_bytes: int
    time: StepTime
    days_to_train: Optional[float]
    cost_usd: Optional[float]

class Rejection(Record):
    family: str
    over_bytes: int
    reason: str

class PlanReport(Report):
    model: str
    parameters: int
    setup: Setup
    gpus: int
    gpu: str
    gpus_per_node: int
    global_batch_sequences: int
    global_batch_tokens: int
    usable_bytes_per_gpu: int
    headroom: str
    efficiency: float
    overlap: float
    evaluated: int
    fitting: int
    plans: List[PlanRow]
    rejections: List[Rejection]
    tokens: Optional[int]
    price_per_gpu_hour: Optional[float]
    suggestion: Optional[str]
    calibration_note: Optional[str]
    @property
    def best(self) -> Optional[PlanRow]: ...
    def _repr_html_(self) -> str: ...

class RowFit(Record):
    gpu: str
    fits: bool
    headroom_bytes: int

class CompareRow(Record):
    name: str
    model: str
    parameters: int
    settings: Dict[str, str]
    phase: str
    precision: str
    micro_batch: int
    seq: int
    plan: str
    weights_bytes: int
    gradients_bytes: int
    optimizer_states_bytes: int
    activations_bytes: int
    peak_allocated_bytes: int
    runtime_overhead_bytes: int
    total_bytes: int
    fits: List[RowFit]

class CompareReport(Report):
    schema_version: int
    rows: List[CompareRow]
    assumptions: List[str]
    def _repr_html_(self) -> str: ...

class ModelPreset(Record):
    name: str
    family: str
    architecture: str
    parameters: int

class GpuPreset(Record):
    name: str
    memory_bytes: int

class Presets(Record):
    models: List[ModelPreset]
    gpus: List[GpuPreset]

class Setting(Record):
    key: str
    group: str
    kind: str
    choices: List[str]
    default: Optional[str]
    help: str
    heading: str
    estimate: bool
    plan: bool
    plan_searches: bool
    @property
    def python_name(self) -> str: ...

def fmt_bytes(n: int, units: str = ...) -> str: ...
def fmt_count(n: Union[int, float]) -> str: ...
def presets() -> Presets: ...
def settings() -> List[Setting]: ...
'''


def type_of(s: "memplan.Setting") -> str:
    kind = s.kind
    if kind == "file":
        return 'Union[str, bytes, "os.PathLike[str]", Mapping[str, Any]]'
    if s.choices:
        literal = "Literal[{}]".format(", ".join(repr(c) for c in s.choices))
        if all(c.isdigit() for c in s.choices):
            return "Union[int, {}]".format(literal)
        if kind == "switch":
            return "Union[bool, {}]".format(literal)
        return literal
    return {
        "count": "Union[int, str]",
        "integer": "Union[int, str]",
        "number": "Union[float, int, str]",
        "switch": "Union[bool, str]",
        "size": "str",
        "text": "str",
        "list": "Union[str, Sequence[str]]",
    }[kind]


def params(entry: str) -> str:
    lines = []
    for s in memplan.settings():
        if s.to_dict()[entry]:
            lines.append("    {}: Optional[{}] = ...,".format(s.python_name, type_of(s)))
    return "\n".join(lines)


def main() -> None:
    out = [HEADER]
    out.append("def estimate(\n    *,\n{}\n) -> EstimateReport: ...\n".format(params("estimate")))
    out.append("def plan(\n    *,\n{}\n) -> PlanReport: ...\n".format(params("plan")))
    out.append(
        "def compare(\n"
        '    models: Union[None, str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]] = ...,\n'
        "    *,\n"
        "    set: Union[None, str, Sequence[str], Mapping[str, Any]] = ...,\n"
        "    vary: Union[None, str, Sequence[str], Mapping[str, Sequence[Any]]] = ...,\n"
        "    variant: Union[None, str, Sequence[Union[str, Mapping[str, Any]]]] = ...,\n"
        "{}\n) -> CompareReport: ...\n".format(params("estimate"))
    )
    path = HERE / "memplan" / "__init__.pyi"
    path.write_text("\n".join(out))
    print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
