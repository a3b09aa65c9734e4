//! Which modules come from the proxy: the substitution matrix and the encoder's weight view
//! built from it (the decoder's is [`crate::model::decoder::lora_view`]).

use crate::model::arch::{Module, ENCODER_MODULES};
use crate::model::encoder::{Classifier, EncoderLayer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The row mask with every module of `modules` set.
fn mask_of(modules: &[Module]) -> u16 {
    modules.iter().fold(0, |acc, m| acc | (1 << m.index()))
}

/// A set of (layer, module) cells; a set cell means "this layer's module comes from the proxy".
///
/// Which modules exist is the architecture's ([`crate::model::ModelArchitecture::modules`]);
/// the matrix holds any cells, and the operations that mean "every module of a layer" take
/// the architecture's list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SubstitutionMatrix {
    /// One mask per layer, bit i = [`Module::VARIANTS`]\[i\] (an encoder's cells use bits
    /// 0–5, a decoder's 0–3 and 6–8).
    rows: Vec<u16>,
}

impl SubstitutionMatrix {
    /// No cell set: the victim itself.
    pub fn empty(layers: usize) -> Self {
        SubstitutionMatrix {
            rows: vec![0; layers],
        }
    }

    /// Every cell of an architecture with `modules` set: each module of each layer from the
    /// proxy (where the search starts).
    pub fn full(modules: &[Module], num_layers: usize) -> Self {
        SubstitutionMatrix {
            rows: vec![mask_of(modules); num_layers],
        }
    }

    /// The product set `modules × layers` (the paper's search space).
    pub fn product(num_layers: usize, modules: &[Module], layers: &[usize]) -> Self {
        let mask = mask_of(modules);
        let mut s = Self::empty(num_layers);
        for &l in layers {
            s.rows[l] = mask;
        }
        s
    }

    /// Builds a matrix from explicit cells; `None` if a layer is out of range.
    pub fn from_cells(num_layers: usize, cells: &[(usize, Module)]) -> Option<Self> {
        let mut s = Self::empty(num_layers);
        for &(l, m) in cells {
            *s.rows.get_mut(l)? |= 1 << m.index();
        }
        Some(s)
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.rows.len()
    }

    /// Whether layer `layer`'s module `module` is taken from the proxy.
    pub fn get(&self, layer: usize, module: Module) -> bool {
        self.rows[layer] & (1 << module.index()) != 0
    }

    /// Sets or clears one cell.
    pub fn set(&mut self, layer: usize, module: Module, on: bool) {
        if on {
            self.rows[layer] |= 1 << module.index();
        } else {
            self.rows[layer] &= !(1 << module.index());
        }
    }

    /// Flips one cell.
    pub fn toggle(&mut self, layer: usize, module: Module) {
        self.rows[layer] ^= 1 << module.index();
    }

    /// Flips a whole layer of an architecture with `modules`: sets all its cells unless all
    /// are set, then clears them.
    pub fn toggle_layer(&mut self, layer: usize, modules: &[Module]) {
        let all = mask_of(modules);
        self.rows[layer] = if self.rows[layer] & all == all {
            0
        } else {
            all
        };
    }

    /// Flips a whole module column, like [`Self::toggle_layer`].
    pub fn toggle_module(&mut self, module: Module) {
        let all = (0..self.num_layers()).all(|l| self.get(l, module));
        for l in 0..self.num_layers() {
            self.set(l, module, !all);
        }
    }

    /// Set cells, layer-major, modules in the architecture's order (which is enum order, see
    /// [`Module`]).
    pub fn cells(&self) -> Vec<(usize, Module)> {
        (0..self.num_layers())
            .flat_map(|l| {
                Module::VARIANTS
                    .into_iter()
                    .filter(move |&m| self.get(l, m))
                    .map(move |m| (l, m))
            })
            .collect()
    }

    /// Number of set cells.
    pub fn count(&self) -> usize {
        self.rows.iter().map(|r| r.count_ones() as usize).sum()
    }

    /// The cells set in both matrices.
    pub fn intersection(&self, other: &SubstitutionMatrix) -> SubstitutionMatrix {
        SubstitutionMatrix {
            rows: self
                .rows
                .iter()
                .zip(&other.rows)
                .map(|(a, b)| a & b)
                .collect(),
        }
    }

    /// Whether every set cell uses one of `modules`.
    pub fn uses_only(&self, modules: &[Module]) -> bool {
        let all = mask_of(modules);
        self.rows.iter().all(|r| r & !all == 0)
    }

    /// Number of leading layers in which `self` and `other` agree: a forward pass of one can
    /// reuse the other's hidden states up to that layer boundary.
    pub fn common_prefix(&self, other: &SubstitutionMatrix) -> usize {
        self.rows
            .iter()
            .zip(&other.rows)
            .take_while(|(a, b)| a == b)
            .count()
    }

    /// The product-set description `(modules, layers)` if the matrix is one.
    pub fn as_product(&self) -> Option<(Vec<Module>, Vec<usize>)> {
        let layers: Vec<usize> = (0..self.num_layers())
            .filter(|&l| self.rows[l] != 0)
            .collect();
        let mask = layers.first().map(|&l| self.rows[l]).unwrap_or(0);
        if layers.iter().any(|&l| self.rows[l] != mask) {
            return None;
        }
        let modules = Module::VARIANTS
            .into_iter()
            .filter(|m| mask & (1 << m.index()) != 0)
            .collect();
        Some((modules, layers))
    }
}

impl fmt::Display for SubstitutionMatrix {
    /// Compact form, e.g. `QKVOFP×{0,1,2}` for product sets, else each non-empty layer with
    /// its letters, e.g. `0:QK 2:QKVOFP`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((modules, layers)) = self.as_product() {
            let m: String = modules.iter().map(|m| m.letter()).collect();
            let l: Vec<String> = layers.iter().map(|l| l.to_string()).collect();
            return write!(
                f,
                "{}×{{{}}}",
                if m.is_empty() { "∅" } else { &m },
                l.join(",")
            );
        }
        let rows: Vec<String> = (0..self.num_layers())
            .filter(|&l| self.rows[l] != 0)
            .map(|l| {
                let letters: String = Module::VARIANTS
                    .into_iter()
                    .filter(|&m| self.get(l, m))
                    .map(|m| m.letter())
                    .collect();
                format!("{l}:{letters}")
            })
            .collect();
        write!(f, "{}", rows.join(" "))
    }
}

/// The victim with the matrix's cells taken from the donor: a view sharing both models'
/// tensors, so building one costs no weight copy.
pub fn weight_view(
    victim: &Classifier,
    donor: &Classifier,
    matrix: &SubstitutionMatrix,
) -> Classifier {
    let mut view = victim.clone();
    for (l, layer) in view.layers.iter_mut().enumerate() {
        *layer = substituted_layer(&victim.layers[l], &donor.layers[l], matrix, l);
    }
    view
}

/// Layer `l` of the weight view.
pub fn substituted_layer(
    victim: &EncoderLayer,
    donor: &EncoderLayer,
    matrix: &SubstitutionMatrix,
    l: usize,
) -> EncoderLayer {
    let mut layer = victim.clone();
    for (slot, &m) in ENCODER_MODULES.iter().enumerate() {
        if matrix.get(l, m) {
            layer.modules[slot] = donor.modules[slot].clone();
        }
    }
    layer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_and_prefix() {
        let full = SubstitutionMatrix::product(4, &ENCODER_MODULES, &[0, 1, 2, 3]);
        assert_eq!(full, SubstitutionMatrix::full(&ENCODER_MODULES, 4));
        assert_eq!(full.count(), 24);
        let drop_l2 = SubstitutionMatrix::product(4, &ENCODER_MODULES, &[0, 1, 3]);
        assert_eq!(full.common_prefix(&drop_l2), 2);
        let drop_q = SubstitutionMatrix::product(4, &ENCODER_MODULES[1..], &[0, 1, 2, 3]);
        assert_eq!(full.common_prefix(&drop_q), 0);
        assert_eq!(
            drop_l2.as_product(),
            Some((ENCODER_MODULES.to_vec(), vec![0, 1, 3]))
        );
        let mut odd = drop_l2.clone();
        odd.toggle(0, Module::Q);
        assert_eq!(odd.as_product(), None);
        assert_eq!(format!("{odd}"), "0:KVOFP 1:QKVOFP 3:QKVOFP");
        assert_eq!(format!("{drop_q}"), "KVOFP×{0,1,2,3}");
    }

    #[test]
    fn decoder_cells_keep_their_order() {
        use crate::model::arch::DECODER_MODULES;
        let full = SubstitutionMatrix::full(&DECODER_MODULES, 2);
        assert_eq!(full.count(), 14);
        assert!(full.uses_only(&DECODER_MODULES));
        assert!(!full.uses_only(&ENCODER_MODULES));
        let letters: String = full.cells()[..7].iter().map(|c| c.1.letter()).collect();
        assert_eq!(letters, "QKVOGUD");
        assert_eq!(format!("{full}"), "QKVOGUD×{0,1}");
        let qv = SubstitutionMatrix::product(2, &[Module::Q, Module::V], &[0, 1]);
        assert_eq!(full.intersection(&qv), qv);
    }

    #[test]
    fn toggles() {
        let mut s = SubstitutionMatrix::empty(3);
        s.toggle_layer(1, &ENCODER_MODULES);
        assert_eq!(s.count(), 6);
        s.toggle_module(Module::F);
        assert_eq!(s.count(), 8);
        s.toggle_module(Module::F);
        assert_eq!(s.count(), 5);
        assert_eq!(s.cells()[0], (1, Module::Q));
    }
}
