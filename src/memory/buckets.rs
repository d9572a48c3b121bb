//! Framework-owned buffers on one rank and how long gradients live, applied after the generic
//! sharding rules (`memory::sharding::rank_states`) when a profile switches them on
//! (`Mechanisms::deepspeed_buffers`, `fsdp_pp_*`, `zero_grad_set_to_none`).
//!
//! DeepSpeed (`deepspeed/runtime/zero/`):
//! - ZeRO-1/2, `stage_1_and_2.py: DeepSpeedZeroOptimizer.setup_buckets`: with
//!   `contiguous_gradients` each backward allocates `torch.empty(int(self.reduce_bucket_size),
//!   dtype=self.dtype)` — the whole bucket whatever the model size — and a second one under
//!   `overlap_comm`; `allgather_bucket_size` only chunks the all-gather of updated partitions,
//!   which writes into the flat 16-bit groups in place (`runtime/utils.py: all_gather_dp_groups`,
//!   `all_gather_into_tensor`), so it adds no buffer; `step` converts the flat 16-bit gradient partition to fp32
//!   (`flat_grad_partition.to(self.single_partition_of_fp32_groups[i].dtype)`) and runs a fused
//!   Adam (no whole-model temporaries).
//! - ZeRO-3, `stage3.py: DeepSpeedZeroOptimizer_Stage3.__init__`: one IPG bucket of
//!   `reduce_bucket_size` elements lives from the start; parameters are gathered per submodule
//!   (`partitioned_param_coordinator.py: fetch_sub_module`), the current one plus up to
//!   `stage3_prefetch_bucket_size` prefetched elements and never more than
//!   `stage3_max_live_parameters`; the step upcasts one sub-group (`sub_group_size`, 1e9) of the
//!   gradient partition to fp32.
//!
//! FSDP2 under pipeline parallelism (`torch/distributed/pipelining/stage.py:
//! backward_maybe_with_nosync` turns gradient sync off for all but the last microbatch):
//! - `torch/distributed/fsdp/_fully_shard/_fsdp_param.py: FSDPParam.to_accumulated_grad_if_needed`
//!   keeps `unsharded_accumulated_grad` in the reduce dtype (fp32 under torchtitan's
//!   `MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32)`) for every parameter of the stage
//!   until the last microbatch's reduce-scatter;
//! - torchtitan `apply_fsdp` sets `reshard_after_forward = not pp_enabled` (policy "default"), so
//!   the stage's gathered 16-bit parameters stay from forward to backward.

use super::setup::Setup;
use super::sharding::RankStates;
use super::states::ParamInfo;
use crate::dtype::DType;
use crate::parallel::layout::{share, StageParams};
use crate::parallel::ParallelPlan;

/// DeepSpeed's default `sub_group_size` (`deepspeed/runtime/zero/config.py`, 1e9 elements).
pub const DEEPSPEED_SUB_GROUP_SIZE: u64 = 1_000_000_000;

/// Replace the generic buffers of `rs` with the framework's own.
pub fn apply(rs: &mut RankStates, stage: &StageParams, info: &ParamInfo, setup: &Setup, plan: &ParallelPlan) {
    if !setup.training() {
        return;
    }
    let m = &setup.mechanisms;
    let wdt = setup.precision.weight_dtype();
    let d = plan.shard_degree();
    if let Some(ds) = m.deepspeed_buffers {
        let offloaded = plan.offload != crate::parallel::Offload::None;
        match plan.zero {
            1 | 2 => {
                let buffers = if ds.overlap(plan.zero) { 2 } else { 1 };
                rs.bucket_bytes = if ds.contiguous_gradients { buffers * wdt.bytes(ds.reduce_bucket_size) } else { 0 };
                if !offloaded {
                    rs.states.step_temporary = DType::Fp32.bytes(share(stage.params, d));
                }
            }
            3 => {
                rs.bucket_bytes = if ds.contiguous_gradients { wdt.bytes(ds.reduce_bucket_size) } else { 0 };
                let module = info.largest_tensor.min(stage.params);
                let live = (module + ds.stage3_prefetch_bucket_size).min(ds.stage3_max_live_parameters.max(module));
                rs.gathered_bytes = wdt.bytes(live.min(stage.params));
                // One module's gradient exists before it is copied into the bucket.
                rs.unsharded_grad_bytes = wdt.bytes(module);
                if !offloaded {
                    rs.states.step_temporary = DType::Fp32.bytes(share(stage.params, d).min(DEEPSPEED_SUB_GROUP_SIZE));
                }
            }
            _ => {}
        }
    }
    if m.fsdp2 && plan.shards_weights() && plan.fsdp.is_some() && plan.offload == crate::parallel::Offload::None {
        fsdp2(rs, stage, info, setup, d * plan.cp);
    }
    // `zero_grad(set_to_none=False)` zeroes gradients in place (`torch/optim/optimizer.py:
    // Optimizer.zero_grad`, `torch/nn/modules/module.py: Module.zero_grad`): they stay allocated
    // through the next forward.
    if !m.zero_grad_set_to_none {
        rs.grads_persist = true;
    }
    let fsdp2_pipelined = plan.pp > 1 && plan.fsdp.is_some();
    if fsdp2_pipelined && m.fsdp_pp_keep_unsharded_params {
        rs.gathered_bytes = rs.gathered_bytes.max(wdt.bytes(stage.params));
    }
    if fsdp2_pipelined && m.fsdp_pp_unsharded_grads && plan.microbatches > 1 {
        rs.states.gradients += DType::Fp32.bytes(stage.params);
        rs.grads_persist = true;
    }
}

/// FSDP2 (`fully_shard` per block and on the root, as torchtitan's `apply_fsdp` does) on one
/// rank of a stage with `d` shards:
/// - `_fsdp_param.py: FSDPParam` keeps the fp32 sharded parameter as the optimizer's parameter
///   (the bf16 copy is only the all-gather input): 4 + 8 bytes per parameter sharded for Adam,
///   no master copy and no 16-bit shard;
/// - `_fsdp_collectives.py: foreach_reduce` casts the unsharded gradients to the fp32 reduce
///   dtype into `reduce_scatter_input` (default stream, held until the next reduce-scatter) and
///   allocates `reduce_output` in `reduce_scatter_stream`; the sharded gradients are views of it
///   kept until `zero_grad` — so there are none before backward, and they sit in that stream's
///   pool;
/// - `_fsdp_state.py: FSDPState._lazy_init` does not reshard the root group after forward
///   (embeddings, final norm, output head: the stage's parameters outside the blocks) and
///   torchtitan `apply_fsdp` keeps the last block (`reshard_after_forward = layer_id < n - 1`);
///   in backward the next block is prefetched;
/// - `foreach_all_gather` allocates the bf16 copy-in input and the flat all-gather output under
///   `all_gather_copy_in_stream`; the previous output is freed only at the next copy-out
///   (`_fsdp_param_group.py: wait_for_unshard`, `AllGatherState`), so that pool peaks at the
///   root group's buffer beside the first block's.
///
/// torchtitan shards over the data-parallel and context-parallel ranks together
/// (`parallelize_llama`: `dp_mesh_dim_names = ("dp_shard_cp",)` when CP is on), so `d` here is
/// dp · cp.
fn fsdp2(rs: &mut RankStates, stage: &StageParams, info: &ParamInfo, setup: &Setup, d: u64) {
    let wdt = setup.precision.weight_dtype();
    let full = super::states::model_states(&ParamInfo { params: stage.params, ..*info }, setup);
    let fp32_shard = DType::Fp32.bytes(share(stage.params, d));
    rs.states.optimizer = share(full.optimizer, d);
    rs.states.step_temporary = share(full.step_temporary, d);
    rs.states.weights = share(full.weights, d);
    if setup.precision.master_weights() {
        rs.states.weights = fp32_shard;
        rs.states.optimizer = rs.states.optimizer.saturating_sub(fp32_shard);
    }
    rs.states.gradients = fp32_shard;
    rs.grads_lazy = true;
    rs.pool_resident_grads = fp32_shard;
    let block = if info.stage_largest_block > 0 { info.stage_largest_block } else { stage.largest_unit };
    let block = block.min(stage.params);
    let root = stage.params.saturating_sub(info.stage_block_params.min(stage.params));
    rs.gathered_bytes = wdt.bytes(root + block);
    // In backward: the prefetched block, one block's 16-bit gradients and two fp32
    // reduce-scatter inputs (the current one and the one held from the previous block); at the
    // end the root group's gradients and its fp32 reduce-scatter input.
    let grad = setup.precision.grad_bytes_per_param();
    let per_block = wdt.bytes(block) + block * grad + 2 * DType::Fp32.bytes(block);
    let at_root = root * grad + DType::Fp32.bytes(root);
    rs.unsharded_grad_bytes = per_block.max(at_root);
    rs.stream_pool_bytes = fp32_shard + wdt.bytes(root + block + share(root, d));
}
