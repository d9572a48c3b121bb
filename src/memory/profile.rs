//! A framework profile: the framework, its version, and the settings that framework really
//! uses by default — read from `presets/frameworks/<name>.toml` (embedded in the binary,
//! `framework::Framework::preset_text`), every value with why and its source. The mechanisms
//! the settings switch on live beside this file (see `memory::mechanisms`).
//!
//! A profile file is a header and a list of settings; each setting is an array of entries
//! `{ value, why, source, since?, until? }`, the first whose version range holds the profile's
//! version applies (`since` inclusive, `until` exclusive). A `[serving]` table (vLLM, HF
//! generate) is kept as raw TOML for `memory::serving`.

use super::mechanisms::{DeepSpeedBuffers, LogitsHandling, Mechanisms};
use super::{AttentionKernel, OptimizerImpl, Precision, Recompute};
use crate::error::{Error, Result};
use crate::framework::Framework;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A release number such as `4.46` or `0.12.3` (at most four parts, each below 100000).
/// Missing parts count as zero: `4.46` equals `4.46.0`.
#[derive(Clone, Debug)]
pub struct Version(Vec<u32>);

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Version {}

impl Version {
    pub fn parse(text: &str) -> Result<Version> {
        let expected = "a release number such as 4.46, 4.46.1 or 0.12 (digits separated by dots)";
        let t = text.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        if t.is_empty() {
            return Err(Error::invalid("--framework-version", text, expected));
        }
        let parts: Vec<&str> = t.split('.').collect();
        if parts.len() > 4 {
            return Err(Error::invalid("--framework-version", text, expected));
        }
        let mut out = Vec::with_capacity(parts.len());
        for p in parts {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::invalid("--framework-version", text, expected));
            }
            out.push(p.parse::<u32>().map_err(|_| Error::invalid("--framework-version", text, expected))?);
        }
        Ok(Version(out))
    }

    fn part(&self, i: usize) -> u32 {
        self.0.get(i).copied().unwrap_or(0)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (0..4).map(|i| self.part(i).cmp(&other.part(i))).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// The profile file.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    /// The package whose version `--framework-version` names (transformers, torchtitan, ...).
    package: String,
    default_version: String,
    /// The oldest version the file describes; older ones are refused.
    oldest_version: String,
    description: String,
    #[serde(default)]
    settings: SettingsFile,
    /// The serving helper's table (`memory::serving`), passed through untouched.
    #[serde(default)]
    serving: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    #[serde(default)]
    precision: Vec<Entry<Precision>>,
    #[serde(default)]
    optimizer_impl: Vec<Entry<OptimizerImpl>>,
    #[serde(default)]
    attention: Vec<Entry<AttentionKernel>>,
    #[serde(default)]
    recompute_policies: Vec<Entry<Vec<String>>>,
    #[serde(default)]
    logits: Vec<Entry<LogitsHandling>>,
    #[serde(default)]
    zero_grad_set_to_none: Vec<Entry<bool>>,
    #[serde(default)]
    eager_softmax_fp32: Vec<Entry<bool>>,
    #[serde(default)]
    deepspeed_buffers: Vec<Entry<DeepSpeedBuffers>>,
    #[serde(default)]
    fsdp_pp_unsharded_grads: Vec<Entry<bool>>,
    #[serde(default)]
    fsdp_pp_keep_unsharded_params: Vec<Entry<bool>>,
    #[serde(default)]
    fsdp2: Vec<Entry<bool>>,
    #[serde(default)]
    logits_freed_before_backward: Vec<Entry<bool>>,
    #[serde(default)]
    lazy_module_loading: Vec<Entry<bool>>,
    #[serde(default)]
    tp_sequence_parallel: Vec<Entry<bool>>,
    #[serde(default)]
    fragmentation: Vec<Entry<f64>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Entry<T> {
    value: T,
    /// What the value does to memory, in a line.
    why: String,
    /// Where in the framework it comes from: file and function, or a doc page.
    source: String,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

/// One setting a profile applied, for the report: why, and where it comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProfileNote {
    pub setting: String,
    pub value: String,
    pub why: String,
    pub source: String,
}

/// A resolved framework profile: the settings that apply at `version`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameworkProfile {
    pub framework: Framework,
    /// The package the version refers to.
    pub package: String,
    pub version: Version,
    pub description: String,
    /// Default precision recipe (a `--precision` flag overrides it).
    pub precision: Option<Precision>,
    pub optimizer_impl: Option<OptimizerImpl>,
    pub attention: Option<AttentionKernel>,
    /// The recompute policies the framework offers (`None`: any).
    pub recompute_policies: Option<Vec<String>>,
    /// The mechanisms the memory model applies.
    pub mechanisms: Mechanisms,
    /// CUDA lazy module loading (`CUDA_MODULE_LOADING=LAZY`): the smaller CUDA context.
    pub lazy_module_loading: bool,
    /// Tensor parallelism always shards the sequence outside the TP regions (the `--sp` default
    /// when tp > 1).
    pub tp_sequence_parallel: bool,
    /// Allocator fragmentation margin (fraction of the live peak), when the profile sets one.
    pub fragmentation: Option<f64>,
    /// Every setting applied, with why and its source.
    pub notes: Vec<ProfileNote>,
    /// The raw `[serving]` table, for `memory::serving`.
    #[serde(skip)]
    pub serving: Option<toml::Value>,
}

impl Default for FrameworkProfile {
    fn default() -> Self {
        FrameworkProfile::load(Framework::Pytorch, None).expect("the pytorch profile is valid (tested)")
    }
}

impl FrameworkProfile {
    /// The profile of `framework` at `version` (its file's `default_version` when `None`).
    pub fn load(framework: Framework, version: Option<&str>) -> Result<FrameworkProfile> {
        let path = format!("presets/frameworks/{}.toml", framework.name());
        Self::from_toml(framework, Path::new(&path), framework.preset_text(), version)
    }

    /// Resolve a profile from TOML text (`path` names it in errors).
    pub fn from_toml(framework: Framework, path: &Path, text: &str, version: Option<&str>) -> Result<FrameworkProfile> {
        let file: ProfileFile = crate::model::presets::parse_toml(path, text)?;
        let parse_err = |field: &str, message: String| Error::Parse {
            path: path.to_path_buf(),
            line: None,
            field: Some(field.to_string()),
            message,
        };
        if file.name != framework.name() {
            return Err(parse_err("name", format!("`{}` in the file of `{}`", file.name, framework.name())));
        }
        let file_version = |field: &str, v: &str| {
            Version::parse(v).map_err(|_| parse_err(field, format!("`{v}` is not a release number")))
        };
        let oldest = file_version("oldest_version", &file.oldest_version)?;
        let default = file_version("default_version", &file.default_version)?;
        let version = match version {
            Some(v) => {
                let parsed = Version::parse(v)?;
                if parsed < oldest {
                    return Err(Error::invalid(
                        "--framework-version",
                        v,
                        format!(
                            "{} {oldest} or later (the oldest {} release this profile describes)",
                            file.package, file.package
                        ),
                    ));
                }
                parsed
            }
            None => default,
        };
        let mut notes = Vec::new();
        let s = &file.settings;
        macro_rules! pick {
            ($key:ident, $show:expr) => {
                pick(stringify!($key), &s.$key, &version, &mut notes, $show, &parse_err)?
            };
        }
        let precision = pick!(precision, |p: &Precision| p.name().to_string());
        let optimizer_impl = pick!(optimizer_impl, |o: &OptimizerImpl| format!("{o:?}").to_lowercase());
        let attention = pick!(attention, |a: &AttentionKernel| format!("{a:?}").to_lowercase());
        let policies = pick!(recompute_policies, |v: &Vec<String>| v.join(", "));
        if let Some(list) = &policies {
            for name in list.iter().filter(|n| *n != "every-k") {
                Recompute::parse(name)
                    .map_err(|_| parse_err("recompute_policies", format!("unknown recompute policy `{name}`")))?;
            }
        }
        let mut m = Mechanisms::default();
        if let Some(v) = pick!(logits, |l: &LogitsHandling| l.name().to_string()) {
            m.logits = v;
        }
        if let Some(v) = pick!(zero_grad_set_to_none, bool::to_string) {
            m.zero_grad_set_to_none = v;
        }
        if let Some(v) = pick!(eager_softmax_fp32, bool::to_string) {
            m.eager_softmax_fp32 = v;
        }
        m.deepspeed_buffers = pick!(deepspeed_buffers, |d: &DeepSpeedBuffers| {
            format!(
            "reduce_bucket_size {}, allgather_bucket_size {}, stage3_prefetch_bucket_size {}, stage3_max_live_parameters {}, stage3_param_persistence_threshold {}",
            d.reduce_bucket_size,
            d.allgather_bucket_size,
            d.stage3_prefetch_bucket_size,
            d.stage3_max_live_parameters,
            d.stage3_param_persistence_threshold
        )
        });
        if let Some(v) = pick!(fsdp_pp_unsharded_grads, bool::to_string) {
            m.fsdp_pp_unsharded_grads = v;
        }
        if let Some(v) = pick!(fsdp_pp_keep_unsharded_params, bool::to_string) {
            m.fsdp_pp_keep_unsharded_params = v;
        }
        if let Some(v) = pick!(fsdp2, bool::to_string) {
            m.fsdp2 = v;
        }
        if let Some(v) = pick!(logits_freed_before_backward, bool::to_string) {
            m.logits_freed_before_backward = v;
        }
        let lazy = pick!(lazy_module_loading, bool::to_string).unwrap_or(true);
        let tp_sp = pick!(tp_sequence_parallel, bool::to_string).unwrap_or(false);
        let fragmentation = pick!(fragmentation, |f: &f64| f.to_string());
        if let Some(f) = fragmentation {
            if !(0.0..1.0).contains(&f) {
                return Err(parse_err("fragmentation", format!("{f} is not a fraction in [0, 1)")));
            }
        }
        Ok(FrameworkProfile {
            framework,
            package: file.package,
            version,
            description: file.description,
            precision,
            optimizer_impl,
            attention,
            recompute_policies: policies,
            mechanisms: m,
            lazy_module_loading: lazy,
            tp_sequence_parallel: tp_sp,
            fragmentation,
            notes,
            serving: file.serving,
        })
    }

    /// Check that the framework offers `policy` (e.g. Megatron has no per-op SAC).
    pub fn check_recompute(&self, policy: Recompute) -> Result<()> {
        match &self.recompute_policies {
            Some(list)
                if !list.iter().any(|n| {
                    Recompute::parse(n).ok() == Some(policy)
                        || (n == "every-k" && matches!(policy, Recompute::Every(_)))
                }) =>
            {
                Err(Error::conflict(
                    format!("--recompute {policy} with --framework {}", self.framework),
                    format!("{} offers: {}", self.framework, list.join(", ")),
                ))
            }
            _ => Ok(()),
        }
    }

    /// `"torchtitan 0.1"`.
    pub fn label(&self) -> String {
        format!("{} {} {}", self.framework, self.package, self.version)
    }
}

/// The entry of `entries` that applies at `version`, noted with why and its source.
fn pick<T: Clone>(
    key: &str,
    entries: &[Entry<T>],
    version: &Version,
    notes: &mut Vec<ProfileNote>,
    show: impl Fn(&T) -> String,
    parse_err: &dyn Fn(&str, String) -> Error,
) -> Result<Option<T>> {
    for e in entries {
        let bound = |b: &Option<String>| -> Result<Option<Version>> {
            b.as_deref()
                .map(|v| Version::parse(v).map_err(|_| parse_err(key, format!("`{v}` is not a release number"))))
                .transpose()
        };
        let (since, until) = (bound(&e.since)?, bound(&e.until)?);
        if e.why.trim().is_empty() || e.source.trim().is_empty() {
            return Err(parse_err(key, "every entry needs a `why` and a `source`".into()));
        }
        if since.as_ref().is_none_or(|s| version >= s) && until.as_ref().is_none_or(|u| version < u) {
            notes.push(ProfileNote {
                setting: key.to_string(),
                value: show(&e.value),
                why: e.why.clone(),
                source: e.source.clone(),
            });
            return Ok(Some(e.value.clone()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_numerically() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(v("4.9") < v("4.10"));
        assert!(v("4.46") == v("4.46.0"));
        assert!(v("v0.12.3") > v("0.12"));
        for bad in ["", "4..5", "4.x", "1.2.3.4.5", "-1", "4.46rc1", "123456"] {
            let e = Version::parse(bad).unwrap_err();
            assert!(e.hint().unwrap_or_default().contains("release number"), "{bad}: {e}");
        }
    }

    #[test]
    fn every_profile_file_loads_at_its_default_and_oldest_versions() {
        for f in Framework::ALL {
            let p = FrameworkProfile::load(f, None).unwrap();
            assert_eq!(p.framework, f);
            for n in &p.notes {
                assert!(!n.source.is_empty() && !n.why.is_empty(), "{f}: {n:?}");
            }
        }
    }
}
