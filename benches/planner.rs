//! The planner's search over the full space for a 70B model on 1024 GPUs: candidates evaluated
//! per second (criterion reports the throughput in elements = candidate plans).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use memplan::hw::GpuSpec;
use memplan::memory::states::ParamInfo;
use memplan::memory::{OverheadConfig, Precision, Setup};
use memplan::model::presets;
use memplan::plan::search::{search, SearchConfig};
use memplan::plan::time::TimeConfig;
use std::hint::black_box;

fn full_space() -> SearchConfig {
    SearchConfig {
        gpus: 1024,
        gpus_per_node: 8,
        global_batch: 2048,
        headroom_bytes: 0,
        time: TimeConfig::default(),
        overhead: OverheadConfig::default(),
        allow_offload: true,
        top_k: 10,
        max_tp: u64::MAX,
        max_pp: u64::MAX,
        max_cp: 16,
    }
}

fn planner(c: &mut Criterion) {
    let model = presets::model("llama-2-70b").unwrap();
    let info = ParamInfo::of(&model);
    let gpu = GpuSpec::preset("h100-sxm").unwrap();
    let setup = Setup { precision: Precision::MegatronBf16, seq: 8192, ..Setup::default() };
    let cfg = full_space();
    let evaluated = search(&model, &info, &setup, &gpu, &cfg).evaluated;
    eprintln!("llama-2-70b on 1024 × h100-sxm, seq 8192, global batch 2048: {evaluated} candidate plans per search");
    let mut group = c.benchmark_group("plan");
    group.throughput(Throughput::Elements(evaluated));
    group.bench_function("llama-2-70b/1024xh100", |b| b.iter(|| black_box(search(&model, &info, &setup, &gpu, &cfg))));
    group.finish();
}

criterion_group!(benches, planner);
criterion_main!(benches);
