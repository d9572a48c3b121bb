//! GPU kernel checks against the CPU references. They need a wgpu adapter: without one they
//! print why and pass, unless MEMPLAN_REQUIRE_GPU=1 (CI, scripts/test.sh), where they fail.
//! Sizes stay small: CI runs them on lavapipe (Mesa's CPU Vulkan driver) on two cores.

use memplan::bench::backend::{Backend, RunOptions, WgpuBackend};
use memplan::bench::device::Gpu;
use memplan::bench::kernels::{AttentionKernel, AttentionShape, Kernels, MatmulShape, MatmulVariant};
use memplan::bench::layer::LayerShape;
use memplan::bench::report::CheckReport;
use memplan::bench::timing::{Plan, TimingMethod};
use memplan::bench::workload::{self, CaseSpec};
use memplan::bench::{Precision, REQUIRE_GPU_ENV};
use memplan::Error;

fn gpu() -> Option<Gpu> {
    match Gpu::open(None) {
        Ok(g) => Some(g),
        Err(e) => {
            if std::env::var(REQUIRE_GPU_ENV).is_ok_and(|v| v == "1") {
                panic!("{REQUIRE_GPU_ENV}=1 but no usable GPU adapter: {e}");
            }
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

fn precisions(gpu: &Gpu) -> Vec<Precision> {
    if gpu.has(wgpu::Features::SHADER_F16) {
        vec![Precision::Fp32, Precision::Fp16]
    } else {
        eprintln!("adapter has no SHADER_F16: fp16 cases skipped");
        vec![Precision::Fp32]
    }
}

fn run_check(gpu: &Gpu, case: &CaseSpec) -> (CheckReport, String) {
    let k = Kernels::new(gpu);
    let built = workload::build(&k, case, 42).unwrap_or_else(|e| panic!("{case:?}: {e}"));
    let c = workload::check(gpu, case, &built, 42).unwrap_or_else(|e| panic!("{case:?}: {e}"));
    assert!(c.passed, "{case:?} variant {}: {c:?}", built.variant);
    assert!(c.compared > 0);
    (c, built.variant)
}

#[test]
fn matmul_matches_reference_at_odd_sizes() {
    let Some(gpu) = gpu() else { return };
    for p in precisions(&gpu) {
        // tile-aligned, vec4-able but not tile multiples, fully odd, skinny, batched
        for (m, n, k, batch) in [(64, 64, 64, 1), (67, 36, 44, 1), (33, 17, 29, 1), (1, 130, 7, 1), (5, 3, 1, 1), (19, 24, 12, 3)] {
            let shape = MatmulShape { m, n, k, batch };
            let (_, variant) = run_check(&gpu, &CaseSpec::Matmul { shape, precision: p, variant: MatmulVariant::Tiled });
            let expect = if k % 4 == 0 && n % 4 == 0 { "vec4" } else { "scalar" };
            assert!(variant.ends_with(expect), "{variant}");
        }
    }
}
