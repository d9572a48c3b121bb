//! What the language-model loss keeps around the logits, by framework (`Mechanisms::logits`).
//! `n` is the number of logits elements on one rank (tokens × vocabulary / tp).
//!
//! - `upcast-copy` (plain PyTorch, torchtitan `cross_entropy_loss`: `F.cross_entropy(pred.flatten(0, 1).float(), ...)`;
//!   transformers ≥ 4.46 `loss_utils.py: ForCausalLMLoss` with `logits = logits.float()`):
//!   forward keeps the 16-bit logits and their fp32 copy until `log_softmax`, whose fp32 output
//!   is saved; the loss backward holds the gradient of the log-probabilities and of the fp32
//!   logits (two fp32 tensors) beside the saved output.
//! - `hf-shifted-upcast` (transformers < 4.46, e.g. `models/llama/modeling_llama.py:
//!   LlamaForCausalLM.forward`: `logits = logits.float()`, `shift_logits = logits[..., :-1, :].contiguous()`):
//!   at the loss the fp32 logits (returned in the output) and the fp32 shifted copy exist beside
//!   the saved log-softmax output; the 16-bit logits are already dropped. The backward is the
//!   same as `upcast-copy`.
//! - `hf-loss-shift` (transformers 4.46 to 4.49, `loss/loss_utils.py: ForCausalLMLoss`): the
//!   returned 16-bit logits, their fp32 copy and its shifted contiguous copy at the loss.
//! - `megatron-in-place` (`megatron/core/tensor_parallel/cross_entropy.py:
//!   _VocabParallelCrossEntropy.forward`: `vocab_parallel_logits.float()`, then max subtraction,
//!   `torch.exp(..., out=exp_logits)` and `exp_logits.div_(...)` in place; `save_for_backward(exp_logits, ...)`;
//!   `backward` rewrites the saved softmax in place as the gradient): the 16-bit logits and the
//!   fp32 softmax at forward end; the backward adds only the 16-bit gradient of the logits.

use super::mechanisms::LogitsHandling;
use crate::dtype::DType;

/// Bytes around the loss: what the loss saves for backward, the transient at the end of the
/// forward pass (beyond what is saved), and the transient of the loss backward.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LossMemory {
    pub saved: u64,
    pub forward_temp: u64,
    pub backward_temp: u64,
}

pub fn loss_memory(handling: LogitsHandling, act: DType, n: u64) -> LossMemory {
    let fp32 = DType::Fp32.bytes(n);
    // An fp32 activation dtype needs no upcast copy.
    let upcast = if act == DType::Fp32 { 0 } else { fp32 };
    match handling {
        LogitsHandling::UpcastCopy => {
            LossMemory { saved: fp32, forward_temp: act.bytes(n) + upcast, backward_temp: 2 * fp32 }
        }
        LogitsHandling::HfShiftedUpcast => {
            // fp32 logits (a copy unless already fp32) + the shifted contiguous fp32 copy; while
            // `.float()` runs the 16-bit logits exist beside the first copy.
            let at_loss = fp32 + fp32;
            LossMemory { saved: fp32, forward_temp: at_loss.max(act.bytes(n) + upcast), backward_temp: 2 * fp32 }
        }
        LogitsHandling::HfLossShift => {
            LossMemory { saved: fp32, forward_temp: act.bytes(n) + upcast + fp32, backward_temp: 2 * fp32 }
        }
        LogitsHandling::MegatronInPlace => {
            LossMemory { saved: fp32, forward_temp: act.bytes(n), backward_temp: act.bytes(n) }
        }
    }
}

/// Bytes the caching allocator keeps but cannot use at the loss backward when the loop frees
/// the 16-bit logits before `loss.backward()` (torchtitan `train.py`: `del pred`). Under
/// `upcast-copy` the 16-bit logits, their fp32 copy and the saved fp32 log-softmax output are
/// allocated one after the other; the first two are freed (the copy is a temporary, the logits
/// deleted), leaving one free block of 2n + 4n bytes. The first fp32 gradient of the backward
/// (`nll_loss_backward`, 4n) takes it and leaves the 2n bytes of the 16-bit logits; the second
/// (`_log_softmax_backward_data`, 4n) does not fit there and gets new memory
/// (`c10/cuda/CUDACachingAllocator.cpp`: best-fit `get_free_block`, else `alloc_block`). So the
/// reserved memory at that moment is the live tensors plus the 16-bit logits. With fp32 logits
/// there is no copy and the freed logits hold the first gradient exactly.
pub fn freed_logits_hole(handling: LogitsHandling, act: DType, n: u64, freed: bool) -> u64 {
    match handling {
        LogitsHandling::UpcastCopy if freed && act != DType::Fp32 => act.bytes(n),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rule_is_the_one_before_profiles() {
        // The rule `estimate::training_peak` applied before profiles: forward act·n + 4n
        // (no copy in fp32), loss backward 2 · 4n, saved fp32 log-softmax 4n.
        let n = 1000;
        assert_eq!(
            loss_memory(LogitsHandling::UpcastCopy, DType::Bf16, n),
            LossMemory { saved: 4 * n, forward_temp: 2 * n + 4 * n, backward_temp: 8 * n }
        );
        assert_eq!(loss_memory(LogitsHandling::UpcastCopy, DType::Fp32, n).forward_temp, 4 * n);
    }

    #[test]
    fn freed_16_bit_logits_leave_a_hole_the_fp32_gradients_cannot_use() {
        // bf16 logits of n elements (2n bytes) freed beside their fp32 copy (4n): the hole after
        // the first 4n gradient is the 2n of the logits; fp32 logits leave none.
        let n = 1000;
        assert_eq!(freed_logits_hole(LogitsHandling::UpcastCopy, DType::Bf16, n, true), 2 * n);
        assert_eq!(freed_logits_hole(LogitsHandling::UpcastCopy, DType::Bf16, n, false), 0);
        assert_eq!(freed_logits_hole(LogitsHandling::UpcastCopy, DType::Fp32, n, true), 0);
        assert_eq!(freed_logits_hole(LogitsHandling::MegatronInPlace, DType::Bf16, n, true), 0);
    }
}
