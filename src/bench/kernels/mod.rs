//! The WGSL kernels and the host code that specializes, compiles and dispatches them.
//!
//! Each `.wgsl` file starts with a header comment (tiling, features needed, FLOPs and bytes per
//! call). Kernels are written once over a storage type `T` (and `T4 = vec4<T>`): the host
//! prepends `alias T = f32;` or `enable f16; alias T = f16;` and fills `{{NAME}}` slots (tile
//! sizes, head dim, optional blocks). Arithmetic is always f32. Every kernel binds its
//! parameters as a uniform at binding 0 and its buffers from binding 1.

use crate::bench::device::{device_error, Gpu};
use crate::bench::Precision;
use crate::error::{Error, Result};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

pub const MATMUL: &str = include_str!("matmul.wgsl");
pub const MATMUL_IO_VEC4: &str = include_str!("matmul_io_vec4.wgsl");
pub const MATMUL_IO_SCALAR: &str = include_str!("matmul_io_scalar.wgsl");
pub const MATMUL_COOP: &str = include_str!("matmul_coop.wgsl");
pub const ATTENTION_SCORES: &str = include_str!("attention_scores.wgsl");
pub const ATTENTION_SOFTMAX: &str = include_str!("attention_softmax.wgsl");
pub const ATTENTION_PV: &str = include_str!("attention_pv.wgsl");
pub const ATTENTION_FLASH: &str = include_str!("attention_flash.wgsl");
pub const NORM: &str = include_str!("norm.wgsl");
pub const NORM_LAYER: &str = include_str!("norm_layer.wgsl");
pub const NORM_RMS: &str = include_str!("norm_rms.wgsl");
pub const ELEMENTWISE: &str = include_str!("elementwise.wgsl");

/// Fill `{{KEY}}` slots and prepend the storage-type aliases.
pub fn specialize(template: &str, precision: Precision, slots: &[(&str, String)]) -> String {
    let mut s = template.to_string();
    for (k, v) in slots {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    debug_assert!(!s.contains("{{"), "unfilled slot in kernel template");
    let prelude = match precision {
        Precision::Fp32 => "alias T = f32;\nalias T4 = vec4<f32>;\n",
        Precision::Fp16 => "enable f16;\nalias T = f16;\nalias T4 = vec4<f16>;\n",
    };
    // `enable` directives must come first: keep the kernel's own (cooperative matrix) on top.
    let (enables, body): (Vec<&str>, Vec<&str>) = s.lines().partition(|l| l.trim_start().starts_with("enable "));
    let mut out = String::new();
    for l in enables {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(prelude);
    for l in body {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// One dispatch of a compiled kernel with its bound buffers.
pub struct Dispatch {
    pub label: String,
    pub pipeline: Rc<wgpu::ComputePipeline>,
    pub bind_group: wgpu::BindGroup,
    pub groups: [u32; 3],
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch").field("label", &self.label).field("groups", &self.groups).finish()
    }
}

/// Compiles kernels once per specialization and builds dispatches.
pub struct Kernels<'g> {
    pub gpu: &'g Gpu,
    cache: RefCell<HashMap<String, Rc<wgpu::ComputePipeline>>>,
}

impl<'g> Kernels<'g> {
    pub fn new(gpu: &'g Gpu) -> Self {
        Kernels { gpu, cache: RefCell::default() }
    }

    pub fn pipeline(&self, label: &str, source: String) -> Result<Rc<wgpu::ComputePipeline>> {
        if let Some(p) = self.cache.borrow().get(&source) {
            return Ok(p.clone());
        }
        let device = &self.gpu.device;
        let pipeline = self.gpu.scoped(&format!("compiling kernel `{label}`"), || {
            let desc = wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.as_str().into()),
            };
            let module = device.create_shader_module(desc);
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            })
        })?;
        let pipeline = Rc::new(pipeline);
        self.cache.borrow_mut().insert(source, pipeline.clone());
        Ok(pipeline)
    }

    /// A dispatch: `params` at binding 0, `buffers` at their bindings.
    pub fn dispatch(
        &self,
        label: &str,
        pipeline: &Rc<wgpu::ComputePipeline>,
        params: &[u8],
        buffers: &[(u32, &wgpu::Buffer)],
        groups: [u32; 3],
    ) -> Result<Dispatch> {
        let max = self.gpu.limits.max_compute_workgroups_per_dimension;
        if let Some(g) = groups.iter().find(|g| **g > max) {
            return Err(device_error(
                format!("{label} needs {g} workgroups in one dimension, over this adapter's limit of {max}"),
                "use smaller shapes (--batch, --heads, --seq)",
            ));
        }
        let uniform = self.gpu.uniform(&format!("{label} params"), params)?;
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }];
        entries.extend(
            buffers
                .iter()
                .map(|(binding, b)| wgpu::BindGroupEntry { binding: *binding, resource: b.as_entire_binding() }),
        );
        let bind_group = self.gpu.scoped(&format!("binding the buffers of `{label}`"), || {
            self.gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(label),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            })
        })?;
        Ok(Dispatch { label: label.to_string(), pipeline: pipeline.clone(), bind_group, groups })
    }

    /// Check that a workgroup fits the adapter: invocations and workgroup memory.
    pub fn check_workgroup(&self, label: &str, invocations: u32, shared_bytes: u32) -> Result<()> {
        let l = &self.gpu.limits;
        if invocations > l.max_compute_invocations_per_workgroup {
            return Err(device_error(
                format!(
                    "{label} needs {invocations} invocations per workgroup, over this adapter's limit of {}",
                    l.max_compute_invocations_per_workgroup
                ),
                "this adapter is too small for the kernel",
            ));
        }
        if shared_bytes > l.max_compute_workgroup_storage_size {
            return Err(device_error(
                format!(
                    "{label} needs {shared_bytes} bytes of workgroup memory, over this adapter's limit of {}",
                    l.max_compute_workgroup_storage_size
                ),
                "use a smaller --head-dim",
            ));
        }
        Ok(())
    }
}

/// Split `n` workgroups over x (at most `max` per dimension) and y.
pub fn grid(n: u64, max: u32) -> (u32, u32) {
    let x = n.clamp(1, max as u64);
    let y = n.div_ceil(x).max(1);
    (x as u32, y.min(u32::MAX as u64) as u32)
}

fn words(values: &[u32]) -> Vec<u8> {
    bytemuck::cast_slice(values).to_vec()
}

// ---------------------------------------------------------------------------------------------
// Matmul

/// C = A·B with `batch` independent matrices stored back to back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MatmulShape {
    pub m: u64,
    pub n: u64,
    pub k: u64,
    pub batch: u64,
}

impl MatmulShape {
    pub fn new(m: u64, n: u64, k: u64) -> Self {
        MatmulShape { m, n, k, batch: 1 }
    }
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("--m", self.m), ("--n", self.n), ("--k", self.k), ("batch", self.batch)] {
            if v == 0 {
                return Err(Error::invalid(name, v, "a positive size"));
            }
            if v > u32::MAX as u64 / 4 {
                return Err(Error::invalid(name, v, "a size below 2^30"));
            }
        }
        // u128: each size is below 2^30, so these products cannot overflow.
        let (m, n, k, b) = (self.m as u128, self.n as u128, self.k as u128, self.batch as u128);
        let largest = [m * k, k * n, m * n].into_iter().max().unwrap_or(0) * b;
        if largest > u32::MAX as u128 {
            return Err(Error::invalid(
                "--m/--n/--k/--batch",
                format!(
                    "{}×{}×{} (batch {}): {largest} elements in the largest matrix",
                    self.m, self.n, self.k, self.batch
                ),
                "fewer than 2^32 elements per matrix (32-bit indices)",
            ));
        }
        Ok(())
    }
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k * self.batch) as f64
    }
    pub fn bytes(&self, p: Precision) -> f64 {
        ((self.m * self.k + self.k * self.n + self.m * self.n) * self.batch * p.size()) as f64
    }
}

/// Which matmul implementation to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MatmulVariant {
    /// Cooperative matrices when the adapter has them (f32), else tiled.
    Auto,
    /// Register-blocked tiled kernel.
    Tiled,
    /// Cooperative-matrix kernel (fails when the adapter lacks it).
    Coop,
}

/// Tile sizes of the tiled matmul.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiles {
    pub bm: u32,
    pub bn: u32,
    pub bk: u32,
    pub tm: u32,
    pub tn: u32,
}

impl Tiles {
    /// 128×128×8 with 8×8 per invocation (256 invocations) for large matrices. Smaller ones
    /// use 64×64 tiles: 4×4 per invocation on GPUs (256 invocations, more workgroups in
    /// flight), 8×8 on CPU adapters, where lavapipe runs an invocation per SIMD lane and longer
    /// register blocks win (measured on lavapipe, 2 cores: 4.1 GFLOP/s at 512³ with 128×128
    /// r8×8 against 2.2 with 32×32 r4×4; see BENCHMARKS.md).
    pub fn choose(gpu: &Gpu, m: u64, n: u64) -> Tiles {
        let limits = &gpu.limits;
        if let Some(t) = Tiles::from_env() {
            return t;
        }
        let big = Tiles { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 };
        let mid_gpu = Tiles { bm: 64, bn: 64, bk: 8, tm: 4, tn: 4 };
        let mid_cpu = Tiles { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8 };
        let small = Tiles { bm: 32, bn: 32, bk: 8, tm: 4, tn: 4 };
        let fits = |t: &Tiles| {
            t.invocations() <= limits.max_compute_invocations_per_workgroup
                && t.shared_bytes() <= limits.max_compute_workgroup_storage_size
        };
        let pick = match (gpu.is_cpu(), m.min(n)) {
            (true, 0..=64) => mid_cpu,
            (true, _) => big,
            (false, 0..=256) => mid_gpu,
            (false, _) => big,
        };
        [pick, mid_gpu, small].into_iter().find(fits).unwrap_or(small)
    }

    /// `MEMPLAN_MATMUL_TILES=BM,BN,BK,TM,TN` overrides the choice (for tuning on a new GPU);
    /// ignored unless BM, BN, BK, TM, TN are multiples of 4 with TM | BM and TN | BN.
    pub fn from_env() -> Option<Tiles> {
        let v = std::env::var("MEMPLAN_MATMUL_TILES").ok()?;
        let n: Vec<u32> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        let [bm, bn, bk, tm, tn] = n[..] else {
            return None;
        };
        let ok = [bm, bn, bk, tm, tn].iter().all(|x| *x >= 4 && x % 4 == 0) && bm % tm == 0 && bn % tn == 0;
        ok.then_some(Tiles { bm, bn, bk, tm, tn })
    }

    pub fn invocations(&self) -> u32 {
        (self.bm / self.tm) * (self.bn / self.tn)
    }
    pub fn shared_bytes(&self) -> u32 {
        4 * self.bk * (self.bm + self.bn)
    }
}

/// Build C = A·B. Returns the dispatch and the name of the variant that will run.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    k: &Kernels,
    shape: MatmulShape,
    precision: Precision,
    variant: MatmulVariant,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    c: &wgpu::Buffer,
) -> Result<(Dispatch, String)> {
    shape.validate()?;
    precision.check(k.gpu)?;
    let gpu = k.gpu;
    let coop_ok = gpu.coop_f32_8x8 && precision == Precision::Fp32;
    let use_coop = match variant {
        MatmulVariant::Coop if !coop_ok => {
            return Err(device_error(
                format!(
                    "adapter `{}` has no 8×8 f32 cooperative-matrix support for {precision} (EXPERIMENTAL_COOPERATIVE_MATRIX)",
                    gpu.report.name
                ),
                "use --variant tiled or --variant auto",
            ))
        }
        MatmulVariant::Coop => true,
        MatmulVariant::Auto => coop_ok,
        MatmulVariant::Tiled => false,
    };
    let params = words(&[
        shape.m as u32,
        shape.n as u32,
        shape.k as u32,
        shape.batch as u32,
        (shape.m * shape.k) as u32,
        (shape.k * shape.n) as u32,
        (shape.m * shape.n) as u32,
        0,
    ]);
    if use_coop {
        let sg = gpu.adapter.get_info().subgroup_min_size;
        k.check_workgroup("matmul (cooperative)", sg, 4 * 512)?;
        let src = specialize(MATMUL_COOP, precision, &[("SG", sg.to_string())]);
        let pipe = k.pipeline("matmul-coop", src)?;
        let groups = [shape.n.div_ceil(16) as u32, shape.m.div_ceil(16) as u32, shape.batch as u32];
        let d = k.dispatch("matmul", &pipe, &params, &[(1, a), (2, b), (3, c)], groups)?;
        return Ok((d, format!("coop-8x8-sg{sg}")));
    }
    let t = Tiles::choose(gpu, shape.m, shape.n);
    k.check_workgroup("matmul", t.invocations(), t.shared_bytes())?;
    let vec4 = shape.k.is_multiple_of(4) && shape.n.is_multiple_of(4);
    let (io, elem, io_name) = if vec4 { (MATMUL_IO_VEC4, "T4", "vec4") } else { (MATMUL_IO_SCALAR, "T", "scalar") };
    let src = specialize(
        MATMUL,
        precision,
        &[
            ("IO", io.to_string()),
            ("ELEM", elem.to_string()),
            ("BM", t.bm.to_string()),
            ("BN", t.bn.to_string()),
            ("BK", t.bk.to_string()),
            ("TM", t.tm.to_string()),
            ("TN", t.tn.to_string()),
        ],
    );
    let pipe = k.pipeline("matmul", src)?;
    let groups = [shape.n.div_ceil(t.bn as u64) as u32, shape.m.div_ceil(t.bm as u64) as u32, shape.batch as u32];
    let d = k.dispatch("matmul", &pipe, &params, &[(1, a), (2, b), (3, c)], groups)?;
    Ok((d, format!("tiled-{}x{}x{}-r{}x{}-{io_name}", t.bm, t.bn, t.bk, t.tm, t.tn)))
}

// ---------------------------------------------------------------------------------------------
// Attention

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttentionShape {
    pub batch: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub seq: u64,
    pub head_dim: u64,
    pub causal: bool,
}

impl AttentionShape {
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("--batch", self.batch),
            ("--heads", self.heads),
            ("--kv-heads", self.kv_heads),
            ("--seq", self.seq),
            ("--head-dim", self.head_dim),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, v, "a positive size"));
            }
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return Err(Error::invalid(
                "--kv-heads",
                self.kv_heads,
                format!("a divisor of --heads {} (each KV head serves heads/kv_heads query heads)", self.heads),
            ));
        }
        if self.head_dim > 1024 {
            return Err(Error::invalid("--head-dim", self.head_dim, "at most 1024"));
        }
        // u128: four sizes of up to 2^64 each would overflow u64 before the check.
        let q =
            [self.batch, self.seq, self.heads, self.head_dim].iter().fold(1u128, |a, &v| a.saturating_mul(v as u128));
        if q > u32::MAX as u128 / 2 {
            return Err(Error::invalid(
                "--batch × --seq × --heads × --head-dim",
                format!("{} × {} × {} × {}", self.batch, self.seq, self.heads, self.head_dim),
                "fewer than 2^31 elements in Q (32-bit indices)",
            ));
        }
        Ok(())
    }
    pub fn q_elems(&self) -> u64 {
        self.batch * self.seq * self.heads * self.head_dim
    }
    pub fn kv_elems(&self) -> u64 {
        self.batch * self.seq * self.kv_heads * self.head_dim
    }
    pub fn score_elems(&self) -> u64 {
        self.batch * self.heads * self.seq * self.seq
    }
    /// Query-key pairs computed: s² or s(s+1)/2 when causal.
    pub fn pairs(&self) -> f64 {
        let s = self.seq as f64;
        if self.causal {
            s * (s + 1.0) / 2.0
        } else {
            s * s
        }
    }
    /// 4·b·h·pairs·d: QKᵀ and P·V (softmax not counted, as is conventional).
    pub fn flops(&self) -> f64 {
        4.0 * (self.batch * self.heads) as f64 * self.pairs() * self.head_dim as f64
    }
    fn params(&self) -> Vec<u8> {
        let mut v = words(&[
            self.batch as u32,
            self.heads as u32,
            self.kv_heads as u32,
            self.seq as u32,
            self.head_dim as u32,
            self.causal as u32,
        ]);
        v.extend_from_slice(&(1.0 / (self.head_dim as f32).sqrt()).to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v
    }
    pub fn dims(&self) -> crate::bench::reference::AttnDims {
        crate::bench::reference::AttnDims {
            batch: self.batch as usize,
            heads: self.heads as usize,
            kv_heads: self.kv_heads as usize,
            seq: self.seq as usize,
            head_dim: self.head_dim as usize,
            causal: self.causal,
        }
    }
}

/// Which attention kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionKernel {
    /// Materialized scores: QKᵀ, softmax, ·V (memory O(s²)).
    Naive,
    /// Fused online softmax, K/V tiles in workgroup memory (memory O(s)).
    Flash,
}

impl AttentionKernel {
    pub fn name(self) -> &'static str {
        match self {
            AttentionKernel::Naive => "naive",
            AttentionKernel::Flash => "flash",
        }
    }
}

/// Naive attention: three dispatches; `s` holds b·h·s² elements (scores, then probabilities).
#[allow(clippy::too_many_arguments)]
pub fn attention_naive(
    k: &Kernels,
    shape: AttentionShape,
    precision: Precision,
    q: &wgpu::Buffer,
    kb: &wgpu::Buffer,
    v: &wgpu::Buffer,
    s: &wgpu::Buffer,
    o: &wgpu::Buffer,
) -> Result<(Vec<Dispatch>, String)> {
    shape.validate()?;
    precision.check(k.gpu)?;
    let max = k.gpu.limits.max_compute_workgroups_per_dimension;
    k.check_workgroup("attention scores", 256, 2048)?;
    let params = shape.params();
    let bh = (shape.batch * shape.heads) as u32;
    let tiles = shape.seq.div_ceil(16) as u32;
    let scores = k.pipeline("attention-scores", specialize(ATTENTION_SCORES, precision, &[]))?;
    let d1 = k.dispatch("attention scores", &scores, &params, &[(1, q), (2, kb), (3, s)], [tiles, tiles, bh])?;
    let wg: u32 = if k.gpu.is_cpu() { 64 } else { 256 }.min(k.gpu.limits.max_compute_invocations_per_workgroup);
    let rows = shape.batch * shape.heads * shape.seq;
    let (gx, gy) = grid(rows, max);
    let softmax =
        k.pipeline("attention-softmax", specialize(ATTENTION_SOFTMAX, precision, &[("WG", wg.to_string())]))?;
    let sp = words(&[rows as u32, shape.seq as u32, shape.causal as u32, gx]);
    let d2 = k.dispatch("attention softmax", &softmax, &sp, &[(1, s)], [gx, gy, 1])?;
    let pv = k.pipeline("attention-pv", specialize(ATTENTION_PV, precision, &[]))?;
    let d3 = k.dispatch(
        "attention pv",
        &pv,
        &params,
        &[(1, s), (2, v), (3, o)],
        [shape.head_dim.div_ceil(16) as u32, tiles, bh],
    )?;
    Ok((vec![d1, d2, d3], "naive".to_string()))
}

/// Flash attention: one dispatch; `lse` holds b·h·s f32 values.
#[allow(clippy::too_many_arguments)]
pub fn attention_flash(
    k: &Kernels,
    shape: AttentionShape,
    precision: Precision,
    q: &wgpu::Buffer,
    kb: &wgpu::Buffer,
    v: &wgpu::Buffer,
    o: &wgpu::Buffer,
    lse: &wgpu::Buffer,
) -> Result<(Dispatch, String)> {
    shape.validate()?;
    precision.check(k.gpu)?;
    let limits = &k.gpu.limits;
    let hd = shape.head_dim as u32;
    let bq: u32 = if k.gpu.is_cpu() { 16 } else { 64 }.min(limits.max_compute_invocations_per_workgroup);
    // Two f32 tiles of BKV rows; as many rows as fit (≤ 32), at least one.
    let hd_padded = hd.div_ceil(4) * 4;
    let fit = limits.max_compute_workgroup_storage_size / (8 * hd_padded);
    if fit == 0 {
        return Err(device_error(
            format!(
                "flash attention with head dim {hd} needs {} bytes of workgroup memory per key, over this adapter's {} bytes",
                8 * hd_padded,
                limits.max_compute_workgroup_storage_size
            ),
            "use a smaller --head-dim or --kernel naive",
        ));
    }
    let bkv = fit.min(if k.gpu.is_cpu() { 16 } else { 32 });
    k.check_workgroup("flash attention", bq, 8 * hd_padded * bkv)?;
    let src = specialize(
        ATTENTION_FLASH,
        precision,
        &[("HD", hd.to_string()), ("BQ", bq.to_string()), ("BKV", bkv.to_string())],
    );
    let pipe = k.pipeline("attention-flash", src)?;
    let groups = [shape.seq.div_ceil(bq as u64) as u32, (shape.batch * shape.heads) as u32, 1];
    let d =
        k.dispatch("attention flash", &pipe, &shape.params(), &[(1, q), (2, kb), (3, v), (4, o), (5, lse)], groups)?;
    Ok((d, format!("flash-bq{bq}-bkv{bkv}")))
}

// ---------------------------------------------------------------------------------------------
// Layer pieces

/// The norm-specific buffers.
pub enum NormExtra<'a> {
    /// LayerNorm's β.
    LayerNorm { beta: &'a wgpu::Buffer },
    /// RMSNorm's kept x·rstd, and the f32 copy of the input (f16 storage only).
    RmsNorm { normed: &'a wgpu::Buffer, x32: Option<&'a wgpu::Buffer> },
}

/// LayerNorm or RMSNorm over rows of `cols`; `stats` receives mean and rstd (2 f32 per row,
/// LayerNorm) or rstd (1 f32 per row, RMSNorm).
#[allow(clippy::too_many_arguments)]
pub fn norm(
    k: &Kernels,
    precision: Precision,
    rows: u64,
    cols: u64,
    eps: f32,
    x: &wgpu::Buffer,
    gamma: &wgpu::Buffer,
    extra: NormExtra,
    y: &wgpu::Buffer,
    stats: &wgpu::Buffer,
) -> Result<Dispatch> {
    precision.check(k.gpu)?;
    let wg: u32 = if k.gpu.is_cpu() { 64 } else { 256 }.min(k.gpu.limits.max_compute_invocations_per_workgroup);
    let mut buffers = vec![(1, x), (2, gamma), (3, y), (4, stats)];
    let src = match extra {
        NormExtra::LayerNorm { beta } => {
            buffers.push((5, beta));
            norm_source(precision, false, false, wg)
        }
        NormExtra::RmsNorm { normed, x32 } => {
            buffers.push((5, normed));
            if let Some(b) = x32 {
                buffers.push((6, b));
            }
            norm_source(precision, true, x32.is_some(), wg)
        }
    };
    let pipe = k.pipeline("norm", src)?;
    let (gx, gy) = grid(rows, k.gpu.limits.max_compute_workgroups_per_dimension);
    let mut params = words(&[rows as u32, cols as u32]);
    params.extend_from_slice(&eps.to_le_bytes());
    params.extend_from_slice(&gx.to_le_bytes());
    k.dispatch("norm", &pipe, &params, &buffers, [gx, gy, 1])
}

fn norm_source(precision: Precision, rms: bool, x32: bool, wg: u32) -> String {
    let (block, bindings) = if rms {
        let mut b = "@group(0) @binding(5) var<storage, read_write> normed: array<T>;".to_string();
        if x32 {
            b.push_str("\n@group(0) @binding(6) var<storage, read_write> x32: array<f32>;");
        }
        (NORM_RMS, b)
    } else {
        (NORM_LAYER, "@group(0) @binding(5) var<storage, read> beta: array<T>;".to_string())
    };
    let x32_line = if x32 { "        x32[base + j] = v;" } else { "" };
    specialize(
        NORM,
        precision,
        &[
            ("NORM", block.to_string()),
            ("EXTRA_BINDINGS", bindings),
            ("WG", wg.to_string()),
            ("X32", x32_line.to_string()),
        ],
    )
}

/// Element-wise operations of the layer (`v` = x[i], `w` = y[i], computed in f32).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Elementwise {
    /// v + w (residual add).
    Add,
    /// v · w (gated product, the halves of GELU-new and quick-GELU).
    Mul,
    /// act(v), fused.
    Act(crate::bench::reference::Act),
    /// tanh(√(2/π)·(v + 0.044715·v³)): the tensor Hugging Face's GELU-new keeps.
    GeluTanhInner,
    /// c · v.
    Scale(f32),
    /// c + v.
    AddScalar(f32),
    /// sigmoid(1.702·v): the tensor quick-GELU keeps.
    Sigmoid1702,
}

impl Elementwise {
    fn binary(self) -> bool {
        matches!(self, Elementwise::Add | Elementwise::Mul)
    }

    fn body(self) -> String {
        let expr = match self {
            Elementwise::Add => "f32(x[i]) + f32(y[i])".to_string(),
            Elementwise::Mul => "f32(x[i]) * f32(y[i])".to_string(),
            Elementwise::Act(_) => "act(f32(x[i]))".to_string(),
            Elementwise::GeluTanhInner => {
                "tanh(0.7978845608028654 * (f32(x[i]) + 0.044715 * f32(x[i]) * f32(x[i]) * f32(x[i])))".to_string()
            }
            Elementwise::Scale(c) => format!("{c:?} * f32(x[i])"),
            Elementwise::AddScalar(c) => format!("{c:?} + f32(x[i])"),
            Elementwise::Sigmoid1702 => "1.0 / (1.0 + exp(-1.702 * f32(x[i])))".to_string(),
        };
        format!("    out[i] = T({expr});")
    }
}

fn act_body(a: crate::bench::reference::Act) -> &'static str {
    use crate::bench::reference::Act;
    match a {
        Act::Gelu => "    return 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));",
        Act::QuickGelu => "    return v / (1.0 + exp(-1.702 * v));",
        Act::Relu => "    return max(v, 0.0);",
        Act::Silu => "    return v / (1.0 + exp(-v));",
    }
}

/// `out = op(x[, y])` over `n` elements.
pub fn elementwise(
    k: &Kernels,
    precision: Precision,
    op: Elementwise,
    n: u64,
    x: &wgpu::Buffer,
    y: Option<&wgpu::Buffer>,
    out: &wgpu::Buffer,
) -> Result<Dispatch> {
    precision.check(k.gpu)?;
    let act = match op {
        Elementwise::Act(a) => a,
        _ => crate::bench::reference::Act::Relu,
    };
    let src = specialize(ELEMENTWISE, precision, &[("OP", op.body()), ("ACT", act_body(act).to_string())]);
    let pipe = k.pipeline("elementwise", src)?;
    let (gx, gy) = grid(n.div_ceil(256), k.gpu.limits.max_compute_workgroups_per_dimension);
    let params = words(&[n as u32, gx, 0, 0]);
    let mut buffers = vec![(1, x), (3, out)];
    match (op.binary(), y) {
        (false, _) => {}
        (true, Some(y)) => buffers.push((2, y)),
        (true, None) => {
            return Err(device_error("internal: binary element-wise operation without its second input", ""))
        }
    }
    k.dispatch("elementwise", &pipe, &params, &buffers, [gx, gy, 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgpu::naga;

    fn validate(src: &str, caps: naga::valid::Capabilities) {
        let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{}\n{src}", e.emit_to_string(src)));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
            .validate(&module)
            .unwrap_or_else(|e| panic!("{e:?}\n{src}"));
    }

    fn caps() -> naga::valid::Capabilities {
        naga::valid::Capabilities::SHADER_FLOAT16 | naga::valid::Capabilities::COOPERATIVE_MATRIX
    }

    #[test]
    fn every_kernel_specialization_is_valid_wgsl() {
        for p in [Precision::Fp32, Precision::Fp16] {
            for (io, elem) in [(MATMUL_IO_VEC4, "T4"), (MATMUL_IO_SCALAR, "T")] {
                let s = specialize(
                    MATMUL,
                    p,
                    &[
                        ("IO", io.into()),
                        ("ELEM", elem.into()),
                        ("BM", "128".into()),
                        ("BN", "128".into()),
                        ("BK", "8".into()),
                        ("TM", "8".into()),
                        ("TN", "8".into()),
                    ],
                );
                validate(&s, caps());
            }
            validate(&specialize(ATTENTION_SCORES, p, &[]), caps());
            validate(&specialize(ATTENTION_SOFTMAX, p, &[("WG", "64".into())]), caps());
            validate(&specialize(ATTENTION_PV, p, &[]), caps());
            validate(
                &specialize(ATTENTION_FLASH, p, &[("HD", "64".into()), ("BQ", "64".into()), ("BKV", "32".into())]),
                caps(),
            );
            for (rms, x32) in [(false, false), (true, false), (true, true)] {
                validate(&norm_source(p, rms, x32, 64), caps());
            }
            use crate::bench::reference::Act;
            let ops = [
                Elementwise::Add,
                Elementwise::Mul,
                Elementwise::Act(Act::Gelu),
                Elementwise::Act(Act::Silu),
                Elementwise::Act(Act::QuickGelu),
                Elementwise::Act(Act::Relu),
                Elementwise::GeluTanhInner,
                Elementwise::Scale(0.5),
                Elementwise::AddScalar(1.0),
                Elementwise::Sigmoid1702,
            ];
            for op in ops {
                let act = if let Elementwise::Act(a) = op { a } else { Act::Relu };
                validate(&specialize(ELEMENTWISE, p, &[("OP", op.body()), ("ACT", act_body(act).into())]), caps());
            }
        }
    }

    #[test]
    fn cooperative_matrix_kernel_is_valid_wgsl() {
        // Never runs on lavapipe (no cooperative matrices): at least parse and validate it.
        let s = specialize(MATMUL_COOP, Precision::Fp32, &[("SG", "32".into())]);
        assert!(s.starts_with("enable wgpu_cooperative_matrix;"), "{s}");
        validate(&s, caps());
    }

    #[test]
    fn grid_splits_large_counts() {
        assert_eq!(grid(10, 65535), (10, 1));
        assert_eq!(grid(70000, 65535), (65535, 2));
        assert_eq!(grid(0, 65535), (1, 1));
    }
}
