//! The non-finite policy shared by every call (forward, inverse, sample, summarize).
//!
//! A row's *input* is what the caller gives for it: x (forward), the inverse pass's input row
//! (z, and for the paper's INN layout z, pad and y), the condition or observation y, or, when
//! sampling, the observation alone (the latent vectors are drawn inside and always finite).
//!
//! - An **invalid** input holds a NaN or an infinity, or a value the model's declared
//!   transform turns into one (an x on or outside its bounds, docs/format.md §3.1; a band
//!   that is not positive for `clr`). Every output of its row is NaN (its log-determinant
//!   too) and the call succeeds: a dead camera pixel gives NaN summaries for that pixel
//!   alone, and summarize counts such rows.
//! - A **valid** input whose outputs come out non-finite all the same (the standardisation or
//!   the network overflowed: the input lies far outside what the model was trained on) is
//!   reported: the call writes all its outputs, makes every output of such a row NaN, and
//!   returns [`Error::NonFiniteOutput`] naming the buffer and the first such row.
//!
//! So a call never hands out a row that mixes finite and non-finite numbers, and never finite
//! numbers computed from non-finite ones. Telling the two cases apart costs a finiteness scan
//! of each output row at the end of the call; the inputs are looked at again only for a row
//! whose outputs are not finite.

use crate::error::{Error, Result};
use crate::model::Model;

/// Whether every value is finite: branch-free within chunks of 64 (so it compiles to vector
/// code, a few cycles per row), stopping at the first chunk that is not.
pub(super) fn all_finite(values: &[f32]) -> bool {
    values
        .chunks(64)
        .all(|c| c.iter().fold(true, |finite, v| finite & v.is_finite()))
}

/// Whether a condition row as the caller gives it (`row`, overwritten with its transform) is
/// invalid: a NaN or an infinity, or a value the model's y transform turns into one.
pub(super) fn condition_is_invalid(model: &Model, row: &mut [f32]) -> bool {
    model.y_transform.apply(row);
    !all_finite(row)
}

/// The rows of a call whose valid input came out non-finite: the first (and its buffer) and
/// how many, in the order the call checks them.
#[derive(Default)]
pub(super) struct Overflows {
    first: Option<(&'static str, usize)>,
    rows: usize,
}

impl Overflows {
    /// Notes row `row` of `buffer`.
    pub(super) fn record(&mut self, buffer: &'static str, row: usize) {
        self.first.get_or_insert((buffer, row));
        self.rows += 1;
    }

    /// `Ok` if no row was noted, else the error that names the first.
    pub(super) fn result(&self) -> Result<()> {
        match self.first {
            None => Ok(()),
            Some((buffer, row)) => Err(Error::NonFiniteOutput {
                buffer,
                row,
                rows: self.rows,
            }),
        }
    }
}
