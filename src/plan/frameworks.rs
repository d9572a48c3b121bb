//! What each training framework can run: one capability table, each rule with the source it
//! comes from. The search builds candidates only from these rules, every plan it returns
//! carries the framework that runs it, and the emitters refuse what a framework cannot express.
//!
//! Sources (read at the commits named):
//! - Megatron-LM `NVIDIA/Megatron-LM@d98e8a64`: `megatron/training/arguments.py`
//!   (`validate_args`: uneven pipelines, virtual stages, distributed optimizer, Megatron-FSDP,
//!   context parallelism `seq_length % (2·cp)`, sequence parallelism off at tp 1, expert
//!   parallelism `num_experts % ep`, bf16 ⇒ fp32 main grads), `megatron/core/transformer/
//!   transformer_config.py` (`__post_init__`, "Uneven PP" and `account_for_*_in_pipeline_split`).
//! - DeepSpeed `deepspeedai/DeepSpeed@edaa7221`: `deepspeed/runtime/pipe/engine.py`
//!   (`PipelineEngine.__init__`: "ZeRO-2 and ZeRO-3 are incompatible with pipeline
//!   parallelism"), `deepspeed/runtime/pipe/schedule.py` (`TrainSchedule`: 1F1B only),
//!   `deepspeed/runtime/pipe/module.py` (`partition_method` `uniform` / `type:…` / `parameters`).
//! - torchtitan `pytorch/torchtitan@238fa995` (the last TOML-config version):
//!   `torchtitan/config/job_config.py` (`Parallelism`, `ActivationCheckpoint`, `Training`),
//!   `torchtitan/distributed/pipeline_parallel.py` (`pipeline_llm`,
//!   `generate_llm_fqn_per_model_part`: the first and last stage each count the embedding /
//!   output as `*_less_layers` = 1 layer by default; looped schedules put stage s on rank s % pp).
//! - Hugging Face `transformers/trainer.py` (`create_accelerator_and_postprocess`: FSDP's
//!   `activation_checkpointing` and `--gradient_checkpointing` together raise a ValueError) and
//!   accelerate's FSDP plugin (`FULL_SHARD`, `SHARD_GRAD_OP`, `HYBRID_SHARD`, CPU offload).

use crate::framework::Framework;
use crate::memory::{Precision, Recompute};
use crate::parallel::{Fsdp, Offload, ParallelPlan, Schedule};

/// How a framework shards model states over the data-parallel ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharding {
    /// Replicated model states (PyTorch DDP, Megatron's DDP, ZeRO-0).
    Replicated,
    /// DeepSpeed ZeRO stage 1, 2 or 3.
    Zero(u8),
    /// Megatron's distributed optimizer (optimizer states and fp32 main params over dp).
    DistributedOptimizer,
    /// PyTorch FSDP / FSDP2 / Megatron-FSDP.
    Fsdp(Fsdp),
}

impl Sharding {
    /// The plan fields this sharding sets: (zero, fsdp, distributed_optimizer).
    pub fn fields(self) -> (u8, Option<Fsdp>, bool) {
        match self {
            Sharding::Replicated => (0, None, false),
            Sharding::Zero(z) => (z, None, false),
            Sharding::DistributedOptimizer => (0, None, true),
            Sharding::Fsdp(f) => (0, Some(f), false),
        }
    }

    pub fn of(plan: &ParallelPlan) -> Sharding {
        match (plan.zero, plan.fsdp, plan.distributed_optimizer) {
            (_, Some(f), _) => Sharding::Fsdp(f),
            (_, None, true) => Sharding::DistributedOptimizer,
            (0, None, false) => Sharding::Replicated,
            (z, None, false) => Sharding::Zero(z),
        }
    }
}

/// How the gradients of a data-parallel step reach every rank, for the step-time model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradSync {
    /// PyTorch DDP: bucketed all-reduce launched by autograd hooks during the backward of the
    /// last micro-batch (`no_sync` before it) — overlapped with that backward.
    DdpOverlapped,
    /// Megatron-LM DDP and distributed optimizer with its defaults (`--overlap-grad-reduce` and
    /// `--overlap-param-gather` off): one all-reduce (or reduce-scatter + all-gather) after the
    /// last micro-batch, not overlapped.
    AfterFlush,
    /// DeepSpeed ZeRO-1/2 engine (`stage_1_and_2.py` `process_gradients`): ZeRO-1 reduces at the
    /// accumulation boundary, ZeRO-2 (`partition_gradients`) after every micro-batch, both in
    /// buckets overlapped with backward (`overlap_comm`).
    DeepSpeedBuckets,
    /// ZeRO-3 / FSDP: parameters gathered per unit in forward (and again in backward when resharded),
    /// gradients reduce-scattered per unit, prefetched so that they overlap with compute.
    Sharded,
}

/// The rule a plan breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Precision,
    TensorParallel,
    Pipeline,
    ContextParallel,
    ExpertParallel,
    SequenceParallel,
    Recompute,
    Sharding,
    Offload,
}

/// A framework's rules, in one place.
#[derive(Clone, Copy, Debug)]
pub struct Capabilities {
    pub framework: Framework,
    /// Precision recipes whose byte counts match what the framework keeps.
    pub precisions: &'static [Precision],
    pub tensor_parallel: bool,
    /// Sequence parallelism: `None` not available, `Some(true)` always on with tp (torchtitan's
    /// `apply_tp` shards norms and dropout on the sequence), `Some(false)` optional.
    pub sequence_parallel: Option<bool>,
    pub pipeline: bool,
    pub schedules: &'static [Schedule],
    /// Pipeline layouts beyond the even split.
    pub layouts: Layouts,
    pub context_parallel: bool,
    pub expert_parallel: bool,
    pub recompute: &'static [Recompute],
    /// Offloading to host memory.
    pub offload: bool,
}

/// Which pipeline layouts a framework expresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layouts {
    /// Only an even split (layers divisible by pp, or by pp·v with interleaving).
    Even,
    /// Megatron: even, `--account-for-embedding/loss-in-pipeline-split` (each of the embedding
    /// and the loss takes one layer's slot), or explicit first/last stage layers
    /// (`--decoder-first/last-pipeline-num-layers`, divisible by v when interleaved).
    Megatron,
    /// DeepSpeed `PipelineModule(partition_method=…)`: `uniform`, or `type:` counting the
    /// embedding and head modules as one layer each (the BLOOM recipe).
    DeepSpeed,
    /// torchtitan `generate_llm_fqn_per_model_part`: L + in + out effective layers over pp·v
    /// chunks, in/out = `pipeline_parallel_first/last_stage_less_layers` (default 1 each).
    Torchtitan,
}

const MEGATRON_PRECISIONS: &[Precision] = &[Precision::MegatronBf16, Precision::MegatronFp16, Precision::Fp32];
const ZERO_PRECISIONS: &[Precision] = &[Precision::MixedBf16, Precision::MixedFp16, Precision::Fp32];
const TORCH_PRECISIONS: &[Precision] =
    &[Precision::AmpBf16, Precision::AmpFp16, Precision::Fp32, Precision::Bf16, Precision::Fp16];
/// HF Trainer: DDP under autocast, or FSDP with a bf16/fp16 `MixedPrecision` policy over fp32
/// sharded parameters, whose bytes (4 + 4 + 8 sharded) equal the ZeRO recipe's (2 + 2 + 12).
const HF_PRECISIONS: &[Precision] =
    &[Precision::AmpBf16, Precision::AmpFp16, Precision::Fp32, Precision::MixedBf16, Precision::MixedFp16];
/// torchtitan: FSDP2 `MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32)` over fp32
/// sharded parameters (`training.mixed_precision_param`), or fp32 throughout.
const TITAN_PRECISIONS: &[Precision] = &[Precision::MixedBf16, Precision::Fp32];

/// The recomputation policies a framework offers, read once from its profile
/// (`presets/frameworks/<name>.toml`, `recompute_policies`): one definition for the estimate's
/// checks and the planner's search. `every-k` is searched as torchtitan's default k = 2
/// (`selective_ac_option = "2"`, torchtitan/config/job_config.py). Two launch configs narrow the
/// list so that what is searched is what is emitted: plain DDP plans launch through the Hugging
/// Face Trainer (`launch_fsdp.sh`), whose `--gradient_checkpointing` is HF's per-layer
/// checkpointing (`hf`); DeepSpeed plans launch through Megatron-DeepSpeed, which checkpoints
/// full layers (`--checkpoint-activations`).
pub fn recompute_policies(framework: Framework) -> &'static [Recompute] {
    use std::sync::OnceLock;
    static CACHE: OnceLock<Vec<(Framework, &'static [Recompute])>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        Framework::ALL
            .iter()
            .map(|&f| {
                let names = crate::memory::profile::FrameworkProfile::load(f, None)
                    .ok()
                    .and_then(|p| p.recompute_policies)
                    .unwrap_or_else(|| vec!["none".into(), "hf".into()]);
                let list: Vec<Recompute> = names
                    .iter()
                    .filter_map(|n| if n == "every-k" { Some(Recompute::Every(2)) } else { Recompute::parse(n).ok() })
                    .filter(|r| !(f == Framework::Deepspeed && *r == Recompute::Hf))
                    .collect();
                (f, &*Box::leak(list.into_boxed_slice()))
            })
            .collect()
    });
    cache.iter().find(|(f, _)| *f == framework).map_or(&[], |(_, l)| *l)
}

/// The training frameworks the planner searches, in the order used to break ties.
pub const TRAINING: [Framework; 6] = [
    Framework::Megatron,
    Framework::Torchtitan,
    Framework::Deepspeed,
    Framework::AccelerateFsdp,
    Framework::HfTrainer,
    Framework::Pytorch,
];

pub fn capabilities(framework: Framework) -> Option<Capabilities> {
    let none: &'static [Schedule] = &[];
    Some(match framework {
        Framework::Pytorch => Capabilities {
            framework,
            precisions: TORCH_PRECISIONS,
            tensor_parallel: false,
            sequence_parallel: None,
            pipeline: false,
            schedules: none,
            layouts: Layouts::Even,
            context_parallel: false,
            expert_parallel: false,
            // torch.utils.checkpoint around each layer.
            recompute: recompute_policies(framework),
            offload: false,
        },
        Framework::HfTrainer | Framework::AccelerateFsdp => Capabilities {
            framework,
            precisions: HF_PRECISIONS,
            tensor_parallel: false,
            sequence_parallel: None,
            pipeline: false,
            schedules: none,
            layouts: Layouts::Even,
            context_parallel: false,
            expert_parallel: false,
            // `gradient_checkpointing` or FSDP `activation_checkpointing`: whole layers.
            recompute: recompute_policies(framework),
            // FSDP `CPUOffload(offload_params=True)`.
            offload: true,
        },
        Framework::Torchtitan => Capabilities {
            framework,
            precisions: TITAN_PRECISIONS,
            tensor_parallel: true,
            sequence_parallel: Some(true),
            pipeline: true,
            // `pipeline_parallel_schedule`: 1F1B, GPipe, Interleaved1F1B (looped, ≥ 2 stages/rank).
            schedules: &[Schedule::OneFOneB, Schedule::Gpipe, Schedule::Interleaved],
            layouts: Layouts::Torchtitan,
            context_parallel: true,
            expert_parallel: true,
            recompute: recompute_policies(framework),
            // `training.enable_cpu_offload`: FSDP2 CPUOffloadPolicy (parameters, gradients, optimizer).
            offload: true,
        },
        Framework::Megatron => Capabilities {
            framework,
            precisions: MEGATRON_PRECISIONS,
            tensor_parallel: true,
            sequence_parallel: Some(false),
            pipeline: true,
            schedules: &[Schedule::OneFOneB, Schedule::Interleaved],
            layouts: Layouts::Megatron,
            context_parallel: true,
            expert_parallel: true,
            recompute: recompute_policies(framework),
            // `--optimizer-cpu-offload` (with the distributed optimizer).
            offload: true,
        },
        Framework::Deepspeed => Capabilities {
            framework,
            precisions: ZERO_PRECISIONS,
            // Tensor parallelism through Megatron-DeepSpeed's model code.
            tensor_parallel: true,
            sequence_parallel: None,
            pipeline: true,
            schedules: &[Schedule::OneFOneB],
            layouts: Layouts::DeepSpeed,
            context_parallel: false,
            expert_parallel: true,
            recompute: recompute_policies(framework),
            offload: true,
        },
        Framework::HfGenerate | Framework::Vllm => return None,
    })
}

impl Capabilities {
    /// Shardings this framework runs for a data-parallel degree and pipeline depth.
    pub fn shardings(&self, dp: u64, pp: u64, tp: u64, cp: u64) -> &'static [Sharding] {
        use crate::parallel::Fsdp as F;
        use Sharding::Fsdp as S;
        use Sharding::{DistributedOptimizer, Replicated, Zero};
        if dp == 1 {
            return &[Replicated];
        }
        match self.framework {
            Framework::Pytorch => &[Replicated],
            Framework::HfTrainer => &[Replicated, S(F::Full), S(F::GradOp), S(F::Hybrid)],
            Framework::AccelerateFsdp => &[S(F::Full), S(F::GradOp), S(F::Hybrid)],
            // `data_parallel_shard_degree` (FSDP2), `data_parallel_replicate_degree` (DDP, or HSDP
            // with both). Under pipeline parallelism the "default" reshard policy keeps parameters
            // gathered from forward to backward: SHARD_GRAD_OP's memory.
            Framework::Torchtitan if pp > 1 => &[Replicated, S(F::GradOp)],
            Framework::Torchtitan if tp * cp < 8 => &[Replicated, S(F::Full), S(F::Hybrid)],
            Framework::Torchtitan => &[Replicated, S(F::Full)],
            // Megatron-FSDP (`--use-megatron-fsdp --data-parallel-sharding-strategy
            // optim_grads_params|optim_grads`) is searched without pipeline parallelism.
            Framework::Megatron if pp > 1 => &[Replicated, DistributedOptimizer],
            Framework::Megatron => &[Replicated, DistributedOptimizer, S(F::Full), S(F::GradOp)],
            // engine.py: `zero_optimization_stage() < ZeroStageEnum.gradients` under the pipe engine.
            Framework::Deepspeed if pp > 1 => &[Replicated, Zero(1)],
            Framework::Deepspeed => &[Replicated, Zero(1), Zero(2), Zero(3)],
            Framework::HfGenerate | Framework::Vllm => &[],
        }
    }

    /// Offload choices for a sharding.
    pub fn offloads(&self, sharding: Sharding) -> &'static [Offload] {
        if !self.offload {
            return &[Offload::None];
        }
        match (self.framework, sharding) {
            (Framework::Deepspeed, Sharding::Zero(3)) => &[Offload::None, Offload::Optimizer, Offload::Params],
            (Framework::Deepspeed, Sharding::Zero(1 | 2)) => &[Offload::None, Offload::Optimizer],
            (Framework::Megatron, Sharding::DistributedOptimizer) => &[Offload::None, Offload::Optimizer],
            (Framework::HfTrainer | Framework::AccelerateFsdp | Framework::Torchtitan, Sharding::Fsdp(Fsdp::Full)) => {
                &[Offload::None, Offload::Params]
            }
            _ => &[Offload::None],
        }
    }

    /// How this framework synchronises gradients for a sharding (the step-time model).
    pub fn grad_sync(&self, sharding: Sharding, pp: u64) -> GradSync {
        match (self.framework, sharding) {
            (_, Sharding::Fsdp(_) | Sharding::Zero(3)) => GradSync::Sharded,
            (Framework::Megatron, _) => GradSync::AfterFlush,
            // The pipe engine reduces after the pipeline flush (`_exec_reduce_grads`).
            (Framework::Deepspeed, _) if pp > 1 => GradSync::AfterFlush,
            (Framework::Deepspeed, _) => GradSync::DeepSpeedBuckets,
            _ => GradSync::DdpOverlapped,
        }
    }

    pub fn accepts_precision(&self, p: Precision) -> bool {
        self.precisions.contains(&p)
    }

    /// The first rule (other than the pipeline layout) that keeps this framework from running
    /// `plan` with `recompute`; cheap enough for the search's inner loop.
    pub fn check(&self, plan: &ParallelPlan, recompute: Recompute, precision: Precision, seq: u64) -> Option<Refusal> {
        if !self.accepts_precision(precision) {
            return Some(Refusal::Precision);
        }
        // The HF Trainer runs DDP under autocast (fp32 weights) and FSDP with a 16-bit
        // MixedPrecision policy over fp32 shards: each recipe with its own sharding.
        if matches!(self.framework, Framework::HfTrainer | Framework::AccelerateFsdp) {
            let autocast = matches!(precision, Precision::AmpBf16 | Precision::AmpFp16);
            let mixed = matches!(precision, Precision::MixedBf16 | Precision::MixedFp16);
            if (plan.fsdp.is_some() && autocast) || (plan.fsdp.is_none() && mixed) {
                return Some(Refusal::Precision);
            }
        }
        if plan.tp > 1 && !self.tensor_parallel {
            return Some(Refusal::TensorParallel);
        }
        if plan.pp > 1 && (!self.pipeline || !self.schedules.contains(&plan.schedule)) {
            return Some(Refusal::Pipeline);
        }
        if plan.cp > 1 && !self.context_parallel {
            return Some(Refusal::ContextParallel);
        }
        if plan.ep > 1 && !self.expert_parallel {
            return Some(Refusal::ExpertParallel);
        }
        match self.sequence_parallel {
            None if plan.sp => return Some(Refusal::SequenceParallel),
            Some(true) if plan.tp > 1 && !plan.sp => return Some(Refusal::SequenceParallel),
            _ => {}
        }
        if !self.recompute.contains(&recompute) {
            return Some(Refusal::Recompute);
        }
        let sharding = Sharding::of(plan);
        if !self.shardings(plan.dp, plan.pp, plan.tp, plan.cp).contains(&sharding) {
            return Some(Refusal::Sharding);
        }
        if !self.offloads(sharding).contains(&plan.offload) {
            return Some(Refusal::Offload);
        }
        if self.framework == Framework::Megatron && plan.cp > 1 && !seq.is_multiple_of(2 * plan.cp) {
            return Some(Refusal::ContextParallel);
        }
        None
    }

    /// Why this framework cannot run `plan` with `recompute` (None when it can).
    pub fn refuses(
        &self,
        plan: &ParallelPlan,
        recompute: Recompute,
        precision: Precision,
        layers: u64,
        seq: u64,
    ) -> Option<String> {
        let name = self.framework.name();
        let why = match self.check(plan, recompute, precision, seq)? {
            Refusal::Precision => format!(
                "{name} does not keep the {} recipe{}",
                precision.name(),
                if plan.fsdp.is_some() { " with FSDP" } else { " without FSDP" }
            ),
            Refusal::TensorParallel => format!("{name} has no tensor parallelism (tp {})", plan.tp),
            Refusal::Pipeline if !self.pipeline => format!("{name} has no pipeline parallelism (pp {})", plan.pp),
            Refusal::Pipeline => format!("{name} has no {:?} pipeline schedule", plan.schedule),
            Refusal::ContextParallel if self.context_parallel => {
                format!("Megatron needs --seq-length divisible by 2·cp = {} (arguments.py)", 2 * plan.cp)
            }
            Refusal::ContextParallel => format!("{name} has no context parallelism (cp {})", plan.cp),
            Refusal::ExpertParallel => format!("{name} has no expert parallelism (ep {})", plan.ep),
            Refusal::SequenceParallel if self.sequence_parallel.is_none() => {
                format!("{name} has no sequence parallelism")
            }
            Refusal::SequenceParallel => {
                format!("{name} always shards norms and dropout over the sequence with tensor parallelism (sp)")
            }
            Refusal::Recompute => format!("{name} has no {recompute} recomputation"),
            Refusal::Sharding => match (self.framework, Sharding::of(plan)) {
                (Framework::Deepspeed, Sharding::Zero(z)) if plan.pp > 1 => format!(
                    "DeepSpeed's pipeline engine refuses ZeRO-{z} (deepspeed/runtime/pipe/engine.py: \"ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism\")"
                ),
                (_, sh) => format!("{name} does not run {sh:?} sharding with pp {}", plan.pp),
            },
            Refusal::Offload => format!("{name} cannot offload {:?} with {:?}", plan.offload, Sharding::of(plan)),
        };
        let _ = layers;
        Some(why)
    }

    /// `refuses`, the pipeline layout included.
    pub fn refuses_plan(
        &self,
        plan: &ParallelPlan,
        recompute: Recompute,
        precision: Precision,
        layers: u64,
        seq: u64,
    ) -> Option<String> {
        self.refuses(plan, recompute, precision, layers, seq).or_else(|| self.refuses_layout(plan, layers))
    }

    /// Pipeline layouts: even splits, and the uneven ones each framework expresses.
    pub fn refuses_layout(&self, plan: &ParallelPlan, layers: u64) -> Option<String> {
        if plan.pp == 1 {
            return None;
        }
        let v = if plan.schedule == Schedule::Interleaved { plan.vpp } else { 1 };
        if !plan.uneven() {
            return (!layers.is_multiple_of(plan.pp * v)).then(|| {
                format!("{} needs the {layers} layers divisible by pp·v = {}", self.framework.name(), plan.pp * v)
            });
        }
        let layouts = pipeline_layouts(self.layouts, layers, plan.pp, v);
        let here = (plan.first_stage_layers, plan.last_stage_layers);
        (!layouts.iter().any(|l| l.fields() == here)).then(|| {
            format!(
                "{} cannot lay out {layers} layers as {}/…/{} over pp {} with v {v}",
                self.framework.name(),
                plan.first_stage_layers.map_or("even".into(), |f| f.to_string()),
                plan.last_stage_layers.map_or("even".into(), |f| f.to_string()),
                plan.pp
            )
        })
    }
}

/// A pipeline layout and how the framework names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// An even split of the layers.
    Even,
    /// The embedding and the loss each take one layer's slot (Megatron
    /// `--account-for-embedding-in-pipeline-split --account-for-loss-in-pipeline-split`,
    /// DeepSpeed `partition_method="type:…"` counting both, torchtitan's default
    /// `*_stage_less_layers = 1`): the first and last stage hold one layer fewer.
    EmbeddingAndLoss { first: u64, last: u64 },
    /// Explicit first and last stage layers (Megatron `--decoder-first/last-pipeline-num-layers`).
    FirstLast { first: u64, last: u64 },
}

impl Layout {
    /// (first_stage_layers, last_stage_layers) as the plan stores them.
    pub fn fields(self) -> (Option<u64>, Option<u64>) {
        match self {
            Layout::Even => (None, None),
            Layout::EmbeddingAndLoss { first, last } | Layout::FirstLast { first, last } => (Some(first), Some(last)),
        }
    }
}

/// The layouts a framework expresses for `layers` over `pp` stages of `v` chunks each.
pub fn pipeline_layouts(kind: Layouts, layers: u64, pp: u64, v: u64) -> Vec<Layout> {
    let mut out = Vec::new();
    if pp < 2 {
        return vec![Layout::Even];
    }
    if layers.is_multiple_of(pp * v) {
        out.push(Layout::Even);
    }
    // Embedding and loss counted as one layer each: (L + 2) slots split evenly.
    let slots = layers + 2;
    let embedding_and_loss = |per_rank_divisible_by: u64| -> Option<Layout> {
        if !slots.is_multiple_of(pp) || !(slots / pp).is_multiple_of(per_rank_divisible_by) || slots / pp < 2 {
            return None;
        }
        let per = slots / pp;
        (pp > 2 || per * 2 == slots).then_some(Layout::EmbeddingAndLoss { first: per - 1, last: per - 1 })
    };
    match kind {
        Layouts::Even => {}
        Layouts::Megatron => {
            // transformer_config.py: with account_for_*, (L + 2) % pp == 0 and the per-rank count
            // divisible by vpp.
            if let Some(l) = embedding_and_loss(v) {
                out.push(l);
            }
            // Explicit first/last: each divisible by v, the middle stages an equal multiple of v.
            if pp > 2 {
                let middle_stages = pp - 2;
                let base = layers / pp;
                for first in [base.saturating_sub(1), base, base + 1] {
                    for last in [base.saturating_sub(1), base, base + 1] {
                        if first == 0 || last == 0 || first + last >= layers {
                            continue;
                        }
                        let rest = layers - first - last;
                        if !rest.is_multiple_of(middle_stages) {
                            continue;
                        }
                        let middle = rest / middle_stages;
                        if middle == 0
                            || !first.is_multiple_of(v)
                            || !last.is_multiple_of(v)
                            || !middle.is_multiple_of(v)
                        {
                            continue;
                        }
                        if first == middle && last == middle {
                            continue; // the even split
                        }
                        let l = Layout::FirstLast { first, last };
                        if !out.iter().any(|o| o.fields() == l.fields()) {
                            out.push(l);
                        }
                    }
                }
            }
        }
        Layouts::DeepSpeed => {
            if v == 1 {
                if let Some(l) = embedding_and_loss(1) {
                    out.push(l);
                }
            }
        }
        Layouts::Torchtitan => {
            // generate_llm_fqn_per_model_part with in = out = 1 over pp·v chunks; chunk c sits on
            // rank c % pp (loop style). Representable when the middle ranks come out equal.
            // Only exact splits: `pipeline_parallel_layers_per_stage` must give pp·v chunks.
            if let Some((first, middle, last)) =
                torchtitan_ranks(layers, pp, v, 1, 1).filter(|_| (layers + 2).is_multiple_of(pp * v))
            {
                if !(first == middle && last == middle) {
                    out.push(Layout::EmbeddingAndLoss { first, last });
                }
            }
        }
    }
    out
}

/// Transformer layers per pipeline rank under torchtitan's split (first, middle, last), when
/// every middle rank holds the same count.
pub fn torchtitan_ranks(
    layers: u64,
    pp: u64,
    v: u64,
    input_weight: u64,
    output_weight: u64,
) -> Option<(u64, u64, u64)> {
    let stages = pp * v;
    let effective = layers + input_weight + output_weight;
    if stages > effective {
        return None;
    }
    let per = effective / stages;
    let extra = effective % stages;
    if input_weight > per || output_weight > per {
        return None;
    }
    let mut ranks = vec![0u64; pp as usize];
    let mut placed = 0u64;
    for s in 0..stages {
        let mut n = per + u64::from(s < extra);
        if s == 0 {
            n -= input_weight;
        } else if s + 1 == stages {
            n -= output_weight;
        }
        let n = n.min(layers - placed);
        placed += n;
        ranks[(s % pp) as usize] += n;
    }
    if placed != layers || ranks.contains(&0) {
        return None;
    }
    let middle = if pp > 2 { ranks[1] } else { ranks[0] };
    if ranks[1..pp as usize - 1].iter().any(|&n| n != middle) {
        return None;
    }
    Some((ranks[0], middle, ranks[pp as usize - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchtitan_llama3_405b_split_matches_the_paper() {
        // 126 layers over 16 ranks with 2 chunks each: embedding and output take one slot each,
        // so the first and last ranks hold 7 layers and the others 8 (Llama 3 §3.3.2).
        assert_eq!(torchtitan_ranks(126, 16, 2, 1, 1), Some((7, 8, 7)));
        let l = pipeline_layouts(Layouts::Torchtitan, 126, 16, 2);
        assert_eq!(l, vec![Layout::EmbeddingAndLoss { first: 7, last: 7 }]);
    }

    #[test]
    fn megatron_layouts_follow_transformer_config() {
        // 126 + 2 = 128 slots over 16 ranks: 8 each, divisible by v = 2 and 4.
        let l = pipeline_layouts(Layouts::Megatron, 126, 16, 4);
        assert!(l.contains(&Layout::EmbeddingAndLoss { first: 7, last: 7 }));
        // 70 layers (BLOOM) over 12 stages: 72 slots, 6 each.
        let l = pipeline_layouts(Layouts::DeepSpeed, 70, 12, 1);
        assert_eq!(l, vec![Layout::EmbeddingAndLoss { first: 5, last: 5 }]);
        // Explicit first/last stay divisible by v.
        for l in pipeline_layouts(Layouts::Megatron, 105, 35, 1) {
            if let Layout::FirstLast { first, last } = l {
                assert_eq!((105 - first - last) % 33, 0);
            }
        }
    }

    #[test]
    fn deepspeed_pipeline_refuses_zero_2() {
        let c = capabilities(Framework::Deepspeed).unwrap();
        let plan = ParallelPlan { dp: 4, pp: 2, zero: 2, microbatches: 4, ..ParallelPlan::single() };
        let why = c.refuses_plan(&plan, Recompute::None, Precision::MixedBf16, 24, 2048).unwrap();
        assert!(why.contains("incompatible with pipeline parallelism"), "{why}");
        let plan = ParallelPlan { zero: 1, ..plan };
        assert!(c.refuses_plan(&plan, Recompute::None, Precision::MixedBf16, 24, 2048).is_none());
    }
}
