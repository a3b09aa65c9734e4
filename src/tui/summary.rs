//! Short text for strategies and numbers on screen: layer lists as ranges (`QKVOFP × L0–23`)
//! so a deep model's answer fits a status line, and text cut to a width with an ellipsis.

use crate::model::substitution::layer_ranges;
use crate::model::SubstitutionMatrix;

/// A strategy in a few characters: `KVFP × L0–5`, `none (the victim)`, or for one that is
/// no product set (a hand edit, a cell walk's answer), its cell count.
pub fn strategy(matrix: &SubstitutionMatrix) -> String {
    if matrix.count() == 0 {
        return "none (the victim)".into();
    }
    match matrix.as_product() {
        Some((modules, layers)) => {
            let m: String = modules.iter().map(|m| m.letter()).collect();
            format!("{m} × L{}", layer_ranges(&layers))
        }
        None => format!("{} (cell set)", cells(matrix.count())),
    }
}

/// `n cells`, or `1 cell`.
pub fn cells(n: usize) -> String {
    if n == 1 {
        "1 cell".into()
    } else {
        format!("{n} cells")
    }
}

/// `text` cut to `width` characters, ending in `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// A share as a percentage with one decimal (`0.19` → `19.0`).
pub fn pct(v: f64) -> String {
    format!("{:.1}", v * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Module;

    #[test]
    fn strategies() {
        let all: Vec<usize> = (0..24).collect();
        let full = SubstitutionMatrix::product(24, &crate::model::ENCODER_MODULES, &all);
        assert_eq!(strategy(&full), "QKVOFP × L0–23");
        assert_eq!(strategy(&SubstitutionMatrix::empty(4)), "none (the victim)");
        let mut odd = SubstitutionMatrix::product(4, &[Module::Q], &[0, 1]);
        odd.toggle(2, Module::K);
        assert_eq!(strategy(&odd), "3 cells (cell set)");
    }

    #[test]
    fn fitting() {
        assert_eq!(fit("abcdef", 6), "abcdef");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("α β", 2), "α…");
    }
}
