//! Dense f32 GEMM for `Linear` layers: `C = bias + A·Wᵀ` with pre-packed weights.
//!
//! * `A` (activations, [`Rows`]) is `m` rows of `k`, row stride `lda`; it is never packed or
//!   copied.
//! * `W` (a PyTorch weight, `[n][k]` row-major) is packed once into a [`PackedWeight`], which
//!   carries its shape and storage (f32, bf16 or f16) and whose layout is described in
//!   `packed.rs`: panels of [`NR`] output columns, zero-padded, [`GROUP`] panels interleaved.
//! * `C` ([`RowsMut`]) is `m` rows of `n`, row stride `ldc`.
//!
//! [`gemm`] is the one entry point: it checks a [`Product`]'s shapes against the weight (a
//! mismatch is an error, not a wrong result) and runs it on an [`Available`] instruction set.
//! The loops are written once (`driver.rs`); each instruction set supplies a microkernel
//! (`portable.rs`, `avx2.rs`, `avx512.rs`).
//!
//! # Reproducibility contract
//! For a given [`Isa`], every output element is computed as
//! `acc = init; for k in 0..K { acc = acc + A[i][k]·W[j][k] }` in exactly that order, where `init`
//! is the bias (or `0`, or the existing `C` plus the bias when accumulating, see
//! [`Product::accumulate`]) and the multiply-add is a fused multiply-add in the SIMD kernels and
//! a separate multiply then add in the portable kernel; a product that adds rows
//! ([`Product::add_rows`]) then takes `acc = acc + S[i'][j]`, `S[i']` the row added to output
//! row `i`; the epilogue comes last. Weights in 16-bit storage are widened
//! exactly to f32 first, so a product on them is bit for bit the product on the widened
//! weights.
//!
//! One exception, fixed by the shape alone: a weight of at most [`NR`] outputs (one panel, such
//! as a subnet's output layer on a small dimension) sums in two chains,
//! `even = init + Σ_{k even}` and `odd = 0 + Σ_{k odd}` (each in k order, as above), and
//! `acc = even + odd` (before any added row). A one-row product of such a layer is a chain of K dependent
//! multiply-adds per output, latency-bound at about 4 cycles each; two chains halve that, and the
//! large-batch tile keeps the same loads per multiply-add.
//!
//! Tile shapes, edge handling, blocking over `k` (partial sums are stored to and reloaded from `C`
//! exactly; one-panel weights are never blocked over `k`) and the small-`m` paths never change
//! this, so `C[i][j]` is bit-identical whatever `m` is and at whichever row position the row sits.
//!
//! No function here allocates, except the packer's constructors that own their memory. All
//! slices may be unaligned.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(all(target_arch = "arm", target_os = "none", target_abi = "eabihf"))]
mod cortex_m;
mod driver;
pub(crate) mod memory;
mod narrow;
mod packed;
mod portable;
mod tile;

use crate::error::{Error, Result};
use driver::{Added, Init, Problem};
pub(crate) use packed::packed_bytes;
pub use packed::{
    GROUP, GROUP_ROWS, NARROW_NR, PackedWeight, PanelLayout, WeightPacker, WeightStorage,
    packed_len,
};

/// Width of one packed column panel. Weights are packed in panels of NR output columns, k-major, zero-padded.
pub const NR: usize = 16;

/// Instruction set a kernel is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust, auto-vectorised by the compiler; available everywhere.
    Portable,
    /// x86-64 AVX2 + FMA (256-bit).
    Avx2Fma,
    /// x86-64 AVX-512F (512-bit).
    Avx512,
}

impl Isa {
    /// All ISAs, best last.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2Fma, Isa::Avx512];

    /// Best ISA this CPU supports (runtime detection under std; compile-time target features otherwise).
    pub fn detect() -> Isa {
        if Isa::Avx512.is_available() {
            Isa::Avx512
        } else if Isa::Avx2Fma.is_available() {
            Isa::Avx2Fma
        } else {
            Isa::Portable
        }
    }

    /// Whether this CPU can run `self` (Portable is always available).
    #[inline]
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            // Miri interprets the portable path only: it does not model every SIMD intrinsic
            // the kernels use (src/kernels/gemm/avx2.rs, avx512.rs, src/kernels/math.rs), and
            // a build with these target features enabled at compile time would otherwise pick
            // them. scripts/miri.sh relies on this.
            Isa::Avx2Fma => !cfg!(miri) && avx2_available(),
            Isa::Avx512 => !cfg!(miri) && avx512_available(),
        }
    }

    /// Short lower-case name (`"portable"`, `"avx2fma"`, `"avx512"`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2Fma => "avx2fma",
            Isa::Avx512 => "avx512",
        }
    }
}

/// An [`Isa`] this CPU has: only [`Isa::available`] (which checks) and [`Isa::detect_available`]
/// make one. The kernels' safety rests on it, so [`gemm`] takes one and checks nothing on the
/// CPU: a session checks once and keeps it (checking on every call loads the feature cache,
/// which a batch-1 call, streaming every weight through the caches, found cold after each
/// layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Available(Isa);

impl Available {
    /// The ISA itself.
    #[inline]
    pub fn isa(self) -> Isa {
        self.0
    }
}

impl Isa {
    /// `self` as an [`Available`], if this CPU has it.
    #[inline]
    pub fn available(self) -> Option<Available> {
        self.is_available().then_some(Available(self))
    }

    /// [`Isa::detect`], known to be available.
    pub fn detect_available() -> Available {
        Available(Isa::detect())
    }
}

// F16C (16-bit float conversions, for f16 weight storage) came with or before AVX2 on every
// x86-64 CPU, so it is part of this ISA.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[inline]
fn avx2_available() -> bool {
    std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("f16c")
}
#[cfg(all(target_arch = "x86_64", not(feature = "std")))]
fn avx2_available() -> bool {
    cfg!(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ))
}
#[cfg(not(target_arch = "x86_64"))]
fn avx2_available() -> bool {
    false
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[inline]
fn avx512_available() -> bool {
    std::is_x86_feature_detected!("avx512f")
}
#[cfg(all(target_arch = "x86_64", not(feature = "std")))]
fn avx512_available() -> bool {
    cfg!(target_feature = "avx512f")
}
#[cfg(not(target_arch = "x86_64"))]
fn avx512_available() -> bool {
    false
}

/// `rows` rows of `cols` f32, row `i` at `data[i·stride..][..cols]`: a product's activations.
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    stride: usize,
}

/// `rows` rows of `cols` f32, row `i` at `data[i·stride..][..cols]`: a product's output. Only
/// those elements are written; what lies between the rows is left alone.
#[derive(Debug)]
pub struct RowsMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    stride: usize,
}

/// The elements `rows` rows of `cols`, `stride` apart, need: an error if the rows overlap
/// (`stride < cols`) or `len` is too short for them.
#[inline(always)]
fn rows_fit(len: usize, rows: usize, cols: usize, stride: usize) -> Result<()> {
    if stride < cols {
        return Err(Error::Argument(
            "gemm: a row stride is smaller than the row width",
        ));
    }
    let need = if rows == 0 {
        0
    } else {
        (rows - 1) * stride + cols
    };
    if len < need {
        return Err(Error::BufferLength {
            buffer: "gemm rows",
            expected: need,
            found: len,
        });
    }
    Ok(())
}

impl<'a> Rows<'a> {
    /// `rows` rows of `cols` values in `data`, `stride` apart.
    #[inline(always)]
    pub fn new(data: &'a [f32], rows: usize, cols: usize, stride: usize) -> Result<Rows<'a>> {
        rows_fit(data.len(), rows, cols, stride)?;
        Ok(Rows {
            data,
            rows,
            cols,
            stride,
        })
    }
}

impl<'a> RowsMut<'a> {
    /// `rows` rows of `cols` values in `data`, `stride` apart.
    #[inline(always)]
    pub fn new(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        stride: usize,
    ) -> Result<RowsMut<'a>> {
        rows_fit(data.len(), rows, cols, stride)?;
        Ok(RowsMut {
            data,
            rows,
            cols,
            stride,
        })
    }
}

/// Rows added to a product's sums ([`Product::add_rows`]): output row `i` gets row
/// `(first + i) / repeat` of `rows`. With `repeat` 1 every output row has a row of its own;
/// with `repeat` n each run of n output rows shares one, as the samples of one observation
/// share the condition's part of a first layer (src/blocks/subnet.rs).
#[derive(Clone, Copy, Debug)]
pub struct AddedRows<'a> {
    rows: Rows<'a>,
    first: usize,
    repeat: usize,
}

impl<'a> AddedRows<'a> {
    /// Output row `i` gets row `(first + i) / repeat` of `rows`; `repeat` must be at least 1.
    #[inline(always)]
    pub fn new(rows: Rows<'a>, first: usize, repeat: usize) -> Result<AddedRows<'a>> {
        if repeat == 0 {
            return Err(Error::Argument("gemm: a row added 0 times"));
        }
        Ok(AddedRows {
            rows,
            first,
            repeat,
        })
    }

    /// Whether the rows hold what `m` output rows of `n` need.
    #[inline(always)]
    fn fit(&self, m: usize, n: usize) -> bool {
        let needed = if m == 0 {
            0
        } else {
            (self.first + m - 1) / self.repeat + 1
        };
        self.rows.cols == n && needed <= self.rows.rows
    }
}

/// What happens to each output element after its last k-step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Epilogue {
    /// Nothing.
    #[default]
    None,
    /// ReLU: `v > 0 ? v : 0` (NaN and −0 give +0), fused into the store: the values are
    /// exactly those of the product then the ReLU applied separately.
    Relu,
}

/// One product for [`gemm`]: `out[i][j] = init + Σ_k a[i][k]·W[j][k]`, plus output row
/// `i`'s added row if it adds rows, then the epilogue, where `init` is `bias[j]` (or 0
/// without a bias), plus the current `out[i][j]` when accumulating.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct Product<'a> {
    a: Rows<'a>,
    w: &'a PackedWeight,
    bias: Option<&'a [f32]>,
    accumulate: bool,
    added: Option<AddedRows<'a>>,
    epilogue: Epilogue,
}

impl<'a> Product<'a> {
    /// `a·Wᵀ`: `a` must be `w.k()` wide.
    #[inline]
    pub fn new(a: Rows<'a>, w: &'a PackedWeight) -> Product<'a> {
        Product {
            a,
            w,
            bias: None,
            accumulate: false,
            added: None,
            epilogue: Epilogue::None,
        }
    }

    /// Adds `bias` (`w.n()` values), if given, to every row.
    #[inline]
    pub fn bias(self, bias: Option<&'a [f32]>) -> Product<'a> {
        Product { bias, ..self }
    }

    /// With `true`, adds the product to the output's current values instead of overwriting
    /// them: each element is `acc = out[i][j]` (plus `bias[j]`, added first, if given), then
    /// the k-steps in order. Used to add a second weight block's contribution (a condition).
    #[inline]
    pub fn accumulate(self, accumulate: bool) -> Product<'a> {
        Product { accumulate, ..self }
    }

    /// Adds each output row's row of `rows` (`w.n()` wide) to its finished sums, before the
    /// epilogue. A layer whose input is in two parts, `[x, c]`, is then two products:
    /// `p = W_c·c`, and `out = bias + W_x·x` adding `p`, with the same bits whether `p` has
    /// a row per output row or one shared by several.
    #[inline]
    pub fn add_rows(self, rows: AddedRows<'a>) -> Product<'a> {
        Product {
            added: Some(rows),
            ..self
        }
    }

    /// Applies `epilogue` to each finished element.
    #[inline]
    pub fn epilogue(self, epilogue: Epilogue) -> Product<'a> {
        Product { epilogue, ..self }
    }
}

/// Runs `product` into `out` on `isa`: `out` must have `a`'s rows and be `w.n()` wide, `a`
/// must be `w.k()` wide and the bias `w.n()` long; otherwise nothing is computed and the
/// error names the mismatch. Bit-reproducible as the module doc states; allocates nothing.
///
/// Inlined: a batch-1 product of a small layer takes about 100 ns, and the checks and the
/// problem's description then cost a tenth of it in a call of their own.
#[inline(always)]
pub fn gemm(isa: Available, product: Product<'_>, out: RowsMut<'_>) -> Result<()> {
    let Product {
        a,
        w,
        bias,
        accumulate,
        added,
        epilogue,
    } = product;
    let (m, n) = (a.rows, w.n());
    let bias_fits = match bias {
        Some(b) => b.len() == n,
        None => true,
    };
    let added_fits = match &added {
        Some(rows) => rows.fit(m, n),
        None => true,
    };
    if (a.cols != w.k()) | (out.cols != n) | (out.rows != m) | !bias_fits | !added_fits {
        return Err(mismatch(&product, &out));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let init = match (accumulate, bias) {
        (true, Some(b)) => {
            add_bias(b, m, out.data, out.stride);
            Init::Load
        }
        (true, None) => Init::Load,
        (false, Some(b)) => Init::Bias(b.as_ptr()),
        (false, None) => Init::Zero,
    };
    // The problem is described (its raw pointer to C taken) only after the bias is added.
    let p = Problem {
        m,
        k: w.k(),
        n,
        a: a.data.as_ptr(),
        lda: a.stride,
        b: w.as_ptr(),
        init,
        c: out.data.as_mut_ptr(),
        ldc: out.stride,
        added: added.map(|s| Added {
            base: s.rows.data.as_ptr(),
            ld: s.rows.stride,
            first: s.first,
            repeat: s.repeat,
        }),
        relu: epilogue == Epilogue::Relu,
    };
    run(isa, w.storage(), w.layout(), &p);
    Ok(())
}

/// The error of a product whose shapes do not match its weight.
#[cold]
#[inline(never)]
fn mismatch(product: &Product<'_>, out: &RowsMut<'_>) -> Error {
    let Product {
        a, w, bias, added, ..
    } = *product;
    let (buffer, expected, found) = if a.cols != w.k() {
        ("gemm a row (the weight's k)", w.k(), a.cols)
    } else if out.cols != w.n() {
        ("gemm out row (the weight's n)", w.n(), out.cols)
    } else if out.rows != a.rows {
        ("gemm out rows (a's rows)", a.rows, out.rows)
    } else if let Some(rows) = added.filter(|rows| !rows.fit(a.rows, w.n())) {
        if rows.rows.cols != w.n() {
            ("gemm added row (the weight's n)", w.n(), rows.rows.cols)
        } else {
            let needed = (rows.first + a.rows - 1) / rows.repeat + 1;
            ("gemm added rows", needed, rows.rows.rows)
        }
    } else {
        ("gemm bias", w.n(), bias.map_or(0, <[f32]>::len))
    };
    Error::BufferLength {
        buffer,
        expected,
        found,
    }
}

/// Adds `bias` to the first `bias.len()` values of each of the `m` rows of `c`, `ldc` apart.
#[inline(never)]
fn add_bias(bias: &[f32], m: usize, c: &mut [f32], ldc: usize) {
    for row in c.chunks_mut(ldc).take(m) {
        for (x, &bj) in row.iter_mut().zip(bias) {
            *x += bj;
        }
    }
}

/// [`run_on`] with the weights' storage as the kernels' `S`.
#[inline(never)]
fn run(isa: Available, storage: WeightStorage, layout: PanelLayout, p: &Problem) {
    match storage {
        WeightStorage::F32 => run_on::<{ WeightStorage::F32 as u8 }>(isa, layout, p),
        WeightStorage::Bf16 => run_on::<{ WeightStorage::Bf16 as u8 }>(isa, layout, p),
        WeightStorage::F16 => run_on::<{ WeightStorage::F16 as u8 }>(isa, layout, p),
    }
}

/// The checked problem `p` (m, n > 0) on `isa`'s microkernel, weights stored as `S`; a weight
/// in the narrow layout on the narrow kernel, whatever `isa` (it keeps the portable contract).
#[inline(always)]
fn run_on<const S: u8>(isa: Available, layout: PanelLayout, p: &Problem) {
    if layout == PanelLayout::Narrow {
        // SAFETY: `gemm` checked the shape; a narrow weight's elements are aligned
        // (`PackedWeight::in_image`).
        return unsafe { narrow::gemm::<S>(p) };
    }
    match isa.isa() {
        // SAFETY: `gemm` checked every slice against the shape `p` describes.
        Isa::Portable => unsafe { portable::gemm::<S>(p) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Available` says AVX2+FMA(+F16C) are there; `gemm` checked the shape.
        Isa::Avx2Fma => unsafe { avx2::gemm::<S>(p) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Available` says AVX-512F is there; `gemm` checked the shape.
        Isa::Avx512 => unsafe { avx512::gemm::<S>(p) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!(),
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// The fused ReLU gives exactly the product then `v > 0 ? v : 0`, on every ISA, for
    /// small-m, blocked (k split over several KC blocks) and ragged shapes.
    #[test]
    // Too slow under Miri (more than 10 s interpreted; scripts/miri.sh runs the rest).
    #[cfg_attr(miri, ignore)]
    fn fused_relu_equals_gemm_then_relu() {
        let mut seed = 1u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for &(m, k, n) in &[
            (1, 7, 5),
            (3, 33, 40),
            (12, 300, 17),
            (37, 600, 70),
            (130, 64, 129),
        ] {
            let a: Vec<f32> = (0..m * k).map(|_| next()).collect();
            let w: Vec<f32> = (0..n * k).map(|_| next()).collect();
            let bias: Vec<f32> = (0..n).map(|_| next()).collect();
            let w = PackedWeight::pack(&w, n, k, WeightStorage::F32).unwrap();
            let a = Rows::new(&a, m, k, k).unwrap();
            for isa in Isa::ALL.into_iter().filter_map(Isa::available) {
                let product = Product::new(a, &w).bias(Some(&bias));
                let mut want = vec![0.0; m * n];
                gemm(isa, product, RowsMut::new(&mut want, m, n, n).unwrap()).unwrap();
                want.iter_mut()
                    .for_each(|v| *v = if *v > 0.0 { *v } else { 0.0 });
                let mut got = vec![f32::NAN; m * n];
                let out = RowsMut::new(&mut got, m, n, n).unwrap();
                gemm(isa, product.epilogue(Epilogue::Relu), out).unwrap();
                assert!(
                    want.iter()
                        .zip(&got)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{isa:?} m={m} k={k} n={n}"
                );
            }
        }
    }

    /// Added rows must cover every output row and be the weight's n wide: otherwise the
    /// product is refused, naming them, and nothing is written.
    #[test]
    fn added_rows_that_do_not_fit_are_refused() {
        let w = PackedWeight::pack(&[1.0; 6 * 2], 6, 2, WeightStorage::F32).unwrap();
        let a = [1.0f32; 10 * 2];
        let s = [1.0f32; 4 * 6];
        let isa = Isa::Portable.available().unwrap();
        for (rows, cols, first, repeat, ok) in [
            (4, 6, 0, 3, true),  // output rows 0..10 read rows 0..=3
            (4, 6, 2, 3, true),  // rows 2..12 of the runs read rows 0..=3
            (4, 6, 3, 3, false), // rows 3..13 read row 4
            (4, 6, 0, 2, false), // rows 0..10 by twos read row 4
            (4, 5, 0, 3, false), // too narrow
        ] {
            let added = AddedRows::new(Rows::new(&s, rows, cols, cols).unwrap(), first, repeat);
            let product =
                Product::new(Rows::new(&a, 10, 2, 2).unwrap(), &w).add_rows(added.unwrap());
            let mut out = [f32::NAN; 10 * 6];
            let result = gemm(isa, product, RowsMut::new(&mut out, 10, 6, 6).unwrap());
            assert_eq!(
                result.is_ok(),
                ok,
                "{rows}×{cols} rows from {first} by {repeat}"
            );
            if let Err(e) = result {
                assert!(
                    matches!(e, Error::BufferLength { buffer, .. } if buffer.contains("added")),
                    "{e}"
                );
                assert!(out.iter().all(|v| v.is_nan()));
            }
        }
        assert!(AddedRows::new(Rows::new(&s, 4, 6, 6).unwrap(), 0, 0).is_err());
    }

    /// Whether products on a weight in `layout` fuse their multiply-adds on an ISA.
    fn isa_fuses(layout: PanelLayout) -> impl Fn(Isa) -> bool {
        move |isa| isa != Isa::Portable && layout == PanelLayout::Grouped
    }

    /// Every path of the driver (one panel in two chains, narrow, small batches, blocked over rows
    /// and over k past every KC, ragged last panels, panel groups) with every storage, with and
    /// without a bias, accumulating, adding rows (each shared by 3 output rows, the first
    /// output row the second of its run) and with the ReLU, on shapes small enough for Miri
    /// to check the kernels' pointer arithmetic: each element is the contract's sum, in k
    /// order.
    #[test]
    // Minutes under Miri even at its Miri shapes (more than 2 min interpreted; scripts/miri.sh
    // reaches the portable kernel through the sessions of tests/ffi_miri.rs instead).
    #[cfg_attr(miri, ignore)]
    fn every_path_sums_in_the_contracts_order() {
        let value = |i: usize| ((i * 7919) % 61) as f32 / 16.0 - 1.9;
        // Under Miri (the portable kernel only, slowly): a one-panel weight, a ragged group,
        // and k past the portable KC; natively every ISA's paths.
        let shapes: &[(usize, usize, usize)] = if cfg!(miri) {
            &[(2, 5, 16), (3, 7, 33), (1, 257, 17)]
        } else {
            &[
                (1, 3, 5),
                (2, 5, 16),
                (3, 7, 33),
                (2, 270, 20),
                (13, 4, 40),
                // Narrow tiles (at most 4 outputs, 16 rows), a partial block of k and rows
                // left over for the one-panel tiles.
                (37, 70, 3),
                (16, 16, 4),
                (17, 5, 1),
            ]
        };
        for &(m, k, n) in shapes {
            let a: Vec<f32> = (0..m * k).map(value).collect();
            let w: Vec<f32> = (0..n * k).map(|i| value(i + 5)).collect();
            let bias: Vec<f32> = (0..n).map(|i| value(i + 11)).collect();
            let c0: Vec<f32> = (0..m * n).map(|i| value(i + 17)).collect();
            let (first, repeat) = (1, 3);
            let shared = (first + m - 1) / repeat + 1;
            let s: Vec<f32> = (0..shared * n).map(|i| value(i + 23)).collect();
            let added_rows = AddedRows::new(Rows::new(&s, shared, n, n).unwrap(), first, repeat);
            let added_rows = added_rows.unwrap();
            let rows = Rows::new(&a, m, k, k).unwrap();
            let layouts = [PanelLayout::Grouped, PanelLayout::Narrow];
            for (storage, layout) in [WeightStorage::F32, WeightStorage::Bf16, WeightStorage::F16]
                .into_iter()
                .flat_map(|s| layouts.map(|l| (s, l)))
            {
                let packed = PackedWeight::pack(&w, n, k, storage).unwrap();
                let packed = packed.repack(layout).unwrap();
                // The narrow kernel keeps the portable contract whatever the ISA.
                let fused = isa_fuses(layout);
                for isa in Isa::ALL.into_iter().filter_map(Isa::available) {
                    for (accumulate, with_bias, added, relu) in [
                        (false, false, false, false),
                        (false, true, false, true),
                        (true, false, false, false),
                        (true, true, false, true),
                        (false, true, true, true),
                        (true, false, true, false),
                    ] {
                        let bias = with_bias.then_some(&bias[..]);
                        let epilogue = if relu { Epilogue::Relu } else { Epilogue::None };
                        let mut product = Product::new(rows, &packed)
                            .bias(bias)
                            .accumulate(accumulate)
                            .epilogue(epilogue);
                        if added {
                            product = product.add_rows(added_rows);
                        }
                        let mut c = c0.clone();
                        gemm(isa, product, RowsMut::new(&mut c, m, n, n).unwrap()).unwrap();
                        for (idx, &got) in c.iter().enumerate() {
                            let (i, j) = (idx / n, idx % n);
                            let start = if accumulate { c0[idx] } else { 0.0 };
                            let mut chains = [start + bias.map_or(0.0, |b| b[j]), 0.0];
                            let split = if n <= NR { 2 } else { 1 };
                            for kk in 0..k {
                                let (x, y) = (a[i * k + kk], storage.round(w[j * k + kk]));
                                let acc = &mut chains[kk % split];
                                *acc = if !fused(isa.isa()) {
                                    *acc + x * y
                                } else {
                                    x.mul_add(y, *acc)
                                };
                            }
                            let mut sum = if split == 2 {
                                chains[0] + chains[1]
                            } else {
                                chains[0]
                            };
                            if added {
                                sum += s[(first + i) / repeat * n + j];
                            }
                            // ReLU: `v > 0 ? v : 0`.
                            let want = if !relu || sum > 0.0 { sum } else { 0.0 };
                            assert_eq!(
                                got.to_bits(),
                                want.to_bits(),
                                "{isa:?} {storage:?} {layout:?} m={m} k={k} n={n} accumulate={accumulate} bias={with_bias} added={added} relu={relu} ({i},{j})"
                            );
                        }
                    }
                }
            }
        }
    }
}
