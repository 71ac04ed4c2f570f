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
        if rows > 1 && cols > 1 && (row_stride == 0 || col_stride == 0) {
            return Err(Error::Argument(
                "an output matrix cannot have a zero stride",
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
