//! Memory while loading: every allocation whose size comes from a file (or from a caller's
//! `max_batch`) is fallible, and loading's allocations together stay within the caller's
//! limit ([`crate::model::LoadOptions::max_bytes`]), so a hostile file ends in
//! [`Error::OutOfMemory`], never in an allocation failure that aborts the host.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::Cell;

use crate::error::{Error, Result};

/// Room in `v` for `more` further elements (grown as `Vec::reserve` grows), or
/// [`Error::OutOfMemory`] naming `what` if the allocator refuses.
pub(crate) fn try_reserve<T>(what: &str, v: &mut Vec<T>, more: usize) -> Result<()> {
    v.try_reserve(more).map_err(|_| {
        Error::out_of_memory(
            format_args!("{}", what),
            more.saturating_mul(core::mem::size_of::<T>()),
            None,
        )
    })
}

/// An empty vector with room for `len` elements, or [`Error::OutOfMemory`] naming `what` if
/// the allocator refuses.
pub(crate) fn try_with_capacity<T>(what: &str, len: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        Error::out_of_memory(
            format_args!("{}", what),
            len.saturating_mul(core::mem::size_of::<T>()),
            None,
        )
    })?;
    Ok(v)
}

/// `args` formatted into a string, or [`Error::OutOfMemory`] naming `what`.
pub(crate) fn try_format(what: &str, args: core::fmt::Arguments<'_>) -> Result<String> {
    crate::error::try_message(args)
        .ok_or_else(|| Error::out_of_memory(format_args!("{what}"), 0, None))
}

/// A copy of `s`, or [`Error::OutOfMemory`] naming `what`.
pub(crate) fn try_string(what: &str, s: &str) -> Result<String> {
    try_format(what, format_args!("{s}"))
}

/// The items of `iter` in a vector, or [`Error::OutOfMemory`] naming `what`.
pub(crate) fn try_collect<T>(what: &str, iter: impl ExactSizeIterator<Item = T>) -> Result<Vec<T>> {
    let mut v = try_with_capacity(what, iter.len())?;
    v.extend(iter);
    Ok(v)
}

/// `len` copies of `value`, or [`Error::OutOfMemory`] naming `what` if the allocator refuses.
pub(crate) fn try_vec<T: Clone>(what: &str, len: usize, value: T) -> Result<Vec<T>> {
    let mut v = try_with_capacity(what, len)?;
    v.resize(len, value);
    Ok(v)
}

/// `len` zeros, allocated zeroed (so the pages of a large buffer are not touched until used,
/// as with `vec![0.0; len]`), or [`Error::OutOfMemory`] naming `what`.
pub(crate) fn try_zeroed_f32(what: &str, len: usize) -> Result<Vec<f32>> {
    let out_of_memory =
        || Error::out_of_memory(format_args!("{}", what), len.saturating_mul(4), None);
    let layout = core::alloc::Layout::array::<f32>(len).map_err(|_| out_of_memory())?;
    if layout.size() == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return Err(out_of_memory());
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `[f32; len]`,
    // and its `len` elements are initialised (all-zero bytes are 0.0).
    Ok(unsafe { Vec::from_raw_parts(ptr.cast::<f32>(), len, len) })
}

/// The bytes loading may still allocate: each allocation is charged before it is made, and
/// nothing is given back (a freed temporary still counts), so the limit bounds the sum of
/// everything loading allocates and hence its peak.
///
/// It also counts the multiply-adds loading's own checks and products perform (the inverse
/// probes, determinants, Householder products), so that tests can hold loading to a constant
/// times the file's size (docs/format.md §8, "Time").
pub(crate) struct Budget {
    limit: usize,
    charged: Cell<usize>,
    work: Cell<u64>,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Budget {
        Budget {
            limit,
            charged: Cell::new(0),
            work: Cell::new(0),
        }
    }

    /// Counts `n` multiply-adds done by loading.
    pub(crate) fn count_work(&self, n: usize) {
        self.work.set(self.work.get().saturating_add(n as u64));
    }

    /// Multiply-adds counted so far.
    pub(crate) fn work(&self) -> u64 {
        self.work.get()
    }

    /// Charges `count` elements of `T` for `what` (named by the closure, built only on error).
    pub(crate) fn charge<T>(&self, what: impl FnOnce() -> String, count: usize) -> Result<()> {
        let bytes = count.saturating_mul(core::mem::size_of::<T>());
        let total = self.charged.get().saturating_add(bytes);
        if total > self.limit {
            return Err(Error::OutOfMemory {
                what: what(),
                bytes,
                limit: Some(self.limit),
            });
        }
        self.charged.set(total);
        Ok(())
    }

    /// [`try_with_capacity`], charged.
    pub(crate) fn with_capacity<T>(&self, what: &str, len: usize) -> Result<Vec<T>> {
        self.charge::<T>(|| what.to_string(), len)?;
        try_with_capacity(what, len)
    }

    /// [`try_vec`], charged.
    #[cfg(feature = "std")]
    pub(crate) fn vec<T: Clone>(&self, what: &str, len: usize, value: T) -> Result<Vec<T>> {
        self.charge::<T>(|| what.to_string(), len)?;
        try_vec(what, len, value)
    }

    /// Bytes charged so far.
    #[cfg(test)]
    pub(crate) fn charged(&self) -> usize {
        self.charged.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_past_the_limit_is_refused_and_not_counted() {
        let budget = Budget::new(100);
        budget.charge::<f32>(|| "a".into(), 20).unwrap();
        match budget.charge::<f32>(|| "b".into(), 6) {
            Err(Error::OutOfMemory {
                what,
                bytes: 24,
                limit: Some(100),
            }) => assert_eq!(what, "b"),
            other => panic!("{other:?}"),
        }
        assert_eq!(budget.charged(), 80);
        budget.charge::<f32>(|| "c".into(), 5).unwrap();
        assert_eq!(budget.charged(), 100);
    }

    #[test]
    fn zeroed_buffers_are_zero_and_refused_when_too_large() {
        assert!(try_zeroed_f32("z", 1000).unwrap().iter().all(|&v| v == 0.0));
        assert!(try_zeroed_f32("z", 0).unwrap().is_empty());
        assert!(matches!(
            try_zeroed_f32("z", usize::MAX / 4),
            Err(Error::OutOfMemory { limit: None, .. })
        ));
    }

    #[test]
    fn an_allocation_the_allocator_cannot_make_is_an_error() {
        match try_vec("huge", usize::MAX / 8, 0.0f64) {
            Err(Error::OutOfMemory {
                what, limit: None, ..
            }) => assert_eq!(what, "huge"),
            other => panic!("{:?}", other.map(|v| v.len())),
        }
    }
}
