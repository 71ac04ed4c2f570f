//! The chain's channel permutations, chosen so that no channel goes untransformed for long.
//!
//! An AllInOneBlock (or a one-sided coupling) transforms only its second half. With a purely
//! random permutation after each block, a channel stays in the passive half of `k` blocks in a
//! row with probability ≈ 2⁻ᵏ: in a short chain some channel is then never transformed, and the
//! posterior's dependence of that channel on the condition cannot be learned at all (a
//! 4-block cINN on the 10-D Gaussian-linear task failed this way for 2 of 4 seeds). FrEIA
//! draws these permutations uniformly; any permutation is representable in its `w_perm`
//! tensors, so we draw them uniformly *subject to* one rule: a channel that was passive in the
//! last two coupling blocks is sent to the transformed half of the next one (the longest
//! waiting first). Every channel is therefore transformed at least once in any three
//! consecutive blocks (four when `d` is odd: the passive half is then the larger one), and the
//! rest of the mixing stays random.

use alloc::vec::Vec;
use core::ops::Range;

use crate::rng::Rng;

/// Tracks which channel sits where along the chain and for how long it has been passive.
pub(crate) struct Mixing<'r> {
    rng: &'r mut Rng,
    /// `channel[p]`: the original channel at position `p` of the state.
    channel: Vec<usize>,
    /// Consecutive coupling blocks in which each original channel was passive.
    passive_run: Vec<u32>,
}

impl<'r> Mixing<'r> {
    pub(crate) fn new(d: usize, rng: &'r mut Rng) -> Mixing<'r> {
        Mixing {
            rng,
            channel: (0..d).collect(),
            passive_run: alloc::vec![0; d],
        }
    }

    /// A coupling left the positions `passive` unchanged and transformed all others.
    pub(crate) fn coupling(&mut self, passive: Range<usize>) {
        for (p, &c) in self.channel.iter().enumerate() {
            if passive.contains(&p) {
                self.passive_run[c] += 1;
            } else {
                self.passive_run[c] = 0;
            }
        }
    }

    /// The next permutation (`y[i] = x[perm[i]]`), for a following block whose first
    /// `d - d/2` positions are passive.
    pub(crate) fn permutation(&mut self) -> Vec<usize> {
        let d = self.channel.len();
        let first_active = d - d / 2;
        // Positions in random order; those holding an overdue channel go first (the longest
        // overdue first), so they take the transformed slots.
        let mut order = self.rng.permutation(d);
        let run = |p: &usize| self.passive_run[self.channel[*p]];
        order.sort_by_key(|p| core::cmp::Reverse(if run(p) >= 2 { run(p) } else { 0 }));
        let (overdue, rest) = order.split_at(
            order
                .iter()
                .take_while(|&&p| self.passive_run[self.channel[p]] >= 2)
                .count()
                .min(d - first_active),
        );
        // Transformed slots: the overdue channels plus random others; passive slots: the rest.
        let mut active: Vec<usize> = overdue.to_vec();
        let mut others: Vec<usize> = rest.to_vec();
        self.rng.shuffle(&mut others);
        active.extend(others.drain(..(d - first_active) - active.len()));
        self.rng.shuffle(&mut active);
        let perm: Vec<usize> = others.into_iter().chain(active).collect();
        self.channel = perm.iter().map(|&p| self.channel[p]).collect();
        perm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Follows `blocks` AllInOne-style blocks (first `d - d/2` positions passive, then a
    /// permutation) and returns, per original channel, the blocks in which it was transformed.
    fn transformed_blocks(d: usize, blocks: usize, seed: u64) -> Vec<Vec<usize>> {
        let mut rng = Rng::new(seed, 1);
        let mut mixing = Mixing::new(d, &mut rng);
        let mut out = alloc::vec![Vec::new(); d];
        for b in 0..blocks {
            for p in d - d / 2..d {
                out[mixing.channel[p]].push(b);
            }
            mixing.coupling(0..d - d / 2);
            let perm = mixing.permutation();
            let mut sorted = perm.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..d).collect::<Vec<_>>(), "not a permutation");
        }
        out
    }

    #[test]
    fn every_channel_is_transformed_in_any_three_consecutive_blocks_four_if_d_is_odd() {
        for d in [2, 3, 4, 5, 10, 17] {
            let window = if d % 2 == 0 { 3 } else { 4 };
            for seed in 0..50 {
                let seen = transformed_blocks(d, 16, seed);
                for (c, blocks) in seen.iter().enumerate() {
                    for start in 0..=16 - window {
                        assert!(
                            blocks.iter().any(|b| (start..start + window).contains(b)),
                            "d {d} seed {seed}: channel {c} untouched in blocks {start}..{}",
                            start + window
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_permutations_still_mix_channels_at_random() {
        // Over seeds, channel 0 lands in every position of the next block.
        let d = 10;
        let mut positions = alloc::collections::BTreeSet::new();
        for seed in 0..200 {
            let mut rng = Rng::new(seed, 1);
            let mut mixing = Mixing::new(d, &mut rng);
            mixing.coupling(0..5);
            let perm = mixing.permutation();
            positions.insert(perm.iter().position(|&p| p == 0).unwrap());
        }
        assert_eq!(positions.len(), d);
    }
}
