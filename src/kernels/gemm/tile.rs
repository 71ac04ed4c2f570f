//! The micro-tile, written once over the [`Lanes`] of an instruction set: `R` rows × `P`
//! panels of C held in registers while the k-steps stream A and the packed weights.
//!
//! An instruction set supplies its [`Lanes`] (the NR f32 of one panel row in registers, and
//! the half-dozen operations a tile does on them) and instantiates [`tile`] under its target
//! features; the reproducibility contract (the parent module) is kept here, by the k-step
//! order of [`tile`] and one `mul_add` per k-step and element.

use super::NR;
use super::driver::{Added, Init, Tile};

/// NR f32 in registers: a panel's packed k-row, or a tile row's values over one panel. Every
/// method may use its instruction set's instructions, so each is called only where that set
/// is available (from code compiled with its target features, so that the tiles inline them).
///
/// # Safety
/// The tiles' memory safety rests on the implementation: `load_packed` and `load` read, and
/// `store` writes, only the elements their contracts name.
pub(crate) unsafe trait Lanes: Copy {
    /// All lanes `0.0`.
    ///
    /// # Safety
    /// The instruction set is available.
    unsafe fn zero() -> Self;

    /// `v` in every lane.
    ///
    /// # Safety
    /// The instruction set is available.
    unsafe fn splat(v: f32) -> Self;

    /// `self + a·b`, lane by lane: one fused multiply-add on the SIMD instruction sets, a
    /// multiply then an add (each rounded) on the portable one.
    ///
    /// # Safety
    /// The instruction set is available.
    unsafe fn mul_add(self, a: Self, b: Self) -> Self;

    /// `self + other`, lane by lane.
    ///
    /// # Safety
    /// The instruction set is available.
    unsafe fn add(self, other: Self) -> Self;

    /// `v > 0 ? v : 0` lane by lane (NaN and −0 give +0).
    ///
    /// # Safety
    /// The instruction set is available.
    unsafe fn relu(self) -> Self;

    /// The NR packed weights of storage `S` at element `idx` of `b`, widened exactly to f32.
    ///
    /// # Safety
    /// The instruction set is available; NR elements of storage `S` are readable there.
    unsafe fn load_packed<const S: u8>(b: *const u8, idx: usize) -> Self;

    /// The `cols` (1..=NR) f32 at `p` in the first lanes; the other lanes hold any value.
    ///
    /// # Safety
    /// The instruction set is available; `cols` f32 are readable at `p`.
    unsafe fn load(p: *const f32, cols: usize) -> Self;

    /// Stores the first `cols` (1..=NR) lanes at `p`, nothing past them.
    ///
    /// # Safety
    /// The instruction set is available; `cols` f32 are writable at `p`.
    unsafe fn store(self, p: *mut f32, cols: usize);
}

/// Micro-tile: `R` rows × `P` panels of `t`, accumulating k-steps `0..t.kc` in `SPLIT`
/// interleaved chains (1, or 2 for one-panel weights: see the GEMM's contract; `kc` is then
/// all of k): each element starts at its `t.init`, takes its k-steps in order onto its chain,
/// the odd chain is added to the even one, then its added row if any, the ReLU applied if
/// asked, and the real columns stored.
///
/// Inlined into its instruction set's wrapper, which carries the target features.
///
/// # Safety
/// As for [`super::driver::Microkernel::tile`], with `R` rows and `P` panels, and `V`'s
/// instruction set available.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
pub(crate) unsafe fn tile<
    V: Lanes,
    const S: u8,
    const R: usize,
    const P: usize,
    const SPLIT: usize,
>(
    t: Tile,
) {
    let Tile {
        kc,
        init,
        c,
        ldc,
        last,
        relu,
        ..
    } = t;
    // Real columns of tile panel q.
    let cols = |q: usize| if q + 1 == P { last } else { NR };
    // The caller's contract gives the instruction set and the bounds every access below
    // relies on: A rows 0..R × k-steps 0..kc, packed panels 0..P × k-rows 0..kc
    // (`Tile::panel_elem`), C rows 0..R × the real columns of panels 0..P, and the bias and
    // the added rows of those columns.
    // SAFETY: the instruction set is available.
    let zero = unsafe { V::zero() };
    let mut acc = [[zero; P]; R];
    match init {
        Init::Zero => {}
        Init::Bias(bp) => {
            for q in 0..P {
                // SAFETY: as above (the bias of panel q's real columns).
                let v = unsafe { V::load(bp.add(q * NR), cols(q)) };
                for r in 0..R {
                    acc[r][q] = v;
                }
            }
        }
        Init::Load => {
            for r in 0..R {
                for q in 0..P {
                    // SAFETY: as above (C row r, panel q's real columns).
                    acc[r][q] = unsafe { V::load(c.add(r * ldc + q * NR), cols(q)) };
                }
            }
        }
    }
    // The contract's order: with SPLIT == 1 every k-step onto `acc`, in k order; with
    // SPLIT == 2 the even ones onto `acc` (the init) and the odd ones onto `odd` (from zero),
    // each in k order, `odd` added at the end. One k-step an iteration for one chain: taking
    // two made the AVX-512 12×2 tile spill (half its speed). A loop, not a closure: a
    // closure here would not inherit the target features of the wrapper this is inlined
    // into, and could not inline the `Lanes` methods (AVX-512 ran 20× slower).
    let mut odd = [[zero; P]; R];
    if SPLIT == 1 {
        for kk in 0..kc {
            // SAFETY: k-step kk < kc (caller contract, as above).
            unsafe { k_step::<V, S, R, P>(&mut acc, &t, kk) };
        }
    } else {
        let mut kk = 0;
        while kk + 2 <= kc {
            // SAFETY: k-steps kk and kk + 1 < kc (caller contract, as above).
            unsafe {
                k_step::<V, S, R, P>(&mut acc, &t, kk);
                k_step::<V, S, R, P>(&mut odd, &t, kk + 1);
            }
            kk += 2;
        }
        if kk < kc {
            // SAFETY: k-step kk < kc (caller contract, as above).
            unsafe { k_step::<V, S, R, P>(&mut acc, &t, kk) };
        }
    }
    if SPLIT == 2 {
        for r in 0..R {
            for q in 0..P {
                // SAFETY: the instruction set is available (caller contract).
                acc[r][q] = unsafe { acc[r][q].add(odd[r][q]) };
            }
        }
    }
    if let Some(Added {
        base,
        ld,
        first,
        repeat,
    }) = t.added
    {
        // Tile row r gets row (first + r) / repeat, counted without a division per row.
        let (mut row, mut left) = (first / repeat, repeat - first % repeat);
        for r in 0..R {
            for q in 0..P {
                // SAFETY: as above (the added row of tile row r, panel q's real columns).
                acc[r][q] = unsafe { acc[r][q].add(V::load(base.add(row * ld + q * NR), cols(q))) };
            }
            left -= 1;
            if left == 0 {
                row += 1;
                left = repeat;
            }
        }
    }
    for r in 0..R {
        for q in 0..P {
            // SAFETY: the instruction set is available (caller contract).
            unsafe {
                if relu {
                    acc[r][q] = acc[r][q].relu();
                }
                acc[r][q].store(c.add(r * ldc + q * NR), cols(q));
            }
        }
    }
}

/// One k-step `kk` of the tile `t` onto `chain`: the panels' packed k-row times each row's
/// A value, added lane by lane.
///
/// # Safety
/// As for [`tile`], with `kk < t.kc`.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn k_step<V: Lanes, const S: u8, const R: usize, const P: usize>(
    chain: &mut [[V; P]; R],
    t: &Tile,
    kk: usize,
) {
    // SAFETY: the instruction set is available (caller contract).
    let mut bv = [unsafe { V::zero() }; P];
    for q in 0..P {
        // SAFETY: panel q's k-row kk is packed there (`Tile::panel_elem`, caller contract).
        bv[q] = unsafe { V::load_packed::<S>(t.b, t.panel_elem(q, kk)) };
    }
    for r in 0..R {
        // SAFETY: A row r has k-step kk (caller contract).
        let av = unsafe { V::splat(*t.a.add(r * t.lda + kk)) };
        for q in 0..P {
            // SAFETY: the instruction set is available (caller contract).
            chain[r][q] = unsafe { chain[r][q].mul_add(av, bv[q]) };
        }
    }
}
