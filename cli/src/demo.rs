//! `innfer demo`: the shipped default model, sampled for every observation it knows, with a
//! summary a newcomer can read at a glance.
//!
//! The model (models/gmm8_some.safetensors, embedded in the binary so the demo runs from any
//! directory; models/README.md gives the `innfer train` command that made it) is a conditional
//! INN trained on the 8-mode Gaussian mixture of Ardizzone et al.
//! (2019) with the `some` labelling: modes 0–3 carry label 0, modes 4–5 label 1, mode 6 label 2,
//! mode 7 label 3. Given a label y, the exact posterior p(x | y) is the equal mixture of the
//! modes with that label, so the summary can say how many of them the samples found and how
//! much falls off them (`innfer::metrics::mode_masses`, as `innfer eval` counts).
//!
//! It then draws two figures like the method's own (see `gmm8fig`): the samples over the true
//! posterior density for each label, and the marginal posteriors over the prior for one label.
//!
//! The second shipped model, the inverse-kinematics arm (see `arm`), is sampled for a few
//! target points, each the end point of a known arm x_true, and drawn the same way (see
//! `armfig`): the sampled arms reaching each target with the true arm, and the marginal
//! posteriors of its four parameters over the prior with the true values marked.
//!
//! The third, the multispectral tissue-oximetry model, turns every pixel of a simulated
//! 256×256 camera frame into a posterior (see `camera`).

use std::path::Path;
use std::time::Instant;

use innfer::metrics::{ModeMasses, mode_masses};
use innfer::tasks::{GMM8_CENTRES, GMM8_STD, Labelling};
use innfer::{Model, Session};

use crate::gmm8fig::{self, LabelPanel};
use crate::{arm, armfig, camera};

/// The default model, embedded.
pub const GMM8_SOME: &[u8] = include_bytes!("../../models/gmm8_some.safetensors");

/// Per-label result of the demo.
pub struct LabelSummary {
    pub samples: Vec<f32>,
    pub mean: [f32; 2],
    pub std: [f32; 2],
    pub masses: ModeMasses,
    pub seconds: f64,
}

impl LabelSummary {
    /// What the figures draw of this label.
    pub fn panel(&self) -> LabelPanel<'_> {
        LabelPanel {
            samples: &self.samples,
            masses: &self.masses,
        }
    }
}

/// Samples `n` posterior draws for each of the four labels.
pub fn sample_labels(model: &Model, n: usize, seed: u64) -> Result<Vec<LabelSummary>, String> {
    let mut session = Session::new(model, 1024).map_err(|e| format!("demo model: {e}"))?;
    let mut out = Vec::new();
    for label in 0..4 {
        let mut y = [0.0f32; 8];
        y[label] = 1.0;
        let mut x = vec![0.0f32; 2 * n];
        session.reseed(seed, label as u64);
        let start = Instant::now();
        session
            .sample(&y, n, &mut x)
            .map_err(|e| format!("demo sampling: {e}"))?;
        let seconds = start.elapsed().as_secs_f64();
        let mut mean = [0.0f64; 2];
        let mut sq = [0.0f64; 2];
        for p in x.chunks_exact(2) {
            for j in 0..2 {
                mean[j] += p[j] as f64;
                sq[j] += (p[j] as f64).powi(2);
            }
        }
        let nf = n as f64;
        let mean32 = [(mean[0] / nf) as f32, (mean[1] / nf) as f32];
        let std32 = [
            ((sq[0] / nf - (mean[0] / nf).powi(2)).max(0.0)).sqrt() as f32,
            ((sq[1] / nf - (mean[1] / nf).powi(2)).max(0.0)).sqrt() as f32,
        ];
        out.push(LabelSummary {
            masses: mode_masses(Labelling::Some, label, &x),
            samples: x,
            mean: mean32,
            std: std32,
            seconds,
        });
    }
    Ok(out)
}

/// `n` draws (x0, x1 interleaved) from the prior of the demo task, the equal mixture of all 8
/// modes, from a small self-contained generator (SplitMix64 and Box–Muller) seeded with `seed`.
pub fn prior_samples(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed ^ 0x5DEE_CE66_D1CE_4E5B;
    let mut next = move || {
        // SplitMix64 (Steele, Lea, Flood 2014).
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    // Uniform in (0, 1]: never 0, so the logarithm below is finite.
    let mut uniform = move || ((next() >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let mut out = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let mode = ((uniform() * 8.0) as usize).min(7);
        let (r, t) = (
            (-2.0 * uniform().ln()).sqrt(),
            std::f64::consts::TAU * uniform(),
        );
        let (cx, cy) = (GMM8_CENTRES[mode].0 as f32, GMM8_CENTRES[mode].1 as f32);
        let sd = GMM8_STD as f32;
        out.push(cx + sd * (r * t.cos()) as f32);
        out.push(cy + sd * (r * t.sin()) as f32);
    }
    out
}

/// Prior draws in the marginals figure.
const PRIOR_DRAWS: usize = 20_000;

/// Runs the demo: prints its summary, writes the figures into `out` (created if needed) for
/// the marginals of `label` and `arm_n` samples per arm target, and prints their paths.
pub fn run(n: usize, seed: u64, out: &Path, label: usize, arm_n: usize) -> Result<(), String> {
    let start = Instant::now();
    let model = Model::from_bytes(GMM8_SOME).map_err(|e| format!("embedded demo model: {e}"))?;
    let load = start.elapsed();
    println!(
        "innfer demo — posterior sampling with a conditional INN (FrEIA AllInOneBlocks, {} parameters)",
        model.parameter_count()
    );
    println!("task: the 8-mode Gaussian mixture of Ardizzone et al. (2019), labelling `some`:");
    println!("      modes 0-3 have label 0, modes 4-5 label 1, mode 6 label 2, mode 7 label 3;");
    println!("      the posterior p(x | label) is the equal mixture of that label's modes.");
    println!(
        "model loaded in {:.2} ms; {n} samples per label, seed {seed}\n",
        load.as_secs_f64() * 1e3
    );
    let summaries = sample_labels(&model, n, seed)?;
    for s in &summaries {
        let m = &s.masses;
        let masses: Vec<String> = m
            .modes
            .iter()
            .map(|(mode, mass, _)| format!("mode {mode}: {mass:.3}"))
            .collect();
        println!(
            "label {}: x mean ({:+.3}, {:+.3}), std ({:.3}, {:.3}); found {} of {} modes [{}]; off-mode {:.2}%; {:.0} samples/s",
            m.label,
            s.mean[0],
            s.mean[1],
            s.std[0],
            s.std[1],
            m.found(),
            m.modes.len(),
            masses.join(", "),
            100.0 * m.off_mode,
            n as f64 / s.seconds
        );
    }

    std::fs::create_dir_all(out)
        .map_err(|e| format!("--out {}: cannot create the directory: {e}", out.display()))?;
    let posteriors = out.join("gmm8_posteriors.png");
    let marginals = out.join("gmm8_marginals.png");
    let panels: Vec<LabelPanel<'_>> = summaries.iter().map(LabelSummary::panel).collect();
    gmm8fig::posteriors(&posteriors, &panels)?;
    let prior = prior_samples(PRIOR_DRAWS, seed);
    gmm8fig::marginals(&marginals, &panels[label], &prior)?;

    println!();
    let arm_model =
        Model::from_bytes(arm::KINEMATICS).map_err(|e| format!("embedded arm model: {e}"))?;
    let arms = arm::sample_targets(&arm_model, arm_n, seed)?;
    arm::print_summary(&arm_model, &arms, arm_n);
    let arm_figure = out.join("kinematics_arms.png");
    let arm_marginals = out.join("kinematics_marginals.png");
    let arm_panels: Vec<_> = arms.iter().map(arm::ArmSummary::panel).collect();
    armfig::arms(&arm_figure, &arm_panels, arm_n.min(ARM_DRAWN))?;
    let arm_prior = arm::prior_samples(PRIOR_DRAWS, seed);
    armfig::marginals(&arm_marginals, &arm_panels[0], &arm_prior)?;

    println!();
    let camera_figure = camera::scene(CAMERA_SAMPLES, seed, out)?;

    println!();
    for path in [
        &posteriors,
        &marginals,
        &arm_figure,
        &arm_marginals,
        &camera_figure,
    ] {
        println!("wrote {}", path.display());
    }
    println!("({:.2} s in all)", start.elapsed().as_secs_f64());
    Ok(())
}

/// Posterior samples per pixel of the camera scene.
const CAMERA_SAMPLES: usize = 32;

/// At most this many arms per panel of kinematics_arms.png (more only darken the picture).
const ARM_DRAWN: usize = 1000;
