//! Model states of one rank under data-parallel sharding (ZeRO paper §5, Rajbhandari et al.
//! 2020: P_os shards optimizer states, P_os+g also gradients, P_os+g+p also parameters over N_d
//! ranks), FSDP, Megatron's distributed optimizer and ZeRO-Offload/Infinity, plus the transient
//! communication buffers each one allocates.

use super::setup::Setup;
use super::states::{model_states, ModelStates, ParamInfo};
use crate::dtype::DType;
use crate::parallel::layout::{share, StageParams};
use crate::parallel::plan::{Fsdp, Offload, ParallelPlan};
use serde::Serialize;

/// DeepSpeed's default `reduce_bucket_size` and `allgather_bucket_size` (elements).
pub const DEEPSPEED_BUCKET_ELEMENTS: u64 = 500_000_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RankStates {
    pub states: ModelStates,
    /// Bytes moved to host memory by offloading (per rank).
    pub host_bytes: u64,
    /// Gathered parameters alive during forward and backward (ZeRO-3/FSDP: current + prefetched unit).
    pub gathered_bytes: u64,
    /// Unsharded gradients of one unit before its reduce-scatter (backward only).
    pub unsharded_grad_bytes: u64,
    /// Gradient-reduction buffers (DDP buckets, DeepSpeed reduce/all-gather buckets).
    pub bucket_bytes: u64,
    /// Gradients stay alive through the forward pass (gradient accumulation or pipelining).
    pub grads_persist: bool,
    /// Gradients are created by backward (FSDP2's reduce-scatter outputs) even for a recipe that
    /// otherwise preallocates them: none exist at the forward pass or the loss.
    pub grads_lazy: bool,
    /// Bytes of `states.gradients` that live in another CUDA stream's memory pool (FSDP2's
    /// reduce-scatter stream), not in the compute stream's.
    pub pool_resident_grads: u64,
    /// Bytes the caching allocator keeps in other streams' pools at their high-water mark
    /// (FSDP2: reduce-scatter outputs, all-gather buffers): reserved, not reusable by the
    /// compute stream (`c10/cuda/CUDACachingAllocator.cpp`: blocks belong to one stream).
    pub stream_pool_bytes: u64,
}

pub fn rank_states(stage: &StageParams, info: &ParamInfo, setup: &Setup, plan: &ParallelPlan) -> RankStates {
    let local = ParamInfo { params: stage.params, ..*info };
    let full = model_states(&local, setup);
    if !setup.training() {
        return RankStates { states: full, ..RankStates::default() };
    }
    let d = plan.shard_degree();
    let sh = |bytes: u64, on: bool| if on { share(bytes, d) } else { bytes };
    let weights = sh(full.weights, plan.shards_weights());
    let gradients = sh(full.gradients, plan.shards_grads());
    let optimizer = sh(full.optimizer, plan.shards_optimizer());
    let step_temporary = sh(full.step_temporary, plan.shards_optimizer());
    let wdt = setup.precision.weight_dtype();
    let mut rs = RankStates { grads_persist: plan.microbatches > 1, ..RankStates::default() };
    rs.states = ModelStates { weights, gradients, optimizer, step_temporary };
    match plan.offload {
        Offload::None => {}
        Offload::Optimizer | Offload::Params => {
            // ZeRO-Offload: fp32 master/moments and fp32 gradients live on the host; the GPU keeps
            // 16-bit parameters and the gradient buckets being reduced.
            rs.host_bytes = optimizer + share(DType::Fp32.bytes(stage.params), d);
            rs.states.optimizer = 0;
            rs.states.gradients = 0;
            rs.states.step_temporary = 0;
            if plan.offload == Offload::Params {
                rs.host_bytes += weights;
                rs.states.weights = 0;
            }
        }
    }
    // QLoRA's paged optimizer keeps its states in host-pageable memory.
    if let crate::memory::finetune::Finetune::Qlora { paged_optimizer: true, .. } = setup.finetune {
        rs.host_bytes += rs.states.optimizer;
        rs.states.optimizer = 0;
    }
    if plan.shards_weights() {
        rs.gathered_bytes = 2 * wdt.bytes(stage.largest_unit);
        rs.unsharded_grad_bytes = stage.largest_unit * setup.precision.grad_bytes_per_param();
    }
    if plan.fsdp == Some(Fsdp::GradOp) {
        // SHARD_GRAD_OP keeps the gathered parameters from forward until backward.
        rs.states.weights = full.weights;
    }
    if plan.dp > 1 {
        let pytorch_ddp = !setup.precision.master_weights() && plan.fsdp.is_none() && plan.zero == 0;
        let deepspeed = setup.precision.master_weights()
            && !setup.precision.grads_preallocated_megatron()
            && matches!(plan.zero, 1 | 2);
        if pytorch_ddp {
            // DDP's reducer copies every gradient into flat buckets (gradient_as_bucket_view=False).
            rs.bucket_bytes = full.gradients;
        } else if deepspeed {
            let elements = DEEPSPEED_BUCKET_ELEMENTS.min(stage.params);
            rs.bucket_bytes = elements * setup.precision.grad_bytes_per_param();
        }
    }
    // A framework profile's own buffers (DeepSpeed buckets, FSDP2 under pipelining).
    crate::memory::buckets::apply(&mut rs, stage, info, setup, plan);
    rs
}
