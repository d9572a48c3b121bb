//! Hardware descriptions: GPU presets (memory, bandwidth, peak FLOP/s, interconnect).

pub mod gpu;

pub use gpu::{GpuSpec, Interconnect, PeakFlops};
