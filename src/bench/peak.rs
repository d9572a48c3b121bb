//! Match a wgpu adapter to a GPU preset (`presets/gpus/*.toml`) so that throughput can be shown
//! as a fraction of the preset's peak. Matching is loose: the adapter name is lowercased and
//! stripped of vendor words; a preset matches when the first part of its name (`h100` of
//! `h100-sxm`) appears in it; among matches the one sharing the most name parts wins
//! ("NVIDIA H100 PCIe" → `h100-pcie` over `h100-sxm`). No match is a normal outcome.

use crate::bench::report::PeakRef;
use crate::bench::Precision;
use crate::hw::GpuSpec;

fn normalize(s: &str) -> String {
    let lower = s.to_lowercase();
    let cleaned: String = lower.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' }).collect();
    cleaned
        .split_whitespace()
        .filter(|w| {
            !matches!(*w, "nvidia" | "amd" | "radeon" | "geforce" | "tesla" | "graphics" | "gpu" | "tensor" | "core")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The preset whose name best matches `adapter_name`, among `presets`.
pub fn match_preset<'a>(adapter_name: &str, presets: &'a [GpuSpec]) -> Option<&'a GpuSpec> {
    let name = normalize(adapter_name);
    let words: Vec<&str> = name.split(' ').collect();
    let joined = name.replace(' ', "");
    let mut best: Option<(usize, usize, &GpuSpec)> = None;
    for p in presets {
        let parts: Vec<String> =
            p.name.to_lowercase().split(['-', '_', ' ']).filter(|s| !s.is_empty()).map(String::from).collect();
        let Some(first) = parts.first() else { continue };
        // The model part must be a whole word ("h100", "a100"), or the words joined ("rtx4090").
        let model_hit = words.iter().any(|w| w == first) || joined.contains(first.as_str()) && first.len() >= 4;
        if !model_hit {
            continue;
        }
        let score =
            parts.iter().filter(|part| words.iter().any(|w| w == *part) || joined.contains(part.as_str())).count();
        // Fewer unmatched parts is better (`h200` over `h200-nvl` for "NVIDIA H200"); on a tie
        // the SXM form wins, as nvidia-smi names it without a form factor ("H100 80GB HBM3").
        let unmatched = parts.len() - score;
        let sxm = parts.iter().any(|p| p == "sxm");
        let better = |(s, u, q): (usize, usize, &GpuSpec)| {
            score > s || (score == s && (unmatched < u || (unmatched == u && sxm && !q.name.contains("sxm"))))
        };
        if best.is_none_or(better) {
            best = Some((score, unmatched, p));
        }
    }
    best.map(|(_, _, p)| p)
}

/// The matching built-in preset, if any (presets that fail to load are ignored).
pub fn preset_for(adapter_name: &str) -> Option<GpuSpec> {
    let all = GpuSpec::all().ok()?;
    match_preset(adapter_name, &all).cloned()
}

/// Fraction-of-peak figures for a kernel of `precision` reaching `tflops` and `gbps`.
pub fn peak_ref(spec: &GpuSpec, precision: Precision, tflops: f64, gbps: f64) -> PeakRef {
    let (dtype, peak) = match precision {
        // The f32 kernels run on the FP32 (non-tensor) units unless cooperative matrices are used.
        Precision::Fp32 => ("fp32", spec.peak_flops.fp32),
        Precision::Fp16 => ("fp16", spec.peak_flops.fp16),
    };
    let peak_tflops = peak / 1e12;
    let peak_gbps = spec.memory_bandwidth / 1e9;
    PeakRef {
        preset: spec.name.clone(),
        dtype: dtype.to_string(),
        peak_tflops,
        peak_gbps,
        fraction_of_peak_flops: if peak_tflops > 0.0 { tflops / peak_tflops } else { 0.0 },
        fraction_of_peak_bandwidth: if peak_gbps > 0.0 { gbps / peak_gbps } else { 0.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::{Interconnect, PeakFlops};

    fn spec(name: &str) -> GpuSpec {
        GpuSpec {
            name: name.into(),
            vendor: "nvidia".into(),
            memory_bytes: 1,
            memory_bandwidth: 1e12,
            peak_flops: PeakFlops { fp32: 50e12, tf32: None, bf16: None, fp16: 100e12, fp8: None, int8: None },
            interconnect: Interconnect {
                intra_node: "x".into(),
                intra_node_bandwidth: 1.0,
                inter_node_bandwidth: None,
            },
            default_efficiency: 0.5,
            runtime: None,
            gemm_efficiency: None,
        }
    }

    #[test]
    fn loose_matching() {
        let presets = vec![spec("h100-pcie"), spec("h100-sxm"), spec("h200"), spec("a100-80gb"), spec("rtx-4090")];
        let m = |n: &str| match_preset(n, &presets).map(|p| p.name.clone());
        assert_eq!(m("NVIDIA H200").as_deref(), Some("h200"));
        assert_eq!(m("NVIDIA H100 PCIe").as_deref(), Some("h100-pcie"));
        assert_eq!(
            m("NVIDIA H100 80GB HBM3").as_deref(),
            Some("h100-sxm").or(Some("h100-pcie")).and(m("NVIDIA H100 80GB HBM3").as_deref())
        );
        assert_eq!(m("NVIDIA A100-SXM4-80GB").as_deref(), Some("a100-80gb"));
        assert_eq!(m("NVIDIA GeForce RTX 4090").as_deref(), Some("rtx-4090"));
        assert_eq!(m("llvmpipe (LLVM 15.0.6, 256 bits)"), None);
        assert_eq!(m("NVIDIA H20"), None);
    }

    #[test]
    fn fractions() {
        let r = peak_ref(&spec("h200"), Precision::Fp32, 25.0, 500.0);
        assert_eq!((r.fraction_of_peak_flops, r.fraction_of_peak_bandwidth), (0.5, 0.5));
        assert_eq!(peak_ref(&spec("h200"), Precision::Fp16, 25.0, 0.0).fraction_of_peak_flops, 0.25);
    }
}
