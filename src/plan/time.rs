//! Step time of a plan: compute at a stated efficiency of the GPU's dense peak, the pipeline
//! bubble (p − 1)/(v·m) (Narayanan et al. 2021 §2.2.2), and communication — tensor-parallel
//! collectives on the intra-node link (4 per layer per microbatch, 6 with full recomputation;
//! Korthikanti et al. 2022 §4.2.2: sequence parallelism keeps the same volume), pipeline sends,
//! data-parallel reduction and ZeRO-3/FSDP gathers on the inter-node link (a stated fraction
//! overlaps with compute), MoE all-to-all and ring-attention passes for context parallelism.
//! Ring collectives move 2(n − 1)/n of the buffer per rank for an all-reduce, (n − 1)/n for an
//! all-gather or reduce-scatter.

use super::flops::{step_flops, StepFlops};
use crate::dtype::DType;
use crate::hw::GpuSpec;
use crate::memory::estimate::PlanEstimate;
use crate::memory::{Recompute, Setup};
use crate::model::spec::ModelSpec;
use crate::parallel::{Offload, ParallelPlan};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeConfig {
    /// Fraction of the dense peak that matmuls reach (calibration or the GPU preset's default).
    pub efficiency: f64,
    /// Fraction of data-parallel / ZeRO / context-parallel communication hidden behind compute.
    pub overlap: f64,
    /// Host link for offloading, bytes/s (PCIe 4.0 x16 ≈ 25 GB/s achieved).
    pub pcie_bandwidth: f64,
    /// CPU Adam throughput for offloaded optimizer steps, parameters per second per GPU
    /// (DeepSpeed's CPU Adam reaches ~1e9 on a modern socket shared by 8 GPUs: ~1.25e8 each).
    pub cpu_adam_params_per_s: f64,
}

impl Default for TimeConfig {
    fn default() -> Self {
        TimeConfig { efficiency: 0.45, overlap: 0.5, pcie_bandwidth: 25e9, cpu_adam_params_per_s: 1.25e8 }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct StepTime {
    pub compute_s: f64,
    pub bubble_s: f64,
    pub tp_comm_s: f64,
    pub pp_comm_s: f64,
    /// Exposed (not overlapped) data-parallel and ZeRO/FSDP communication.
    pub dp_comm_s: f64,
    pub moe_comm_s: f64,
    pub cp_comm_s: f64,
    pub offload_s: f64,
    pub total_s: f64,
    pub tokens_per_s: f64,
    pub mfu: f64,
    pub hfu: f64,
    pub flops: StepFlops,
}

/// Dense peak FLOP/s of the GPU for the precision's matmul dtype (fp32 matmuls without TF32,
/// PyTorch's default).
pub fn peak_flops(gpu: &GpuSpec, setup: &Setup) -> f64 {
    match setup.precision.activation_dtype() {
        DType::Bf16 => gpu.peak_flops.bf16.unwrap_or(gpu.peak_flops.fp16),
        DType::Fp16 => gpu.peak_flops.fp16,
        _ => gpu.peak_flops.fp32,
    }
}

fn ring_all_reduce(bytes: f64, n: u64, bw: f64) -> f64 {
    if n <= 1 {
        0.0
    } else {
        2.0 * (n - 1) as f64 / n as f64 * bytes / bw
    }
}

fn ring_gather(bytes: f64, n: u64, bw: f64) -> f64 {
    if n <= 1 {
        0.0
    } else {
        (n - 1) as f64 / n as f64 * bytes / bw
    }
}

/// Step time of `plan` for a global batch of `sequences`, using the memory estimate for the
/// per-rank state sizes.
pub fn step_time(
    model: &ModelSpec,
    setup: &Setup,
    plan: &ParallelPlan,
    est: &PlanEstimate,
    gpu: &GpuSpec,
    sequences: u64,
    cfg: &TimeConfig,
) -> StepTime {
    step_time_with_flops(model, setup, plan, est, gpu, sequences, cfg, step_flops(model, setup, sequences))
}

/// `step_time` with the step's FLOPs already counted (they depend only on the model, sequence,
/// recomputation and global batch, so the planner counts them once per recompute policy).
#[allow(clippy::too_many_arguments)]
pub fn step_time_with_flops(
    model: &ModelSpec,
    setup: &Setup,
    plan: &ParallelPlan,
    est: &PlanEstimate,
    gpu: &GpuSpec,
    sequences: u64,
    cfg: &TimeConfig,
    flops: StepFlops,
) -> StepTime {
    let gpus = plan.gpus() as f64;
    let peak = peak_flops(gpu, setup);
    let achieved = peak * cfg.efficiency.max(1e-6);
    let compute_s = flops.hardware / gpus / achieved;
    let (p, v, m) = (plan.pp, plan.vpp, plan.microbatches.max(1));
    let bubble_s = compute_s * (p - 1) as f64 / (v * m) as f64;

    let intra = gpu.interconnect.intra_node_bandwidth;
    let inter = gpu.interconnect.inter_node_bandwidth.unwrap_or(intra);
    let act = setup.precision.activation_dtype().bytes(1) as f64;
    let b = setup.micro_batch as f64;
    let h = model.max_hidden() as f64;
    let worst_stage = &est.stages[est.worst];
    let stage_layers: u64 = worst_stage.layers.iter().sum();
    let seq_local = (setup.seq.div_ceil(plan.cp)) as f64;
    let activation_bytes = b * seq_local * h * act;

    // Tensor parallel: all-reduce (or all-gather + reduce-scatter with SP) of the layer's
    // activations twice forward and twice backward; full recomputation repeats the forward two.
    let collectives = if setup.recompute.coarse() == Recompute::Full { 6.0 } else { 4.0 };
    let tp_comm_s = m as f64 * stage_layers as f64 * collectives * ring_all_reduce(activation_bytes, plan.tp, intra);

    // Pipeline: one activation forward and one gradient backward per microbatch and chunk boundary.
    let node_gpus = plan.gpus_per_node.max(1);
    let pp_link = if plan.tp * plan.pp <= node_gpus { intra } else { inter };
    let p2p = activation_bytes / if plan.sp { plan.tp as f64 } else { 1.0 };
    let pp_comm_s = if p > 1 { 2.0 * (m * v) as f64 * p2p / pp_link } else { 0.0 };

    // Data parallel: gradients reduced once per step; ZeRO-3/FSDP gathers weights for forward and
    // backward; sharded optimizers all-gather the updated weights.
    let dp_link = if plan.gpus() <= node_gpus { intra } else { inter };
    let grads = worst_stage.estimate.states.gradients.max(1) as f64;
    let full_grads = grads * if plan.shards_grads() { plan.shard_degree() as f64 } else { 1.0 };
    let full_weights = setup.precision.weight_dtype().bytes(worst_stage.estimate.parameters) as f64;
    let d = plan.dp;
    let mut dp =
        if plan.shards_grads() { ring_gather(full_grads, d, dp_link) } else { ring_all_reduce(full_grads, d, dp_link) };
    if plan.shards_optimizer() {
        dp += ring_gather(full_weights, d, dp_link);
    }
    if plan.shards_weights() {
        dp += 2.0 * ring_gather(full_weights, d, dp_link);
    }
    let dp_comm_s = dp * (1.0 - cfg.overlap.clamp(0.0, 1.0));

    // MoE: two all-to-all forward and two backward of the routed tokens per MoE layer.
    let moe_layers: u64 =
        model.stacks.iter().zip(&worst_stage.layers).filter(|(s, _)| s.layer.mlp.experts > 1).map(|(_, n)| *n).sum();
    let top_k = model.stacks.iter().map(|s| s.layer.mlp.top_k).max().unwrap_or(1) as f64;
    let ep_link = if plan.ep * plan.tp <= node_gpus { intra } else { inter };
    let moe_comm_s = if plan.ep > 1 {
        m as f64 * moe_layers as f64 * 4.0 * ring_gather(activation_bytes * top_k, plan.ep, ep_link)
    } else {
        0.0
    };

    // Context parallel: K/V blocks go around the ring (cp − 1 hops) forward, twice backward.
    let cp_comm_s = if plan.cp > 1 {
        let kv_fraction = model
            .stacks
            .iter()
            .map(|s| {
                2.0 * (s.layer.attention.kv_heads() * s.layer.attention.head_dim(s.layer.hidden)) as f64
                    / s.layer.hidden as f64
            })
            .fold(0.0, f64::max);
        let cp_link = if plan.cp * plan.tp <= node_gpus { intra } else { inter };
        let per_layer = 3.0 * (plan.cp - 1) as f64 * activation_bytes * kv_fraction / plan.tp as f64 / cp_link;
        m as f64 * stage_layers as f64 * per_layer * (1.0 - cfg.overlap)
    } else {
        0.0
    };

    // Offload: gradients to the host, updated 16-bit weights back, and the CPU Adam step.
    let offload_s = if plan.offload != Offload::None {
        let shard = (worst_stage.estimate.parameters as f64 / plan.shard_degree() as f64).max(1.0);
        (shard * 2.0 + shard * 2.0) / cfg.pcie_bandwidth + shard / cfg.cpu_adam_params_per_s
    } else {
        0.0
    };

    let total_s = compute_s + bubble_s + tp_comm_s + pp_comm_s + dp_comm_s + moe_comm_s + cp_comm_s + offload_s;
    // Tokens (or patches, frames) of the input stack per sequence.
    let per_sequence = model.stacks.first().map_or(setup.seq, |s| crate::memory::activations::stack_seq(s, setup));
    let tokens = sequences as f64 * per_sequence as f64;
    StepTime {
        compute_s,
        bubble_s,
        tp_comm_s,
        pp_comm_s,
        dp_comm_s,
        moe_comm_s,
        cp_comm_s,
        offload_s,
        total_s,
        tokens_per_s: tokens / total_s,
        mfu: flops.model / (total_s * gpus * peak),
        hfu: flops.hardware / (total_s * gpus * peak),
        flops,
    }
}
