//! Framework profiles: each mechanism against its framework's source (the formula or constant is
//! quoted with file and function) or against a measurement written out here
//! (`tests/data/frameworks/measured.json`, made by `scripts/measure_frameworks.py` on CPU).

use memplan::dtype::DType;
use memplan::framework::Framework;
use memplan::memory::activations::{layer_input_bytes, layer_ledger, stack_layers_saved_bytes, StackShape};
use memplan::memory::checkpoint::{self, saved_op_outputs};
use memplan::memory::logits::{loss_memory, LossMemory};
use memplan::memory::mechanisms::{LogitsHandling, Mechanisms};
use memplan::memory::profile::FrameworkProfile;
use memplan::memory::{AttentionKernel, OptimizerImpl, Precision, Recompute, Setup};
use memplan::model::{hf, presets, ModelSpec};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn memplan(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_memplan")).args(args).args(["--format", "json"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn measured(id: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/frameworks/measured.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all["records"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("{id}")).clone()
}

/// A Llama block with the given shape (torchtitan's `TransformerBlock`: no biases, RMSNorm, SwiGLU).
fn llama_block(dim: u64, heads: u64, kv_heads: u64, ffn: u64) -> ModelSpec {
    let mut m = presets::model("llama-3-8b").unwrap();
    let s = &mut m.stacks[0];
    s.layers = 1;
    s.layer.hidden = dim;
    s.layer.attention.heads = heads;
    s.layer.attention.kv_heads = Some(kv_heads);
    s.layer.attention.head_dim = None;
    s.layer.mlp.ffn = ffn;
    m.tokens.as_mut().unwrap().dim = dim;
    m
}

fn bf16_flash(batch: u64, seq: u64, recompute: Recompute) -> Setup {
    Setup {
        precision: Precision::Bf16,
        attention: AttentionKernel::Flash,
        micro_batch: batch,
        seq,
        recompute,
        dropout: Some(false),
        ..Setup::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Recompute policies.

#[test]
fn torchtitan_op_sac_keeps_what_the_measured_block_keeps() {
    // scripts/measure_frameworks.py: a torchtitan Llama block (dim 256, 8 heads, 4 KV heads,
    // ffn 704, bf16, batch 2, seq 64) under torch.utils.checkpoint with torchtitan's op policy
    // (`_apply_ac_to_transformer_block`: save mm / SDPA outputs, every second mm recomputed)
    // keeps 413,696 bytes besides its input; full checkpointing keeps nothing besides it.
    let r = measured("sac_op");
    let m = llama_block(256, 8, 4, 704);
    let setup = bf16_flash(2, 64, Recompute::Op);
    let shape = StackShape::new(2, 64, 0);
    let kept: u64 = saved_op_outputs(&m.stacks[0], &shape, &setup).iter().map(|k| k.bytes).sum();
    assert_eq!(kept, r["kept_bytes"].as_u64().unwrap());
    // By hand from the policy: mm #1 wq (T·256), #3 wv (T·128), #5 w1 (T·704), #7 w2 (T·256) in
    // bf16; SDPA output (T·256 bf16) and log-sum-exp (b·heads·s fp32); T = 128 tokens.
    let t = 128;
    assert_eq!(kept, 2 * t * (256 + 128 + 704 + 256) + 2 * t * 256 + 4 * 2 * 8 * 64);
    assert_eq!(measured("sac_full")["kept_bytes"].as_u64().unwrap(), 0);
    let full = bf16_flash(2, 64, Recompute::Full);
    let ledger = layer_ledger(&m.stacks[0], &shape, &full);
    let input = layer_input_bytes(&m.stacks[0], &shape, &full);
    let under = checkpoint::apply(checkpoint::policy(Recompute::Full), &m.stacks[0], &shape, &full, &ledger, input);
    assert_eq!(under.kept, input, "full checkpointing keeps only the block input");
}

#[test]
fn op_sac_on_llama_3_8b_by_hand() {
    // torchtitan's op policy on Llama 3 8B (h 4096, 32 heads, 8 KV heads of 128, ffn 14336):
    // per token the block input, wq, wv, SDPA output, w1 and w2 outputs in bf16, plus the fp32
    // log-sum-exp of 32 heads.
    let m = presets::model("llama-3-8b").unwrap();
    let (b, s) = (2, 8192);
    let setup = bf16_flash(b, s, Recompute::Op);
    let shape = StackShape::new(b, s, 0);
    let per_token = 2 * (4096 + 4096 + 1024 + 4096 + 14336 + 4096);
    let expected = b * s * per_token + 4 * b * 32 * s;
    assert_eq!(memplan::memory::activations::layer_saved_bytes(&m.stacks[0], &shape, &setup), expected);
}

#[test]
fn every_k_checkpoints_every_kth_block() {
    // torchtitan `selective_ac_option = "k"`: a counter from 1 checkpoints the blocks whose count
    // is a multiple of k (`ptd_checkpoint_wrapper._count % ac_freq == 0`): 16 of 32 for k = 2,
    // 10 of 32 for k = 3. A checkpointed block keeps its input; the others keep everything.
    let m = presets::model("llama-3-8b").unwrap();
    let shape = StackShape::new(1, 4096, 0);
    let stack = &m.stacks[0];
    let none = stack_layers_saved_bytes(stack, &shape, &bf16_flash(1, 4096, Recompute::None)) / 32;
    let input = layer_input_bytes(stack, &shape, &bf16_flash(1, 4096, Recompute::Full));
    for (k, ckpt) in [(2u32, 16u64), (3, 10), (1, 32), (64, 0)] {
        let got = stack_layers_saved_bytes(stack, &shape, &bf16_flash(1, 4096, Recompute::Every(k)));
        assert_eq!(got, ckpt * input + (32 - ckpt) * none, "every-{k}");
    }
}

#[test]
fn hf_gradient_checkpointing_keeps_each_decoder_layers_input() {
    // transformers modeling_utils.py: gradient_checkpointing_enable wraps each decoder layer's
    // __call__ in torch.utils.checkpoint (use_reentrant=True by default), which keeps the layer's
    // input hidden states (2·b·s·h in bf16).
    let m = presets::model("llama-3-8b").unwrap();
    let shape = StackShape::new(4, 1024, 0);
    let hf = stack_layers_saved_bytes(&m.stacks[0], &shape, &bf16_flash(4, 1024, Recompute::Hf));
    assert_eq!(hf, 32 * 2 * 4 * 1024 * 4096);
}

#[test]
fn recompute_names_parse_and_bad_ones_are_refused() {
    for (name, r) in [("op", Recompute::Op), ("hf", Recompute::Hf), ("every-2", Recompute::Every(2))] {
        assert_eq!(Recompute::parse(name).unwrap(), r);
        assert_eq!(r.name(), name);
    }
    for bad in ["every-0", "every-", "every-x", "sometimes", "every-1001"] {
        let (code, _, err) = memplan(&["estimate", "--recompute", bad]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains(bad) && err.contains("every-K"), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Attention softmax in fp32.

#[test]
fn hf_eager_attention_keeps_an_fp32_softmax_as_measured() {
    // scripts/measure_frameworks.py: LlamaForCausalLM (transformers 5.24) in bf16 with eager
    // attention saves 229,888 bytes in a decoder layer (parameters and the rotary cos/sin shared
    // by all layers aside), one of them an fp32 tensor of b·heads·s² — the softmax of
    // `eager_attention_forward`: softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype).
    let r = measured("hf_eager_softmax_bf16");
    assert_eq!(r["fp32_score_sized_tensors"], 1);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/frameworks/llama_tiny_config.json");
    let m = hf::from_hf_config(&path).unwrap();
    let profile = FrameworkProfile::load(Framework::HfTrainer, None).unwrap();
    let setup = Setup {
        precision: Precision::Bf16,
        attention: AttentionKernel::Eager,
        micro_batch: 2,
        seq: 32,
        mechanisms: profile.mechanisms,
        ..Setup::default()
    };
    let shape = StackShape::new(2, 32, 0);
    let ledger: u64 = layer_ledger(&m.stacks[0], &shape, &setup).iter().map(|t| t.bytes).sum();
    assert_eq!(ledger, r["layer_saved_bytes"].as_u64().unwrap());
    // Plain PyTorch rules keep a 16-bit softmax: the fp32 one and its cast cost 4 more bytes per score.
    let plain = Setup { mechanisms: Mechanisms::default(), ..setup };
    let plain: u64 = layer_ledger(&m.stacks[0], &shape, &plain).iter().map(|t| t.bytes).sum();
    assert_eq!(ledger - plain, 4 * 2 * 4 * 32 * 32);
}

// ---------------------------------------------------------------------------------------------
// Loss and logits.

#[test]
fn loss_memory_follows_each_frameworks_cross_entropy() {
    let n = 1000;
    // plain PyTorch / torchtitan: F.cross_entropy(pred.float(), labels): bf16 logits + fp32 copy
    // in forward; log_softmax saves its fp32 output; backward: grad of log-probs + grad of input.
    assert_eq!(
        loss_memory(LogitsHandling::UpcastCopy, DType::Bf16, n),
        LossMemory { saved: 4 * n, forward_temp: 2 * n + 4 * n, backward_temp: 8 * n }
    );
    // transformers < 4.46: lm_head(...).float() drops the bf16 logits; the fp32 logits and
    // logits[..., :-1, :].contiguous() (fp32) exist at the loss.
    assert_eq!(loss_memory(LogitsHandling::HfShiftedUpcast, DType::Bf16, n).forward_temp, 8 * n);
    // transformers 4.46-4.49 ForCausalLMLoss: returned bf16 logits + .float() + shifted copy.
    assert_eq!(loss_memory(LogitsHandling::HfLossShift, DType::Bf16, n).forward_temp, 2 * n + 8 * n);
    // Megatron _VocabParallelCrossEntropy: the fp32 copy becomes the softmax in place (saved);
    // backward writes the gradient into it (grad_input = softmax; mul_), so only the bf16
    // gradient of the logits is new.
    assert_eq!(
        loss_memory(LogitsHandling::MegatronInPlace, DType::Bf16, n),
        LossMemory { saved: 4 * n, forward_temp: 2 * n, backward_temp: 2 * n }
    );
}

#[test]
fn profiles_pick_settings_by_version() {
    let at = |f, v: &str| FrameworkProfile::load(f, Some(v)).unwrap();
    // transformers/training_args.py: default_optim "adamw_hf" (until 4.31), "adamw_torch"
    // (4.32-4.53), "adamw_torch_fused" with torch >= 2.8 (4.54+).
    assert_eq!(at(Framework::HfTrainer, "4.31").optimizer_impl, Some(OptimizerImpl::ForLoop));
    assert_eq!(at(Framework::HfTrainer, "4.32").optimizer_impl, Some(OptimizerImpl::Foreach));
    assert_eq!(at(Framework::HfTrainer, "4.54.1").optimizer_impl, Some(OptimizerImpl::Fused));
    // modeling_llama.py (4.45) upcasts in the model; loss_utils.py shifts logits in 4.46-4.49
    // and labels from 4.50.
    assert_eq!(at(Framework::HfTrainer, "4.45").mechanisms.logits, LogitsHandling::HfShiftedUpcast);
    assert_eq!(at(Framework::HfTrainer, "4.48").mechanisms.logits, LogitsHandling::HfLossShift);
    assert_eq!(at(Framework::HfTrainer, "4.50").mechanisms.logits, LogitsHandling::UpcastCopy);
    // torchtitan: `--optimizer.fused` store_true before v0.1 (foreach), implementation "fused" after.
    assert_eq!(at(Framework::Torchtitan, "0.0").optimizer_impl, Some(OptimizerImpl::Foreach));
    assert_eq!(at(Framework::Torchtitan, "0.1").optimizer_impl, Some(OptimizerImpl::Fused));
    // torch.optim.Optimizer.zero_grad: set_to_none default True from PyTorch 2.0.
    assert!(!at(Framework::Pytorch, "1.13").mechanisms.zero_grad_set_to_none);
    assert!(at(Framework::Pytorch, "2.1").mechanisms.zero_grad_set_to_none);
    // The pytorch profile at its default version is memplan's rule before profiles.
    assert_eq!(FrameworkProfile::load(Framework::Pytorch, None).unwrap().mechanisms, Mechanisms::default());
    // Every applied setting says why and where it comes from.
    for f in Framework::ALL {
        for n in FrameworkProfile::load(f, None).unwrap().notes {
            assert!(n.source.contains('/') || n.source.contains('.'), "{f}: {n:?}");
        }
    }
}

#[test]
fn a_serving_table_passes_through_and_unknown_fields_are_refused() {
    let text = r#"
name = "vllm"
package = "vllm"
default_version = "0.8"
oldest_version = "0.2"
description = "x"
[serving]
gpu_memory_utilization = 0.9
"#;
    let p = FrameworkProfile::from_toml(Framework::Vllm, Path::new("vllm.toml"), text, None).unwrap();
    assert_eq!(p.serving.unwrap()["gpu_memory_utilization"].as_float(), Some(0.9));
    let bad = text.replace("[serving]", "[settings]\nlogitz = []\n[serving]");
    let e = FrameworkProfile::from_toml(Framework::Vllm, Path::new("vllm.toml"), &bad, None).unwrap_err();
    assert!(e.to_string().contains("logitz"), "{e}");
    let no_source = text.replace(
        "[serving]",
        "[[settings.zero_grad_set_to_none]]\nvalue = true\nwhy = \"x\"\nsource = \"\"\n[serving]",
    );
    let e = FrameworkProfile::from_toml(Framework::Vllm, Path::new("vllm.toml"), &no_source, None).unwrap_err();
    assert!(e.to_string().contains("zero_grad_set_to_none"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Buffers and gradients.

#[test]
fn deepspeed_allocates_its_whole_reduce_bucket() {
    // deepspeed/runtime/zero/stage_1_and_2.py: setup_buckets, torch.empty(int(self.reduce_bucket_size),
    // dtype=self.dtype) whatever the model size (config.py: reduce_bucket_size 5e8), one buffer
    // unless overlap_comm. For gpt2 (124M parameters) that is 5e8 bf16 elements = 1e9 bytes.
    let args = ["estimate", "--model", "gpt2", "--dp", "8", "--zero", "2", "--seq", "128"];
    let (_, plain, _) = memplan(&args);
    let (code, ds, err) = memplan(&[&args[..], &["--framework", "deepspeed"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(ds["framework"]["name"], "deepspeed");
    // DeepSpeed's step upcasts the flat bf16 gradient partition to fp32 and runs FusedAdam:
    // 4 · ceil(P / 8) bytes instead of torch's foreach temporary.
    let p = ds["per_gpu"]["rank_parameters"].as_u64().unwrap();
    assert_eq!(ds["per_gpu"]["optimizer_step_temporary_bytes"].as_u64().unwrap(), 4 * p.div_ceil(8));
    // The bucket is alive through backward: where both peak in backward, DeepSpeed's whole
    // bucket replaces memplan's generic one (the stage's 2 · P bytes of bf16 gradients at most).
    assert_eq!(ds["peak"]["point"], "backward", "{}", ds["peak"]);
    assert_eq!(plain["peak"]["point"], "backward", "{}", plain["peak"]);
    let t = |v: &Value| v["peak"]["alive"]["temporaries"].as_u64().unwrap();
    assert_eq!(t(&ds) - t(&plain), 1_000_000_000 - 2 * p);
}

#[test]
fn fsdp2_under_pipelining_keeps_unsharded_fp32_gradients_as_measured() {
    // scripts/measure_frameworks.py: fully_shard with MixedPrecisionPolicy(param bf16, reduce
    // fp32), 2 ranks, gradient sync off: rank 0 holds 4 bytes for every parameter of the model
    // (unsharded, fp32) after one backward.
    let r = measured("fsdp2_nosync_bf16_param_fp32_reduce");
    let per_param = r["unsharded_grad_bytes"].as_u64().unwrap() / r["params"].as_u64().unwrap();
    assert_eq!(per_param, 4);
    let args = ["estimate", "--model", "llama-2-7b", "--dp", "4", "--pp", "2", "--fsdp", "full", "--microbatches", "8"];
    let (_, plain, _) = memplan(&args);
    let (code, tt, err) = memplan(&[&args[..], &["--framework", "torchtitan", "--precision", "mixed-bf16"]].concat());
    assert_eq!(code, 0, "{err}");
    for (a, b) in plain["stages"].as_array().unwrap().iter().zip(tt["stages"].as_array().unwrap()) {
        let params = b["parameters"].as_u64().unwrap();
        // Beside them, FSDP2's sharded gradients are the fp32 reduce-scatter outputs (4 bytes
        // per parameter over the 4 shards) where plain FSDP keeps 16-bit ones.
        let sharded = b["gradients_bytes"].as_u64().unwrap() - per_param * params;
        assert_eq!(sharded, 4 * params.div_ceil(4));
        assert_eq!(a["gradients_bytes"].as_u64().unwrap(), 2 * params.div_ceil(4));
    }
}

#[test]
fn zero_grad_without_set_to_none_keeps_gradients_through_forward() {
    // torch/optim/optimizer.py before 2.0: zero_grad(set_to_none=False) zeroes in place, so the
    // gradients (4 bytes per parameter in fp32) are alive at the end of the next forward.
    let args = ["estimate", "--model", "gpt2", "--precision", "fp32", "--batch", "8", "--seq", "1024"];
    let (_, new, _) = memplan(&[&args[..], &["--framework-version", "2.1"]].concat());
    let (_, old, _) = memplan(&[&args[..], &["--framework-version", "1.13"]].concat());
    let grads = old["per_gpu"]["gradients_bytes"].as_u64().unwrap();
    assert_eq!(grads, 4 * 124_439_808);
    let alive = |v: &Value| v["peak"]["alive"]["gradients"].as_u64().unwrap();
    assert_eq!(alive(&old), grads);
    assert!(alive(&new) < grads);
}

// ---------------------------------------------------------------------------------------------
// GPU runtime facts.

#[test]
fn gpu_runtime_tables_state_what_pytorch_sees() {
    use memplan::hw::GpuSpec;
    let gib = |g: &GpuSpec| g.usable_bytes() as f64 / (1u64 << 30) as f64;
    // PyTorch's OOM message on an A100 80GB: "GPU 0 has a total capacity of 79.15 GiB".
    assert_eq!(format!("{:.2}", gib(&GpuSpec::preset("a100-80gb").unwrap())), "79.15");
    // ... on a Tesla V100-SXM2-32GB: "a total capacity of 31.74 GiB".
    assert_eq!(format!("{:.2}", gib(&GpuSpec::preset("v100-32gb").unwrap())), "31.74");
    // aten/src/ATen/cuda/CublasHandlePool.cpp parseChosenWorkspaceSize: sm90 4096 KiB × 8,
    // otherwise ":4096:2:16:8" = 2·4096 KiB + 8·16 KiB.
    let ws = |n: &str| GpuSpec::preset(n).unwrap().runtime.unwrap().cublas_workspace_bytes;
    assert_eq!(ws("h100-sxm"), 4096 * 1024 * 8);
    assert_eq!(ws("a100-80gb"), 4096 * 1024 * 2 + 16 * 1024 * 8);
    for g in GpuSpec::all().unwrap() {
        if let Some(r) = &g.runtime {
            assert!(
                r.total_memory_bytes <= g.memory_bytes,
                "{}: PyTorch never sees more than the vendor states",
                g.name
            );
            assert!(r.total_memory_bytes > g.memory_bytes / 10 * 9, "{}", g.name);
        }
    }
}

#[test]
fn fits_use_each_gpus_runtime_and_nccl_buffers() {
    // NCCL_BUFFSIZE 4 MiB per channel per peer (NCCL environment variables documentation): a dp 8
    // ring has two peers; the h100-sxm preset opens 16 channels: 128 MiB.
    let (code, v, err) = memplan(&[
        "estimate",
        "--model",
        "gpt2",
        "--dp",
        "8",
        "--zero",
        "1",
        "--gpu",
        "h100-sxm",
        "--framework",
        "deepspeed",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["overheads"]["nccl_bytes"].as_u64().unwrap(), 2 * 16 * (4 << 20));
    let f = &v["fits"][0];
    assert_eq!(f["usable_bytes"].as_u64().unwrap(), 81089 << 20);
    assert_eq!(f["total_bytes"], v["per_gpu"]["total_bytes"]);
    // V100 under a profile of the PyTorch 1.x era: the eager-loading context the HF docs measured.
    let (_, old, _) = memplan(&[
        "estimate",
        "--model",
        "gpt2",
        "--gpu",
        "v100-32gb",
        "--framework",
        "hf-trainer",
        "--framework-version",
        "4.21",
    ]);
    assert_eq!(old["overheads"]["cuda_context_bytes"].as_u64().unwrap(), 1343 << 20);
}

// ---------------------------------------------------------------------------------------------
// The command line.

#[test]
fn framework_flags_are_validated_and_reported() {
    let (code, v, err) =
        memplan(&["estimate", "--model", "llama-3-8b", "--framework", "torchtitan", "--recompute", "op"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["framework"]["name"], "torchtitan");
    assert_eq!(v["framework"]["version"], "0.2");
    assert_eq!(v["setup"]["recompute"], "op");
    assert_eq!(v["setup"]["precision"], "mixed-bf16");
    assert!(v["framework"]["settings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["why"].is_string() && n["source"].is_string()));
    let (_, v, _) = memplan(&["estimate", "--model", "gpt2"]);
    assert_eq!(v["framework"]["name"], "pytorch");
    for (args, needle) in [
        (vec!["--framework", "jax"], "torchtitan"),
        (vec!["--framework", "hf-trainer", "--framework-version", "4.x"], "release number"),
        (vec!["--framework", "hf-trainer", "--framework-version", "3.0"], "4.20"),
        (vec!["--framework", "megatron", "--recompute", "op"], "selective"),
        (vec!["--framework", "vllm"], "--phase inference"),
    ] {
        let (code, _, err) = memplan(&[&["estimate", "--model", "gpt2"][..], &args[..]].concat());
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let (code, out, _) = {
        let o = Command::new(env!("CARGO_BIN_EXE_memplan"))
            .args(["estimate", "--model", "gpt2", "--framework", "megatron", "--gpu", "a100-80gb"])
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stdout).to_string(), ())
    };
    assert_eq!(code, Some(0));
    assert!(out.contains("framework: megatron (megatron-core"), "{out}");
    assert!(out.contains("logits = megatron-in-place"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Published figures.

#[test]
fn deepspeed_zero2_matches_its_own_estimator() {
    // deepspeed/runtime/zero/stage_1_and_2.py: estimate_zero2_model_states_mem_needs without
    // offload: gpu_mem = 2 * total_params + int(18 * total_params / total_gpus), "18 =
    // 2_grads_16bit + 4_grads_32bit + 4_params_32bit + 8_optimizer_states_32bit". Under the
    // deepspeed profile the model states at the optimizer step (16-bit weights, sharded 16-bit
    // gradients, fp32 master + moments, and the step's fp32 gradient partition) are that sum.
    let p: u64 = 124_439_808; // gpt2
    let n = 8;
    let (code, v, err) =
        memplan(&["estimate", "--model", "gpt2", "--dp", "8", "--zero", "2", "--framework", "deepspeed"]);
    assert_eq!(code, 0, "{err}");
    let g = &v["per_gpu"];
    let states = ["weights_bytes", "gradients_bytes", "optimizer_states_bytes", "optimizer_step_temporary_bytes"]
        .iter()
        .map(|k| g[*k].as_u64().unwrap())
        .sum::<u64>();
    let deepspeed = 2 * p + 18 * p / n;
    // Above DeepSpeed's int(18·P/N) only by rounding shards up and the 4-byte step counter per
    // parameter tensor that memplan counts for fused Adam (148 tensors over 8 ranks: 74 bytes).
    assert!(states >= deepspeed && states - deepspeed < 128, "{states} vs {deepspeed}");
}

#[test]
fn torchtitan_tensor_parallelism_shards_the_sequence() {
    // torchtitan/parallelisms/parallelize_llama.py apply_tp: attention_norm / ffn_norm are
    // SequenceParallel() and wo / w2 are rowwise_parallel(output_layouts=Shard(1)), so under TP
    // the activations between blocks are split along the sequence: `--sp` is the default.
    let (_, v, _) = memplan(&["estimate", "--model", "llama-3-8b", "--framework", "torchtitan", "--tp", "4"]);
    assert_eq!(v["plan"]["sp"], true);
    let (_, v, _) = memplan(&["estimate", "--model", "llama-3-8b", "--tp", "4"]);
    assert_eq!(v["plan"]["sp"], false, "plain PyTorch/Megatron: --sp is opt-in");
    let (_, v, _) =
        memplan(&["estimate", "--model", "llama-3-8b", "--framework", "torchtitan", "--tp", "4", "--no-sp"]);
    assert_eq!(v["plan"]["sp"], false, "a given --sp wins");
}
