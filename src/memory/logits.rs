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

    /// A best-fit allocator over one growing segment (the caching allocator with expandable
    /// segments: the smallest free block that fits, split from its start, else new memory at the
    /// end; freed neighbours coalesce). Returns the segment's high-water mark.
    struct BestFit {
        blocks: Vec<(u64, u64, bool)>, // (start, size, free)
        end: u64,
        high: u64,
    }

    impl BestFit {
        fn new() -> Self {
            BestFit { blocks: Vec::new(), end: 0, high: 0 }
        }
        fn alloc(&mut self, size: u64) -> u64 {
            let fit = (0..self.blocks.len())
                .filter(|&i| self.blocks[i].2 && self.blocks[i].1 >= size)
                .min_by_key(|&i| (self.blocks[i].1, self.blocks[i].0));
            if let Some(i) = fit {
                let (start, len, _) = self.blocks[i];
                self.blocks[i] = (start, size, false);
                if len > size {
                    self.blocks.insert(i + 1, (start + size, len - size, true));
                }
                return start;
            }
            let start = self.end;
            self.blocks.push((start, size, false));
            self.end += size;
            self.high = self.high.max(self.end);
            start
        }
        fn free(&mut self, start: u64) {
            let i = self.blocks.iter().position(|b| b.0 == start).unwrap();
            self.blocks[i].2 = true;
            if i + 1 < self.blocks.len() && self.blocks[i + 1].2 {
                self.blocks[i].1 += self.blocks[i + 1].1;
                self.blocks.remove(i + 1);
            }
            if i > 0 && self.blocks[i - 1].2 {
                self.blocks[i - 1].1 += self.blocks[i].1;
                self.blocks.remove(i);
            }
        }
        fn live(&self) -> u64 {
            self.blocks.iter().filter(|b| !b.2).map(|b| b.1).sum()
        }
    }

    #[test]
    fn the_hole_is_what_a_best_fit_allocator_leaves_at_the_loss_backward() {
        // torchtitan: pred = model(x) (16-bit), loss = cross_entropy(pred.float(), y): the fp32
        // copy is a temporary, log_softmax's fp32 output is saved; `del pred`; backward allocates
        // nll_loss's fp32 gradient, then log_softmax's.
        let n = 1000;
        for act in [DType::Bf16, DType::Fp32] {
            let mut a = BestFit::new();
            let logits = a.alloc(act.bytes(n));
            let copy = (act != DType::Fp32).then(|| a.alloc(4 * n));
            let _saved = a.alloc(4 * n);
            if let Some(c) = copy {
                a.free(c);
            }
            a.free(logits);
            let _g1 = a.alloc(4 * n);
            let _g2 = a.alloc(4 * n);
            let hole = a.high - a.live();
            assert_eq!(hole, freed_logits_hole(LogitsHandling::UpcastCopy, act, n, true), "{act:?}");
        }
        assert_eq!(freed_logits_hole(LogitsHandling::UpcastCopy, DType::Bf16, n, false), 0);
    }
}
