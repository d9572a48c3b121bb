//! Time of one GEMM and of one streaming kernel on one GPU: a roofline per GEMM.
//!
//! A GEMM's compute time is its FLOPs at the GPU's GEMM ceiling (the preset's `[gemm_efficiency]`
//! `in_training` when a GEMM's throughput inside a training step has been measured, else its
//! best isolated measurement `max`) scaled by tile and wave quantization: the output is cut into
//! `tile_m × tile_n` tiles that run `sms` at a time, so a GEMM whose tiles fill 1.2 waves pays
//! for 2 (NVIDIA, "Matrix Multiplication Background User's Guide", §"Tile Quantization" and
//! §"Wave Quantization"). Its memory time is the bytes of A, B and C at the achievable memory
//! bandwidth; the slower of the two is the GEMM's time. Elementwise kernels (norms,
//! activations, softmax, dropout, residual adds) are memory-bound: bytes at that bandwidth.
//!
//! A `memplan bench` calibration replaces the preset's curve: the measured matmul throughput
//! at each measured size, interpolated in log(FLOPs), gives the efficiency of a GEMM of that
//! size (quantization is then already in the measurement).

use crate::error::{Error, Result};
use crate::hw::GpuSpec;
use serde::Serialize;

/// The version of `memplan bench -o` files (`bench::report::BenchFile`) a calibration reads:
/// defined here, below both the writer and the reader.
pub const BENCH_SCHEMA_VERSION: u32 = 1;

/// Efficiency of a fused attention kernel relative to the dense peak when the GPU preset states
/// none: FlashAttention-2 (Dao 2023, arXiv:2307.08691, §4.1) reaches up to 73% of the A100 peak in
/// the forward pass and 63% in the backward pass (which recomputes the scores: 2.5× the forward
/// FLOPs). Capped by the GPU's own GEMM ceiling.
pub const FLASH_FORWARD: f64 = 0.73;
pub const FLASH_BACKWARD: f64 = 0.63;

/// Which fused attention kernel a framework runs (`time::Kernels`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum AttentionBackend {
    /// FlashAttention-2, as PyTorch's SDPA flash backend and the `flash-attn` package run it.
    FlashAttention2,
    /// The kernel written for the GPU's architecture (cuDNN fused attention, FlashAttention-3 on
    /// Hopper), which Transformer Engine and torchtitan select first.
    Native,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GemmModel {
    /// Dense peak of the matmul dtype, FLOP/s.
    pub peak: f64,
    /// GEMM ceiling as a fraction of `peak`.
    pub max: f64,
    /// Achievable memory bandwidth, bytes/s.
    pub bandwidth: f64,
    pub sms: u64,
    pub tile_m: u64,
    pub tile_n: u64,
    /// Bytes per element of GEMM operands.
    pub elem_bytes: f64,
    /// Measured (ln FLOPs of one GEMM, fraction of peak), sorted; replaces max × quantization.
    pub measured: Vec<(f64, f64)>,
    /// FlashAttention-2 (forward, backward) over the dense peak.
    pub flash: (f64, f64),
    /// The architecture's own fused attention (forward, backward) over the dense peak.
    pub native_attention: (f64, f64),
    /// Where the numbers come from.
    pub source: String,
}

impl GemmModel {
    /// The preset's model for a matmul dtype of `elem_bytes` at `peak` FLOP/s. A preset without
    /// a `[gemm_efficiency]` table uses its `default_efficiency` as the ceiling and says so.
    pub fn from_preset(gpu: &GpuSpec, peak: f64, elem_bytes: u64) -> GemmModel {
        match &gpu.gemm_efficiency {
            Some(g) => {
                let pair = |p: [f64; 2]| (p[0], p[1]);
                let flash = g.flash_attention.map_or((FLASH_FORWARD, FLASH_BACKWARD), pair);
                GemmModel {
                    peak,
                    max: g.in_training.unwrap_or(g.max),
                    bandwidth: gpu.memory_bandwidth * g.memory,
                    sms: g.sms.max(1),
                    tile_m: g.tile_m.max(1),
                    tile_n: g.tile_n.max(1),
                    elem_bytes: elem_bytes as f64,
                    measured: Vec::new(),
                    flash,
                    native_attention: g.native_attention.map_or(flash, pair),
                    // Say which ceiling: a GEMM timed alone (MAMF) runs faster than inside a
                    // training step (the A100's in-training ceiling is 0.85 of its MAMF).
                    source: match g.in_training {
                        Some(_) => format!("{} preset [gemm_efficiency] in_training: measured inside training", gpu.name),
                        None => format!(
                            "{} preset [gemm_efficiency] max: the best isolated GEMM; no in-training measurement for this GPU, so read MFU as an upper bound or pass --calibration",
                            gpu.name
                        ),
                    },
                }
            }
            None => GemmModel {
                peak,
                max: gpu.default_efficiency,
                bandwidth: gpu.memory_bandwidth * 0.85,
                sms: 100,
                tile_m: 128,
                tile_n: 128,
                elem_bytes: elem_bytes as f64,
                measured: Vec::new(),
                flash: (FLASH_FORWARD, FLASH_BACKWARD),
                native_attention: (FLASH_FORWARD, FLASH_BACKWARD),
                source: format!(
                    "{}: no [gemm_efficiency] table; its default_efficiency {} as the GEMM ceiling",
                    gpu.name, gpu.default_efficiency
                ),
            },
        }
    }

    /// Use measured GEMMs: (FLOPs of one call, achieved FLOP/s). Errors on an empty or
    /// non-finite set.
    pub fn with_measurements(mut self, points: &[(f64, f64)], what: &str) -> Result<GemmModel> {
        let mut m: Vec<(f64, f64)> = points
            .iter()
            .filter(|(f, t)| f.is_finite() && t.is_finite() && *f > 0.0 && *t > 0.0)
            .map(|(f, t)| (f.ln(), (t / self.peak).min(1.0)))
            .collect();
        if m.is_empty() {
            return Err(Error::invalid("--calibration", what, "matmul results with positive FLOPs and TFLOP/s"));
        }
        m.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.max = m.iter().map(|p| p.1).fold(0.0, f64::max);
        self.measured = m;
        self.source = format!("measured: {what}");
        Ok(self)
    }

    /// Tile and wave quantization of an m × n output (times `batch` independent GEMMs). A
    /// dimension smaller than the tile gets a tile cut to it (rounded up to the 8-wide MMA step),
    /// as libraries pick narrower kernels for skinny matrices.
    pub fn quantization(&self, m: f64, n: f64, batch: f64) -> f64 {
        let fit = |dim: f64, tile: u64| (tile as f64).min((dim / 8.0).ceil().max(1.0) * 8.0);
        let (tm, tn) = (fit(m, self.tile_m), fit(n, self.tile_n));
        let tiles = (m / tm).ceil() * (n / tn).ceil() * batch;
        if tiles <= 0.0 {
            return 1.0;
        }
        let waves = (tiles / self.sms as f64).ceil();
        let useful = m * n * batch;
        (useful / (waves * self.sms as f64 * tm * tn)).clamp(1e-3, 1.0)
    }

    /// Fraction of the peak a GEMM of these dimensions reaches (compute side of the roofline).
    pub fn efficiency(&self, m: f64, n: f64, k: f64, batch: f64) -> f64 {
        if self.measured.is_empty() {
            return self.max * self.quantization(m, n, batch);
        }
        let x = (2.0 * m * n * k * batch).max(1.0).ln();
        let pts = &self.measured;
        if x <= pts[0].0 {
            return pts[0].1;
        }
        if x >= pts[pts.len() - 1].0 {
            return pts[pts.len() - 1].1;
        }
        let i = pts.partition_point(|p| p.0 < x).max(1);
        let (a, b) = (pts[i - 1], pts[i]);
        if b.0 - a.0 <= 0.0 {
            return a.1.max(b.1);
        }
        a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)
    }

    /// Seconds for `batch` GEMMs of m × k by k × n.
    pub fn gemm(&self, m: f64, n: f64, k: f64, batch: f64) -> f64 {
        if m <= 0.0 || n <= 0.0 || k <= 0.0 || batch <= 0.0 {
            return 0.0;
        }
        let flops = 2.0 * m * n * k * batch;
        let compute = flops / (self.peak * self.efficiency(m, n, k, batch).max(1e-6));
        let bytes = self.elem_bytes * (m * k + k * n + m * n) * batch;
        compute.max(bytes / self.bandwidth)
    }

    /// Forward, input-gradient and weight-gradient GEMMs of a linear layer y = x·W
    /// (x: tokens × k, W: k × n): (forward, backward) seconds.
    pub fn linear(&self, tokens: f64, k: f64, n: f64) -> (f64, f64) {
        let fwd = self.gemm(tokens, n, k, 1.0);
        let dgrad = self.gemm(tokens, k, n, 1.0);
        let wgrad = self.gemm(k, n, tokens, 1.0);
        (fwd, dgrad + wgrad)
    }

    /// Seconds to stream `bytes` through memory.
    pub fn stream(&self, bytes: f64) -> f64 {
        bytes.max(0.0) / self.bandwidth
    }

    /// Seconds for `flops` of a fused attention kernel at `fraction` of the peak, capped by the
    /// GEMM ceiling.
    pub fn fused(&self, flops: f64, fraction: f64) -> f64 {
        flops.max(0.0) / (self.peak * fraction.min(self.max).max(1e-6))
    }

    /// (forward, backward) fractions of the peak of a backend's fused attention on this GPU.
    pub fn attention(&self, backend: AttentionBackend) -> (f64, f64) {
        match backend {
            AttentionBackend::FlashAttention2 => self.flash,
            AttentionBackend::Native => self.native_attention,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> GemmModel {
        GemmModel {
            peak: 312e12,
            max: 0.869,
            bandwidth: 2.039e12 * 0.88,
            sms: 108,
            tile_m: 128,
            tile_n: 128,
            elem_bytes: 2.0,
            measured: Vec::new(),
            flash: (FLASH_FORWARD, FLASH_BACKWARD),
            native_attention: (FLASH_FORWARD, FLASH_BACKWARD),
            source: String::new(),
        }
    }

    #[test]
    fn waves_and_tiles_quantize() {
        let g = model();
        // 108 tiles of 128×128: exactly one wave.
        assert!((g.quantization(128.0 * 108.0, 128.0, 1.0) - 1.0).abs() < 1e-12);
        // 109 tiles take two waves: 109 / 216 of the work slots are used.
        assert!((g.quantization(128.0 * 109.0, 128.0, 1.0) - 109.0 / 216.0).abs() < 1e-12);
        // A 100-wide output runs 104-wide tiles (the 8-wide step): 100 of 104 columns used.
        assert!((g.quantization(128.0 * 108.0, 100.0, 1.0) - 100.0 / 104.0).abs() < 1e-12);
    }

    #[test]
    fn roofline_picks_the_slower_side() {
        let g = model();
        // 8192³: compute-bound, at the ceiling (8192/128 = 64 → 4096 tiles, 37.9 waves → 38).
        let t = g.gemm(8192.0, 8192.0, 8192.0, 1.0);
        let q = 4096.0 / (38.0 * 108.0);
        assert!((t - 2.0 * 8192f64.powi(3) / (312e12 * 0.869 * q)).abs() / t < 1e-12);
        // A matrix-vector product is memory-bound.
        let t = g.gemm(8192.0, 1.0, 8192.0, 1.0);
        assert!((t - 2.0 * (8192.0 * 8192.0 + 8192.0 + 8192.0) / g.bandwidth).abs() / t < 1e-12);
    }

    #[test]
    fn attention_backends_come_from_the_preset() {
        // H100: FlashAttention-2 at 35% (FlashAttention-3 paper) and the Hopper kernels above it.
        let h100 = GpuSpec::preset("h100-sxm").unwrap();
        let g = GemmModel::from_preset(&h100, 989.4e12, 2);
        assert_eq!(g.attention(AttentionBackend::FlashAttention2), (0.35, 0.30));
        assert_eq!(g.attention(AttentionBackend::Native), (0.61, 0.49));
        // A100 has no faster native kernel than FlashAttention-2; its training GEMM ceiling is the
        // one measured in a Megatron layer, below the isolated MAMF.
        let a100 = GpuSpec::preset("a100-80gb").unwrap();
        let g = GemmModel::from_preset(&a100, 312e12, 2);
        assert_eq!(g.attention(AttentionBackend::Native), g.attention(AttentionBackend::FlashAttention2));
        assert_eq!(g.flash, (FLASH_FORWARD, FLASH_BACKWARD));
        assert!(g.max < a100.gemm_efficiency.as_ref().unwrap().max);
    }

    #[test]
    fn measurements_replace_the_curve() {
        let g = model().with_measurements(&[(1e9, 31.2e12), (1e12, 249.6e12)], "test").unwrap();
        assert!((g.efficiency(500.0, 1000.0, 1000.0, 1.0) - 0.1).abs() < 1e-9); // 1e9 FLOPs
        let mid = g.efficiency(1000.0 * 31.62, 1000.0 * 1.0, 1000.0 * 1.0, 1.0); // ~6.3e10 FLOPs
        assert!(mid > 0.1 && mid < 0.8);
        assert!((g.efficiency(1e5, 1e5, 1e5, 1.0) - 0.8).abs() < 1e-9);
        assert!(model().with_measurements(&[(f64::NAN, 1.0)], "x").is_err());
    }
}
