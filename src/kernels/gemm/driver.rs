//! The GEMM's loops, written once for every instruction set: how a product is cut into tiles,
//! in which order the tiles run, and where each tile's operands are.
//!
//! The per-ISA part is a [`Microkernel`]: the tiling parameters that suit its registers and
//! caches, and which tiles (`R` rows × `P` panels) it has. The tiles themselves are written
//! once too (`tile.rs`), over the instruction set's `Lanes`, accumulating the k-steps in the
//! contract's order (see the parent module). Adding an instruction set is
//! writing its `Lanes`, its `Microkernel` and an entry point that runs [`gemm`] with its
//! target features enabled (so that the driver, inlined into it, inlines the tiles), plus an
//! arm in the parent module's dispatch.
//!
//! Three paths, chosen by the shape alone:
//! * a one-panel weight (`n ≤ NR`): tiles of [`Microkernel::ONE_PANEL_ROWS`] rows over all of
//!   k in two chains, no blocking (the panel is read once per tile from L1/L2);
//! * a small batch (`m ≤ SMALL_M_PANELS.len()`): all `m` rows in one tile height, all of k,
//!   `SMALL_M_PANELS[m - 1]` panels per tile over whole groups, then 2 or 1 within a group;
//! * else blocked: over rows (a block of C, plus its A block, stays in L2), then k
//!   ([`Microkernel::KC`]), then panels ([`Microkernel::BLOCKED_PANELS`] of one group), then
//!   tiles of [`Microkernel::MR`] rows. Partial sums are stored to C and reloaded exactly.

use super::NR;
use super::packed::{GROUP, PanelAt, WeightStorage, panel_at};

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

/// Rows added to the finished sums: row `i` of the tile gets `S[(first + i) / repeat]`,
/// where `base` addresses `S[0]` at the tile's first column and its rows are `ld` apart.
#[derive(Clone, Copy)]
pub(crate) struct Added {
    pub base: *const f32,
    pub ld: usize,
    pub first: usize,
    pub repeat: usize,
}

impl Added {
    /// The same rows for a tile `rows` rows down and `cols` columns right.
    #[inline(always)]
    fn at(self, rows: usize, cols: usize) -> Added {
        Added {
            base: self.base.wrapping_add(cols),
            first: self.first + rows,
            ..self
        }
    }
}

/// Shape and pointers of one GEMM call, checked by [`super::gemm`].
#[derive(Clone, Copy)]
pub(crate) struct Problem {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// `A[0][0]`; row `i` at `a + i·lda`.
    pub a: *const f32,
    pub lda: usize,
    /// Packed element 0 of the weight (of the storage the kernels are instantiated for).
    pub b: *const u8,
    pub init: Init,
    /// `C[0][0]`; row `i` at `c + i·ldc`.
    pub c: *mut f32,
    pub ldc: usize,
    /// Rows added to the finished sums, before the ReLU.
    pub added: Option<Added>,
    /// Apply ReLU (`max(v, 0)`, NaN → 0, as `v > 0 ? v : 0`) to each finished element.
    pub relu: bool,
}

/// One tile's operands: rows `0..R` × panels `0..P` of the microkernel's tile, k-steps
/// `0..kc`.
#[derive(Clone, Copy)]
pub(crate) struct Tile {
    /// k-steps to accumulate.
    pub kc: usize,
    /// `A[row0][k0]`; tile row `r` at `a + r·lda`.
    pub a: *const f32,
    pub lda: usize,
    /// Packed k-row `k0` of the tile's first panel.
    pub b: *const u8,
    /// Elements between a panel's consecutive k-rows.
    pub kstride: usize,
    /// Elements between the first panels of consecutive groups (a tile spans whole groups,
    /// or stays in one).
    pub gstride: usize,
    pub init: Init,
    /// `C[row0][col0]`; tile row `r` at `c + r·ldc`.
    pub c: *mut f32,
    pub ldc: usize,
    /// Real columns of the tile's last panel (1..=NR); the others are whole.
    pub last: usize,
    /// The rows added to each finished element (the tile holds the last k-steps).
    pub added: Option<Added>,
    /// ReLU on each stored element (the tile holds the last k-steps).
    pub relu: bool,
}

impl Tile {
    /// Element offset from `b` of k-step `kk` of the tile's panel `q`.
    #[inline(always)]
    pub(crate) fn panel_elem(&self, q: usize, kk: usize) -> usize {
        (q / GROUP) * self.gstride + (q % GROUP) * NR + kk * self.kstride
    }
}

/// `b` advanced by `elems` packed elements of storage `S` (4 bytes for f32, 2 for the halves).
#[inline(always)]
pub(crate) fn elem<const S: u8>(b: *const u8, elems: usize) -> *const u8 {
    b.wrapping_add(elems * const { WeightStorage::from_code(S).size() })
}

/// The per-ISA part of the GEMM (see the module doc).
pub(crate) trait Microkernel {
    /// k-steps per block of the blocked path (the tile's slice of the weight stays in L1).
    const KC: usize;
    /// Rows per tile of the blocked path.
    const MR: usize;
    /// Panels per tile of the blocked path: 1, or up to a whole group.
    const BLOCKED_PANELS: usize;
    /// Rows per tile of a one-panel weight.
    const ONE_PANEL_ROWS: usize;
    /// Panels per tile when the whole batch of `m` rows is one tile height: entry `m - 1`,
    /// for `m` up to the length (empty: never).
    const SMALL_M_PANELS: &'static [usize];

    /// The tile `t`, `rows` × `panels`, its k-steps in one chain each, for the shapes the
    /// paths above ask for: `rows ≤ MR` × `panels ≤ BLOCKED_PANELS`, and `rows = m` ×
    /// `SMALL_M_PANELS[m - 1]`, 2 or 1 panels.
    ///
    /// # Safety
    /// The ISA's instructions are available; A rows `0..rows` × `0..t.kc`, the packed panels
    /// `0..panels` × k-rows `0..t.kc` (of storage `S`), C rows `0..rows` × columns
    /// `0..(panels-1)·NR + t.last` and, for `Init::Bias`, the bias of those columns (and
    /// those columns of the rows added to rows `0..rows`) are in bounds.
    unsafe fn tile<const S: u8>(rows: usize, panels: usize, t: Tile);

    /// The tile `t`, `rows ≤ ONE_PANEL_ROWS` × one panel, its k-steps in two chains.
    ///
    /// # Safety
    /// As for [`Microkernel::tile`], with one panel.
    unsafe fn one_panel_tile<const S: u8>(rows: usize, t: Tile);

    /// Most outputs of a one-panel weight that [`Microkernel::narrow_tile`] takes (0: none).
    const NARROW: usize = 0;
    /// Rows of a narrow tile.
    const NARROW_ROWS: usize = 1;

    /// The tile `t`, `NARROW_ROWS` rows × `t.last ≤ NARROW` outputs of a one-panel weight, all
    /// of k in the two chains of [`Microkernel::one_panel_tile`]: the same bits, but with the
    /// rows in a vector's lanes rather than the outputs, whose few lanes would leave most of
    /// each multiply-add unused (a subnet's last layer of 4 outputs used 4 of 16).
    ///
    /// # Safety
    /// As for [`Microkernel::one_panel_tile`], with `NARROW_ROWS` rows.
    unsafe fn narrow_tile<const S: u8>(t: Tile) {
        let _ = t;
        unreachable!("no narrow tiles")
    }
}

/// The largest `SMALL_M_PANELS.len()` the driver has a loop for.
const MAX_SMALL_M: usize = 11;

/// `table[m - 1]`, or 1 past the table's end (`m` then never reaches the small-batch path).
const fn small_m_panels(table: &[usize], m: usize) -> usize {
    assert!(
        table.len() <= MAX_SMALL_M,
        "no small-batch loop for so many rows"
    );
    if m <= table.len() { table[m - 1] } else { 1 }
}

/// f32 budget of one row block of C plus its A block (rows × (n + KC)), to stay in L2.
const L2_BLOCK: usize = 96 * 1024;

/// `$go!(R)` or `$go!(R, arg)` for `R = $rows`, one of the literals listed: the microkernels' dispatch
/// of a run-time row count to their tiles, whose row count is a constant.
// Only the SIMD microkernels have tiles of several heights (none on other targets yet).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_macros))]
macro_rules! by_rows {
    ($rows:expr, $go:ident, [$($r:literal)*]) => {
        match $rows {
            $($r => $go!($r),)*
            rows => unreachable!("no tile of {rows} rows"),
        }
    };
    ($rows:expr, $go:ident($arg:tt), [$($r:literal)*]) => {
        match $rows {
            $($r => $go!($r, $arg),)*
            rows => unreachable!("no tile of {rows} rows"),
        }
    };
}
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_imports))]
pub(super) use by_rows;

/// Panels `q..q + span` of a tile: `span` if they all lie in full groups and `q` starts a
/// group (so panel `q + i` is at `(i / GROUP)·GROUP·NR·k + (i % GROUP)·NR` from panel `q`,
/// with k-rows `GROUP·NR` apart), else what is left of `q`'s group, at most `span`.
#[inline(always)]
fn tile_span(q: usize, np: usize, span: usize, at: &PanelAt) -> usize {
    if q.is_multiple_of(GROUP) && q + span <= np / GROUP * GROUP {
        span
    } else {
        at.rest.min(span)
    }
}

/// The product `p` with `K`'s tiles.
///
/// # Safety
/// `p` was checked by [`super::gemm`] (m, n > 0) and `K`'s instructions are available.
#[inline(always)]
pub(crate) unsafe fn gemm<K: Microkernel, const S: u8>(p: &Problem) {
    // SAFETY: forwarded: each path cuts the checked problem into tiles inside it.
    unsafe {
        if p.n <= NR {
            return one_panel::<K, S>(p);
        }
        if p.m > K::SMALL_M_PANELS.len() {
            return blocked::<K, S>(p);
        }
        // The small batches with their row count a constant, so that each gets its own loop
        // with its tiles' rows fixed (an m the microkernel has no entry for is never here).
        match p.m {
            1 => row_panels::<K, S, 1>(p),
            2 => row_panels::<K, S, 2>(p),
            3 => row_panels::<K, S, 3>(p),
            4 => row_panels::<K, S, 4>(p),
            5 => row_panels::<K, S, 5>(p),
            6 => row_panels::<K, S, 6>(p),
            7 => row_panels::<K, S, 7>(p),
            8 => row_panels::<K, S, 8>(p),
            9 => row_panels::<K, S, 9>(p),
            10 => row_panels::<K, S, 10>(p),
            11 => row_panels::<K, S, 11>(p),
            _ => unreachable!("small batches have at most {MAX_SMALL_M} rows"),
        }
    }
}

/// A one-panel weight (n ≤ NR), any m: tiles of `ONE_PANEL_ROWS` rows over all of k in two
/// chains (the contract), with no blocking: the panel (k × NR) is read once per tile. At most
/// `NARROW` outputs: tiles of `NARROW_ROWS` rows with the rows in the lanes, while they last.
///
/// # Safety
/// As for [`gemm`], with `p.n <= NR`.
#[inline(always)]
unsafe fn one_panel<K: Microkernel, const S: u8>(p: &Problem) {
    let mut r0 = 0;
    while r0 < p.m {
        let narrow = p.n <= K::NARROW && r0 + K::NARROW_ROWS <= p.m;
        let rows = if narrow {
            K::NARROW_ROWS
        } else {
            K::ONE_PANEL_ROWS.min(p.m - r0)
        };
        let t = Tile {
            kc: p.k,
            a: p.a.wrapping_add(r0 * p.lda),
            lda: p.lda,
            b: p.b,
            // The one panel is a group of one: its k-rows are NR apart.
            kstride: NR,
            gstride: 0,
            init: p.init,
            c: p.c.wrapping_add(r0 * p.ldc),
            ldc: p.ldc,
            last: p.n,
            added: p.added.map(|s| s.at(r0, 0)),
            relu: p.relu,
        };
        // SAFETY: rows r0..r0+rows < m, the one panel, all k-steps.
        unsafe {
            if narrow {
                K::narrow_tile::<S>(t);
            } else {
                K::one_panel_tile::<S>(rows, t);
            }
        }
        r0 += rows;
    }
}

/// All `M = p.m` rows as one tile height, over all of k: tiles of `SMALL_M_PANELS[M - 1]`
/// panels over whole groups, then of 2 or 1 panels within a group.
///
/// # Safety
/// As for [`gemm`], with `p.m == M <= SMALL_M_PANELS.len()`.
#[inline(always)]
unsafe fn row_panels<K: Microkernel, const S: u8, const M: usize>(p: &Problem) {
    let width = const { small_m_panels(K::SMALL_M_PANELS, M) };
    let np = p.n.div_ceil(NR);
    let last = p.n - (np - 1) * NR;
    let mut q = 0;
    while q < np {
        let at = panel_at(q, np, p.k);
        let span = tile_span(q, np, width, &at);
        let panels = if span >= width {
            width
        } else if span >= 2 {
            2
        } else {
            1
        };
        let t = Tile {
            kc: p.k,
            a: p.a,
            lda: p.lda,
            b: elem::<S>(p.b, at.offset),
            kstride: at.kstride,
            gstride: GROUP * NR * p.k,
            init: p.init.offset(q * NR),
            c: p.c.wrapping_add(q * NR),
            ldc: p.ldc,
            last: if q + panels == np { last } else { NR },
            added: p.added.map(|s| s.at(0, q * NR)),
            relu: p.relu,
        };
        // SAFETY: rows 0..m, panels q..q+panels < np in whole groups or in one
        // (`tile_span`), all k-steps.
        unsafe { K::tile::<S>(M, panels, t) };
        q += panels;
    }
}

/// Large m: blocked over rows, then k, then panels, then `MR`-row tiles (see the module doc).
///
/// # Safety
/// As for [`gemm`].
#[inline(always)]
unsafe fn blocked<K: Microkernel, const S: u8>(p: &Problem) {
    let np = p.n.div_ceil(NR);
    let last = p.n - (np - 1) * NR;
    let mc = (L2_BLOCK / (p.n + K::KC.min(p.k))).max(K::MR) / K::MR * K::MR;
    let mut m0 = 0;
    while m0 < p.m {
        let m1 = (m0 + mc).min(p.m);
        let mut k0 = 0;
        loop {
            let kc = K::KC.min(p.k - k0);
            let init = if k0 == 0 { p.init } else { Init::Load };
            let finished = k0 + kc >= p.k;
            let relu = p.relu && finished;
            let mut q = 0;
            while q < np {
                let at = panel_at(q, np, p.k);
                let panels = at.rest.min(K::BLOCKED_PANELS);
                let b = elem::<S>(p.b, at.offset + k0 * at.kstride);
                let init = init.offset(q * NR);
                let last = if q + panels == np { last } else { NR };
                let mut r0 = m0;
                while r0 < m1 {
                    let rows = K::MR.min(m1 - r0);
                    let t = Tile {
                        kc,
                        a: p.a.wrapping_add(r0 * p.lda + k0),
                        lda: p.lda,
                        b,
                        kstride: at.kstride,
                        gstride: 0,
                        init,
                        c: p.c.wrapping_add(r0 * p.ldc + q * NR),
                        ldc: p.ldc,
                        last,
                        added: p.added.filter(|_| finished).map(|s| s.at(r0, q * NR)),
                        relu,
                    };
                    // SAFETY: rows r0..r0+rows < m, panels q..q+panels < np in one group,
                    // k-steps k0..k0+kc <= k.
                    unsafe { K::tile::<S>(rows, panels, t) };
                    r0 += rows;
                }
                q += panels;
            }
            k0 += kc;
            if k0 >= p.k {
                break;
            }
        }
        m0 = m1;
    }
}
