//! The training planner: what each framework runs (`frameworks`), exact FLOPs (`flops`), a
//! GEMM roofline (`gemm`) and collective model (`comm`) behind the step-time model (`time`), the
//! search over plans (`search`), launch configs that are exactly the plan (`emit`) and their
//! readers (`read`).

pub mod comm;
pub mod emit;
pub mod flops;
pub mod frameworks;
pub mod gemm;
pub mod read;
pub mod search;
pub mod time;
