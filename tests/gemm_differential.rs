#![allow(clippy::needless_range_loop)]
//! Differential tests of the GEMM kernels against `matrixmultiply::sgemm`, plus the
//! reproducibility contract (bit-identical rows whatever the batch split).

use innfer::kernels::gemm::*;
use innfer::kernels::half::*;

/// Tiny deterministic xorshift64* PRNG.
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo) as u64) as usize
    }
    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.f32()).collect()
    }
}

fn isas() -> Vec<Available> {
    Isa::ALL.into_iter().filter_map(Isa::available).collect()
}

fn pack(w: &[f32], n: usize, k: usize) -> PackedWeight {
    PackedWeight::pack(w, n, k, WeightStorage::F32).unwrap()
}

/// The product of test mode `mode`: 0 is `a·Wᵀ`, 1 adds the bias, 2 accumulates onto the
/// output, 3 accumulates and adds the bias.
fn product<'a>(mode: u32, a: Rows<'a>, w: &'a PackedWeight, bias: &'a [f32]) -> Product<'a> {
    let bias = (mode == 1 || mode == 3).then_some(bias);
    Product::new(a, w).bias(bias).accumulate(mode >= 2)
}

/// `product` into the `m` rows of `c`, `n` wide and `ldc` apart.
fn run(isa: Available, product: Product<'_>, c: &mut [f32], m: usize, n: usize, ldc: usize) {
    gemm(isa, product, RowsMut::new(c, m, n, ldc).unwrap()).unwrap();
}

/// `C = beta·C + A·Wᵀ` with matrixmultiply (W is `[n][k]` row-major).
#[allow(clippy::too_many_arguments)]
fn mm_ref(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    w: &[f32],
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    // SAFETY: strides describe in-bounds matrices of the given shapes.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            lda as isize,
            1,
            w.as_ptr(),
            1,
            k as isize,
            beta,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        );
    }
}

struct Case {
    m: usize,
    k: usize,
    n: usize,
    lda: usize,
    ldc: usize,
}

fn check_case(rng: &mut Rng, cs: &Case) {
    let Case { m, k, n, lda, ldc } = *cs;
    let a = rng.vec((m - 1) * lda + k);
    let w = rng.vec(n * k);
    let bias = rng.vec(n);
    let c0 = rng.vec((m - 1) * ldc + n);
    let packed = pack(&w, n, k);

    // Reference values and an error scale Σ|a||w| (+ |bias| / |c0|).
    let mut r_plain = vec![0.0; c0.len()];
    mm_ref(m, k, n, &a, lda, &w, 0.0, &mut r_plain, ldc);
    let mut r_acc = c0.clone();
    mm_ref(m, k, n, &a, lda, &w, 1.0, &mut r_acc, ldc);
    let a_abs: Vec<f32> = a.iter().map(|x| x.abs()).collect();
    let w_abs: Vec<f32> = w.iter().map(|x| x.abs()).collect();
    let mut scale = vec![0.0; c0.len()];
    mm_ref(m, k, n, &a_abs, lda, &w_abs, 0.0, &mut scale, ldc);
    let tol = 1e-6 * (k as f32).sqrt().max(1.0);

    let rows = Rows::new(&a, m, k, lda).unwrap();
    for isa in isas() {
        let isa_name = isa.isa().name();
        for mode in 0..4 {
            // Sentinel in the padding between rows: must be left untouched.
            let mut c = c0.clone();
            run(isa, product(mode, rows, &packed, &bias), &mut c, m, n, ldc);
            for i in 0..m {
                for j in 0..ldc.min(c.len() - i * ldc) {
                    let idx = i * ldc + j;
                    if j >= n {
                        assert_eq!(
                            c[idx].to_bits(),
                            c0[idx].to_bits(),
                            "{isa_name} padding written",
                        );
                        continue;
                    }
                    let (want, extra) = match mode {
                        0 => (r_plain[idx], 0.0),
                        1 => (r_plain[idx] + bias[j], bias[j].abs()),
                        3 => (r_acc[idx] + bias[j], c0[idx].abs() + bias[j].abs()),
                        _ => (r_acc[idx], c0[idx].abs()),
                    };
                    let err = (c[idx] - want).abs();
                    let bound = tol * (scale[idx] + extra) + 1e-30;
                    assert!(
                        err <= bound,
                        "{isa_name} mode {mode} m={m} k={k} n={n} lda={lda} ldc={ldc} at ({i},{j}): got {} want {want} err {err} > {bound}",
                        c[idx],
                    );
                }
            }
        }
    }
}

#[test]
fn differential_vs_matrixmultiply() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let ms = [1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 24, 64, 257];
    let ks = [1, 2, 5, 7, 8, 11, 13, 17, 33, 128, 193, 257, 300, 512, 599];
    let ns = [
        1, 2, 5, 7, 11, 13, 16, 17, 24, 31, 32, 33, 48, 64, 100, 128, 129, 599,
    ];
    let mut cases = Vec::new();
    // Structured: each m with a spread of (k, n) pairs.
    for (t, &m) in ms.iter().enumerate() {
        for s in 0..4 {
            let mut k = ks[(t * 4 + s * 7) % ks.len()];
            let mut n = ns[(t * 5 + s * 3) % ns.len()];
            // Keep m exact but the work small enough for debug builds (odd sizes stay odd).
            while m * k * n > 600_000 {
                if n > k {
                    n = (n / 2) | 1
                } else {
                    k = (k / 2) | 1
                }
            }
            cases.push((m, k, n));
        }
    }
    // Random shapes, keeping the work small enough for debug builds.
    for _ in 0..30 {
        let mut m = rng.range(1, 300);
        let k = rng.range(1, 600);
        let n = rng.range(1, 600);
        while m > 1 && m * k * n > 600_000 {
            m /= 2;
        }
        cases.push((m, k, n));
    }
    cases.push((257, 300, 40));
    // Wide n: several row blocks in the large-m path.
    cases.push((200, 3, 599));
    cases.push((300, 2, 1024));
    cases.push((64, 600, 100));
    for (m, k, n) in cases {
        let lda = k + if rng.range(0, 2) == 0 {
            0
        } else {
            rng.range(1, 9)
        };
        let ldc = n + if rng.range(0, 2) == 0 {
            0
        } else {
            rng.range(1, 9)
        };
        check_case(&mut rng, &Case { m, k, n, lda, ldc });
    }
}

/// Scalar model of the contract: init, then k = 0..K in order, fused (SIMD) or mul-then-add
/// (portable); for a weight of at most 16 outputs (one panel), the even k-steps onto the init
/// and the odd ones from zero, then the two added.
#[test]
fn matches_scalar_model_bit_exactly() {
    let mut rng = Rng(42);
    for &(m, k, n) in &[
        (1, 9, 5),
        (3, 33, 17),
        (13, 300, 40),
        (30, 200, 33),
        (2, 513, 70),
        // One panel: every row-tile height of every ISA, odd and even k, k = 1, k past KC.
        (1, 128, 16),
        (2, 1, 3),
        (7, 2, 16),
        (12, 129, 8),
        (29, 600, 15),
        (1, 3, 1),
    ] {
        let lda = k + 3;
        let ldc = n + 1;
        let a = rng.vec((m - 1) * lda + k);
        let w = rng.vec(n * k);
        let bias = rng.vec(n);
        let packed = pack(&w, n, k);
        let c0 = rng.vec((m - 1) * ldc + n);
        let rows = Rows::new(&a, m, k, lda).unwrap();
        for isa in isas() {
            for accumulate in [false, true] {
                let mut c = c0.clone();
                let product = Product::new(rows, &packed)
                    .bias(Some(&bias))
                    .accumulate(accumulate);
                run(isa, product, &mut c, m, n, ldc);
                for i in 0..m {
                    for j in 0..n {
                        let init = if accumulate {
                            c0[i * ldc + j] + bias[j]
                        } else {
                            bias[j]
                        };
                        let mut chains = [init, 0.0];
                        let split = if n <= 16 { 2 } else { 1 };
                        for kk in 0..k {
                            let (x, y) = (a[i * lda + kk], w[j * k + kk]);
                            let acc = &mut chains[kk % split];
                            *acc = if isa.isa() == Isa::Portable {
                                *acc + x * y
                            } else {
                                x.mul_add(y, *acc)
                            };
                        }
                        let acc = if split == 2 {
                            chains[0] + chains[1]
                        } else {
                            chains[0]
                        };
                        assert_eq!(
                            c[i * ldc + j].to_bits(),
                            acc.to_bits(),
                            "{} accumulate={accumulate} m={m} k={k} n={n} ({i},{j})",
                            isa.isa().name()
                        );
                    }
                }
            }
        }
    }
}

/// Row results must not depend on m or on the row's position in the batch.
#[test]
fn batch_split_bit_identity() {
    let mut rng = Rng(7);
    let total = 257;
    for &(k, n) in &[
        (5, 7),
        (3, 700),
        (33, 17),
        (128, 48),
        (450, 20),
        (12, 130),
        (257, 9),
    ] {
        let lda = k + 1;
        let ldc = n + 2;
        let a = rng.vec(total * lda);
        let w = rng.vec(n * k);
        let bias = rng.vec(n);
        let c0 = rng.vec(total * ldc);
        let packed = pack(&w, n, k);
        for isa in isas() {
            for mode in 0..4 {
                let rows_at = |row0: usize, m: usize, c: &mut [f32]| {
                    let a = Rows::new(&a[row0 * lda..], m, k, lda).unwrap();
                    run(
                        isa,
                        product(mode, a, &packed, &bias),
                        &mut c[row0 * ldc..],
                        m,
                        n,
                        ldc,
                    );
                };
                let mut full = c0.clone();
                rows_at(0, total, &mut full);
                // Splits: all m=1, chunks of 7, and an uneven split, each tiling 0..total.
                let splits: [&[usize]; 4] = [&[1; 257], &[7; 37], &[3, 100, 11, 64, 79], &[256, 1]];
                for split in splits {
                    let mut c = c0.clone();
                    let mut row0 = 0;
                    for &m in split {
                        let m = m.min(total - row0);
                        if m == 0 {
                            break;
                        }
                        rows_at(row0, m, &mut c);
                        row0 += m;
                    }
                    assert_eq!(row0, total);
                    for i in 0..total {
                        for j in 0..n {
                            let idx = i * ldc + j;
                            assert_eq!(
                                c[idx].to_bits(),
                                full[idx].to_bits(),
                                "{} mode {mode} k={k} n={n} split {:?} row {i} col {j}",
                                isa.isa().name(),
                                &split[..split.len().min(5)]
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn detect_is_available() {
    let best = Isa::detect();
    assert!(best.is_available());
    assert!(Isa::Portable.is_available());
    assert!(!best.name().is_empty());
}

/// 16-bit weight storage: a product on bf16 or f16 weights gives bit for bit what it gives on
/// the f32 weights they widen to, on every ISA, with and without the fused ReLU and
/// accumulating, for small-m, blocked and ragged shapes (the widening is exact and the
/// accumulation order is the same).
#[test]
fn half_storage_equals_f32_gemm_on_the_widened_weights() {
    let mut rng = Rng(0x5EED_F00D);
    for storage in [WeightStorage::Bf16, WeightStorage::F16] {
        for &(m, k, n) in &[
            (1, 7, 5),
            (1, 512, 512),
            (3, 33, 40),
            (5, 16, 130),
            (12, 300, 17),
            (37, 600, 70),
            (130, 64, 129),
            (97, 257, 48),
        ] {
            let a = rng.vec(m * k);
            let w = rng.vec(n * k);
            let bias = rng.vec(n);
            let c0 = rng.vec(m * n);
            let half = PackedWeight::pack(&w, n, k, storage).unwrap();
            let widened: Vec<f32> = w.iter().map(|&v| storage.round(v)).collect();
            let packed = pack(&widened, n, k);
            let a = Rows::new(&a, m, k, k).unwrap();
            for isa in isas() {
                for epi in [Epilogue::None, Epilogue::Relu] {
                    let product = |w| Product::new(a, w).bias(Some(&bias)).epilogue(epi);
                    let mut want = vec![0.0; m * n];
                    run(isa, product(&packed), &mut want, m, n, n);
                    let mut got = vec![f32::NAN; m * n];
                    run(isa, product(&half), &mut got, m, n, n);
                    assert!(
                        want.iter()
                            .zip(&got)
                            .all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{storage:?} {isa:?} m={m} k={k} n={n} {epi:?}"
                    );
                }
                let mut want = c0.clone();
                run(
                    isa,
                    Product::new(a, &packed).accumulate(true),
                    &mut want,
                    m,
                    n,
                    n,
                );
                let mut got = c0.clone();
                run(
                    isa,
                    Product::new(a, &half).accumulate(true),
                    &mut got,
                    m,
                    n,
                    n,
                );
                assert!(
                    want.iter()
                        .zip(&got)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "accumulate {storage:?} {isa:?} m={m} k={k} n={n}"
                );
            }
        }
    }
}

/// The conversions round to nearest even and widen exactly: every 16-bit pattern (NaNs
/// aside) survives decode-then-encode, and values between two neighbours round to the nearer.
#[test]
fn half_conversions_round_trip_and_round_to_nearest() {
    type Format = (&'static str, fn(f32) -> u16, fn(u16) -> f32);
    let formats: [Format; 2] = [
        ("bf16", f32_to_bf16, bf16_to_f32),
        ("f16", f32_to_f16, f16_to_f32),
    ];
    for (format, encode, decode) in formats {
        for h in 0..=u16::MAX {
            let v = decode(h);
            if v.is_nan() {
                assert!(decode(encode(v)).is_nan());
                continue;
            }
            assert_eq!(encode(v), h, "{format} {h:#06x}");
            // Just above the midpoint to the next larger magnitude rounds away from v.
            let next = decode(h.wrapping_add(1));
            if next.is_finite() && v.is_finite() && next.abs() > v.abs() && (h & 0x7FFF) != 0 {
                let mid = (v as f64 + next as f64) / 2.0;
                let above = (mid + (next as f64 - v as f64) * 0.01) as f32;
                let below = (mid - (next as f64 - v as f64) * 0.01) as f32;
                assert_eq!(encode(above), h.wrapping_add(1), "{format} {h:#06x} up");
                assert_eq!(encode(below), h, "{format} {h:#06x} down");
            }
        }
    }
    assert_eq!(f32_to_f16(1e6), 0x7C00);
    assert_eq!(f32_to_f16(-1e-9), 0x8000);
    assert_eq!(f32_to_bf16(1.0), 0x3F80);
}

#[test]
fn a_strided_pack_is_the_pack_of_the_strided_matrix() {
    let mut rng = Rng(0x5EED);
    for (n, k) in [
        (1, 1),
        (5, 3),
        (16, 16),
        (17, 96),
        (96, 4),
        (4, 96),
        (300, 7),
    ] {
        // `wt` is `[k][n]`: its transpose, read with strides (1, n), is the `[n][k]` weight.
        let wt = rng.vec(k * n);
        let mut w = vec![0.0; n * k];
        for j in 0..n {
            for kk in 0..k {
                w[j * k + kk] = wt[kk * n + j];
            }
        }
        let strided = PackedWeight::pack_strided(&wt, n, k, (1, n), WeightStorage::F32).unwrap();
        assert_eq!(strided, pack(&w, n, k), "{n}×{k}");
    }
}

/// The loader packs a weight a block of rows at a time, each block into its own panels:
/// blocks that start at multiples of `GROUP_ROWS` give the bytes of one whole pack.
#[test]
fn packing_whole_panel_groups_apart_is_packing_the_whole_weight() {
    let mut rng = Rng(0xB10C);
    for (n, k, block) in [
        (300, 7, GROUP_ROWS),
        (513, 3, 2 * GROUP_ROWS),
        (128, 5, GROUP_ROWS),
    ] {
        let w = rng.vec(n * k);
        for storage in [WeightStorage::F32, WeightStorage::Bf16] {
            let mut parts = WeightPacker::new(n, k, storage);
            for first in (0..n).step_by(block) {
                let rows = block.min(n - first);
                parts
                    .pack_rows(first, &w[first * k..(first + rows) * k])
                    .unwrap();
            }
            let whole = PackedWeight::pack(&w, n, k, storage).unwrap();
            assert_eq!(
                parts.finish(),
                whole,
                "{n}×{k} {storage:?} in blocks of {block}"
            );
        }
    }
}

/// A packed weight knows its shape: a 32×8 and a 16×16 weight pack to the same number of
/// elements, yet each multiplies only activations of its own width into outputs of its own
/// width, and a mismatch (or a bias or output of the wrong size) is an error that leaves the
/// output untouched.
#[test]
fn a_product_whose_shapes_do_not_match_the_weight_is_refused() {
    assert_eq!(packed_len(32, 8), packed_len(16, 16));
    let tall = pack(&vec![1.0; 32 * 8], 32, 8);
    let square = pack(&vec![1.0; 16 * 16], 16, 16);
    let a = vec![1.0; 3 * 16];
    let bias = vec![0.5; 16];
    let a16 = Rows::new(&a, 3, 16, 16).unwrap();
    for isa in isas() {
        let mut c = vec![f32::NAN; 3 * 32];
        let refused = [
            (Product::new(a16, &tall), 32),
            (Product::new(a16, &square), 32),
            (Product::new(a16, &square).bias(Some(&bias[..8])), 16),
        ];
        for (product, n) in refused {
            let out = RowsMut::new(&mut c, 3, n, n).unwrap();
            let err = gemm(isa, product, out).unwrap_err();
            assert!(matches!(err, innfer::Error::BufferLength { .. }), "{err}");
            assert!(c.iter().all(|v| v.is_nan()), "output written");
        }
        let out = RowsMut::new(&mut c, 2, 16, 16).unwrap();
        assert!(
            gemm(isa, Product::new(a16, &square), out).is_err(),
            "row counts differ"
        );
        let out = RowsMut::new(&mut c, 3, 16, 16).unwrap();
        gemm(isa, Product::new(a16, &square).bias(Some(&bias)), out).unwrap();
        assert!(c[..3 * 16].iter().all(|&v| v == 16.5));
        let a8 = Rows::new(&a, 3, 8, 8).unwrap();
        let out = RowsMut::new(&mut c, 3, 32, 32).unwrap();
        gemm(isa, Product::new(a8, &tall), out).unwrap();
        assert!(c.iter().all(|&v| v == 8.0));
    }
    assert!(Rows::new(&a, 4, 16, 16).is_err(), "rows past the end");
    assert!(Rows::new(&a, 2, 16, 8).is_err(), "overlapping rows");
}
