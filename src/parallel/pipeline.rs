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

/// Layers of the middle stages of an uneven layout (`first_stage_layers`/`last_stage_layers`
/// set): the rest divided evenly, as Megatron-Core's `TransformerConfig.__post_init__`
/// ("Uneven PP") requires.
pub fn uneven_middle(total: u64, plan: &ParallelPlan) -> crate::error::Result<u64> {
    use crate::error::Error;
    let p = plan.pp;
    if p < 2 {
        return Err(Error::conflict(
            "an uneven pipeline layout (first/last stage layers) needs --pp 2 or more",
            "drop the first/last stage layers",
        ));
    }
    let first = plan.first_stage_layers.unwrap_or(0);
    let last = plan.last_stage_layers.unwrap_or(0);
    let set = u64::from(plan.first_stage_layers.is_some()) + u64::from(plan.last_stage_layers.is_some());
    if plan.first_stage_layers == Some(0) || plan.last_stage_layers == Some(0) {
        return Err(Error::invalid("first/last pipeline stage layers", 0, "at least 1 layer"));
    }
    let rest = total.checked_sub(first + last).ok_or_else(|| {
        Error::invalid("first/last pipeline stage layers", first + last, format!("at most the model's {total} layers"))
    })?;
    let middle = p - set;
    if middle == 0 {
        if rest != 0 {
            return Err(Error::invalid(
                "first/last pipeline stage layers",
                first + last,
                format!("all {total} layers when pp = {p}"),
            ));
        }
        return Ok(0);
    }
    if !rest.is_multiple_of(middle) || rest / middle == 0 {
        return Err(Error::invalid(
            "first/last pipeline stage layers",
            format!("{first}/{last}"),
            format!("values leaving the other {middle} stages an equal, positive share of the remaining {rest} layers"),
        ));
    }
    Ok(rest / middle)
}

/// Layers `[start, end)` of `stage` under the plan's layout: even (`stage_layer_range`), or
/// the first/last stage set apart with the middle stages even.
pub fn plan_stage_layer_range(total: u64, plan: &ParallelPlan, stage: u64) -> (u64, u64) {
    if !plan.uneven() {
        return stage_layer_range(total, plan.pp, stage);
    }
    let Ok(middle) = uneven_middle(total, plan) else {
        return stage_layer_range(total, plan.pp, stage);
    };
    let first = plan.first_stage_layers.unwrap_or(middle);
    let last = plan.last_stage_layers.unwrap_or(middle);
    let len = |s: u64| {
        if s == 0 {
            first
        } else if s + 1 == plan.pp {
            last
        } else {
            middle
        }
    };
    let start: u64 = (0..stage).map(len).sum();
    (start, start + len(stage))
}

/// Layers of each stack held by a stage (the stacks' layers are concatenated in order).
pub fn stage_stack_layers(model: &ModelSpec, pp: u64, stage: u64) -> Vec<u64> {
    let (start, end) = stage_layer_range(model.total_layers(), pp, stage);
    split_by_stack(model, start, end)
}

/// `stage_stack_layers` under the plan's (possibly uneven) layout.
pub fn plan_stage_stack_layers(model: &ModelSpec, plan: &ParallelPlan, stage: u64) -> Vec<u64> {
    let (start, end) = plan_stage_layer_range(model.total_layers(), plan, stage);
    split_by_stack(model, start, end)
}

fn split_by_stack(model: &ModelSpec, start: u64, end: u64) -> Vec<u64> {
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
