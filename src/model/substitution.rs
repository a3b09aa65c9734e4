//! Which modules come from the proxy: the substitution matrix and the weight view built from it.

use crate::model::arch::Module;
use crate::model::encoder::{Classifier, EncoderLayer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A layer's row with every module set.
const ALL_MODULES: u8 = (1 << Module::ALL.len()) - 1;

/// A set of (layer, module) cells; a set cell means "this layer's module comes from the proxy".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SubstitutionMatrix {
    /// One 6-bit mask per layer, bit i = [`Module::ALL`]\[i\].
    rows: Vec<u8>,
}

impl SubstitutionMatrix {
    /// No cell set: the victim itself.
    pub fn empty(layers: usize) -> Self {
        SubstitutionMatrix {
            rows: vec![0; layers],
        }
    }

    /// Every cell set: each module of each layer from the proxy (where the search starts).
    pub fn full(num_layers: usize) -> Self {
        SubstitutionMatrix {
            rows: vec![ALL_MODULES; num_layers],
        }
    }

    /// The product set `modules × layers` (the paper's search space).
    pub fn product(num_layers: usize, modules: &[Module], layers: &[usize]) -> Self {
        let mask = modules.iter().fold(0u8, |acc, m| acc | (1 << m.index()));
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

    /// Flips a whole layer: sets all its cells unless all are set, then clears them.
    pub fn toggle_layer(&mut self, layer: usize) {
        self.rows[layer] = if self.rows[layer] == ALL_MODULES {
            0
        } else {
            ALL_MODULES
        };
    }

    /// Flips a whole module column, like [`Self::toggle_layer`].
    pub fn toggle_module(&mut self, module: Module) {
        let all = (0..self.num_layers()).all(|l| self.get(l, module));
        for l in 0..self.num_layers() {
            self.set(l, module, !all);
        }
    }

    /// Set cells, layer-major, modules in Q,K,V,O,F,P order.
    pub fn cells(&self) -> Vec<(usize, Module)> {
        (0..self.num_layers())
            .flat_map(|l| {
                Module::ALL
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
        let modules = Module::ALL
            .into_iter()
            .filter(|m| mask & (1 << m.index()) != 0)
            .collect();
        Some((modules, layers))
    }
}

impl fmt::Display for SubstitutionMatrix {
    /// Compact form, e.g. `QKVOFP×{0,1,2}` for product sets, else one row per layer.
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
            .map(|l| {
                Module::ALL
                    .into_iter()
                    .map(|m| if self.get(l, m) { m.letter() } else { '.' })
                    .collect()
            })
            .collect();
        write!(f, "{}", rows.join("|"))
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
    for m in Module::ALL {
        if matrix.get(l, m) {
            layer.modules[m.index()] = donor.modules[m.index()].clone();
        }
    }
    layer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_and_prefix() {
        let full = SubstitutionMatrix::product(4, &Module::ALL, &[0, 1, 2, 3]);
        assert_eq!(full.count(), 24);
        let drop_l2 = SubstitutionMatrix::product(4, &Module::ALL, &[0, 1, 3]);
        assert_eq!(full.common_prefix(&drop_l2), 2);
        let drop_q = SubstitutionMatrix::product(4, &Module::ALL[1..], &[0, 1, 2, 3]);
        assert_eq!(full.common_prefix(&drop_q), 0);
        assert_eq!(
            drop_l2.as_product(),
            Some((Module::ALL.to_vec(), vec![0, 1, 3]))
        );
        let mut odd = drop_l2.clone();
        odd.toggle(0, Module::Q);
        assert_eq!(odd.as_product(), None);
        assert_eq!(format!("{drop_q}"), "KVOFP×{0,1,2,3}");
    }

    #[test]
    fn toggles() {
        let mut s = SubstitutionMatrix::empty(3);
        s.toggle_layer(1);
        assert_eq!(s.count(), 6);
        s.toggle_module(Module::F);
        assert_eq!(s.count(), 8);
        s.toggle_module(Module::F);
        assert_eq!(s.count(), 5);
        assert_eq!(s.cells()[0], (1, Module::Q));
    }
}
