//! Packed images: a model laid out as its kernels read it, for flash or a mapped file
//! (docs/format.md, "Packed images").

pub(crate) mod array;
