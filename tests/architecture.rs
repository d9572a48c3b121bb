//! The house drawn from the code: every module imports only modules below it, and the core
//! builds without the face crates. Read from the sources, so a new upward import fails here.

use std::collections::BTreeSet;
use std::path::Path;

/// Layers from the bottom; a module may use its own layer and those below it.
const LAYERS: &[&[&str]] = &[
    &["error", "units", "dtype", "fsio", "framework"],
    &["hw"],
    &["model"],
    &["parallel"],
    &["memory"],
    &["plan"],
    &["scenario"],
    &["report"],
    &["api"],
    &["render", "bench"],
    &["serve"],
    &["cli"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// `crate::x` paths used in a file (comments stripped).
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let tail = &rest[i + 7..];
            let name: String = tail.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = tail;
        }
    }
    out
}

fn top_module(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().to_string();
    first.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut violations = Vec::new();
    for f in &files {
        let module = top_module(&root, f);
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = layer(&module) else {
            violations.push(format!("{}: module `{module}` has no layer in tests/architecture.rs", f.display()));
            continue;
        };
        for used in uses(&std::fs::read_to_string(f).unwrap()) {
            match layer(&used) {
                Some(l) if l > own => {
                    violations.push(format!("{}: `{module}` uses `crate::{used}` above it", f.display()))
                }
                Some(_) => {}
                None => {
                    if !matches!(used.as_str(), "Error" | "Result") {
                        violations.push(format!("{}: `crate::{used}` is no module with a layer", f.display()))
                    }
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_core_declares_no_face_crate() {
    // Cargo.toml: the face crates are optional, behind features the binary turns on.
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap().split("\n[").next().unwrap();
    for krate in ["clap", "wgpu", "nvml-wrapper", "plotters"] {
        let line = deps.lines().find(|l| l.starts_with(&format!("{krate} "))).unwrap_or_else(|| panic!("{krate}"));
        assert!(line.contains("optional = true"), "{krate} must be optional: {line}");
    }
    // The face modules are compiled only with their feature.
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for (feature, module) in [("cli", "cli"), ("gpu", "bench"), ("charts", "render")] {
        assert!(lib.contains(&format!("#[cfg(feature = \"{feature}\")]\npub mod {module};")), "{module}");
    }
}

#[test]
fn the_model_description_types_import_nothing_that_computes_with_them() {
    // model/spec.rs holds every description type (stacks and non-transformer modules alike);
    // model/modules.rs computes with them. A type file importing its computations would be a cycle.
    let spec = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/model/spec.rs")).unwrap();
    let code: String = spec.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    for forbidden in ["modules::", "params::", "crate::memory", "crate::parallel", "crate::plan"] {
        assert!(!code.contains(forbidden), "src/model/spec.rs uses `{forbidden}`");
    }
}
