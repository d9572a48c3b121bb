//! What serving frameworks really allocate, so "how many concurrent sequences" matches what the
//! server prints at start-up.
//!
//! **vLLM** sizes its paged KV cache once, at start-up, from a profiled forward pass
//! (`vllm/worker/worker.py::determine_num_available_blocks` in the v0 engine,
//! `vllm/v1/worker/gpu_worker.py::determine_available_memory` in v1):
//!
//! ```text
//! kv_budget = gpu_memory_utilization × total_memory            (torch.cuda.mem_get_info()[1])
//!           − weights                                          (model_runner.model_memory_usage)
//!           − activation peak of the profile run               (torch allocated peak increase)
//!           − non-torch memory gained since init               (NCCL, lazily loaded kernels)
//!           − the CUDA context                  (v1 0.8.0–0.9.1 only: it counted all used memory)
//!           − CUDA-graph memory                  (0.20+, when graphs are captured)
//! blocks    = kv_budget // (block_size × per-token KV bytes × layers on this rank)
//! ```
//!
//! The profile run (`model_runner.profile_run`) pushes `max_num_batched_tokens` tokens split
//! over `min(max_num_seqs, tokens)` prompts through the model without a KV cache, then samples
//! one token per prompt with top-k and top-p on (the sampler sorts the whole vocabulary). No
//! fragmentation margin is put on the KV blocks: the cache is one tensor per layer. The executor
//! takes the minimum over workers; rank 0 (which samples) is the one modelled. Which of these
//! terms apply, and the defaults, come from `presets/frameworks/vllm.toml` `[serving]`, by version.
//!
//! **transformers `generate`**: the prefill peak differs by version in the logits it makes
//! (`presets/frameworks/hf-generate.toml`): before 4.45 every prompt position's logits, upcast to
//! fp32; from 4.45 the last position only ([`GenerateLogits`], applied in `memory::estimate`).

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::framework::Framework;
use crate::model::spec::*;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Releases and the `[serving]` tables.

/// A release such as `0.6.3` or `4.45` (up to four numeric parts; missing parts are zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Release([u32; 4]);

impl Release {
    pub fn parse(text: &str) -> Result<Release> {
        let expected = "a release number such as 0.6.3 or 4.45 (digits separated by dots)";
        let t = text.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let parts: Vec<&str> = t.split('.').collect();
        if t.is_empty() || parts.len() > 4 {
            return Err(Error::invalid("--framework-version", text, expected));
        }
        let mut out = [0u32; 4];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::invalid("--framework-version", text, expected));
            }
            out[i] = p.parse().map_err(|_| Error::invalid("--framework-version", text, expected))?;
        }
        Ok(Release(out))
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.iter().rposition(|p| *p != 0).map_or(2, |i| (i + 1).max(2));
        let parts: Vec<String> = self.0[..n].iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

impl Serialize for Release {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// One versioned value of a `[serving]` table, with why and where it comes from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry<T> {
    pub value: T,
    pub why: String,
    pub source: String,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
}

/// The first entry whose `[since, until)` holds `at`.
fn pick<'a, T>(key: &str, entries: &'a [Entry<T>], at: Release) -> Result<Option<&'a Entry<T>>> {
    for e in entries {
        let since = e.since.as_deref().map(Release::parse).transpose().map_err(|_| bad_table(key))?;
        let until = e.until.as_deref().map(Release::parse).transpose().map_err(|_| bad_table(key))?;
        if since.is_none_or(|s| at >= s) && until.is_none_or(|u| at < u) {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

fn bad_table(key: &str) -> Error {
    Error::invalid("[serving] table", key, "entries with since/until release numbers such as 0.6.5")
}

fn required<'a, T>(key: &str, entries: &'a [Entry<T>], at: Release) -> Result<&'a Entry<T>> {
    pick(key, entries, at)?.ok_or_else(|| {
        Error::invalid("--framework-version", at, format!("a release the profile describes for `{key}`"))
    })
}

/// vLLM's `[serving]` table (`presets/frameworks/vllm.toml`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VllmTable {
    pub engine: String,
    pub gpu_memory_utilization: Vec<Entry<f64>>,
    pub block_size: Vec<Entry<u64>>,
    pub engine_v1: Vec<Entry<bool>>,
    pub budget: Vec<Entry<BudgetRule>>,
    pub cuda_graph_in_budget: Vec<Entry<bool>>,
    pub cuda_graph_modes: Vec<Entry<u64>>,
    pub max_num_seqs: Vec<Entry<u64>>,
    pub large_gpu_max_num_seqs: Vec<Entry<u64>>,
    pub large_gpu_excludes_a100: Vec<Entry<bool>>,
    pub max_num_batched_tokens_serve: Vec<Entry<[u64; 2]>>,
    pub max_num_batched_tokens_llm: Vec<Entry<[u64; 2]>>,
    pub v0_chunked_prefill_tokens: Vec<Entry<u64>>,
    pub sampler_bytes_per_logit: Vec<Entry<u64>>,
    pub non_torch_bytes: Vec<Entry<u64>>,
    pub nccl_bytes_per_communicator: Vec<Entry<u64>>,
    pub nccl_communicators: Vec<Entry<u64>>,
}

/// How a vLLM release measures what is not KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BudgetRule {
    /// v0 before 0.6.5: free memory at init minus free memory after profiling.
    FreeMemoryDelta,
    /// `memory_profiling`: weights + activation-peak increase + non-torch increase.
    Profiled,
    /// v1 0.8.0–0.9.1: torch allocated peak + all other used device memory (the CUDA context too).
    AbsolutePeak,
}

/// transformers `generate`'s `[serving]` table (`presets/frameworks/hf-generate.toml`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateTable {
    pub engine: String,
    pub prefill_logits: Vec<Entry<GenerateLogits>>,
}

/// Which logits the prefill forward of `generate` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum GenerateLogits {
    /// A plain forward pass: every position, in the activation dtype (memplan's default).
    #[default]
    AllPositions,
    /// Every position, and the head's fp32 upcast beside it (transformers < 4.45).
    AllPositionsFp32,
    /// The last position only, upcast to fp32 (transformers ≥ 4.45).
    LastPositionFp32,
}

fn serving_table<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T> {
    let doc: toml::Value = toml::from_str(text).map_err(|e| Error::Parse {
        path: file.into(),
        line: None,
        field: None,
        message: e.message().to_string(),
    })?;
    let table = doc.get("serving").cloned().ok_or_else(|| Error::Parse {
        path: file.into(),
        line: None,
        field: Some("serving".into()),
        message: "missing [serving] table".into(),
    })?;
    table.try_into().map_err(|e: toml::de::Error| Error::Parse {
        path: file.into(),
        line: None,
        field: Some("serving".into()),
        message: e.message().to_string(),
    })
}

/// The built-in vLLM table.
pub fn vllm_table() -> Result<VllmTable> {
    serving_table("presets/frameworks/vllm.toml", include_str!("../../presets/frameworks/vllm.toml"))
}

/// The built-in transformers `generate` table.
pub fn generate_table() -> Result<GenerateTable> {
    serving_table("presets/frameworks/hf-generate.toml", include_str!("../../presets/frameworks/hf-generate.toml"))
}

/// The default release of a serving profile file (its `default_version`).
pub fn default_release(framework: Framework) -> Release {
    let text = match framework {
        Framework::Vllm => include_str!("../../presets/frameworks/vllm.toml"),
        _ => include_str!("../../presets/frameworks/hf-generate.toml"),
    };
    let doc: toml::Value = toml::from_str(text).expect("built-in profile parses (tested)");
    let v = doc.get("default_version").and_then(toml::Value::as_str).expect("default_version (tested)");
    Release::parse(v).expect("default_version is a release (tested)")
}

/// The oldest release a serving profile file describes (its `oldest_version`).
pub fn oldest_release(framework: Framework) -> Release {
    let text = match framework {
        Framework::Vllm => include_str!("../../presets/frameworks/vllm.toml"),
        _ => include_str!("../../presets/frameworks/hf-generate.toml"),
    };
    let doc: toml::Value = toml::from_str(text).expect("built-in profile parses (tested)");
    let v = doc.get("oldest_version").and_then(toml::Value::as_str).expect("oldest_version (tested)");
    Release::parse(v).expect("oldest_version is a release (tested)")
}

/// The logits `generate` makes at `release` of transformers.
pub fn generate_logits(release: Release) -> Result<(GenerateLogits, String)> {
    let t = generate_table()?;
    let e = required("prefill_logits", &t.prefill_logits, release)?;
    Ok((e.value, format!("{} ({})", e.why, e.source)))
}

/// Bytes of logits alive at the end of a prefill forward over `elements` = tokens × vocabulary
/// logits on one rank, `seq` positions per sequence.
pub fn prefill_logits_bytes(mode: GenerateLogits, act: DType, elements: u64, seq: u64) -> u64 {
    // An fp32 model's `.float()` returns the same tensor: no copy.
    let upcast = |n: u64| if act == DType::Fp32 { DType::Fp32.bytes(n) } else { act.bytes(n) + DType::Fp32.bytes(n) };
    match mode {
        GenerateLogits::AllPositions => act.bytes(elements),
        // `logits = logits.float()`: the 16-bit logits and the fp32 copy exist together.
        GenerateLogits::AllPositionsFp32 => upcast(elements),
        GenerateLogits::LastPositionFp32 => upcast(elements / seq.max(1)),
    }
}

/// `generate` passes an attention mask, which transformers turns into a 4-D additive causal
/// mask `batch × 1 × seq × kv_seq` in the model dtype for the SDPA path, alive through every
/// layer of the prefill (4.44.2 models/llama/modeling_llama.py `_update_causal_mask`; 4.45.2
/// `_prepare_4d_causal_attention_mask_with_cache_position`; 5.x masking_utils `sdpa_mask`).
/// With `flash_attention_2` `_update_causal_mask` returns the 2-D mask (or None) instead.
pub fn generate_mask_bytes(setup: &super::Setup, causal: bool, act: DType, batch: u64, seq: u64, kv_seq: u64) -> u64 {
    let four_d = setup.attention != super::AttentionKernel::FlashAttn2;
    if setup.generate_logits.is_some() && causal && !setup.training() && four_d {
        act.bytes(batch * seq * kv_seq)
    } else {
        0
    }
}

// ---------------------------------------------------------------------------------------------
// vLLM.

/// How vLLM was started (`UsageContext`): the defaults differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Entrypoint {
    /// `vllm serve` (the OpenAI-compatible API server).
    #[default]
    Serve,
    /// The offline `LLM` class.
    Llm,
}

/// The settings a user gives vLLM (`None`: vLLM's default for the release and GPU).
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct VllmSettings {
    pub gpu_memory_utilization: Option<f64>,
    pub max_num_batched_tokens: Option<u64>,
    pub max_num_seqs: Option<u64>,
    pub block_size: Option<u64>,
    /// `--enforce-eager`: no CUDA graphs.
    pub enforce_eager: bool,
    pub entrypoint: Entrypoint,
    /// `--max-model-len`: the longest sequence (prompt + output) one request may have.
    pub max_model_len: u64,
}

/// The device as vLLM sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VllmDevice {
    pub name: String,
    /// `torch.cuda.mem_get_info()[1]`: less than the marketed size.
    pub total_memory: u64,
    /// The CUDA context of the process (counted by v1 0.8.0–0.9.1).
    pub cuda_context: u64,
    /// GPUs of the node talk over NVLink (NCCL keeps device buffers per peer channel).
    pub nvlink: bool,
}

/// One term of vLLM's budget, with why and where it comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetLine {
    pub term: String,
    pub bytes: u64,
    pub why: String,
}

/// vLLM's start-up budget on one rank, and what it prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VllmBudget {
    pub version: Release,
    pub engine: &'static str,
    pub rule: BudgetRule,
    pub gpu_memory_utilization: f64,
    pub max_num_batched_tokens: u64,
    pub max_num_seqs: u64,
    pub block_size: u64,
    pub max_model_len: u64,
    pub total_memory: u64,
    /// gpu_memory_utilization × total_memory.
    pub usable: u64,
    /// What is subtracted, term by term (weights, activations, non-torch, context, CUDA graphs).
    pub lines: Vec<BudgetLine>,
    /// Bytes left for the KV cache (negative: vLLM refuses to start).
    pub kv_budget: i128,
    /// One block: block_size tokens of K and V for every layer on this rank.
    pub block_bytes: u64,
    /// `# GPU blocks` (v0) / `GPU KV cache size: blocks × block_size tokens` (v1).
    pub num_gpu_blocks: u64,
    pub kv_tokens: u64,
    /// "Maximum concurrency for max_model_len tokens per request".
    pub max_concurrency: f64,
}

/// Per-token KV bytes of one rank (all its attention layers), as vLLM pages them: K and V of the
/// rank's KV heads (a head is replicated when kv_heads < tp), or MLA's latent + rotary key.
pub fn kv_bytes_per_token(model: &ModelSpec, tp: u64, kv_dtype: DType) -> u64 {
    model
        .stacks
        .iter()
        .filter(|s| s.causal)
        .map(|s| {
            let a = &s.layer.attention;
            // vllm/config ModelConfig.get_num_kv_heads: max(1, total_kv_heads // tp).
            let kv = (a.kv_heads() / tp.max(1)).max(1);
            let per_layer = match &a.mla {
                // vllm/v1/kv_cache_interface.py MLAAttentionSpec.page_size_bytes: one head, no 2×.
                Some(m) => m.cache_per_token(),
                None => 2 * kv * a.head_dim(s.layer.hidden),
            };
            s.layers * kv_dtype.bytes(per_layer)
        })
        .sum()
}

/// Peak bytes of one layer's forward over `t` tokens on one rank, as vLLM's model code runs it
/// without a KV cache (`vllm/model_executor/models/llama.py` LlamaDecoderLayer, LlamaAttention,
/// LlamaMLP): the residual and the normed input stay alive through each sublayer (the fused
/// add-RMSNorm works in place); attention holds the fused QKV output, the attention output and
/// the o_proj output; the MLP holds the merged gate_up output, the activation output and the
/// down_proj output. MoE (`fused_moe`) holds its three intermediate caches of t·top_k rows.
pub fn layer_forward_bytes(layer: &Layer, t: u64, tp: u64, act: DType) -> u64 {
    let h = layer.hidden;
    let a = &layer.attention;
    let heads = a.heads.div_ceil(tp.max(1));
    let kv = (a.kv_heads() / tp.max(1)).max(1);
    let hd = a.head_dim(h);
    let attention = match &a.mla {
        Some(m) => {
            let qk = m.nope_head_dim + m.rope_head_dim;
            // q, the compressed kv + rope key, the expanded k/v, the attention output.
            heads * qk
                + m.kv_lora_rank
                + m.rope_head_dim
                + heads * (m.nope_head_dim + m.v_head_dim)
                + heads * m.v_head_dim
        }
        None => (heads + 2 * kv) * hd + heads * hd,
    } + h;
    let m = &layer.mlp;
    let f = m.ffn.div_ceil(tp.max(1));
    let dense = |width: u64| if m.gated { 3 * width } else { 2 * width };
    let mlp = if m.experts > 1 {
        // fused_moe: intermediate_cache1 [t·k, 2f], cache2 [t·k, f], cache3 [t·k, h], router logits.
        let shared = if m.shared_ffn > 0 { dense(m.shared_ffn.div_ceil(tp.max(1))) } else { 0 };
        m.top_k * (dense(f) + h) + m.experts + shared + h
    } else {
        dense(f) + h
    };
    act.bytes(t * (2 * h + attention.max(mlp)))
}

/// The profile run's forward peak: the largest layer's working set (the embedding output is the
/// first residual).
pub fn forward_peak_bytes(model: &ModelSpec, t: u64, tp: u64, act: DType) -> u64 {
    model.stacks.iter().map(|s| layer_forward_bytes(&s.layer, t, tp, act)).max().unwrap_or(0)
}

/// Resolve vLLM's defaults for `version` on `device` and compute its KV budget and block count.
/// `weights` are the bytes one rank loads (quantized where asked); `tp` the tensor-parallel size.
#[allow(clippy::too_many_arguments)]
pub fn vllm_budget(
    model: &ModelSpec,
    weights: u64,
    tp: u64,
    act: DType,
    kv_dtype: DType,
    device: &VllmDevice,
    settings: &VllmSettings,
    version: Release,
) -> Result<VllmBudget> {
    let t = vllm_table()?;
    let v1 = required("engine_v1", &t.engine_v1, version)?.value;
    let util_entry = required("gpu_memory_utilization", &t.gpu_memory_utilization, version)?;
    let util = settings.gpu_memory_utilization.unwrap_or(util_entry.value);
    if !(util.is_finite() && util > 0.0 && util <= 1.0) {
        return Err(Error::invalid("--gpu-memory-utilization", util, "a fraction in (0, 1], e.g. 0.9"));
    }
    let block_size = settings.block_size.unwrap_or(required("block_size", &t.block_size, version)?.value);
    if block_size == 0 {
        return Err(Error::invalid("--block-size", 0, "a positive number of tokens (vLLM: 16)"));
    }
    if settings.max_model_len == 0 {
        return Err(Error::invalid("--context", 0, "a positive number of tokens"));
    }
    // v1 defaults by GPU size (vllm/engine/arg_utils.py _set_default_args_v1).
    let excludes_a100 = pick("large_gpu_excludes_a100", &t.large_gpu_excludes_a100, version)?.is_some_and(|e| e.value);
    let large =
        device.total_memory >= 70 << 30 && !(excludes_a100 && device.name.to_ascii_lowercase().contains("a100"));
    let max_num_seqs = match settings.max_num_seqs {
        Some(n) => n,
        None if v1 && large => required("large_gpu_max_num_seqs", &t.large_gpu_max_num_seqs, version)?.value,
        None => required("max_num_seqs", &t.max_num_seqs, version)?.value,
    };
    let max_num_batched_tokens = match settings.max_num_batched_tokens {
        Some(n) => n,
        None if v1 => {
            let table = match settings.entrypoint {
                Entrypoint::Serve => &t.max_num_batched_tokens_serve,
                Entrypoint::Llm => &t.max_num_batched_tokens_llm,
            };
            required("max_num_batched_tokens", table, version)?.value[usize::from(large)]
        }
        // v0 (vllm/config.py SchedulerConfig): chunked prefill is on by default past 32K.
        None if settings.max_model_len > 32768 => {
            required("v0_chunked_prefill_tokens", &t.v0_chunked_prefill_tokens, version)?.value
        }
        None => settings.max_model_len.max(2048),
    };
    if max_num_seqs == 0 || max_num_batched_tokens == 0 {
        return Err(Error::invalid("--max-num-seqs/--max-num-batched-tokens", 0, "positive numbers"));
    }
    let rule = required("budget", &t.budget, version)?.value;
    let usable = (device.total_memory as f64 * util) as u64;

    // Profile run: forward over max_num_batched_tokens tokens, then the sampler over one row
    // per prompt (v0 model_runner.profile_run; v1 gpu_model_runner.profile_run/_dummy_sampler_run).
    let tokens = max_num_batched_tokens;
    let requests = max_num_seqs.min(tokens);
    let forward = forward_peak_bytes(model, tokens, tp, act);
    let h = model.max_hidden();
    // Logits are gathered over tp before sampling: the full vocabulary on the sampling rank.
    let vocab_padded = model.vocab().div_ceil(64) * 64; // VocabParallelEmbedding pads to 64
    let sampler_entry = required("sampler_bytes_per_logit", &t.sampler_bytes_per_logit, version)?;
    let sampler = requests * vocab_padded * sampler_entry.value + act.bytes(tokens * h + requests * h);
    let activation = forward.max(sampler);

    let non_torch_entry = required("non_torch_bytes", &t.non_torch_bytes, version)?;
    let mut non_torch = non_torch_entry.value;
    let mut nccl_why = String::new();
    if tp > 1 && device.nvlink {
        let per = required("nccl_bytes_per_communicator", &t.nccl_bytes_per_communicator, version)?;
        let n = required("nccl_communicators", &t.nccl_communicators, version)?;
        non_torch += per.value * n.value.max(1);
        nccl_why = format!("; NCCL: {} communicators × {} ({})", n.value, mib(per.value), per.source);
    }

    let mut lines = vec![
        BudgetLine { term: "weights".into(), bytes: weights, why: "model_runner.model_memory_usage".into() },
        BudgetLine {
            term: "activation peak".into(),
            bytes: activation,
            why: format!(
                "profile run: forward over {tokens} tokens ({}) vs sampler over {requests} × {vocab_padded} logits at {} B each ({})",
                mib(forward),
                sampler_entry.value,
                sampler_entry.source
            ),
        },
        BudgetLine {
            term: "non-torch memory".into(),
            bytes: non_torch,
            why: format!("{}{nccl_why}", non_torch_entry.why),
        },
    ];
    if rule == BudgetRule::AbsolutePeak {
        lines.push(BudgetLine {
            term: "CUDA context".into(),
            bytes: device.cuda_context,
            why: "v1 0.8.0–0.9.1 counted every byte torch had not allocated (vllm/v1/worker/gpu_worker.py determine_available_memory)".into(),
        });
    }
    let graphs = !settings.enforce_eager
        && pick("cuda_graph_in_budget", &t.cuda_graph_in_budget, version)?.is_some_and(|e| e.value);
    if graphs {
        // gpu_model_runner.profile_cudagraph_memory: the first (largest) capture holds the
        // graph pool of a forward at the largest capture size; each further size adds at least
        // 1 MiB, per CUDA-graph mode. Sizes: [1, 2, 4] + 8..256 step 8 + 256..=max step 16, max
        // = min(2 · max_num_seqs, 512, max_num_batched_tokens) (vllm/config/vllm.py _set_cudagraph_sizes).
        let largest = (2 * max_num_seqs).min(512).min(max_num_batched_tokens);
        let sizes = capture_sizes(largest);
        let modes = required("cuda_graph_modes", &t.cuda_graph_modes, version)?.value;
        let bytes = forward_peak_bytes(model, largest, tp, act) + modes * sizes.saturating_sub(1) * (1 << 20);
        lines.push(BudgetLine {
            term: "CUDA graphs".into(),
            bytes,
            why: format!("{sizes} capture sizes up to {largest} tokens, {modes} modes (profile_cudagraph_memory)"),
        });
    }
    let subtracted: u64 = lines.iter().map(|l| l.bytes).sum();
    let kv_budget = usable as i128 - subtracted as i128;
    let block_bytes = block_size * kv_bytes_per_token(model, tp, kv_dtype);
    if block_bytes == 0 {
        return Err(Error::conflict(
            format!("model `{}` has no causal attention layers to cache", model.name),
            "vLLM's KV budget applies to decoder models",
        ));
    }
    let num_gpu_blocks = if kv_budget > 0 { (kv_budget as u128 / block_bytes as u128) as u64 } else { 0 };
    let kv_tokens = num_gpu_blocks * block_size;
    // v1 kv_cache_utils.get_max_concurrency_for_kv_cache_config: blocks / cdiv(len, block);
    // v0 executor_base: blocks × block_size / max_model_len.
    let max_concurrency = if v1 {
        num_gpu_blocks as f64 / settings.max_model_len.div_ceil(block_size) as f64
    } else {
        kv_tokens as f64 / settings.max_model_len as f64
    };
    Ok(VllmBudget {
        version,
        engine: if v1 { "v1" } else { "v0" },
        rule,
        gpu_memory_utilization: util,
        max_num_batched_tokens,
        max_num_seqs,
        block_size,
        max_model_len: settings.max_model_len,
        total_memory: device.total_memory,
        usable,
        lines,
        kv_budget,
        block_bytes,
        num_gpu_blocks,
        kv_tokens,
        max_concurrency,
    })
}

/// How many CUDA-graph batch sizes vLLM captures up to `largest`.
pub fn capture_sizes(largest: u64) -> u64 {
    let mut sizes = vec![1u64, 2, 4];
    sizes.extend((8..256).step_by(8));
    sizes.extend((256..=largest.max(256)).step_by(16));
    sizes.iter().filter(|s| **s <= largest).count() as u64
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1048576.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_order_and_print() {
        assert!(Release::parse("0.6.5").unwrap() > Release::parse("0.6.4").unwrap());
        assert!(Release::parse("0.10").unwrap() > Release::parse("0.9.2").unwrap());
        assert_eq!(Release::parse("v4.45").unwrap().to_string(), "4.45");
        assert_eq!(Release::parse("0.10.1.1").unwrap().to_string(), "0.10.1.1");
        for bad in ["", "a.b", "1..2", "1.2.3.4.5", "123456"] {
            assert!(Release::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn built_in_tables_parse_and_cover_every_release() {
        let t = vllm_table().unwrap();
        assert_eq!(t.engine, "vllm");
        for v in ["0.5.0", "0.6.3", "0.6.5", "0.7.3", "0.8.5", "0.9.2", "0.11.0", "0.20.0", "0.33.0"] {
            let r = Release::parse(v).unwrap();
            assert!(pick("budget", &t.budget, r).unwrap().is_some(), "{v}");
            assert!(pick("sampler", &t.sampler_bytes_per_logit, r).unwrap().is_some(), "{v}");
        }
        assert!(generate_logits(Release::parse("4.44.2").unwrap()).is_ok());
        assert_eq!(default_release(Framework::Vllm).to_string(), "0.11");
        assert!(oldest_release(Framework::HfGenerate) < default_release(Framework::HfGenerate));
    }

    #[test]
    fn capture_sizes_follow_vllm_defaults() {
        // [1, 2, 4] + 8..248 (31) + 256..512 step 16 (17) = 51 sizes for max 512.
        assert_eq!(capture_sizes(512), 51);
        assert_eq!(capture_sizes(4), 3);
        assert_eq!(capture_sizes(256), 35);
    }
}
