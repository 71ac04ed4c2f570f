//! PLACEHOLDER (replaced by the real kernels): reference GEMM with the final API.
pub const NR: usize = 16;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    Portable,
    Avx2Fma,
    Avx512,
}
impl Isa {
    pub fn detect() -> Isa {
        Isa::Portable
    }
    pub fn is_available(self) -> bool {
        self == Isa::Portable
    }
    pub fn name(self) -> &'static str {
        "portable"
    }
}
pub fn packed_len(n: usize, k: usize) -> usize {
    n.div_ceil(NR) * NR * k
}
pub fn pack_weight(w: &[f32], n: usize, k: usize, out: &mut [f32]) {
    for p in 0..n.div_ceil(NR) {
        for kk in 0..k {
            for c in 0..NR {
                let j = p * NR + c;
                out[p * NR * k + kk * NR + c] = if j < n { w[j * k + kk] } else { 0.0 };
            }
        }
    }
}
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    _isa: Isa,
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
    for i in 0..m {
        for j in 0..n {
            let (p, cc) = (j / NR, j % NR);
            let mut acc = 0.0f32;
            for kk in 0..k {
                acc += a[i * lda + kk] * packed[p * NR * k + kk * NR + cc];
            }
            c[i * ldc + j] = acc + bias.map_or(0.0, |b| b[j]);
        }
    }
}
#[allow(clippy::too_many_arguments)]
pub fn gemm_accumulate(
    _isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    packed: &[f32],
    _bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
) {
    for i in 0..m {
        for j in 0..n {
            let (p, cc) = (j / NR, j % NR);
            let mut acc = 0.0f32;
            for kk in 0..k {
                acc += a[i * lda + kk] * packed[p * NR * k + kk * NR + cc];
            }
            c[i * ldc + j] += acc;
        }
    }
}
