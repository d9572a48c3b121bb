//! Complete benchmark cases on the GPU: the buffers each case allocates (a pure plan, shared
//! with the mock backend so both report the same bytes), the dispatches, the check against the
//! CPU reference, and the runner that times the dispatches.

use crate::bench::device::{device_error, BufferRecord, Gpu, Role};
use crate::bench::kernels::{
    self, AttentionKernel, AttentionShape, Dispatch, Elementwise, Kernels, MatmulShape, MatmulVariant,
};
use crate::bench::layer::LayerShape;
use crate::bench::reference::{self as cpu, Act, Rng};
use crate::bench::report::CheckReport;
use crate::bench::timing::{Runner, TimingMethod};
use crate::bench::Precision;
use crate::error::Result;
use crate::model::{Activation, NormKind};
use std::collections::HashMap;
use std::time::Instant;

/// What to run: the data a backend needs to build a case.
#[derive(Clone, Debug, PartialEq)]
pub enum CaseSpec {
    Matmul { shape: MatmulShape, precision: Precision, variant: MatmulVariant },
    Attention { shape: AttentionShape, precision: Precision, kernel: AttentionKernel },
    Layer { shape: Box<LayerShape>, precision: Precision, kernel: AttentionKernel },
}

impl CaseSpec {
    pub fn kernel(&self) -> &'static str {
        match self {
            CaseSpec::Matmul { .. } => "matmul",
            CaseSpec::Attention { .. } => "attention",
            CaseSpec::Layer { .. } => "layer",
        }
    }

    pub fn precision(&self) -> Precision {
        match self {
            CaseSpec::Matmul { precision, .. }
            | CaseSpec::Attention { precision, .. }
            | CaseSpec::Layer { precision, .. } => *precision,
        }
    }

    pub fn flops(&self) -> f64 {
        match self {
            CaseSpec::Matmul { shape, .. } => shape.flops(),
            CaseSpec::Attention { shape, .. } => shape.flops(),
            CaseSpec::Layer { shape, .. } => shape.flops(),
        }
    }

    /// Minimum bytes moved per call: every planned buffer except the naive attention's score
    /// matrix is read or written once; the score matrix is written and read twice (scores,
    /// softmax in place, P·V).
    pub fn bytes_moved(&self) -> f64 {
        match self {
            CaseSpec::Matmul { shape, precision, .. } => shape.bytes(*precision),
            _ => plan(self).iter().map(|b| if b.label == "scores" { 4 * b.bytes } else { b.bytes }).sum::<u64>() as f64,
        }
    }

    pub fn shape_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        match self {
            CaseSpec::Matmul { shape, .. } => {
                m.insert("m".into(), shape.m.into());
                m.insert("n".into(), shape.n.into());
                m.insert("k".into(), shape.k.into());
                if shape.batch != 1 {
                    m.insert("batch".into(), shape.batch.into());
                }
            }
            CaseSpec::Attention { shape, .. } => {
                m.insert("batch".into(), shape.batch.into());
                m.insert("heads".into(), shape.heads.into());
                m.insert("kv_heads".into(), shape.kv_heads.into());
                m.insert("seq".into(), shape.seq.into());
                m.insert("head_dim".into(), shape.head_dim.into());
                m.insert("causal".into(), shape.causal.into());
            }
            CaseSpec::Layer { shape, .. } => m = shape.json(),
        }
        m
    }

    /// The variant name the mock reports (the GPU reports what actually ran).
    pub fn nominal_variant(&self) -> String {
        match self {
            CaseSpec::Matmul { variant: MatmulVariant::Coop, .. } => "coop-8x8".into(),
            CaseSpec::Matmul { .. } => "tiled".into(),
            CaseSpec::Attention { kernel, .. } => kernel.name().into(),
            CaseSpec::Layer { kernel, .. } => format!("{}-attention", kernel.name()),
        }
    }
}

/// Element type of a planned buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    /// The case's storage precision.
    T,
    F32,
}

/// A buffer a case allocates.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub label: String,
    pub role: Role,
    pub elems: u64,
    pub elem: Elem,
    pub bytes: u64,
}

/// The buffers of a case, in allocation order.
pub fn plan(case: &CaseSpec) -> Vec<Planned> {
    let p = case.precision();
    let mut out = Vec::new();
    let mut add = |label: &str, role: Role, elems: u64, elem: Elem| {
        let bytes = elems * if elem == Elem::F32 { 4 } else { p.size() };
        out.push(Planned { label: label.to_string(), role, elems, elem, bytes });
    };
    match case {
        CaseSpec::Matmul { shape, .. } => {
            add("a", Role::Input, shape.m * shape.k * shape.batch, Elem::T);
            add("b", Role::Input, shape.k * shape.n * shape.batch, Elem::T);
            add("c", Role::Workspace, shape.m * shape.n * shape.batch, Elem::T);
        }
        CaseSpec::Attention { shape, kernel, .. } => {
            add("q", Role::Input, shape.q_elems(), Elem::T);
            add("k", Role::Input, shape.kv_elems(), Elem::T);
            add("v", Role::Input, shape.kv_elems(), Elem::T);
            match kernel {
                AttentionKernel::Naive => add("scores", Role::Saved, shape.score_elems(), Elem::T),
                AttentionKernel::Flash => add("lse", Role::Saved, shape.batch * shape.heads * shape.seq, Elem::F32),
            }
            add("o", Role::Workspace, shape.q_elems(), Elem::T);
        }
        CaseSpec::Layer { shape, kernel, .. } => layer_plan(shape, p, *kernel, &mut add),
    }
    out
}

/// Role of a norm's input: kept by LayerNorm (and by RMSNorm in fp32, where the fp32 copy is
/// the input itself); under fp16 RMSNorm keeps an fp32 copy instead.
fn norm_input_role(shape: &LayerShape, p: Precision) -> Role {
    if shape.norm == NormKind::RmsNorm && p == Precision::Fp16 {
        Role::Workspace
    } else {
        Role::Saved
    }
}

fn norm_plan(shape: &LayerShape, p: Precision, n: &str, add: &mut dyn FnMut(&str, Role, u64, Elem)) {
    let t = shape.tokens();
    let e = t * shape.hidden;
    add(&format!("{n}.weight"), Role::Weight, shape.hidden, Elem::T);
    match shape.norm {
        NormKind::LayerNorm => {
            add(&format!("{n}.bias"), Role::Weight, shape.hidden, Elem::T);
            add(&format!("{n} mean/rstd"), Role::Saved, 2 * t, Elem::F32);
        }
        NormKind::RmsNorm => {
            add(&format!("{n} rsqrt"), Role::Saved, t, Elem::F32);
            add(&format!("{n} normalised"), Role::Saved, e, Elem::T);
            if p == Precision::Fp16 {
                add(&format!("{n} input (fp32)"), Role::Saved, e, Elem::F32);
            }
        }
    }
}

/// MLP input (`n2`, or `n1` with parallel attention and MLP) to the down projection input.
fn mlp_plan(shape: &LayerShape, add: &mut dyn FnMut(&str, Role, u64, Elem)) {
    let f = shape.tokens() * shape.ffn;
    let relu = shape.activation == Activation::Relu;
    let input_role = if relu { Role::Workspace } else { Role::Saved };
    // The activation's input: the gate projection of a gated MLP, else the up projection.
    add("act in", input_role, f, Elem::T);
    if shape.gated {
        add("up", Role::Saved, f, Elem::T);
    }
    match shape.activation {
        Activation::GeluNew => {
            add("gelu tanh", Role::Saved, f, Elem::T);
            add("gelu half x", Role::Saved, f, Elem::T);
            add("gelu 1+tanh", Role::Saved, f, Elem::T);
        }
        Activation::QuickGelu => add("quick-gelu sigmoid", Role::Saved, f, Elem::T),
        _ => {}
    }
    add("act out", Role::Saved, f, Elem::T);
    if shape.gated {
        add("gated product", Role::Saved, f, Elem::T);
    }
}

fn layer_plan(shape: &LayerShape, p: Precision, kernel: AttentionKernel, add: &mut dyn FnMut(&str, Role, u64, Elem)) {
    let h = shape.hidden;
    let t = shape.tokens();
    let e = t * h;
    let (qw, kvw) = (shape.q_width(), shape.kv_width());
    add("w_q", Role::Weight, h * qw, Elem::T);
    add("w_k", Role::Weight, h * kvw, Elem::T);
    add("w_v", Role::Weight, h * kvw, Elem::T);
    add("w_o", Role::Weight, qw * h, Elem::T);
    if shape.gated {
        add("w_gate", Role::Weight, h * shape.ffn, Elem::T);
    }
    add("w_up", Role::Weight, h * shape.ffn, Elem::T);
    add("w_down", Role::Weight, shape.ffn * h, Elem::T);
    let pre = !shape.post_norm;
    // Layer input: a norm's input (pre-norm) or the QKV projections' input (post-norm).
    add("x", if pre { norm_input_role(shape, p) } else { Role::Saved }, e, Elem::T);
    if pre {
        norm_plan(shape, p, "norm 1", add);
        add("norm 1 out", Role::Saved, e, Elem::T);
    }
    add("q", Role::Saved, t * qw, Elem::T);
    add("k", Role::Saved, t * kvw, Elem::T);
    add("v", Role::Saved, t * kvw, Elem::T);
    let a = shape.attention();
    match kernel {
        AttentionKernel::Naive => add("scores", Role::Saved, a.score_elems(), Elem::T),
        AttentionKernel::Flash => add("lse", Role::Saved, shape.batch * shape.heads * shape.seq, Elem::F32),
    }
    add("attn out", Role::Saved, t * qw, Elem::T);
    add("attn proj", Role::Workspace, e, Elem::T);
    if pre {
        // x1 = x + attn proj feeds norm 2 (or, with parallel attention and MLP, only the output).
        let role = if shape.parallel { Role::Workspace } else { norm_input_role(shape, p) };
        add("x1", role, e, Elem::T);
        if !shape.parallel {
            norm_plan(shape, p, "norm 2", add);
            add("norm 2 out", Role::Saved, e, Elem::T);
        }
    } else {
        add("x1", norm_input_role(shape, p), e, Elem::T);
        norm_plan(shape, p, "norm 1", add);
        add("norm 1 out", Role::Saved, e, Elem::T);
    }
    mlp_plan(shape, add);
    add("mlp down", Role::Workspace, e, Elem::T);
    if pre {
        add("out", Role::Workspace, e, Elem::T);
    } else {
        add("x2", norm_input_role(shape, p), e, Elem::T);
        norm_plan(shape, p, "norm 2", add);
        add("out", Role::Workspace, e, Elem::T);
    }
}

/// The ledger a plan produces (what the GPU backend records when it allocates the plan).
pub fn plan_records(plan: &[Planned]) -> Vec<BufferRecord> {
    plan.iter()
        .map(|b| BufferRecord {
            label: b.label.clone(),
            role: b.role,
            bytes: b.bytes,
            allocated: b.bytes.max(16).div_ceil(16) * 16,
            device_bytes: None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Building a case on the GPU

/// A case with its buffers allocated and its dispatches built.
pub struct Built {
    pub dispatches: Vec<Dispatch>,
    pub variant: String,
    pub buffers: HashMap<String, wgpu::Buffer>,
    /// Host copies of the inputs (for the check).
    pub host: HashMap<String, Vec<f32>>,
    pub records: Vec<BufferRecord>,
}

fn scale_for(label: &str, shape: Option<&LayerShape>) -> f32 {
    // Weights ~ 1/sqrt(fan-in) keep activations O(1) (no f16 overflow); norm weights near 1.
    let Some(s) = shape else { return 1.0 };
    match label {
        "w_q" | "w_k" | "w_v" | "w_gate" | "w_up" => 1.0 / (s.hidden as f32).sqrt(),
        "w_o" => 1.0 / (s.q_width() as f32).sqrt(),
        "w_down" => 1.0 / (s.ffn as f32).sqrt(),
        _ => 1.0,
    }
}

fn is_input(label: &str, role: Role) -> bool {
    role == Role::Weight
        || matches!(label, "a" | "b" | "x")
        || (role == Role::Input && matches!(label, "q" | "k" | "v"))
}

/// Allocate `plan` (random inputs and weights, uninitialised outputs) and build the dispatches.
pub fn build(k: &Kernels, case: &CaseSpec, seed: u64) -> Result<Built> {
    let gpu = k.gpu;
    let p = case.precision();
    p.check(gpu)?;
    let planned = plan(case);
    // Check every binding before allocating anything.
    for b in &planned {
        gpu.check_binding(&format!("buffer `{}`", b.label), b.bytes).map_err(|e| match (e, b.role, p) {
            (crate::Error::Device { message, .. }, Role::Weight, Precision::Fp32) => device_error(
                message,
                "one weight matrix of this layer is over the limit: --dtype fp16 halves it, or use a GPU with larger bindings",
            ),
            (crate::Error::Device { message, .. }, Role::Weight, Precision::Fp16) => {
                device_error(message, "one weight matrix of this layer is over the limit: use a GPU with larger bindings")
            }
            (e, _, _) => e,
        })?;
    }
    let layer_shape = match case {
        CaseSpec::Layer { shape, .. } => Some(shape.as_ref()),
        _ => None,
    };
    let mut rng = Rng::new(seed);
    let mut buffers = HashMap::new();
    let mut host = HashMap::new();
    gpu.take_ledger();
    for b in &planned {
        let contents = if is_input(&b.label, b.role) {
            let mut v = if b.label.ends_with(".weight") {
                // norm gains around 1
                rng.values(b.elems as usize, 0.25).into_iter().map(|x| 1.0 + x).collect()
            } else {
                rng.values(b.elems as usize, scale_for(&b.label, layer_shape))
            };
            cpu::round(&mut v, p);
            let bytes = cpu::to_bytes(&v, p);
            host.insert(b.label.clone(), v);
            Some(bytes)
        } else {
            None
        };
        let buf = gpu.storage(&b.label, b.role, b.bytes, contents.as_deref())?;
        buffers.insert(b.label.clone(), buf);
    }
    let records = gpu.take_ledger();
    let get =
        |l: &str| buffers.get(l).ok_or_else(|| device_error(format!("internal: no buffer `{l}` in the plan"), ""));
    let (dispatches, variant) = match case {
        CaseSpec::Matmul { shape, variant, .. } => {
            let (d, v) = kernels::matmul(k, *shape, p, *variant, get("a")?, get("b")?, get("c")?)?;
            (vec![d], v)
        }
        CaseSpec::Attention { shape, kernel: AttentionKernel::Naive, .. } => {
            kernels::attention_naive(k, *shape, p, get("q")?, get("k")?, get("v")?, get("scores")?, get("o")?)?
        }
        CaseSpec::Attention { shape, kernel: AttentionKernel::Flash, .. } => {
            let (d, v) =
                kernels::attention_flash(k, *shape, p, get("q")?, get("k")?, get("v")?, get("o")?, get("lse")?)?;
            (vec![d], v)
        }
        CaseSpec::Layer { shape, kernel, .. } => layer_dispatches(k, shape, p, *kernel, &get)?,
    };
    Ok(Built { dispatches, variant, buffers, host, records })
}

fn layer_dispatches<'b>(
    k: &Kernels,
    s: &LayerShape,
    p: Precision,
    kernel: AttentionKernel,
    get: &dyn Fn(&str) -> Result<&'b wgpu::Buffer>,
) -> Result<(Vec<Dispatch>, String)> {
    let t = s.tokens();
    let h = s.hidden;
    let e = t * h;
    let f = t * s.ffn;
    let mut d = Vec::new();
    let mm = |a: &str, w: &str, c: &str, n: u64, kk: u64| -> Result<(Dispatch, String)> {
        kernels::matmul(k, MatmulShape::new(t, n, kk), p, MatmulVariant::Auto, get(a)?, get(w)?, get(c)?)
    };
    let norm = |input: &str, n: &str, out: &str| -> Result<Dispatch> {
        let stats = match s.norm {
            NormKind::LayerNorm => format!("{n} mean/rstd"),
            NormKind::RmsNorm => format!("{n} rsqrt"),
        };
        let extra = match s.norm {
            NormKind::LayerNorm => kernels::NormExtra::LayerNorm { beta: get(&format!("{n}.bias"))? },
            NormKind::RmsNorm => kernels::NormExtra::RmsNorm {
                normed: get(&format!("{n} normalised"))?,
                x32: if p == Precision::Fp16 { Some(get(&format!("{n} input (fp32)"))?) } else { None },
            },
        };
        kernels::norm(k, p, t, h, s.eps, get(input)?, get(&format!("{n}.weight"))?, extra, get(out)?, get(&stats)?)
    };
    let ew = |op: Elementwise, n: u64, x: &str, y: Option<&str>, out: &str| -> Result<Dispatch> {
        let y = match y {
            Some(l) => Some(get(l)?),
            None => None,
        };
        kernels::elementwise(k, p, op, n, get(x)?, y, get(out)?)
    };
    let pre = !s.post_norm;
    let attn_in = if pre {
        d.push(norm("x", "norm 1", "norm 1 out")?);
        "norm 1 out"
    } else {
        "x"
    };
    let (dq, mm_variant) = mm(attn_in, "w_q", "q", s.q_width(), h)?;
    d.push(dq);
    d.push(mm(attn_in, "w_k", "k", s.kv_width(), h)?.0);
    d.push(mm(attn_in, "w_v", "v", s.kv_width(), h)?.0);
    let a = s.attention();
    let attn_variant = match kernel {
        AttentionKernel::Naive => {
            let (ds, v) =
                kernels::attention_naive(k, a, p, get("q")?, get("k")?, get("v")?, get("scores")?, get("attn out")?)?;
            d.extend(ds);
            v
        }
        AttentionKernel::Flash => {
            let (df, v) =
                kernels::attention_flash(k, a, p, get("q")?, get("k")?, get("v")?, get("attn out")?, get("lse")?)?;
            d.push(df);
            v
        }
    };
    d.push(mm("attn out", "w_o", "attn proj", h, s.q_width())?.0);
    d.push(ew(Elementwise::Add, e, "x", Some("attn proj"), "x1")?);
    let mlp_in = if pre {
        if s.parallel {
            "norm 1 out"
        } else {
            d.push(norm("x1", "norm 2", "norm 2 out")?);
            "norm 2 out"
        }
    } else {
        d.push(norm("x1", "norm 1", "norm 1 out")?);
        "norm 1 out"
    };
    if s.gated {
        d.push(mm(mlp_in, "w_gate", "act in", s.ffn, h)?.0);
        d.push(mm(mlp_in, "w_up", "up", s.ffn, h)?.0);
    } else {
        d.push(mm(mlp_in, "w_up", "act in", s.ffn, h)?.0);
    }
    match s.activation {
        Activation::GeluNew => {
            // Hugging Face's NewGELU as separate tensor ops: 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).
            d.push(ew(Elementwise::GeluTanhInner, f, "act in", None, "gelu tanh")?);
            d.push(ew(Elementwise::Scale(0.5), f, "act in", None, "gelu half x")?);
            d.push(ew(Elementwise::AddScalar(1.0), f, "gelu tanh", None, "gelu 1+tanh")?);
            d.push(ew(Elementwise::Mul, f, "gelu half x", Some("gelu 1+tanh"), "act out")?);
        }
        Activation::QuickGelu => {
            d.push(ew(Elementwise::Sigmoid1702, f, "act in", None, "quick-gelu sigmoid")?);
            d.push(ew(Elementwise::Mul, f, "act in", Some("quick-gelu sigmoid"), "act out")?);
        }
        _ => d.push(ew(Elementwise::Act(s.act()), f, "act in", None, "act out")?),
    }
    let down_in = if s.gated {
        d.push(ew(Elementwise::Mul, f, "act out", Some("up"), "gated product")?);
        "gated product"
    } else {
        "act out"
    };
    d.push(mm(down_in, "w_down", "mlp down", h, s.ffn)?.0);
    if pre {
        d.push(ew(Elementwise::Add, e, "x1", Some("mlp down"), "out")?);
    } else {
        d.push(ew(Elementwise::Add, e, "norm 1 out", Some("mlp down"), "x2")?);
        d.push(norm("x2", "norm 2", "out")?);
    }
    if s.parallel {
        // out = x + attn + mlp: x1 (= x + attn) + down, written above.
    }
    Ok((d, format!("{attn_variant}+{mm_variant}")))
}

// ---------------------------------------------------------------------------------------------
// Checking against the CPU reference

/// Above this many multiply-adds the check samples outputs instead of computing them all.
const FULL_CHECK_WORK: u64 = 1 << 26;

/// Poison the outputs, run once, read back and compare with the CPU reference.
pub fn check(gpu: &Gpu, case: &CaseSpec, built: &Built, seed: u64) -> Result<CheckReport> {
    let p = case.precision();
    let outputs: Vec<&str> = match case {
        CaseSpec::Matmul { .. } => vec!["c"],
        CaseSpec::Attention { kernel: AttentionKernel::Naive, .. } => vec!["o", "scores"],
        CaseSpec::Attention { kernel: AttentionKernel::Flash, .. } => vec!["o", "lse"],
        CaseSpec::Layer { .. } => vec!["out"],
    };
    // Poison every buffer the kernels write (not only the compared ones).
    let written: Vec<String> =
        plan(case).iter().filter(|b| !is_input(&b.label, b.role)).map(|b| b.label.clone()).collect();
    debug_assert!(outputs.iter().all(|o| written.iter().any(|w| w == o)));
    for o in &written {
        let b = &built.buffers[o];
        let elem = plan(case).iter().find(|x| &x.label == o).map_or(Elem::T, |x| x.elem);
        gpu.fill(b, if elem == Elem::F32 { cpu::poison_word(Precision::Fp32) } else { cpu::poison_word(p) });
    }
    let mut runner = GpuRunner::new(gpu, &built.dispatches, false);
    runner.run(1)?;
    let read = |label: &str, elem: Elem| -> Result<Vec<f32>> {
        let planned = plan(case);
        let b = planned
            .iter()
            .find(|x| x.label == label)
            .ok_or_else(|| device_error(format!("internal: no `{label}`"), ""))?;
        let bytes = gpu.read(&built.buffers[label], b.bytes)?;
        Ok(cpu::from_bytes(&bytes, if elem == Elem::F32 { Precision::Fp32 } else { p }))
    };
    let h = &built.host;
    let mut rng = Rng::new(seed ^ 0xC0FFEE);
    match case {
        CaseSpec::Matmul { shape, .. } => {
            let c = read("c", Elem::T)?;
            let (m, n, kk) = (shape.m as usize, shape.n as usize, shape.k as usize);
            let tol = cpu::tolerance(p, kk);
            let (a, b) = (&h["a"], &h["b"]);
            let work = shape.m * shape.n * shape.k * shape.batch;
            if work <= FULL_CHECK_WORK {
                let mut pairs = Vec::with_capacity(c.len());
                for z in 0..shape.batch as usize {
                    let r = cpu::matmul(&a[z * m * kk..(z + 1) * m * kk], &b[z * kk * n..(z + 1) * kk * n], m, n, kk);
                    pairs.extend(c[z * m * n..(z + 1) * m * n].iter().map(|g| *g as f64).zip(r));
                }
                Ok(cpu::compare_pairs(pairs.into_iter(), tol))
            } else {
                let mut pairs = Vec::new();
                for _ in 0..256 {
                    let z = rng.below(shape.batch) as usize;
                    let (i, j) = (rng.below(shape.m) as usize, rng.below(shape.n) as usize);
                    let r = cpu::matmul_at(&a[z * m * kk..], &b[z * kk * n..], n, kk, i, j);
                    pairs.push((c[z * m * n + i * n + j] as f64, r));
                }
                Ok(cpu::compare_pairs(pairs.into_iter(), tol))
            }
        }
        CaseSpec::Attention { shape, kernel, .. } => {
            let o = read("o", Elem::T)?;
            let extra = match kernel {
                AttentionKernel::Naive => None,
                AttentionKernel::Flash => Some(read("lse", Elem::F32)?),
            };
            let d = shape.dims();
            let tol = cpu::tolerance(p, d.seq.max(d.head_dim));
            let rows = (d.batch * d.heads * d.seq) as u64;
            let work = rows * d.seq as u64 * d.head_dim as u64;
            let picks: Vec<u64> =
                if work <= FULL_CHECK_WORK { (0..rows).collect() } else { (0..64).map(|_| rng.below(rows)).collect() };
            let mut pairs = Vec::new();
            for r in picks {
                let (b, rest) = ((r as usize) / (d.heads * d.seq), (r as usize) % (d.heads * d.seq));
                let (hh, i) = (rest / d.seq, rest % d.seq);
                let (row, lse) = cpu::attention_row(&h["q"], &h["k"], &h["v"], d, b, hh, i);
                let oi = ((b * d.seq + i) * d.heads + hh) * d.head_dim;
                pairs.extend(o[oi..oi + d.head_dim].iter().map(|g| *g as f64).zip(row));
                if let Some(l) = &extra {
                    pairs.push((l[(b * d.heads + hh) * d.seq + i] as f64, lse));
                }
            }
            Ok(cpu::compare_pairs(pairs.into_iter(), tol))
        }
        CaseSpec::Layer { shape, kernel, .. } => {
            let out = read("out", Elem::T)?;
            let reference = cpu_layer(shape, *kernel, h);
            let tol = 3.0 * cpu::tolerance(p, shape.ffn.max(shape.seq) as usize);
            Ok(cpu::compare(&out, &reference, tol))
        }
    }
}

/// The layer forward on the CPU (f64), following the same recipe as the GPU.
pub fn cpu_layer(s: &LayerShape, _kernel: AttentionKernel, h: &HashMap<String, Vec<f32>>) -> Vec<f64> {
    let t = s.tokens() as usize;
    let hid = s.hidden as usize;
    let x: Vec<f64> = h["x"].iter().map(|v| *v as f64).collect();
    let norm = |input: &[f64], n: &str| -> Vec<f64> {
        let beta = match s.norm {
            NormKind::LayerNorm => Some(h[&format!("{n}.bias")].as_slice()),
            NormKind::RmsNorm => None,
        };
        cpu::norm(input, hid, &h[&format!("{n}.weight")], beta, s.eps as f64)
    };
    let mm = |a: &[f64], w: &str, n: usize, k: usize| -> Vec<f64> {
        let a32: Vec<f32> = a.iter().map(|v| *v as f32).collect();
        cpu::matmul(&a32, &h[w], t, n, k)
    };
    let add = |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(x, y)| x + y).collect() };
    let pre = !s.post_norm;
    let attn_in = if pre { norm(&x, "norm 1") } else { x.clone() };
    let (qw, kvw) = (s.q_width() as usize, s.kv_width() as usize);
    let q: Vec<f32> = mm(&attn_in, "w_q", qw, hid).iter().map(|v| *v as f32).collect();
    let k: Vec<f32> = mm(&attn_in, "w_k", kvw, hid).iter().map(|v| *v as f32).collect();
    let v: Vec<f32> = mm(&attn_in, "w_v", kvw, hid).iter().map(|v| *v as f32).collect();
    let (o, _) = cpu::attention(&q, &k, &v, s.attention().dims());
    let proj = mm(&o, "w_o", hid, qw);
    let x1 = add(&x, &proj);
    let mlp_in = if pre {
        if s.parallel {
            attn_in.clone()
        } else {
            norm(&x1, "norm 2")
        }
    } else {
        norm(&x1, "norm 1")
    };
    let ffn = s.ffn as usize;
    let act_in = mm(&mlp_in, if s.gated { "w_gate" } else { "w_up" }, ffn, hid);
    let act = s.act();
    let mut a: Vec<f64> = act_in.iter().map(|v| act.apply(*v)).collect();
    if s.gated {
        let up = mm(&mlp_in, "w_up", ffn, hid);
        a = a.iter().zip(&up).map(|(x, y)| x * y).collect();
    }
    let down = mm(&a, "w_down", hid, ffn);
    if pre {
        add(&x1, &down)
    } else {
        norm(&add(&mlp_in, &down), "norm 2")
    }
}

// ---------------------------------------------------------------------------------------------
// Timing on the GPU

/// Times a list of dispatches, recorded in one compute pass per call.
pub struct GpuRunner<'a> {
    gpu: &'a Gpu,
    dispatches: &'a [Dispatch],
    timestamps: bool,
}

impl<'a> GpuRunner<'a> {
    /// `timestamps`: use GPU timestamps (only when the device has TIMESTAMP_QUERY).
    pub fn new(gpu: &'a Gpu, dispatches: &'a [Dispatch], timestamps: bool) -> Self {
        let timestamps = timestamps && gpu.has(wgpu::Features::TIMESTAMP_QUERY);
        GpuRunner { gpu, dispatches, timestamps }
    }

    fn record(&self, enc: &mut wgpu::CommandEncoder, ts: Option<(&wgpu::QuerySet, u32)>) {
        let timestamp_writes = ts.map(|(qs, i)| wgpu::ComputePassTimestampWrites {
            query_set: qs,
            beginning_of_pass_write_index: Some(2 * i),
            end_of_pass_write_index: Some(2 * i + 1),
        });
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("bench"), timestamp_writes });
        for d in self.dispatches {
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.bind_group, &[]);
            pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
        }
    }

    fn run_timestamps(&mut self, reps: u32) -> Result<Vec<f64>> {
        let gpu = self.gpu;
        let period_ns = gpu.timestamp_period();
        let mut out = Vec::with_capacity(reps as usize);
        let mut left = reps;
        while left > 0 {
            let n = left.min(wgpu::QUERY_SET_MAX_QUERIES / 2);
            left -= n;
            let (qs, resolve) = gpu.scoped("creating timestamp queries", || {
                let qs = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("bench timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2 * n,
                });
                let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("timestamp resolve"),
                    size: 16 * n as u64,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                });
                (qs, resolve)
            })?;
            let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("bench") });
            for i in 0..n {
                self.record(&mut enc, Some((&qs, i)));
            }
            enc.resolve_query_set(&qs, 0..2 * n, &resolve, 0);
            gpu.queue.submit([enc.finish()]);
            gpu.wait("the timed runs")?;
            let bytes = gpu.read(&resolve, 16 * n as u64)?;
            let ticks: &[u64] = bytemuck::cast_slice(&bytes);
            for pair in ticks.chunks_exact(2) {
                let dt = pair[1].saturating_sub(pair[0]) as f64 * period_ns * 1e-9;
                out.push(dt);
            }
        }
        if out.iter().all(|t| *t == 0.0) {
            return Err(device_error(
                "the GPU timestamps did not advance (all timed runs read 0 ns)",
                "the driver's timestamp queries are unusable; run with --wall-clock",
            ));
        }
        Ok(out)
    }
}

impl Runner for GpuRunner<'_> {
    fn timing(&self) -> TimingMethod {
        if self.timestamps {
            TimingMethod::GpuTimestamps
        } else {
            TimingMethod::WallClock
        }
    }

    fn run(&mut self, reps: u32) -> Result<Vec<f64>> {
        if self.timestamps {
            return self.run_timestamps(reps);
        }
        let mut out = Vec::with_capacity(reps as usize);
        for _ in 0..reps {
            let start = Instant::now();
            let mut enc =
                self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("bench") });
            self.record(&mut enc, None);
            self.gpu.queue.submit([enc.finish()]);
            self.gpu.wait("a timed run")?;
            out.push(start.elapsed().as_secs_f64());
        }
        Ok(out)
    }
}

/// Activation used by the element-wise kernels for a layer (re-exported for tests).
pub fn layer_act(shape: &LayerShape) -> Act {
    shape.act()
}
