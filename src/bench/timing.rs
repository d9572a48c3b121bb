//! Measurement: a [`Runner`] executes a prepared workload and reports the time of each call;
//! [`measure`] does the warm-up, the timed repetitions and the statistics. The GPU runner
//! uses timestamp queries when the adapter has them and the wall clock otherwise (cubecl's
//! rule: choose by capability, and say which). [`MockRunner`] returns scripted times so the
//! statistics, reports and JSON are deterministic in tests (hyperfine's approach).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimingMethod {
    /// GPU timestamps written at the start and end of the compute pass.
    GpuTimestamps,
    /// Host clock around submit + wait (includes submission and synchronisation overhead).
    WallClock,
    /// Scripted times (tests).
    Mock,
}

impl TimingMethod {
    pub fn describe(self) -> &'static str {
        match self {
            TimingMethod::GpuTimestamps => "GPU timestamp queries (start and end of the compute pass)",
            TimingMethod::WallClock => {
                "wall clock around submit and wait (the adapter has no TIMESTAMP_QUERY; includes submission overhead)"
            }
            TimingMethod::Mock => "mock backend (scripted times, for tests)",
        }
    }
}

/// Summary of the timed repetitions, in seconds per call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub samples: u32,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Sample standard deviation (0 for one sample).
    pub stddev: f64,
}

impl Stats {
    pub fn from_samples(samples: &[f64]) -> Result<Stats> {
        if samples.is_empty() {
            return Err(Error::invalid("number of timed repetitions", 0, "at least 1"));
        }
        if let Some(bad) = samples.iter().find(|s| !s.is_finite() || **s < 0.0) {
            return Err(Error::Device {
                message: format!("a timed run returned an invalid duration ({bad} s)"),
                hint: String::new(),
            });
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]) };
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let stddev =
            if n > 1 { (sorted.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
        Ok(Stats { samples: n as u32, median, min: sorted[0], max: sorted[n - 1], mean, stddev })
    }
}

/// Executes one prepared workload.
pub trait Runner {
    fn timing(&self) -> TimingMethod;
    /// Run the workload `reps` times; return the seconds of each call.
    fn run(&mut self, reps: u32) -> Result<Vec<f64>>;
}

/// How many calls to make and how to show progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub warmup: u32,
    pub reps: u32,
}

impl Default for Plan {
    fn default() -> Self {
        Plan { warmup: 3, reps: 10 }
    }
}

/// Warm up, then time `plan.reps` calls in batches, reporting progress after each batch.
/// `progress(done, total, elapsed)` is called with the number of timed calls done.
pub fn measure(runner: &mut dyn Runner, plan: Plan, progress: &mut dyn FnMut(u32, u32, Duration)) -> Result<Stats> {
    if plan.reps == 0 {
        return Err(Error::invalid("--reps", 0, "at least 1 timed repetition"));
    }
    let start = Instant::now();
    if plan.warmup > 0 {
        runner.run(plan.warmup)?;
    }
    let warm = start.elapsed();
    // Batches so that a slow kernel still shows progress, and a fast one is not dominated by
    // per-batch synchronisation: about 10 updates.
    let batch = plan.reps.div_ceil(10).max(1);
    let mut samples = Vec::with_capacity(plan.reps as usize);
    progress(0, plan.reps, warm);
    while (samples.len() as u32) < plan.reps {
        let n = batch.min(plan.reps - samples.len() as u32);
        let times = runner.run(n)?;
        if times.len() != n as usize {
            return Err(Error::Device {
                message: format!("the runner returned {} timings for {n} calls", times.len()),
                hint: String::new(),
            });
        }
        samples.extend(times);
        progress(samples.len() as u32, plan.reps, start.elapsed());
    }
    Stats::from_samples(&samples)
}

/// Scripted times: returns `times` in order, cycling; counts the calls.
#[derive(Clone, Debug)]
pub struct MockRunner {
    pub times: Vec<f64>,
    pub calls: u32,
    next: usize,
}

impl MockRunner {
    pub fn new(times: Vec<f64>) -> Self {
        MockRunner { times, calls: 0, next: 0 }
    }
}

impl Runner for MockRunner {
    fn timing(&self) -> TimingMethod {
        TimingMethod::Mock
    }
    fn run(&mut self, reps: u32) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(reps as usize);
        for _ in 0..reps {
            self.calls += 1;
            out.push(self.times[self.next % self.times.len().max(1)]);
            self.next += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Stats::from_samples(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.mean), (2.0, 1.0, 3.0, 2.0));
        let s = Stats::from_samples(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!((s.stddev - 1.2909944487358056).abs() < 1e-12);
        assert!(Stats::from_samples(&[]).is_err());
        assert!(Stats::from_samples(&[f64::NAN]).is_err());
    }
}
