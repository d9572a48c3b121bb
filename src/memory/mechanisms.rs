//! The switches a framework profile sets on the memory model (`presets/frameworks/*.toml`,
//! resolved by `crate::memory::profile::FrameworkProfile`). `Default` is plain PyTorch — memplan's
//! rules before profiles existed — so a `Setup` without a profile estimates exactly as before.
//! Each mechanism is implemented in one place: `logits` (loss and logits handling),
//! `buckets` (DeepSpeed's buckets, FSDP2 under pipelining), `checkpoint` (recompute policies),
//! `states` (zero_grad), `activations` (the fp32 attention softmax), `buckets` also FSDP2's
//! sharded states and stream pools.

use serde::{Deserialize, Serialize};

/// How the language-model loss treats the logits (see `memory::logits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogitsHandling {
    /// `F.cross_entropy(logits.float(), labels)`: the 16-bit logits, their fp32 copy and the fp32
    /// log-softmax output (saved) at the end of forward; two fp32 gradients in the loss backward.
    #[default]
    UpcastCopy,
    /// transformers before 4.46 (`LlamaForCausalLM.forward` and its copies): `logits.float()` is
    /// returned in the output and `logits[..., :-1, :].contiguous()` is a second fp32 copy.
    HfShiftedUpcast,
    /// transformers 4.46 to 4.49 (`loss/loss_utils.py: ForCausalLMLoss`): the model returns
    /// 16-bit logits, the loss upcasts them and copies them shifted (`.contiguous()`).
    HfLossShift,
    /// Megatron-Core's vocab-parallel cross entropy: the fp32 copy becomes the softmax in place
    /// (saved) and the backward rewrites it in place.
    MegatronInPlace,
}

impl LogitsHandling {
    pub fn name(self) -> &'static str {
        match self {
            LogitsHandling::UpcastCopy => "upcast-copy",
            LogitsHandling::HfShiftedUpcast => "hf-shifted-upcast",
            LogitsHandling::HfLossShift => "hf-loss-shift",
            LogitsHandling::MegatronInPlace => "megatron-in-place",
        }
    }
}

/// DeepSpeed ZeRO's communication buffers (`deepspeed/runtime/zero/config.py`,
/// `DeepSpeedZeroConfig`): sizes in elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeepSpeedBuffers {
    /// `reduce_bucket_size` (default 5e8): the IPG gradient bucket, allocated whole.
    pub reduce_bucket_size: u64,
    /// `allgather_bucket_size` (default 5e8): ZeRO-1/2 all-gather of updated 16-bit partitions.
    pub allgather_bucket_size: u64,
    /// `overlap_comm`: two IPG buffers instead of one (default: on for stage 3 only).
    pub overlap_comm: Option<bool>,
    /// `contiguous_gradients` (default true): gradients are copied into the IPG buffer.
    pub contiguous_gradients: bool,
    /// `stage3_prefetch_bucket_size` (default 5e7): parameters gathered ahead of use.
    pub stage3_prefetch_bucket_size: u64,
    /// `stage3_max_live_parameters` (default 1e9): gathered parameters kept at most.
    pub stage3_max_live_parameters: u64,
    /// `stage3_param_persistence_threshold` (default 1e5): smaller tensors are never partitioned.
    pub stage3_param_persistence_threshold: u64,
}

impl Default for DeepSpeedBuffers {
    fn default() -> Self {
        DeepSpeedBuffers {
            reduce_bucket_size: 500_000_000,
            allgather_bucket_size: 500_000_000,
            overlap_comm: None,
            contiguous_gradients: true,
            stage3_prefetch_bucket_size: 50_000_000,
            stage3_max_live_parameters: 1_000_000_000,
            stage3_param_persistence_threshold: 100_000,
        }
    }
}

impl DeepSpeedBuffers {
    /// `overlap_comm` as DeepSpeed resolves it (`DeepSpeedZeroConfig.overlap_comm_valid`: on for
    /// stage 3 when unset).
    pub fn overlap(&self, zero_stage: u8) -> bool {
        self.overlap_comm.unwrap_or(zero_stage == 3)
    }
}

/// Framework mechanisms that change which tensors are alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Mechanisms {
    pub logits: LogitsHandling,
    /// `optimizer.zero_grad(set_to_none=True)`: gradients are freed after each step. When false
    /// (PyTorch < 2.0's default, and the Trainer of that time) they stay allocated (zeroed)
    /// through the next forward.
    pub zero_grad_set_to_none: bool,
    /// The eager attention softmax runs in fp32 and its 16-bit cast is a second tensor: autocast
    /// runs `softmax` in fp32 (`aten/src/ATen/autocast_mode.cpp`, fp32 op list), and Hugging Face
    /// eager attention calls `softmax(..., dtype=torch.float32).to(query.dtype)`.
    pub eager_softmax_fp32: bool,
    /// DeepSpeed's own buffers replace memplan's generic ZeRO buckets (`memory::buckets`).
    pub deepspeed_buffers: Option<DeepSpeedBuffers>,
    /// FSDP2 under pipeline parallelism: gradient sync is off between microbatches, so each
    /// stage keeps its unsharded gradients in the reduce dtype (fp32) until the last one
    /// (`torch/distributed/fsdp/_fully_shard/_fsdp_param.py`, `FSDPParam.unsharded_accumulated_grad`).
    pub fsdp_pp_unsharded_grads: bool,
    /// FSDP2 under pipeline parallelism with `reshard_after_forward=False` (torchtitan's
    /// default "default" policy when PP is on): the stage's gathered 16-bit parameters stay.
    pub fsdp_pp_keep_unsharded_params: bool,
    /// FSDP2 (`fully_shard`) as torchtitan applies it (`memory::buckets`): fp32 sharded parameters
    /// are the optimizer's (no master copy), sharded fp32 gradients come from the reduce-scatter
    /// in backward and live in that stream's pool, the root group (embeddings, final norm, head)
    /// and the last block stay gathered after forward, all-gather buffers in their own pool.
    pub fsdp2: bool,
    /// The training loop frees the 16-bit logits before `loss.backward()` (torchtitan `train.py`:
    /// `del pred`): the caching allocator keeps their block, too small for an fp32 loss gradient
    /// (`memory::logits::freed_logits_hole`).
    pub logits_freed_before_backward: bool,
}

impl Default for Mechanisms {
    fn default() -> Self {
        Mechanisms {
            logits: LogitsHandling::UpcastCopy,
            zero_grad_set_to_none: true,
            eager_softmax_fp32: false,
            deepspeed_buffers: None,
            fsdp_pp_unsharded_grads: false,
            fsdp_pp_keep_unsharded_params: false,
            fsdp2: false,
            logits_freed_before_backward: false,
        }
    }
}
