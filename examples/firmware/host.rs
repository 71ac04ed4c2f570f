//! The host's side of examples/firmware/run.sh: the same samples as the firmware, drawn with the
//! portable kernel (the one the Cortex-M build runs), hashed the same way.
//!
//!     cargo run --release --example firmware_host -- MODEL SAMPLES SEED LABEL
//!
//! prints the FNV-1a 64 hash (16 hex digits) of the little-endian bytes of the samples, drawn
//! one at a time for the one-hot condition of LABEL with (seed, stream) = (SEED, LABEL), and on
//! a second line the multiply-adds of one sample: the elements of the subnets' Linear weights
//! (`*.weight` tensors of two dimensions), each used once per sample.

use innfer::{Isa, Model, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, samples, seed, label] = args.as_slice() else {
        return Err("usage: firmware_host MODEL SAMPLES SEED LABEL".into());
    };
    let (samples, seed, label): (usize, u64, usize) =
        (samples.parse()?, seed.parse()?, label.parse()?);
    let bytes = std::fs::read(model)?;
    let multiply_adds = linear_weight_elements(&bytes)?;
    let model = Model::from_bytes(&bytes)?;
    let mut session = Session::new(&model, 1)?;
    session.set_isa(Isa::Portable)?;
    session.reseed(seed, label as u64);
    let layout = model.layout();
    let mut y = vec![0.0f32; layout.y_dim()];
    y[label] = 1.0;
    let mut x = vec![0.0f32; layout.x_dim()];
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for _ in 0..samples {
        session.sample(&y, 1, &mut x)?;
        for b in x.iter().flat_map(|v| v.to_bits().to_le_bytes()) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    println!("{hash:016x}");
    println!("{multiply_adds}");
    Ok(())
}

/// Elements of the two-dimensional `*.weight` tensors in a safetensors file's header.
fn linear_weight_elements(bytes: &[u8]) -> Result<u64, Box<dyn std::error::Error>> {
    let len = u64::from_le_bytes(bytes.get(..8).ok_or("no header")?.try_into()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(bytes.get(8..8 + len).ok_or("short")?)?;
    let tensors = header.as_object().ok_or("the header is not an object")?;
    Ok(tensors
        .iter()
        .filter(|(name, _)| name.ends_with(".weight"))
        .filter_map(|(_, info)| info["shape"].as_array())
        .filter(|shape| shape.len() == 2)
        .map(|shape| shape.iter().filter_map(|d| d.as_u64()).product::<u64>())
        .sum())
}
