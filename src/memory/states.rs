//! Model states: weights, gradients and optimizer states, before any sharding.
//! Bytes per parameter follow the recipe (DESIGN.md §3; ZeRO paper §3.1 for 2 + 2 + 12;
//! Megatron-LM's distributed-optimizer table for 18 and 20).

use super::setup::{Optimizer, OptimizerImpl, Precision, Setup};
use crate::dtype::DType;
use crate::model::params;
use crate::model::spec::ModelSpec;
use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ModelStates {
    pub weights: u64,
    pub gradients: u64,
    /// Moments, fp32 master weights and other optimizer-owned copies.
    pub optimizer: u64,
    /// Largest temporary the optimizer step allocates.
    pub step_temporary: u64,
}

/// Parameters a model state is sized for: the exact count, and a representative count of
/// parameter tensors and the largest tensor (the for-loop optimizer's temporary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ParamInfo {
    pub params: u64,
    /// Parameters of the described shape (differs from `params` for a bare `--params` count).
    pub shape_params: u64,
    pub tensors: u64,
    pub largest_tensor: u64,
    /// Elements Adafactor keeps: rows + cols for matrices, the full size for vectors.
    pub factored_elements: u64,
    /// LoRA adapter parameters (the trainable ones under LoRA/QLoRA).
    pub adapter_params: u64,
    /// Bytes of the frozen or served weights when they are not `params` × the weight dtype
    /// (quantized layer matrices).
    pub frozen_weight_bytes: Option<u64>,
    /// Parameters of one pipeline stage's transformer blocks on one rank, and of its largest
    /// block (set per stage by the estimate; 0 when unknown): FSDP2 wraps each block, the rest
    /// of the stage is the root group (`memory::buckets`).
    pub stage_block_params: u64,
    pub stage_largest_block: u64,
}

impl ParamInfo {
    pub fn of(model: &ModelSpec) -> ParamInfo {
        let b = params::breakdown(model);
        let vocab_table = model.tokens.as_ref().map_or(0, |t| t.vocab * t.dim);
        let largest_layer_matrix = model
            .stacks
            .iter()
            .map(|s| {
                let h = s.layer.hidden;
                (h * s.layer.mlp.ffn).max(h * s.layer.attention.heads * s.layer.attention.head_dim(h))
            })
            .max()
            .unwrap_or(0);
        ParamInfo {
            params: b.total.params,
            shape_params: b.total.params,
            tensors: b.total.tensors,
            largest_tensor: vocab_table.max(largest_layer_matrix),
            factored_elements: factored_elements(model),
            adapter_params: 0,
            frozen_weight_bytes: None,
            stage_block_params: 0,
            stage_largest_block: 0,
        }
    }

    /// A bare count (`--params`) with the tensors and largest tensor of its derived shape.
    pub fn with_count(shape: &ModelSpec, params: u64) -> ParamInfo {
        let mut info = ParamInfo::of(shape);
        // Scale the factored size with the count; tensors and largest tensor follow the shape.
        info.factored_elements = (info.factored_elements as u128 * params as u128 / info.params.max(1) as u128) as u64;
        info.params = params;
        info
    }
}

/// Adafactor (Shazeer & Stern 2018, §3): a factored second moment keeps r + c values per r×c
/// matrix; vectors keep their full size.
fn factored_elements(model: &ModelSpec) -> u64 {
    let mut total = model.tokens.as_ref().map_or(0, |t| t.vocab + t.dim);
    for s in &model.stacks {
        let l = &s.layer;
        let h = l.hidden;
        let a = &l.attention;
        let hd = a.head_dim(h);
        let attn = 2 * (h + a.heads * hd) + 2 * (h + a.kv_heads() * hd);
        let attn = attn * (1 + u64::from(l.cross_attention));
        let mlp = (h + l.mlp.ffn) * if l.mlp.gated { 3 } else { 2 } * l.mlp.experts;
        let matrix_params = {
            let q = h * a.heads * hd * 2 + 2 * h * a.kv_heads() * hd;
            q * (1 + u64::from(l.cross_attention)) + h * l.mlp.ffn * if l.mlp.gated { 3 } else { 2 } * l.mlp.experts
        };
        let vectors = params::layer(l).params.saturating_sub(matrix_params);
        let per_layer = attn + mlp + vectors;
        total += per_layer * if s.shared_layers { 1 } else { s.layers };
    }
    total
}

/// Weights, gradients and optimizer states for training (or weights alone for inference).
pub fn model_states(info: &ParamInfo, setup: &Setup) -> ModelStates {
    let p = setup.precision;
    let n = info.params;
    let weights = info.frozen_weight_bytes.unwrap_or_else(|| p.weight_dtype().bytes(n));
    if !setup.training() {
        return ModelStates { weights, ..ModelStates::default() };
    }
    if let Some(lora) = setup.finetune.lora() {
        // Frozen base: no gradients or optimizer states; the adapters train in their own dtype.
        let a = info.adapter_params;
        let ad = lora.adapter_dtype;
        let moments = match setup.optimizer {
            Optimizer::Adam | Optimizer::Adamw => 2 * ad.bytes(a),
            Optimizer::Sgd => 0,
            Optimizer::SgdMomentum | Optimizer::Lion => ad.bytes(a),
            Optimizer::Adamw8bit => 2 * (a + 4 * a.div_ceil(2048)),
            Optimizer::Adafactor => ad.bytes(a),
        };
        let step_temporary = match setup.optimizer_impl {
            OptimizerImpl::Fused => 0,
            _ if matches!(setup.optimizer, Optimizer::Sgd | Optimizer::SgdMomentum) => 0,
            OptimizerImpl::Foreach => ad.bytes(a),
            // One adapter matrix at a time: A or B of the widest projection, about a / (2·matrices).
            OptimizerImpl::ForLoop => ad.bytes(a.div_ceil(2 * info.tensors.max(1))),
        };
        return ModelStates {
            weights: weights + ad.bytes(a),
            gradients: ad.bytes(a),
            optimizer: moments,
            step_temporary,
        };
    }
    let gradients = n.saturating_mul(p.grad_bytes_per_param());
    let state = p.state_dtype();
    let moments = match setup.optimizer {
        Optimizer::Adam | Optimizer::Adamw => 2 * state.bytes(n),
        Optimizer::Sgd => 0,
        Optimizer::SgdMomentum | Optimizer::Lion => state.bytes(n),
        // bitsandbytes: two 8-bit moments plus one fp32 absmax per 2048-value block each.
        Optimizer::Adamw8bit => 2 * (n + 4 * n.div_ceil(2048)),
        // Factored second moment, no first moment (the default beta1 = None).
        Optimizer::Adafactor => state.bytes(info.factored_elements),
    };
    let master = if p.master_weights() { DType::Fp32.bytes(n) } else { 0 };
    let grad_copy = if p.fp32_grad_copy() { DType::Fp32.bytes(n) } else { 0 };
    // Adam's per-tensor `step` lives on the device only for the fused implementation.
    let steps = if setup.optimizer_impl == OptimizerImpl::Fused
        && matches!(setup.optimizer, Optimizer::Adam | Optimizer::Adamw)
    {
        4 * info.tensors
    } else {
        0
    };
    let step_temporary = optimizer_step_temporary(info, setup);
    ModelStates { weights, gradients, optimizer: moments + master + grad_copy + steps, step_temporary }
}

/// The optimizer step's temporaries: foreach Adam computes `_foreach_sqrt(exp_avg_sq)` for the
/// whole parameter group at once; the for-loop version does it one tensor at a time; fused none.
fn optimizer_step_temporary(info: &ParamInfo, setup: &Setup) -> u64 {
    let state = setup.precision.state_dtype();
    let uses_denominator =
        matches!(setup.optimizer, Optimizer::Adam | Optimizer::Adamw | Optimizer::Lion | Optimizer::Adafactor);
    if !uses_denominator {
        return 0;
    }
    match setup.optimizer_impl {
        OptimizerImpl::Fused => 0,
        OptimizerImpl::Foreach => state.bytes(info.params),
        OptimizerImpl::ForLoop => state.bytes(info.largest_tensor),
    }
}

/// Bytes per parameter of weights + gradients + optimizer states for a recipe with Adam.
pub fn adam_bytes_per_param(precision: Precision) -> u64 {
    let setup = Setup { precision, ..Setup::default() };
    let info = ParamInfo {
        params: 1,
        shape_params: 1,
        tensors: 0,
        largest_tensor: 1,
        factored_elements: 1,
        adapter_params: 0,
        frozen_weight_bytes: None,
        stage_block_params: 0,
        stage_largest_block: 0,
    };
    let s = model_states(&info, &setup);
    s.weights + s.gradients + s.optimizer
}
