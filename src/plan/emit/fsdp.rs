//! PyTorch FSDP (or DDP) through the Hugging Face Trainer: a torchrun launcher with
//! `TrainingArguments` flags (`--fsdp`, `--fsdp_config`, `--per_device_train_batch_size`,
//! `--gradient_accumulation_steps`, `--bf16`, `--gradient_checkpointing`, `--optim`) for
//! transformers' `run_clm.py`, and the `fsdp_config.json` it reads.
//!
//! Activation checkpointing is set once: with FSDP through `fsdp_config.activation_checkpointing`
//! (transformers' `Trainer.create_accelerator_and_postprocess` raises a ValueError when it and
//! `--gradient_checkpointing` are both set), without FSDP through `--gradient_checkpointing`.

use super::{refuse, script, torchrun, File, Job};
use crate::error::Result;
use crate::memory::{Optimizer, OptimizerImpl, Precision, Recompute};
use crate::parallel::{Fsdp, Offload};
use serde_json::json;

pub fn render(job: &Job) -> Result<Vec<File>> {
    let target = "the Hugging Face Trainer";
    let c = job.candidate;
    let plan = &c.plan;
    let setup = job.run_setup();
    if plan.tp > 1 || plan.pp > 1 || plan.cp > 1 || plan.ep > 1 {
        return Err(refuse(
            target,
            format!("tensor, pipeline, context or expert parallelism ({})", plan.describe()),
            "its FSDP and DDP shard over data parallelism only: emit --emit megatron, torchtitan or deepspeed",
        ));
    }
    if plan.zero > 0 || plan.distributed_optimizer {
        return Err(refuse(target, format!("ZeRO-{} / a distributed optimizer", plan.zero), "emit --emit deepspeed"));
    }
    let fsdp = plan.fsdp;
    let precision_flag = match (setup.precision, fsdp) {
        (Precision::AmpBf16, None) => Some("--bf16"),
        (Precision::AmpFp16, None) => Some("--fp16"),
        // FSDP's MixedPrecision(param_dtype=bf16) over fp32 sharded parameters.
        (Precision::MixedBf16, Some(_)) => Some("--bf16"),
        (Precision::MixedFp16, Some(_)) => Some("--fp16"),
        (Precision::Fp32, _) => None,
        (other, _) => {
            return Err(refuse(
                target,
                format!(
                    "the {} precision recipe {}",
                    other.name(),
                    if fsdp.is_some() { "with FSDP" } else { "with DDP" }
                ),
                "DDP under autocast is amp-bf16; FSDP with a bf16 policy is mixed-bf16",
            ))
        }
    };
    // The Trainer checkpoints whole layers: `--gradient_checkpointing` (HF's per-layer
    // checkpointing) or FSDP's `activation_checkpointing` (checkpoint_wrapper per layer).
    if matches!(setup.recompute, Recompute::Selective | Recompute::Op | Recompute::Every(_))
        || (setup.recompute == Recompute::Full && fsdp.is_none())
    {
        return Err(refuse(
            target,
            format!("{} recomputation{}", setup.recompute, if fsdp.is_none() { " without FSDP" } else { "" }),
            "the Trainer checkpoints whole layers: use --recompute hf (or full with FSDP)",
        ));
    }
    let mut args = vec![
        "--model_name_or_path \"${MODEL:-".to_string() + &job.model.name + "}\"",
        format!("--block_size {}", setup.seq),
        format!("--per_device_train_batch_size {}", c.micro_batch),
        format!("--gradient_accumulation_steps {}", plan.microbatches),
        "--do_train".to_string(),
        "--output_dir \"${OUTPUT_DIR:-out}\"".to_string(),
    ];
    if let Some(f) = precision_flag {
        args.push(f.into());
    }
    let optim = match (setup.optimizer, setup.optimizer_impl) {
        (Optimizer::Adamw | Optimizer::Adam, OptimizerImpl::Fused) => "adamw_torch_fused",
        (Optimizer::Adamw | Optimizer::Adam, OptimizerImpl::Foreach) => "adamw_torch",
        (Optimizer::Adamw8bit, _) => "adamw_bnb_8bit",
        (Optimizer::Adafactor, _) => "adafactor",
        (Optimizer::Sgd | Optimizer::SgdMomentum, _) => "sgd",
        (Optimizer::Lion, _) => "lion_32bit",
        (o, i) => {
            return Err(refuse(
                target,
                format!("the {} optimizer with the {i:?} implementation", o.name()),
                "use --optimizer-impl fused or foreach",
            ))
        }
    };
    args.push(format!("--optim {optim}"));
    if let Some(l) = setup.finetune.lora() {
        return Err(refuse(
            target,
            format!("LoRA rank {} through run_clm.py", l.rank),
            "wrap the model with PEFT in your own training script",
        ));
    }
    let mut files = Vec::new();
    match fsdp {
        None => {
            if plan.offload != Offload::None {
                return Err(refuse(target, "offloading without FSDP", "offload with FSDP full sharding"));
            }
            if setup.recompute == Recompute::Hf {
                args.push("--gradient_checkpointing".into());
            }
        }
        Some(f) => {
            if setup.recompute == Recompute::Hf {
                args.push("--gradient_checkpointing".into());
            }
            let mut option = match f {
                Fsdp::Full => "full_shard",
                Fsdp::GradOp => "shard_grad_op",
                Fsdp::Hybrid => "hybrid_shard",
            }
            .to_string();
            match plan.offload {
                Offload::None => {}
                Offload::Params if f == Fsdp::Full => option.push_str(" offload"),
                other => {
                    return Err(refuse(
                        target,
                        format!("{other:?} offload with {f:?}"),
                        "FSDP offloads parameters with full sharding",
                    ))
                }
            }
            option.push_str(" auto_wrap");
            args.push(format!("--fsdp \"{option}\""));
            args.push("--fsdp_config fsdp_config.json".into());
            let cfg = json!({
                "backward_prefetch": "backward_pre",
                "forward_prefetch": false,
                "limit_all_gathers": true,
                "use_orig_params": true,
                "sync_module_states": true,
                "cpu_ram_efficient_loading": true,
                "activation_checkpointing": setup.recompute == Recompute::Full,
            });
            files.push(File {
                name: "fsdp_config.json".into(),
                contents: serde_json::to_string_pretty(&cfg).expect("json serialises") + "\n",
            });
        }
    }
    let header = vec![
        job.header(),
        format!(
            "PyTorch {} through the Hugging Face Trainer (transformers examples/pytorch/language-modeling/run_clm.py);",
            if fsdp.is_some() { "FSDP" } else { "DDP" }
        ),
        "run on every node with NODE_RANK and MASTER_ADDR set; add the dataset of the run.".into(),
    ];
    let command = format!("{} \\\n  run_clm.py", torchrun(job));
    files.push(File { name: "launch_fsdp.sh".into(), contents: script(&header, &command, &args) });
    Ok(files)
}
