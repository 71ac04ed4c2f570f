//! Caller buffers as strided row-major matrices.
//!
//! Element `(r, c)` of a matrix lives at `data[r·row_stride + c·col_stride]`. Row-major
//! `[rows][cols]` is `(cols, 1)`; a Fortran array `x(dim, n)` is the same; a Fortran `x(n, dim)`
//! is `(1, n)`. Constructors check that every element lies inside the slice, so the hot path
//! can index without further checks.

use crate::error::{Error, Result};

fn required_len(
    name: &'static str,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
) -> Result<usize> {
    if rows == 0 || cols == 0 {
        return Ok(0);
    }
    (rows - 1)
        .checked_mul(row_stride)
        .and_then(|a| {
            (cols - 1)
                .checked_mul(col_stride)
                .and_then(|b| a.checked_add(b))
        })
        .and_then(|last| last.checked_add(1))
        .ok_or(Error::BufferLength {
            buffer: name,
            expected: usize::MAX,
            found: 0,
        })
}

/// Whether every element of a `rows × cols` matrix with strides `(rs, cs)` has its own place
/// (trivially so without elements): a stride that steps between two elements is not 0, and the rows do not interleave (each
/// row lies past the previous one, or each column past the previous one). Output matrices
/// must, or one element would be written twice, and two rows would read back each other's
/// numbers.
fn distinct_elements(rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    let steps = |n: usize, stride: usize| n <= 1 || stride > 0;
    if rows == 0 || cols == 0 {
        return true;
    }
    if rows <= 1 || cols <= 1 {
        return steps(rows, rs) && steps(cols, cs);
    }
    let past = |stride: usize, n: usize, other: usize| {
        other > 0 && n.checked_mul(other).is_some_and(|span| stride >= span)
    };
    past(rs, cols, cs) || past(cs, rows, rs)
}

/// A read-only strided matrix over caller memory.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    pub(crate) name: &'static str,
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// A writable strided matrix over caller memory.
#[derive(Debug)]
pub struct MatMut<'a> {
    pub(crate) name: &'static str,
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A strided view; fails if an element would lie outside `data`.
    pub fn strided(
        name: &'static str,
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self> {
        let need = required_len(name, rows, cols, row_stride, col_stride)?;
        if data.len() < need {
            return Err(Error::BufferLength {
                buffer: name,
                expected: need,
                found: data.len(),
            });
        }
        Ok(MatRef {
            name,
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// A contiguous row-major view: `data.len()` must be a multiple of `cols`.
    pub fn rows_of(name: &'static str, data: &'a [f32], cols: usize) -> Result<Self> {
        if cols == 0 || !data.len().is_multiple_of(cols) {
            return Err(Error::BufferLength {
                buffer: name,
                expected: (data.len() / cols.max(1)) * cols,
                found: data.len(),
            });
        }
        Self::strided(name, data, data.len() / cols, cols, cols, 1)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Copies row `r` into `out` (`out.len() == cols`).
    #[inline]
    pub(crate) fn read_row(&self, r: usize, out: &mut [f32]) {
        let base = r * self.row_stride;
        if self.col_stride == 1 {
            out.copy_from_slice(&self.data[base..base + self.cols]);
        } else {
            for (c, o) in out.iter_mut().enumerate() {
                *o = self.data[base + c * self.col_stride];
            }
        }
    }
}

impl<'a> MatMut<'a> {
    /// A strided view; fails if an element would lie outside `data`.
    pub fn strided(
        name: &'static str,
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self> {
        let need = required_len(name, rows, cols, row_stride, col_stride)?;
        if data.len() < need {
            return Err(Error::BufferLength {
                buffer: name,
                expected: need,
                found: data.len(),
            });
        }
        if !distinct_elements(rows, cols, row_stride, col_stride) {
            return Err(Error::Argument(
                "the strides of an output matrix make elements share memory: rows must not \
                 interleave (row stride >= cols * col stride, or col stride >= rows * row stride; \
                 neither 0)",
            ));
        }
        Ok(MatMut {
            name,
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// A contiguous row-major view of exactly `rows × cols` elements.
    pub fn rows_of(
        name: &'static str,
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
    ) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::BufferLength {
                buffer: name,
                expected: rows * cols,
                found: data.len(),
            });
        }
        Self::strided(name, data, rows, cols, cols, 1)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Writes `values` (`len == cols`) to row `r`.
    #[inline]
    pub(crate) fn write_row(&mut self, r: usize, values: &[f32]) {
        let base = r * self.row_stride;
        if self.col_stride == 1 {
            self.data[base..base + self.cols].copy_from_slice(values);
        } else {
            for (c, v) in values.iter().enumerate() {
                self.data[base + c * self.col_stride] = *v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::distinct_elements;

    #[test]
    fn output_strides_that_alias_elements_are_told_apart() {
        // Row-major, column-major and padded layouts.
        assert!(distinct_elements(3, 4, 4, 1));
        assert!(distinct_elements(3, 4, 1, 3));
        assert!(distinct_elements(3, 4, 8, 2));
        assert!(distinct_elements(1, 4, 0, 1));
        assert!(distinct_elements(3, 1, 1, 0));
        assert!(distinct_elements(10, 0, 0, 1));
        assert!(distinct_elements(0, 4, 0, 0));
        // rs = cs = 1: row r, column c and row r + 1, column c − 1 share a place.
        assert!(!distinct_elements(3, 4, 1, 1));
        assert!(!distinct_elements(3, 4, 3, 1));
        assert!(!distinct_elements(3, 4, 0, 1));
        assert!(!distinct_elements(3, 1, 0, 0));
        assert!(!distinct_elements(1, 4, 0, 0));
        assert!(!distinct_elements(2, 2, usize::MAX, 0));
    }
}
