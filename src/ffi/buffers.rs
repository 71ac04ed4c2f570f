//! Raw caller buffers → checked slices.
//!
//! The extent each (possibly strided) buffer spans is computed with checked arithmetic, the
//! pointer is checked for NULL and `float` alignment, outputs are checked not to overlap any
//! other buffer of the call, and only then are slices built.

use super::status::Fail;

/// One caller buffer of `f32`: its pointer and the number of elements it spans.
#[derive(Clone, Copy)]
pub(crate) struct Buf {
    pub(crate) name: &'static str,
    /// The caller's pointer itself, not its address: a slice made from an address cast back
    /// to a pointer has no provenance, which Miri (scripts/miri.sh) can then not check.
    pub(crate) ptr: *const f32,
    pub(crate) len: usize,
    pub(crate) output: bool,
}

/// Elements spanned by a `rows × cols` matrix with element strides `(rs, cs)`.
pub(crate) fn extent(
    name: &'static str,
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
) -> Result<usize, Fail> {
    if rs < 0 || cs < 0 {
        return Err(Fail::Invalid(name, "strides must be >= 0"));
    }
    if rows == 0 || cols == 0 {
        return Ok(0);
    }
    let ext = (rows - 1)
        .checked_mul(rs as usize)
        .and_then(|a| {
            (cols - 1)
                .checked_mul(cs as usize)
                .and_then(|b| a.checked_add(b))
        })
        .and_then(|last| last.checked_add(1))
        .ok_or(Fail::Invalid(name, "the extent of the buffer overflows"))?;
    check_len(name, ext)
}

/// `a · b` elements, checked.
pub(crate) fn product(name: &'static str, a: usize, b: usize) -> Result<usize, Fail> {
    let n = a
        .checked_mul(b)
        .ok_or(Fail::Invalid(name, "the size of the buffer overflows"))?;
    check_len(name, n)
}

fn check_len(name: &'static str, len: usize) -> Result<usize, Fail> {
    if len > isize::MAX as usize / core::mem::size_of::<f32>() {
        return Err(Fail::Invalid(name, "the buffer is larger than memory"));
    }
    Ok(len)
}

impl Buf {
    /// A buffer of `len` elements at `ptr`; NULL is allowed only when `len == 0`.
    pub(crate) fn new(
        name: &'static str,
        ptr: *const f32,
        len: usize,
        output: bool,
    ) -> Result<Buf, Fail> {
        if len > 0 {
            if ptr.is_null() {
                return Err(Fail::Null(name));
            }
            if (ptr as usize) & (core::mem::align_of::<f32>() - 1) != 0 {
                return Err(Fail::Invalid(name, "pointer is not aligned to float"));
            }
            let bytes = len * core::mem::size_of::<f32>();
            if (ptr as usize).checked_add(bytes).is_none() {
                return Err(Fail::Invalid(
                    name,
                    "the buffer wraps around the address space",
                ));
            }
        }
        Ok(Buf {
            name,
            ptr,
            len,
            output,
        })
    }

    fn addr(&self) -> usize {
        self.ptr.addr()
    }

    fn end(&self) -> usize {
        self.addr() + self.len * core::mem::size_of::<f32>()
    }

    fn overlaps(&self, other: &Buf) -> bool {
        self.len > 0 && other.len > 0 && self.addr() < other.end() && other.addr() < self.end()
    }

    /// The elements as a shared slice.
    ///
    /// # Safety
    /// The caller guarantees `len` readable floats at `ptr` for `'a`, not written through any
    /// other reference meanwhile (outputs are checked disjoint by [`disjoint`]).
    pub(crate) unsafe fn input<'a>(self) -> &'a [f32] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: non-NULL, aligned, in one address range (checked in `new`); the caller
        // guarantees the memory.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The elements as a unique slice.
    ///
    /// # Safety
    /// As [`Buf::input`], and no other reference to these floats exists for `'a`.
    pub(crate) unsafe fn output<'a>(self) -> &'a mut [f32] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: as above; uniqueness is checked by `disjoint` and guaranteed by the caller.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.cast_mut(), self.len) }
    }
}

/// Fails if an output buffer overlaps any other buffer of the call.
pub(crate) fn disjoint(bufs: &[Buf]) -> Result<(), Fail> {
    for (i, a) in bufs.iter().enumerate() {
        for b in &bufs[i + 1..] {
            if (a.output || b.output) && a.overlaps(b) {
                let name = if a.output { a.name } else { b.name };
                return Err(Fail::Invalid(name, "output buffer overlaps another buffer"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents() {
        assert_eq!(extent("a", 3, 4, 4, 1).unwrap(), 12);
        assert_eq!(extent("a", 3, 4, 1, 3).unwrap(), 12);
        assert_eq!(extent("a", 0, 4, 4, 1).unwrap(), 0);
        assert_eq!(extent("a", 5, 2, 0, 1).unwrap(), 2);
        assert!(extent("a", 3, 4, -1, 1).is_err());
        assert!(extent("a", usize::MAX, 4, 4, 1).is_err());
        assert!(extent("a", 2, 2, isize::MAX, 1).is_err());
    }
}
