//! `ndarray` views in, `ndarray` arrays out: [`Session::sample_array`], [`Session::forward_array`],
//! [`Session::inverse_array`] and their `_into` forms, with the crate's `ndarray` feature (it
//! needs `std`, so it is never part of the bare-metal build).
//!
//! The views go to the strided paths of the session ([`MatRef`] / [`MatMut`], the same ones
//! the C API's `*_strided` calls use) without a copy whenever the view's elements fill one
//! slice with non-negative strides: C order, Fortran order (a transposed view), any other
//! contiguous order, and a row broadcast to many rows (`y.broadcast((n, y_dim))`, row stride
//! 0). A view with gaps between its elements (a column slice of a wider array, every other
//! row) or a negative stride is copied once into row-major order: lending its span as one
//! slice would also lend the elements in the gaps, which may belong to another, mutable view.
//! Outputs of such layouts are computed into a row-major buffer and assigned.

use alloc::vec;
use alloc::vec::Vec;

use ::ndarray::{
    Array1, Array2, Array3, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis,
};

use crate::error::{Error, Result};
use crate::session::Session;
use crate::session::matrix::{MatMut, MatRef};

/// The element strides of a 2-D view for [`MatRef`]: `None` if one is negative. An axis of
/// length ≤ 1 is never stepped along, so its stride is taken as 0 whatever it is.
fn strides(dim: (usize, usize), strides: &[isize]) -> Option<(usize, usize)> {
    let one = |len: usize, stride: isize| {
        if len <= 1 {
            Some(0)
        } else {
            usize::try_from(stride).ok()
        }
    };
    Some((one(dim.0, strides[0])?, one(dim.1, strides[1])?))
}

/// A matrix as one slice with element strides: what [`MatRef::strided`] takes, kept whole so
/// that calls can be made on row ranges of it.
struct Strided<'v> {
    data: &'v [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'v> Strided<'v> {
    /// The view itself, if its elements fill one slice with non-negative strides.
    fn of(view: ArrayView2<'v, f32>) -> Option<Self> {
        let (rows, cols) = view.dim();
        let (row_stride, col_stride) = strides(view.dim(), view.strides())?;
        let data = if rows > 1 && row_stride == 0 {
            // One row seen `rows` times (a broadcast): that row is the whole span.
            view.index_axis_move(Axis(0), 0).to_slice()?
        } else {
            view.to_slice_memory_order()?
        };
        Some(Strided {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// The view, or a row-major copy of it kept in `copy` when its layout cannot be lent.
    fn or_copy(view: ArrayView2<'v, f32>, copy: &'v mut Vec<f32>) -> Self {
        if let Some(strided) = Self::of(view) {
            return strided;
        }
        let (rows, cols) = view.dim();
        copy.extend(view.iter().copied());
        Strided {
            data: copy,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// Rows `r0..r1` as a [`MatRef`].
    fn rows(&self, name: &'static str, r0: usize, r1: usize) -> Result<MatRef<'_>> {
        MatRef::strided(
            name,
            &self.data[r0 * self.row_stride..],
            r1 - r0,
            self.cols,
            self.row_stride,
            self.col_stride,
        )
    }
}

/// The writable counterpart of [`Strided`].
struct StridedMut<'v> {
    data: &'v mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'v> StridedMut<'v> {
    /// The view itself if its elements fill one slice with positive strides; else the view back.
    fn of(view: ArrayViewMut2<'v, f32>) -> core::result::Result<Self, ArrayViewMut2<'v, f32>> {
        let (rows, cols) = view.dim();
        let Some((row_stride, col_stride)) = strides(view.dim(), view.strides()) else {
            return Err(view);
        };
        let repeats = (rows > 1 && row_stride == 0) || (cols > 1 && col_stride == 0);
        if repeats || view.as_slice_memory_order().is_none() {
            return Err(view);
        }
        let data = view
            .into_slice_memory_order()
            .expect("a view with a contiguous slice (checked above)");
        Ok(StridedMut {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// Rows `r0..r1` as a [`MatMut`].
    fn rows(&mut self, name: &'static str, r0: usize, r1: usize) -> Result<MatMut<'_>> {
        MatMut::strided(
            name,
            &mut self.data[r0 * self.row_stride..],
            r1 - r0,
            self.cols,
            self.row_stride,
            self.col_stride,
        )
    }
}

/// An output view, written in place when its layout allows, else through a row-major buffer
/// that [`Output::finish`] copies into it.
enum Output<'v> {
    Direct(StridedMut<'v>),
    Buffered {
        view: ArrayViewMut2<'v, f32>,
        buffer: Vec<f32>,
    },
}

impl<'v> Output<'v> {
    fn new(view: ArrayViewMut2<'v, f32>) -> Self {
        match StridedMut::of(view) {
            Ok(direct) => Output::Direct(direct),
            Err(view) => {
                let buffer = vec![0.0; view.len()];
                Output::Buffered { view, buffer }
            }
        }
    }

    /// Where the session writes.
    fn target(&mut self) -> StridedMut<'_> {
        match self {
            Output::Direct(s) => StridedMut {
                data: &mut *s.data,
                rows: s.rows,
                cols: s.cols,
                row_stride: s.row_stride,
                col_stride: s.col_stride,
            },
            Output::Buffered { view, buffer } => StridedMut {
                data: buffer,
                rows: view.nrows(),
                cols: view.ncols(),
                row_stride: view.ncols(),
                col_stride: 1,
            },
        }
    }

    fn finish(self) {
        if let Output::Buffered { mut view, buffer } = self {
            copy_in_order(view.iter_mut(), buffer);
        }
    }
}

/// Copies `values` into the elements of a view, in the view's logical (row-major) order.
fn copy_in_order<'e>(dst: impl Iterator<Item = &'e mut f32>, values: Vec<f32>) {
    for (d, v) in dst.zip(values) {
        *d = v;
    }
}

fn shape_error(buffer: &'static str, expected: usize, found: usize) -> Error {
    Error::BufferLength {
        buffer,
        expected,
        found,
    }
}

/// Elements of a `rows × cols` result, if an array of them can be allocated.
fn result_len(rows: usize, cols: usize) -> Result<usize> {
    rows.checked_mul(cols)
        .filter(|&len| len <= isize::MAX as usize / core::mem::size_of::<f32>())
        .ok_or(Error::Argument("too many samples to hold in one array"))
}

/// With the `ndarray` feature: the session's calls on [`ndarray`](::ndarray) views. Shapes are
/// `[rows, columns]` as in the slice API (`[n, x_dim]`, `[rows, dim]`, …); any layout is
/// accepted (see the notes on `sample_array_into`); the results are C-order arrays.
impl Session<'_, '_> {
    /// `n` posterior samples of x for the observation `y` (`[y_dim]`, raw units), as an
    /// `[n, x_dim]` array: the numbers [`Session::sample`] writes.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), innfer::Error> {
    /// use innfer::{Model, Session};
    /// use ndarray::array;
    ///
    /// let model = Model::from_file("model.safetensors")?;
    /// let mut session = Session::new(&model, 256)?;
    /// session.reseed(42, 0);
    /// let y = array![1.5f32, 0.0];
    /// let x = session.sample_array(y.view(), 1000)?; // Array2<f32>, [1000, x_dim]
    /// let cond = y.broadcast((1000, 2)).unwrap(); // y for every row, read in place
    /// let (z, logdet) = session.forward_array(x.view(), Some(cond))?;
    /// # let _ = (z, logdet);
    /// # Ok(()) }
    /// ```
    pub fn sample_array(&mut self, y: ArrayView1<'_, f32>, n: usize) -> Result<Array2<f32>> {
        let x_dim = self.model().layout().x_dim();
        result_len(n, x_dim)?;
        let mut x = Array2::zeros((n, x_dim));
        self.sample_array_into(y.insert_axis(Axis(0)), n, x.view_mut())?;
        Ok(x)
    }

    /// `n` samples for each row of `ys` (`[m, y_dim]`), as an `[m, n, x_dim]` array: entry
    /// `[i, j]` is sample `j` of observation `i`, the numbers of [`Session::sample_batch`].
    ///
    /// ```
    /// # fn main() -> Result<(), innfer::Error> {
    /// use ndarray::array;
    ///
    /// let model = innfer::Model::from_file("models/kinematics.safetensors")?;
    /// let mut session = innfer::Session::new(&model, 256)?;
    /// let ys = array![[1.5f32, 0.0], [0.5, 1.0], [-1.0, 1.5]];
    /// let x = session.sample_batch_array(ys.view(), 100)?;
    /// assert_eq!(x.shape(), &[3, 100, 4]);
    /// # Ok(()) }
    /// ```
    pub fn sample_batch_array(&mut self, ys: ArrayView2<'_, f32>, n: usize) -> Result<Array3<f32>> {
        let x_dim = self.model().layout().x_dim();
        let m = ys.nrows();
        let total = result_len(m, n)?;
        result_len(total, x_dim)?;
        let mut x = Array3::zeros((m, n, x_dim));
        {
            let flat = x
                .view_mut()
                .into_shape_with_order((total, x_dim))
                .map_err(|_| Error::Argument("too many samples to hold in one array"))?;
            self.sample_array_into(ys, n, flat)?;
        }
        Ok(x)
    }

    /// `n` samples for each row of `ys` (`[m, y_dim]`), written observation by observation into
    /// `x` (`[m·n, x_dim]`, any strides): the numbers of [`Session::sample_strided`].
    ///
    /// Views whose elements fill one slice with non-negative strides (C order, Fortran order,
    /// a broadcast row) are used in place; others (gaps between elements, negative strides)
    /// are copied once, or for `x` written through a row-major buffer.
    ///
    /// ```
    /// # fn main() -> Result<(), innfer::Error> {
    /// use ndarray::{Array2, ShapeBuilder, array};
    ///
    /// let model = innfer::Model::from_file("models/kinematics.safetensors")?;
    /// let mut session = innfer::Session::new(&model, 256)?;
    /// // Fortran order: x(4, 500) of a Fortran caller, filled in place.
    /// let mut x = Array2::<f32>::zeros((500, 4).f());
    /// session.sample_array_into(array![[1.5f32, 0.0]].view(), 500, x.view_mut())?;
    /// # Ok(()) }
    /// ```
    pub fn sample_array_into(
        &mut self,
        ys: ArrayView2<'_, f32>,
        n: usize,
        x: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        let mut copy = Vec::new();
        let ys = Strided::or_copy(ys, &mut copy);
        let mut out = Output::new(x);
        let result = {
            let mut target = out.target();
            let rows = target.rows;
            self.sample_strided(ys.rows("y", 0, ys.rows)?, n, target.rows("x", 0, rows)?)
        };
        // An overflow (Error::NonFiniteOutput) is reported with every sample written.
        if matches!(result, Ok(()) | Err(Error::NonFiniteOutput { .. })) {
            out.finish();
        }
        result
    }

    /// The forward pass on `x` (`[rows, dim]`) with `cond` (`[rows, cond_dim]`, conditional
    /// models only): `(out, logdet)`, `[rows, dim]` and `[rows]`. Any number of rows: they run
    /// in calls of at most [`Session::max_batch`] (rows are independent, so the numbers are
    /// those of one call). An overflow ([`Error::NonFiniteOutput`], row counted from the first
    /// row) returns the error alone: [`Session::forward_array_into`] keeps the outputs, every
    /// one written.
    ///
    /// ```
    /// # fn main() -> Result<(), innfer::Error> {
    /// use ndarray::array;
    ///
    /// let model = innfer::Model::from_file("models/kinematics.safetensors")?;
    /// let mut session = innfer::Session::new(&model, 64)?;
    /// let y = array![1.5f32, 0.0];
    /// let x = session.sample_array(y.view(), 1000)?;
    /// let cond = y.broadcast((1000, 2)).unwrap();
    /// let (z, logdet) = session.forward_array(x.view(), Some(cond))?; // 16 calls of 64 rows
    /// let (x_back, _) = session.inverse_array(z.view(), Some(cond))?;
    /// assert!(x_back.iter().zip(&x).all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + b.abs())));
    /// assert_eq!(logdet.len(), 1000);
    /// # Ok(()) }
    /// ```
    pub fn forward_array(
        &mut self,
        x: ArrayView2<'_, f32>,
        cond: Option<ArrayView2<'_, f32>>,
    ) -> Result<(Array2<f32>, Array1<f32>)> {
        self.pass_array(x, cond, false)
    }

    /// The inverse pass on `input` (`[rows, dim]`): `(x, logdet)`; as [`Session::forward_array`].
    pub fn inverse_array(
        &mut self,
        input: ArrayView2<'_, f32>,
        cond: Option<ArrayView2<'_, f32>>,
    ) -> Result<(Array2<f32>, Array1<f32>)> {
        self.pass_array(input, cond, true)
    }

    /// [`Session::forward_array`] into caller arrays: `out` `[rows, dim]` and, if given,
    /// `logdet` `[rows]`, any strides (see [`Session::sample_array_into`]).
    pub fn forward_array_into(
        &mut self,
        x: ArrayView2<'_, f32>,
        cond: Option<ArrayView2<'_, f32>>,
        out: ArrayViewMut2<'_, f32>,
        logdet: Option<ArrayViewMut1<'_, f32>>,
    ) -> Result<()> {
        self.pass_array_into(x, cond, out, logdet, false)
    }

    /// [`Session::inverse_array`] into caller arrays; as [`Session::forward_array_into`].
    pub fn inverse_array_into(
        &mut self,
        input: ArrayView2<'_, f32>,
        cond: Option<ArrayView2<'_, f32>>,
        x: ArrayViewMut2<'_, f32>,
        logdet: Option<ArrayViewMut1<'_, f32>>,
    ) -> Result<()> {
        self.pass_array_into(input, cond, x, logdet, true)
    }

    fn pass_array(
        &mut self,
        input: ArrayView2<'_, f32>,
        cond: Option<ArrayView2<'_, f32>>,
        rev: bool,
    ) -> Result<(Array2<f32>, Array1<f32>)> {
        let rows = input.nrows();
        let mut out = Array2::zeros((rows, self.model().dim()));
        let mut logdet = Array1::zeros(rows);
        self.pass_array_into(input, cond, out.view_mut(), Some(logdet.view_mut()), rev)?;
        Ok((out, logdet))
    }

    fn pass_array_into(
        &mut self,
        input: ArrayView2<'_, f32>,
        cond: Option<ArrayView2<'_, f32>>,
        out: ArrayViewMut2<'_, f32>,
        logdet: Option<ArrayViewMut1<'_, f32>>,
        rev: bool,
    ) -> Result<()> {
        let (d, cc) = (self.model().dim(), self.model().cond_dim());
        let rows = input.nrows();
        // The whole call's shapes, checked before it is split into calls of max_batch rows
        // (whose errors would give a part's sizes).
        if input.ncols() != d {
            return Err(shape_error("input", rows * d, input.len()));
        }
        if out.dim() != (rows, d) {
            return Err(shape_error("output", rows * d, out.len()));
        }
        if let Some(ld) = &logdet
            && ld.len() != rows
        {
            return Err(shape_error("logdet", rows, ld.len()));
        }
        if let Some(c) = &cond
            && cc > 0
            && c.dim() != (rows, cc)
        {
            return Err(shape_error("cond", rows * cc, c.len()));
        }

        let (mut input_copy, mut cond_copy) = (Vec::new(), Vec::new());
        let input = Strided::or_copy(input, &mut input_copy);
        let cond = cond.map(|c| Strided::or_copy(c, &mut cond_copy));
        let mut out = Output::new(out);
        // logdet: in place if it is one slice in order, else through a buffer.
        let (mut logdet_slice, mut logdet_view) = (None, None);
        match logdet {
            Some(ld) if ld.is_standard_layout() => logdet_slice = ld.into_slice(),
            Some(ld) => logdet_view = Some(ld),
            None => {}
        }
        let mut logdet_buffer = vec![0.0f32; if logdet_view.is_some() { rows } else { 0 }];
        if logdet_view.is_some() {
            logdet_slice = Some(&mut logdet_buffer[..]);
        }
        // The call's first overflowing row (buffer, row) and how many there are: every part
        // runs and every output is written before it is reported (Error::NonFiniteOutput).
        let mut overflow: Option<(&'static str, usize, usize)> = None;
        {
            let mut target = out.target();
            let step = self.max_batch();
            let mut r0 = 0;
            // At least one call: with no rows, the session still checks the condition.
            loop {
                let r1 = rows.min(r0 + step);
                let inp = input.rows("input", r0, r1)?;
                let c = match &cond {
                    Some(c) => Some(c.rows("cond", r0, r1)?),
                    None => None,
                };
                let o = target.rows("output", r0, r1)?;
                let ld = logdet_slice.as_deref_mut().map(|l| &mut l[r0..r1]);
                let result = if rev {
                    self.inverse_strided(inp, c, o, ld)
                } else {
                    self.forward_strided(inp, c, o, ld)
                };
                match (result, &mut overflow) {
                    (Ok(()), _) => {}
                    (Err(Error::NonFiniteOutput { buffer, row, rows }), None) => {
                        overflow = Some((buffer, r0 + row, rows));
                    }
                    (Err(Error::NonFiniteOutput { rows, .. }), Some((_, _, count))) => {
                        *count += rows;
                    }
                    (Err(e), _) => return Err(e),
                }
                r0 = r1;
                if r0 >= rows {
                    break;
                }
            }
        }
        out.finish();
        if let Some(mut view) = logdet_view {
            copy_in_order(view.iter_mut(), logdet_buffer);
        }
        match overflow {
            None => Ok(()),
            Some((buffer, row, rows)) => Err(Error::NonFiniteOutput { buffer, row, rows }),
        }
    }
}

#[cfg(test)]
mod tests {
    use ::ndarray::{Array1, Array2, ArrayView2, ShapeBuilder, array, s};
    use std::path::PathBuf;
    use std::string::String;
    use std::vec::Vec;
    // `array!` expands to `vec!`, which a no_std crate does not have in scope.
    use std::vec;

    use super::Strided;
    use crate::{Error, Model, Session};

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn kinematics() -> Model {
        Model::from_file(root().join("models/kinematics.safetensors")).unwrap()
    }

    fn fixture(name: &str) -> Model {
        Model::from_file(
            root()
                .join("tests/fixtures")
                .join(name)
                .join("model.safetensors"),
        )
        .unwrap()
    }

    /// Deterministic inputs of `rows × cols`, in C order.
    fn inputs(rows: usize, cols: usize, seed: f32) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(r, c)| {
            ((r * cols + c) as f32 * 0.37 + seed).sin() * 1.5
        })
    }

    /// The same matrix in Fortran order (column-major memory).
    fn fortran(a: &Array2<f32>) -> Array2<f32> {
        let mut f = Array2::zeros(a.dim().f());
        f.assign(a);
        assert!(!f.is_standard_layout() && f.t().is_standard_layout());
        f
    }

    fn bits(a: impl IntoIterator<Item = f32>) -> Vec<u32> {
        a.into_iter().map(f32::to_bits).collect()
    }

    #[test]
    fn sample_array_draws_the_samples_of_the_slice_api() {
        let model = kinematics();
        let mut session = Session::new(&model, 256).unwrap();
        session.reseed(42, 3);
        let mut want = std::vec![0.0f32; 1000 * 4];
        session.sample(&[1.5, 0.0], 1000, &mut want).unwrap();

        session.reseed(42, 3);
        let x = session
            .sample_array(array![1.5f32, 0.0].view(), 1000)
            .unwrap();
        assert_eq!(x.dim(), (1000, 4));
        assert_eq!(bits(x.iter().copied()), bits(want.iter().copied()));

        // y as a strided view (every other element of a longer array) gives the same.
        let ys = array![1.5f32, 9.0, 0.0];
        session.reseed(42, 3);
        let x = session.sample_array(ys.slice(s![..;2]), 1000).unwrap();
        assert_eq!(bits(x.iter().copied()), bits(want.iter().copied()));
    }

    #[test]
    fn sample_batch_array_is_observation_by_sample_by_x() {
        let model = kinematics();
        let mut session = Session::new(&model, 100).unwrap();
        let ys = array![[1.5f32, 0.0], [0.5, 1.0], [-1.0, 1.5]];
        session.reseed(7, 0);
        let mut want = std::vec![0.0f32; 3 * 50 * 4];
        session
            .sample_batch(ys.as_slice().unwrap(), 50, &mut want)
            .unwrap();
        session.reseed(7, 0);
        let x = session.sample_batch_array(ys.view(), 50).unwrap();
        assert_eq!(x.shape(), &[3, 50, 4]);
        assert_eq!(bits(x.iter().copied()), bits(want.iter().copied()));
        // The same observations in Fortran order, read in place.
        let ys_f = fortran(&ys);
        session.reseed(7, 0);
        let x = session.sample_batch_array(ys_f.view(), 50).unwrap();
        assert_eq!(bits(x.iter().copied()), bits(want.iter().copied()));
    }

    #[test]
    fn sample_array_into_fills_any_layout() {
        let model = kinematics();
        let mut session = Session::new(&model, 64).unwrap();
        session.reseed(1, 0);
        let want = session
            .sample_array(array![0.5f32, 1.0].view(), 300)
            .unwrap();
        let ys = array![[0.5f32, 1.0]];

        // Fortran order, written in place.
        let mut x = Array2::<f32>::zeros((300, 4).f());
        session.reseed(1, 0);
        session
            .sample_array_into(ys.view(), 300, x.view_mut())
            .unwrap();
        assert_eq!(x, want);

        // Columns 1..5 of a wider array: the other columns keep their values.
        let mut wide = Array2::<f32>::from_elem((300, 6), -7.0);
        session.reseed(1, 0);
        session
            .sample_array_into(ys.view(), 300, wide.slice_mut(s![.., 1..5]))
            .unwrap();
        assert_eq!(wide.slice(s![.., 1..5]), want);
        assert!(
            wide.column(0)
                .iter()
                .chain(wide.column(5))
                .all(|&v| v == -7.0)
        );

        // Rows in reverse (a negative stride).
        let mut rev = Array2::<f32>::zeros((300, 4));
        session.reseed(1, 0);
        session
            .sample_array_into(ys.view(), 300, rev.slice_mut(s![..;-1, ..]))
            .unwrap();
        assert_eq!(rev.slice(s![..;-1, ..]), want);
    }

    #[test]
    fn forward_and_inverse_arrays_match_the_slice_api_in_every_layout() {
        // A conditional model with statistics, 257 rows through a session of 64: five calls.
        let model = fixture("pypi_cinn_stats");
        let (d, cc) = (model.dim(), model.cond_dim());
        let x = inputs(257, d, 0.3);
        let c = inputs(257, cc, 1.1);
        let mut big = Session::new(&model, 257).unwrap();
        let (mut want_z, mut want_ld) = (std::vec![0.0f32; 257 * d], std::vec![0.0f32; 257]);
        big.forward(
            x.as_slice().unwrap(),
            Some(c.as_slice().unwrap()),
            &mut want_z,
            Some(&mut want_ld),
        )
        .unwrap();
        let (mut want_x, mut want_ild) = (std::vec![0.0f32; 257 * d], std::vec![0.0f32; 257]);
        big.inverse(
            x.as_slice().unwrap(),
            Some(c.as_slice().unwrap()),
            &mut want_x,
            Some(&mut want_ild),
        )
        .unwrap();

        let mut session = Session::new(&model, 64).unwrap();
        let x_fortran = fortran(&x);
        let mut x_wide = Array2::<f32>::zeros((257, d + 3));
        x_wide.slice_mut(s![.., 2..2 + d]).assign(&x);
        let x_reversed = x.slice(s![..;-1, ..]).to_owned();
        let layouts: [(&str, ArrayView2<'_, f32>); 4] = [
            ("C order", x.view()),
            ("Fortran order", x_fortran.view()),
            ("columns of a wider array", x_wide.slice(s![.., 2..2 + d])),
            ("rows reversed", x_reversed.slice(s![..;-1, ..])),
        ];
        for (what, view) in layouts {
            let (z, ld) = session.forward_array(view, Some(c.view())).unwrap();
            assert_eq!(
                bits(z.iter().copied()),
                bits(want_z.iter().copied()),
                "{what}"
            );
            assert_eq!(
                bits(ld.iter().copied()),
                bits(want_ld.iter().copied()),
                "{what}"
            );
            let (xi, ild) = session.inverse_array(view, Some(c.view())).unwrap();
            assert_eq!(
                bits(xi.iter().copied()),
                bits(want_x.iter().copied()),
                "{what}"
            );
            assert_eq!(
                bits(ild.iter().copied()),
                bits(want_ild.iter().copied()),
                "{what}"
            );
        }

        // Into Fortran-order outputs and a logdet of every other element of a longer array.
        let mut z = Array2::<f32>::zeros((257, d).f());
        let mut ld = Array1::<f32>::from_elem(514, -1.0);
        session
            .forward_array_into(
                x.view(),
                Some(c.view()),
                z.view_mut(),
                Some(ld.slice_mut(s![..;2])),
            )
            .unwrap();
        assert_eq!(bits(z.iter().copied()), bits(want_z.iter().copied()));
        assert_eq!(
            bits(ld.slice(s![..;2]).iter().copied()),
            bits(want_ld.iter().copied())
        );
        assert!(ld.slice(s![1..;2]).iter().all(|&v| v == -1.0));
        let mut xi = Array2::<f32>::zeros((257, d));
        session
            .inverse_array_into(x.view(), Some(c.view()), xi.view_mut(), None)
            .unwrap();
        assert_eq!(bits(xi.iter().copied()), bits(want_x.iter().copied()));
    }

    #[test]
    fn one_condition_broadcast_to_every_row_is_read_in_place() {
        let model = fixture("pypi_cinn_stats");
        let x = inputs(100, model.dim(), 0.0);
        let y = array![0.25f32, -1.5];
        let cond = y.broadcast((100, 2)).unwrap();
        assert!(Strided::of(cond).is_some());
        let mut session = Session::new(&model, 32).unwrap();
        let (z, ld) = session.forward_array(x.view(), Some(cond)).unwrap();
        let (want_z, want_ld) = session
            .forward_array(x.view(), Some(cond.to_owned().view()))
            .unwrap();
        assert_eq!(bits(z), bits(want_z));
        assert_eq!(bits(ld), bits(want_ld));
    }

    #[test]
    fn views_are_lent_in_place_when_their_elements_fill_one_slice() {
        let a = inputs(10, 4, 0.0);
        let f = fortran(&a);
        let one_row = array![1.0f32, 2.0];
        let lent = |v: ArrayView2<'_, f32>| Strided::of(v).map(|s| (s.row_stride, s.col_stride));
        assert_eq!(lent(a.view()), Some((4, 1)));
        assert_eq!(lent(f.view()), Some((1, 10)));
        assert_eq!(lent(a.t()), Some((1, 4)));
        assert_eq!(lent(one_row.broadcast((5, 2)).unwrap()), Some((0, 1)));
        assert_eq!(lent(a.slice(s![3..4, ..])), Some((0, 1)));
        // Gaps between the elements, or a negative stride: copied.
        assert_eq!(lent(a.slice(s![.., 1..3])), None);
        assert_eq!(lent(a.slice(s![..;2, ..])), None);
        assert_eq!(lent(a.slice(s![..;-1, ..])), None);
    }

    #[test]
    fn shapes_are_checked_for_the_whole_call() {
        let model = fixture("pypi_cinn_stats");
        let mut session = Session::new(&model, 16).unwrap();
        let x = inputs(40, 4, 0.0);
        let c = inputs(40, 2, 0.0);
        let length = |buffer, expected, found| Error::BufferLength {
            buffer,
            expected,
            found,
        };
        let err = |r: crate::Result<(Array2<f32>, Array1<f32>)>| r.err().unwrap();
        assert_eq!(
            err(session.forward_array(inputs(40, 3, 0.0).view(), Some(c.view()))),
            length("input", 160, 120)
        );
        assert_eq!(
            err(session.forward_array(x.view(), Some(c.slice(s![..39, ..])))),
            length("cond", 80, 78)
        );
        assert_eq!(
            err(session.forward_array(x.view(), None)),
            Error::BufferPresence {
                buffer: "cond",
                expected: true
            }
        );
        let mut out = Array2::<f32>::zeros((39, 4));
        assert_eq!(
            session
                .forward_array_into(x.view(), Some(c.view()), out.view_mut(), None)
                .unwrap_err(),
            length("output", 160, 156)
        );
        let mut out = Array2::<f32>::zeros((40, 4));
        let mut ld = Array1::<f32>::zeros(41);
        assert_eq!(
            session
                .inverse_array_into(
                    x.view(),
                    Some(c.view()),
                    out.view_mut(),
                    Some(ld.view_mut())
                )
                .unwrap_err(),
            length("logdet", 40, 41)
        );
        // No rows: the condition is still checked.
        let none = Array2::<f32>::zeros((0, 4));
        assert_eq!(
            err(session.forward_array(none.view(), None)),
            Error::BufferPresence {
                buffer: "cond",
                expected: true
            }
        );
        let unconditional = fixture("pypi_toy_inn");
        let mut toy = Session::new(&unconditional, 16).unwrap();
        assert_eq!(
            err(toy.forward_array(inputs(5, 8, 0.0).view(), Some(c.view()))),
            Error::BufferPresence {
                buffer: "cond",
                expected: false
            }
        );
    }

    /// A call split into parts of max_batch rows reports its first overflowing row counted from
    /// its own first row, and how many overflowed, after writing every part (through a buffer
    /// for an output with gaps, too).
    #[test]
    fn an_overflow_is_reported_for_the_whole_call_with_every_row_written() {
        let model = kinematics();
        let mut session = Session::new(&model, 2).unwrap();
        let x = inputs(5, 4, 0.3).mapv(|v| v * 0.2);
        let cond = array![1.5f32, 0.0];
        let cond = cond.broadcast((5, 2)).unwrap();
        let (clean, _) = session.forward_array(x.view(), Some(cond)).unwrap();
        let mut far = x.clone();
        for r in [1, 3] {
            far.row_mut(r).fill(1e38);
        }
        // Every other column of an 8-wide array: not one slice, written through a buffer.
        let mut wide = Array2::<f32>::zeros((5, 8));
        let result =
            session.forward_array_into(far.view(), Some(cond), wide.slice_mut(s![.., ..;2]), None);
        assert_eq!(
            result,
            Err(Error::NonFiniteOutput {
                buffer: "output",
                row: 1,
                rows: 2
            })
        );
        let out = wide.slice(s![.., ..;2]);
        for r in 0..5 {
            if r == 1 || r == 3 {
                assert!(out.row(r).iter().all(|v| v.is_nan()), "row {r}");
            } else {
                assert_eq!(
                    bits(out.row(r).iter().copied()),
                    bits(clean.row(r).iter().copied())
                );
            }
        }
    }

    #[test]
    fn sampling_errors_are_the_slice_apis() {
        let no_layout = fixture("pypi_rnvp_tanh");
        let mut session = Session::new(&no_layout, 16).unwrap();
        let none = Array1::<f32>::zeros(0);
        assert_eq!(
            session.sample_array(none.view(), 10).unwrap_err(),
            Error::NoLayout
        );
        let model = kinematics();
        let mut session = Session::new(&model, 16).unwrap();
        assert_eq!(
            session.sample_array(array![1.0f32].view(), 10).unwrap_err(),
            Error::BufferLength {
                buffer: "y",
                expected: 2,
                found: 1
            }
        );
        let mut x = Array2::<f32>::zeros((9, 4));
        assert!(matches!(
            session.sample_array_into(array![[1.0f32, 0.0]].view(), 10, x.view_mut()),
            Err(Error::BufferLength { buffer: "x", .. })
        ));
        assert_eq!(
            session
                .sample_array(array![1.0f32, 0.0].view(), usize::MAX)
                .unwrap_err(),
            Error::Argument("too many samples to hold in one array")
        );
    }

    /// The README's Rust example with `ndarray` is `Session::sample_array`'s doc example, which
    /// the doc tests compile.
    #[test]
    fn readme_example_is_the_compiled_doc_example() {
        let source = include_str!("ndarray.rs");
        let start = source.find("    /// ```no_run\n").unwrap() + "    /// ```no_run\n".len();
        let end = start + source[start..].find("    /// ```\n").unwrap();
        let doc: Vec<&str> = source[start..end]
            .lines()
            .map(|l| l.trim_start().trim_start_matches("///"))
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .filter(|l| !l.starts_with("# "))
            .collect();
        let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
        let blocks: Vec<String> = readme
            .split("```rust\n")
            .skip(1)
            .filter_map(|b| b.split("```\n").next().map(String::from))
            .filter(|b| b.contains("sample_array"))
            .collect();
        assert_eq!(
            blocks.len(),
            1,
            "one ```rust block of README.md calls sample_array"
        );
        assert_eq!(blocks[0].lines().collect::<Vec<_>>(), doc);
    }
}
