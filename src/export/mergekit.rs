//! mergekit YAML for a strategy: an independent way to build the same purified model.
//!
//! Form checked with mergekit 0.1.5 on the encoder kit (docs/formats.md §mergekit YAML): a
//! linear merge where each substituted module gets weight 1 from the proxy and 0 from the
//! victim. mergekit filters are substrings and the first match wins, so full layer-qualified
//! paths come before the fallback. The same form serves fine-tuned decoders (their module
//! paths, `model.layers.{i}.self_attn.q_proj`, …); PEFT adapters are refused by `gms apply`
//! (their purified form is an adapter, or `--merged`).

use crate::model::{ModelArchitecture, SubstitutionMatrix};
use std::fmt::Write;
use std::path::Path;

/// The YAML text merging `victim` and `proxy` per `matrix`.
pub fn mergekit_yaml(
    arch: ModelArchitecture,
    matrix: &SubstitutionMatrix,
    victim: &Path,
    proxy: &Path,
) -> String {
    let paths: Vec<String> = matrix
        .cells()
        .into_iter()
        .map(|(l, m)| arch.module_path(l, m))
        .collect();
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# written by gms {}: {} substituted modules",
        env!("CARGO_PKG_VERSION"),
        paths.len()
    );
    let _ = writeln!(y, "merge_method: linear");
    let _ = writeln!(y, "base_model: {}", victim.display());
    let _ = writeln!(y, "dtype: float32");
    let _ = writeln!(y, "parameters: {{normalize: true}}");
    let _ = writeln!(y, "models:");
    for (dir, sub, rest) in [(victim, 0, 1), (proxy, 1, 0)] {
        let _ = writeln!(y, "  - model: {}", dir.display());
        let _ = writeln!(y, "    parameters:");
        let _ = writeln!(y, "      weight:");
        for p in &paths {
            let _ = writeln!(y, "        - {{filter: {p}, value: {sub}}}");
        }
        let _ = writeln!(y, "        - {{value: {rest}}}");
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Module;

    #[test]
    fn lists_full_paths_before_fallback() {
        let m = SubstitutionMatrix::from_cells(2, &[(1, Module::P)]).unwrap();
        let bert = ModelArchitecture::Encoder(crate::model::Architecture::Bert);
        let y = mergekit_yaml(bert, &m, Path::new("v"), Path::new("p"));
        assert!(
            y.contains(
                "- {filter: bert.encoder.layer.1.output.dense, value: 0}\n        - {value: 1}"
            ),
            "{y}"
        );
        assert!(y.contains(
            "- {filter: bert.encoder.layer.1.output.dense, value: 1}\n        - {value: 0}"
        ));
    }
}
