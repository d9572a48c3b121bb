//! Launch configs that are exactly the plan: every degree, the sharding, the precision recipe,
//! the recomputation policy, micro-batch and accumulation, the pipeline layout, expert
//! parallelism, offloading and the model's shape. What a target cannot express is refused with
//! an error naming it — never dropped. A set of files is written whole or not at all
//! (`fsio::write_set_atomic`), and every file reads back (`plan::read`) into the same plan.
//!
//! - Megatron-LM: `launch_megatron.sh` (torchrun + `pretrain_gpt.py` arguments, flag names from
//!   `megatron/training/arguments.py` and the `TransformerConfig` fields it exposes).
//! - DeepSpeed: `ds_config.json` (DeepSpeed's configuration keys) and `launch_deepspeed.sh`
//!   (Megatron-DeepSpeed's `pretrain_gpt.py`, `megatron/arguments.py` of deepspeedai/Megatron-DeepSpeed,
//!   with BigScience's `--pp-partition-method` for embedding-counting layouts).
//! - torchtitan: `torchtitan_job.toml` (the `JobConfig` sections of `torchtitan/config/job_config.py`).
//! - FSDP / DDP through the Hugging Face Trainer: `launch_fsdp.sh` (torchrun + `TrainingArguments`
//!   flags) and `fsdp_config.json` (`--fsdp_config`).

pub mod deepspeed;
pub mod fsdp;
pub mod megatron;
pub mod torchtitan;

use super::search::Candidate;
use crate::error::{Error, Result};
use crate::framework::Framework;
use crate::memory::Setup;
use crate::model::spec::ModelSpec;
use std::path::{Path, PathBuf};

/// One rendered file: its name inside the output folder and its contents.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub name: String,
    pub contents: String,
}

/// What an emitter needs: the model, the setup the plan was searched with, the plan and the
/// global batch.
pub struct Job<'a> {
    pub model: &'a ModelSpec,
    pub setup: &'a Setup,
    pub candidate: &'a Candidate,
    pub global_batch: u64,
}

impl Job<'_> {
    /// The setup of this candidate: micro-batch and recomputation as searched.
    pub fn run_setup(&self) -> Setup {
        Setup { micro_batch: self.candidate.micro_batch, recompute: self.candidate.recompute, ..self.setup.clone() }
    }

    /// A one-line description for file headers.
    pub fn header(&self) -> String {
        let c = self.candidate;
        format!(
            "memplan plan for {}: {} ({}), micro-batch {}, {} recompute; predicted {:.3} s/step, {:.0} tokens/s, MFU {:.1}%",
            self.model.name,
            c.plan.describe(),
            c.framework,
            c.micro_batch,
            format!("{:?}", c.recompute).to_lowercase(),
            c.time.total_s,
            c.time.tokens_per_s,
            c.time.mfu * 100.0
        )
    }
}

/// A refusal: `target` cannot express `what`.
pub fn refuse(target: &str, what: impl std::fmt::Display, hint: impl Into<String>) -> Error {
    Error::conflict(format!("{target} cannot express {what}"), hint)
}

/// Render the launch files of `framework` for the candidate (nothing is written).
pub fn render(framework: Framework, job: &Job) -> Result<Vec<File>> {
    match framework {
        Framework::Megatron => megatron::render(job),
        Framework::Deepspeed => deepspeed::render(job),
        Framework::Torchtitan => torchtitan::render(job),
        Framework::AccelerateFsdp | Framework::HfTrainer | Framework::Pytorch => fsdp::render(job),
        Framework::HfGenerate | Framework::Vllm => Err(Error::invalid(
            "--emit",
            framework.name(),
            "a training framework: megatron, deepspeed, torchtitan or fsdp",
        )),
    }
}

/// Render and write the launch files into `dir`, all or none.
pub fn emit(
    framework: Framework,
    model: &ModelSpec,
    setup: &Setup,
    candidate: &Candidate,
    global_batch: u64,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let files = render(framework, &Job { model, setup, candidate, global_batch })?;
    std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.to_path_buf(), message: e.to_string() })?;
    let set: Vec<(PathBuf, Vec<u8>)> =
        files.iter().map(|f| (dir.join(&f.name), f.contents.clone().into_bytes())).collect();
    crate::fsio::write_set_atomic(&set)?;
    Ok(set.into_iter().map(|(p, _)| p).collect())
}

/// `torchrun` for the plan's GPUs, run on every node with NODE_RANK and MASTER_ADDR set.
pub fn torchrun(job: &Job) -> String {
    let plan = &job.candidate.plan;
    let node = plan.gpus_per_node.max(1);
    let gpus = plan.gpus();
    let nodes = gpus.div_ceil(node).max(1);
    let per_node = gpus.min(node);
    format!(
        "torchrun --nnodes {nodes} --nproc-per-node {per_node} --node-rank \"${{NODE_RANK:-0}}\" --master-addr \"${{MASTER_ADDR:-127.0.0.1}}\" --master-port 29500"
    )
}

/// A shell script: header comments, then `command` with one argument per continued line.
pub fn script(header: &[String], command: &str, args: &[String]) -> String {
    let mut s = String::from("#!/usr/bin/env bash\n");
    for h in header {
        s.push_str(&format!("# {h}\n"));
    }
    s.push_str("set -euo pipefail\n");
    s.push_str(command);
    for a in args {
        s.push_str(" \\\n  ");
        s.push_str(a);
    }
    s.push_str(" \\\n  \"$@\"\n");
    s
}

/// The single decoder stack Megatron-style GPT code builds, or a refusal naming the model.
pub fn decoder_stack<'m>(target: &str, model: &'m ModelSpec) -> Result<&'m crate::model::spec::Stack> {
    match model.stacks.as_slice() {
        [s] if s.causal && matches!(s.input, crate::model::spec::StackInput::Tokens) => Ok(s),
        _ => Err(refuse(
            target,
            format!(
                "model `{}` ({} stacks: {}): its GPT model is one decoder stack over token embeddings",
                model.name,
                model.stacks.len(),
                model.stacks.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
            "emit --emit fsdp (Hugging Face models), or plan a decoder-only model",
        )),
    }
}
