//! The file rules every face follows: only regular files are read, each with a size cap, and
//! every output file (or set of files from one command) is written whole or not at all.
//!
//! Reading opens with `O_NONBLOCK` and checks the opened handle (`fstat`), so a FIFO, a
//! directory or a device is refused without blocking and without a race between the check and
//! the read. Writing goes to a temporary file in the target's directory, then `rename(2)`,
//! which POSIX makes atomic within one file system.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest input file read (model files, HF configs, DeepSpeed/launch configs, budgets,
/// baselines, bench results): far above any real one (DeepSeek-V3's config.json is 1.7 KiB).
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// What kind of thing a path names, for error messages.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Read a regular file of at most `MAX_INPUT_BYTES` as UTF-8 text.
pub fn read_text(path: &Path) -> Result<String> {
    read_text_capped(path, MAX_INPUT_BYTES)
}

/// Read a regular file of at most `cap` bytes as UTF-8 text.
pub fn read_text_capped(path: &Path, cap: u64) -> Result<String> {
    let io = |message: String| Error::Io { path: path.to_path_buf(), message };
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        opts.custom_flags(0o4000);
    }
    let file = opts.open(path).map_err(|e| io(e.to_string()))?;
    let meta = file.metadata().map_err(|e| io(e.to_string()))?;
    if !meta.is_file() {
        return Err(io(format!("it is {}; give a regular file", kind_of(&meta))));
    }
    if meta.len() > cap {
        return Err(io(format!("{} bytes is larger than the {} byte limit for an input file", meta.len(), cap)));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // `take` bounds the read even if the file grows after the size check.
    file.take(cap + 1).read_to_end(&mut bytes).map_err(|e| io(e.to_string()))?;
    if bytes.len() as u64 > cap {
        return Err(io(format!("larger than the {cap} byte limit for an input file")));
    }
    String::from_utf8(bytes).map_err(|e| io(format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))
}

/// The folder a path is written into (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// An output path must be a new file or an existing regular file in an existing folder:
/// renaming over a directory, a device or a FIFO is refused.
pub fn check_output(path: &Path) -> Result<()> {
    let write = |message: String| Error::Write { path: path.to_path_buf(), message };
    if path.as_os_str().is_empty() {
        return Err(write("empty path".into()));
    }
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(write(format!("directory {} does not exist", dir.display())));
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            Err(write("it is a symbolic link; give a new or regular file".into()))
        }
        Ok(meta) if !meta.is_file() => Err(write(format!("it is {}; give a new or regular file", kind_of(&meta)))),
        _ => Ok(()),
    }
}

fn temp_path(path: &Path, tag: &str) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    // Keep the extension last: some writers (image encoders) choose the format by it.
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| format!(".{e}")).unwrap_or_default();
    parent_dir(path).join(format!(".{name}.{tag}-{}{ext}", std::process::id()))
}

/// Write `contents` to `path` whole or not at all.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    write_set_atomic(&[(path.to_path_buf(), contents.to_vec())])
}

/// Write a file that another library produces: `produce` writes a temporary path in the same
/// folder (same extension), which is renamed over `path` only when it succeeded.
pub fn write_atomic_with(path: &Path, produce: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    check_output(path)?;
    let tmp = temp_path(path, "tmp");
    let write = |message: String| Error::Write { path: path.to_path_buf(), message };
    std::fs::File::create(&tmp).map_err(|e| write(e.to_string()))?;
    let result = produce(&tmp).map_err(|e| match e {
        Error::Io { message, .. } | Error::Write { message, .. } => write(message),
        other => other,
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        write(e.to_string())
    })
}

/// Write several files as one: all are staged as temporary files first (any failure removes
/// them and leaves every target untouched); then each is renamed into place, and should a
/// rename fail, the ones already placed are put back as they were.
pub fn write_set_atomic(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    for (i, (path, _)) in files.iter().enumerate() {
        check_output(path)?;
        if files[..i].iter().any(|(p, _)| p == path) {
            return Err(Error::Write { path: path.clone(), message: "named twice in one output set".into() });
        }
    }
    let mut staged: Vec<PathBuf> = Vec::new();
    let cleanup = |staged: &[PathBuf]| {
        for t in staged {
            let _ = std::fs::remove_file(t);
        }
    };
    for (path, contents) in files {
        let tmp = temp_path(path, "tmp");
        if let Err(e) = std::fs::write(&tmp, contents) {
            let _ = std::fs::remove_file(&tmp);
            cleanup(&staged);
            return Err(Error::Write { path: path.clone(), message: e.to_string() });
        }
        staged.push(tmp);
    }
    // Place them; keep a hard link to each file replaced so a failure can restore it.
    let mut placed: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    for ((path, _), tmp) in files.iter().zip(&staged) {
        let backup = path.is_file().then(|| temp_path(path, "bak"));
        if let Some(b) = &backup {
            if std::fs::hard_link(path, b).is_err() {
                // No backup possible (e.g. a file system without hard links): copy instead.
                let _ = std::fs::copy(path, b);
            }
        }
        if let Err(e) = std::fs::rename(tmp, path) {
            for (p, b) in placed.iter().rev() {
                match b {
                    Some(b) => {
                        let _ = std::fs::rename(b, p);
                    }
                    None => {
                        let _ = std::fs::remove_file(p);
                    }
                }
            }
            if let Some(b) = backup {
                let _ = std::fs::remove_file(b);
            }
            cleanup(&staged);
            return Err(Error::Write { path: path.clone(), message: e.to_string() });
        }
        placed.push((path.clone(), backup));
    }
    for (_, b) in placed {
        if let Some(b) = b {
            let _ = std::fs::remove_file(b);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_directories_and_fifos_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_text(dir.path()).unwrap_err().to_string();
        assert!(e.contains("directory"), "{e}");
        #[cfg(unix)]
        {
            let fifo = dir.path().join("pipe");
            let status = std::process::Command::new("mkfifo").arg(&fifo).status();
            if status.is_ok_and(|s| s.success()) {
                let e = read_text(&fifo).unwrap_err().to_string();
                assert!(e.contains("FIFO"), "{e}");
            }
        }
    }

    #[test]
    fn refuses_files_over_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.json");
        std::fs::write(&p, vec![b'x'; 100]).unwrap();
        assert!(read_text_capped(&p, 99).unwrap_err().to_string().contains("limit"));
        assert_eq!(read_text_capped(&p, 100).unwrap().len(), 100);
    }

    #[test]
    fn a_failing_set_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.json");
        let bad = dir.path().join("missing").join("b.json");
        let e = write_set_atomic(&[(good.clone(), b"{}".to_vec()), (bad, b"{}".to_vec())]);
        assert!(e.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file or temporary left");
    }

    #[test]
    fn a_set_replaces_existing_files_whole() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        std::fs::write(&a, "old").unwrap();
        let b = dir.path().join("b.txt");
        write_set_atomic(&[(a.clone(), b"new a".to_vec()), (b.clone(), b"new b".to_vec())]).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "new b");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary or backup left");
    }

    #[test]
    fn refuses_to_replace_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("out.json");
        std::fs::create_dir(&sub).unwrap();
        assert!(write_atomic(&sub, b"{}").unwrap_err().to_string().contains("directory"));
    }
}
