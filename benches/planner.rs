//! The planner's search over the full space for a 70B model on 1024 GPUs, every framework:
//! candidates evaluated per second (criterion reports the throughput in elements = candidate
//! (framework, plan) pairs).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use memplan::hw::GpuSpec;
use memplan::memory::states::ParamInfo;
use memplan::memory::{Precision, Setup};
use memplan::model::presets;
use memplan::plan::search::{search, SearchConfig};
use std::hint::black_box;

fn planner(c: &mut Criterion) {
    let model = presets::model("llama-2-70b").unwrap();
    let info = ParamInfo::of(&model);
    let gpu = GpuSpec::preset("h100-sxm").unwrap();
    let setup = Setup { precision: Precision::MegatronBf16, seq: 8192, ..Setup::default() };
    let mut cfg = SearchConfig::new(1024, 8, 2048, &gpu, &setup);
    cfg.allow_offload = true;
    let evaluated = search(&model, &info, &setup, &gpu, &cfg).unwrap().evaluated;
    eprintln!(
        "llama-2-70b on 1024 × h100-sxm, seq 8192, global batch 2048, megatron-bf16: {evaluated} candidates per search"
    );
    let mut group = c.benchmark_group("plan");
    group.throughput(Throughput::Elements(evaluated));
    group.bench_function("llama-2-70b/1024xh100", |b| {
        b.iter(|| black_box(search(&model, &info, &setup, &gpu, &cfg).unwrap()))
    });
    group.finish();
    // Every framework (mixed-bf16 is the recipe of DeepSpeed, torchtitan and HF FSDP).
    let mixed = Setup { precision: Precision::MixedBf16, ..setup.clone() };
    let mut cfg = SearchConfig::new(1024, 8, 2048, &gpu, &mixed);
    cfg.allow_offload = true;
    let evaluated = search(&model, &info, &mixed, &gpu, &cfg).unwrap().evaluated;
    eprintln!(
        "llama-2-70b on 1024 × h100-sxm, seq 8192, global batch 2048, mixed-bf16: {evaluated} candidates per search"
    );
    let mut group = c.benchmark_group("plan-mixed");
    group.throughput(Throughput::Elements(evaluated));
    group.bench_function("llama-2-70b/1024xh100", |b| {
        b.iter(|| black_box(search(&model, &info, &mixed, &gpu, &cfg).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, planner);
criterion_main!(benches);
