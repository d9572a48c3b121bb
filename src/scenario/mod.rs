//! The one way into the library: a `Scenario` (plain data, every setting optional, defined once
//! in [`settings`]) is checked by [`Scenario::resolve`] into a [`Resolved`] that the estimator
//! and the planner take. The CLI, Python and the web page only convert their input into a
//! `Scenario`; they never validate on their own.
//!
//! ```
//! use memplan::scenario::Scenario;
//! let mut s = Scenario::default();
//! s.set("model", "gpt2").unwrap();
//! s.set("batch", "4").unwrap();
//! let r = s.resolve().unwrap();
//! assert_eq!(r.setup().micro_batch, 4);
//! assert!(Scenario { tp: Some(5), ..s }.resolve().is_err()); // 5 does not divide 12 heads
//! ```

mod resolve;
pub mod rows;
mod search;
pub mod settings;
pub mod value;

pub use resolve::{read_deepspeed_config, DeepSpeedSettings, Resolved, ResolvedModel, ServingChoice};
pub use search::ResolvedSearch;
pub use settings::{setting, settings, Group, Scenario, SettingDef};
pub use value::{FileArg, Kind};

use crate::error::{Error, Result};

impl Scenario {
    /// A scenario from `(key, text)` pairs, each checked as it is set.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Scenario> {
        let mut s = Scenario::default();
        for (k, v) in pairs {
            s.set(k, v)?;
        }
        Ok(s)
    }

    /// Set one setting from a JSON value (the web API and Python): strings as given, numbers
    /// as written, booleans as on/off; `null` clears it.
    pub fn set_json(&mut self, key: &str, value: &serde_json::Value) -> Result<()> {
        let def = setting(key)?;
        let text = match value {
            serde_json::Value::Null => return self.clear(def.key),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => if *b { "on" } else { "off" }.to_string(),
            serde_json::Value::Array(items) if def.kind == Kind::List => {
                let parts: Option<Vec<&str>> = items.iter().map(serde_json::Value::as_str).collect();
                parts.ok_or_else(|| Error::invalid(format!("--{}", def.key), value, "a list of names"))?.join(",")
            }
            other => {
                return Err(Error::invalid(format!("--{}", def.key), other, "a string, number or boolean"));
            }
        };
        if def.kind == Kind::File {
            // Text of a file given directly (JSON cannot name a file on the caller's machine).
            let label = match def.key {
                "hf-config" => "config.json",
                "model-file" => "model.toml",
                "deepspeed-config" => "ds_config.json",
                _ => "calibration.json",
            };
            return self.set_file_text(def.key, label, &text);
        }
        self.set(def.key, &text)
    }

    /// Give a file setting its text directly; `label` names it in errors.
    pub fn set_file_text(&mut self, key: &str, label: &str, text: &str) -> Result<()> {
        let def = setting(key)?;
        let file = FileArg::Text { label: label.to_string(), text: text.to_string() };
        match def.key {
            "hf-config" => self.hf_config = Some(file),
            "model-file" => self.model_file = Some(file),
            "deepspeed-config" => self.deepspeed_config = Some(file),
            "calibration" => self.calibration = Some(file),
            other => {
                return Err(Error::invalid(
                    "setting key",
                    other,
                    "a file setting (hf-config, model-file, deepspeed-config, calibration)",
                ))
            }
        }
        Ok(())
    }

    /// Name the model: a preset, a `.toml` model file or a `.json` Hugging Face config (the
    /// other model sources are cleared).
    pub fn set_model(&mut self, name: &str) -> Result<()> {
        for k in ["model", "params", "hf-config", "model-file"] {
            self.clear(k)?;
        }
        let lower = name.trim().to_ascii_lowercase();
        if lower.ends_with(".toml") {
            self.set("model-file", name)
        } else if lower.ends_with(".json") {
            self.set("hf-config", name)
        } else {
            self.set("model", name)
        }
    }

    /// Relative file paths are taken relative to `base` (a budget file's folder).
    pub fn rebase_paths(&mut self, base: &std::path::Path) {
        for f in [&mut self.hf_config, &mut self.model_file, &mut self.deepspeed_config, &mut self.calibration]
            .into_iter()
            .flatten()
        {
            if let FileArg::Path(p) = f {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
    }
}

/// The settings given, as a JSON object of their texts (what `set_json` reads back).
impl serde::Serialize for Scenario {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let entries = self.entries();
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (k, v) in entries {
            map.serialize_entry(k, &v)?;
        }
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for Scenario {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let mut s = Scenario::default();
        for (k, v) in &map {
            s.set_json(k, v).map_err(|e| {
                serde::de::Error::custom(match e.hint() {
                    Some(h) => format!("{e} ({h})"),
                    None => e.to_string(),
                })
            })?;
        }
        Ok(s)
    }
}
