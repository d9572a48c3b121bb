//! Parallelism plans: the degrees and sharding choices (`plan`), which parameters and layers
//! each rank holds (`layout`), how model states shard (`sharding`), pipeline schedules
//! (`pipeline`) and DeepSpeed's own estimator formulas (`deepspeed`).

pub mod deepspeed;
pub mod layout;
pub mod pipeline;
pub mod plan;
pub mod sharding;

pub use plan::{Fsdp, Offload, ParallelPlan, Schedule};
