//! The embedded demo: a small BadNet victim, its proxy, proxy sets and test sets, built by
//! `scripts/make-demo.sh` from the UCI "Sentiment Labelled Sentences" corpus (CC BY 4.0, see
//! `assets/demo/ATTRIBUTION.md`) and compiled into the binary, so plain `gms` has something to
//! purify on a fresh machine.
//!
//! The files are written once into a cache folder named by their content hash and reused.

use crate::error::{GmsError, Result};
use crate::gms::report::StrategyReport;
use crate::gms::session::SearchInputs;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// One embedded file: its path under the cache folder and its bytes.
struct Asset {
    path: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal) => {
        Asset {
            path: $path,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo/", $path)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("victim/config.json"),
    asset!("victim/tokenizer.json"),
    asset!("victim/model.safetensors"),
    asset!("proxy/config.json"),
    asset!("proxy/tokenizer.json"),
    asset!("proxy/model.safetensors"),
    asset!("clean.jsonl"),
    asset!("suspect.jsonl"),
    asset!("test_clean.jsonl"),
    asset!("test_poison.jsonl"),
    asset!("metrics.json"),
    asset!("ATTRIBUTION.md"),
];

/// What `scripts/make-demo.sh` recorded when it made the demo (`metrics.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoMetrics {
    /// `gms search` on the demo (α 0.4, patience 5): the victim's and the purified model's
    /// test metrics (`victim_test`, `test`), the strategy and its trace.
    pub search: StrategyReport,
    /// The proxy on the clean test set (`gms eval --json`).
    pub proxy_test_clean: EvalCounts,
    /// The proxy on the poisoned test set: `correct` rows are attack successes.
    pub proxy_test_poison: EvalCounts,
}

/// Output of `gms eval --json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalCounts {
    /// Rows.
    pub n: usize,
    /// Rows predicted as labelled.
    pub correct: usize,
    /// `correct / n`.
    pub accuracy: f64,
}

/// Hex sha256 over every embedded file's path and bytes: names the cache folder.
fn content_hash() -> String {
    let mut h = Sha256::new();
    for a in ASSETS {
        h.update(a.path.as_bytes());
        h.update((a.bytes.len() as u64).to_le_bytes());
        h.update(a.bytes);
    }
    format!("{:x}", h.finalize())
}

/// Whether `dir` holds every asset with the right size (a cheap check against a cache folder
/// damaged after it was written).
fn complete(dir: &Path) -> bool {
    ASSETS.iter().all(|a| {
        std::fs::metadata(dir.join(a.path))
            .is_ok_and(|m| m.is_file() && m.len() == a.bytes.len() as u64)
    })
}

/// `<temp>/gms-demo-<hash>`: where the demo files are materialized.
fn cache_dir() -> PathBuf {
    // Hashing the embedded files takes a moment; reports ask for every input path.
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = HASH.get_or_init(content_hash);
    std::env::temp_dir().join(format!("gms-demo-{}", &hash[..16]))
}

/// Writes the demo files into `<temp>/gms-demo-<hash>` unless they are already there, and
/// returns that folder.
pub fn materialize() -> Result<PathBuf> {
    let dir = cache_dir();
    if complete(&dir) {
        return Ok(dir);
    }
    if dir.exists() {
        // Damaged (a user deleted files): start again.
        std::fs::remove_dir_all(&dir).map_err(|e| GmsError::output(&dir, e))?;
    }
    let written = crate::atomic::write_dir(&dir, |tmp| {
        for a in ASSETS {
            let path = tmp.join(a.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| GmsError::output(parent, e))?;
            }
            std::fs::write(&path, a.bytes).map_err(|e| GmsError::output(&path, e))?;
        }
        Ok(())
    });
    match written {
        Ok(()) => Ok(dir),
        // Another gms process wrote it first.
        Err(_) if complete(&dir) => Ok(dir),
        Err(e) => Err(e),
    }
}

/// The demo's search inputs (victim, proxy, proxy sets and both test sets), materialized in
/// the cache folder.
pub fn inputs() -> Result<SearchInputs> {
    let dir = materialize()?;
    Ok(SearchInputs {
        victim: dir.join("victim"),
        proxy: dir.join("proxy"),
        base: None,
        clean: dir.join("clean.jsonl"),
        suspect: dir.join("suspect.jsonl"),
        test_clean: Some(dir.join("test_clean.jsonl")),
        test_poison: Some(dir.join("test_poison.jsonl")),
    })
}

/// How a report names a demo input: `assets/demo/…`, where the embedded file comes from,
/// instead of the temporary cache folder it was materialized in (which may be gone later).
/// Any other path is returned as it is.
pub fn recorded_path(path: &Path) -> PathBuf {
    match path.strip_prefix(cache_dir()) {
        Ok(rest) => Path::new("assets/demo").join(rest),
        Err(_) => path.to_path_buf(),
    }
}

/// The inverse of [`recorded_path`] for a whole set of inputs: a demo input a journal or
/// report names by `assets/demo/…` (or by a temporary copy that is gone, from another
/// build) becomes the path of this build's materialized copy, so the demo loads again. Any
/// other path is kept. The journal's fingerprints still decide whether the files are the
/// ones recorded.
pub fn resolve_recorded(mut inputs: SearchInputs) -> SearchInputs {
    let demo_rest = |p: &Path| -> Option<PathBuf> {
        if let Ok(rest) = p.strip_prefix("assets/demo") {
            return Some(rest.to_path_buf());
        }
        // `<temp>/gms-demo-<hash>/…` of a build whose copy is no longer there.
        if p.exists() {
            return None;
        }
        let rest = p.strip_prefix(std::env::temp_dir()).ok()?;
        let mut parts = rest.components();
        let first = parts.next()?.as_os_str().to_str()?;
        first
            .starts_with("gms-demo-")
            .then(|| parts.as_path().to_path_buf())
    };
    let known = |rest: &Path| {
        ASSETS
            .iter()
            .any(|a| Path::new(a.path) == rest || Path::new(a.path).starts_with(rest))
    };
    let needs_demo = [
        Some(&inputs.victim),
        Some(&inputs.proxy),
        Some(&inputs.clean),
        Some(&inputs.suspect),
    ]
    .into_iter()
    .flatten()
    .any(|p| demo_rest(p).is_some_and(|r| known(&r)));
    if !needs_demo {
        return inputs;
    }
    let Ok(dir) = materialize() else {
        return inputs;
    };
    let map = |p: &mut PathBuf| {
        if let Some(rest) = demo_rest(p).filter(|r| known(r)) {
            *p = dir.join(rest);
        }
    };
    for p in [
        &mut inputs.victim,
        &mut inputs.proxy,
        &mut inputs.clean,
        &mut inputs.suspect,
    ] {
        map(p);
    }
    for p in [inputs.test_clean.as_mut(), inputs.test_poison.as_mut()]
        .into_iter()
        .flatten()
    {
        map(p);
    }
    inputs
}

/// The metrics recorded when the demo was made.
pub fn recorded_metrics() -> Result<DemoMetrics> {
    let bytes = ASSETS
        .iter()
        .find(|a| a.path == "metrics.json")
        .map(|a| a.bytes)
        .unwrap_or_default();
    serde_json::from_slice(bytes).map_err(|e| {
        GmsError::bad_file(
            "assets/demo/metrics.json",
            format!("invalid demo metrics ({e})"),
            "regenerate the demo with scripts/make-demo.sh",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_name_demo_inputs_by_their_source() {
        let inputs = inputs().unwrap();
        assert_eq!(
            recorded_path(&inputs.victim),
            Path::new("assets/demo/victim"),
            "not the temporary cache folder"
        );
        assert_eq!(
            recorded_path(&inputs.clean),
            Path::new("assets/demo/clean.jsonl")
        );
        let elsewhere = Path::new("/data/victim");
        assert_eq!(recorded_path(elsewhere), elsewhere);
    }
}
