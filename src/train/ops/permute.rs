//! A fixed permutation of the channels (`PermuteRandom`, AllInOneBlock's hard permutation):
//! `y[:, i] = x[:, perm[i]]`. It is orthogonal, so its gradient is permuted like the state.

use crate::prelude::*;

use super::Batch;

#[derive(Clone, Debug)]
pub(crate) struct Permutation {
    pub(crate) forward: Vec<usize>,
    pub(crate) inverse: Vec<usize>,
}

impl Permutation {
    pub(crate) fn new(forward: Vec<usize>) -> Permutation {
        let mut inverse = vec![0; forward.len()];
        for (i, &p) in forward.iter().enumerate() {
            inverse[p] = i;
        }
        Permutation { forward, inverse }
    }

    /// Applies the permutation (or its inverse) to every row of `rows` (`m × d`).
    pub(crate) fn run<T: Copy, G>(&self, batch: &Batch<'_, G>, rows: &mut [T], rev: bool) {
        let index = if rev { &self.inverse } else { &self.forward };
        let d = batch.d;
        let mut tmp = Vec::with_capacity(d);
        for row in rows[..batch.m * d].chunks_exact_mut(d) {
            tmp.clear();
            tmp.extend_from_slice(row);
            for (o, &p) in row.iter_mut().zip(index) {
                *o = tmp[p];
            }
        }
    }
}
