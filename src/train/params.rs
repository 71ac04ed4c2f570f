//! The flat parameter vector: every trainable number of a chain lives in one `Vec<F>`, and
//! every block and layer knows only its offsets. Optimiser state, per-thread gradient buffers
//! and checkpoints are then plain vectors of the same length.

use crate::prelude::*;

/// Hands out consecutive ranges of the parameter vector while a chain is built.
#[derive(Clone, Debug, Default)]
pub(crate) struct ParamLayout {
    len: usize,
}

impl ParamLayout {
    /// Reserves `n` parameters and returns their offset.
    pub(crate) fn take(&mut self, n: usize) -> usize {
        let at = self.len;
        self.len += n;
        at
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}
