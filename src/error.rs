//! Structured errors. Every variant carries the offending value so the message can name it,
//! and `hint` says what would be valid (uv-style: lowercase message, `hint:` line).

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A command-line or preset value that could not be parsed or is out of range.
    InvalidValue { what: String, value: String, expected: String },
    /// A size beyond what is physically meaningful or what exact integer bytes can hold.
    TooLarge { what: String, value: String, limit: String, hint: String },
    /// A model shape that cannot exist (heads not dividing hidden, ...).
    InvalidShape { reason: String, hint: String },
    /// A preset name that is not known; `suggestions` are the closest names.
    UnknownPreset { kind: &'static str, name: String, suggestions: Vec<String> },
    /// A file that could not be read.
    Io { path: PathBuf, message: String },
    /// A file that could not be written (charts, reports): nothing half-written is left behind.
    Write { path: PathBuf, message: String },
    /// A file whose contents are malformed (TOML/JSON), with line and field where known.
    Parse { path: PathBuf, line: Option<usize>, field: Option<String>, message: String },
    /// A Hugging Face `model_type` that memplan does not read.
    UnsupportedModelType { model_type: String, supported: Vec<&'static str> },
    /// Options that cannot be combined.
    Conflict { reason: String, hint: String },
    /// The GPU harness: no adapter, a missing feature, a shape over the device limits, a lost device.
    Device { message: String, hint: String },
}

impl Error {
    pub fn invalid(what: impl Into<String>, value: impl fmt::Display, expected: impl Into<String>) -> Self {
        Error::InvalidValue { what: what.into(), value: value.to_string(), expected: expected.into() }
    }

    /// "too large: {what} = {value} exceeds {limit}".
    pub fn too_large(
        what: impl Into<String>,
        value: impl fmt::Display,
        limit: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Error::TooLarge { what: what.into(), value: value.to_string(), limit: limit.into(), hint: hint.into() }
    }

    pub fn shape(reason: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::InvalidShape { reason: reason.into(), hint: hint.into() }
    }

    pub fn conflict(reason: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Conflict { reason: reason.into(), hint: hint.into() }
    }

    /// The `hint:` line shown under the message.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::InvalidValue { expected, .. } => Some(format!("expected {expected}")),
            Error::InvalidShape { hint, .. }
            | Error::Conflict { hint, .. }
            | Error::Device { hint, .. }
            | Error::TooLarge { hint, .. } => (!hint.is_empty()).then(|| hint.clone()),
            Error::UnknownPreset { kind, suggestions, .. } => Some(if suggestions.is_empty() {
                format!("run `memplan presets list {kind}s` to see the available presets")
            } else {
                format!("did you mean {}?", suggestions.join(", "))
            }),
            Error::UnsupportedModelType { supported, .. } => {
                Some(format!("supported model_type values: {}", supported.join(", ")))
            }
            Error::Write { path, .. } => Some(format!(
                "check that {} exists and is writable",
                path.parent().filter(|p| !p.as_os_str().is_empty()).map_or(".".into(), |p| p.display().to_string())
            )),
            Error::Io { .. } | Error::Parse { .. } => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidValue { what, value, .. } => write!(f, "invalid {what}: `{value}`"),
            Error::InvalidShape { reason, .. } => write!(f, "invalid model shape: {reason}"),
            Error::TooLarge { what, value, limit, .. } if value.is_empty() => {
                write!(f, "too large: {what} exceeds {limit}")
            }
            Error::TooLarge { what, value, limit, .. } => write!(f, "too large: {what} = {value} exceeds {limit}"),
            Error::UnknownPreset { kind, name, .. } => write!(f, "unknown {kind} preset `{name}`"),
            Error::Io { path, message } => write!(f, "cannot read {}: {message}", path.display()),
            Error::Write { path, message } => write!(f, "cannot write {}: {message}", path.display()),
            Error::Parse { path, line, field, message } => {
                write!(f, "{}", path.display())?;
                if let Some(line) = line {
                    write!(f, ":{line}")?;
                }
                if let Some(field) = field {
                    write!(f, ": field `{field}`")?;
                }
                write!(f, ": {message}")
            }
            Error::UnsupportedModelType { model_type, .. } => {
                write!(f, "unsupported Hugging Face model_type `{model_type}`")
            }
            Error::Conflict { reason, .. } => write!(f, "{reason}"),
            Error::Device { message, .. } => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// The closest names to `name` among `candidates` (edit distance), best first.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let name = name.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| {
            let d = levenshtein(&name, &c.to_ascii_lowercase());
            // A candidate that contains the name (or the reverse) is a strong match.
            let d = if c.contains(name.as_str()) || name.contains(c) { d.min(2) } else { d };
            (d, c)
        })
        .collect();
    scored.sort();
    let limit = (name.len() / 2).max(3);
    scored.into_iter().filter(|(d, _)| *d <= limit).take(3).map(|(_, c)| c.to_string()).collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names_rank_by_edit_distance() {
        let names = ["gpt2", "gpt2-medium", "gpt2-large", "bert-base-cased", "llama-2-7b"];
        let got = closest("gtp2", names);
        assert_eq!(got.first().map(String::as_str), Some("gpt2"));
        assert!(closest("zzzzzzzzzzzz", names).is_empty());
    }
}
