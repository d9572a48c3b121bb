//! Numeric storage types and their sizes. Sizes are in bits so that 4-bit formats stay exact.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    Fp32,
    Tf32,
    Bf16,
    Fp16,
    Fp8,
    Int8,
    Int4,
    Nf4,
    /// 1-byte boolean (dropout masks on CUDA, attention masks).
    Bool,
    /// 64-bit integers (token ids, position-id buffers).
    Int64,
}

impl DType {
    pub fn bits(self) -> u64 {
        match self {
            DType::Fp32 | DType::Tf32 => 32,
            DType::Bf16 | DType::Fp16 => 16,
            DType::Fp8 | DType::Int8 | DType::Bool => 8,
            DType::Int4 | DType::Nf4 => 4,
            DType::Int64 => 64,
        }
    }

    /// Bytes for `n` elements, rounded up to whole bytes.
    pub fn bytes(self, n: u64) -> u64 {
        (n as u128 * self.bits() as u128).div_ceil(8).min(u64::MAX as u128) as u64
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::Fp32 => "fp32",
            DType::Tf32 => "tf32",
            DType::Bf16 => "bf16",
            DType::Fp16 => "fp16",
            DType::Fp8 => "fp8",
            DType::Int8 => "int8",
            DType::Int4 => "int4",
            DType::Nf4 => "nf4",
            DType::Bool => "bool",
            DType::Int64 => "int64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "fp32" | "float32" | "f32" => DType::Fp32,
            "tf32" => DType::Tf32,
            "bf16" | "bfloat16" => DType::Bf16,
            "fp16" | "float16" | "f16" | "half" => DType::Fp16,
            "fp8" | "e4m3" | "e5m2" => DType::Fp8,
            "int8" => DType::Int8,
            "int4" => DType::Int4,
            "nf4" => DType::Nf4,
            other => return Err(format!("unknown dtype `{other}` (fp32, bf16, fp16, fp8, int8, int4, nf4)")),
        })
    }
}
