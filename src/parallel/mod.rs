//! Parallelism plans: the degrees and sharding choices (`plan`), which parameters and layers
//! each rank holds (`layout`), pipeline schedules (`pipeline`) and DeepSpeed's own estimator
//! formulas (`deepspeed`). How model states shard is memory accounting: `memory::sharding`.
//! Nothing here imports `memory`.

pub mod deepspeed;
pub mod layout;
pub mod pipeline;
pub mod plan;

pub use plan::{Fsdp, Offload, ParallelPlan, Schedule};
