//! Per-GPU memory: model states, the activation ledger, logits and loss, KV cache and runtime
//! overheads, combined into the peak of a training step or a forward pass.

pub mod activations;
pub mod blocks;
pub mod buckets;
pub mod checkpoint;
pub mod estimate;
pub mod finetune;
pub mod kv_cache;
pub mod logits;
pub mod mechanisms;
pub mod overhead;
pub mod profile;
pub mod serving;
pub mod setup;
pub mod sharding;
pub mod states;

pub use estimate::{estimate, Estimate, PeakPoint};
pub use overhead::OverheadConfig;
pub use setup::*;
