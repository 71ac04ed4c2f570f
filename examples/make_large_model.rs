//! Writes the large benchmark model (`tests/common`'s `glow_large`: 64-wide GLOW, 12 blocks,
//! hidden 512, about 30 MB of f32 weights) to a file, for `scripts/startup.sh`.
//!
//! ```text
//! cargo run --release --example make_large_model -- target/glow_large.safetensors
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: make_large_model OUT.safetensors");
        std::process::exit(2);
    };
    if let Err(e) = std::fs::write(&path, common::glow_large().to_bytes()) {
        eprintln!("make_large_model: writing {path}: {e}");
        std::process::exit(1);
    }
}
