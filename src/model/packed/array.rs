//! [`Array`]: the arrays a model holds, either its own (loaded from a `.safetensors` file, on
//! the heap) or lying in memory it does not own (a packed image's values, or the descriptors
//! built in the caller's memory by `Model::from_image`), so that a model built from an image
//! makes no allocator call at all.

use alloc::vec::Vec;
use core::ops::Deref;

/// A model's array of `T`: its own `Vec`, or a slice of memory that lives as long as the model
/// (`'static` stands for "as long as the model": an image and descriptor memory the caller
/// keeps valid, see `Model::from_image`). Dropping a borrowed array frees and drops nothing.
pub(crate) enum Array<T: 'static> {
    Owned(Vec<T>),
    Borrowed(&'static [T]),
}

impl<T> Deref for Array<T> {
    type Target = [T];

    #[inline(always)]
    fn deref(&self) -> &[T] {
        match self {
            Array::Owned(v) => v,
            Array::Borrowed(s) => s,
        }
    }
}

impl<T: Clone> Array<T> {
    /// The array as a `Vec` to change, copied from borrowed memory first if need be (as
    /// `Cow::to_mut`).
    pub(crate) fn to_mut(&mut self) -> &mut Vec<T> {
        if let Array::Borrowed(s) = self {
            *self = Array::Owned(s.to_vec());
        }
        match self {
            Array::Owned(v) => v,
            Array::Borrowed(_) => unreachable!("made owned above"),
        }
    }
}

impl<T> From<Vec<T>> for Array<T> {
    fn from(v: Vec<T>) -> Array<T> {
        Array::Owned(v)
    }
}

impl<T> Default for Array<T> {
    fn default() -> Array<T> {
        Array::Borrowed(&[])
    }
}

impl<T: Clone> Clone for Array<T> {
    fn clone(&self) -> Array<T> {
        match self {
            Array::Owned(v) => Array::Owned(v.clone()),
            Array::Borrowed(s) => Array::Borrowed(s),
        }
    }
}

impl<T: core::fmt::Debug> core::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

/// Equal elements, wherever they lie.
impl<T: PartialEq> PartialEq for Array<T> {
    fn eq(&self, other: &Array<T>) -> bool {
        **self == **other
    }
}

impl<'a, T> IntoIterator for &'a Array<T> {
    type Item = &'a T;
    type IntoIter = core::slice::Iter<'a, T>;

    fn into_iter(self) -> core::slice::Iter<'a, T> {
        self.iter()
    }
}

impl<T> FromIterator<T> for Array<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Array<T> {
        Array::Owned(iter.into_iter().collect())
    }
}
