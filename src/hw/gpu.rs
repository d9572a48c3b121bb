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
