//! Activation-checkpointing policies as rules over a layer's tensors. A policy says which layers
//! are checkpointed and, inside a checkpointed layer, what is kept for backward; everything else
//! is recomputed. Adding a policy is a `Policy` value in `policy()`.
//!
//! - `none`: every layer keeps its whole ledger (`activations::layer_ledger`).
//! - `selective` (Megatron-LM `--recompute-granularity selective`,
//!   `megatron/core/transformer/attention.py: Attention._checkpointed_attention_forward`): the
//!   ledger less the tensors marked `attention_core`.
//! - `full`, `hf`: the layer's input only. Megatron `full`/`uniform`
//!   (`megatron/core/transformer/transformer_block.py: _checkpointed_forward`), torchtitan
//!   `mode = "full"` (`ptd_checkpoint_wrapper` per block), Hugging Face
//!   `gradient_checkpointing_enable()` (`modeling_utils.py`: each decoder layer's `__call__` under
//!   `torch.utils.checkpoint.checkpoint`, `use_reentrant=True` unless given; the shared mask and
//!   rotary tensors passed to every layer exist once).
//! - `op` (torchtitan `selective_ac_option = "op"`,
//!   `torchtitan/parallelisms/parallelize_llama.py: _apply_ac_to_transformer_block`, and
//!   `torchtitan/distributed/activation_checkpoint.py: SelectiveAC` today): the block input plus
//!   the outputs of the ops in the save list — `aten.mm` (every second one recomputed, counted
//!   from 1 within each block), `_scaled_dot_product_flash_attention` /
//!   `_efficient_attention` (output and fp32 log-sum-exp), `_c10d_functional.reduce_scatter_tensor`.
//!   Norms, activations, rotary embeddings and eager attention's `bmm`/softmax are recomputed.
//! - `every-k` (torchtitan `selective_ac_option = "k"`): a global counter starting at 1
//!   checkpoints the blocks whose count is a multiple of k, so ⌊n/k⌋ of n blocks keep only their
//!   input and the others keep everything.

use super::activations::{heads_per_rank, materialises_scores, Saved, StackShape};
use super::setup::{Recompute, Setup};
use crate::dtype::DType;
use crate::model::spec::Stack;

/// Which layers a policy checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layers {
    None,
    All,
    /// Every k-th layer (the k-th, 2k-th, ...).
    EveryK(u32),
}

/// What a checkpointed layer keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Its input only (the rest is recomputed in backward).
    Input,
    /// Everything autograd saves except the attention core.
    AllButAttentionCore,
    /// Its input and the outputs of the save-list ops (torchtitan per-op SAC).
    SaveListOps,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub layers: Layers,
    pub keep: Keep,
}

/// The rule of each policy.
pub fn policy(r: Recompute) -> Policy {
    match r {
        Recompute::None => Policy { layers: Layers::None, keep: Keep::Input },
        Recompute::Selective => Policy { layers: Layers::All, keep: Keep::AllButAttentionCore },
        Recompute::Full | Recompute::Hf => Policy { layers: Layers::All, keep: Keep::Input },
        Recompute::Op => Policy { layers: Layers::All, keep: Keep::SaveListOps },
        Recompute::Every(k) => Policy { layers: Layers::EveryK(k), keep: Keep::Input },
    }
}

impl Policy {
    /// How many of `n` consecutive layers are checkpointed.
    pub fn checkpointed(&self, n: u64) -> u64 {
        match self.layers {
            Layers::None => 0,
            Layers::All => n,
            Layers::EveryK(k) => n / u64::from(k.max(1)),
        }
    }
}

/// A tensor a checkpointed layer keeps (or the output of a compute op it could keep).
#[derive(Clone, Debug, PartialEq)]
pub struct Kept {
    pub name: String,
    pub bytes: u64,
}

/// One layer under the policy: bytes kept for backward when checkpointed, the tensors that make
/// them up, and bytes recomputed in backward.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerUnderPolicy {
    pub kept: u64,
    pub kept_tensors: Vec<Kept>,
    pub recomputed: u64,
}

/// Apply `policy`'s rule to one layer whose ledger is `ledger` and whose input is `input` bytes.
pub fn apply(
    policy: Policy,
    stack: &Stack,
    shape: &StackShape,
    setup: &Setup,
    ledger: &[Saved],
    input: u64,
) -> LayerUnderPolicy {
    let full: u64 = ledger.iter().map(|t| t.bytes).sum();
    match (policy.layers, policy.keep) {
        (Layers::None, _) => LayerUnderPolicy { kept: full, kept_tensors: Vec::new(), recomputed: 0 },
        (_, Keep::AllButAttentionCore) => {
            let core: u64 = ledger.iter().filter(|t| t.attention_core).map(|t| t.bytes).sum();
            LayerUnderPolicy { kept: full - core, kept_tensors: Vec::new(), recomputed: core }
        }
        (_, Keep::Input) => LayerUnderPolicy {
            kept: input,
            kept_tensors: vec![Kept { name: "checkpointed layer input".into(), bytes: input }],
            recomputed: full,
        },
        (_, Keep::SaveListOps) => {
            let mut kept = vec![Kept { name: "checkpointed layer input".into(), bytes: input }];
            kept.extend(saved_op_outputs(stack, shape, setup));
            let bytes = kept.iter().map(|k| k.bytes).sum();
            // The recomputed forward rebuilds the ledger; the saved outputs are reused, not copied.
            LayerUnderPolicy { kept: bytes, kept_tensors: kept, recomputed: full }
        }
    }
}

/// A compute op's output in a layer's forward, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct OpOutput {
    pub name: String,
    pub bytes: u64,
    /// `aten.mm` (subject to torchtitan's every-second rule).
    pub mm: bool,
}

/// Outputs of the compute ops of one layer in forward order: the projections (`aten.mm`, one
/// per `nn.Linear` on a 3-D input), the fused attention (output and fp32 log-sum-exp), and the
/// reduce-scatter after a row-parallel projection under sequence parallelism.
pub fn layer_op_outputs(stack: &Stack, shape: &StackShape, setup: &Setup) -> Vec<OpOutput> {
    let l = &stack.layer;
    let act = setup.precision.activation_dtype();
    let tp = shape.tp.max(1);
    let tokens = shape.tokens();
    let mut out = Vec::new();
    let mm = |out: &mut Vec<OpOutput>, name: &str, bytes: u64| {
        out.push(OpOutput { name: format!("{name} projection output (mm)"), bytes, mm: true })
    };
    let row_parallel = |out: &mut Vec<OpOutput>, name: &str| {
        mm(out, name, act.bytes(tokens * l.hidden));
        if shape.sp && tp > 1 {
            out.push(OpOutput {
                name: format!("{name} reduce-scatter output"),
                bytes: act.bytes(tokens * l.hidden).div_ceil(tp),
                mm: false,
            });
        }
    };
    let a = &l.attention;
    let (heads, _) = heads_per_rank(a, tp);
    let hd = a.head_dim(l.hidden);
    for copy in 0..1 + u64::from(l.cross_attention) {
        let kv_tokens = if copy == 0 { tokens } else { shape.batch * shape.cross_seq };
        for (name, rows, _) in super::finetune::layer_matrices(l).into_iter().take_while(|(n, _, _)| *n != "router") {
            if matches!(name, "gate" | "up" | "down") {
                break;
            }
            let t = if matches!(name, "k" | "v" | "kv_a" | "kv_b") { kv_tokens } else { tokens };
            if name == "o" {
                if !materialises_scores(setup, a.dropout) {
                    out.push(OpOutput {
                        name: "attention (SDPA) output".into(),
                        bytes: act.bytes(tokens * heads * hd),
                        mm: false,
                    });
                    out.push(OpOutput {
                        name: "attention log-sum-exp (fp32)".into(),
                        bytes: DType::Fp32.bytes(shape.batch * heads * shape.seq),
                        mm: false,
                    });
                }
                row_parallel(&mut out, "o");
                break;
            }
            // Column-parallel projections split their outputs over tp (MLA's latent is replicated).
            let split = if matches!(name, "q_a" | "kv_a") { 1 } else { tp };
            mm(&mut out, name, act.bytes(t * rows.div_ceil(split)));
        }
    }
    let m = &l.mlp;
    let mlp = |out: &mut Vec<OpOutput>, f: u64, t: u64, gated: bool| {
        let f = f.div_ceil(tp);
        if gated {
            mm(out, "gate", act.bytes(t * f));
        }
        mm(out, "up", act.bytes(t * f));
        mm(out, "down", act.bytes(t * l.hidden));
    };
    if m.shared_ffn > 0 {
        mlp(&mut out, m.shared_ffn, tokens, true);
    }
    if m.experts > 1 {
        mm(&mut out, "router", act.bytes(tokens * m.experts));
        let routed = ((tokens * m.top_k) as f64 * setup.capacity_factor.max(1.0)).ceil() as u64;
        // Experts run one after another, each on its share of the routed tokens.
        for _ in 0..m.experts {
            mlp(&mut out, m.ffn, routed.div_ceil(m.experts), m.gated);
        }
    } else {
        let f = m.ffn.div_ceil(tp);
        if m.gated {
            mm(&mut out, "gate", act.bytes(tokens * f));
        }
        mm(&mut out, "up", act.bytes(tokens * f));
        row_parallel(&mut out, "down");
    }
    out
}

/// The outputs torchtitan's per-op policy keeps: save-list ops, every second `mm` recomputed.
pub fn saved_op_outputs(stack: &Stack, shape: &StackShape, setup: &Setup) -> Vec<Kept> {
    let mut count = 0u64;
    let mut kept = Vec::new();
    for op in layer_op_outputs(stack, shape, setup) {
        if op.mm {
            count += 1;
            if count.is_multiple_of(2) {
                continue;
            }
        }
        kept.push(Kept { name: format!("kept by per-op SAC: {}", op.name), bytes: op.bytes });
    }
    kept
}
