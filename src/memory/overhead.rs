//! Runtime overheads that are not live tensors, kept on their own lines: the CUDA context, the
//! cuBLAS workspace, NCCL's buffers and a fragmentation margin of the caching allocator.
//!
//! With a GPU preset that states its `[runtime]` (`hw::GpuRuntime`), the context and workspace
//! are that GPU's (lazy or eager module loading as the framework profile says) and each NCCL
//! communicator the plan opens costs `NCCL_BUFFSIZE` per channel per peer; without one, the
//! stated defaults below apply and no NCCL line is added (memplan's rule before GPU runtimes).

use crate::hw::GpuSpec;
use crate::parallel::ParallelPlan;
use serde::{Deserialize, Serialize};

/// NCCL's default `NCCL_BUFFSIZE`: 4 MiB per channel per peer and protocol buffer (NCCL
/// documentation, "Environment Variables": NCCL_BUFFSIZE, default 4194304).
pub const NCCL_BUFFSIZE: u64 = 4 << 20;

/// Stated defaults; every one can be overridden on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverheadConfig {
    /// CUDA context + kernels loaded by PyTorch (lazy loading): about 0.5 GiB on A100/H100.
    pub cuda_context_bytes: u64,
    /// cuBLAS/cuBLASLt workspace: PyTorch's default on Hopper is 32 MiB per handle.
    pub workspace_bytes: u64,
    /// Reserved-but-unused memory of the caching allocator, as a fraction of the live peak.
    pub fragmentation: f64,
    /// The user gave the CUDA context (`--cuda-context`): a GPU preset does not replace it.
    #[serde(default)]
    pub context_given: bool,
    /// CUDA lazy module loading (the framework profile's): the smaller context.
    #[serde(default = "yes")]
    pub lazy_loading: bool,
    /// NCCL channels per communicator (0: no NCCL line; set from the GPU's `[runtime]`).
    #[serde(default)]
    pub nccl_channels: u64,
}

fn yes() -> bool {
    true
}

impl Default for OverheadConfig {
    fn default() -> Self {
        OverheadConfig {
            cuda_context_bytes: 512 << 20,
            workspace_bytes: 32 << 20,
            fragmentation: 0.05,
            context_given: false,
            lazy_loading: true,
            nccl_channels: 0,
        }
    }
}

impl OverheadConfig {
    /// The overheads on `gpu`: its CUDA context (unless given), cuBLAS workspace and NCCL
    /// channels from its `[runtime]` table; unchanged when the preset has none.
    pub fn on_gpu(&self, gpu: &GpuSpec) -> OverheadConfig {
        let Some(r) = &gpu.runtime else { return *self };
        let context = if self.context_given {
            self.cuda_context_bytes
        } else if self.lazy_loading {
            r.cuda_context_bytes
        } else {
            r.cuda_context_eager_bytes.unwrap_or(r.cuda_context_bytes)
        };
        OverheadConfig {
            cuda_context_bytes: context,
            workspace_bytes: r.cublas_workspace_bytes,
            nccl_channels: r.nccl_channels,
            ..*self
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Overheads {
    pub cuda_context_bytes: u64,
    pub workspace_bytes: u64,
    pub fragmentation_bytes: u64,
    /// NCCL buffers of the communicators this rank opens.
    #[serde(skip_serializing_if = "is_zero")]
    pub nccl_bytes: u64,
    /// What the caching allocator reserves beyond the live peak by mechanism (besides the
    /// fragmentation margin): other streams' pools (FSDP2's reduce-scatter outputs and
    /// all-gather buffers) and freed blocks too small for a later request (the 16-bit logits
    /// at the fp32 loss backward). See `memory::estimate::training_peak`.
    #[serde(skip_serializing_if = "is_zero")]
    pub allocator_reserve_bytes: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Overheads {
    pub fn total(&self) -> u64 {
        self.cuda_context_bytes
            + self.workspace_bytes
            + self.fragmentation_bytes
            + self.nccl_bytes
            + self.allocator_reserve_bytes
    }
}

/// The overheads of a rank whose live peak is `peak_allocated`, with `allocator_reserve` bytes
/// reserved beyond it by the allocator's pools and holes.
pub fn overheads(cfg: &OverheadConfig, peak_allocated: u64, allocator_reserve: u64, plan: &ParallelPlan) -> Overheads {
    Overheads {
        allocator_reserve_bytes: allocator_reserve,
        cuda_context_bytes: cfg.cuda_context_bytes,
        workspace_bytes: cfg.workspace_bytes,
        fragmentation_bytes: (peak_allocated as f64 * cfg.fragmentation.max(0.0)).round() as u64,
        nccl_bytes: nccl_bytes(plan, cfg.nccl_channels),
    }
}

/// NCCL buffers on one rank: one communicator per parallel group of more than one rank (data,
/// tensor, context, expert parallel: a ring, two peers; pipeline: the previous and next stage),
/// each channel keeping `NCCL_BUFFSIZE` for each peer.
pub fn nccl_bytes(plan: &ParallelPlan, channels: u64) -> u64 {
    let groups = [plan.dp, plan.tp, plan.cp, plan.pp, if plan.ep > 1 { plan.ep } else { 1 }];
    let peers: u64 = groups
        .iter()
        .map(|&n| {
            if n > 2 {
                2
            } else if n == 2 {
                1
            } else {
                0
            }
        })
        .sum();
    peers.saturating_mul(channels).saturating_mul(NCCL_BUFFSIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nccl_counts_peers_per_group() {
        let plan = ParallelPlan { dp: 8, tp: 2, ..ParallelPlan::single() };
        // dp ring of 8: two peers; tp pair: one peer; 16 channels of 4 MiB each.
        assert_eq!(nccl_bytes(&plan, 16), 3 * 16 * (4 << 20));
        assert_eq!(nccl_bytes(&ParallelPlan::single(), 16), 0);
        assert_eq!(nccl_bytes(&plan, 0), 0);
    }
}
