//! The peak of one step. A training step is followed through the moments where memory can
//! peak — the end of the forward pass, the start of backward at the loss, the end of backward,
//! the optimizer step — and the largest is reported with what is alive at it. Inference takes
//! the larger of the largest layer's working set and the end of the forward pass (logits).

use super::activations::{self as act, Saved, StackShape};
use super::kv_cache::kv_cache_bytes;
use super::overhead::{overheads, OverheadConfig, Overheads};
use super::setup::{AttentionKernel, Recompute, Setup};
use super::states::{model_states, ModelStates, ParamInfo};
use crate::dtype::DType;
use crate::model::spec::*;
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
    pub total: u64,
    pub shapes: Vec<StackShape>,
    pub ledger: Vec<LedgerLine>,
}

/// Estimate one GPU's memory for `model` under `setup`. `info` carries the exact parameter count
/// used for model states (it may differ from the shape's when the user gave `--params`).
pub fn estimate(model: &ModelSpec, info: &ParamInfo, setup: &Setup, overhead: &OverheadConfig) -> Estimate {
    let shapes = act::shapes(model, setup);
    let states = model_states(info, setup);
    let buffer_bytes = model.buffer_bytes;
    let input_bytes = act::input_bytes(model, &shapes, setup);
    let kv_cache = kv_cache_bytes(model, &shapes, setup);
    let ledger = ledger(model, &shapes, setup);
    let (peak_point, at_peak, activations, other_activations) = if setup.training() {
        training_peak(model, info, &shapes, setup, &states, &ledger, input_bytes + buffer_bytes)
    } else {
        inference_peak(model, &shapes, setup, &states, input_bytes + buffer_bytes, kv_cache)
    };
    let peak_allocated = at_peak.total();
    let overheads = overheads(overhead, peak_allocated);
    Estimate {
        parameters: info.params,
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
        shapes,
        ledger,
    }
}

fn ledger(model: &ModelSpec, shapes: &[StackShape], setup: &Setup) -> Vec<LedgerLine> {
    let mut out = Vec::new();
    let add = |out: &mut Vec<LedgerLine>, block: &str, saved: Vec<Saved>, count: u64, layer: bool| {
        for t in saved {
            let recomputed = layer
                && match setup.recompute {
                    Recompute::None => false,
                    Recompute::Selective => t.attention_core,
                    Recompute::Full => true,
                };
            out.push(LedgerLine { block: block.to_string(), tensor: t.name, bytes: t.bytes, count, recomputed });
        }
    };
    if !setup.training() {
        return out;
    }
    for (s, sh) in model.stacks.iter().zip(shapes) {
        add(&mut out, &format!("{} embeddings", s.name), act::stack_extras_ledger(model, s, sh, setup), 1, false);
        add(&mut out, &format!("{} layer", s.name), act::layer_ledger(s, sh, setup), s.layers, true);
        if setup.recompute == Recompute::Full {
            out.push(LedgerLine {
                block: format!("{} layer", s.name),
                tensor: "checkpointed layer input".into(),
                bytes: act::layer_input_bytes(s, sh, setup),
                count: s.layers,
                recomputed: false,
            });
        }
    }
    add(&mut out, "head", act::head_ledger(model, shapes, setup), 1, false);
    out
}

#[allow(clippy::too_many_arguments)]
fn training_peak(
    model: &ModelSpec,
    info: &ParamInfo,
    shapes: &[StackShape],
    setup: &Setup,
    states: &ModelStates,
    _ledger: &[LedgerLine],
    inputs: u64,
) -> (PeakPoint, PeakComposition, u64, u64) {
    let act_dtype = setup.precision.activation_dtype();
    let layers_saved: u64 =
        model.stacks.iter().zip(shapes).map(|(s, sh)| act::stack_layers_saved_bytes(s, sh, setup)).sum();
    let extras: u64 =
        model.stacks.iter().zip(shapes).map(|(s, sh)| total(&act::stack_extras_ledger(model, s, sh, setup))).sum();
    let head = total(&act::head_ledger(model, shapes, setup));
    // Autocast caches a half-precision copy of each weight for the forward; the matmuls save it.
    let autocast_copies = if setup.precision.autocast_weight_copies() { DType::Bf16.bytes(info.params) } else { 0 };
    let other = extras + head + inputs + autocast_copies;

    let logits = act::logits_elements(model, shapes);
    // Forward end: the logits in the activation dtype, their fp32 upcast (a copy unless already
    // fp32), and the fp32 log-softmax (in the head ledger).
    let upcast = if act_dtype == DType::Fp32 { 0 } else { DType::Fp32.bytes(logits) };
    let forward_temp = act_dtype.bytes(logits) + upcast;
    // Loss backward: the gradient of the log-probabilities and of the logits, both fp32.
    let loss_backward_temp = 2 * DType::Fp32.bytes(logits);

    // Backward through a layer: its recomputed forward (checkpointing) plus gradients of the
    // largest saved tensors and of the residual stream.
    let layer_transient = model
        .stacks
        .iter()
        .zip(shapes)
        .map(|(s, sh)| {
            let ledger = act::layer_ledger(s, sh, setup);
            let full: u64 = total(&ledger);
            let largest = ledger.iter().map(|t| t.bytes).max().unwrap_or(0);
            let recompute = match setup.recompute {
                Recompute::None => 0,
                Recompute::Selective => ledger.iter().filter(|t| t.attention_core).map(|t| t.bytes).sum(),
                Recompute::Full => full,
            };
            let residual_grads = 2 * setup.precision.residual_dtype().bytes(sh.tokens() * s.layer.hidden);
            recompute + 2 * largest.min(full) + residual_grads
        })
        .max()
        .unwrap_or(0);

    let grads_always = if setup.precision.grads_preallocated() { states.gradients } else { 0 };
    let base = PeakComposition {
        weights: states.weights,
        gradients: grads_always,
        optimizer_states: states.optimizer,
        ..PeakComposition::default()
    };
    let mut candidates = Vec::new();
    candidates.push((
        PeakPoint::ForwardEnd,
        PeakComposition { activations: layers_saved, other_activations: other, temporaries: forward_temp, ..base },
    ));
    if logits > 0 {
        candidates.push((
            PeakPoint::LossBackward,
            PeakComposition {
                activations: layers_saved,
                other_activations: other,
                temporaries: loss_backward_temp,
                ..base
            },
        ));
    }
    // End of backward: every gradient exists, the layer activations are gone.
    let flow_grads = states.gradients;
    candidates.push((
        PeakPoint::Backward,
        PeakComposition {
            gradients: flow_grads,
            other_activations: inputs + extras,
            temporaries: layer_transient,
            ..base
        },
    ));
    // Start of backward through the layers: head gradients exist, all layer activations do too.
    let head_grads = if setup.precision.grads_preallocated() {
        states.gradients
    } else {
        let head_params = crate::model::params::breakdown(model).head.params
            + model.tokens.as_ref().map_or(0, |t| {
                if model.head.lm_head.as_ref().is_some_and(|h| h.tied) {
                    t.vocab * t.dim
                } else {
                    0
                }
            });
        head_params.min(info.params) * setup.precision.grad_bytes_per_param()
    };
    candidates.push((
        PeakPoint::Backward,
        PeakComposition {
            gradients: head_grads,
            activations: layers_saved,
            other_activations: inputs + extras + autocast_copies,
            temporaries: layer_transient,
            ..base
        },
    ));
    candidates.push((
        PeakPoint::OptimizerStep,
        PeakComposition {
            gradients: states.gradients,
            other_activations: inputs,
            temporaries: states.step_temporary,
            ..base
        },
    ));
    let (point, comp) = candidates.into_iter().max_by_key(|(_, c)| c.total()).expect("candidates");
    (point, comp, layers_saved, other)
}

fn inference_peak(
    model: &ModelSpec,
    shapes: &[StackShape],
    setup: &Setup,
    states: &ModelStates,
    inputs: u64,
    kv_cache: u64,
) -> (PeakPoint, PeakComposition, u64, u64) {
    let act_dtype = setup.precision.activation_dtype();
    let res_dtype = setup.precision.residual_dtype();
    let mut encoder_out = 0;
    let mut layer_peak = 0u64;
    for (s, sh) in model.stacks.iter().zip(shapes) {
        let l = &s.layer;
        let a = &l.attention;
        let tokens = sh.tokens();
        let hd = a.head_dim(l.hidden);
        let e = res_dtype.bytes(tokens * l.hidden);
        let qkv = act_dtype.bytes(tokens * (a.heads + 2 * a.kv_heads()) * hd);
        let attn_out = act_dtype.bytes(tokens * a.heads * hd);
        let attention = if setup.attention == AttentionKernel::Eager {
            // scores and their softmax exist together
            qkv + 2 * act_dtype.bytes(sh.batch * a.heads * sh.seq * sh.seq)
        } else {
            qkv + attn_out + DType::Fp32.bytes(sh.batch * a.heads * sh.seq)
        };
        let f = act_dtype.bytes(tokens * l.mlp.top_k * l.mlp.ffn);
        let mlp = f * if l.mlp.gated { 3 } else { 2 };
        let ws = e + attention.max(mlp) + encoder_out;
        layer_peak = layer_peak.max(ws);
        if !s.causal && model.architecture == Architecture::EncoderDecoder {
            encoder_out = e;
        }
    }
    // End of forward: the returned hidden states, the head input when it is a new tensor, logits.
    let last = shapes.last().copied().unwrap_or(StackShape::new(0, 0, 0));
    let h = model.last_stack().map_or(0, |s| s.layer.hidden);
    let hidden = act_dtype.bytes(last.tokens() * h);
    let logits = act_dtype.bytes(act::logits_elements(model, shapes));
    let head_copy = match &model.head.lm_head {
        Some(lm) if lm.transform || lm.rescale => hidden,
        _ => 0,
    };
    let end = encoder_out + hidden + head_copy + logits;
    let base =
        PeakComposition { weights: states.weights, kv_cache, other_activations: inputs, ..PeakComposition::default() };
    if end >= layer_peak {
        (PeakPoint::ForwardLogits, PeakComposition { other_activations: inputs + end, ..base }, 0, inputs + end)
    } else {
        (PeakPoint::ForwardLayer, PeakComposition { activations: layer_peak, ..base }, layer_peak, inputs)
    }
}

fn total(saved: &[Saved]) -> u64 {
    saved.iter().map(|t| t.bytes).sum()
}
