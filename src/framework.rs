//! The framework a user runs: each keeps tensors the others don't, and each runs only some
//! parallel plans. This module names them and embeds their profile files
//! (`presets/frameworks/<name>.toml`); `memory::profile` resolves a file into a profile (the
//! settings at a version, each with its source) and `memory::mechanisms` lists what they switch.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/frameworks.rs"));
}

/// A training or serving framework. `Pytorch` (plain eager PyTorch) is the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Framework {
    /// Plain PyTorch eager training or inference, DDP for data parallelism.
    #[default]
    Pytorch,
    /// The Hugging Face `Trainer` (transformers), optionally with DeepSpeed or FSDP through accelerate.
    HfTrainer,
    /// Hugging Face accelerate with PyTorch FSDP.
    AccelerateFsdp,
    /// torchtitan: FSDP2 + TP + PP + CP on DTensor.
    Torchtitan,
    /// Megatron-LM / Megatron-Core.
    Megatron,
    /// DeepSpeed (ZeRO, its pipeline engine).
    Deepspeed,
    /// Hugging Face transformers `generate`.
    HfGenerate,
    /// vLLM.
    Vllm,
}

impl Framework {
    pub const ALL: [Framework; 8] = [
        Framework::Pytorch,
        Framework::HfTrainer,
        Framework::AccelerateFsdp,
        Framework::Torchtitan,
        Framework::Megatron,
        Framework::Deepspeed,
        Framework::HfGenerate,
        Framework::Vllm,
    ];

    /// The name used on the command line, in JSON and in `presets/frameworks/<name>.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Framework::Pytorch => "pytorch",
            Framework::HfTrainer => "hf-trainer",
            Framework::AccelerateFsdp => "accelerate-fsdp",
            Framework::Torchtitan => "torchtitan",
            Framework::Megatron => "megatron",
            Framework::Deepspeed => "deepspeed",
            Framework::HfGenerate => "hf-generate",
            Framework::Vllm => "vllm",
        }
    }

    /// Serving frameworks run forward passes only.
    pub fn serves(self) -> bool {
        matches!(self, Framework::HfGenerate | Framework::Vllm)
    }

    pub fn parse(text: &str) -> Result<Framework> {
        let t = text.trim().to_ascii_lowercase().replace('_', "-");
        Framework::ALL.into_iter().find(|f| f.name() == t).ok_or_else(|| {
            let names: Vec<&str> = Framework::ALL.iter().map(|f| f.name()).collect();
            Error::invalid("framework", text, format!("one of {}", names.join(", ")))
        })
    }

    /// The profile file's text (`presets/frameworks/<name>.toml`, read by `memory::profile`).
    pub fn preset_text(self) -> &'static str {
        embedded::FRAMEWORKS
            .iter()
            .find(|(n, _)| *n == self.name())
            .map(|(_, t)| *t)
            .expect("every framework has a presets/frameworks file (checked by a test)")
    }
}

impl std::fmt::Display for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Framework::ALL {
            assert_eq!(Framework::parse(f.name()).unwrap(), f);
        }
        assert_eq!(Framework::parse("HF_Trainer").unwrap(), Framework::HfTrainer);
        assert!(Framework::parse("jax").unwrap_err().to_string().contains("jax"));
    }
}
