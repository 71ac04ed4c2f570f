//! The narrow kernel's k-loops for Cortex-M cores with a single-precision FPU (M4F, M7, M33;
//! bare-metal hard-float targets), in assembly: what LLVM made of the Rust loops spilled and
//! shuffled registers (3.5 instructions per multiply-add at batch 1), these keep every sum and
//! weight in the 32 single-precision registers and load a whole k-row of a panel with one
//! `vldmia`: 1.3 to 2 instructions per multiply-add.
//!
//! Each step is one `vmla.f32 acc, a, w`: the product rounded, then the sum rounded (the
//! FPU's chained multiply-accumulate, not the fused `vfma`), so exactly the portable kernel's
//! `acc + a·w`, in the same k order and the same chains (the contract of the parent module):
//! the results are bit for bit those of every other target's narrow and portable kernels.
//! f16 weights are widened by the FPU's `vcvtb`/`vcvtt.f32.f16` (exact, as the software
//! conversion of src/kernels/half.rs is); bf16 weights run the Rust loops.
//!
//! Each routine takes the accumulators in memory (loaded and stored back once per tile) and
//! walks the activations and the panel's k-rows, which lie back to back (a whole panel, or a
//! last panel as wide as the tile). The Rust side is in `narrow.rs`.

use super::WeightStorage;

core::arch::global_asm!(
    ".syntax unified",
    ".thumb",
    // Every instruction below is in FPv4-SP (M4F), and so in M7's and M33's FPUs too; said
    // here because module assembly (after LTO) may not see the crate's target features.
    ".fpu fpv4-sp-d16",
    // innfer_narrow_f32x8(acc: *mut [f32; 8], a: *const f32, w: *const f32, k: u32):
    // 8 sums over k steps, one chain: two steps an iteration (two k-rows, 16 weights, in one
    // load), then the last step if k is odd.
    ".section .text.innfer_narrow_f32x8,\"ax\",%progbits",
    ".global innfer_narrow_f32x8",
    ".hidden innfer_narrow_f32x8",
    ".type innfer_narrow_f32x8,%function",
    ".thumb_func",
    ".p2align 2",
    "innfer_narrow_f32x8:",
    "    vpush {{s16-s31}}",
    "    vldmia r0, {{s8-s15}}",
    "    lsrs r12, r3, #1",
    "    beq 2f",
    "1:",
    "    vldmia r1!, {{s0-s1}}",
    "    vldmia r2!, {{s16-s31}}",
    "    vmla.f32 s8, s0, s16",
    "    vmla.f32 s9, s0, s17",
    "    vmla.f32 s10, s0, s18",
    "    vmla.f32 s11, s0, s19",
    "    vmla.f32 s12, s0, s20",
    "    vmla.f32 s13, s0, s21",
    "    vmla.f32 s14, s0, s22",
    "    vmla.f32 s15, s0, s23",
    "    vmla.f32 s8, s1, s24",
    "    vmla.f32 s9, s1, s25",
    "    vmla.f32 s10, s1, s26",
    "    vmla.f32 s11, s1, s27",
    "    vmla.f32 s12, s1, s28",
    "    vmla.f32 s13, s1, s29",
    "    vmla.f32 s14, s1, s30",
    "    vmla.f32 s15, s1, s31",
    "    subs r12, r12, #1",
    "    bne 1b",
    "2:",
    "    tst r3, #1",
    "    beq 3f",
    "    vldmia r1!, {{s0}}",
    "    vldmia r2!, {{s16-s23}}",
    "    vmla.f32 s8, s0, s16",
    "    vmla.f32 s9, s0, s17",
    "    vmla.f32 s10, s0, s18",
    "    vmla.f32 s11, s0, s19",
    "    vmla.f32 s12, s0, s20",
    "    vmla.f32 s13, s0, s21",
    "    vmla.f32 s14, s0, s22",
    "    vmla.f32 s15, s0, s23",
    "3:",
    "    vstmia r0, {{s8-s15}}",
    "    vpop {{s16-s31}}",
    "    bx lr",
    ".size innfer_narrow_f32x8, . - innfer_narrow_f32x8",
    // innfer_narrow_f32x8_pairs(acc: *mut [f32; 16], a, w, pairs: u32): the even sums
    // acc[0..8] take steps 0, 2, 4, ..., the odd ones acc[8..16] steps 1, 3, 5, ...
    ".section .text.innfer_narrow_f32x8_pairs,\"ax\",%progbits",
    ".global innfer_narrow_f32x8_pairs",
    ".hidden innfer_narrow_f32x8_pairs",
    ".type innfer_narrow_f32x8_pairs,%function",
    ".thumb_func",
    ".p2align 2",
    "innfer_narrow_f32x8_pairs:",
    "    vpush {{s16-s25}}",
    "    vldmia r0, {{s0-s15}}",
    "    cmp r3, #0",
    "    beq 2f",
    "1:",
    "    vldmia r1!, {{s16-s17}}",
    "    vldmia r2!, {{s18-s25}}",
    "    vmla.f32 s0, s16, s18",
    "    vmla.f32 s1, s16, s19",
    "    vmla.f32 s2, s16, s20",
    "    vmla.f32 s3, s16, s21",
    "    vmla.f32 s4, s16, s22",
    "    vmla.f32 s5, s16, s23",
    "    vmla.f32 s6, s16, s24",
    "    vmla.f32 s7, s16, s25",
    "    vldmia r2!, {{s18-s25}}",
    "    vmla.f32 s8, s17, s18",
    "    vmla.f32 s9, s17, s19",
    "    vmla.f32 s10, s17, s20",
    "    vmla.f32 s11, s17, s21",
    "    vmla.f32 s12, s17, s22",
    "    vmla.f32 s13, s17, s23",
    "    vmla.f32 s14, s17, s24",
    "    vmla.f32 s15, s17, s25",
    "    subs r3, r3, #1",
    "    bne 1b",
    "2:",
    "    vstmia r0, {{s0-s15}}",
    "    vpop {{s16-s25}}",
    "    bx lr",
    ".size innfer_narrow_f32x8_pairs, . - innfer_narrow_f32x8_pairs",
    // innfer_narrow_f32x4_pairs(acc: *mut [f32; 8], a, w, pairs): as above, 4 columns.
    ".section .text.innfer_narrow_f32x4_pairs,\"ax\",%progbits",
    ".global innfer_narrow_f32x4_pairs",
    ".hidden innfer_narrow_f32x4_pairs",
    ".type innfer_narrow_f32x4_pairs,%function",
    ".thumb_func",
    ".p2align 2",
    "innfer_narrow_f32x4_pairs:",
    "    vldmia r0, {{s0-s7}}",
    "    cmp r3, #0",
    "    beq 2f",
    "1:",
    "    vldmia r1!, {{s8-s9}}",
    "    vldmia r2!, {{s10-s13}}",
    "    vmla.f32 s0, s8, s10",
    "    vmla.f32 s1, s8, s11",
    "    vmla.f32 s2, s8, s12",
    "    vmla.f32 s3, s8, s13",
    "    vldmia r2!, {{s10-s13}}",
    "    vmla.f32 s4, s9, s10",
    "    vmla.f32 s5, s9, s11",
    "    vmla.f32 s6, s9, s12",
    "    vmla.f32 s7, s9, s13",
    "    subs r3, r3, #1",
    "    bne 1b",
    "2:",
    "    vstmia r0, {{s0-s7}}",
    "    bx lr",
    ".size innfer_narrow_f32x4_pairs, . - innfer_narrow_f32x4_pairs",
    // innfer_narrow_f32x2_pairs(acc: *mut [f32; 4], a, w, pairs): as above, 2 columns (a
    // subnet's last layer on a 2-wide coupling half).
    ".section .text.innfer_narrow_f32x2_pairs,\"ax\",%progbits",
    ".global innfer_narrow_f32x2_pairs",
    ".hidden innfer_narrow_f32x2_pairs",
    ".type innfer_narrow_f32x2_pairs,%function",
    ".thumb_func",
    ".p2align 2",
    "innfer_narrow_f32x2_pairs:",
    "    vldmia r0, {{s0-s3}}",
    "    cmp r3, #0",
    "    beq 2f",
    "1:",
    "    vldmia r1!, {{s4-s5}}",
    "    vldmia r2!, {{s6-s9}}",
    "    vmla.f32 s0, s4, s6",
    "    vmla.f32 s1, s4, s7",
    "    vmla.f32 s2, s5, s8",
    "    vmla.f32 s3, s5, s9",
    "    subs r3, r3, #1",
    "    bne 1b",
    "2:",
    "    vstmia r0, {{s0-s3}}",
    "    bx lr",
    ".size innfer_narrow_f32x2_pairs, . - innfer_narrow_f32x2_pairs",
    // innfer_narrow_f16x8(acc: *mut [f32; 8], a, w: *const u16, k): as innfer_narrow_f32x8,
    // the weights f16 (two to a word, the first in the bottom half), widened exactly by the
    // FPU's vcvtb/vcvtt.f32.f16 (the half-precision conversions of FPv4-SP).
    ".section .text.innfer_narrow_f16x8,\"ax\",%progbits",
    ".global innfer_narrow_f16x8",
    ".hidden innfer_narrow_f16x8",
    ".type innfer_narrow_f16x8,%function",
    ".thumb_func",
    ".p2align 2",
    "innfer_narrow_f16x8:",
    "    vpush {{s16-s27}}",
    "    vldmia r0, {{s8-s15}}",
    "    cmp r3, #0",
    "    beq 2f",
    "1:",
    "    vldmia r1!, {{s0}}",
    "    vldmia r2!, {{s16-s19}}",
    "    vcvtb.f32.f16 s20, s16",
    "    vcvtt.f32.f16 s21, s16",
    "    vcvtb.f32.f16 s22, s17",
    "    vcvtt.f32.f16 s23, s17",
    "    vcvtb.f32.f16 s24, s18",
    "    vcvtt.f32.f16 s25, s18",
    "    vcvtb.f32.f16 s26, s19",
    "    vcvtt.f32.f16 s27, s19",
    "    vmla.f32 s8, s0, s20",
    "    vmla.f32 s9, s0, s21",
    "    vmla.f32 s10, s0, s22",
    "    vmla.f32 s11, s0, s23",
    "    vmla.f32 s12, s0, s24",
    "    vmla.f32 s13, s0, s25",
    "    vmla.f32 s14, s0, s26",
    "    vmla.f32 s15, s0, s27",
    "    subs r3, r3, #1",
    "    bne 1b",
    "2:",
    "    vstmia r0, {{s8-s15}}",
    "    vpop {{s16-s27}}",
    "    bx lr",
    ".size innfer_narrow_f16x8, . - innfer_narrow_f16x8",
    // innfer_narrow_f16x8_pairs(acc: *mut [f32; 16], a, w: *const u16, pairs): as
    // innfer_narrow_f32x8_pairs, the weights f16.
    ".section .text.innfer_narrow_f16x8_pairs,\"ax\",%progbits",
    ".global innfer_narrow_f16x8_pairs",
    ".hidden innfer_narrow_f16x8_pairs",
    ".type innfer_narrow_f16x8_pairs,%function",
    ".thumb_func",
    ".p2align 2",
    "innfer_narrow_f16x8_pairs:",
    "    vpush {{s16-s29}}",
    "    vldmia r0, {{s0-s15}}",
    "    cmp r3, #0",
    "    beq 2f",
    "1:",
    "    vldmia r1!, {{s16-s17}}",
    "    vldmia r2!, {{s18-s21}}",
    "    vcvtb.f32.f16 s22, s18",
    "    vcvtt.f32.f16 s23, s18",
    "    vcvtb.f32.f16 s24, s19",
    "    vcvtt.f32.f16 s25, s19",
    "    vcvtb.f32.f16 s26, s20",
    "    vcvtt.f32.f16 s27, s20",
    "    vcvtb.f32.f16 s28, s21",
    "    vcvtt.f32.f16 s29, s21",
    "    vmla.f32 s0, s16, s22",
    "    vmla.f32 s1, s16, s23",
    "    vmla.f32 s2, s16, s24",
    "    vmla.f32 s3, s16, s25",
    "    vmla.f32 s4, s16, s26",
    "    vmla.f32 s5, s16, s27",
    "    vmla.f32 s6, s16, s28",
    "    vmla.f32 s7, s16, s29",
    "    vldmia r2!, {{s18-s21}}",
    "    vcvtb.f32.f16 s22, s18",
    "    vcvtt.f32.f16 s23, s18",
    "    vcvtb.f32.f16 s24, s19",
    "    vcvtt.f32.f16 s25, s19",
    "    vcvtb.f32.f16 s26, s20",
    "    vcvtt.f32.f16 s27, s20",
    "    vcvtb.f32.f16 s28, s21",
    "    vcvtt.f32.f16 s29, s21",
    "    vmla.f32 s8, s17, s22",
    "    vmla.f32 s9, s17, s23",
    "    vmla.f32 s10, s17, s24",
    "    vmla.f32 s11, s17, s25",
    "    vmla.f32 s12, s17, s26",
    "    vmla.f32 s13, s17, s27",
    "    vmla.f32 s14, s17, s28",
    "    vmla.f32 s15, s17, s29",
    "    subs r3, r3, #1",
    "    bne 1b",
    "2:",
    "    vstmia r0, {{s0-s15}}",
    "    vpop {{s16-s29}}",
    "    bx lr",
    ".size innfer_narrow_f16x8_pairs, . - innfer_narrow_f16x8_pairs",
    // innfer_narrow_f16x2_pairs(acc: *mut [f32; 4], a, w: *const u16, pairs): as
    // innfer_narrow_f32x2_pairs, the weights f16 (a k-row is one word).
    ".section .text.innfer_narrow_f16x2_pairs,\"ax\",%progbits",
    ".global innfer_narrow_f16x2_pairs",
    ".hidden innfer_narrow_f16x2_pairs",
    ".type innfer_narrow_f16x2_pairs,%function",
    ".thumb_func",
    ".p2align 2",
    "innfer_narrow_f16x2_pairs:",
    "    vldmia r0, {{s0-s3}}",
    "    cmp r3, #0",
    "    beq 2f",
    "1:",
    "    vldmia r1!, {{s4-s5}}",
    "    vldmia r2!, {{s6-s7}}",
    "    vcvtb.f32.f16 s8, s6",
    "    vcvtt.f32.f16 s9, s6",
    "    vcvtb.f32.f16 s10, s7",
    "    vcvtt.f32.f16 s11, s7",
    "    vmla.f32 s0, s4, s8",
    "    vmla.f32 s1, s4, s9",
    "    vmla.f32 s2, s5, s10",
    "    vmla.f32 s3, s5, s11",
    "    subs r3, r3, #1",
    "    bne 1b",
    "2:",
    "    vstmia r0, {{s0-s3}}",
    "    bx lr",
    ".size innfer_narrow_f16x2_pairs, . - innfer_narrow_f16x2_pairs",
    ".text",
);

unsafe extern "C" {
    fn innfer_narrow_f32x8(acc: *mut f32, a: *const f32, w: *const u8, k: u32);
    fn innfer_narrow_f32x8_pairs(acc: *mut f32, a: *const f32, w: *const u8, pairs: u32);
    fn innfer_narrow_f32x4_pairs(acc: *mut f32, a: *const f32, w: *const u8, pairs: u32);
    fn innfer_narrow_f32x2_pairs(acc: *mut f32, a: *const f32, w: *const u8, pairs: u32);
    fn innfer_narrow_f16x8(acc: *mut f32, a: *const f32, w: *const u8, k: u32);
    fn innfer_narrow_f16x8_pairs(acc: *mut f32, a: *const f32, w: *const u8, pairs: u32);
    fn innfer_narrow_f16x2_pairs(acc: *mut f32, a: *const f32, w: *const u8, pairs: u32);
}

/// Runs the first k-steps of a `W`-column tile of weights in storage `S` in `SPLIT` chains
/// (`even`, and `odd` for two) with a routine above, if there is one for them: all k steps
/// for one chain, the whole pairs for two (the last, odd step is left to the caller).
/// Returns the steps done (0: none, the caller does them all).
///
/// # Safety
/// `a` holds `k` f32 and `w` the tile's `k` k-rows of `W` elements back to back, both 4-byte
/// aligned.
#[inline(always)]
pub(super) unsafe fn steps<const S: u8, const W: usize, const SPLIT: usize>(
    even: &mut [f32; W],
    odd: &mut [f32; W],
    a: *const f32,
    w: *const u8,
    k: usize,
) -> usize {
    type Routine = unsafe extern "C" fn(*mut f32, *const f32, *const u8, u32);
    let Ok(count) = u32::try_from(if SPLIT == 1 { k } else { k / 2 }) else {
        return 0;
    };
    let f16 = match const { WeightStorage::from_code(S) } {
        WeightStorage::F32 => false,
        WeightStorage::F16 => true,
        WeightStorage::Bf16 => return 0,
    };
    let run: Routine = match (W, SPLIT, f16) {
        (8, 1, _) => {
            let one = if f16 {
                innfer_narrow_f16x8
            } else {
                innfer_narrow_f32x8
            };
            // SAFETY: `even` holds the 8 sums; `a` and `w` the k steps (caller contract).
            unsafe { one(even.as_mut_ptr(), a, w, count) };
            return k;
        }
        (8, 2, false) => innfer_narrow_f32x8_pairs,
        (8, 2, true) => innfer_narrow_f16x8_pairs,
        (4, 2, false) => innfer_narrow_f32x4_pairs,
        (2, 2, false) => innfer_narrow_f32x2_pairs,
        (2, 2, true) => innfer_narrow_f16x2_pairs,
        _ => return 0,
    };
    // The even sums, then the odd ones, as the pair routines take them.
    let mut both = [0.0f32; 16];
    both[..W].copy_from_slice(even);
    both[W..2 * W].copy_from_slice(odd);
    // SAFETY: `both` holds the 2·W sums the routine reads and writes; `a` and `w` the
    // 2·count steps (caller contract).
    unsafe { run(both.as_mut_ptr(), a, w, count) };
    even.copy_from_slice(&both[..W]);
    odd.copy_from_slice(&both[W..2 * W]);
    2 * count as usize
}
