"""Type stubs of memplan (written by python/gen_stub.py from the settings table)."""

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

def estimate(
    *,
    model: Optional[str] = ...,
    params: Optional[Union[int, str]] = ...,
    hf_config: Optional[Union[str, bytes, "os.PathLike[str]", Mapping[str, Any]]] = ...,
    model_file: Optional[Union[str, bytes, "os.PathLike[str]", Mapping[str, Any]]] = ...,
    layers: Optional[Union[int, str]] = ...,
    hidden: Optional[Union[int, str]] = ...,
    heads: Optional[Union[int, str]] = ...,
    kv_heads: Optional[Union[int, str]] = ...,
    ffn: Optional[Union[int, str]] = ...,
    vocab: Optional[Union[int, str]] = ...,
    image_size: Optional[Union[int, str]] = ...,
    phase: Optional[Literal['train', 'inference']] = ...,
    precision: Optional[Literal['mixed-bf16', 'mixed-fp16', 'fp32', 'bf16', 'fp16', 'amp-bf16', 'amp-fp16', 'megatron-bf16', 'megatron-fp16']] = ...,
    optimizer: Optional[Literal['adamw', 'adam', 'sgd', 'sgd-momentum', 'adafactor', 'adamw-8bit', 'lion']] = ...,
    optimizer_impl: Optional[Literal['foreach', 'fused', 'for-loop']] = ...,
    batch: Optional[Union[int, str]] = ...,
    seq: Optional[Union[int, str]] = ...,
    tgt_seq: Optional[Union[int, str]] = ...,
    recompute: Optional[Literal['none', 'selective', 'full', 'op', 'hf', 'every-2']] = ...,
    attention: Optional[Literal['flash', 'eager', 'flash-attn2']] = ...,
    dropout: Optional[Union[bool, Literal['model', 'on', 'off']]] = ...,
    capacity_factor: Optional[Union[float, int, str]] = ...,
    finetune: Optional[Literal['full', 'lora', 'qlora']] = ...,
    lora_rank: Optional[Union[int, str]] = ...,
    lora_alpha: Optional[Union[float, int, str]] = ...,
    lora_targets: Optional[str] = ...,
    lora_dropout: Optional[Union[float, int, str]] = ...,
    double_quant: Optional[Union[bool, str]] = ...,
    paged_optimizer: Optional[Union[bool, str]] = ...,
    kv_cache: Optional[Union[bool, str]] = ...,
    weights: Optional[Literal['none', 'int8', 'int4', 'nf4', 'fp8']] = ...,
    group_size: Optional[Union[int, str]] = ...,
    scale_dtype: Optional[Literal['fp16', 'bf16', 'fp32']] = ...,
    kv_dtype: Optional[Literal['fp16', 'bf16', 'fp32', 'fp8', 'int8']] = ...,
    max_batch: Optional[Union[int, str]] = ...,
    context: Optional[Union[int, str]] = ...,
    block_size: Optional[Union[int, str]] = ...,
    gpu_memory_utilization: Optional[Union[float, int, str]] = ...,
    max_num_batched_tokens: Optional[Union[int, str]] = ...,
    max_num_seqs: Optional[Union[int, str]] = ...,
    enforce_eager: Optional[Union[bool, str]] = ...,
    vllm_entrypoint: Optional[Literal['serve', 'llm']] = ...,
    framework: Optional[Literal['pytorch', 'hf-trainer', 'accelerate-fsdp', 'torchtitan', 'megatron', 'deepspeed', 'hf-generate', 'vllm']] = ...,
    framework_version: Optional[str] = ...,
    runtime: Optional[Literal['cuda', 'cpu']] = ...,
    cuda_context: Optional[str] = ...,
    fragmentation: Optional[Union[float, int, str]] = ...,
    dp: Optional[Union[int, str]] = ...,
    tp: Optional[Union[int, str]] = ...,
    sp: Optional[Union[bool, str]] = ...,
    pp: Optional[Union[int, str]] = ...,
    schedule: Optional[Literal['1f1b', 'gpipe', 'interleaved']] = ...,
    vpp: Optional[Union[int, str]] = ...,
    first_stage_layers: Optional[Union[int, str]] = ...,
    last_stage_layers: Optional[Union[int, str]] = ...,
    microbatches: Optional[Union[int, str]] = ...,
    global_batch: Optional[Union[int, str]] = ...,
    cp: Optional[Union[int, str]] = ...,
    ep: Optional[Union[int, str]] = ...,
    zero: Optional[Union[int, Literal['0', '1', '2', '3']]] = ...,
    fsdp: Optional[Literal['none', 'full', 'grad-op', 'hybrid']] = ...,
    distributed_optimizer: Optional[Union[bool, str]] = ...,
    offload: Optional[Literal['none', 'optimizer', 'params']] = ...,
    gpus: Optional[str] = ...,
    gpus_per_node: Optional[Union[int, str]] = ...,
    deepspeed_config: Optional[Union[str, bytes, "os.PathLike[str]", Mapping[str, Any]]] = ...,
    from_config: Optional[Union[str, bytes, "os.PathLike[str]", Mapping[str, Any]]] = ...,
    from_config_format: Optional[Literal['megatron', 'megatron-deepspeed', 'deepspeed', 'torchtitan', 'fsdp']] = ...,
    gpu: Optional[Union[str, Sequence[str]]] = ...,
) -> EstimateReport: ...

def plan(
    *,
    model: Optional[str] = ...,
    params: Optional[Union[int, str]] = ...,
    hf_config: Optional[Union[str, bytes, "os.PathLike[str]", Mapping[str, Any]]] = ...,
    model_file: Optional[Union[str, bytes, "os.PathLike[str]", Mapping[str, Any]]] = ...,
    layers: Optional[Union[int, str]] = ...,
    hidden: Optional[Union[int, str]] = ...,
    heads: Optional[Union[int, str]] = ...,
    kv_heads: Optional[Union[int, str]] = ...,
    ffn: Optional[Union[int, str]] = ...,
    vocab: Optional[Union[int, str]] = ...,
    image_size: Optional[Union[int, str]] = ...,
    phase: Optional[Literal['train', 'inference']] = ...,
    precision: Optional[Literal['mixed-bf16', 'mixed-fp16', 'fp32', 'bf16', 'fp16', 'amp-bf16', 'amp-fp16', 'megatron-bf16', 'megatron-fp16']] = ...,
    optimizer: Optional[Literal['adamw', 'adam', 'sgd', 'sgd-momentum', 'adafactor', 'adamw-8bit', 'lion']] = ...,
    optimizer_impl: Optional[Literal['foreach', 'fused', 'for-loop']] = ...,
    batch: Optional[Union[int, str]] = ...,
    seq: Optional[Union[int, str]] = ...,
    tgt_seq: Optional[Union[int, str]] = ...,
    recompute: Optional[Literal['none', 'selective', 'full', 'op', 'hf', 'every-2']] = ...,
    attention: Optional[Literal['flash', 'eager', 'flash-attn2']] = ...,
    dropout: Optional[Union[bool, Literal['model', 'on', 'off']]] = ...,
    capacity_factor: Optional[Union[float, int, str]] = ...,
    finetune: Optional[Literal['full', 'lora', 'qlora']] = ...,
    lora_rank: Optional[Union[int, str]] = ...,
    lora_alpha: Optional[Union[float, int, str]] = ...,
    lora_targets: Optional[str] = ...,
    lora_dropout: Optional[Union[float, int, str]] = ...,
    double_quant: Optional[Union[bool, str]] = ...,
    paged_optimizer: Optional[Union[bool, str]] = ...,
    framework: Optional[Literal['pytorch', 'hf-trainer', 'accelerate-fsdp', 'torchtitan', 'megatron', 'deepspeed', 'hf-generate', 'vllm']] = ...,
    framework_version: Optional[str] = ...,
    runtime: Optional[Literal['cuda', 'cpu']] = ...,
    cuda_context: Optional[str] = ...,
    fragmentation: Optional[Union[float, int, str]] = ...,
    global_batch: Optional[Union[int, str]] = ...,
    gpus: Optional[str] = ...,
    gpus_per_node: Optional[Union[int, str]] = ...,
    tokens: Optional[Union[int, str]] = ...,
    price: Optional[Union[float, int, str]] = ...,
    headroom: Optional[str] = ...,
    efficiency: Optional[Union[float, int, str]] = ...,
    calibration: Optional[Union[str, bytes, "os.PathLike[str]", Mapping[str, Any]]] = ...,
    overlap: Optional[Union[float, int, str]] = ...,
    inter_node_bandwidth: Optional[str] = ...,
    allow_offload: Optional[Union[bool, str]] = ...,
    max_tp: Optional[Union[int, str]] = ...,
    max_pp: Optional[Union[int, str]] = ...,
    max_cp: Optional[Union[int, str]] = ...,
    top: Optional[Union[int, str]] = ...,
    gpu: Optional[Union[str, Sequence[str]]] = ...,
) -> PlanReport: ...

def compare(
    models: Union[None, str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]] = ...,
    *,
    set: Union[None, str, Sequence[str], Mapping[str, Any]] = ...,
    vary: Union[None, str, Sequence[str], Mapping[str, Sequence[Any]]] = ...,
    variant: Union[None, str, Sequence[Union[str, Mapping[str, Any]]]] = ...,
    model: Optional[str] = ...,
    params: Optional[Union[int, str]] = ...,
    hf_config: Optional[Union[str, bytes, "os.PathLike[str]", Mapping[str, Any]]] = ...,
    model_file: Optional[Union[str, bytes, "os.PathLike[str]", Mapping[str, Any]]] = ...,
    layers: Optional[Union[int, str]] = ...,
    hidden: Optional[Union[int, str]] = ...,
    heads: Optional[Union[int, str]] = ...,
    kv_heads: Optional[Union[int, str]] = ...,
    ffn: Optional[Union[int, str]] = ...,
    vocab: Optional[Union[int, str]] = ...,
    image_size: Optional[Union[int, str]] = ...,
    phase: Optional[Literal['train', 'inference']] = ...,
    precision: Optional[Literal['mixed-bf16', 'mixed-fp16', 'fp32', 'bf16', 'fp16', 'amp-bf16', 'amp-fp16', 'megatron-bf16', 'megatron-fp16']] = ...,
    optimizer: Optional[Literal['adamw', 'adam', 'sgd', 'sgd-momentum', 'adafactor', 'adamw-8bit', 'lion']] = ...,
    optimizer_impl: Optional[Literal['foreach', 'fused', 'for-loop']] = ...,
    batch: Optional[Union[int, str]] = ...,
    seq: Optional[Union[int, str]] = ...,
    tgt_seq: Optional[Union[int, str]] = ...,
    recompute: Optional[Literal['none', 'selective', 'full', 'op', 'hf', 'every-2']] = ...,
    attention: Optional[Literal['flash', 'eager', 'flash-attn2']] = ...,
    dropout: Optional[Union[bool, Literal['model', 'on', 'off']]] = ...,
    capacity_factor: Optional[Union[float, int, str]] = ...,
    finetune: Optional[Literal['full', 'lora', 'qlora']] = ...,
    lora_rank: Optional[Union[int, str]] = ...,
    lora_alpha: Optional[Union[float, int, str]] = ...,
    lora_targets: Optional[str] = ...,
    lora_dropout: Optional[Union[float, int, str]] = ...,
    double_quant: Optional[Union[bool, str]] = ...,
    paged_optimizer: Optional[Union[bool, str]] = ...,
    kv_cache: Optional[Union[bool, str]] = ...,
    weights: Optional[Literal['none', 'int8', 'int4', 'nf4', 'fp8']] = ...,
    group_size: Optional[Union[int, str]] = ...,
    scale_dtype: Optional[Literal['fp16', 'bf16', 'fp32']] = ...,
    kv_dtype: Optional[Literal['fp16', 'bf16', 'fp32', 'fp8', 'int8']] = ...,
    max_batch: Optional[Union[int, str]] = ...,
    context: Optional[Union[int, str]] = ...,
    block_size: Optional[Union[int, str]] = ...,
    gpu_memory_utilization: Optional[Union[float, int, str]] = ...,
    max_num_batched_tokens: Optional[Union[int, str]] = ...,
    max_num_seqs: Optional[Union[int, str]] = ...,
    enforce_eager: Optional[Union[bool, str]] = ...,
    vllm_entrypoint: Optional[Literal['serve', 'llm']] = ...,
    framework: Optional[Literal['pytorch', 'hf-trainer', 'accelerate-fsdp', 'torchtitan', 'megatron', 'deepspeed', 'hf-generate', 'vllm']] = ...,
    framework_version: Optional[str] = ...,
    runtime: Optional[Literal['cuda', 'cpu']] = ...,
    cuda_context: Optional[str] = ...,
    fragmentation: Optional[Union[float, int, str]] = ...,
    dp: Optional[Union[int, str]] = ...,
    tp: Optional[Union[int, str]] = ...,
    sp: Optional[Union[bool, str]] = ...,
    pp: Optional[Union[int, str]] = ...,
    schedule: Optional[Literal['1f1b', 'gpipe', 'interleaved']] = ...,
    vpp: Optional[Union[int, str]] = ...,
    first_stage_layers: Optional[Union[int, str]] = ...,
    last_stage_layers: Optional[Union[int, str]] = ...,
    microbatches: Optional[Union[int, str]] = ...,
    global_batch: Optional[Union[int, str]] = ...,
    cp: Optional[Union[int, str]] = ...,
    ep: Optional[Union[int, str]] = ...,
    zero: Optional[Union[int, Literal['0', '1', '2', '3']]] = ...,
    fsdp: Optional[Literal['none', 'full', 'grad-op', 'hybrid']] = ...,
    distributed_optimizer: Optional[Union[bool, str]] = ...,
    offload: Optional[Literal['none', 'optimizer', 'params']] = ...,
    gpus: Optional[str] = ...,
    gpus_per_node: Optional[Union[int, str]] = ...,
    deepspeed_config: Optional[Union[str, bytes, "os.PathLike[str]", Mapping[str, Any]]] = ...,
    from_config: Optional[Union[str, bytes, "os.PathLike[str]", Mapping[str, Any]]] = ...,
    from_config_format: Optional[Literal['megatron', 'megatron-deepspeed', 'deepspeed', 'torchtitan', 'fsdp']] = ...,
    gpu: Optional[Union[str, Sequence[str]]] = ...,
) -> CompareReport: ...
