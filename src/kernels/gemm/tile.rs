//! The micro-tile, written once over the [`Lanes`] of an instruction set: `R` rows × `P`
//! panels of C held in registers while the k-steps stream A and the packed weights.
//!
//! An instruction set supplies its [`Lanes`] (the NR f32 of one panel row in registers, and
//! the half-dozen operations a tile does on them) and instantiates [`tile`] under its target
//! features; the reproducibility contract (the parent module) is kept here, by the k-step
//! order of [`super::driver::k_steps`] and one `mul_add` per k-step and element.

use super::NR;
use super::driver::{Init, Tile, k_steps};

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
/// the odd chain is added to the even one, the ReLU applied if asked, and the real columns
/// stored.
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
        a,
        lda,
        b,
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
    // (`Tile::panel_elem`), C rows 0..R × the real columns of panels 0..P, and the bias of
    // those columns.
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
    // Even k-steps onto the init, odd ones (SPLIT = 2) from zero, added at the end.
    let mut odd = [[zero; P]; R];
    k_steps::<_, SPLIT>(kc, &mut acc, &mut odd, |chain: &mut [[V; P]; R], kk| {
        let mut bv = [zero; P];
        for q in 0..P {
            // SAFETY: as above (panel q's k-row kk).
            bv[q] = unsafe { V::load_packed::<S>(b, t.panel_elem(q, kk)) };
        }
        for r in 0..R {
            // SAFETY: as above (A row r, k-step kk).
            let av = unsafe { V::splat(*a.add(r * lda + kk)) };
            for q in 0..P {
                // SAFETY: the instruction set is available (caller contract).
                chain[r][q] = unsafe { chain[r][q].mul_add(av, bv[q]) };
            }
        }
    });
    for r in 0..R {
        for q in 0..P {
            // SAFETY: the instruction set is available (caller contract).
            unsafe {
                if SPLIT == 2 {
                    acc[r][q] = acc[r][q].add(odd[r][q]);
                }
                if relu {
                    acc[r][q] = acc[r][q].relu();
                }
                acc[r][q].store(c.add(r * ldc + q * NR), cols(q));
            }
        }
    }
}
