//! The micro-benchmark harness: real kernels on the local GPU through wgpu (WGSL compute
//! shaders), measured and compared with what the analytic model predicts.
//!
//! - [`device`]: adapter discovery, the device, captured errors, buffers with byte accounting.
//! - [`kernels`]: the WGSL kernels (`kernels/*.wgsl`) and the host code that dispatches them.
//! - [`reference`]: CPU references and random inputs; every kernel is checked against them.
//! - [`timing`]: the [`timing::Runner`] trait (GPU timestamps, wall clock, or a mock), warm-up,
//!   repetitions and statistics.
//! - [`workload`]: complete benchmark cases (matmul, attention, layer) on the GPU.
//! - [`backend`]: the [`backend::Backend`] trait: the wgpu backend and a deterministic mock.
//! - [`nvml`]: NVIDIA memory via NVML, when the library loads.
//! - [`peak`]: matching the adapter to a GPU preset for "fraction of peak".
//! - [`layer`]: a transformer layer's shapes and saved tensors from a model preset.
//! - [`report`]: serde report structs, the calibration file, tables.
//! - [`cli`]: clap arguments and the `devices`, `bench` and `validate` commands.
//!
//! Nothing here is used by the analytic core; the planner reads only the JSON it writes
//! ([`report::BenchFile`]).

pub mod backend;
pub mod chart;
#[cfg(feature = "cli")]
pub mod cli;
pub mod device;
pub mod kernels;
pub mod layer;
pub mod nvml;
pub mod peak;
pub mod reference;
pub mod report;
pub mod timing;
pub mod workload;

use crate::dtype::DType;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Environment variable that makes GPU tests fail, instead of skipping, when no adapter exists
/// (set by `scripts/test.sh`, which CI runs).
pub const REQUIRE_GPU_ENV: &str = "MEMPLAN_REQUIRE_GPU";

/// Storage precision of a kernel's tensors (arithmetic is f32 in every kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    Fp16,
}

impl Precision {
    pub fn size(self) -> u64 {
        match self {
            Precision::Fp32 => 4,
            Precision::Fp16 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
        }
    }

    pub fn dtype(self) -> DType {
        match self {
            Precision::Fp32 => DType::Fp32,
            Precision::Fp16 => DType::Fp16,
        }
    }

    /// `--dtype` as given on the command line.
    pub fn parse(value: &str) -> Result<Precision> {
        let expected = "fp32 or fp16 (WGSL has no bf16 or fp8 storage type)";
        match value.parse::<DType>() {
            Ok(DType::Fp32) => Ok(Precision::Fp32),
            Ok(DType::Fp16) => Ok(Precision::Fp16),
            _ => Err(Error::invalid("--dtype", value, expected)),
        }
    }

    /// Fail cleanly when the device cannot run this precision.
    pub fn check(self, gpu: &device::Gpu) -> Result<()> {
        if self == Precision::Fp16 && !gpu.has(wgpu::Features::SHADER_F16) {
            return Err(Error::Device {
                message: format!(
                    "adapter `{}` does not support fp16 in shaders (no SHADER_F16 feature)",
                    gpu.report.name
                ),
                hint: "use --dtype fp32".into(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
