//! A GPU preset: memory in bytes, bandwidth, dense peak FLOP/s by dtype, links.

use crate::error::{closest, Error, Result};
use crate::model::presets::{gpu_names, gpu_text, parse_toml};
use serde::{Deserialize, Serialize};
use std::path::Path;

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
    /// What GEMMs and streaming kernels reach on this GPU: the planner's compute model.
    #[serde(default)]
    pub gemm_efficiency: Option<GemmEfficiency>,
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

impl GpuSpec {
    /// A GPU preset by name: a user preset (`--preset-dir`) first, then the built-in ones.
    pub fn preset(name: &str) -> Result<GpuSpec> {
        if let Some(g) = crate::model::user_presets::gpu(name) {
            return Ok(g);
        }
        let (file, text) = gpu_text(name).ok_or_else(|| Error::UnknownPreset {
            kind: "gpu",
            name: name.to_string(),
            suggestions: closest(&name.to_ascii_lowercase(), gpu_names()),
        })?;
        parse_toml(Path::new(&format!("presets/gpus/{file}.toml")), text)
    }

    /// All GPU presets (built-in and `--preset-dir`), in name order.
    pub fn all() -> Result<Vec<GpuSpec>> {
        gpu_names().into_iter().map(GpuSpec::preset).collect()
    }
}
