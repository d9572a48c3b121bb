//! The peak of one step. A training step is followed through the moments where memory can
//! peak — the end of the forward pass, the start of backward at the loss, the end of backward,
//! the optimizer step — and the largest is reported with what is alive at it. Inference takes
//! the larger of the largest layer's working set and the end of the forward pass (logits).

use super::activations::{self as act, Saved, StackShape};
use super::kv_cache::kv_cache_bytes;
use super::overhead::{overheads, OverheadConfig, Overheads};
use super::setup::{AttentionKernel, Setup};
use super::states::{ModelStates, ParamInfo};
use crate::dtype::DType;
use crate::memory::sharding::{rank_states, RankStates};
use crate::model::spec::*;
use crate::parallel::layout::{self, StageParams};
use crate::parallel::pipeline::{in_flight, InFlight};
use crate::parallel::ParallelPlan;
use serde::Serialize;

/// Where in the step the peak is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeakPoint {
    /// End of the forward pass (logits and loss being computed).
    ForwardEnd,
    /// Start of backward: the loss gradient over the vocabulary.
    LossBackward,
    /// Backward through the layers.
    Backward,
    /// Inside `optimizer.step()`.
    OptimizerStep,
    /// Inference: inside a layer.
    ForwardLayer,
    /// Inference: the logits at the end of the forward pass.
    ForwardLogits,
}

impl PeakPoint {
    pub fn describe(self) -> &'static str {
        match self {
            PeakPoint::ForwardEnd => "end of forward (logits and loss)",
            PeakPoint::LossBackward => "start of backward (loss gradient)",
            PeakPoint::Backward => "backward through the layers",
            PeakPoint::OptimizerStep => "optimizer step",
            PeakPoint::ForwardLayer => "forward, inside a layer",
            PeakPoint::ForwardLogits => "end of forward (logits)",
        }
    }
}

/// What is alive at the peak, by category (bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PeakComposition {
    pub weights: u64,
    pub gradients: u64,
    pub optimizer_states: u64,
    pub activations: u64,
    pub other_activations: u64,
    pub kv_cache: u64,
    pub temporaries: u64,
}

impl PeakComposition {
    pub fn total(&self) -> u64 {
        self.weights
            + self.gradients
            + self.optimizer_states
            + self.activations
            + self.other_activations
            + self.kv_cache
            + self.temporaries
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LedgerLine {
    pub block: String,
    pub tensor: String,
    /// Bytes of one instance.
    pub bytes: u64,
    /// How many instances are alive (layers of the stack).
    pub count: u64,
    /// Recomputed instead of kept under the chosen policy.
    pub recomputed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    pub parameters: u64,
    pub states: ModelStates,
    /// Non-parameter device buffers.
    pub buffer_bytes: u64,
    /// Saved activations of the layer stacks (training), or the largest layer's working set (inference).
    pub activations: u64,
    /// Embeddings, logits, loss and inputs.
    pub other_activations: u64,
    pub input_bytes: u64,
    pub kv_cache: u64,
    pub peak_point: PeakPoint,
    pub at_peak: PeakComposition,
    pub peak_allocated: u64,
    pub overheads: Overheads,
    /// The overhead rules the total used (fits on other GPUs apply their own runtime).
    #[serde(skip)]
    pub overhead_config: OverheadConfig,
    pub total: u64,
    pub shapes: Vec<StackShape>,
    pub ledger: Vec<LedgerLine>,
    /// Bytes this rank keeps in host memory (offloading).
    pub host_bytes: u64,
}

/// One pipeline stage's worst rank.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageEstimate {
    pub stage: u64,
    /// Layers of each stack on this stage.
    pub layers: Vec<u64>,
    /// Microbatches of activations in flight (chunks / per, see `pipeline::in_flight`).
    pub in_flight: InFlight,
    pub estimate: Estimate,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanEstimate {
    pub plan: ParallelPlan,
    pub stages: Vec<StageEstimate>,
    /// Index of the stage whose rank needs the most memory.
    pub worst: usize,
}

impl PlanEstimate {
    pub fn worst(&self) -> &Estimate {
        &self.stages[self.worst].estimate
    }
}

/// Estimate one GPU's memory for `model` under `setup` with no parallelism. `info` carries the
/// exact parameter count used for model states (it may differ from the shape's when the user
/// gave `--params`).
pub fn estimate(model: &ModelSpec, info: &ParamInfo, setup: &Setup, overhead: &OverheadConfig) -> Estimate {
    estimate_plan(model, info, setup, &ParallelPlan::single(), overhead).stages.swap_remove(0).estimate
}

/// Estimate every pipeline stage's rank under `plan` (validate the plan first).
pub fn estimate_plan(
    model: &ModelSpec,
    info: &ParamInfo,
    setup: &Setup,
    plan: &ParallelPlan,
    overhead: &OverheadConfig,
) -> PlanEstimate {
    let shapes = rank_shapes(model, setup, plan);
    let prepared = Prepared::new(model, &shapes, setup, plan.tp);
    let layout = layout::stages(model, plan);
    let stages: Vec<u64> = (0..plan.pp).collect();
    estimate_stages(model, info, setup, plan, overhead, &prepared, &layout, &stages, true)
}

/// Per-stack quantities derived from the ledgers once per (micro-batch, recompute, tp, sp, cp):
/// everything a stage needs is then a few multiplications.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub shapes: Vec<StackShape>,
    /// The recompute policy's rule (`memory::checkpoint`).
    pub policy: super::checkpoint::Policy,
    /// Bytes one checkpointed layer of each stack keeps for backward under the policy.
    pub layer_saved: Vec<u64>,
    /// Bytes one layer keeps with no checkpointing (the layers a policy leaves alone).
    pub layer_full: Vec<u64>,
    /// Transient of one layer's backward (recomputed forward, gradients, ring buffers).
    pub layer_transient: Vec<u64>,
    /// Embedding-side tensors of each stack (kept on the stage holding its first layer).
    pub extras: Vec<u64>,
    /// Head tensors saved for backward on the last stage (vocabulary split over tp).
    pub head: u64,
    /// Logits elements on one rank of the last stage.
    pub logits: u64,
    pub input_bytes: u64,
    /// Parameters of the vocabulary projection on one rank: the first gradients of backward.
    pub head_grad_params: u64,
    /// Parameters of one layer of each stack on one rank.
    pub layer_params: Vec<u64>,
    /// The token table on one rank (vocabulary split over tp), and which stacks read it.
    pub token_table_params: u64,
    pub reads_tokens: Vec<bool>,
    /// The LM head reuses the token table (its gradient is the table's first partial gradient).
    pub tied_head: bool,
    /// Non-transformer modules (CNNs, UNets, VAEs, LSTMs): see `blocks`.
    pub modules: super::blocks::ModulesPrepared,
    /// Per stack, one layer on one rank: parameters in its weight matrices, their bytes when
    /// quantized (QLoRA's NF4 base, or `--weights` for inference), and LoRA adapter parameters.
    pub layer_matrix_params: Vec<u64>,
    pub layer_quantized_bytes: Vec<u64>,
    pub layer_adapter_params: Vec<u64>,
    /// A dequantized 16-bit copy of the largest weight matrix (bitsandbytes NF4 kernels), bytes.
    pub dequant_bytes: u64,
}

/// The weight format of the frozen or served layer matrices, when quantized.
pub fn quantization(setup: &Setup) -> Option<super::finetune::WeightQuant> {
    use super::finetune::{Finetune, WeightFormat, WeightQuant};
    match setup.finetune {
        Finetune::Qlora { double_quant, .. } => {
            Some(WeightQuant { double_quant, ..WeightQuant::default_for(WeightFormat::Nf4) })
        }
        _ if !setup.training() => setup.weights,
        _ => None,
    }
}

impl Prepared {
    pub fn new(model: &ModelSpec, shapes: &[StackShape], setup: &Setup, tp: u64) -> Prepared {
        let act_dtype = setup.precision.activation_dtype();
        // bitsandbytes dequantizes each NF4 matrix to 16 bits around its matmul.
        let dequant = match quantization(setup) {
            Some(q) if q.format == super::finetune::WeightFormat::Nf4 => model
                .stacks
                .iter()
                .flat_map(|s| super::finetune::layer_matrices(&s.layer))
                .map(|(_, _, e)| act_dtype.bytes(e.div_ceil(tp)))
                .max()
                .unwrap_or(0),
            _ => 0,
        };
        let policy = super::checkpoint::policy(setup.recompute);
        let mut layer_saved = Vec::new();
        let mut layer_full = Vec::new();
        let mut layer_transient = Vec::new();
        let mut extras = Vec::new();
        for (s, sh) in model.stacks.iter().zip(shapes) {
            let ledger = act::layer_ledger_unnamed(s, sh, setup);
            let full = total(&ledger);
            let input = act::layer_input_bytes(s, sh, setup);
            let under = super::checkpoint::apply(policy, s, sh, setup, &ledger, input);
            let (saved, recompute) = (under.kept, under.recomputed);
            layer_full.push(full);
            let largest = ledger.iter().map(|t| t.bytes).max().unwrap_or(0);
            let ring = if sh.kv_seq > sh.seq {
                let a = &s.layer.attention;
                let (_, kv) = act::heads_per_rank(a, sh.tp);
                // K and V blocks being sent and received (double-buffered), and their gradients.
                4 * act_dtype.bytes(2 * sh.tokens() * kv * a.head_dim(s.layer.hidden))
            } else {
                0
            };
            layer_saved.push(saved);
            layer_transient.push(recompute + 2 * largest.min(full) + 2 * input + ring + dequant);
            extras.push(total(&act::stack_extras_ledger_unnamed(model, s, sh, setup)));
        }
        let modules = super::blocks::prepare(model, setup);
        let head = act::head_ledger(model, shapes, setup)
            .iter()
            .map(|t| if t.name.contains("log-softmax") { t.bytes.div_ceil(tp) } else { t.bytes })
            .sum();
        Prepared {
            shapes: shapes.to_vec(),
            policy,
            layer_saved,
            layer_full,
            layer_transient,
            extras,
            head,
            logits: act::logits_elements(model, shapes).div_ceil(tp) + modules.logits,
            input_bytes: act::input_bytes(model, shapes, setup) + modules.inputs,
            layer_params: model.stacks.iter().map(|s| crate::parallel::layout::layer_params(&s.layer, tp, 1)).collect(),
            layer_matrix_params: model
                .stacks
                .iter()
                .map(|s| super::finetune::layer_matrices(&s.layer).iter().map(|(_, _, e)| e).sum::<u64>().div_ceil(tp))
                .collect(),
            layer_quantized_bytes: model
                .stacks
                .iter()
                .map(|s| match quantization(setup) {
                    Some(q) => super::finetune::layer_matrices(&s.layer)
                        .iter()
                        .map(|(_, r, e)| q.bytes(*e, *r))
                        .sum::<u64>()
                        .div_ceil(tp),
                    None => 0,
                })
                .collect(),
            layer_adapter_params: model
                .stacks
                .iter()
                .map(|s| {
                    setup.finetune.lora().map_or(0, |l| super::finetune::lora_layer_params(&s.layer, l).div_ceil(tp))
                })
                .collect(),
            dequant_bytes: dequant,
            token_table_params: model.tokens.as_ref().map_or(0, |t| t.vocab.div_ceil(tp) * t.dim),
            reads_tokens: model.stacks.iter().map(|s| matches!(s.input, StackInput::Tokens)).collect(),
            tied_head: model.head.lm_head.as_ref().is_some_and(|h| h.tied),
            head_grad_params: match (&model.head.lm_head, model.last_stack()) {
                (Some(_), Some(last)) => model.vocab().div_ceil(tp) * last.layer.hidden,
                _ => 0,
            },
            modules,
        }
    }
}

impl Prepared {
    /// Bytes `n` layers of stack `i` keep for backward: the policy checkpoints some of them.
    pub fn stack_saved(&self, i: usize, n: u64) -> u64 {
        let ckpt = self.policy.checkpointed(n);
        ckpt * self.layer_saved[i] + (n - ckpt) * self.layer_full[i]
    }
}

/// Estimate the given `stages` (indices into `layout`); `with_ledger` adds the per-tensor ledger
/// for reports (the search skips it).
#[allow(clippy::too_many_arguments)]
pub fn estimate_stages(
    model: &ModelSpec,
    info: &ParamInfo,
    setup: &Setup,
    plan: &ParallelPlan,
    overhead: &OverheadConfig,
    prepared: &Prepared,
    layout: &[StageParams],
    stages: &[u64],
    with_ledger: bool,
) -> PlanEstimate {
    let spec_params = if info.params == info.shape_params { info.params } else { info.shape_params.max(1) };
    let mut out = Vec::with_capacity(stages.len());
    for &i in stages {
        // A bare `--params` count scales the derived shape's stage parameters.
        let mut st = layout[i as usize].clone();
        if info.params != spec_params {
            st.params = (st.params as u128 * info.params as u128 / spec_params as u128) as u64;
            st.largest_unit = (st.largest_unit as u128 * info.params as u128 / spec_params as u128) as u64;
        }
        let flight = in_flight(plan, st.stage);
        // Quantized or adapter-trained layers change what the stage's parameters cost.
        let mut info = *info;
        let count = |per_layer: &[u64]| -> u64 {
            st.layers
                .iter()
                .zip(per_layer)
                .zip(&model.stacks)
                .map(|((n, b), s)| if s.shared_layers { b * u64::from(*n > 0) } else { n * b })
                .sum()
        };
        info.adapter_params = count(&prepared.layer_adapter_params);
        info.stage_block_params = count(&prepared.layer_params).min(st.params);
        info.stage_largest_block =
            st.layers.iter().zip(&prepared.layer_params).filter(|(n, _)| **n > 0).map(|(_, p)| *p).max().unwrap_or(0);
        if quantization(setup).is_some() {
            let matrices = count(&prepared.layer_matrix_params).min(st.params);
            let rest = setup.precision.activation_dtype().bytes(st.params - matrices);
            info.frozen_weight_bytes = Some(rest + count(&prepared.layer_quantized_bytes));
        }
        let rank = rank_states(&st, &info, setup, plan);
        let est = stage_estimate(model, &st, &rank, flight, prepared, setup, plan, overhead, with_ledger);
        out.push(StageEstimate { stage: st.stage, layers: st.layers, in_flight: flight, estimate: est });
    }
    let worst =
        out.iter().enumerate().max_by_key(|(i, s)| (s.estimate.total, std::cmp::Reverse(*i))).map_or(0, |(i, _)| i);
    PlanEstimate { plan: plan.clone(), stages: out, worst }
}

/// Shapes seen by one rank: the sequence split over context-parallel ranks, heads over tp.
pub fn rank_shapes(model: &ModelSpec, setup: &Setup, plan: &ParallelPlan) -> Vec<StackShape> {
    act::shapes(model, setup)
        .into_iter()
        .map(|sh| StackShape { seq: sh.seq.div_ceil(plan.cp), kv_seq: sh.seq, tp: plan.tp, sp: plan.sp, ..sh })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn stage_estimate(
    model: &ModelSpec,
    stage: &StageParams,
    rank: &RankStates,
    flight: InFlight,
    prepared: &Prepared,
    setup: &Setup,
    plan: &ParallelPlan,
    overhead: &OverheadConfig,
    with_ledger: bool,
) -> Estimate {
    let shapes = &prepared.shapes;
    let states = super::blocks::with_frozen_weights(rank.states, &prepared.modules, setup, stage.first);
    let buffer_bytes = if stage.first { model.buffer_bytes + prepared.modules.buffers } else { 0 };
    let input_bytes = if stage.first || stage.last { prepared.input_bytes } else { 0 };
    let kv_cache = kv_cache_bytes(model, &stage.layers, shapes, setup);
    let ledger =
        if with_ledger && (stage.stage == 0 || plan.pp == 1) { ledger(model, shapes, setup) } else { Vec::new() };
    let (peak_point, at_peak, activations, other_activations, reserve) = if setup.training() {
        training_peak(stage, &RankStates { states, ..*rank }, flight, prepared, setup, input_bytes + buffer_bytes)
    } else {
        let (p, c, a, o) = inference_peak(
            model,
            stage,
            shapes,
            setup,
            &states,
            input_bytes + buffer_bytes,
            kv_cache,
            &prepared.modules,
            prepared.dequant_bytes,
        );
        (p, c, a, o, 0)
    };
    let peak_allocated = at_peak.total();
    let overheads = overheads(overhead, peak_allocated, reserve, plan);
    Estimate {
        parameters: stage.params + if stage.first { prepared.modules.frozen_params } else { 0 },
        states,
        buffer_bytes,
        activations,
        other_activations,
        input_bytes,
        kv_cache,
        peak_point,
        at_peak,
        peak_allocated,
        total: peak_allocated + overheads.total(),
        overheads,
        overhead_config: *overhead,
        shapes: if with_ledger { shapes.to_vec() } else { Vec::new() },
        ledger,
        host_bytes: rank.host_bytes,
    }
}

fn ledger(model: &ModelSpec, shapes: &[StackShape], setup: &Setup) -> Vec<LedgerLine> {
    use super::checkpoint::{self as ckpt, Keep};
    let mut out = Vec::new();
    if !setup.training() {
        return out;
    }
    let policy = ckpt::policy(setup.recompute);
    let line = |block: &str, t: Saved, count: u64, recomputed: bool| LedgerLine {
        block: block.to_string(),
        tensor: t.name,
        bytes: t.bytes,
        count,
        recomputed,
    };
    for (s, sh) in model.stacks.iter().zip(shapes) {
        let block = format!("{} embeddings", s.name);
        out.extend(act::stack_extras_ledger(model, s, sh, setup).into_iter().map(|t| line(&block, t, 1, false)));
        let block = format!("{} layer", s.name);
        let ledger = act::layer_ledger(s, sh, setup);
        let checkpointed = policy.checkpointed(s.layers);
        let plain = s.layers - checkpointed;
        let under = ckpt::apply(policy, s, sh, setup, &ledger, act::layer_input_bytes(s, sh, setup));
        for t in ledger {
            if plain > 0 {
                out.push(line(&block, t.clone(), plain, false));
            }
            if checkpointed > 0 {
                let recomputed = policy.keep != Keep::AllButAttentionCore || t.attention_core;
                out.push(line(&block, t, checkpointed, recomputed));
            }
        }
        if checkpointed > 0 && policy.keep != Keep::AllButAttentionCore {
            for k in under.kept_tensors {
                out.push(LedgerLine {
                    block: block.clone(),
                    tensor: k.name,
                    bytes: k.bytes,
                    count: checkpointed,
                    recomputed: false,
                });
            }
        }
    }
    out.extend(act::head_ledger(model, shapes, setup).into_iter().map(|t| line("head", t, 1, false)));
    out.extend(super::blocks::ledger_lines(model, setup));
    out
}

/// The running maximum of `training_peak`'s candidate points: the live peak (the last of equal
/// totals wins, as `max_by_key` would) and the compute stream pool's high-water mark.
struct Peak {
    resident_grads: u64,
    hole: u64,
    best: Option<(PeakPoint, PeakComposition, u64)>,
    pool: u64,
}

impl Peak {
    fn new(resident_grads: u64, hole: u64) -> Self {
        Peak { resident_grads, hole, best: None, pool: 0 }
    }

    fn consider(&mut self, (point, comp): (PeakPoint, PeakComposition)) {
        let total = comp.total();
        let pool = total - comp.gradients.min(self.resident_grads)
            + if point == PeakPoint::LossBackward { self.hole } else { 0 };
        self.pool = self.pool.max(pool);
        if self.best.is_none_or(|(_, _, best)| total >= best) {
            self.best = Some((point, comp, total));
        }
    }

    fn finish(self) -> (PeakPoint, PeakComposition, u64) {
        let (point, comp, _) = self.best.expect("the forward point is always considered");
        (point, comp, self.pool)
    }
}

fn training_peak(
    stage: &StageParams,
    rank: &RankStates,
    flight: InFlight,
    prepared: &Prepared,
    setup: &Setup,
    inputs: u64,
) -> (PeakPoint, PeakComposition, u64, u64, u64) {
    let states = &rank.states;
    let act_dtype = setup.precision.activation_dtype();
    let modules_saved = if stage.first { prepared.modules.saved } else { 0 };
    let layers_saved = flight
        .apply(stage.layers.iter().enumerate().map(|(i, n)| prepared.stack_saved(i, *n)).sum::<u64>() + modules_saved);
    let extras =
        flight.apply(stage.starts_stack.iter().zip(&prepared.extras).filter(|(here, _)| **here).map(|(_, b)| b).sum());
    // The head sits on the last stage; vocabulary-sized tensors split over tp (Megatron's
    // vocab-parallel cross-entropy).
    let (head, logits) = if stage.last { (prepared.head, prepared.logits) } else { (0, 0) };
    // Autocast caches a half-precision copy of each weight for the forward; the matmuls save it.
    let autocast_copies = if setup.precision.autocast_weight_copies() { DType::Bf16.bytes(stage.params) } else { 0 };
    let other = extras + head + inputs + autocast_copies;

    // Forward end and loss backward: what the framework's loss keeps around the logits
    // (`memory::logits`); the saved fp32 (log-)softmax is in the head ledger.
    let loss = super::logits::loss_memory(setup.mechanisms.logits, act_dtype, logits);
    let forward_temp = loss.forward_temp;
    let loss_backward_temp = loss.backward_temp;

    // Backward through a layer: its recomputed forward (checkpointing), gradients of its
    // largest saved tensors and of the residual stream, and ring attention's K/V blocks.
    let layer_transient =
        stage.layers.iter().zip(&prepared.layer_transient).filter(|(n, _)| **n > 0).map(|(_, t)| *t).max().unwrap_or(0);
    let layer_transient = layer_transient.max(if stage.first { prepared.modules.transient } else { 0 });

    let preallocated = setup.precision.grads_preallocated() && !rank.grads_lazy;
    let grads_always = if preallocated || rank.grads_persist { states.gradients } else { 0 };
    let gathered = rank.gathered_bytes;
    let base = PeakComposition {
        weights: states.weights,
        gradients: grads_always,
        optimizer_states: states.optimizer,
        ..PeakComposition::default()
    };
    // Reserved beyond the live peak: the compute stream's pool peaks at some point with the
    // blocks it cannot reuse there (the freed 16-bit logits at the loss backward), while tensors
    // of other streams' pools (FSDP2's sharded gradients) are not in it; those pools add their
    // own high-water marks.
    let hole = if stage.last {
        let m = &setup.mechanisms;
        super::logits::freed_logits_hole(m.logits, act_dtype, logits, m.logits_freed_before_backward)
    } else {
        0
    };
    // The peak over the candidate points, kept as they are considered (no vector: the planner
    // calls this for every plan, and allocating was its largest single cost).
    let mut peak = Peak::new(rank.pool_resident_grads, hole);
    peak.consider((
        // Frozen modules (a VAE encoder, text encoders) run without autograd before the rest.
        PeakPoint::ForwardLayer,
        PeakComposition { other_activations: inputs, temporaries: prepared.modules.frozen_forward + gathered, ..base },
    ));
    peak.consider((
        PeakPoint::ForwardEnd,
        PeakComposition {
            activations: layers_saved,
            other_activations: other,
            temporaries: forward_temp + gathered,
            ..base
        },
    ));
    if logits > 0 {
        peak.consider((
            PeakPoint::LossBackward,
            PeakComposition {
                activations: layers_saved,
                other_activations: other,
                temporaries: loss_backward_temp + gathered,
                ..base
            },
        ));
    }
    let backward_temp = layer_transient + gathered + rank.unsharded_grad_bytes + rank.bucket_bytes;
    // End of backward: every gradient exists, the layer activations are gone.
    peak.consider((
        PeakPoint::Backward,
        PeakComposition {
            gradients: states.gradients,
            other_activations: inputs + extras,
            temporaries: backward_temp,
            ..base
        },
    ));
    // Start of backward through the layers: the head's gradients exist, all layer activations too.
    let head_grads = if grads_always > 0 {
        grads_always
    } else if stage.last {
        (prepared.head_grad_params * setup.precision.grad_bytes_per_param()).min(states.gradients)
    } else {
        0
    };
    peak.consider((
        PeakPoint::Backward,
        PeakComposition {
            gradients: head_grads,
            activations: layers_saved,
            other_activations: inputs + extras + autocast_copies,
            temporaries: backward_temp,
            ..base
        },
    ));
    // Between stacks (encoder-decoder): when a later stack's backward is done, the earlier
    // stacks' activations are still saved while the later stacks' gradients exist. If that stack
    // reads the shared token table and another user (a tied head, a later stack) already produced
    // a partial gradient for it, autograd sums the two into a new tensor: three tables at once.
    if grads_always == 0 && stage.layers.iter().filter(|n| **n > 0).count() > 1 {
        let grad_bytes = setup.precision.grad_bytes_per_param();
        let shard = |bytes: u64| if states.gradients == 0 { 0 } else { bytes.min(states.gradients) };
        // A tied head's gradient is the token table's first partial gradient, counted with the table.
        let untied_head = stage.last && !prepared.tied_head;
        let mut later_grads = if untied_head { prepared.head_grad_params * grad_bytes } else { 0 };
        let mut table_users = u64::from(stage.last && prepared.tied_head);
        for k in (1..stage.layers.len()).rev() {
            later_grads += prepared.layer_params[k] * stage.layers[k] * grad_bytes;
            let earlier_saved = flight.apply((0..k).map(|j| prepared.stack_saved(j, stage.layers[j])).sum());
            let earlier_extras =
                flight.apply((0..k).filter(|j| stage.starts_stack[*j]).map(|j| prepared.extras[j]).sum());
            let table = prepared.token_table_params * grad_bytes;
            let accumulate = match (prepared.reads_tokens[k], table_users) {
                (true, 0) => table,
                (true, _) => 3 * table,
                (false, 0) => 0,
                (false, _) => table,
            };
            if prepared.reads_tokens[k] {
                table_users += 1;
            }
            peak.consider((
                PeakPoint::Backward,
                PeakComposition {
                    gradients: shard(later_grads),
                    activations: earlier_saved,
                    other_activations: inputs + earlier_extras + autocast_copies,
                    temporaries: accumulate + layer_transient,
                    ..base
                },
            ));
        }
    }
    peak.consider((
        PeakPoint::OptimizerStep,
        PeakComposition {
            gradients: states.gradients,
            other_activations: inputs,
            temporaries: states.step_temporary + rank.bucket_bytes,
            ..base
        },
    ));
    let (point, comp, compute_pool) = peak.finish();
    let reserve = (compute_pool + rank.stream_pool_bytes).saturating_sub(comp.total());
    (point, comp, layers_saved, other, reserve)
}

#[allow(clippy::too_many_arguments)]
fn inference_peak(
    model: &ModelSpec,
    stage: &StageParams,
    shapes: &[StackShape],
    setup: &Setup,
    states: &ModelStates,
    inputs: u64,
    kv_cache: u64,
    modules: &super::blocks::ModulesPrepared,
    dequant: u64,
) -> (PeakPoint, PeakComposition, u64, u64) {
    let act_dtype = setup.precision.activation_dtype();
    let res_dtype = setup.precision.residual_dtype();
    let mut encoder_out = 0;
    let mut layer_peak = if stage.first { modules.inference } else { 0 };
    for ((s, sh), &n) in model.stacks.iter().zip(shapes).zip(&stage.layers) {
        let l = &s.layer;
        let a = &l.attention;
        let tokens = sh.tokens();
        let hd = a.head_dim(l.hidden);
        let (heads, kv) = act::heads_per_rank(a, sh.tp);
        let e = res_dtype.bytes(tokens * l.hidden);
        if n > 0 {
            let qkv = act_dtype.bytes(tokens * (heads + 2 * kv) * hd);
            let attn_out = act_dtype.bytes(tokens * heads * hd);
            let sparse = super::blocks::block_sparse_working(a, sh.batch, heads, hd, sh.seq);
            let attention = if let Some(elements) = sparse {
                qkv + act_dtype.bytes(elements)
            } else if setup.attention == AttentionKernel::Eager {
                // scores and their softmax exist together
                qkv + 2 * act_dtype.bytes(sh.batch * heads * sh.seq * sh.kv_seq)
            } else {
                qkv + attn_out + DType::Fp32.bytes(sh.batch * heads * sh.seq)
            };
            let f = act_dtype.bytes(tokens * l.mlp.top_k * l.mlp.ffn.div_ceil(sh.tp));
            let mlp = f * if l.mlp.gated { 3 } else { 2 };
            let mask = super::serving::generate_mask_bytes(setup, s.causal, act_dtype, sh.batch, sh.seq, sh.kv_seq);
            // A pre-norm layer's frame holds its input (the residual) and the normed copy the
            // sub-block reads until the sub-block returns (e.g. transformers
            // `Qwen2DecoderLayer.forward`: `residual = hidden_states`, then
            // `hidden_states = self.post_attention_layernorm(hidden_states)` passed to `self.mlp`).
            let normed = if l.norm_placement == NormPlacement::Pre { e } else { 0 };
            layer_peak = layer_peak.max(e + normed + attention.max(mlp) + encoder_out + mask);
        }
        if !s.causal && model.architecture == Architecture::EncoderDecoder {
            encoder_out = e;
        }
    }
    // End of forward: the returned hidden states, the head input when it is a new tensor, logits.
    let mut end = 0;
    if stage.last {
        let last = shapes.last().copied().unwrap_or(StackShape::new(0, 0, 0));
        let h = model.last_stack().map_or(0, |s| s.layer.hidden);
        let hidden = act_dtype.bytes(last.tokens() * h);
        let logits = super::serving::prefill_logits_bytes(
            setup.generate_logits.unwrap_or_default(),
            act_dtype,
            act::logits_elements(model, shapes).div_ceil(last.tp),
            last.seq,
        );
        let head_copy = match &model.head.lm_head {
            Some(lm) if lm.transform || lm.rescale => hidden,
            _ => 0,
        };
        end = encoder_out + hidden + head_copy + logits;
    }
    // A dequantized NF4 matrix exists around each matmul inside the layers.
    let base =
        PeakComposition { weights: states.weights, kv_cache, other_activations: inputs, ..PeakComposition::default() };
    let layer_peak = layer_peak + dequant;
    if end >= layer_peak {
        (PeakPoint::ForwardLogits, PeakComposition { other_activations: inputs + end, ..base }, 0, inputs + end)
    } else {
        (
            PeakPoint::ForwardLayer,
            PeakComposition { activations: layer_peak - dequant, temporaries: dequant, ..base },
            layer_peak - dequant,
            inputs,
        )
    }
}

fn total(saved: &[Saved]) -> u64 {
    saved.iter().map(|t| t.bytes).sum()
}
