//! The C library of innfer: the innfer crate's C API (its `ffi` module, declared in
//! include/innfer.h) built as libinnfer.a and libinnfer.so.
//!
//! Everything callable from C is defined in the innfer crate; this crate only gives it the
//! static and shared library forms, so that innfer itself stays a plain Rust library. The
//! re-export keeps the C functions reachable from this crate, which is what makes the shared
//! library export them.
#![no_std]

pub use innfer::ffi::*;
