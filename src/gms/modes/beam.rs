//! The `beam` mode: the paper's product-set moves (drop one module type or one layer), keeping
//! the `width` best states of each step instead of the single best, so a move that looks
//! worse now but opens a better one later survives a few steps. Rules: [`super::walk`].

use crate::gms::modes::walk::{Moves, Walk};
use crate::gms::modes::SearchMode;
use crate::gms::search::SearchParams;

/// A beam search of `width` states per step over a model with `num_layers` layers.
pub fn new(params: SearchParams, num_layers: usize, width: usize) -> Walk {
    Walk::new(
        SearchMode::Beam { width },
        params,
        num_layers,
        width,
        Moves::Product,
    )
}
