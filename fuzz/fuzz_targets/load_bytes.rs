//! Any bytes given to `Model::from_bytes` load or give an error: no panic, no abort, and no
//! allocation past libFuzzer's malloc limit (counts and widths are checked against what the
//! file backs before anything is sized by them). A model that loads then runs forward,
//! inverse and sample in a small session without a panic.
#![no_main]

use innfer::{Layout, Model, Session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = Model::from_bytes(data) else {
        return;
    };
    let Ok(mut session) = Session::new(&model, 3) else {
        return;
    };
    let (d, c) = (model.dim(), model.cond_dim());
    let rows = 2;
    let x: Vec<f32> = (0..rows * d).map(|i| (i as f32 * 0.37).sin()).collect();
    let cond: Vec<f32> = (0..rows * c).map(|i| (i as f32 * 0.11).cos()).collect();
    let cond = (c > 0).then_some(&cond[..]);
    let mut out = vec![0.0; rows * d];
    let mut logdet = vec![0.0; rows];
    session
        .forward(&x, cond, &mut out, Some(&mut logdet))
        .expect("forward on a loaded model");
    session
        .inverse(&out, cond, &mut x.clone(), Some(&mut logdet))
        .expect("inverse on a loaded model");
    if model.layout() != Layout::None {
        let y: Vec<f32> = (0..model.layout().y_dim())
            .map(|i| i as f32 * 0.5)
            .collect();
        let mut samples = vec![0.0; 2 * model.layout().x_dim()];
        session
            .sample(&y, 2, &mut samples)
            .expect("sample on a loaded model");
    }
});
