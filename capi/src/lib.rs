//! The C library of innfer: the innfer crate's C API (its `ffi` module, declared in
//! include/innfer.h) built as libinnfer.a and libinnfer.so.
//!
//! Everything callable from C is defined in the innfer crate; this crate only gives it the
//! static and shared library forms, so that innfer itself stays a plain Rust library. Linking
//! the crate is all it takes: the static library bundles its objects, and the shared library
//! exports every `#[unsafe(no_mangle)]` function of the crates it links
//! (tests/c_library.rs checks both against the header).
#![no_std]

extern crate innfer;
