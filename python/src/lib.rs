//! `memplan._native`: the library's entry points for Python. Keyword arguments arrive as a dict
//! and become a `Scenario` through `Scenario::set_json` (the web API's conversion), so a value
//! means what the same text means on the command line; the library validates, and its error
//! becomes `memplan.MemplanError(message, hint)`. Results go back as the CLI's JSON text (and
//! its table), which the pure-Python layer wraps in typed objects.

use memplan::api::{self, CompareRequest, Entry};
use memplan::scenario::{setting, Kind, Scenario};
use memplan::Error;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;

/// `memplan.MemplanError(message, hint)` from a library error.
fn raise(py: Python<'_>, e: &Error) -> PyErr {
    let class = match py.import("memplan._errors").and_then(|m| m.getattr("MemplanError")) {
        Ok(c) => c,
        Err(err) => return err,
    };
    match class.call1((e.to_string(), e.hint())) {
        Ok(instance) => PyErr::from_value(instance),
        Err(err) => err,
    }
}

/// A Python value as the JSON value `Scenario::set_json` reads: text, a number as written, a
/// boolean (on/off), a list of names. An integer beyond 64 bits stays its decimal text, and a
/// float that JSON cannot hold (nan, inf) its repr, so the error names what was given.
fn json_of(key: &str, v: &Bound<'_, PyAny>) -> PyResult<std::result::Result<Value, Error>> {
    if v.is_none() {
        return Ok(Ok(Value::Null));
    }
    if let Ok(b) = v.downcast::<PyBool>() {
        return Ok(Ok(Value::Bool(b.is_true())));
    }
    if v.downcast::<PyInt>().is_ok() {
        if let Ok(n) = v.extract::<i64>() {
            return Ok(Ok(Value::from(n)));
        }
        if let Ok(n) = v.extract::<u64>() {
            return Ok(Ok(Value::from(n)));
        }
        return Ok(Ok(Value::String(v.str()?.to_string())));
    }
    if let Ok(f) = v.downcast::<PyFloat>() {
        let x = f.value();
        return Ok(Ok(serde_json::Number::from_f64(x)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(v.repr().map(|r| r.to_string()).unwrap_or_default()))));
    }
    if let Ok(s) = v.downcast::<PyString>() {
        return Ok(Ok(Value::String(s.extract::<String>()?)));
    }
    if v.downcast::<PyList>().is_ok() || v.downcast::<PyTuple>().is_ok() {
        let mut items = Vec::new();
        for item in v.try_iter()? {
            match json_of(key, &item?)? {
                Ok(x) => items.push(x),
                Err(e) => return Ok(Err(e)),
            }
        }
        return Ok(Ok(Value::Array(items)));
    }
    let shown = v.repr().map(|r| r.to_string()).unwrap_or_default();
    Ok(Err(Error::invalid(format!("--{}", key.replace('_', "-")), shown, "a string, number or boolean")))
}

/// A file setting (`hf_config`, `model_file`, `deepspeed_config`, `calibration`): a dict (or
/// an object with `to_dict()`, such as transformers' `PretrainedConfig`) is its JSON text; a
/// `pathlib.Path` is a path; a string is the file's text when it looks like one (starts with
/// `{` or holds a line break), else a path.
fn set_file(
    py: Python<'_>,
    s: &mut Scenario,
    key: &str,
    v: &Bound<'_, PyAny>,
) -> PyResult<std::result::Result<(), Error>> {
    let json = py.import("json")?;
    let mut v = v.clone();
    if !v.is_none() && v.downcast::<PyDict>().is_err() && v.hasattr("to_dict")? && v.hasattr("to_json_string")? {
        v = v.call_method0("to_dict")?;
    }
    if v.downcast::<PyDict>().is_ok() {
        let kwargs = PyDict::new(py);
        kwargs.set_item("default", py.import("builtins")?.getattr("str")?)?;
        let text: String = json.call_method("dumps", (v,), Some(&kwargs))?.extract()?;
        return Ok(s.set_json(key, &Value::String(text)));
    }
    if let Ok(b) = v.downcast::<PyBytes>() {
        let text = String::from_utf8_lossy(b.as_bytes()).into_owned();
        return Ok(s.set_json(key, &Value::String(text)));
    }
    if v.downcast::<PyString>().is_err() && v.hasattr("__fspath__")? {
        let path: String = py.import("os")?.call_method1("fspath", (v,))?.extract()?;
        return Ok(s.set(key, &path));
    }
    if let Ok(text) = v.downcast::<PyString>() {
        let text: String = text.extract()?;
        let text = text.as_str();
        let t = text.trim_start();
        return Ok(if t.starts_with('{') || text.contains('\n') {
            s.set_json(key, &Value::String(text.to_string()))
        } else {
            s.set(key, text)
        });
    }
    match json_of(key, &v)? {
        Ok(x) => Ok(s.set_json(key, &x)),
        Err(e) => Ok(Err(e)),
    }
}

/// The keyword arguments as a scenario, each set in the order given.
fn scenario(py: Python<'_>, settings: &Bound<'_, PyDict>) -> PyResult<Scenario> {
    let mut s = Scenario::default();
    for (k, v) in settings.iter() {
        let key: String = k.extract()?;
        let result = match setting(&key) {
            Err(e) => Err(e),
            Ok(def) if def.kind == Kind::File => set_file(py, &mut s, def.key, &v)?,
            Ok(def) => match json_of(def.key, &v)? {
                Ok(x) => s.set_json(def.key, &x),
                Err(e) => Err(e),
            },
        };
        result.map_err(|e| raise(py, &e))?;
    }
    Ok(s)
}

/// `estimate(settings) -> (json, table)`: `memplan estimate --format json` and its table.
#[pyfunction]
fn estimate(py: Python<'_>, settings: &Bound<'_, PyDict>) -> PyResult<(String, String)> {
    let s = scenario(py, settings)?;
    let report = Entry::Estimate.check(&s).and_then(|()| api::estimate(&s)).map_err(|e| raise(py, &e))?;
    Ok((report.to_json(), report.to_table(memplan::units::ByteUnits::Gib, false)))
}

/// `plan(settings) -> (json, table)`: `memplan plan --format json` and its table.
#[pyfunction]
fn plan(py: Python<'_>, settings: &Bound<'_, PyDict>) -> PyResult<(String, String)> {
    let s = scenario(py, settings)?;
    let planned = Entry::Plan.check(&s).and_then(|()| api::plan(&s)).map_err(|e| raise(py, &e))?;
    let r = &planned.report;
    let mut table = r.to_table(false);
    if planned.result.plans.is_empty() {
        table.push_str(&r.rejections_table());
    }
    Ok((r.to_json(), table))
}

/// `compare(settings, models, set, vary, variant) -> (json, table)`, as `memplan compare`:
/// the GPU columns are the `gpu` setting.
#[pyfunction]
fn compare(
    py: Python<'_>,
    settings: &Bound<'_, PyDict>,
    models: Vec<String>,
    set: Vec<String>,
    vary: Vec<String>,
    variant: Vec<String>,
) -> PyResult<(String, String)> {
    let mut base = scenario(py, settings)?;
    Entry::Estimate.check(&base).map_err(|e| raise(py, &e))?;
    let gpus = base.gpu.take().map(|n| n.0).unwrap_or_default();
    let req = CompareRequest { base, set, models, vary, variant, gpus, budget: None, baseline: None };
    let report = api::compare(&req).map_err(|e| raise(py, &e))?;
    Ok((report.to_json(), report.to_table(memplan::units::ByteUnits::Gib)))
}

/// A setting's value as the text `--set key=value` takes (what `Scenario::set_json` makes of it).
#[pyfunction]
fn value_text(py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    let v = json_of(key, value)?.map_err(|e| raise(py, &e))?;
    Ok(match v {
        Value::String(s) => s,
        Value::Bool(b) => if b { "on" } else { "off" }.to_string(),
        Value::Array(items) => {
            items.iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    })
}

/// The model and GPU presets as JSON.
#[pyfunction]
fn presets(py: Python<'_>) -> PyResult<String> {
    let p = api::presets().map_err(|e| raise(py, &e))?;
    Ok(serde_json::to_string_pretty(&p).expect("presets serialise"))
}

/// The settings table as JSON (`GET /api/settings` of `memplan serve`).
#[pyfunction]
fn settings() -> String {
    serde_json::to_string_pretty(&api::settings_table()).expect("the settings table serialises")
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(estimate, m)?)?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(compare, m)?)?;
    m.add_function(wrap_pyfunction!(presets, m)?)?;
    m.add_function(wrap_pyfunction!(settings, m)?)?;
    m.add_function(wrap_pyfunction!(value_text, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
