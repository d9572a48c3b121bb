//! DeepSpeed's own model-state estimators, reproduced so users can compare with what
//! `deepspeed.runtime.zero.stage3.estimate_zero3_model_states_mem_needs_all_live` and
//! `stage_1_and_2.estimate_zero2_model_states_mem_needs_all_live` print. This follows the
//! current DeepSpeed code (v0.9 and later): ZeRO-3 per GPU = 4·largest_layer + 18·P/N without
//! offload, 4·LL + 2·P/N with optimizer offload, 4·LL with both; ZeRO-2 = 2·P + 18·P/N
//! (releases before 0.9 used 4·P + 16·P/N). Its "GB" are GiB.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DeepSpeedEstimate {
    pub no_offload: u64,
    pub offload_optimizer: u64,
    pub offload_optimizer_and_params: u64,
}

/// Per-GPU model states under ZeRO-3 for `params` over `gpus`, with the largest layer gathered.
pub fn zero3(params: u64, largest_layer: u64, gpus: u64) -> DeepSpeedEstimate {
    let ll = 4 * largest_layer;
    let per = |bytes_per_param: u64| (bytes_per_param as u128 * params as u128 / gpus.max(1) as u128) as u64;
    DeepSpeedEstimate { no_offload: ll + per(18), offload_optimizer: ll + per(2), offload_optimizer_and_params: ll }
}

/// Per-GPU model states under ZeRO-2 (current formula): 2·P + 18·P/N; with optimizer offload 2·P.
pub fn zero2(params: u64, gpus: u64) -> (u64, u64) {
    let per = (18u128 * params as u128 / gpus.max(1) as u128) as u64;
    (2 * params + per, 2 * params)
}
