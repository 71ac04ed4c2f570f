//! Names and units of the parameters (`innfer.x_names`, `innfer.x_units`, docs/format.md §2):
//! what a figure or a table of posterior summaries labels each x dimension with. They change
//! no number the library computes.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::Result;
use crate::source::Source;
use crate::source::budget::try_string;

pub(crate) const X_NAMES_KEY: &str = "innfer.x_names";
pub(crate) const X_UNITS_KEY: &str = "innfer.x_units";

/// Longest name or unit, in bytes.
const MAX_LABEL_BYTES: usize = 64;

/// The labels of the x dimensions: empty lists when the file gives none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct XLabels {
    pub(crate) names: Vec<String>,
    pub(crate) units: Vec<String>,
}

/// Reads one comma-separated list of `x_dim` labels; names may not be empty, units may.
fn read_list(src: &Source<'_>, key: &str, x_dim: usize, empty_ok: bool) -> Result<Vec<String>> {
    let Some(value) = src.meta(key) else {
        return Ok(Vec::new());
    };
    let mut out = src.budget.with_capacity(key, x_dim)?;
    for (i, entry) in super::transform::entries(src, key, value, x_dim)?.enumerate() {
        if entry.is_empty() && !empty_ok {
            return Err(src.bad_meta(key, format!("entry {i} is empty")));
        }
        if entry.len() > MAX_LABEL_BYTES || entry.chars().any(char::is_control) {
            return Err(src.bad_meta(
                key,
                format!(
                    "entry {i} is longer than {MAX_LABEL_BYTES} bytes or holds control characters"
                ),
            ));
        }
        out.push(try_string(key, entry)?);
    }
    Ok(out)
}

/// `innfer.x_names` and `innfer.x_units`; `x_dim` is the layout's.
pub(crate) fn read_x_labels(src: &Source<'_>, x_dim: usize) -> Result<XLabels> {
    Ok(XLabels {
        names: read_list(src, X_NAMES_KEY, x_dim, false)?,
        units: read_list(src, X_UNITS_KEY, x_dim, true)?,
    })
}
