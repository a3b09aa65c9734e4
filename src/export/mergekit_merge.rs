//! mergekit YAML for a merge baseline: the config that makes `mergekit-yaml` build the model
//! `gms merge` writes, in mergekit's own parameter names (mergekit 0.1.5).
//!
//! Victim and proxy get `weight` 1 − w and w. The base methods write mergekit's defaults out
//! (`normalize`, `rescale`, `lambda`) so the file says what it does. Tensors the base lacks
//! stay the victim's in gms; mergekit needs every tensor in the base, so gms gives it a base
//! folder holding the victim's values there and sets the proxy's weight to 0 on them: both
//! task vectors are then zero and mergekit keeps the base value, the victim's.

use crate::gms::merge::MergeParams;
use candle_core::DType;
use std::fmt::Write;
use std::path::Path;

/// What a merge YAML is written from.
pub struct MergeYaml<'a> {
    /// Method and parameters.
    pub params: &'a MergeParams,
    /// The victim folder (also mergekit's source of config and tokenizer for `linear`).
    pub victim: &'a Path,
    /// The proxy folder.
    pub proxy: &'a Path,
    /// The base folder as mergekit reads it (base methods).
    pub base: Option<&'a Path>,
    /// Victim tensors the base lacks (the proxy's weight is 0 on them).
    pub victim_only: &'a [String],
    /// Dtype of the written model.
    pub out_dtype: DType,
}

/// A YAML single-quoted scalar (safe for any path).
fn quoted(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "''"))
}

/// A float that YAML reads back as a float (`1.0`, not `1`).
fn float(x: f64) -> String {
    let s = x.to_string();
    if s.contains(['.', 'e', 'E']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// The YAML text.
pub fn merge_yaml(y: &MergeYaml<'_>) -> String {
    let p = y.params;
    let method = p.method;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# written by gms {} for gms merge --method {}",
        env!("CARGO_PKG_VERSION"),
        p.describe()
    );
    let _ = writeln!(s, "# build the same model: mergekit-yaml THIS_FILE OUT_DIR");
    if method.is_random() {
        let _ = writeln!(
            s,
            "# DARE's masks are random: mergekit draws them with torch (add --random-seed N to repeat a run),\n# gms with its own generator from --seed, so the two models drop different entries."
        );
    }
    let _ = writeln!(s, "merge_method: {}", method.mergekit_name());
    let base = if method.needs_base() {
        y.base
    } else {
        Some(y.victim)
    };
    if let Some(b) = base {
        let _ = writeln!(s, "base_model: {}", quoted(b));
    }
    let _ = writeln!(s, "dtype: float32");
    if y.out_dtype != DType::F32 {
        let _ = writeln!(
            s,
            "out_dtype: {}",
            crate::export::merged_model::hf_dtype_name(y.out_dtype)
        );
    }
    let (normalize, rescale) = method.mergekit_defaults();
    let _ = writeln!(s, "parameters:");
    let _ = writeln!(s, "  normalize: {normalize}");
    if method.needs_base() {
        if method.sparsifies() {
            let _ = writeln!(s, "  rescale: {rescale}");
        }
        let _ = writeln!(s, "  lambda: {}", float(p.lambda));
    }
    let _ = writeln!(s, "models:");
    let [wv, wp] = p.weights();
    for (dir, w, is_proxy) in [(y.victim, wv, false), (y.proxy, wp, true)] {
        let _ = writeln!(s, "  - model: {}", quoted(dir));
        let _ = writeln!(s, "    parameters:");
        let zeroed = is_proxy && method.needs_base() && !y.victim_only.is_empty();
        if zeroed {
            let _ = writeln!(s, "      weight:");
            for t in y.victim_only {
                let _ = writeln!(
                    s,
                    "        - {{filter: {t}, value: 0.0}}   # not in the base: the victim's"
                );
            }
            let _ = writeln!(s, "        - {{value: {}}}", float(w));
        } else {
            let _ = writeln!(s, "      weight: {}", float(w));
        }
        if method.sparsifies() {
            let _ = writeln!(s, "      density: {}", float(p.density));
        }
    }
    s
}

pub use crate::gms::merge::mergekit_base_dir;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gms::merge::MergeMethod;

    #[test]
    fn linear_is_wag_with_normalize() {
        let params = MergeParams::defaults(MergeMethod::Linear);
        let y = merge_yaml(&MergeYaml {
            params: &params,
            victim: Path::new("/m/v"),
            proxy: Path::new("/m/it's"),
            base: None,
            victim_only: &[],
            out_dtype: DType::F32,
        });
        assert!(
            y.contains("merge_method: linear\nbase_model: '/m/v'\ndtype: float32\n"),
            "{y}"
        );
        assert!(
            y.contains("  - model: '/m/it''s'\n    parameters:\n      weight: 0.5\n"),
            "{y}"
        );
        assert!(!y.contains("density") && !y.contains("lambda"), "{y}");
    }

    #[test]
    fn ties_zeroes_the_proxy_where_the_base_has_nothing() {
        let params = MergeParams::defaults(MergeMethod::Ties);
        let only = ["classifier.weight".to_string()];
        let y = merge_yaml(&MergeYaml {
            params: &params,
            victim: Path::new("v"),
            proxy: Path::new("p"),
            base: Some(Path::new("b")),
            victim_only: &only,
            out_dtype: DType::F16,
        });
        for line in [
            "merge_method: ties",
            "base_model: 'b'",
            "out_dtype: float16",
            "  normalize: true",
            "  rescale: false",
            "  lambda: 1.0",
            "        - {filter: classifier.weight, value: 0.0}",
            "        - {value: 0.5}",
            "      density: 0.7",
        ] {
            assert!(y.lines().any(|l| l.starts_with(line)), "{line} in\n{y}");
        }
        assert_eq!(
            mergekit_base_dir(Path::new("out/ties.yaml")),
            Path::new("out/ties-mergekit-base")
        );
    }
}
