//! The crate is `no_std`; its `std` modules (training, tasks, metrics, `.npy` I/O, the
//! random stream) start with `use crate::prelude::*;` for the std prelude.

pub(crate) use std::prelude::rust_2024::*;
pub(crate) use std::{format, vec};
