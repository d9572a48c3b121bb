//! Runtime overheads that are not live tensors, kept on their own lines: the CUDA context,
//! the cuBLAS workspace, and a fragmentation margin of the caching allocator.

use serde::{Deserialize, Serialize};

/// Stated defaults; every one can be overridden on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverheadConfig {
    /// CUDA context + kernels loaded by PyTorch (lazy loading): about 0.5 GiB on A100/H100.
    pub cuda_context_bytes: u64,
    /// cuBLAS/cuBLASLt workspace: PyTorch's default on Hopper is 32 MiB per handle.
    pub workspace_bytes: u64,
    /// Reserved-but-unused memory of the caching allocator, as a fraction of the live peak.
    pub fragmentation: f64,
}

impl Default for OverheadConfig {
    fn default() -> Self {
        OverheadConfig { cuda_context_bytes: 512 << 20, workspace_bytes: 32 << 20, fragmentation: 0.05 }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Overheads {
    pub cuda_context_bytes: u64,
    pub workspace_bytes: u64,
    pub fragmentation_bytes: u64,
}

impl Overheads {
    pub fn total(&self) -> u64 {
        self.cuda_context_bytes + self.workspace_bytes + self.fragmentation_bytes
    }
}

pub fn overheads(cfg: &OverheadConfig, peak_allocated: u64) -> Overheads {
    Overheads {
        cuda_context_bytes: cfg.cuda_context_bytes,
        workspace_bytes: cfg.workspace_bytes,
        fragmentation_bytes: (peak_allocated as f64 * cfg.fragmentation.max(0.0)).round() as u64,
    }
}
