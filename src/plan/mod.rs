//! The training planner: exact FLOPs (`flops`), a step-time model (`time`), the search over
//! plans (`search`) and launch configs for DeepSpeed, Megatron-LM and PyTorch FSDP (`emit`).

pub mod emit;
pub mod flops;
pub mod search;
pub mod time;
