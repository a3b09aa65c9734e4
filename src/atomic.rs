//! Atomic outputs: a file or folder appears complete or not at all.
//!
//! A leaf of the crate (it imports only [`crate::error`]), so every layer that writes files
//! uses the same temporary-then-rename dance.

use crate::error::{GmsError, Result};
use std::path::{Path, PathBuf};

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file_with(path, |tmp| std::fs::write(tmp, bytes))
}

/// Writes `value` to `path` as pretty-printed JSON with a final newline, atomically.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    write_file(path, format!("{text}\n").as_bytes())
}

/// Writes `path` by letting `fill` write a temporary file beside it (for writers that take a
/// path, such as safetensors' streaming serializer), then syncing and renaming it into place.
pub fn write_file_with(path: &Path, fill: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    let dir = parent_of(path);
    let tmp = tempfile::Builder::new()
        .prefix(".gms-")
        .tempfile_in(&dir)
        .map_err(|e| GmsError::output(path, e))?;
    fill(tmp.path()).map_err(|e| GmsError::output(path, e))?;
    // `fill` may have replaced the file behind the handle: sync what the path names now.
    std::fs::File::open(tmp.path())
        .and_then(|f| f.sync_all())
        .map_err(|e| GmsError::output(path, e))?;
    // tempfile creates 0600; outputs are ordinary files for whoever reads the folder.
    set_mode(tmp.path(), 0o644).map_err(|e| GmsError::output(path, e))?;
    tmp.persist(path)
        .map_err(|e| GmsError::output(path, e.error))?;
    Ok(())
}

/// Fails unless `dest` is free for a new output folder: absent, or an empty folder. Callers
/// check before long work so a run is not wasted on an output it cannot write.
pub fn check_new_dir(dest: &Path) -> Result<()> {
    let used = dest.exists()
        && std::fs::read_dir(dest)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true);
    if used {
        return Err(GmsError::Output {
            path: dest.to_path_buf(),
            problem: "it already exists and is not empty".into(),
            fix: "choose a new output folder or remove the old one",
        });
    }
    Ok(())
}

/// Fills a new folder at `dest` by calling `fill` on a temporary folder beside it, then renames
/// it into place. `dest` must not exist (or be an empty folder), so nothing is overwritten.
pub fn write_dir(dest: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    check_new_dir(dest)?;
    let parent = parent_of(dest);
    std::fs::create_dir_all(&parent).map_err(|e| GmsError::output(&parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".gms-")
        .tempdir_in(&parent)
        .map_err(|e| GmsError::output(dest, e))?;
    fill(tmp.path())?;
    // Writers that go through their own temporary file (safetensors does) leave it 0600;
    // every output is an ordinary file for whoever reads the folder.
    set_modes(tmp.path()).map_err(|e| GmsError::output(dest, e))?;
    if dest.exists() {
        std::fs::remove_dir(dest).map_err(|e| GmsError::output(dest, e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, dest).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        GmsError::output(dest, e)
    })?;
    Ok(())
}

/// 0755 for `dir` and the folders in it, 0644 for its files.
fn set_modes(dir: &Path) -> std::io::Result<()> {
    set_mode(dir, 0o755)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            set_modes(&entry.path())?;
        } else if kind.is_file() {
            set_mode(&entry.path(), 0o644)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_fill_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let r = write_dir(&dest, |tmp| {
            std::fs::write(tmp.join("a"), "x").unwrap();
            Err(GmsError::output(tmp, "boom"))
        });
        assert!(r.is_err());
        assert!(!dest.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_dir(&dest, |tmp| {
            write_file(&tmp.join("a"), b"y")?;
            // What safetensors leaves: its own temporary file, renamed, still 0600.
            let kept = tempfile::NamedTempFile::new_in(tmp).unwrap();
            kept.persist(tmp.join("b")).unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read(dest.join("a")).unwrap(), b"y");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dest), 0o755);
            assert_eq!(mode(&dest.join("a")), 0o644);
            assert_eq!(mode(&dest.join("b")), 0o644);
        }
        assert!(write_dir(&dest, |_| Ok(())).is_err());
    }

    #[test]
    fn failed_file_fill_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        let r = write_file_with(&dest, |_| Err(std::io::Error::other("boom")));
        assert!(r.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
