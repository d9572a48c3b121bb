//! Property tests over the whole input space of model files and Hugging Face configs: sizes are
//! drawn from all of `u64` (edges, powers of two around the bounds, anything), never from a small
//! range. For every input the parser must not panic; it must accept exactly the models whose
//! sizes are within `model::validate::limits` and consistent; and for an accepted model the
//! parameter count must equal a recomputation in `u128` from the architecture's own formula
//! (written here by hand, independently of `model::params`), so that no count is ever wrapped.

use memplan::model::validate::limits;
use memplan::model::{hf, params, user_presets};
use proptest::prelude::*;
use std::path::Path;

/// Any `u64`, weighted toward the values that break arithmetic: 0, 1, powers of two and their
/// neighbours (the bounds are powers of two), 2^53 (the last exact f64 integer) and u64::MAX.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 1u64..2048,
        2 => any::<u64>(),
        2 => (0u32..64).prop_map(|b| 1u64 << b),
        1 => (1u32..64).prop_map(|b| (1u64 << b) - 1),
        1 => (0u32..63).prop_map(|b| (1u64 << b) + 1),
        1 => prop_oneof![Just(0u64), Just(9_007_199_254_740_992), Just(u64::MAX), Just(i64::MAX as u64)],
    ]
}

/// A value in `1..=2^max_bits`, spread over the whole range (as many huge values as small ones).
fn up_to(max_bits: u32) -> impl Strategy<Value = u64> {
    (0..=max_bits).prop_flat_map(|b| (1u64 << b.saturating_sub(1))..=(1u64 << b))
}

#[derive(Clone, Debug)]
struct Decoder {
    vocab: u64,
    positions: u64,
    layers: u64,
    hidden: u64,
    heads: u64,
    kv_heads: u64,
    ffn: u64,
    experts: u64,
    top_k: u64,
    gated: bool,
    bias: bool,
}

/// A decoder that is valid-looking across the whole legal range (heads dividing the hidden size,
/// sizes up to and around the bounds), then zero to three fields replaced by any `u64`.
fn decoder() -> impl Strategy<Value = Decoder> {
    (
        (up_to(24), 0u64..=1 << 24, up_to(14), 0u32..=16, up_to(10), 0u32..=6),
        (up_to(24), up_to(8), 0u64..=8, any::<bool>(), any::<bool>()),
        prop::collection::vec((0usize..9, size()), 0..=3),
    )
        .prop_map(
            |((vocab, positions, layers, head_bits, head_dim, kv_shift), (ffn, experts, k, gated, bias), muts)| {
                let heads = 1u64 << head_bits;
                let mut m = Decoder {
                    vocab,
                    positions,
                    layers,
                    hidden: heads * head_dim,
                    heads,
                    kv_heads: (heads >> kv_shift).max(1),
                    ffn,
                    experts,
                    top_k: k.clamp(1, experts),
                    gated,
                    bias,
                };
                for (field, v) in muts {
                    *[
                        &mut m.vocab,
                        &mut m.positions,
                        &mut m.layers,
                        &mut m.hidden,
                        &mut m.heads,
                        &mut m.kv_heads,
                        &mut m.ffn,
                        &mut m.experts,
                        &mut m.top_k,
                    ][field] = v;
                }
                m
            },
        )
}

impl Decoder {
    fn toml(&self) -> String {
        format!(
            r#"name = "fuzz"
architecture = "decoder"
[tokens]
vocab = {vocab}
dim = {hidden}
[[stacks]]
name = "decoder"
causal = true
input = {{ kind = "tokens" }}
positions = {{ kind = "learned", max = {positions} }}
layers = {layers}
final_norm = {{ kind = "layer-norm" }}
[stacks.layer]
hidden = {hidden}
attention = {{ heads = {heads}, kv_heads = {kv_heads}, q_bias = {bias}, k_bias = {bias}, v_bias = {bias}, o_bias = {bias} }}
mlp = {{ ffn = {ffn}, gated = {gated}, bias = {bias}, activation = "gelu", experts = {experts}, top_k = {top_k} }}
norm = {{ kind = "layer-norm" }}
norm_placement = "pre"
[head.lm_head]
tied = true
"#,
            vocab = self.vocab,
            hidden = self.hidden,
            positions = self.positions,
            layers = self.layers,
            heads = self.heads,
            kv_heads = self.kv_heads,
            bias = self.bias,
            ffn = self.ffn,
            gated = self.gated,
            experts = self.experts,
            top_k = self.top_k,
        )
    }

    /// The parameter count by hand, in u128: token table V·h, position table P·h, per layer two
    /// LayerNorms (2h each), Q/O of heads·d and K/V of kv·d (d = h/heads) with optional biases,
    /// `experts` MLPs (up, down, and gate when gated; optional biases) and a router h·E when
    /// E > 1; the final LayerNorm; a tied LM head adds nothing.
    fn count(&self) -> u128 {
        let [v, p, l, h, a, kv, f, e] =
            [self.vocab, self.positions, self.layers, self.hidden, self.heads, self.kv_heads, self.ffn, self.experts]
                .map(u128::from);
        let b = u128::from(self.bias);
        let d = h / a;
        let attention = h * a * d + b * a * d + 2 * (h * kv * d + b * kv * d) + a * d * h + b * h;
        let expert = (if self.gated { 2 } else { 1 }) * (h * f + b * f) + f * h + b * h;
        let router = if e > 1 { h * e } else { 0 };
        let layer = 2 * 2 * h + attention + e * expert + router;
        v * h + p * h + l * layer + 2 * h
    }

    /// Whether every size is within the stated bounds and the parts fit together.
    fn valid(&self) -> bool {
        let within = |v: u64, max: u64| (1..=max).contains(&v);
        within(self.vocab, limits::VOCAB)
            && within(self.hidden, limits::WIDTH)
            && self.positions <= limits::POSITIONS
            && within(self.layers, limits::LAYERS)
            && within(self.heads, limits::HEADS)
            && within(self.ffn, limits::FFN)
            && within(self.experts, limits::EXPERTS)
            && self.hidden.is_multiple_of(self.heads)
            && self.kv_heads >= 1
            && self.kv_heads <= self.heads
            && self.heads.is_multiple_of(self.kv_heads)
            && (1..=self.experts).contains(&self.top_k)
            && self.count() <= u128::from(limits::PARAMS)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn model_files_are_accepted_exactly_when_valid_and_counted_exactly(m in decoder()) {
        let text = m.toml();
        let parsed = user_presets::parse_model(Path::new("fuzz.toml"), &text);
        // Values above i64::MAX are not TOML integers: a parse error, never a model.
        let representable = [m.vocab, m.positions, m.layers, m.hidden, m.heads, m.kv_heads, m.ffn, m.experts, m.top_k]
            .iter()
            .all(|v| *v <= i64::MAX as u64);
        match parsed {
            Ok(spec) => {
                prop_assert!(representable && m.valid(), "accepted an invalid model: {m:?}");
                let count = params::count(&spec);
                prop_assert_eq!(u128::from(count), m.count(), "{:?}", m);
                prop_assert_eq!(params::checked_count(&spec), Some(count));
            }
            Err(e) => {
                prop_assert!(!(representable && m.valid()), "refused a valid model {m:?}: {e}");
                let msg = e.to_string();
                // The error names the file, and a field or the reason.
                prop_assert!(msg.starts_with("fuzz.toml"), "{msg}");
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Gpt2 {
    n_embd: u64,
    n_head: u64,
    n_layer: u64,
    n_positions: u64,
    vocab_size: u64,
    n_inner: Option<u64>,
}

/// A GPT-2 config across the whole legal range, then zero to two fields replaced by any `u64`.
fn gpt2() -> impl Strategy<Value = Gpt2> {
    (
        (0u32..=16, up_to(10), up_to(14), 0u64..=1 << 24, up_to(24), prop::option::of(up_to(24))),
        prop::collection::vec((0usize..6, size()), 0..=2),
    )
        .prop_map(|((head_bits, head_dim, n_layer, n_positions, vocab_size, n_inner), muts)| {
            let n_head = 1u64 << head_bits;
            let mut c = Gpt2 { n_embd: n_head * head_dim, n_head, n_layer, n_positions, vocab_size, n_inner };
            for (field, v) in muts {
                match field {
                    0 => c.n_embd = v,
                    1 => c.n_head = v,
                    2 => c.n_layer = v,
                    3 => c.n_positions = v,
                    4 => c.vocab_size = v,
                    _ => c.n_inner = Some(v),
                }
            }
            c
        })
}

impl Gpt2 {
    fn json(&self) -> String {
        let inner = self.n_inner.map_or(String::new(), |f| format!(r#""n_inner": {f},"#));
        format!(
            r#"{{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": {}, "n_head": {},
            "n_layer": {}, "n_positions": {}, {inner} "vocab_size": {}}}"#,
            self.n_embd, self.n_head, self.n_layer, self.n_positions, self.vocab_size
        )
    }

    fn ffn(&self) -> u128 {
        self.n_inner.map_or(4 * u128::from(self.n_embd), u128::from)
    }

    /// GPT2LMHeadModel by hand: wte V·h + wpe P·h + per block (ln_1 2h, c_attn h·3h + 3h, c_proj
    /// h·h + h, ln_2 2h, c_fc h·f + f, c_proj f·h + h) + ln_f 2h; the head is tied. For GPT-2
    /// small this is 124,439,808 (tests/data/validation/REFERENCES.md).
    fn count(&self) -> u128 {
        let [h, l, p, v] = [self.n_embd, self.n_layer, self.n_positions, self.vocab_size].map(u128::from);
        let f = self.ffn();
        v * h + p * h + l * (4 * h * h + 2 * h * f + 9 * h + f) + 2 * h
    }

    fn valid(&self) -> bool {
        let within = |v: u64, max: u64| (1..=max).contains(&v);
        within(self.n_embd, limits::WIDTH)
            && within(self.n_head, limits::HEADS)
            && self.n_embd.is_multiple_of(self.n_head)
            && within(self.n_layer, limits::LAYERS)
            && self.n_positions <= limits::POSITIONS
            && within(self.vocab_size, limits::VOCAB)
            && self.n_inner.is_none_or(|f| within(f, limits::FFN))
            && self.count() <= u128::from(limits::PARAMS)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn hf_configs_are_accepted_exactly_when_valid_and_counted_exactly(c in gpt2()) {
        assert_eq!(Gpt2 { n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, vocab_size: 50257, n_inner: None }
            .count(), 124_439_808);
        match hf::from_hf_json("fuzz", &c.json()) {
            Ok(spec) => {
                prop_assert!(c.valid(), "accepted an invalid config: {c:?}");
                prop_assert_eq!(u128::from(params::count(&spec)), c.count(), "{:?}", c);
            }
            Err(e) => {
                prop_assert!(!c.valid(), "refused a valid config {c:?}: {e}");
                prop_assert!(e.to_string().contains("config.json"), "{e}");
            }
        }
    }

    /// Arbitrary JSON-ish text never panics the importer.
    #[test]
    fn hf_import_never_panics_on_arbitrary_fields(
        model_type in prop_oneof![Just("gpt2"), Just("llama"), Just("bert"), Just("t5"), Just("whisper"),
            Just("clip"), Just("deepseek_v3"), Just("mixtral"), Just("gptj"), Just("gpt_neo"), Just("vit"),
            Just("bart"), Just("opt"), Just("bloom"), Just("albert"), Just("deberta-v2"), Just("distilbert")],
        fields in prop::collection::vec((
            prop_oneof![Just("hidden_size"), Just("num_hidden_layers"), Just("num_attention_heads"),
                Just("intermediate_size"), Just("vocab_size"), Just("max_position_embeddings"), Just("head_dim"),
                Just("num_key_value_heads"), Just("n_embd"), Just("n_layer"), Just("n_head"), Just("d_model"),
                Just("num_layers"), Just("num_heads"), Just("d_ff"), Just("d_kv"), Just("image_size"),
                Just("patch_size"), Just("num_local_experts"), Just("num_experts_per_tok"), Just("rotary_dim"),
                Just("pad_token_id"), Just("partial_rotary_factor"), Just("kv_lora_rank"), Just("q_lora_rank"),
                Just("n_routed_experts"), Just("first_k_dense_replace"), Just("encoder_layers"),
                Just("decoder_layers"), Just("num_mel_bins"), Just("max_source_positions"), Just("embedding_size"),
                Just("num_hidden_groups"), Just("type_vocab_size"), Just("n_positions"), Just("dim"),
                Just("hidden_dim"), Just("n_layers"), Just("n_heads"), Just("moe_intermediate_size")],
            prop_oneof![
                size().prop_map(|v| v.to_string()),
                any::<f64>().prop_map(|f| if f.is_finite() { format!("{f:e}") } else { "1e400".into() }),
                Just("-1".to_string()), Just("null".to_string()), Just("\"x\"".to_string()), Just("[]".to_string()),
            ],
        ), 0..12),
    ) {
        let mut json = format!(r#"{{"model_type": "{model_type}""#);
        for (k, v) in &fields {
            json.push_str(&format!(r#", "{k}": {v}"#));
        }
        json.push('}');
        if let Ok(spec) = hf::from_hf_json("fuzz", &json) {
            let count = params::checked_count(&spec);
            prop_assert!(count.is_some_and(|c| c <= limits::PARAMS), "{json}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The estimate of any accepted model through the validated scenario (`api::estimate`), at
    /// micro-batches up to 1024 and sequences up to 32,768, never panics and never wraps: it is
    /// refused with an error, or mixed-bf16 weights are exactly 2 bytes per counted parameter
    /// (recomputed in u128), the peak holds the weights, the total holds the peak, and one more
    /// sequence never makes the total smaller (a wrapped product would).
    #[test]
    fn estimates_of_accepted_models_never_wrap(
        m in decoder().prop_filter("a valid model", |m| m.valid()),
        batch in up_to(10), seq in up_to(15),
        train in any::<bool>(), flash in any::<bool>(),
    ) {
        use memplan::{api, scenario::Scenario};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fuzz.toml");
        std::fs::write(&path, m.toml()).unwrap();
        let file = path.to_str().unwrap().to_string();
        let run = |batch: u64| {
            let (b, s) = (batch.to_string(), seq.to_string());
            let pairs = [
                ("model-file", file.as_str()),
                ("batch", b.as_str()),
                ("seq", s.as_str()),
                ("phase", if train { "train" } else { "inference" }),
                ("attention", if flash { "flash" } else { "eager" }),
            ];
            Scenario::from_pairs(pairs).and_then(|sc| api::estimate(&sc))
        };
        if let Ok(r) = run(batch) {
            let g = &r.per_gpu;
            prop_assert_eq!(u128::from(g.weights_bytes), 2 * m.count());
            prop_assert!(g.peak_allocated_bytes >= g.weights_bytes, "{m:?}");
            prop_assert!(g.total_bytes >= g.peak_allocated_bytes);
            if let Ok(more) = run(batch + 1) {
                prop_assert!(more.per_gpu.total_bytes >= g.total_bytes, "{m:?}: batch {batch} + 1");
            }
        }
    }
}
