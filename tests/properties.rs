//! Invariants of the memory model (proptest).

use memplan::memory::{
    estimate, states::ParamInfo, AttentionKernel, OverheadConfig, Phase, Precision, Recompute, Setup,
};
use memplan::model::derive::decoder_for_params;
use proptest::prelude::*;

fn setup(
    batch: u64,
    seq: u64,
    recompute: Recompute,
    attention: AttentionKernel,
    phase: Phase,
    precision: Precision,
) -> Setup {
    Setup { micro_batch: batch, seq, recompute, attention, phase, precision, ..Setup::default() }
}

fn arb_recompute() -> impl Strategy<Value = Recompute> {
    prop_oneof![Just(Recompute::None), Just(Recompute::Selective), Just(Recompute::Full)]
}
fn arb_attention() -> impl Strategy<Value = AttentionKernel> {
    prop_oneof![Just(AttentionKernel::Eager), Just(AttentionKernel::Flash)]
}
fn arb_phase() -> impl Strategy<Value = Phase> {
    prop_oneof![Just(Phase::Train), Just(Phase::Inference)]
}
fn arb_precision() -> impl Strategy<Value = Precision> {
    prop_oneof![
        Just(Precision::Fp32),
        Just(Precision::Bf16),
        Just(Precision::AmpBf16),
        Just(Precision::MixedBf16),
        Just(Precision::MegatronBf16)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn memory_is_monotone_in_batch_and_sequence(
        params in 50_000_000u64..20_000_000_000,
        batch in 1u64..16, seq in 16u64..8192,
        recompute in arb_recompute(), attention in arb_attention(), phase in arb_phase(), precision in arb_precision(),
    ) {
        let m = decoder_for_params(params);
        let info = ParamInfo::of(&m);
        let o = OverheadConfig::default();
        let base = estimate(&m, &info, &setup(batch, seq, recompute, attention, phase, precision), &o);
        let more_batch = estimate(&m, &info, &setup(batch + 1, seq, recompute, attention, phase, precision), &o);
        let more_seq = estimate(&m, &info, &setup(batch, seq + 1, recompute, attention, phase, precision), &o);
        prop_assert!(more_batch.peak_allocated >= base.peak_allocated);
        prop_assert!(more_seq.peak_allocated >= base.peak_allocated);
        prop_assert!(base.total >= base.peak_allocated);
    }

    #[test]
    fn recompute_never_increases_saved_activations(
        params in 50_000_000u64..20_000_000_000, batch in 1u64..8, seq in 16u64..8192, attention in arb_attention(), precision in arb_precision(),
    ) {
        let m = decoder_for_params(params);
        let info = ParamInfo::of(&m);
        let o = OverheadConfig::default();
        let at = |r| estimate(&m, &info, &setup(batch, seq, r, attention, Phase::Train, precision), &o).activations;
        prop_assert!(at(Recompute::Selective) <= at(Recompute::None));
        prop_assert!(at(Recompute::Full) <= at(Recompute::Selective));
    }

    #[test]
    fn flash_never_exceeds_eager(
        params in 50_000_000u64..20_000_000_000, batch in 1u64..8, seq in 16u64..8192,
        recompute in arb_recompute(), phase in arb_phase(), precision in arb_precision(),
    ) {
        let m = decoder_for_params(params);
        let info = ParamInfo::of(&m);
        let o = OverheadConfig::default();
        let at = |a| estimate(&m, &info, &setup(batch, seq, recompute, a, phase, precision), &o);
        let (flash, eager) = (at(AttentionKernel::Flash), at(AttentionKernel::Eager));
        prop_assert!(flash.activations <= eager.activations);
        prop_assert!(flash.peak_allocated <= eager.peak_allocated);
    }
}

mod parallel {
    use memplan::memory::estimate::estimate_plan;
    use memplan::memory::{states::ParamInfo, OverheadConfig, Precision, Setup};
    use memplan::model::{derive::decoder_for_params, params};
    use memplan::parallel::layout::stages;
    use memplan::parallel::ParallelPlan;
    use proptest::prelude::*;

    fn arb_precision() -> impl Strategy<Value = Precision> {
        prop_oneof![
            Just(Precision::Fp32),
            Just(Precision::AmpBf16),
            Just(Precision::MixedBf16),
            Just(Precision::MegatronBf16)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]

        #[test]
        fn larger_dp_never_increases_per_gpu_memory_under_zero(
            params in 100_000_000u64..30_000_000_000, zero in 1u8..=3, dp in 1u64..256, precision in arb_precision(),
        ) {
            let m = decoder_for_params(params);
            let info = ParamInfo::of(&m);
            let setup = Setup { precision, ..Setup::default() };
            let at = |dp| {
                let plan = ParallelPlan { dp, zero, ..ParallelPlan::single() };
                estimate_plan(&m, &info, &setup, &plan, &OverheadConfig::default()).worst().total
            };
            prop_assert!(at(dp + 1) <= at(dp), "dp {} -> {}", dp, dp + 1);
        }

        #[test]
        fn pipeline_stages_hold_every_parameter_once(params in 100_000_000u64..30_000_000_000, pp in 1u64..16) {
            let m = decoder_for_params(params);
            let pp = pp.min(m.total_layers());
            let plan = ParallelPlan { pp, microbatches: pp, ..ParallelPlan::single() };
            let held: u64 = stages(&m, &plan).iter().map(|s| s.params).sum();
            // The derived models have an untied head, so no embedding copy on the last stage.
            prop_assert_eq!(held, params::count(&m));
            let layers: u64 = stages(&m, &plan).iter().map(|s| s.layers.iter().sum::<u64>()).sum();
            prop_assert_eq!(layers, m.total_layers());
        }

        #[test]
        fn more_stages_never_increase_the_worst_stage_weights(params in 100_000_000u64..30_000_000_000, pp in 1u64..16) {
            let m = decoder_for_params(params);
            let pp = pp.min(m.total_layers() - 1);
            let worst = |pp| stages(&m, &ParallelPlan { pp, microbatches: pp, ..ParallelPlan::single() }).iter().map(|s| s.params).max().unwrap();
            prop_assert!(worst(pp + 1) <= worst(pp), "pp {} -> {}", pp, pp + 1);
        }
    }
}

mod planner_fast_path {
    use memplan::memory::estimate::{estimate_plan, estimate_stages, rank_shapes, Prepared};
    use memplan::memory::{states::ParamInfo, OverheadConfig, Recompute, Setup};
    use memplan::model::derive::decoder_for_params;
    use memplan::parallel::{layout, ParallelPlan, Schedule};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The planner evaluates only the first and last stage of single-stack models; the worst
        /// rank must be the same as when every stage is evaluated.
        #[test]
        fn first_and_last_stage_contain_the_worst(
            params in 100_000_000u64..100_000_000_000, pp in 1u64..24, tp_pow in 0u32..3, m_mult in 1u64..4,
            interleaved in any::<bool>(), zero in 0u8..=3, mb in 1u64..4, recompute in 0usize..3,
        ) {
            let m = decoder_for_params(params);
            let layers = m.total_layers();
            let pp = pp.min(layers);
            let tp = 2u64.pow(tp_pow).min(m.stacks[0].layer.attention.heads);
            let (schedule, vpp) = if interleaved && pp > 1 && layers.is_multiple_of(pp * 2) { (Schedule::Interleaved, 2) } else { (Schedule::OneFOneB, 1) };
            let plan = ParallelPlan { tp, pp, dp: 4, zero, schedule, vpp, microbatches: pp * m_mult, ..ParallelPlan::single() };
            prop_assume!(plan.validate(&m, 2048).is_ok());
            let setup = Setup { micro_batch: mb, recompute: [Recompute::None, Recompute::Selective, Recompute::Full][recompute], ..Setup::default() };
            let info = ParamInfo::of(&m);
            let o = OverheadConfig::default();
            let full = estimate_plan(&m, &info, &setup, &plan, &o);
            let prep = Prepared::new(&m, &rank_shapes(&m, &setup, &plan), &setup, tp);
            let stages = layout::stages(&m, &plan);
            let ends: Vec<u64> = if pp == 1 { vec![0] } else { vec![0, pp - 1] };
            let fast = estimate_stages(&m, &info, &setup, &plan, &o, &prep, &stages, &ends, false);
            prop_assert_eq!(fast.worst().total, full.worst().total);
        }
    }
}
