//! CPU references for every kernel (f64 accumulation), the random inputs they are fed, and
//! the comparison that turns a GPU output into a [`CheckReport`].

use crate::bench::report::CheckReport;
use crate::bench::Precision;

/// SplitMix64: small, deterministic, good enough for test data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` values uniform in ±[0.1, 1]·scale: random signs and magnitudes, never zero (a zero
    /// input would hide an unread element).
    pub fn values(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let mag = 0.1 + 0.9 * self.unit();
                let sign = if self.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
                (sign * mag) as f32 * scale
            })
            .collect()
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Values as the GPU will see them: rounded to f16 when the kernel stores f16.
pub fn round(values: &mut [f32], precision: Precision) {
    if precision == Precision::Fp16 {
        for v in values {
            *v = half::f16::from_f32(*v).to_f32();
        }
    }
}

/// Host values to the bytes of a buffer of `precision`.
pub fn to_bytes(values: &[f32], precision: Precision) -> Vec<u8> {
    match precision {
        Precision::Fp32 => bytemuck::cast_slice(values).to_vec(),
        Precision::Fp16 => {
            let h: Vec<half::f16> = values.iter().map(|v| half::f16::from_f32(*v)).collect();
            bytemuck::cast_slice(&h).to_vec()
        }
    }
}

/// Buffer bytes of `precision` back to f32.
pub fn from_bytes(bytes: &[u8], precision: Precision) -> Vec<f32> {
    match precision {
        Precision::Fp32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Precision::Fp16 => bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
    }
}

/// A NaN pattern to poison output buffers before a checked run (any element the kernel
/// forgets to write fails the comparison).
pub fn poison_word(precision: Precision) -> u32 {
    match precision {
        Precision::Fp32 => 0x7FC0_0000,
        Precision::Fp16 => 0x7E00_7E00,
    }
}

/// C = A·B for one matrix: A is m×k, B is k×n, row-major.
pub fn matmul(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
    let mut c = vec![0f64; m * n];
    for i in 0..m {
        for kk in 0..k {
            let av = a[i * k + kk] as f64;
            let brow = &b[kk * n..kk * n + n];
            let crow = &mut c[i * n..i * n + n];
            for (cv, bv) in crow.iter_mut().zip(brow) {
                *cv += av * *bv as f64;
            }
        }
    }
    c
}

/// One element of A·B.
pub fn matmul_at(a: &[f32], b: &[f32], n: usize, k: usize, i: usize, j: usize) -> f64 {
    (0..k).map(|kk| a[i * k + kk] as f64 * b[kk * n + j] as f64).sum()
}

/// Attention shapes (see `ops::AttentionShape`), as the reference needs them.
#[derive(Clone, Copy, Debug)]
pub struct AttnDims {
    pub batch: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub seq: usize,
    pub head_dim: usize,
    pub causal: bool,
}

/// One output row O[b, i, h, :] and its log-sum-exp. Q is [b, s, h, d]; K, V are [b, s, g, d].
pub fn attention_row(q: &[f32], k: &[f32], v: &[f32], d: AttnDims, b: usize, h: usize, i: usize) -> (Vec<f64>, f64) {
    let g = h / (d.heads / d.kv_heads);
    let scale = 1.0 / (d.head_dim as f64).sqrt();
    let qi = ((b * d.seq + i) * d.heads + h) * d.head_dim;
    let keys = if d.causal { i + 1 } else { d.seq };
    let scores: Vec<f64> = (0..keys)
        .map(|j| {
            let kj = ((b * d.seq + j) * d.kv_heads + g) * d.head_dim;
            (0..d.head_dim).map(|x| q[qi + x] as f64 * k[kj + x] as f64).sum::<f64>() * scale
        })
        .collect();
    let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = scores.iter().map(|s| (s - m).exp()).sum();
    let mut out = vec![0f64; d.head_dim];
    for (j, s) in scores.iter().enumerate() {
        let p = (s - m).exp() / sum;
        let vj = ((b * d.seq + j) * d.kv_heads + g) * d.head_dim;
        for (x, o) in out.iter_mut().enumerate() {
            *o += p * v[vj + x] as f64;
        }
    }
    (out, m + sum.ln())
}

/// Full attention: O in [b, s, h, d] order and LSE in [b, h, s] order.
pub fn attention(q: &[f32], k: &[f32], v: &[f32], d: AttnDims) -> (Vec<f64>, Vec<f64>) {
    let mut o = vec![0f64; d.batch * d.seq * d.heads * d.head_dim];
    let mut lse = vec![0f64; d.batch * d.heads * d.seq];
    for b in 0..d.batch {
        for h in 0..d.heads {
            for i in 0..d.seq {
                let (row, l) = attention_row(q, k, v, d, b, h, i);
                let oi = ((b * d.seq + i) * d.heads + h) * d.head_dim;
                o[oi..oi + d.head_dim].copy_from_slice(&row);
                lse[(b * d.heads + h) * d.seq + i] = l;
            }
        }
    }
    (o, lse)
}

/// LayerNorm (with β) or RMSNorm (β = None) over rows of `cols`.
pub fn norm(x: &[f64], cols: usize, gamma: &[f32], beta: Option<&[f32]>, eps: f64) -> Vec<f64> {
    let mut y = vec![0f64; x.len()];
    for (row, out) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let n = cols as f64;
        let (mean, var) = match beta {
            Some(_) => {
                let mean = row.iter().sum::<f64>() / n;
                (mean, row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n)
            }
            None => (0.0, row.iter().map(|v| v * v).sum::<f64>() / n),
        };
        let rstd = 1.0 / (var + eps).sqrt();
        for j in 0..cols {
            out[j] = (row[j] - mean) * rstd * gamma[j] as f64 + beta.map_or(0.0, |b| b[j] as f64);
        }
    }
    y
}

/// The activations the layer kernel implements (GELU in its tanh form: WGSL has no erf).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    Gelu,
    QuickGelu,
    Relu,
    Silu,
}

impl Act {
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Act::Gelu => 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh()),
            Act::QuickGelu => x / (1.0 + (-1.702 * x).exp()),
            Act::Relu => x.max(0.0),
            Act::Silu => x / (1.0 + (-x).exp()),
        }
    }
}

/// Compare a GPU output with the reference: an element passes when
/// |gpu − ref| ≤ tol·(|ref| + mean |ref|) (relative, with a floor at the output's typical
/// magnitude so values near zero do not dominate). NaN (an unwritten, poisoned element) fails.
pub fn compare(gpu: &[f32], reference: &[f64], tolerance: f64) -> CheckReport {
    compare_pairs(gpu.iter().map(|g| *g as f64).zip(reference.iter().copied()), tolerance)
}

pub fn compare_pairs(pairs: impl Iterator<Item = (f64, f64)> + Clone, tolerance: f64) -> CheckReport {
    let (n, sum) = pairs.clone().fold((0u64, 0f64), |(n, s), (_, r)| (n + 1, s + r.abs()));
    let floor = if n > 0 { sum / n as f64 } else { 0.0 }.max(1e-30);
    let mut max_abs: f64 = 0.0;
    let mut max_rel: f64 = 0.0;
    let mut passed = n > 0;
    for (g, r) in pairs {
        let abs = (g - r).abs();
        let rel = abs / (r.abs() + floor);
        // NaN fails: `rel <= tolerance` is false for it.
        if rel.partial_cmp(&tolerance).is_none_or(|o| o == std::cmp::Ordering::Greater) {
            passed = false;
        }
        if abs.is_nan() {
            max_abs = f64::INFINITY;
            max_rel = f64::INFINITY;
        } else {
            max_abs = max_abs.max(abs);
            max_rel = max_rel.max(rel);
        }
    }
    CheckReport { compared: n, max_abs_error: max_abs, max_rel_error: max_rel, tolerance, passed }
}

/// Default tolerances by storage precision: f32 kernels accumulate in f32; f16 kernels round
/// inputs, intermediates and outputs to 11 significant bits.
pub fn tolerance(precision: Precision, depth: usize) -> f64 {
    match precision {
        Precision::Fp32 => 1e-4 * (1.0 + (depth as f64).sqrt() / 16.0),
        Precision::Fp16 => 1e-2 * (1.0 + (depth as f64).sqrt() / 64.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_never_zero_and_deterministic() {
        let a = Rng::new(7).values(10_000, 1.0);
        assert!(a.iter().all(|v| v.abs() >= 0.1 && v.abs() <= 1.0));
        assert_eq!(a, Rng::new(7).values(10_000, 1.0));
        assert!(a.iter().any(|v| *v < 0.0) && a.iter().any(|v| *v > 0.0));
    }

    #[test]
    fn compare_fails_on_nan_and_large_error() {
        let r = [1.0, 2.0, 3.0];
        assert!(compare(&[1.0, 2.0, 3.0], &r, 1e-6).passed);
        assert!(!compare(&[1.0, f32::NAN, 3.0], &r, 1e-6).passed);
        assert!(!compare(&[1.0, 2.1, 3.0], &r, 1e-3).passed);
    }

    #[test]
    fn f16_round_trip() {
        let v = vec![1.0f32, -0.333_333, 65504.0];
        let back = from_bytes(&to_bytes(&v, Precision::Fp16), Precision::Fp16);
        assert_eq!(back[0], 1.0);
        assert!((back[1] + 0.333_333).abs() < 1e-3);
        assert_eq!(back[2], 65504.0);
    }

    #[test]
    fn attention_row_matches_uniform_weights() {
        // Identical keys: uniform weights, so the output is the mean of the values.
        let d = AttnDims { batch: 1, heads: 1, kv_heads: 1, seq: 3, head_dim: 1, causal: false };
        let (o, lse) = attention_row(&[1.0, 1.0, 1.0], &[2.0, 2.0, 2.0], &[1.0, 2.0, 6.0], d, 0, 0, 0);
        assert!((o[0] - 3.0).abs() < 1e-12);
        assert!((lse - (2.0 + 3f64.ln())).abs() < 1e-12);
    }
}
