//! Pipeline stages: which layers each stage holds and how many microbatches of activations it
//! keeps in flight.

use super::plan::{ParallelPlan, Schedule};
use crate::model::spec::ModelSpec;
use serde::Serialize;

/// Layers of stage `stage` of `pp` for `total` layers: as even as possible, the first stages
/// take the remainder (Megatron's uneven split puts extra layers first when asked).
pub fn stage_layer_range(total: u64, pp: u64, stage: u64) -> (u64, u64) {
    let base = total / pp;
    let extra = total % pp;
    let start = stage * base + stage.min(extra);
    let len = base + u64::from(stage < extra);
    (start, start + len)
}

/// Layers of each stack held by a stage (the stacks' layers are concatenated in order).
pub fn stage_stack_layers(model: &ModelSpec, pp: u64, stage: u64) -> Vec<u64> {
    let (start, end) = stage_layer_range(model.total_layers(), pp, stage);
    let mut offset = 0;
    model
        .stacks
        .iter()
        .map(|s| {
            let (a, b) = (offset, offset + s.layers);
            offset = b;
            end.min(b).saturating_sub(start.max(a))
        })
        .collect()
}

/// Activations in flight on a stage, as a fraction `chunks / per` of the stage's layers times
/// one microbatch: multiply the stage's per-microbatch activations by `chunks` and divide by `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct InFlight {
    pub chunks: u64,
    pub per: u64,
}

impl InFlight {
    pub fn apply(&self, bytes: u64) -> u64 {
        (bytes as u128 * self.chunks as u128 / self.per.max(1) as u128) as u64
    }
}

/// Microbatches in flight on `stage` (Narayanan et al. 2021 §2.2; Korthikanti et al. 2022 §4.3):
/// 1F1B: min(p − i, m); interleaved: min(2(p − i − 1) + (v − 1)p + 1, m·v) chunks of L/(p·v)
/// layers, which for stage 0 is L·(1 + (p − 1)/(p·v)) layers' worth; GPipe: m.
pub fn in_flight(plan: &ParallelPlan, stage: u64) -> InFlight {
    let (p, m, v) = (plan.pp, plan.microbatches, plan.vpp);
    if p == 1 {
        return InFlight { chunks: 1, per: 1 };
    }
    match plan.schedule {
        Schedule::Gpipe => InFlight { chunks: m, per: 1 },
        Schedule::OneFOneB => InFlight { chunks: (p - stage).min(m), per: 1 },
        Schedule::Interleaved => InFlight { chunks: (2 * (p - stage - 1) + (v - 1) * p + 1).min(m * v), per: v },
    }
}
