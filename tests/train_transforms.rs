//! Training behind transforms (docs/format.md §3.1): the trainer maps x to u and the raw
//! observation through clr before it takes the standardisation's statistics, trains on that,
//! and writes the transforms into the model file, whose session then computes what training
//! computed and samples inside the bounds.

use innfer::metrics::PosteriorSampler;
use innfer::model::{XTransform, YTransform};
use innfer::rng::Rng;
use innfer::train::{Dataset, SubnetSpec, TrainConfig, TrainedModel, prepare_y, train};
use innfer::{Error, Model, Session};

const BANDS: usize = 5;

fn transforms() -> Vec<XTransform> {
    vec![
        XTransform::logit(0.0, 1.0).unwrap(),
        XTransform::log(5.0).unwrap(),
        XTransform::IDENTITY,
    ]
}

/// A fraction in [0, 1], an amplitude above 5 and a free parameter, seen through 5 positive
/// "band values" that carry an unknown common brightness (which clr removes).
fn bounded_task(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed, 0);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let fraction = rng.uniform() as f32;
        let amplitude = 5.0 + (rng.normal() as f32 * 0.5).exp() * 10.0;
        let free = rng.normal() as f32;
        let brightness = 0.5 + 1.5 * rng.uniform() as f32;
        x.extend([fraction, amplitude, free]);
        for k in 0..BANDS {
            let k = k as f32;
            let log_band = (k - 2.0) * 0.4 * fraction
                + 0.05 * k * (amplitude - 5.0).ln()
                + 0.1 * (k - 1.0) * free
                + 0.02 * rng.normal() as f32;
            y.push(brightness * 0.3 * log_band.exp());
        }
    }
    Dataset::from_columns(x, 3, y, BANDS).unwrap()
}

fn config() -> TrainConfig {
    TrainConfig {
        blocks: 4,
        subnet: SubnetSpec {
            hidden: vec![32],
            ..SubnetSpec::default()
        },
        epochs: 4,
        batch: 128,
        lr: 3e-3,
        threads: 1,
        seed: 2,
        x_transform: transforms(),
        y_transform: YTransform::Clr,
        ..TrainConfig::default()
    }
}

fn trained() -> (TrainedModel, Model, Dataset) {
    let data = bounded_task(3000, 1);
    let trained = train(&config(), &data, |_| {}).unwrap();
    let model = Model::from_bytes(&trained.to_safetensors().unwrap()).unwrap();
    (trained, model, data)
}

fn in_box(x: &[f32]) -> bool {
    x.chunks_exact(3)
        .all(|r| (0.0..=1.0).contains(&r[0]) && r[1] >= 5.0)
}

#[test]
fn the_statistics_are_those_of_the_transformed_data() {
    let data = bounded_task(3000, 1);
    let trained = train(&config(), &data, |_| {}).unwrap();
    // The validation split leaves 90 % of the rows; their u and clr(y) have these moments
    // roughly as the whole set does: logit of U(0, 1) has mean 0 and std π/√3.
    assert!(trained.x_norm.mean[0].abs() < 0.15, "{:?}", trained.x_norm);
    assert!(
        (trained.x_norm.std[0] - 1.814).abs() < 0.1,
        "{:?}",
        trained.x_norm
    );
    // ln(amplitude − 5) = ln 10 + N(0, 0.5²).
    assert!(
        (trained.x_norm.mean[1] - 10f32.ln()).abs() < 0.05,
        "{:?}",
        trained.x_norm
    );
    assert!(
        (trained.x_norm.std[1] - 0.5).abs() < 0.05,
        "{:?}",
        trained.x_norm
    );
    // clr values sum to 0, so do their means.
    let mean_sum: f32 = trained.y_norm.mean.iter().sum();
    assert!(mean_sum.abs() < 1e-5, "{:?}", trained.y_norm);
    // The brightness (a factor 0.5 … 2 on every band) is gone: the middle band's clr is
    // noise alone (its parameter terms equal their mean over the bands), 0.02·(ε₂ − ε̄) with
    // std 0.02·√(4/5) = 0.0179, while its logarithm varies with the brightness.
    let ln_middle: Vec<f64> = data
        .y
        .chunks_exact(BANDS)
        .map(|b| (b[2] as f64).ln())
        .collect();
    let mean = ln_middle.iter().sum::<f64>() / ln_middle.len() as f64;
    let var = ln_middle
        .iter()
        .map(|v| (v - mean) * (v - mean))
        .sum::<f64>()
        / ln_middle.len() as f64;
    assert!(var.sqrt() > 0.3, "{}", var.sqrt());
    assert!(
        (trained.y_norm.std[2] - 0.02).abs() < 0.003,
        "{:?}",
        trained.y_norm
    );
}

#[test]
fn the_exported_model_computes_what_training_computed() {
    let (mut trained, model, data) = trained();
    assert_eq!(model.x_transform(), &transforms()[..]);
    assert_eq!(model.y_transform(), YTransform::Clr);
    // The condition: the session's preparation is training's, bit for bit.
    let rows = 200;
    let mut prepared = data.y[..rows * BANDS].to_vec();
    prepare_y(YTransform::Clr, &trained.y_norm, &mut prepared);
    for (r, want) in prepared.chunks_exact(BANDS).enumerate() {
        let mut got = data.y[r * BANDS..(r + 1) * BANDS].to_vec();
        assert!(model.prepare_condition(&mut got));
        assert_eq!(got, want, "row {r}");
    }
    // The density of x, log-Jacobian of the transforms included.
    let x = &data.x[..rows * 3];
    let y = &data.y[..rows * BANDS];
    let want = trained.neg_log_density(x, y).unwrap().unwrap();
    let mut session = Session::new(&model, rows).unwrap();
    let got = session.neg_log_density(x, y).unwrap().unwrap();
    for (r, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
            "row {r}: {g} vs {w}"
        );
    }
    // And the data come back through forward and inverse.
    let (mut z, mut back) = (vec![0.0; rows * 3], vec![0.0; rows * 3]);
    session.forward(x, Some(y), &mut z, None).unwrap();
    session.inverse(&z, Some(y), &mut back, None).unwrap();
    for (b, v) in back.iter().zip(x) {
        assert!((b - v).abs() <= 1e-4 * (1.0 + v.abs()), "{b} vs {v}");
    }
}

#[test]
fn samples_lie_inside_the_bounds_from_the_trainer_and_from_the_exported_model() {
    let (mut trained, model, data) = trained();
    let mut session = Session::new(&model, 256).unwrap();
    for r in 0..5 {
        let y = &data.y[r * BANDS..(r + 1) * BANDS];
        let mut x = vec![0.0; 4000 * 3];
        session.reseed(7, r as u64);
        session.sample(y, 4000, &mut x).unwrap();
        assert!(in_box(&x));
        trained.sample(y, 7, r as u64, &mut x).unwrap();
        assert!(in_box(&x));
    }
    // Latents far beyond any normal draw.
    let z: Vec<f32> = (0..8 * 3)
        .map(|i| {
            if (i * 5 + i / 3) % 2 == 0 {
                40.0
            } else {
                -40.0
            }
        })
        .collect();
    let y: Vec<f32> = data.y[..8 * BANDS].to_vec();
    let mut x = vec![0.0; 8 * 3];
    Session::new(&model, 8)
        .unwrap()
        .inverse(&z, Some(&y), &mut x, None)
        .unwrap();
    assert!(in_box(&x), "{x:?}");
}

#[test]
fn training_refuses_data_its_transforms_cannot_take() {
    let mut data = bounded_task(100, 3);
    data.x[3 * 7] = 1.0; // a fraction on its upper bound
    let e = train(&config(), &data, |_| {}).unwrap_err();
    assert!(e.to_string().contains("bounds of its x transform"), "{e}");

    let mut data = bounded_task(100, 3);
    data.y[BANDS * 4 + 2] = 0.0; // a dead band
    let e = train(&config(), &data, |_| {}).unwrap_err();
    assert!(
        e.to_string().contains("not finite after the y transform"),
        "{e}"
    );

    let data = bounded_task(100, 3);
    let two = TrainConfig {
        x_transform: transforms()[..2].to_vec(),
        ..config()
    };
    assert!(matches!(train(&two, &data, |_| {}), Err(Error::Dims(_))));
}
