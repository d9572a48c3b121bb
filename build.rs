//! Embeds every preset TOML under `presets/` in the binary, so `memplan` works from any
//! directory and the presets in the repository are the single source of truth.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read at run time: `env!` would bake in the directory the build script was first compiled
    // in, and a copied target/ (a git worktree) would then embed another checkout's presets.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("presets");
    let mut out = String::new();
    for kind in ["models", "gpus"] {
        let dir = root.join(kind);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> =
            std::fs::read_dir(&dir).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
        files.sort();
        writeln!(out, "pub static {}: &[(&str, &str)] = &[", kind.to_uppercase()).unwrap();
        for f in files {
            println!("cargo:rerun-if-changed={}", f.display());
            let stem = f.file_stem().unwrap().to_string_lossy().to_string();
            writeln!(out, "    ({stem:?}, include_str!({:?})),", f.display().to_string()).unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("presets.rs");
    std::fs::write(dest, out).unwrap();
    // Framework profiles (read by `framework.rs`).
    let frameworks = embed(&root.join("frameworks"), "FRAMEWORKS");
    std::fs::write(Path::new(&std::env::var("OUT_DIR").unwrap()).join("frameworks.rs"), frameworks).unwrap();
}

/// `pub static NAME: &[(&str, &str)]` of every TOML file in `dir` (stem, contents), sorted.
fn embed(dir: &Path, name: &str) -> String {
    let mut out = String::new();
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> =
        std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    writeln!(out, "pub static {name}: &[(&str, &str)] = &[").unwrap();
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        writeln!(out, "    ({stem:?}, include_str!({:?})),", f.display().to_string()).unwrap();
    }
    writeln!(out, "];").unwrap();
    out
}
