//! Dense f32 GEMM kernels for `Linear` layers: `C = bias + A·Wᵀ` with pre-packed weights.
//!
//! * `A` (activations) is `[m][k]` row-major with row stride `lda`; it is never packed or copied.
//! * `W` (PyTorch weight, `[n][k]` row-major) is packed once with [`pack_weight`] into panels of
//!   [`NR`] output columns, zero-padded to a multiple of [`NR`] columns; [`GROUP`] neighbouring
//!   panels are interleaved k-row by k-row, so a one-row product streams each group's weights
//!   as one sequential read (see [`pack_weight`]).
//! * `C` is `[m][n]` row-major with row stride `ldc`.
//!
//! # Reproducibility contract
//! For a given [`Isa`], every output element is computed as
//! `acc = init; for k in 0..K { acc = acc + A[i][k]·W[j][k] }` in exactly that order, where `init`
//! is the bias (or `0`, or the existing `C` for [`gemm_accumulate`]) and the multiply-add is a fused
//! multiply-add in the SIMD kernels and a separate multiply then add in the portable kernel.
//!
//! One exception, fixed by the shape alone: a weight of at most [`NR`] outputs (one panel, such
//! as a subnet's output layer on a small dimension) sums in two chains,
//! `even = init + Σ_{k even}` and `odd = 0 + Σ_{k odd}` (each in k order, as above), and
//! `acc = even + odd`. A one-row product of such a layer is a chain of K dependent
//! multiply-adds per output, latency-bound at about 4 cycles each; two chains halve that, and the
//! large-batch tile keeps the same loads per multiply-add.
//!
//! Tile shapes, edge handling, blocking over `k` (partial sums are stored to and reloaded from `C`
//! exactly; one-panel weights are never blocked over `k`) and the small-`m` paths never change
//! this, so `C[i][j]` is bit-identical whatever `m` is and at whichever row position the row sits.
//!
//! No function here allocates. All slices may be unaligned.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;

/// Width of one packed column panel. Weights are packed in panels of NR output columns, k-major, zero-padded.
pub const NR: usize = 16;

/// Panels per group in the packed layout: a group's k-rows are stored one after another, each
/// holding row `kk` of all its panels, so the large-batch micro-tile (two panels wide) reads
/// one sequential run of 128 bytes per k-step, and a one-row product reads one run per group
/// (four for its eight panels) instead of one per panel.
pub const GROUP: usize = 2;

/// Output rows of one whole group (`GROUP · NR`). Packing the rows of a weight in blocks that
/// start at multiples of this (each block packed on its own into its slice of the packed
/// array) gives the same bytes as packing the whole weight at once.
pub const GROUP_ROWS: usize = GROUP * NR;

/// Where panel `q` of a packed weight with `np` panels and `k` k-rows lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PanelAt {
    /// Element offset of the panel's k-row 0.
    pub offset: usize,
    /// Elements between the panel's consecutive k-rows (its group's panels × NR).
    pub kstride: usize,
    /// Panels from `q` to the end of its group, `q` included.
    pub rest: usize,
}

/// Panels `q..q + span` of a tile: `span` if they all lie in full groups and `q` starts a
/// group (so panel `q + i` is at `(i / GROUP)·GROUP·NR·k + (i % GROUP)·NR` from panel `q`,
/// with k-rows `GROUP·NR` apart), else what is left of `q`'s group, at most `span`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn tile_span(q: usize, np: usize, span: usize, at: &PanelAt) -> usize {
    if q.is_multiple_of(GROUP) && q + span <= np / GROUP * GROUP {
        span
    } else {
        at.rest.min(span)
    }
}

/// The k-steps `0..kc` of a tile in the contract's order (see the module doc): with
/// `SPLIT == 1` each onto `even`, in k order; with `SPLIT == 2` the even ones onto `even` and
/// the odd ones onto `odd`, each in k order (the kernel adds `odd` to `even` afterwards). Every
/// kernel runs its k-loop through this, so the order is written once.
#[inline(always)]
pub(crate) fn k_steps<A, const SPLIT: usize>(
    kc: usize,
    even: &mut A,
    odd: &mut A,
    mut step: impl FnMut(&mut A, usize),
) {
    if SPLIT == 1 {
        for kk in 0..kc {
            step(even, kk);
        }
        return;
    }
    let mut kk = 0;
    while kk + 2 <= kc {
        step(even, kk);
        step(odd, kk + 1);
        kk += 2;
    }
    if kk < kc {
        step(even, kk);
    }
}

/// [`PanelAt`] of panel `q` (`q < np`).
#[inline(always)]
pub(crate) fn panel_at(q: usize, np: usize, k: usize) -> PanelAt {
    let first = q / GROUP * GROUP;
    let panels = (np - first).min(GROUP);
    PanelAt {
        offset: first * NR * k + (q - first) * NR,
        kstride: panels * NR,
        rest: first + panels - q,
    }
}

/// A 16-bit format packed weights may be stored in (see [`pack_weight_half`]): half the bytes
/// to stream, widened exactly to f32 in the kernel, so every product and sum is still f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HalfFormat {
    /// bfloat16: the top 16 bits of an f32 (8 exponent bits, 7 mantissa bits).
    Bf16,
    /// IEEE 754 binary16 (5 exponent bits, 10 mantissa bits; ±65504, subnormals below 6.1e-5).
    F16,
}

/// How packed weight elements are stored (kernel-internal; `S` const generic of the kernels).
pub(crate) const S_F32: u8 = 0;
pub(crate) const S_BF16: u8 = 1;
pub(crate) const S_F16: u8 = 2;

/// `b` advanced by `elems` packed elements of storage `S` (4 bytes for f32, 2 for the halves).
#[inline(always)]
pub(crate) fn badd<const S: u8>(b: *const f32, elems: usize) -> *const f32 {
    let size = if S == S_F32 { 4 } else { 2 };
    b.cast::<u8>().wrapping_add(elems * size).cast()
}

/// f32 → bfloat16 bits, rounding to nearest even (NaN stays NaN).
pub fn f32_to_bf16(v: f32) -> u16 {
    let bits = v.to_bits();
    if v.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let round = 0x7FFF + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

/// bfloat16 bits → f32 (exact).
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// f32 → IEEE binary16 bits, rounding to nearest even; overflow gives ±inf, tiny values
/// subnormals or ±0.
pub fn f32_to_f16(v: f32) -> u16 {
    let bits = v.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xFF) as i32;
    let man = bits & 0x7F_FFFF;
    if exp == 0xFF {
        return sign | 0x7C00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1F {
        return sign | 0x7C00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        // Subnormal: shift the mantissa (with its implicit bit) right, rounding to even.
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rem = m & ((1u32 << shift) - 1);
        let mut out = m >> shift;
        if rem > half || (rem == half && out & 1 == 1) {
            out += 1;
        }
        return sign | out as u16;
    }
    let mut out = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1FFF;
    if rem > 0x1000 || (rem == 0x1000 && out & 1 == 1) {
        out += 1; // may carry into the exponent, up to inf: still correct
    }
    sign | out as u16
}

/// IEEE binary16 bits → f32 (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1F) as u32;
    let man = (h & 0x3FF) as u32;
    let bits = if exp == 0x1F {
        sign | 0x7F80_0000 | (man << 13)
    } else if exp == 0 {
        if man == 0 {
            sign
        } else {
            // Subnormal: value = man · 2^-24 (exact in f32).
            let v = man as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
    } else {
        sign | ((exp + 127 - 15) << 23) | (man << 13)
    };
    f32::from_bits(bits)
}

impl HalfFormat {
    /// Rounds `v` to this format (nearest even) and returns the bits.
    pub fn encode(self, v: f32) -> u16 {
        match self {
            HalfFormat::Bf16 => f32_to_bf16(v),
            HalfFormat::F16 => f32_to_f16(v),
        }
    }

    /// The f32 value of `h` (exact).
    pub fn decode(self, h: u16) -> f32 {
        match self {
            HalfFormat::Bf16 => bf16_to_f32(h),
            HalfFormat::F16 => f16_to_f32(h),
        }
    }
}

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
            Isa::Avx2Fma => avx2_available(),
            Isa::Avx512 => avx512_available(),
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
/// make one. The kernels' safety rests on it, so a session holds one and its calls skip the
/// check that the public functions make on every call (a load of the feature cache, which a
/// batch-1 call, streaming every weight through the caches, found cold after each layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Available(Isa);

impl Available {
    /// The ISA itself.
    #[inline]
    pub(crate) fn isa(self) -> Isa {
        self.0
    }

    /// `isa` if this CPU has it; panics otherwise (the public functions' contract).
    #[inline]
    fn or_panic(isa: Isa) -> Available {
        isa.available()
            .unwrap_or_else(|| panic!("gemm: ISA {} not available on this CPU", isa.name()))
    }
}

impl Isa {
    /// `self` as an [`Available`], if this CPU has it.
    #[inline]
    pub(crate) fn available(self) -> Option<Available> {
        self.is_available().then_some(Available(self))
    }

    /// [`Isa::detect`], known to be available.
    pub(crate) fn detect_available() -> Available {
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

/// Number of f32 the packed form of an n×k weight takes (n rounded up to NR, times k).
pub fn packed_len(n: usize, k: usize) -> usize {
    n.div_ceil(NR) * NR * k
}

/// Pack a PyTorch Linear weight `w` ([n][k] row-major) into `out` (len == packed_len(n,k)).
///
/// Layout: panel `p` holds output columns `p*NR .. p*NR+NR` (`0.0` past `n`). Panels come in
/// groups of [`GROUP`] (the last group may hold fewer, `g` panels); group `G` starts at element
/// `G*GROUP*NR*k` and stores its k-rows in order, k-row `kk` holding row `kk` of each of its
/// panels: element `[kk][jj]` of panel `p` (= `W[p*NR + jj][kk]`) is at
/// `G*GROUP*NR*k + kk*g*NR + (p - G*GROUP)*NR + jj`.
pub fn pack_weight(w: &[f32], n: usize, k: usize, out: &mut [f32]) {
    assert!(w.len() >= n * k, "pack_weight: w too short");
    assert_eq!(
        out.len(),
        packed_len(n, k),
        "pack_weight: out has the wrong length"
    );
    pack_weight_strided(w, n, k, k, 1, out);
}

/// Fills k-rows `ks` of the panel at `at` (output columns `first..first + cols`) with
/// `value(j, kk)` (= `W[j][kk]`), and `zero` in the padding.
///
/// A panel's consecutive k-rows are its group's width apart, so scattering each source row
/// straight into them would touch a line per element. The k-rows are instead assembled
/// `K_BLOCK` at a time in a stack tile, each source row read along k, and each packed k-row
/// is then written whole (a cache line in f32).
fn pack_panel_with<T: Copy>(
    at: PanelAt,
    first: usize,
    cols: usize,
    ks: core::ops::Range<usize>,
    out: &mut [T],
    zero: T,
    value: &impl Fn(usize, usize) -> T,
) {
    const K_BLOCK: usize = 64;
    let mut tile = [[zero; NR]; K_BLOCK];
    for k0 in ks.clone().step_by(K_BLOCK) {
        let rows = (ks.end - k0).min(K_BLOCK);
        for jj in 0..cols {
            for (i, t) in tile[..rows].iter_mut().enumerate() {
                t[jj] = value(first + jj, k0 + i);
            }
        }
        for (i, t) in tile[..rows].iter_mut().enumerate() {
            t[cols..].fill(zero);
            out[at.offset + (k0 + i) * at.kstride..][..NR].copy_from_slice(t);
        }
    }
}

/// [`pack_weight`] of a weight given by strides: element `W[j][kk]` is `w[j*row_stride +
/// kk*col_stride]`. With strides `(1, n_in)` it packs the transpose of an `[n_in][n]` weight
/// (the training mode's input gradient `G·W`) without a copy.
pub fn pack_weight_strided(
    w: &[f32],
    n: usize,
    k: usize,
    row_stride: usize,
    col_stride: usize,
    out: &mut [f32],
) {
    pack_weight_strided_on(Isa::detect(), w, n, k, row_stride, col_stride, out);
}

/// [`pack_weight_strided`], transposing whole NR×NR blocks with `isa`'s registers (the bytes
/// are the same on every ISA).
fn pack_weight_strided_on(
    isa: Isa,
    w: &[f32],
    n: usize,
    k: usize,
    row_stride: usize,
    col_stride: usize,
    out: &mut [f32],
) {
    assert_eq!(
        out.len(),
        packed_len(n, k),
        "pack_weight: out has the wrong length"
    );
    if k == 0 || n == 0 {
        return;
    }
    assert!(
        (n - 1) * row_stride + (k - 1) * col_stride < w.len(),
        "pack_weight: w too short"
    );
    let value = |j: usize, kk: usize| w[j * row_stride + kk * col_stride];
    let np = n.div_ceil(NR);
    for p in 0..np {
        let at = panel_at(p, np, k);
        let first = p * NR;
        let cols = (n - first).min(NR);
        let mut k0 = 0;
        if cols == NR && row_stride == 1 {
            // Each packed k-row is NR contiguous source elements.
            for kk in 0..k {
                let src = &w[first + kk * col_stride..][..NR];
                out[at.offset + kk * at.kstride..][..NR].copy_from_slice(src);
            }
            k0 = k;
        } else if cols == NR && col_stride == 1 {
            // Whole NR×NR blocks of NR source rows: one register transpose each. The 30 MB
            // glow_large model loads about 3 ms sooner than with scalar packing.
            while k0 + NR <= k
                && transpose_block(
                    isa,
                    w,
                    first * row_stride + k0,
                    row_stride,
                    out,
                    at.offset + k0 * at.kstride,
                    at.kstride,
                )
            {
                k0 += NR;
            }
        }
        pack_panel_with(at, first, cols, k0..k, out, 0.0, &value);
    }
}

/// Transposes the NR×NR block of `src` at `from` (rows `ld` apart) into `dst` at `to` (rows
/// `ldd` apart) with `isa`'s registers; false (nothing written) if `isa` has none for it.
fn transpose_block(
    isa: Isa,
    src: &[f32],
    from: usize,
    ld: usize,
    dst: &mut [f32],
    to: usize,
    ldd: usize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let src = &src[from..][..(NR - 1) * ld + NR];
        let dst = &mut dst[to..][..(NR - 1) * ldd + NR];
        match isa {
            // SAFETY: `src` holds NR rows of NR f32 `ld` apart and `dst` NR rows of NR f32
            // `ldd` apart (the slices above are bounds-checked), and AVX-512F is available.
            Isa::Avx512 if isa.is_available() => unsafe {
                avx512::transpose16(src.as_ptr(), ld, dst.as_mut_ptr(), ldd);
                true
            },
            // SAFETY: as above, with AVX2+FMA+F16C available.
            Isa::Avx2Fma if isa.is_available() => unsafe {
                avx2::transpose16(src.as_ptr(), ld, dst.as_mut_ptr(), ldd);
                true
            },
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, src, from, ld, dst, to, ldd);
        false
    }
}

/// [`pack_weight`] into 16-bit storage: the same layout, each element rounded to `format`.
pub fn pack_weight_half(w: &[f32], n: usize, k: usize, format: HalfFormat, out: &mut [u16]) {
    assert!(w.len() >= n * k, "pack_weight_half: w too short");
    assert_eq!(
        out.len(),
        packed_len(n, k),
        "pack_weight_half: out has the wrong length"
    );
    let value = |j: usize, kk: usize| format.encode(w[j * k + kk]);
    let np = n.div_ceil(NR);
    for p in 0..np {
        let first = p * NR;
        let cols = (n - first).min(NR);
        pack_panel_with(panel_at(p, np, k), first, cols, 0..k, out, 0, &value);
    }
}

/// How each output element's accumulator starts.
#[derive(Clone, Copy)]
pub(crate) enum Init {
    /// `0.0`.
    Zero,
    /// `bias[j]`; the pointer addresses the bias of the tile's first column.
    Bias(*const f32),
    /// The current value of `C[i][j]`.
    Load,
}

impl Init {
    /// `Bias` if there is one, else `Zero`.
    fn of_bias(bias: Option<&[f32]>) -> Init {
        bias.map_or(Init::Zero, |b| Init::Bias(b.as_ptr()))
    }
}

impl Init {
    /// The same initialisation for a tile starting `cols` columns further right.
    #[inline(always)]
    pub(crate) fn offset(self, cols: usize) -> Init {
        match self {
            // Tiles only start at columns < n; lanes past n are never read.
            Init::Bias(p) => Init::Bias(p.wrapping_add(cols)),
            other => other,
        }
    }
}

/// Shape and pointers of one GEMM call, validated by [`check`].
#[derive(Clone, Copy)]
pub(crate) struct Problem {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub a: *const f32,
    pub lda: usize,
    pub b: *const f32,
    pub init: Init,
    pub c: *mut f32,
    pub ldc: usize,
    /// Apply ReLU (`max(v, 0)`, NaN → 0, as `v > 0 ? v : 0`) to each finished element.
    pub relu: bool,
}

impl Problem {
    /// The raw description the kernels take of checked slices (see `check`).
    #[allow(clippy::too_many_arguments)]
    fn new(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        lda: usize,
        b: *const f32,
        init: Init,
        c: &mut [f32],
        ldc: usize,
        relu: bool,
    ) -> Problem {
        Problem {
            m,
            k,
            n,
            a: a.as_ptr(),
            lda,
            b,
            init,
            c: c.as_mut_ptr(),
            ldc,
            relu,
        }
    }
}

/// What happens to each output element after its last k-step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Epilogue {
    /// Nothing.
    #[default]
    None,
    /// ReLU: `v > 0 ? v : 0` (NaN and −0 give +0), fused into the store.
    Relu,
}

/// The shape contract of every public GEMM function (the ISA is an [`Available`]).
#[allow(clippy::too_many_arguments)]
#[inline]
fn check(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    packed_elems: usize,
    bias: Option<&[f32]>,
    c: &[f32],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(lda >= k, "gemm: lda < k");
    assert!(ldc >= n, "gemm: ldc < n");
    assert!(a.len() >= (m - 1) * lda + k, "gemm: a too short");
    assert!(packed_elems >= packed_len(n, k), "gemm: packed too short");
    assert!(c.len() >= (m - 1) * ldc + n, "gemm: c too short");
    if let Some(b) = bias {
        assert!(b.len() >= n, "gemm: bias too short");
    }
}

fn run(isa: Available, p: Problem) {
    run_s::<S_F32>(isa, p)
}

/// [`run`] on weights stored in `format` (`p.b` points at u16).
fn run_half(isa: Available, format: HalfFormat, p: Problem) {
    match format {
        HalfFormat::Bf16 => run_s::<S_BF16>(isa, p),
        HalfFormat::F16 => run_s::<S_F16>(isa, p),
    }
}

/// [`run`] with the packed weights stored as `S` (`p.b` then points at u16 for the halves).
fn run_s<const S: u8>(isa: Available, p: Problem) {
    if p.m == 0 || p.n == 0 {
        return;
    }
    match isa.isa() {
        Isa::Portable => portable::gemm::<S>(p),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Available` says AVX2+FMA(+F16C) are there; `check` asserted the shape.
        Isa::Avx2Fma => unsafe { avx2::gemm::<S>(p) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Available` says AVX-512F is there; `check` asserted the shape.
        Isa::Avx512 => unsafe { avx512::gemm::<S>(p) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!(),
    }
}

/// [`gemm_with`] on weights packed by [`pack_weight_half`]: each weight is widened exactly to
/// f32 in the kernel, so the result is bit-identical to [`gemm_with`] on the widened weights
/// (the same reproducibility contract).
#[allow(clippy::too_many_arguments)]
pub fn gemm_half(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    packed: &[u16],
    format: HalfFormat,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_half_on(
        Available::or_panic(isa),
        m,
        k,
        n,
        a,
        lda,
        packed,
        format,
        bias,
        epilogue,
        c,
        ldc,
    );
}

/// [`gemm_accumulate`] on weights packed by [`pack_weight_half`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_accumulate_half(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    packed: &[u16],
    format: HalfFormat,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_accumulate_half_on(
        Available::or_panic(isa),
        m,
        k,
        n,
        a,
        lda,
        packed,
        format,
        c,
        ldc,
    );
}

/// C[i][j] = bias[j] + Σ_k A[i][k]·W[j][k]   for i < m, j < n.  (bias None → 0)
/// Panics (assert) if slices are too short for the given shape/strides, or if isa is not available.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    packed: &[f32],
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_with_on(
        Available::or_panic(isa),
        m,
        k,
        n,
        a,
        lda,
        packed,
        bias,
        Epilogue::None,
        c,
        ldc,
    );
}

/// [`gemm`] followed by an element-wise [`Epilogue`] fused into the store; the values are
/// exactly those of [`gemm`] then the epilogue applied separately.
#[allow(clippy::too_many_arguments)]
pub fn gemm_with(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    packed: &[f32],
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_with_on(
        Available::or_panic(isa),
        m,
        k,
        n,
        a,
        lda,
        packed,
        bias,
        epilogue,
        c,
        ldc,
    );
}

/// C[i][j] += bias[j] + Σ_k A[i][k]·W[j][k]   for i < m, j < n  (bias None → nothing added).
///
/// Same signature and ordering contract as [`gemm`], the existing `C[i][j]` taking the place of
/// the bias: each element is `acc = C[i][j]` (plus `bias[j]`, added first, if given), then the
/// k-steps in order. Used to add a second weight block's contribution (e.g. a condition).
/// Panics (assert) if slices are too short for the given shape/strides, or if isa is not available.
#[allow(clippy::too_many_arguments)]
pub fn gemm_accumulate(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    packed: &[f32],
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_accumulate_on(
        Available::or_panic(isa),
        m,
        k,
        n,
        a,
        lda,
        packed,
        bias,
        c,
        ldc,
    );
}

// The bodies, on an ISA already checked (the blocks call these with their session's).

/// [`check`]s the shape and describes the call: `packed` holds `packed_len` weights of any
/// storage, `bias` (f32) is only checked here, `init` says how each element starts.
#[allow(clippy::too_many_arguments)]
#[inline]
fn checked<T>(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    packed: &[T],
    bias: Option<&[f32]>,
    init: Init,
    relu: bool,
    c: &mut [f32],
    ldc: usize,
) -> Problem {
    check(m, k, n, a, lda, packed.len(), bias, c, ldc);
    Problem::new(m, k, n, a, lda, packed.as_ptr().cast(), init, c, ldc, relu)
}

/// [`gemm_half`] on an ISA already checked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_half_on(
    isa: Available,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    packed: &[u16],
    format: HalfFormat,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    c: &mut [f32],
    ldc: usize,
) {
    let init = Init::of_bias(bias);
    let relu = epilogue == Epilogue::Relu;
    let p = checked(m, k, n, a, lda, packed, bias, init, relu, c, ldc);
    run_half(isa, format, p);
}

/// [`gemm_accumulate_half`] on an ISA already checked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_accumulate_half_on(
    isa: Available,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    packed: &[u16],
    format: HalfFormat,
    c: &mut [f32],
    ldc: usize,
) {
    let p = checked(m, k, n, a, lda, packed, None, Init::Load, false, c, ldc);
    run_half(isa, format, p);
}

/// [`gemm`] on an ISA already checked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_on(
    isa: Available,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    packed: &[f32],
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_with_on(isa, m, k, n, a, lda, packed, bias, Epilogue::None, c, ldc);
}

/// [`gemm_with`] on an ISA already checked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_with_on(
    isa: Available,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    packed: &[f32],
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    c: &mut [f32],
    ldc: usize,
) {
    let init = Init::of_bias(bias);
    let relu = epilogue == Epilogue::Relu;
    run(
        isa,
        checked(m, k, n, a, lda, packed, bias, init, relu, c, ldc),
    );
}

/// [`gemm_accumulate`] on an ISA already checked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_accumulate_on(
    isa: Available,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    packed: &[f32],
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
) {
    check(m, k, n, a, lda, packed.len(), bias, c, ldc);
    if m == 0 || n == 0 {
        return;
    }
    if let Some(b) = bias {
        for row in c.chunks_mut(ldc).take(m) {
            for (x, &bj) in row[..n].iter_mut().zip(b) {
                *x += bj;
            }
        }
    }
    // The problem is described (its raw pointer to C taken) only after the bias is added.
    let p = Problem::new(m, k, n, a, lda, packed.as_ptr(), Init::Load, c, ldc, false);
    run(isa, p);
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// The packed layout as [`pack_weight`] documents it, element by element.
    fn documented_pack(w: &[f32], n: usize, k: usize) -> Vec<f32> {
        let np = n.div_ceil(NR);
        let mut out = vec![0.0; packed_len(n, k)];
        for p in 0..np {
            let group = p / GROUP;
            let g = (np - group * GROUP).min(GROUP);
            for kk in 0..k {
                for jj in 0..NR {
                    let at = group * GROUP * NR * k + kk * g * NR + (p - group * GROUP) * NR + jj;
                    let j = p * NR + jj;
                    out[at] = if j < n { w[j * k + kk] } else { 0.0 };
                }
            }
        }
        out
    }

    /// Every ISA's transposes (and the tile they leave the ragged edges to) pack the
    /// documented layout, from a row-major weight and from its transpose read with strides.
    #[test]
    fn every_isa_packs_the_documented_layout() {
        for &(n, k) in &[(1, 1), (16, 16), (17, 37), (130, 64), (300, 33), (512, 512)] {
            let w: Vec<f32> = (0..n * k).map(|i| i as f32 + 0.5).collect();
            let mut wt = vec![0.0; n * k];
            for j in 0..n {
                for kk in 0..k {
                    wt[kk * n + j] = w[j * k + kk];
                }
            }
            let want = documented_pack(&w, n, k);
            for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
                let mut got = vec![f32::NAN; packed_len(n, k)];
                pack_weight_strided_on(isa, &w, n, k, k, 1, &mut got);
                assert!(got == want, "{isa:?} {n}×{k}");
                let mut got = vec![f32::NAN; packed_len(n, k)];
                pack_weight_strided_on(isa, &wt, n, k, 1, n, &mut got);
                assert!(got == want, "{isa:?} {n}×{k} from the transpose");
            }
        }
    }

    /// The fused ReLU gives exactly `gemm` then `v > 0 ? v : 0`, on every ISA, for small-m,
    /// blocked (k split over several KC blocks) and ragged shapes.
    #[test]
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
            let mut packed = vec![0.0; packed_len(n, k)];
            pack_weight(&w, n, k, &mut packed);
            for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
                let mut want = vec![0.0; m * n];
                gemm(isa, m, k, n, &a, k, &packed, Some(&bias), &mut want, n);
                want.iter_mut()
                    .for_each(|v| *v = if *v > 0.0 { *v } else { 0.0 });
                let mut got = vec![f32::NAN; m * n];
                let e = Epilogue::Relu;
                gemm_with(isa, m, k, n, &a, k, &packed, Some(&bias), e, &mut got, n);
                assert!(
                    want.iter()
                        .zip(&got)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{isa:?} m={m} k={k} n={n}"
                );
            }
        }
    }
}
