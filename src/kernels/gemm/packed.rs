//! Packed weights: the panel layout, the storage formats, and the packer, the only maker of a
//! [`PackedWeight`].
//!
//! A PyTorch Linear weight `W` (`[n][k]` row-major) is packed into panels of [`NR`] output
//! columns, zero-padded to a multiple of [`NR`] columns; [`GROUP`] neighbouring panels are
//! interleaved k-row by k-row, so a one-row product streams each group's weights as one
//! sequential read. Layout: panel `p` holds output columns `p*NR .. p*NR+NR` (`0` past `n`).
//! Panels come in groups of [`GROUP`] (the last group may hold fewer, `g` panels); group `G`
//! starts at element `G*GROUP*NR*k` and stores its k-rows in order, k-row `kk` holding row
//! `kk` of each of its panels: element `[kk][jj]` of panel `p` (= `W[p*NR + jj][kk]`) is at
//! `G*GROUP*NR*k + kk*g*NR + (p - G*GROUP)*NR + jj`.
//!
//! That is the [`PanelLayout::Grouped`] layout, which every instruction set's kernels read.
//! A packed image for a small core (docs/format.md, "Packed images") has its weights in the
//! [`PanelLayout::Narrow`] layout instead, read by the narrow kernel (`narrow.rs`): panels of
//! [`NARROW_NR`] output columns, the last one only as wide as the columns left, so nothing is
//! padded: panel `p` (width `w = min(NARROW_NR, n − p·NARROW_NR)`) starts at element
//! `p·NARROW_NR·k`, and its element `[kk][jj]` (= `W[p·NARROW_NR + jj][kk]`) is at
//! `p·NARROW_NR·k + kk·w + jj`. The layout is `n·k` elements in all.

use super::memory::{Slab, SlabMut, WeightMemory};
use super::{Isa, NR};
use crate::error::{Error, Result};
use crate::kernels::half;

/// Panels per group in the packed layout: a group's k-rows are stored one after another, each
/// holding row `kk` of all its panels, so the large-batch micro-tile (two panels wide) reads
/// one sequential run of 128 bytes per k-step, and a one-row product reads one run per group
/// (four for its eight panels) instead of one per panel.
pub const GROUP: usize = 2;

/// Output rows of one whole group (`GROUP · NR`).
pub const GROUP_ROWS: usize = GROUP * NR;

/// How the elements of a packed weight are stored (chosen at load, see
/// [`crate::LoadOptions`]).
///
/// The 16-bit formats halve the bytes each sample streams at small batches (batch 1 reads
/// every weight once per sample) at the cost of rounding each weight once, when it is packed
/// (relative error ≤ 2⁻⁹ for bf16, ≤ 2⁻¹² for f16). Every product and sum is still computed
/// in f32, with the weights widened exactly in the kernel; biases, normalisations and every
/// other parameter stay f32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum WeightStorage {
    /// f32, as in the file: results match FrEIA to f32 rounding (the parity fixtures).
    #[default]
    F32 = 0,
    /// bfloat16: the top 16 bits of an f32 (f32's range, 8 significant bits).
    Bf16 = 1,
    /// IEEE 754 binary16 (10 significant bits, range ±65504, subnormals below 6.1e-5; a
    /// model with a larger weight fails to load in it).
    F16 = 2,
}

impl WeightStorage {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            WeightStorage::F32 => 4,
            WeightStorage::Bf16 | WeightStorage::F16 => 2,
        }
    }

    /// `v` as this storage keeps it: rounded to nearest even in a 16-bit format, exact in f32.
    pub fn round(self, v: f32) -> f32 {
        match self {
            WeightStorage::F32 => v,
            WeightStorage::Bf16 => half::bf16_to_f32(half::f32_to_bf16(v)),
            WeightStorage::F16 => half::f16_to_f32(half::f32_to_f16(v)),
        }
    }

    /// The storage whose discriminant is `code`: the kernels are monomorphised on
    /// `S = storage as u8` (a const generic cannot be an enum on stable Rust).
    #[inline(always)]
    pub(crate) const fn from_code(code: u8) -> WeightStorage {
        match code {
            0 => WeightStorage::F32,
            1 => WeightStorage::Bf16,
            _ => WeightStorage::F16,
        }
    }
}

/// Output columns of a whole panel of the [`PanelLayout::Narrow`] layout: a one-row tile of a
/// whole panel keeps 8 sums, 8 weights and the activation in 17 of the 32 single-precision
/// registers of a Cortex-M4F, and a one-panel weight's two chains (the contract in the parent
/// module) 25.
pub const NARROW_NR: usize = 8;

/// How a [`PackedWeight`]'s elements are arranged (the module doc gives both layouts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PanelLayout {
    /// Panels of [`NR`] columns, zero-padded, [`GROUP`] of them interleaved: what a model
    /// loaded from a `.safetensors` file holds, for every instruction set's kernels.
    #[default]
    Grouped = 0,
    /// Panels of [`NARROW_NR`] columns, the last at its own width, nothing padded: a packed
    /// image's layout for Cortex-M cores, read by the narrow kernel.
    Narrow = 1,
}

impl PanelLayout {
    /// Elements an n×k weight takes in this layout (padding included).
    pub fn elements(self, n: usize, k: usize) -> Option<usize> {
        match self {
            PanelLayout::Grouped => n.div_ceil(NR).checked_mul(NR)?.checked_mul(k),
            PanelLayout::Narrow => n.checked_mul(k),
        }
    }

    /// Element offset of `W[j][kk]` in an n×k weight packed in this layout (`j < n`, `kk < k`).
    pub(crate) fn index(self, n: usize, k: usize, j: usize, kk: usize) -> usize {
        match self {
            PanelLayout::Grouped => {
                let at = panel_at(j / NR, n.div_ceil(NR), k);
                at.offset + kk * at.kstride + j % NR
            }
            PanelLayout::Narrow => {
                let first = j / NARROW_NR * NARROW_NR;
                let width = (n - first).min(NARROW_NR);
                first * k + kk * width + (j - first)
            }
        }
    }
}

/// Number of elements the packed form of an n×k weight takes (n rounded up to NR, times k).
pub fn packed_len(n: usize, k: usize) -> usize {
    n.div_ceil(NR) * NR * k
}

/// Bytes the packed form of an n×k weight takes in `storage`, saturating at `usize::MAX` (the
/// shapes may come from a file: no size is too large to ask for, the allocation refuses it).
pub(crate) fn packed_bytes(n: usize, k: usize, storage: WeightStorage) -> usize {
    n.div_ceil(NR)
        .saturating_mul(NR)
        .saturating_mul(k)
        .saturating_mul(storage.size())
}

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

/// A Linear weight packed for [`super::gemm`]: its shape (`n` outputs × `k` inputs), its
/// storage and its packed elements. Only the packer makes one ([`PackedWeight::pack`],
/// [`WeightPacker`]), so a product can be checked against the shape the weight really has.
pub struct PackedWeight {
    n: usize,
    k: usize,
    storage: WeightStorage,
    layout: PanelLayout,
    data: Slab,
    /// The memory `data` lies in, if this weight owns it; `None` for a model's weights, whose
    /// memory the model holds (and drops after its blocks).
    _memory: Option<WeightMemory>,
}

impl core::fmt::Debug for PackedWeight {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PackedWeight")
            .field("n", &self.n)
            .field("k", &self.k)
            .field("storage", &self.storage)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

/// Equal shape, storage and packed elements.
impl PartialEq for PackedWeight {
    fn eq(&self, other: &PackedWeight) -> bool {
        (self.n, self.k, self.storage, self.layout)
            == (other.n, other.k, other.storage, other.layout)
            && self.data.as_slice::<u8>() == other.data.as_slice::<u8>()
    }
}

impl PackedWeight {
    /// Packs `w`, `[n][k]` row-major (a PyTorch Linear weight), in `storage`.
    pub fn pack(w: &[f32], n: usize, k: usize, storage: WeightStorage) -> Result<PackedWeight> {
        if w.len() != n * k {
            return Err(Error::BufferLength {
                buffer: "weight",
                expected: n * k,
                found: w.len(),
            });
        }
        let mut packer = WeightPacker::standalone(n, k, storage)?;
        packer.pack_rows(0, w)?;
        Ok(packer.finish())
    }

    /// Packs the n×k weight given by strides: `W[j][kk]` is `w[j*row_stride + kk*col_stride]`.
    /// With strides `(1, n_in)` it packs the transpose of an `[n_in][n]` weight (the training
    /// mode's input gradient `G·W`) without a copy.
    pub fn pack_strided(
        w: &[f32],
        n: usize,
        k: usize,
        (row_stride, col_stride): (usize, usize),
        storage: WeightStorage,
    ) -> Result<PackedWeight> {
        let mut packer = WeightPacker::standalone(n, k, storage)?;
        packer.pack_on(Isa::detect(), 0, n, w, row_stride, col_stride)?;
        Ok(packer.finish())
    }

    /// The n×k weight in `storage` and `layout` whose packed elements are `bytes` (as
    /// [`PanelLayout`] arranges them, little-endian), read in place: a packed image's weight.
    /// The bytes must hold exactly the elements, at an address aligned to the element size.
    pub(crate) fn in_image(
        n: usize,
        k: usize,
        storage: WeightStorage,
        layout: PanelLayout,
        bytes: &'static [u8],
    ) -> Option<PackedWeight> {
        let len = layout.elements(n, k)?.checked_mul(storage.size())?;
        let aligned = (bytes.as_ptr() as usize).is_multiple_of(storage.size());
        (bytes.len() == len && aligned).then(|| PackedWeight {
            n,
            k,
            storage,
            layout,
            data: Slab::borrowed(bytes),
            _memory: None,
        })
    }

    /// Element `W[j][kk]` as stored: an f32's bits, or the 16 bits of a 16-bit storage.
    pub(crate) fn stored_bits(&self, j: usize, kk: usize) -> u32 {
        let at = self.layout.index(self.n, self.k, j, kk);
        match self.storage {
            WeightStorage::F32 => self.data.as_slice::<f32>()[at].to_bits(),
            _ => u32::from(self.data.as_slice::<u16>()[at]),
        }
    }

    /// The packed elements' bytes.
    pub(crate) fn packed_bytes(&self) -> &[u8] {
        self.data.as_slice::<u8>()
    }

    /// The same weight, the same stored elements, in `layout` (in memory of its own).
    pub fn repack(&self, layout: PanelLayout) -> Result<PackedWeight> {
        let (n, k, storage) = (self.n, self.k, self.storage);
        let mut memory = WeightMemory::new(0);
        let elements = layout
            .elements(n, k)
            .ok_or(Error::Argument("repack: the weight is larger than memory"))?;
        let mut data = memory.alloc("weight", elements.saturating_mul(storage.size()))?;
        for j in 0..n {
            for kk in 0..k {
                let (at, bits) = (layout.index(n, k, j, kk), self.stored_bits(j, kk));
                match storage {
                    WeightStorage::F32 => data.as_mut_slice::<f32>()[at] = f32::from_bits(bits),
                    // 16 bits, as `stored_bits` reads them.
                    _ => data.as_mut_slice::<u16>()[at] = bits as u16,
                }
            }
        }
        Ok(PackedWeight {
            n,
            k,
            storage,
            layout,
            data: data.freeze(),
            _memory: Some(memory),
        })
    }

    /// How the elements are arranged.
    #[inline]
    pub fn layout(&self) -> PanelLayout {
        self.layout
    }

    /// Outputs (rows of `W`).
    #[inline]
    pub fn n(&self) -> usize {
        self.n
    }

    /// Inputs (columns of `W`).
    #[inline]
    pub fn k(&self) -> usize {
        self.k
    }

    /// How the elements are stored.
    #[inline]
    pub fn storage(&self) -> WeightStorage {
        self.storage
    }

    /// Bytes of the packed elements (padding included).
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Address of the packed element 0 (element `i` is `i · storage.size()` bytes on).
    #[inline]
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.data.as_ptr()
    }

    /// The packed elements as `T` (f32 for F32 storage, the 16-bit bits otherwise).
    #[cfg(test)]
    pub(crate) fn elements<T: super::memory::Plain>(&self) -> &[T] {
        self.data.as_slice()
    }
}

/// A [`PackedWeight`] being packed, a block of rows at a time: the loader packs each block
/// of a weight as it reads it, so it never holds a whole weight unpacked. Rows never packed
/// stay zero.
pub struct WeightPacker {
    n: usize,
    k: usize,
    storage: WeightStorage,
    data: SlabMut,
    memory: Option<WeightMemory>,
}

impl WeightPacker {
    /// Room for an `n`×`k` weight in `storage`, in memory of its own. Panics if that memory
    /// cannot be had, as a `Vec` would ([`PackedWeight::pack`] returns the error instead).
    pub fn new(n: usize, k: usize, storage: WeightStorage) -> WeightPacker {
        WeightPacker::standalone(n, k, storage).expect("memory for a packed weight")
    }

    /// [`WeightPacker::new`], out of memory an error.
    fn standalone(n: usize, k: usize, storage: WeightStorage) -> Result<WeightPacker> {
        let mut memory = WeightMemory::new(0);
        let mut packer = WeightPacker::new_in(&mut memory, "weight", n, k, storage)?;
        packer.memory = Some(memory);
        Ok(packer)
    }

    /// Room for an `n`×`k` weight in `storage`, in `memory` (a model's, which must outlive
    /// the weight: the model drops it after its blocks); out of memory is an error naming
    /// `what`.
    pub(crate) fn new_in(
        memory: &mut WeightMemory,
        what: &str,
        n: usize,
        k: usize,
        storage: WeightStorage,
    ) -> Result<WeightPacker> {
        Ok(WeightPacker {
            n,
            k,
            storage,
            data: memory.alloc(what, packed_bytes(n, k, storage))?,
            memory: None,
        })
    }

    /// Packs rows `first_row..first_row + w.len() / k` of the weight, `w` holding them
    /// row-major (`k` wide). A block starts at a panel's first row (`first_row` a multiple of
    /// [`NR`]) and ends at one or at the last row, so each panel is packed whole, by one call.
    pub fn pack_rows(&mut self, first_row: usize, w: &[f32]) -> Result<()> {
        if self.k == 0 {
            return Ok(());
        }
        if !w.len().is_multiple_of(self.k) {
            return Err(Error::Argument(
                "pack_rows: the rows are not a whole number of k-wide rows",
            ));
        }
        let rows = w.len() / self.k;
        self.pack_on(Isa::detect(), first_row, rows, w, self.k, 1)
    }

    /// The packed weight.
    pub fn finish(self) -> PackedWeight {
        PackedWeight {
            n: self.n,
            k: self.k,
            storage: self.storage,
            layout: PanelLayout::Grouped,
            data: self.data.freeze(),
            _memory: self.memory,
        }
    }

    /// Packs rows `first_row..first_row + rows`, row `first_row + j` column `kk` being
    /// `w[j*row_stride + kk*col_stride]`, transposing whole NR×NR f32 blocks with `isa`'s
    /// registers (the bytes are the same on every ISA).
    pub(crate) fn pack_on(
        &mut self,
        isa: Isa,
        first_row: usize,
        rows: usize,
        w: &[f32],
        row_stride: usize,
        col_stride: usize,
    ) -> Result<()> {
        let (n, k) = (self.n, self.k);
        let ends_at_a_panel = rows.is_multiple_of(NR) || first_row + rows == n;
        if !first_row.is_multiple_of(NR) || !ends_at_a_panel || first_row + rows > n {
            return Err(Error::Argument(
                "pack_rows: a block of rows must be whole panels of the weight (NR rows, or to its last row)",
            ));
        }
        if rows == 0 || k == 0 {
            return Ok(());
        }
        let need = (rows - 1) * row_stride + (k - 1) * col_stride + 1;
        if w.len() < need {
            return Err(Error::BufferLength {
                buffer: "weight",
                expected: need,
                found: w.len(),
            });
        }
        let np = n.div_ceil(NR);
        let value = |j: usize, kk: usize| w[j * row_stride + kk * col_stride];
        for p in 0..rows.div_ceil(NR) {
            let at = panel_at(first_row / NR + p, np, k);
            let first = p * NR;
            let cols = (rows - first).min(NR);
            match self.storage {
                WeightStorage::F32 => {
                    let out = self.data.as_mut_slice::<f32>();
                    let src = Strided {
                        w,
                        row_stride,
                        col_stride,
                    };
                    pack_f32_panel(isa, at, first, cols, k, src, out);
                }
                WeightStorage::Bf16 => {
                    let out = self.data.as_mut_slice::<u16>();
                    let bits = |j, kk| half::f32_to_bf16(value(j, kk));
                    pack_panel_with(at, first, cols, 0..k, out, 0, &bits);
                }
                WeightStorage::F16 => {
                    let out = self.data.as_mut_slice::<u16>();
                    let bits = |j, kk| half::f32_to_f16(value(j, kk));
                    pack_panel_with(at, first, cols, 0..k, out, 0, &bits);
                }
            }
        }
        Ok(())
    }
}

/// A weight read through strides: `W[j][kk]` is `w[j*row_stride + kk*col_stride]`.
#[derive(Clone, Copy)]
struct Strided<'a> {
    w: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

/// Packs the f32 panel at `at` from source rows `first..first + cols`: a copy per k-row if
/// each is contiguous in the source, register transposes of whole NR×NR blocks if the
/// source rows are, and [`pack_panel_with`] for the rest.
fn pack_f32_panel(
    isa: Isa,
    at: PanelAt,
    first: usize,
    cols: usize,
    k: usize,
    src: Strided<'_>,
    out: &mut [f32],
) {
    let Strided {
        w,
        row_stride,
        col_stride,
    } = src;
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
                &w[first * row_stride + k0..],
                row_stride,
                &mut out[at.offset + k0 * at.kstride..],
                at.kstride,
            )
        {
            k0 += NR;
        }
    }
    let value = |j: usize, kk: usize| w[j * row_stride + kk * col_stride];
    pack_panel_with(at, first, cols, k0..k, out, 0.0, &value);
}

/// Fills k-rows `ks` of the panel at `at` (source rows `first..first + cols`) with
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

/// Transposes the NR×NR block at the start of `src` (rows `ld` apart) into the start of
/// `dst` (rows `ldd` apart) with `isa`'s registers; false (nothing written) if `isa` has
/// none for it.
fn transpose_block(isa: Isa, src: &[f32], ld: usize, dst: &mut [f32], ldd: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let src = &src[..(NR - 1) * ld + NR];
        let dst = &mut dst[..(NR - 1) * ldd + NR];
        match isa {
            // SAFETY: `src` holds NR rows of NR f32 `ld` apart and `dst` NR rows of NR f32
            // `ldd` apart (the slices above are bounds-checked), and AVX-512F is available.
            Isa::Avx512 if isa.is_available() => unsafe {
                super::avx512::transpose16(src.as_ptr(), ld, dst.as_mut_ptr(), ldd);
                true
            },
            // SAFETY: as above, with AVX2+FMA+F16C available.
            Isa::Avx2Fma if isa.is_available() => unsafe {
                super::avx2::transpose16(src.as_ptr(), ld, dst.as_mut_ptr(), ldd);
                true
            },
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, src, ld, dst, ldd);
        false
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// The packed layout as the module doc describes it, element by element.
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
    /// documented layout, from a row-major weight and from its transpose read with strides,
    /// whole or a panel group at a time; the 16-bit storages pack the same layout of their
    /// rounded values.
    #[test]
    // Too slow under Miri (more than 10 s interpreted; scripts/miri.sh runs the rest).
    #[cfg_attr(miri, ignore)]
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
            let pack = |isa, src: &[f32], strides: (usize, usize), block: usize| {
                let mut packer = WeightPacker::new(n, k, WeightStorage::F32);
                for first in (0..n).step_by(block) {
                    let rows = block.min(n - first);
                    let src = &src[first * strides.0..];
                    packer
                        .pack_on(isa, first, rows, src, strides.0, strides.1)
                        .unwrap();
                }
                packer.finish()
            };
            for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
                for block in [n, GROUP_ROWS, NR] {
                    let got = pack(isa, &w, (k, 1), block);
                    assert!(got.elements::<f32>() == want, "{isa:?} {n}×{k} by {block}");
                }
                let got = pack(isa, &wt, (1, n), n);
                assert!(got.elements::<f32>() == want, "{isa:?} {n}×{k} transposed");
            }
            for storage in [WeightStorage::Bf16, WeightStorage::F16] {
                let got = PackedWeight::pack(&w, n, k, storage).unwrap();
                let widened: Vec<f32> = got
                    .elements::<u16>()
                    .iter()
                    .map(|&h| match storage {
                        WeightStorage::Bf16 => half::bf16_to_f32(h),
                        _ => half::f16_to_f32(h),
                    })
                    .collect();
                let rounded: Vec<f32> = want.iter().map(|&v| storage.round(v)).collect();
                assert!(widened == rounded, "{storage:?} {n}×{k}");
            }
        }
    }

    #[test]
    fn blocks_of_rows_that_are_not_whole_panels_are_refused() {
        let w = vec![1.0; 40 * 3];
        let mut packer = WeightPacker::new(40, 3, WeightStorage::F32);
        assert!(
            packer.pack_rows(8, &w[..8 * 3]).is_err(),
            "not at a panel's start"
        );
        assert!(
            packer.pack_rows(0, &w[..8 * 3]).is_err(),
            "not to a panel's end"
        );
        assert!(
            packer.pack_rows(32, &w[..16 * 3]).is_err(),
            "past the last row"
        );
        assert!(packer.pack_rows(0, &w[..5]).is_err(), "not whole rows");
        assert!(
            packer.pack_rows(32, &w[..8 * 3]).is_ok(),
            "the last, partial panel"
        );
        assert!(
            packer.pack_rows(0, &w[..32 * 3]).is_ok(),
            "two whole panels"
        );
    }
}
