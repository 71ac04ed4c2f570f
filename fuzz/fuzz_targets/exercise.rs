//! What every loading target does with a model that loaded: forward, inverse and (with a
//! sampling layout) sample in a 3-row session, none of which may fail or panic.

use innfer::{Layout, Model, Session};

pub fn exercise(model: &Model) {
    let Ok(mut session) = Session::new(model, 3) else {
        return;
    };
    let (d, c) = (model.dim(), model.cond_dim());
    let rows = 2;
    let x: Vec<f32> = (0..rows * d).map(|i| (i as f32 * 0.37).sin()).collect();
    let cond: Vec<f32> = (0..rows * c).map(|i| (i as f32 * 0.11).cos()).collect();
    let cond = (c > 0).then_some(&cond[..]);
    let mut out = vec![0.0; rows * d];
    let mut logdet = vec![0.0; rows];
    // A finite input may overflow a hostile model's pass: reported, never a panic.
    let passed = |r: innfer::Result<()>, what: &str| match r {
        Ok(()) | Err(innfer::Error::NonFiniteOutput { .. }) => {}
        Err(e) => panic!("{what} on a loaded model: {e}"),
    };
    passed(session.forward(&x, cond, &mut out, Some(&mut logdet)), "forward");
    passed(
        session.inverse(&out, cond, &mut x.clone(), Some(&mut logdet)),
        "inverse",
    );
    if model.layout() != Layout::None {
        let y: Vec<f32> = (0..model.layout().y_dim())
            .map(|i| i as f32 * 0.5)
            .collect();
        let mut samples = vec![0.0; 2 * model.layout().x_dim()];
        passed(session.sample(&y, 2, &mut samples), "sample");
    }
}
