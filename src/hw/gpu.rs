//! A GPU preset: memory in bytes, bandwidth, dense peak FLOP/s by dtype, links. Loading them
//! by name (`GpuSpec::preset`) is the preset loader's (`model::presets`): `hw` imports nothing
//! above it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    pub name: String,
    pub vendor: String,
    /// Device memory in bytes as the vendor states it (e.g. 80 GB = 80·10^9 or 80 GiB — the
    /// preset says which in its source comment).
    pub memory_bytes: u64,
    /// HBM/GDDR bandwidth in bytes per second.
    pub memory_bandwidth: f64,
    /// Dense (no sparsity) peak FLOP/s by dtype.
    pub peak_flops: PeakFlops,
    pub interconnect: Interconnect,
    /// Fraction of peak that a well-tuned training step reaches when no calibration is given.
    #[serde(default = "default_efficiency")]
    pub default_efficiency: f64,
    /// What a process on this GPU really has and spends outside its tensors (`[runtime]`).
    #[serde(default)]
    pub runtime: Option<GpuRuntime>,
    /// What GEMMs and streaming kernels reach on this GPU: the planner's compute model.
    #[serde(default)]
    pub gemm_efficiency: Option<GemmEfficiency>,
}

/// Runtime facts of one GPU as PyTorch sees it, each with its source in the preset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuRuntime {
    /// `torch.cuda.get_device_properties(i).total_memory` (`cudaDeviceProp::totalGlobalMem`):
    /// what the caching allocator can ever reserve plus the CUDA context; less than the marketed size.
    pub total_memory_bytes: u64,
    /// CUDA context and PyTorch's kernels with lazy module loading (`CUDA_MODULE_LOADING=LAZY`,
    /// CUDA ≥ 11.7, PyTorch's default since 2.0).
    pub cuda_context_bytes: u64,
    /// The same with eager module loading (every kernel image loaded at start-up), when known.
    #[serde(default)]
    pub cuda_context_eager_bytes: Option<u64>,
    /// cuBLAS workspace per (handle, stream) that PyTorch allocates through its caching allocator
    /// (`aten/src/ATen/cuda/CublasHandlePool.cpp: parseChosenWorkspaceSize`).
    pub cublas_workspace_bytes: u64,
    /// Channels NCCL opens per communicator on this GPU's links (each channel keeps
    /// `NCCL_BUFFSIZE` bytes per peer).
    pub nccl_channels: u64,
}

impl GpuSpec {
    /// Bytes a process can use on this GPU: PyTorch's `total_memory` when the preset states it,
    /// else the vendor's size.
    pub fn usable_bytes(&self) -> u64 {
        self.runtime.as_ref().map_or(self.memory_bytes, |r| r.total_memory_bytes)
    }
}

/// The planner's roofline inputs for one GPU (`[gemm_efficiency]` in its preset): the largest
/// fraction of the dense peak a library GEMM reaches, the fraction of the memory bandwidth a
/// streaming kernel reaches, and the SM count and output tile that quantize a GEMM into waves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GemmEfficiency {
    /// Best measured 16-bit GEMM throughput over the dense peak (e.g. MAMF).
    pub max: f64,
    /// Achieved over nominal memory bandwidth for streaming (elementwise) kernels.
    pub memory: f64,
    /// Streaming multiprocessors (compute units on AMD).
    pub sms: u64,
    /// Output tile of one thread block (rows × columns).
    pub tile_m: u64,
    pub tile_n: u64,
    /// Where `max` and `memory` come from.
    pub source: String,
}

fn default_efficiency() -> f64 {
    0.45
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeakFlops {
    pub fp32: f64,
    #[serde(default)]
    pub tf32: Option<f64>,
    pub bf16: Option<f64>,
    pub fp16: f64,
    #[serde(default)]
    pub fp8: Option<f64>,
    #[serde(default)]
    pub int8: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interconnect {
    /// Name of the intra-node link (NVLink 4, PCIe 4.0 x16, Infinity Fabric).
    pub intra_node: String,
    /// Intra-node bandwidth per GPU, one direction, bytes per second.
    pub intra_node_bandwidth: f64,
    /// Typical inter-node bandwidth per GPU (one NIC per GPU), bytes per second.
    #[serde(default)]
    pub inter_node_bandwidth: Option<f64>,
}
