//! Parameter-efficient fine-tuning and weight quantization: which parameters train, how many
//! adapter parameters LoRA adds (Hu et al. 2021: r·(d_in + d_out) per adapted matrix), and how
//! many bytes quantized weights take (QLoRA, Dettmers et al. 2023 §3: NF4 with block 64 and an
//! fp32 absmax costs 32/64 = 0.5 extra bits per parameter; double quantization 8/64 + 32/(64·256)
//! = 0.127 bits).

use crate::dtype::DType;
use crate::model::params;
use crate::model::spec::{Layer, ModelSpec};
use serde::{Deserialize, Serialize};

/// Projections a LoRA adapter can target (Hugging Face PEFT names them by module; memplan by role).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoraTargets {
    pub q: bool,
    pub k: bool,
    pub v: bool,
    pub o: bool,
    pub gate: bool,
    pub up: bool,
    pub down: bool,
}

impl LoraTargets {
    /// The default: the attention projections.
    pub fn attention() -> Self {
        LoraTargets { q: true, k: true, v: true, o: true, ..LoraTargets::default() }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut t = LoraTargets::default();
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "q" => t.q = true,
                "k" => t.k = true,
                "v" => t.v = true,
                "o" => t.o = true,
                "gate" => t.gate = true,
                "up" => t.up = true,
                "down" => t.down = true,
                "all" | "all-linear" => {
                    t = LoraTargets { q: true, k: true, v: true, o: true, gate: true, up: true, down: true }
                }
                other => return Err(format!("unknown LoRA target `{other}` (q, k, v, o, gate, up, down, all)")),
            }
        }
        if t == LoraTargets::default() {
            return Err("no LoRA target given (q, k, v, o, gate, up, down)".into());
        }
        Ok(t)
    }

    pub fn qkv(&self) -> bool {
        self.q || self.k || self.v
    }

    pub fn names(&self) -> String {
        let all = [
            ("q", self.q),
            ("k", self.k),
            ("v", self.v),
            ("o", self.o),
            ("gate", self.gate),
            ("up", self.up),
            ("down", self.down),
        ];
        all.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect::<Vec<_>>().join(",")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub rank: u64,
    /// Accepted for completeness: the scaling α/r changes no memory.
    pub alpha: f64,
    pub targets: LoraTargets,
    /// PEFT's `lora_dropout`: a dropped copy of each adapted input when > 0.
    pub dropout: f64,
    /// Adapter weights, gradients and optimizer states dtype (PEFT keeps adapters in fp32 by default).
    pub adapter_dtype: DType,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum Finetune {
    /// Every parameter trains.
    #[default]
    Full,
    /// Frozen base weights in the compute dtype, trainable low-rank adapters.
    Lora(LoraConfig),
    /// Frozen NF4 base weights (QLoRA), trainable adapters; `paged` moves optimizer states to
    /// paged host memory.
    Qlora { lora: LoraConfig, double_quant: bool, paged_optimizer: bool },
}

impl Finetune {
    pub fn lora(&self) -> Option<&LoraConfig> {
        match self {
            Finetune::Full => None,
            Finetune::Lora(l) | Finetune::Qlora { lora: l, .. } => Some(l),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Finetune::Full => "full",
            Finetune::Lora(_) => "lora",
            Finetune::Qlora { .. } => "qlora",
        }
    }
}

/// Weight quantization for inference (and QLoRA's base weights).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightFormat {
    Int8,
    Int4,
    Nf4,
    Fp8,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightQuant {
    pub format: WeightFormat,
    /// Values sharing one scale (0 = one scale per output channel).
    pub group_size: u64,
    pub scale_dtype: DType,
    /// NF4 double quantization: 8-bit absmax with an fp32 scale per 256 blocks.
    pub double_quant: bool,
}

impl WeightQuant {
    pub fn default_for(format: WeightFormat) -> WeightQuant {
        match format {
            // LLM.int8 / per-channel int8: one fp16 scale per output row.
            WeightFormat::Int8 => WeightQuant { format, group_size: 0, scale_dtype: DType::Fp16, double_quant: false },
            // GPTQ/AWQ: groups of 128 with an fp16 scale and a 4-bit zero point.
            WeightFormat::Int4 => {
                WeightQuant { format, group_size: 128, scale_dtype: DType::Fp16, double_quant: false }
            }
            // bitsandbytes NF4: blocks of 64 with an fp32 absmax.
            WeightFormat::Nf4 => WeightQuant { format, group_size: 64, scale_dtype: DType::Fp32, double_quant: false },
            // FP8 with one fp32 scale per tensor.
            WeightFormat::Fp8 => {
                WeightQuant { format, group_size: u64::MAX, scale_dtype: DType::Fp32, double_quant: false }
            }
        }
    }

    /// Bytes of `elements` weights of `rows` output rows in this format, scales included.
    pub fn bytes(&self, elements: u64, rows: u64) -> u64 {
        let value_bits: u64 = match self.format {
            WeightFormat::Int8 | WeightFormat::Fp8 => 8,
            WeightFormat::Int4 | WeightFormat::Nf4 => 4,
        };
        let groups = match self.group_size {
            0 => rows.max(1),
            u64::MAX => 1,
            g => elements.div_ceil(g),
        };
        let scale_bits = if self.format == WeightFormat::Nf4 && self.double_quant {
            // 8-bit absmax per block plus an fp32 constant per 256 blocks (QLoRA §3).
            groups * 8 + groups.div_ceil(256) * 32
        } else {
            groups * self.scale_dtype.bits()
        };
        // Asymmetric int4 (GPTQ/AWQ) stores a packed 4-bit zero point per group.
        let zero_bits = if self.format == WeightFormat::Int4 { groups * 4 } else { 0 };
        (elements * value_bits + scale_bits + zero_bits).div_ceil(8)
    }
}

/// The weight matrices of one layer, as (rows_out, elements) per matrix, all experts included:
/// what LoRA adapts and what quantization libraries quantize (norms and biases stay).
pub fn layer_matrices(layer: &Layer) -> Vec<(&'static str, u64, u64)> {
    let h = layer.hidden;
    let a = &layer.attention;
    let hd = a.head_dim(h);
    let (q, kv) = (a.heads * hd, a.kv_heads() * hd);
    let mut m = Vec::new();
    let attn_copies = 1 + u64::from(layer.cross_attention);
    for _ in 0..attn_copies {
        if let Some(mla) = &a.mla {
            let qk = mla.nope_head_dim + mla.rope_head_dim;
            match mla.q_lora_rank {
                Some(r) => {
                    m.push(("q_a", r, h * r));
                    m.push(("q", a.heads * qk, r * a.heads * qk));
                }
                None => m.push(("q", a.heads * qk, h * a.heads * qk)),
            }
            m.push(("kv_a", mla.kv_lora_rank + mla.rope_head_dim, h * (mla.kv_lora_rank + mla.rope_head_dim)));
            let kv_b = a.heads * (mla.nope_head_dim + mla.v_head_dim);
            m.push(("kv_b", kv_b, mla.kv_lora_rank * kv_b));
            m.push(("o", h, a.heads * mla.v_head_dim * h));
            continue;
        }
        if a.fused_qkv {
            m.push(("qkv", q + 2 * kv, h * (q + 2 * kv)));
        } else {
            m.push(("q", q, h * q));
            m.push(("k", kv, h * kv));
            m.push(("v", kv, h * kv));
        }
        m.push(("o", h, q * h));
    }
    let f = layer.mlp.ffn;
    if layer.mlp.shared_ffn > 0 {
        let sf = layer.mlp.shared_ffn;
        m.push(("gate", sf, h * sf));
        m.push(("up", sf, h * sf));
        m.push(("down", h, sf * h));
    }
    if layer.mlp.experts > 1 {
        m.push(("router", layer.mlp.experts, h * layer.mlp.experts));
    }
    for _ in 0..layer.mlp.experts {
        if layer.mlp.gated {
            m.push(("gate", f, h * f));
        }
        m.push(("up", f, h * f));
        m.push(("down", h, f * h));
    }
    m
}

/// Parameters in the layer matrices of the whole model (the part quantization applies to).
pub fn matrix_params(model: &ModelSpec) -> u64 {
    model
        .stacks
        .iter()
        .map(|s| {
            layer_matrices(&s.layer).iter().map(|(_, _, e)| e).sum::<u64>() * if s.shared_layers { 1 } else { s.layers }
        })
        .sum()
}

/// Bytes of all quantized layer matrices of the model.
pub fn quantized_matrix_bytes(model: &ModelSpec, q: &WeightQuant) -> u64 {
    model
        .stacks
        .iter()
        .map(|s| {
            let per_layer: u64 = layer_matrices(&s.layer).iter().map(|(_, rows, e)| q.bytes(*e, *rows)).sum();
            per_layer * if s.shared_layers { 1 } else { s.layers }
        })
        .sum()
}

/// Whether a target applies to this layer (and to which matrix name).
pub fn targeted(t: &LoraTargets, name: &str) -> bool {
    match name {
        "qkv" => t.qkv(),
        "q" => t.q,
        "k" => t.k,
        "v" => t.v,
        // MLA: the latent's projections carry the keys and values.
        "kv_a" | "kv_b" => t.k || t.v,
        "o" => t.o,
        "gate" => t.gate,
        "up" => t.up,
        "down" => t.down,
        _ => false,
    }
}

/// LoRA parameters of one layer: r·(d_in + d_out) for every adapted matrix (a fused QKV
/// projection is one matrix, as PEFT adapts GPT-2's `c_attn`).
pub fn lora_layer_params(layer: &Layer, lora: &LoraConfig) -> u64 {
    layer_matrices(layer)
        .iter()
        .filter(|(name, _, _)| targeted(&lora.targets, name))
        .map(|(_, rows, elements)| lora.rank * (elements / rows + rows))
        .sum()
}

/// All adapter parameters of the model.
pub fn lora_params(model: &ModelSpec, lora: &LoraConfig) -> u64 {
    model.stacks.iter().map(|s| lora_layer_params(&s.layer, lora) * if s.shared_layers { 1 } else { s.layers }).sum()
}

/// Checks a LoRA configuration against the model: targets it has, a rank no larger than any
/// adapted matrix.
pub fn validate_lora(model: &ModelSpec, lora: &LoraConfig) -> Result<(), (String, String)> {
    if lora.rank == 0 {
        return Err(("LoRA rank 0".into(), "use a rank of at least 1 (PEFT's default is 8)".into()));
    }
    let t = &lora.targets;
    for s in &model.stacks {
        let names: Vec<&str> = layer_matrices(&s.layer).iter().map(|(n, _, _)| *n).collect();
        let has = |n: &str| {
            names.contains(&n)
                || (names.contains(&"qkv") && matches!(n, "q" | "k" | "v"))
                || (names.contains(&"kv_b") && matches!(n, "k" | "v"))
        };
        let valid: Vec<&str> = ["q", "k", "v", "o", "gate", "up", "down"].into_iter().filter(|n| has(n)).collect();
        for (name, on) in
            [("gate", t.gate), ("up", t.up), ("down", t.down), ("q", t.q), ("k", t.k), ("v", t.v), ("o", t.o)]
        {
            if on && !has(name) {
                return Err((
                    format!("model `{}` has no `{name}` projection to adapt", model.name),
                    format!("valid LoRA targets: {}", valid.join(",")),
                ));
            }
        }
        for (name, rows, elements) in layer_matrices(&s.layer) {
            let smallest = rows.min(elements / rows);
            if targeted(t, name) && lora.rank > smallest {
                return Err((
                    format!(
                        "LoRA rank {} is larger than the {name} matrix of stack `{}` ({} × {})",
                        lora.rank,
                        s.name,
                        elements / rows,
                        rows
                    ),
                    format!("use a rank of at most {smallest}"),
                ));
            }
        }
    }
    if !(0.0..1.0).contains(&lora.dropout) {
        return Err((format!("LoRA dropout {}", lora.dropout), "a probability in [0, 1)".into()));
    }
    Ok(())
}

/// The total trainable parameters under `finetune` (all of them for full fine-tuning).
pub fn trainable_params(model: &ModelSpec, finetune: &Finetune) -> u64 {
    match finetune.lora() {
        None => params::count(model),
        Some(l) => lora_params(model, l),
    }
}
