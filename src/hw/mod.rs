//! Hardware descriptions: GPU presets (memory, bandwidth, peak FLOP/s, interconnect) and the
//! runtime facts of each GPU as PyTorch sees it (usable memory, CUDA context, cuBLAS workspace,
//! NCCL channels).

pub mod gpu;

pub use gpu::{GpuRuntime, GpuSpec, Interconnect, PeakFlops};
