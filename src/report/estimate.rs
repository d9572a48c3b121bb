//! The `memplan estimate` report. JSON schema (documented in README.md):
//! `model` {name, architecture, parameters, ...}, `setup`, `per_gpu` (integer byte fields),
//! `peak` (where the peak is and what is alive), `overheads`, `fits` (per GPU), `ledger`.

use crate::hw::GpuSpec;
use crate::memory::estimate::{Estimate, LedgerLine, PeakComposition, PlanEstimate};
use crate::memory::{Phase, Setup};
use crate::model::ModelSpec;
use crate::parallel::deepspeed::DeepSpeedEstimate;
use crate::parallel::ParallelPlan;
use crate::report::printer::{csv_field, markdown, table};
use crate::units::{format_count, ByteUnits};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub family: String,
    pub architecture: &'static str,
    pub parameters: u64,
    /// Parameters touched per token (differs from `parameters` for MoE).
    pub active_parameters: u64,
    /// Parameters that train: all of them, or the LoRA adapters (as PEFT's
    /// `print_trainable_parameters` counts them).
    pub trainable_parameters: u64,
    /// The shape was derived from `--params` (LLaMA-style); see `shape`.
    pub derived_shape: bool,
    pub shape: Vec<StackInfo>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StackInfo {
    pub name: String,
    pub layers: u64,
    pub hidden: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub ffn: u64,
    pub seq: u64,
    pub vocab: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PerGpu {
    pub weights_bytes: u64,
    pub gradients_bytes: u64,
    pub optimizer_states_bytes: u64,
    pub activations_bytes: u64,
    pub other_activations_bytes: u64,
    pub kv_cache_bytes: u64,
    pub input_bytes: u64,
    pub optimizer_step_temporary_bytes: u64,
    pub peak_allocated_bytes: u64,
    pub runtime_overhead_bytes: u64,
    pub total_bytes: u64,
    /// Host (CPU) memory this rank uses for offloaded states.
    pub host_offload_bytes: u64,
    /// Parameters held by this rank before data-parallel sharding.
    pub rank_parameters: u64,
}

impl PerGpu {
    fn of(est: &Estimate) -> PerGpu {
        PerGpu {
            weights_bytes: est.states.weights,
            gradients_bytes: est.states.gradients,
            optimizer_states_bytes: est.states.optimizer,
            activations_bytes: est.activations,
            other_activations_bytes: est.other_activations,
            kv_cache_bytes: est.kv_cache,
            input_bytes: est.input_bytes,
            optimizer_step_temporary_bytes: est.states.step_temporary,
            peak_allocated_bytes: est.peak_allocated,
            runtime_overhead_bytes: est.overheads.total(),
            total_bytes: est.total,
            host_offload_bytes: est.host_bytes,
            rank_parameters: est.parameters,
        }
    }
}

/// One pipeline stage: the same byte fields as `per_gpu`, plus its layers.
#[derive(Clone, Debug, Serialize)]
pub struct StageReport {
    pub stage: u64,
    /// Layers on this stage (all stacks).
    pub layers: u64,
    pub layers_by_stack: Vec<u64>,
    /// Parameters held by one rank of this stage, before data-parallel sharding.
    pub parameters: u64,
    /// Microbatches of activations in flight (1F1B: p − i; interleaved: × (1 + (p−1)/(p·v)) on stage 0).
    pub microbatches_in_flight: f64,
    pub peak_point: String,
    #[serde(flatten)]
    pub bytes: PerGpu,
}

#[derive(Clone, Debug, Serialize)]
pub struct Peak {
    pub point: String,
    pub description: &'static str,
    pub alive: PeakComposition,
}

#[derive(Clone, Debug, Serialize)]
pub struct Fit {
    pub gpu: String,
    /// The vendor's memory size.
    pub memory_bytes: u64,
    /// What a process can use: PyTorch's `total_memory` when the preset states it.
    pub usable_bytes: u64,
    /// The total on this GPU: the peak plus this GPU's runtime overheads.
    pub total_bytes: u64,
    pub fits: bool,
    /// Usable memory left (negative: missing), bytes.
    pub headroom_bytes: i128,
    /// Inference with a KV cache: the most concurrent sequences of the given context that fit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_sequences: Option<u64>,
}

/// Which framework profile an estimate used.
#[derive(Clone, Debug, Serialize)]
pub struct FrameworkInfo {
    pub name: String,
    /// The package the version refers to (transformers, torchtitan, megatron-core, ...).
    pub package: String,
    pub version: String,
    /// Every setting the profile applied: value, why, source.
    pub settings: Vec<crate::memory::profile::ProfileNote>,
}

impl FrameworkInfo {
    pub fn of(p: &crate::memory::profile::FrameworkProfile) -> FrameworkInfo {
        FrameworkInfo {
            name: p.framework.name().into(),
            package: p.package.clone(),
            version: p.version.to_string(),
            settings: p.notes.clone(),
        }
    }

    /// `torchtitan (torchtitan 0.1)`.
    pub fn describe(&self) -> String {
        format!("{} ({} {})", self.name, self.package, self.version)
    }
}

/// Serving capacity: how the total grows with each concurrent sequence.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Serving {
    /// Tokens each sequence keeps in the KV cache (prompt + generated, rounded to blocks).
    pub context_tokens: u64,
    /// KV cache bytes of one sequence on the worst rank.
    pub kv_bytes_per_sequence: u64,
    /// Total bytes with no sequence's KV cache: weights, working set, overheads.
    pub base_bytes: u64,
    /// Each added sequence costs its KV cache plus the fragmentation margin on it.
    pub bytes_per_sequence: u64,
}

impl Serving {
    pub fn max_sequences(&self, memory_bytes: u64) -> u64 {
        if memory_bytes <= self.base_bytes || self.bytes_per_sequence == 0 {
            0
        } else {
            (memory_bytes - self.base_bytes) / self.bytes_per_sequence
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EstimateReport {
    pub model: ModelInfo,
    /// Inference with a KV cache: the per-sequence cost and the capacity per GPU in `fits`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving: Option<Serving>,
    /// `--framework vllm`: the start-up budget and block count the server would print.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving_framework: Option<super::capacity::ServingCapacity>,
    pub setup: Setup,
    pub plan: ParallelPlan,
    /// The framework profile used and the settings it applied, each with why and its source.
    pub framework: FrameworkInfo,
    /// The worst rank (the stage that needs the most memory).
    pub per_gpu: PerGpu,
    pub worst_stage: u64,
    pub stages: Vec<StageReport>,
    /// What DeepSpeed's own ZeRO-3 estimator prints for this model and GPU count (GiB there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deepspeed_zero3_estimator: Option<DeepSpeedEstimate>,
    pub peak: Peak,
    pub overheads: crate::memory::overhead::Overheads,
    pub fits: Vec<Fit>,
    pub ledger: Vec<LedgerLine>,
    /// Statements of what was assumed.
    pub assumptions: Vec<String>,
}

impl EstimateReport {
    pub fn new(
        model: &ModelSpec,
        parameters: u64,
        derived: bool,
        setup: &Setup,
        plan_est: &PlanEstimate,
        gpus: &[GpuSpec],
    ) -> Self {
        let est = plan_est.worst();
        let shape = model
            .stacks
            .iter()
            .zip(&est.shapes)
            .map(|(s, sh)| StackInfo {
                name: s.name.clone(),
                layers: s.layers,
                hidden: s.layer.hidden,
                heads: s.layer.attention.heads,
                kv_heads: s.layer.attention.kv_heads(),
                ffn: s.layer.mlp.ffn,
                seq: sh.seq,
                vocab: if matches!(s.input, crate::model::StackInput::Tokens) { model.vocab() } else { 0 },
            })
            .collect();
        let active = if derived { parameters } else { crate::model::params::active_count(model) };
        let stages = plan_est
            .stages
            .iter()
            .map(|st| StageReport {
                stage: st.stage,
                layers: st.layers.iter().sum(),
                layers_by_stack: st.layers.clone(),
                parameters: st.estimate.parameters,
                microbatches_in_flight: st.in_flight.chunks as f64 / st.in_flight.per.max(1) as f64,
                peak_point: point_name(st.estimate.peak_point),
                bytes: PerGpu::of(&st.estimate),
            })
            .collect();
        let plan = &plan_est.plan;
        // DeepSpeed's "largest layer" is the module with the most parameters of its own (an
        // embedding table or one linear), not a transformer block.
        let deepspeed_zero3_estimator = (plan.zero == 3).then(|| {
            let largest = crate::memory::states::ParamInfo::of(model).largest_tensor;
            crate::parallel::deepspeed::zero3(parameters, largest, plan.gpus())
        });
        // Each GPU with its own runtime overheads (context, workspace, NCCL) and usable memory.
        let fits = gpus
            .iter()
            .map(|g| {
                let cfg = est.overhead_config.on_gpu(g);
                let total = est.peak_allocated
                    + crate::memory::overhead::overheads(
                        &cfg,
                        est.peak_allocated,
                        est.overheads.allocator_reserve_bytes,
                        plan,
                    )
                    .total();
                Fit {
                    gpu: g.name.clone(),
                    memory_bytes: g.memory_bytes,
                    usable_bytes: g.usable_bytes(),
                    total_bytes: total,
                    fits: total <= g.usable_bytes(),
                    headroom_bytes: g.usable_bytes() as i128 - total as i128,
                    max_concurrent_sequences: None,
                }
            })
            .collect();
        EstimateReport {
            serving: None,
            serving_framework: None,
            model: ModelInfo {
                name: model.name.clone(),
                family: model.family.clone(),
                architecture: model.architecture.name(),
                parameters,
                active_parameters: active,
                trainable_parameters: match setup.phase {
                    Phase::Train => crate::memory::finetune::trainable_params(model, &setup.finetune).min(parameters),
                    Phase::Inference => 0,
                },
                derived_shape: derived,
                shape,
            },
            setup: setup.clone(),
            plan: plan.clone(),
            framework: FrameworkInfo::of(&crate::memory::profile::FrameworkProfile::default()),
            per_gpu: PerGpu::of(est),
            worst_stage: plan_est.stages[plan_est.worst].stage,
            stages,
            deepspeed_zero3_estimator,
            peak: Peak {
                point: point_name(est.peak_point),
                description: est.peak_point.describe(),
                alive: est.at_peak,
            },
            overheads: est.overheads,
            fits,
            ledger: est.ledger.clone(),
            assumptions: assumptions(model, derived, setup, est, plan),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serialises")
    }

    fn rows(&self, u: ByteUnits) -> Vec<(String, u64, String)> {
        let p = &self.per_gpu;
        let training = self.setup.phase == Phase::Train;
        let mut rows = vec![(
            "weights".to_string(),
            p.weights_bytes,
            format!("{} params on this rank", format_count(p.rank_parameters)),
        )];
        if training {
            rows.push(("gradients".into(), p.gradients_bytes, String::new()));
            rows.push(("optimizer states".into(), p.optimizer_states_bytes, self.setup.optimizer.name().into()));
            rows.push(("activations (layer stacks)".into(), p.activations_bytes, "saved for backward".into()));
        } else {
            rows.push(("activations (largest layer)".into(), p.activations_bytes, "working set".into()));
        }
        rows.push(("other activations".into(), p.other_activations_bytes, "embeddings, logits, loss, inputs".into()));
        if !training {
            rows.push(("KV cache".into(), p.kv_cache_bytes, String::new()));
        }
        let _ = u;
        rows
    }

    pub fn to_table(&self, u: ByteUnits, show_ledger: bool) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "{} ({}, {} parameters{})\n",
            self.model.name,
            self.model.architecture,
            format_count(self.model.parameters),
            if self.model.derived_shape { ", shape derived from the count" } else { "" }
        ));
        for a in &self.assumptions {
            s.push_str(&format!("  {a}\n"));
        }
        s.push_str(&format!("  framework: {}\n", self.framework.describe()));
        for n in &self.framework.settings {
            s.push_str(&format!("    {} = {}: {} [{}]\n", n.setting, n.value, n.why, n.source));
        }
        let mut t = table(vec!["term", &format!("per GPU ({})", u.label()), "note"]);
        for (name, bytes, note) in self.rows(u) {
            t.add_row(vec![name, fmt(u, bytes), note]);
        }
        let p = &self.per_gpu;
        t.add_row(vec![
            "peak allocated (live tensors)".into(),
            fmt(u, p.peak_allocated_bytes),
            format!("at the {}", self.peak.description),
        ]);
        t.add_row(vec!["CUDA context".into(), fmt(u, self.overheads.cuda_context_bytes), "runtime overhead".into()]);
        t.add_row(vec!["cuBLAS workspace".into(), fmt(u, self.overheads.workspace_bytes), "runtime overhead".into()]);
        if self.overheads.nccl_bytes > 0 {
            t.add_row(vec![
                "NCCL buffers".into(),
                fmt(u, self.overheads.nccl_bytes),
                "NCCL_BUFFSIZE × channels × peers per communicator".into(),
            ]);
        }
        if self.overheads.allocator_reserve_bytes > 0 {
            t.add_row(vec![
                "allocator pools and holes".into(),
                fmt(u, self.overheads.allocator_reserve_bytes),
                "other streams' pools, freed blocks too small to reuse".into(),
            ]);
        }
        t.add_row(vec![
            "fragmentation margin".into(),
            fmt(u, self.overheads.fragmentation_bytes),
            format!("{:.0}% of the peak", self.setup_fragmentation() * 100.0),
        ]);
        t.add_row(vec!["total (reserved)".into(), fmt(u, p.total_bytes), "peak + overheads".into()]);
        s.push_str(&t.to_string());
        s.push('\n');
        let a = &self.peak.alive;
        s.push_str(&format!(
            "alive at the peak: weights {}, gradients {}, optimizer {}, activations {}, other {}, KV cache {}, temporaries {}\n",
            fmt(u, a.weights),
            fmt(u, a.gradients),
            fmt(u, a.optimizer_states),
            fmt(u, a.activations),
            fmt(u, a.other_activations),
            fmt(u, a.kv_cache),
            fmt(u, a.temporaries)
        ));
        if let Some(sv) = &self.serving {
            s.push_str(&format!(
                "serving: each sequence of {} tokens keeps {} of KV cache; weights, working set and overheads take {}\n",
                sv.context_tokens,
                fmt(u, sv.kv_bytes_per_sequence),
                fmt(u, sv.base_bytes)
            ));
        }
        if let Some(c) = &self.serving_framework {
            s.push_str(&c.to_text(u));
        }
        if !self.fits.is_empty() {
            let mut header = vec![
                "GPU".to_string(),
                format!("usable ({})", u.label()),
                "fits".into(),
                format!("headroom ({})", u.label()),
            ];
            if let Some(sv) = &self.serving {
                header.push(format!("max sequences × {} tokens", sv.context_tokens));
            }
            let mut t = table(header.iter().map(String::as_str).collect());
            for f in &self.fits {
                let head = if f.headroom_bytes >= 0 {
                    fmt(u, f.headroom_bytes as u64)
                } else {
                    format!("-{}", fmt(u, (-f.headroom_bytes) as u64))
                };
                let mut row =
                    vec![f.gpu.clone(), fmt(u, f.usable_bytes), if f.fits { "yes".into() } else { "no".into() }, head];
                if let Some(n) = f.max_concurrent_sequences {
                    row.push(n.to_string());
                }
                t.add_row(row);
            }
            s.push_str(&t.to_string());
            s.push('\n');
        }
        if self.stages.len() > 1 {
            s.push_str(&format!("pipeline stages (worst: stage {}):\n", self.worst_stage));
            let mut t = table(vec![
                "stage",
                "layers",
                "in flight",
                &format!("weights ({})", u.label()),
                &format!("grads+optimizer ({})", u.label()),
                &format!("activations ({})", u.label()),
                &format!("peak ({})", u.label()),
                &format!("total ({})", u.label()),
            ]);
            for st in &self.stages {
                let b = &st.bytes;
                t.add_row(vec![
                    st.stage.to_string(),
                    st.layers.to_string(),
                    format!("{:.2}", st.microbatches_in_flight),
                    fmt(u, b.weights_bytes),
                    fmt(u, b.gradients_bytes + b.optimizer_states_bytes),
                    fmt(u, b.activations_bytes + b.other_activations_bytes),
                    fmt(u, b.peak_allocated_bytes),
                    fmt(u, b.total_bytes),
                ]);
            }
            s.push_str(&t.to_string());
            s.push('\n');
        }
        if self.per_gpu.host_offload_bytes > 0 {
            s.push_str(&format!(
                "host memory per GPU for offloaded states: {}\n",
                fmt(u, self.per_gpu.host_offload_bytes)
            ));
        }
        if let Some(ds) = &self.deepspeed_zero3_estimator {
            s.push_str(&format!(
                "DeepSpeed's own ZeRO-3 estimator for {} GPUs: {} (no offload), {} (offload optimizer), {} (offload both) — model states only\n",
                self.plan.gpus(),
                ByteUnits::Gib.format(ds.no_offload),
                ByteUnits::Gib.format(ds.offload_optimizer),
                ByteUnits::Gib.format(ds.offload_optimizer_and_params)
            ));
        }
        if show_ledger && !self.ledger.is_empty() {
            let mut t = table(vec!["block", "saved tensor", &format!("each ({})", u.label()), "count", "kept"]);
            for l in &self.ledger {
                t.add_row(vec![
                    l.block.clone(),
                    l.tensor.clone(),
                    fmt(u, l.bytes),
                    l.count.to_string(),
                    if l.recomputed { "recomputed".into() } else { "yes".into() },
                ]);
            }
            s.push_str(&t.to_string());
            s.push('\n');
        }
        s
    }

    fn setup_fragmentation(&self) -> f64 {
        if self.per_gpu.peak_allocated_bytes == 0 {
            0.0
        } else {
            self.overheads.fragmentation_bytes as f64 / self.per_gpu.peak_allocated_bytes as f64
        }
    }

    fn flat(&self) -> Vec<(&'static str, String)> {
        let p = &self.per_gpu;
        vec![
            ("model", self.model.name.clone()),
            ("architecture", self.model.architecture.to_string()),
            ("parameters", self.model.parameters.to_string()),
            ("phase", format!("{:?}", self.setup.phase).to_lowercase()),
            ("precision", self.setup.precision.name().to_string()),
            ("micro_batch", self.setup.micro_batch.to_string()),
            ("seq", self.setup.seq.to_string()),
            ("weights_bytes", p.weights_bytes.to_string()),
            ("gradients_bytes", p.gradients_bytes.to_string()),
            ("optimizer_states_bytes", p.optimizer_states_bytes.to_string()),
            ("activations_bytes", p.activations_bytes.to_string()),
            ("other_activations_bytes", p.other_activations_bytes.to_string()),
            ("kv_cache_bytes", p.kv_cache_bytes.to_string()),
            ("peak_allocated_bytes", p.peak_allocated_bytes.to_string()),
            ("total_bytes", p.total_bytes.to_string()),
            ("peak_point", self.peak.point.clone()),
        ]
    }

    pub fn to_csv(&self) -> String {
        let flat = self.flat();
        let header: Vec<String> = flat.iter().map(|(k, _)| csv_field(k)).collect();
        let row: Vec<String> = flat.iter().map(|(_, v)| csv_field(v)).collect();
        format!("{}\n{}\n", header.join(","), row.join(","))
    }

    pub fn to_markdown(&self, u: ByteUnits) -> String {
        let mut s = format!(
            "### {} — {} ({})\n\n",
            self.model.name,
            format!("{:?}", self.setup.phase).to_lowercase(),
            self.model.architecture
        );
        for a in &self.assumptions {
            s.push_str(&format!("- {a}\n"));
        }
        s.push('\n');
        let mut rows: Vec<Vec<String>> =
            self.rows(u).into_iter().map(|(n, b, note)| vec![n, fmt(u, b), note]).collect();
        rows.push(vec![
            "**peak allocated**".into(),
            fmt(u, self.per_gpu.peak_allocated_bytes),
            self.peak.description.into(),
        ]);
        rows.push(vec![
            "runtime overheads".into(),
            fmt(u, self.per_gpu.runtime_overhead_bytes),
            "CUDA context, workspace, fragmentation".into(),
        ]);
        rows.push(vec!["**total**".into(), fmt(u, self.per_gpu.total_bytes), String::new()]);
        let unit_col = format!("per GPU ({})", u.label());
        s.push_str(&markdown(&["term", &unit_col, "note"], &rows));
        if !self.fits.is_empty() {
            s.push('\n');
            let rows: Vec<Vec<String>> = self
                .fits
                .iter()
                .map(|f| vec![f.gpu.clone(), fmt(u, f.memory_bytes), if f.fits { "yes" } else { "no" }.into()])
                .collect();
            s.push_str(&markdown(&["GPU", "memory", "fits"], &rows));
        }
        s
    }
}

fn point_name(p: crate::memory::PeakPoint) -> String {
    serde_json::to_value(p).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

fn fmt(u: ByteUnits, bytes: u64) -> String {
    u.format(bytes)
}

fn assumptions(model: &ModelSpec, derived: bool, setup: &Setup, est: &Estimate, plan: &ParallelPlan) -> Vec<String> {
    let mut out = Vec::new();
    let shape: Vec<String> = model
        .stacks
        .iter()
        .zip(&est.shapes)
        .map(|(s, sh)| {
            format!(
                "{}: {} layers, hidden {}, {} heads ({} KV), ffn {}{}, seq {}",
                s.name,
                s.layers,
                s.layer.hidden,
                s.layer.attention.heads,
                s.layer.attention.kv_heads(),
                s.layer.mlp.ffn,
                if s.layer.mlp.gated { " gated" } else { "" },
                sh.seq
            )
        })
        .collect();
    if derived {
        out.push(format!(
            "shape derived from the parameter count (LLaMA-style, vocab {}): {}",
            model.vocab(),
            shape.join("; ")
        ));
    } else if !shape.is_empty() {
        out.push(format!("shape: {}", shape.join("; ")));
    }
    out.extend(crate::memory::blocks::describe(model, setup));
    let phase = match setup.phase {
        Phase::Train => format!(
            "train: one step, optimizer {} ({}), precision {}, micro-batch {}, recompute {:?}, attention {:?}",
            setup.optimizer.name(),
            format!("{:?}", setup.optimizer_impl).to_lowercase(),
            setup.precision.name(),
            setup.micro_batch,
            setup.recompute,
            setup.attention
        ),
        Phase::Inference => format!(
            "inference: one forward pass, precision {}, batch {}, attention {:?}, KV cache {}",
            setup.precision.name(),
            setup.micro_batch,
            setup.attention,
            if setup.kv_cache { "kept" } else { "off" }
        ),
    };
    out.push(phase.to_lowercase());
    out.push(format!(
        "dropout: {}; {} tensor rules; {}",
        match setup.dropout {
            Some(false) => "off",
            Some(true) => "on",
            None => "as the model config",
        },
        format!("{:?}", setup.runtime).to_lowercase(),
        if plan.is_single() && plan.microbatches == 1 {
            "one GPU, no parallelism".to_string()
        } else {
            format!("per GPU of {} GPUs: {}", plan.gpus(), plan.describe())
        }
    ));
    if let Some(l) = setup.finetune.lora() {
        let trainable = crate::memory::finetune::lora_params(model, l);
        out.push(format!(
            "fine-tuning: {}, rank {} on {}: {} trainable parameters ({:.3}%), adapters in {}{}",
            setup.finetune.name(),
            l.rank,
            l.targets.names(),
            trainable,
            100.0 * trainable as f64 / est.parameters.max(1) as f64,
            l.adapter_dtype,
            match setup.finetune {
                crate::memory::finetune::Finetune::Qlora { double_quant, .. } => {
                    format!("; NF4 base weights ({} bits per parameter)", if double_quant { "4.127" } else { "4.5" })
                }
                _ => String::new(),
            }
        ));
    }
    if let Some(q) = setup.weights.filter(|_| setup.phase == Phase::Inference) {
        out.push(
            format!(
                "weights: {:?} layer matrices (group {}, {} scales); embeddings, norms and the LM head in {}",
                q.format,
                if q.group_size == 0 {
                    "per channel".to_string()
                } else if q.group_size == u64::MAX {
                    "per tensor".to_string()
                } else {
                    q.group_size.to_string()
                },
                q.scale_dtype,
                setup.precision.activation_dtype()
            )
            .to_lowercase(),
        );
    }
    out.push("bytes are exact; shown in GiB = 2^30 unless --units gb".into());
    out
}
