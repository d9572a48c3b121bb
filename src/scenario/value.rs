//! The kinds of values a setting takes, each with one parser that every face goes through:
//! a flag's text, a `--set key=value`, a budget file's TOML value, a Python keyword argument and
//! a JSON field all arrive here as text.

use crate::error::{Error, Result};
use crate::units::parse_count;
use serde::Serialize;
use std::path::PathBuf;

/// What a setting's value is, for help texts, forms and type stubs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A positive count with optional suffix k, m, b, t (`4k`, `1.3b`).
    Count,
    /// A plain integer.
    Integer,
    /// A real number.
    Number,
    /// on/off.
    Switch,
    /// One of the listed names.
    Choice,
    /// A size with a unit (`512MiB`, `1GiB`, `80GB`).
    Size,
    /// A file: a path on the command line, a path or the file's text in Python and the web page.
    File,
    /// Free text.
    Text,
    /// Comma-separated names.
    List,
}

/// Bounds a numeric setting is checked against when it is set. Upper bounds are where a value
/// stops being physically meaningful; they also keep every byte count within integer range.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Check {
    None,
    /// Inclusive integer range.
    Int {
        min: u64,
        max: u64,
    },
    /// Real range; `max_open`: the upper bound itself is excluded.
    Real {
        min: f64,
        max: f64,
        max_open: bool,
    },
}

/// A setting's value type: how text becomes the value, and back.
pub trait Value: Sized + Clone {
    const KIND: Kind;
    /// Accepted names of a `Choice` (first = what `show` prints for the default).
    fn choices() -> Vec<&'static str> {
        Vec::new()
    }
    /// Parse `text` for the setting named `what` (`--batch`). `Ok(None)`: the text asks for the
    /// default (`none` for an optional choice, `model` for dropout).
    fn parse(what: &str, text: &str, check: Check) -> Result<Option<Self>>;
    /// The value as text that `parse` reads back.
    fn show(&self) -> String;
}

/// `2^20 (1,048,576)`: how a bound is written in errors (the model checks write theirs the same
/// way).
pub fn bound_text(n: u64) -> String {
    crate::model::validate::fmt_limit(n)
}

fn check_int(what: &str, text: &str, n: u64, check: Check) -> Result<u64> {
    if let Check::Int { min, max } = check {
        if n < min {
            let expected = if min == 1 { "a positive integer".to_string() } else { format!("at least {min}") };
            return Err(Error::invalid(what, text, expected));
        }
        if n > max {
            return Err(Error::invalid(what, text, format!("at most {}", bound_text(max))));
        }
    }
    Ok(n)
}

/// A positive count: `4`, `4k`, `1.3b`, `1e9`.
impl Value for u64 {
    const KIND: Kind = Kind::Integer;
    fn parse(what: &str, text: &str, check: Check) -> Result<Option<Self>> {
        let t = text.trim().replace('_', "");
        let n: u64 = match t.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                // A huge integer (beyond u64) is still a number: say it is too large.
                if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
                    let max = match check {
                        Check::Int { max, .. } => bound_text(max),
                        _ => bound_text(u64::MAX),
                    };
                    return Err(Error::invalid(what, text, format!("at most {max}")));
                }
                let expected = match check {
                    Check::Int { min: 0, .. } => "a non-negative integer",
                    _ => "a positive integer",
                };
                return Err(Error::invalid(what, text, expected));
            }
        };
        check_int(what, text, n, check).map(Some)
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

/// A count that takes suffixes (`k`, `m`, `b`, `t`) and scientific notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Count(pub u64);

impl Value for Count {
    const KIND: Kind = Kind::Count;
    fn parse(what: &str, text: &str, check: Check) -> Result<Option<Self>> {
        let n = parse_count(what, text)?;
        check_int(what, text, n, check).map(|n| Some(Count(n)))
    }
    fn show(&self) -> String {
        self.0.to_string()
    }
}

impl Value for f64 {
    const KIND: Kind = Kind::Number;
    fn parse(what: &str, text: &str, check: Check) -> Result<Option<Self>> {
        let v: f64 = text.trim().parse().map_err(|_| Error::invalid(what, text, "a number"))?;
        if !v.is_finite() {
            return Err(Error::invalid(what, text, "a finite number"));
        }
        if let Check::Real { min, max, max_open } = check {
            let above = if max_open { v >= max } else { v > max };
            if v < min || above {
                let close = if max_open { ")" } else { "]" };
                return Err(Error::invalid(what, text, format!("a number in [{min}, {max}{close}")));
            }
        }
        Ok(Some(v))
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Value for bool {
    const KIND: Kind = Kind::Switch;
    fn parse(what: &str, text: &str, _: Check) -> Result<Option<Self>> {
        match text.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => Ok(Some(true)),
            "off" | "false" | "no" | "0" => Ok(Some(false)),
            _ => Err(Error::invalid(what, text, "on or off")),
        }
    }
    fn show(&self) -> String {
        if *self { "on" } else { "off" }.into()
    }
}

/// On, off, or the model's own configuration (`model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Toggle(pub bool);

impl Value for Toggle {
    const KIND: Kind = Kind::Switch;
    fn choices() -> Vec<&'static str> {
        vec!["model", "on", "off"]
    }
    fn parse(what: &str, text: &str, check: Check) -> Result<Option<Self>> {
        if text.trim().eq_ignore_ascii_case("model") {
            return Ok(None);
        }
        <bool as Value>::parse(what, text, check)
            .map_err(|_| Error::invalid(what, text, "on, off or model (the model's own)"))
            .map(|b| b.map(Toggle))
    }
    fn show(&self) -> String {
        self.0.show()
    }
}

impl Value for String {
    const KIND: Kind = Kind::Text;
    fn parse(what: &str, text: &str, _: Check) -> Result<Option<Self>> {
        let t = text.trim();
        if t.is_empty() {
            return Err(Error::invalid(what, text, "a non-empty value"));
        }
        if t.len() > 4096 || t.chars().any(char::is_control) {
            return Err(Error::invalid(what, t.chars().take(64).collect::<String>(), "a short line of text"));
        }
        Ok(Some(t.to_string()))
    }
    fn show(&self) -> String {
        self.clone()
    }
}

/// Comma-separated names (GPU presets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names(pub Vec<String>);

impl Value for Names {
    const KIND: Kind = Kind::List;
    fn parse(what: &str, text: &str, check: Check) -> Result<Option<Self>> {
        let mut out: Vec<String> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let p = <String as Value>::parse(what, part, check)?.unwrap_or_default();
            if !out.contains(&p) {
                out.push(p);
            }
        }
        if out.is_empty() {
            return Err(Error::invalid(what, text, "one or more names, comma-separated"));
        }
        Ok(Some(Names(out)))
    }
    fn show(&self) -> String {
        self.0.join(",")
    }
}

/// A size in bytes with its unit: `512MiB`, `1GiB`, `80GB`, `1.5e9B` or `0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

/// Largest size accepted: 2^50 bytes (1 PiB), far beyond any GPU or host.
pub const MAX_SIZE: u64 = 1 << 50;

impl Value for Size {
    const KIND: Kind = Kind::Size;
    fn parse(what: &str, text: &str, _: Check) -> Result<Option<Self>> {
        parse_size(what, text).map(|b| Some(Size(b)))
    }
    fn show(&self) -> String {
        let b = self.0;
        for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if b >= scale && b.is_multiple_of(scale) {
                return format!("{}{unit}", b / scale);
            }
        }
        format!("{b}B")
    }
}

/// `512MiB`, `1GiB`, `80GB`, `100B`, `0` → bytes. A number without a unit is refused (except 0):
/// `512` could mean bytes or MiB, and guessing silently is how estimates go wrong.
pub fn parse_size(what: &str, text: &str) -> Result<u64> {
    // A rate (`25GB/s`) is a size per second.
    let t = text.trim();
    let t = t.strip_suffix("/s").or_else(|| t.strip_suffix("/S")).unwrap_or(t).trim();
    let lower = t.to_ascii_lowercase().replace('_', "");
    let expected = "a size with its unit, such as 512MiB, 1GiB or 80GB (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)";
    let units: [(&str, f64); 9] = [
        ("kib", 1024.0),
        ("mib", 1048576.0),
        ("gib", 1073741824.0),
        ("tib", 1099511627776.0),
        ("kb", 1e3),
        ("mb", 1e6),
        ("gb", 1e9),
        ("tb", 1e12),
        ("b", 1.0),
    ];
    if lower == "0" {
        return Ok(0);
    }
    for (suffix, scale) in units {
        if let Some(num) = lower.strip_suffix(suffix) {
            let num = num.trim();
            if num.is_empty() || num.starts_with('+') {
                return Err(Error::invalid(what, t, expected));
            }
            let v: f64 = num.parse().map_err(|_| Error::invalid(what, t, expected))?;
            if !v.is_finite() || v < 0.0 {
                return Err(Error::invalid(what, t, "a non-negative size"));
            }
            let bytes = (v * scale).round();
            if bytes > MAX_SIZE as f64 {
                return Err(Error::invalid(what, t, format!("at most {} bytes (1 PiB)", bound_text(MAX_SIZE))));
            }
            return Ok(bytes as u64);
        }
    }
    if lower.parse::<f64>().is_ok() {
        return Err(Error::invalid(what, t, format!("a unit: `{t}` has none ({expected})")));
    }
    Err(Error::invalid(what, t, expected))
}

/// A file a setting reads: a path (read when the scenario is resolved, regular files only), or
/// the file's text given directly (Python's `hf_config=dict`, a config pasted in the web page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileArg {
    Path(PathBuf),
    Text { label: String, text: String },
}

impl FileArg {
    /// A name for error messages: the path, or the label of inline text.
    pub fn label(&self) -> String {
        match self {
            FileArg::Path(p) => p.display().to_string(),
            FileArg::Text { label, .. } => label.clone(),
        }
    }

    /// The file's text (read through `crate::fsio`: regular files only, size-capped).
    pub fn read(&self) -> Result<String> {
        match self {
            FileArg::Path(p) => crate::fsio::read_text(p),
            FileArg::Text { text, .. } => {
                if text.len() as u64 > crate::fsio::MAX_INPUT_BYTES {
                    return Err(Error::Io {
                        path: self.label().into(),
                        message: format!(
                            "larger than the {} byte limit for an input file",
                            crate::fsio::MAX_INPUT_BYTES
                        ),
                    });
                }
                Ok(text.clone())
            }
        }
    }

    /// The path errors name: the file's path, or its label.
    pub fn path(&self) -> PathBuf {
        match self {
            FileArg::Path(p) => p.clone(),
            FileArg::Text { label, .. } => PathBuf::from(label),
        }
    }
}

impl Value for FileArg {
    const KIND: Kind = Kind::File;
    fn parse(what: &str, text: &str, _: Check) -> Result<Option<Self>> {
        let t = text.trim();
        if t.is_empty() {
            return Err(Error::invalid(what, text, "a file path"));
        }
        Ok(Some(FileArg::Path(PathBuf::from(t))))
    }
    fn show(&self) -> String {
        self.label()
    }
}

/// `choice!(Type { "name" => Variant, ... })`: a `Value` for an enum from its names.
macro_rules! choice {
    ($ty:ty { $($name:literal => $variant:expr),+ $(,)? }) => {
        impl $crate::scenario::value::Value for $ty {
            const KIND: $crate::scenario::value::Kind = $crate::scenario::value::Kind::Choice;
            fn choices() -> Vec<&'static str> {
                vec![$($name),+]
            }
            fn parse(what: &str, text: &str, _: $crate::scenario::value::Check) -> $crate::error::Result<Option<Self>> {
                let t = text.trim().to_ascii_lowercase().replace('_', "-");
                $(if t == $name { return Ok(Some($variant)); })+
                Err($crate::error::Error::invalid(what, text, format!("one of {}", Self::choices().join(", "))))
            }
            fn show(&self) -> String {
                $(if *self == $variant { return $name.to_string(); })+
                String::new()
            }
        }
    };
}
pub(crate) use choice;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_need_a_unit() {
        assert_eq!(parse_size("--x", "512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("--x", "1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("--x", "80GB").unwrap(), 80_000_000_000);
        assert_eq!(parse_size("--x", "0").unwrap(), 0);
        assert_eq!(parse_size("--x", "100B").unwrap(), 100);
        let e = parse_size("--cuda-context", "512").unwrap_err();
        assert!(e.to_string().contains("`512`") && e.hint().unwrap().contains("unit"), "{e}");
        for bad in ["-1GiB", "nanGiB", "infGiB", "GiB", "1e30GiB", "5 parsecs"] {
            assert!(parse_size("--x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn integers_name_their_bounds() {
        let check = Check::Int { min: 1, max: 1 << 20 };
        assert_eq!(<u64 as Value>::parse("--tp", "8", check).unwrap(), Some(8));
        let e = <u64 as Value>::parse("--tp", "9007199254740992", check).unwrap_err();
        assert!(e.hint().unwrap().contains("2^20 (1,048,576)"), "{e:?}");
        let e = <u64 as Value>::parse("--tp", "99999999999999999999999", check).unwrap_err();
        assert!(e.hint().unwrap().contains("at most"), "{e:?}");
        assert!(<u64 as Value>::parse("--tp", "0", check).is_err());
        assert!(<u64 as Value>::parse("--tp", "-1", check).is_err());
        assert!(<u64 as Value>::parse("--tp", "2.5", check).is_err());
    }

    #[test]
    fn reals_are_finite_and_in_range() {
        let check = Check::Real { min: 0.0, max: 1.0, max_open: true };
        assert_eq!(<f64 as Value>::parse("--f", "0.05", check).unwrap(), Some(0.05));
        for bad in ["NaN", "inf", "-0.1", "1", "1e400", "x"] {
            assert!(<f64 as Value>::parse("--f", bad, check).is_err(), "{bad}");
        }
    }
}
