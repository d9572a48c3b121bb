//! The benchmark's search run 40 times, for back-to-back comparisons between builds on a busy
//! machine (BENCHMARKS.md): `cargo run --release --example prof_search [mixed]` (megatron-bf16, or
//! mixed-bf16 for the other frameworks).

use memplan::hw::GpuSpec;
use memplan::memory::states::ParamInfo;
use memplan::memory::{Precision, Setup};
use memplan::model::presets;
use memplan::plan::search::{search, SearchConfig};
fn main() {
    let model = presets::model("llama-2-70b").unwrap();
    let info = ParamInfo::of(&model);
    let gpu = GpuSpec::preset("h100-sxm").unwrap();
    let precision = if std::env::args().nth(1).as_deref() == Some("mixed") {
        Precision::MixedBf16
    } else {
        Precision::MegatronBf16
    };
    let setup = Setup { precision, seq: 8192, ..Setup::default() };
    let mut cfg = SearchConfig::new(1024, 8, 2048, &gpu, &setup);
    cfg.allow_offload = true;
    let t = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..40 {
        n += search(&model, &info, &setup, &gpu, &cfg).unwrap().evaluated;
    }
    let r = search(&model, &info, &setup, &gpu, &cfg).unwrap();
    eprintln!(
        "{:.0} candidates/s ({} per search, {} fit)",
        n as f64 / t.elapsed().as_secs_f64(),
        r.evaluated,
        r.fitting
    );
}
