//! Fixtures shared by the integration tests: the benchmark kit and tiny random models.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `../shared/bench` if it exists; otherwise prints why the calling test is skipped.
pub fn kit_dir(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench");
    if dir.join("setup.sh").is_file() {
        Some(dir)
    } else {
        println!("SKIPPED {test}: ../shared/bench (the benchmark kit) is absent");
        None
    }
}

/// The kit's models assembled as HF folders under `target/bench-models` (setup.sh, once).
pub fn kit_models(test: &str) -> Option<PathBuf> {
    static MODELS: OnceLock<PathBuf> = OnceLock::new();
    let kit = kit_dir(test)?;
    Some(
        MODELS
            .get_or_init(|| {
                let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-models");
                let status = std::process::Command::new("bash")
                    .arg(kit.join("setup.sh"))
                    .arg(&dest)
                    .status()
                    .expect("bash runs");
                assert!(status.success(), "setup.sh failed");
                dest
            })
            .clone(),
    )
}
