//! Rows of a comparison: models × the variants of `--vary` (a product) and `--variant`, each a
//! scenario with `--set` applied first. The number of rows is computed before any is built and
//! capped, so eight `--vary` lists of ten values are an error, not 10^8 rows.

use super::settings::{setting, Scenario};
use crate::error::{Error, Result};

/// Most rows one comparison builds.
pub const MAX_ROWS: u64 = 4096;

/// One `key=value` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

impl Setting {
    /// `batch=4` → (batch, 4). The key is normalised (`kv_heads` → `kv-heads`) and checked;
    /// the value is checked by setting it on an empty scenario.
    pub fn parse(what: &str, text: &str) -> Result<Setting> {
        let (key, value) = text.split_once('=').ok_or_else(|| {
            Error::invalid(what, text, "key=value, e.g. batch=4 or recompute=full (keys: memplan compare --help)")
        })?;
        Setting::new(key, value)
    }

    pub fn new(key: &str, value: &str) -> Result<Setting> {
        let def = setting(key)?;
        let s = Setting { key: def.key.to_string(), value: value.trim().to_string() };
        s.apply(&mut Scenario::default())?;
        Ok(s)
    }

    /// Apply to a scenario (`model` picks the source from the name: preset, .toml or .json).
    pub fn apply(&self, s: &mut Scenario) -> Result<()> {
        if self.key == "model" {
            s.set_model(&self.value)
        } else {
            s.set(&self.key, &self.value)
        }
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// `batch=1,2,4` → one setting per value.
pub fn parse_vary(text: &str) -> Result<Vec<Setting>> {
    let (key, values) =
        text.split_once('=').ok_or_else(|| Error::invalid("--vary", text, "key=v1,v2,..., e.g. batch=1,2,4,8"))?;
    let values: Vec<&str> = values.split(',').map(str::trim).filter(|v| !v.is_empty()).collect();
    if values.is_empty() {
        return Err(Error::invalid("--vary", text, "key=v1,v2,..., e.g. batch=1,2,4,8"));
    }
    if values.len() as u64 > MAX_ROWS {
        return Err(Error::too_large(
            format!("--vary {key}: {} values", values.len()),
            "",
            format!("{MAX_ROWS} rows"),
            "compare fewer values",
        ));
    }
    values.into_iter().map(|v| Setting::new(key, v)).collect()
}

/// `tp=8,zero=1` → the settings of one variant row.
pub fn parse_variant(text: &str) -> Result<Vec<Setting>> {
    let parts: Vec<Setting> = text
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| Setting::parse("--variant", p))
        .collect::<Result<_>>()?;
    if parts.is_empty() {
        return Err(Error::invalid("--variant", text, "key=value,key=value, e.g. tp=8,zero=1"));
    }
    Ok(parts)
}

/// The variants: the product of every `--vary` (in the order given), then each `--variant`.
/// None given: one variant with no settings.
pub fn variants(vary: &[String], variant: &[String], models: u64) -> Result<Vec<Vec<Setting>>> {
    let lists: Vec<Vec<Setting>> = vary.iter().map(|v| parse_vary(v)).collect::<Result<_>>()?;
    let named: Vec<Vec<Setting>> = variant.iter().map(|v| parse_variant(v)).collect::<Result<_>>()?;
    let count = lists
        .iter()
        .map(|l| l.len() as u64)
        .chain(std::iter::once(named.len().max(1) as u64))
        .chain(std::iter::once(models.max(1)))
        .try_fold(1u64, |acc, n| acc.checked_mul(n).filter(|c| *c <= MAX_ROWS));
    if count.is_none() {
        let total: f64 =
            lists.iter().map(|l| l.len() as f64).product::<f64>() * named.len().max(1) as f64 * models.max(1) as f64;
        return Err(Error::too_large(
            "the comparison's rows (models × --vary values × --variant)",
            format!("{total:.0}"),
            format!("{MAX_ROWS} rows"),
            "vary fewer settings at once, or split the comparison",
        ));
    }
    let mut rows: Vec<Vec<Setting>> = vec![Vec::new()];
    for values in &lists {
        rows = rows
            .into_iter()
            .flat_map(|row| {
                values.iter().map(move |s| {
                    let mut r = row.clone();
                    r.push(s.clone());
                    r
                })
            })
            .collect();
    }
    if !named.is_empty() {
        rows = rows
            .into_iter()
            .flat_map(|row| {
                named.iter().map(move |n| {
                    let mut r = row.clone();
                    r.extend(n.iter().cloned());
                    r
                })
            })
            .collect();
    }
    Ok(rows)
}

/// A row: its fixed name (budget scenarios) or `None` (the model's name and the settings), the
/// settings that distinguish it, and the scenario.
#[derive(Clone, Debug)]
pub struct Row {
    pub name: Option<String>,
    pub settings: Vec<Setting>,
    pub scenario: Scenario,
}

/// Models × variants: one row per model (`models` empty: the base scenario's model) and per
/// variant, each with `set` applied first.
pub fn expand(
    base: &Scenario,
    set: &[String],
    models: &[String],
    vary: &[String],
    variant: &[String],
) -> Result<Vec<Row>> {
    let mut base = base.clone();
    for s in set {
        Setting::parse("--set", s)?.apply(&mut base)?;
    }
    let variants = variants(vary, variant, models.len() as u64)?;
    let models: Vec<Option<&String>> = if models.is_empty() { vec![None] } else { models.iter().map(Some).collect() };
    let mut out = Vec::new();
    for m in models {
        for v in &variants {
            let mut scenario = base.clone();
            if let Some(m) = m {
                scenario.set_model(m)?;
            }
            for s in v {
                s.apply(&mut scenario)?;
            }
            out.push(Row { name: None, settings: v.clone(), scenario });
        }
    }
    Ok(out)
}

/// Run `f` and prefix any error with the row's name.
pub fn in_row<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    f().map_err(|e| {
        let hint = e.hint().unwrap_or_default();
        Error::conflict(format!("scenario `{name}`: {e}"), hint)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_product_is_capped_before_it_is_built() {
        let ten = "batch=1,2,3,4,5,6,7,8,9,10".to_string();
        let vary =
            vec![ten.clone(), ten.replace("batch", "seq"), ten.replace("batch", "tp"), ten.replace("batch", "pp")];
        let e = variants(&vary, &[], 1).unwrap_err();
        assert!(e.to_string().contains("10000") && e.to_string().contains("4096"), "{e}");
        assert_eq!(variants(&vary[..2], &[], 1).unwrap().len(), 100);
    }

    #[test]
    fn values_are_checked_when_parsed() {
        assert!(parse_vary("batch=1,0").is_err());
        assert!(parse_variant("tp=8,zero=7").is_err());
        assert!(Setting::parse("--set", "recompute").is_err());
    }
}
