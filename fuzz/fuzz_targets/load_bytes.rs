//! Any bytes given to `Model::from_bytes` load or give an error: no panic, no abort, and no
//! allocation past libFuzzer's malloc limit (counts and widths are checked against what the
//! file backs before anything is sized by them). A model that loads then runs forward,
//! inverse and sample in a small session without a panic.
#![no_main]

use innfer::Model;
use libfuzzer_sys::fuzz_target;

mod exercise;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = Model::from_bytes(data) {
        exercise::exercise(&model);
    }
});
