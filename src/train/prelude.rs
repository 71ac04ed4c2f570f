//! The crate is `no_std`; the training mode needs `std`. Every train module starts with
//! `use crate::train::prelude::*;`.

pub(crate) use std::prelude::rust_2024::*;
pub(crate) use std::{format, vec};
