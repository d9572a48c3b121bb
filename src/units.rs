//! Units at the edge: parsing counts like `1b`, `7.5B`, `1e9`, `350m` and formatting bytes.
//! Bytes are always exact integers inside the library; GiB (2^30) or GB (10^9) is chosen here.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Largest count accepted (10^18): large enough for any model, small enough that
/// bytes = count × 64 still fit in u128 arithmetic used by the calculator.
pub const MAX_COUNT: u64 = 1_000_000_000_000_000_000;

/// Parse a count such as `1b`, `1.3B`, `350m`, `7.5b`, `1e9`, `125M`, `4k`, `2t` or `1_000`.
/// Suffixes: k = 10^3, m = 10^6, b/g = 10^9, t = 10^12 (case-insensitive).
pub fn parse_count(what: &str, text: &str) -> Result<u64> {
    let expected = "a positive count such as 1b, 1.3B, 350m, 7.5b or 1e9 (suffixes k, m, b, t)";
    let bad = || Error::invalid(what, text, expected);
    let t = text.trim().replace('_', "");
    if t.is_empty() {
        return Err(bad());
    }
    let (number, scale) = match t.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some('k') => (&t[..t.len() - 1], 1e3),
        Some('m') => (&t[..t.len() - 1], 1e6),
        Some('b') | Some('g') => (&t[..t.len() - 1], 1e9),
        Some('t') => (&t[..t.len() - 1], 1e12),
        _ => (t.as_str(), 1.0),
    };
    if number.is_empty() || number.starts_with('+') {
        return Err(bad());
    }
    // Exact integer path first, so `124439808` stays exact.
    if scale == 1.0 {
        if let Ok(n) = number.parse::<u64>() {
            return check_range(what, text, n);
        }
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    if !value.is_finite() || value <= 0.0 {
        return Err(Error::invalid(what, text, "a count greater than zero"));
    }
    let exact = value * scale;
    // A count is whole: `8.5` sequences is a typo, not 9 (`1.3b` is 1,300,000,000, whole).
    if (exact - exact.round()).abs() > 1e-6 * exact.abs().max(1.0) {
        return Err(Error::invalid(what, text, "a whole number (suffixes k, m, b, t scale it, e.g. 1.5k = 1500)"));
    }
    let n = exact.round();
    if n < 1.0 {
        return Err(Error::invalid(what, text, "a count of at least 1"));
    }
    if n > MAX_COUNT as f64 {
        return Err(Error::invalid(what, text, format!("a count of at most {MAX_COUNT:e}")));
    }
    check_range(what, text, n as u64)
}

fn check_range(what: &str, text: &str, n: u64) -> Result<u64> {
    if n == 0 {
        return Err(Error::invalid(what, text, "a count greater than zero"));
    }
    if n > MAX_COUNT {
        return Err(Error::invalid(what, text, format!("a count of at most {MAX_COUNT:e}")));
    }
    Ok(n)
}

/// Binary (GiB = 2^30) or decimal (GB = 10^9) display units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ByteUnits {
    #[default]
    Gib,
    Gb,
}

impl ByteUnits {
    pub fn label(self) -> &'static str {
        match self {
            ByteUnits::Gib => "GiB",
            ByteUnits::Gb => "GB",
        }
    }

    pub fn divisor(self) -> f64 {
        match self {
            ByteUnits::Gib => (1u64 << 30) as f64,
            ByteUnits::Gb => 1e9,
        }
    }

    /// Bytes in this unit, e.g. 1.5 for 1.5 GiB.
    pub fn value(self, bytes: u64) -> f64 {
        bytes as f64 / self.divisor()
    }

    /// `12.34 GiB`, with small values shown in MiB/MB so they don't round to zero.
    pub fn format(self, bytes: u64) -> String {
        let v = self.value(bytes);
        if bytes == 0 {
            return format!("0 {}", self.label());
        }
        if v < 0.1 {
            let (div, label) = match self {
                ByteUnits::Gib => ((1u64 << 20) as f64, "MiB"),
                ByteUnits::Gb => (1e6, "MB"),
            };
            return format!("{:.2} {label}", bytes as f64 / div);
        }
        format!("{v:.2} {}", self.label())
    }
}

/// A parameter count for people: `124.4M`, `6.74B`, `1.00e15`.
pub fn format_count(n: u64) -> String {
    let v = n as f64;
    if v >= 1e15 {
        format!("{v:.2e}")
    } else if v >= 1e12 {
        format!("{:.2}T", v / 1e12)
    } else if v >= 1e9 {
        format!("{:.2}B", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}K", v / 1e3)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes_and_scientific_notation() {
        assert_eq!(parse_count("p", "1b").unwrap(), 1_000_000_000);
        assert_eq!(parse_count("p", "350m").unwrap(), 350_000_000);
        assert_eq!(parse_count("p", "1.3B").unwrap(), 1_300_000_000);
        assert_eq!(parse_count("p", "7.5b").unwrap(), 7_500_000_000);
        assert_eq!(parse_count("p", "1e9").unwrap(), 1_000_000_000);
        assert_eq!(parse_count("p", "124439808").unwrap(), 124_439_808);
        assert_eq!(parse_count("p", "4k").unwrap(), 4_000);
        assert_eq!(parse_count("p", "1e15").unwrap(), 1_000_000_000_000_000);
    }

    #[test]
    fn rejects_bad_counts_with_the_value_in_the_message() {
        for bad in ["1x", "-5", "0", "", "b", "nan", "inf", "1e30", "+3"] {
            let err = parse_count("--params", bad).unwrap_err();
            assert!(err.to_string().contains("--params"), "{bad}: {err}");
        }
        assert!(parse_count("--params", "1x").unwrap_err().to_string().contains("`1x`"));
    }

    #[test]
    fn formats_binary_and_decimal_units() {
        assert_eq!(ByteUnits::Gib.format(3 << 30), "3.00 GiB");
        assert_eq!(ByteUnits::Gb.format(120_000_000_000), "120.00 GB");
        assert_eq!(ByteUnits::Gib.format(5 << 20), "5.00 MiB");
    }
}
