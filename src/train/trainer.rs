//! The training loop: standardise, split off a validation set, initialise, then epochs of
//! shuffled minibatches (gradient on all threads, clipping, Adam, schedule), a validation
//! NLL per epoch, early stopping on it, a checkpoint per epoch, and resuming from one. For a
//! simulator with observation noise, every epoch can see fresh noise on the same x.

use std::path::PathBuf;
use std::time::Instant;

use crate::prelude::*;

use super::chain::Chain;
use super::checkpoint::{self, Checkpoint};
use super::export::{self, ExportOptions, Standardization};
use super::inn::{self, InnConfig, InnDims, InnNoise};
use super::objective;
use super::optim::{Adam, AdamConfig, Clip, Schedule};
use super::spec::{BlockKind, BlockSpec, ChainSpec, SubnetSpec};
use crate::error::{Error, Result};
use crate::metrics::PosteriorSampler;
use crate::model::transform::{bound_row, unbound_row};
use crate::model::{Layout, XTransform, YTransform};
use crate::rng::Rng;
use crate::tasks::{Dataset, Task};

/// What the chain is trained for.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Objective {
    /// The cINN maximum likelihood `mean(½‖z‖² − log|det J|)`, y the condition.
    #[default]
    MaxLikelihood,
    /// The paper's bidirectional INN (docs/training.md §inn-objective): an unconditional chain
    /// `[x, pad] ↔ [z, pad, y]` trained with fit, MMD and reconstruction losses.
    Inn(InnConfig),
}

/// Everything about a training run. `Default` is a sensible cINN recipe.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// The block every position of the chain gets, and how many.
    pub block: BlockKind,
    pub blocks: usize,
    /// A `PermuteRandom` after every block (the ICLR 2019 INN's GLOW chain).
    pub permute_between: bool,
    pub subnet: SubnetSpec,
    pub objective: Objective,
    pub epochs: usize,
    pub batch: usize,
    /// Minibatches per epoch; `None`: one pass over the training set.
    pub iterations_per_epoch: Option<usize>,
    pub lr: f64,
    pub adam: AdamConfig,
    pub clip: Clip,
    pub schedule: Schedule,
    /// Fraction of the data held out for validation (taken after a seeded shuffle).
    pub validation_fraction: f64,
    /// Stop after this many epochs without a better validation NLL (and return the best).
    pub patience: Option<usize>,
    pub threads: usize,
    pub seed: u64,
    /// Store all activations for the backward pass instead of recomputing them.
    pub store_activations: bool,
    /// Written after every epoch (a loadable innfer model plus the optimiser state).
    pub checkpoint: Option<PathBuf>,
    /// Continue from `checkpoint` if it exists.
    pub resume: bool,
    /// The transform of each x dimension (docs/format.md §3.1): empty (none), or one per x
    /// dimension. The chain models u = T(x); every training x must lie inside its bounds.
    pub x_transform: Vec<XTransform>,
    /// The transform of the raw condition (cINN only); every training y must come out finite.
    pub y_transform: YTransform,
    /// Names and units of the x dimensions, written to the model file (`innfer.x_names`,
    /// `innfer.x_units`): empty, or one per x dimension.
    pub x_names: Vec<String>,
    pub x_units: Vec<String>,
    /// A simulator whose y is a noisy image of x alone ([`Task::reobserves`], the msi tasks):
    /// from the second epoch on, the training rows keep their x and get y re-observed with
    /// noise keyed by (seed, epoch), standardised as the first epoch's. The validation rows
    /// keep theirs. `None`: the data's y in every epoch.
    pub fresh_noise: Option<Task>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            block: BlockKind::AllInOne { clamp: 2.0 },
            blocks: 8,
            permute_between: false,
            subnet: SubnetSpec::default(),
            objective: Objective::MaxLikelihood,
            epochs: 50,
            batch: 512,
            iterations_per_epoch: None,
            lr: 1e-3,
            adam: AdamConfig::default(),
            clip: Clip::Norm(10.0),
            schedule: Schedule::Cosine {
                final_fraction: 0.01,
            },
            validation_fraction: 0.1,
            patience: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            seed: 0,
            store_activations: false,
            checkpoint: None,
            resume: false,
            x_transform: Vec::new(),
            y_transform: YTransform::None,
            x_names: Vec::new(),
            x_units: Vec::new(),
            fresh_noise: None,
        }
    }
}

impl TrainConfig {
    /// The paper's INN (docs/training.md §inn-objective) as its toy experiments train it: an unconditional
    /// chain `[x, pad] ↔ [z, pad, y]` of `width` channels (0: the narrowest that holds x and
    /// [z, y]) of GLOW blocks (atan clamp 2), each followed by a random permutation; the
    /// paper's loss weights; Adam with betas (0.8, 0.9), eps 1e-6 and L2 2e-5; each gradient
    /// component clipped to ±15; a constant learning rate. Sizes, epochs, batch, learning rate,
    /// threads and seed stay as in `self`.
    pub fn paper_inn(self, width: usize) -> TrainConfig {
        TrainConfig {
            block: BlockKind::Glow {
                clamp: 2.0,
                activation: super::ops::half::ClampActivation::Atan,
            },
            permute_between: true,
            objective: Objective::Inn(InnConfig {
                dim: width,
                ..InnConfig::default()
            }),
            adam: AdamConfig {
                betas: (0.8, 0.9),
                eps: 1e-6,
                weight_decay: 2e-5,
            },
            clip: Clip::Value(15.0),
            schedule: Schedule::Constant,
            ..self
        }
    }
}

/// What the progress callback gets after every epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    /// Mean training loss over the epoch (standardised units): `½‖z‖² − logdet` (cINN), or
    /// the weighted sum of the INN losses.
    pub train_loss: f64,
    /// Validation NLL in nats, raw units (`None` without a validation set).
    pub validation_nll: Option<f64>,
    pub iterations_per_second: f64,
    pub lr: f64,
    pub seconds: f64,
}

/// A trained cINN with the transforms and standardisation it was trained behind.
#[derive(Clone, Debug)]
pub struct TrainedModel {
    pub chain: Chain<f32>,
    /// `Cinn` (maximum likelihood) or `Inn` (the paper's objective).
    pub layout: Layout,
    /// Statistics of the transformed x (u) and y.
    pub x_norm: Standardization,
    pub y_norm: Standardization,
    pub x_transform: Vec<XTransform>,
    pub y_transform: YTransform,
    pub x_names: Vec<String>,
    pub x_units: Vec<String>,
    pub history: Vec<EpochReport>,
    /// The epoch whose parameters these are (1-based; 0 before any epoch).
    pub best_epoch: usize,
}

impl TrainedModel {
    pub fn export_options(&self) -> ExportOptions {
        ExportOptions {
            layout: self.layout,
            x_norm: Some(self.x_norm.clone()),
            y_norm: Some(self.y_norm.clone()),
            x_transform: self.x_transform.clone(),
            y_transform: self.y_transform,
            x_names: self.x_names.clone(),
            x_units: self.x_units.clone(),
            producer: format!("innfer {} train", env!("CARGO_PKG_VERSION")),
        }
    }

    /// The innfer model file.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        export::to_safetensors(&self.chain, &self.export_options())
    }

    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        export::save(&self.chain, &self.export_options(), path)
    }

    /// Per-row NLL −log q(x|y) in nats, raw units (cINN only); NaN for a row outside the x
    /// bounds or with an invalid y.
    pub fn nll_rows(&self, data: &Dataset) -> Vec<f64> {
        nll_raw(&self.chain, &self.prep(), data, 1)
    }

    fn prep(&self) -> Prep<'_> {
        Prep {
            x_transform: &self.x_transform,
            x_norm: &self.x_norm,
            y_transform: self.y_transform,
            y_norm: &self.y_norm,
        }
    }

    /// Mean NLL in nats, raw units.
    pub fn nll(&self, data: &Dataset) -> f64 {
        let rows = self.nll_rows(data);
        rows.iter().sum::<f64>() / rows.len().max(1) as f64
    }
}

/// The trained model as the metrics see it, in training's own arithmetic (its exported file,
/// run by a [`Session`](crate::Session), gives the same numbers up to rounding).
impl PosteriorSampler for TrainedModel {
    fn x_dim(&self) -> usize {
        self.x_norm.mean.len()
    }

    /// A cINN inverts `[z, y]`; a paper-style INN inverts `[z, 0 (padding), y]` and drops its
    /// x padding.
    fn sample(&mut self, y: &[f32], seed: u64, stream: u64, out: &mut [f32]) -> Result<()> {
        let (xd, d) = (self.x_dim(), self.chain.dim());
        let n = out.len() / xd.max(1);
        let mut rng = Rng::new(seed, stream);
        let mut cond_row = y.to_vec();
        prepare_y(self.y_transform, &self.y_norm, &mut cond_row);
        if cond_row.iter().any(|v| !v.is_finite()) {
            // An invalid observation, as the session has it (docs/format.md §3.1).
            out[..n * xd].fill(f32::NAN);
            return Ok(());
        }
        let mut logdet = vec![0.0f32; n];
        let mut x = match self.layout {
            Layout::Inn { x, z, pad_zy, .. } => {
                let mut state = vec![0.0f32; n * d];
                for row in state.chunks_exact_mut(d) {
                    for v in &mut row[..z] {
                        *v = rng.normal() as f32;
                    }
                    row[z + pad_zy..].copy_from_slice(&cond_row);
                }
                self.chain.inverse(&mut state, None, &mut logdet);
                state
                    .chunks_exact(d)
                    .flat_map(|r| &r[..x])
                    .copied()
                    .collect()
            }
            _ => {
                let mut z: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
                let cond: Vec<f32> = (0..n).flat_map(|_| cond_row.iter().copied()).collect();
                self.chain
                    .inverse(&mut z, (!cond.is_empty()).then_some(&cond), &mut logdet);
                z
            }
        };
        self.x_norm.undo(&mut x);
        for row in x.chunks_exact_mut(xd.max(1)) {
            bound_row(&self.x_transform, row);
        }
        out[..n * xd].copy_from_slice(&x);
        Ok(())
    }

    /// A cINN's density; `None` for an INN (its forward pass maps x to [z, y]).
    fn neg_log_density(&mut self, x: &[f32], y: &[f32]) -> Result<Option<Vec<f64>>> {
        let Layout::Cinn { x: x_dim, y: y_dim } = self.layout else {
            return Ok(None);
        };
        let data = Dataset::from_columns(x.to_vec(), x_dim, y.to_vec(), y_dim)?;
        Ok(Some(self.nll_rows(&data)))
    }
}

/// What training puts between the data and the chain: the transforms and the statistics of
/// what they give.
#[derive(Clone, Copy)]
struct Prep<'a> {
    x_transform: &'a [XTransform],
    x_norm: &'a Standardization,
    y_transform: YTransform,
    y_norm: &'a Standardization,
}

/// The condition the chain reads, from raw observations (`rows` of `norm`'s width): each row
/// through the y transform, then the standardisation, in place. This is the one place
/// training prepares y (the training and validation sets, sampling, observations drawn
/// anew), and it computes what the exported model's session computes
/// ([`Model::prepare_condition`](crate::Model::prepare_condition), docs/format.md §3.1).
pub fn prepare_y(transform: YTransform, norm: &Standardization, rows: &mut [f32]) {
    let dim = norm.mean.len();
    if dim == 0 {
        return;
    }
    for row in rows.chunks_exact_mut(dim) {
        transform.apply(row);
    }
    norm.apply(rows);
}

/// Maps raw x rows (`x_dim` wide) to u in place; returns each row's `Σ log|du/dx|`.
fn unbound_rows(transforms: &[XTransform], rows: &mut [f32], x_dim: usize) -> Vec<f64> {
    rows.chunks_exact_mut(x_dim.max(1))
        .map(|row| f64::from(unbound_row(transforms, row)))
        .collect()
}

/// Per-row NLL in raw units, chunks of rows on `threads` threads. Each row's value does not
/// depend on the chunking (the kernels' reproducibility contract), so neither does the result.
fn nll_raw(chain: &Chain<f32>, prep: &Prep<'_>, data: &Dataset, threads: usize) -> Vec<f64> {
    // Chunks keep memory bounded on large validation sets.
    let chunk = 8192;
    let chunk_nll = |start: usize| {
        let rows: Vec<usize> = (start..(start + chunk).min(data.len())).collect();
        let mut part = data.select(&rows);
        // −log q(x) = −log q(u) − log|du/dx|.
        let log_jacobians = unbound_rows(prep.x_transform, &mut part.x, part.x_dim);
        prep.x_norm.apply(&mut part.x);
        prepare_y(prep.y_transform, prep.y_norm, &mut part.y);
        let cond = (part.y_dim > 0).then_some(part.y.as_slice());
        let mut nll = objective::nll_rows(chain, &part.x, cond);
        for (r, (v, lj)) in nll.iter_mut().zip(log_jacobians).enumerate() {
            // An invalid row, as the session has it (docs/format.md §3.1): NaN.
            let y_row = &part.y[r * part.y_dim..(r + 1) * part.y_dim];
            *v = if lj.is_finite() && y_row.iter().all(|c| c.is_finite()) {
                *v + prep.x_norm.log_std_sum() - lj
            } else {
                f64::NAN
            };
        }
        nll
    };
    map_chunks(data.len(), chunk, threads, chunk_nll)
}

/// `f(start)` for the chunks of rows starting at 0, `chunk`, 2·`chunk`, … below `rows`, on up
/// to `threads` threads, concatenated in chunk order.
fn map_chunks<T: Send>(
    rows: usize,
    chunk: usize,
    threads: usize,
    f: impl Fn(usize) -> Vec<T> + Sync,
) -> Vec<T> {
    let starts: Vec<usize> = (0..rows).step_by(chunk).collect();
    let threads = threads.clamp(1, starts.len().max(1));
    let per_thread = starts.len().div_ceil(threads).max(1);
    let f = &f;
    let parts: Vec<Vec<T>> = std::thread::scope(|s| {
        let handles: Vec<_> = starts
            .chunks(per_thread)
            .map(|mine| s.spawn(move || mine.iter().flat_map(|&st| f(st)).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("training worker thread panicked"))
            .collect()
    });
    parts.into_iter().flatten().collect()
}

/// First random stream of the re-observed y; epoch e, chunk c of [`REOBSERVE_CHUNK`] rows use
/// stream `REOBSERVE_STREAM + (e << 24) + c`, so the noise depends on (seed, epoch) and not
/// on the number of threads.
const REOBSERVE_STREAM: u64 = 1 << 40;
const REOBSERVE_CHUNK: usize = 4096;

/// Fresh observations of the training parameters `x` from `task` for `epoch`.
fn reobserve(task: Task, x: &[f32], seed: u64, epoch: usize, threads: usize) -> Vec<f32> {
    let xd = task.x_dim();
    map_chunks(x.len() / xd, REOBSERVE_CHUNK, threads, |start| {
        let stream = REOBSERVE_STREAM + ((epoch as u64) << 24) + (start / REOBSERVE_CHUNK) as u64;
        let rows = &x[start * xd..((start + REOBSERVE_CHUNK) * xd).min(x.len())];
        task.observe(rows, &mut Rng::new(seed, stream))
            .expect("checked before training: the task re-observes x")
    })
}

/// Refuses transforms that do not fit the data, and data the transforms cannot take: an x
/// outside its bounds, a y that is not finite after the y transform (docs/format.md §3.1).
fn check_transforms(config: &TrainConfig, data: &Dataset) -> Result<()> {
    let (xd, yd) = (data.x_dim, data.y_dim);
    if !config.x_transform.is_empty() && config.x_transform.len() != xd {
        return Err(Error::Dims(format!(
            "{} x transforms for x of width {xd}",
            config.x_transform.len()
        )));
    }
    if config.y_transform != YTransform::None {
        if matches!(config.objective, Objective::Inn(_)) {
            return Err(Error::Argument(
                "a y transform needs the cINN objective: in the INN y is an output of the chain",
            ));
        }
        if yd < 2 {
            return Err(Error::Argument(
                "the clr y transform needs observations of at least 2 values",
            ));
        }
    }
    if !config.x_transform.is_empty() {
        let mut u = data.x.clone();
        unbound_rows(&config.x_transform, &mut u, xd);
        if u.iter().any(|v| !v.is_finite()) {
            return Err(Error::Argument(
                "training data: an x lies on or outside the bounds of its x transform",
            ));
        }
    }
    if config.y_transform != YTransform::None {
        let mut y = data.y.clone();
        prepare_y(config.y_transform, &Standardization::identity(yd), &mut y);
        if y.iter().any(|v| !v.is_finite()) {
            return Err(Error::Argument(
                "training data: a y is not finite after the y transform (clr needs positive, finite values)",
            ));
        }
    }
    Ok(())
}

/// The chain `config` describes for data of these widths.
/// For the INN objective: `x_dim` is the INN's total width and `y_dim` 0.
pub fn chain_spec(config: &TrainConfig, x_dim: usize, y_dim: usize) -> ChainSpec {
    let block = BlockSpec {
        kind: config.block,
        cond: y_dim > 0 && config.block.accepts_condition(),
    };
    let permute = BlockSpec {
        kind: BlockKind::PermuteRandom,
        cond: false,
    };
    let mut blocks = Vec::new();
    for _ in 0..config.blocks {
        blocks.push(block);
        if config.permute_between {
            blocks.push(permute);
        }
    }
    ChainSpec {
        dim: x_dim,
        cond_dim: y_dim,
        blocks,
        subnet: config.subnet.clone(),
    }
}

/// Trains a cINN for p(x | y) by maximum likelihood on `data`; `progress` is called after
/// every epoch.
pub fn train(
    config: &TrainConfig,
    data: &Dataset,
    mut progress: impl FnMut(&EpochReport),
) -> Result<TrainedModel> {
    if data.len() < 2 || config.batch == 0 || config.epochs == 0 {
        return Err(Error::Argument(
            "training needs at least 2 rows, a batch ≥ 1 and epochs ≥ 1",
        ));
    }
    check_transforms(config, data)?;
    // Validation split after a seeded shuffle.
    let mut order = Rng::new(config.seed, 3).permutation(data.len());
    let n_val = ((data.len() as f64 * config.validation_fraction) as usize).min(data.len() - 1);
    let val_rows = order.split_off(data.len() - n_val);
    let train_set = data.select(&order);
    let val_set = (n_val > 0).then(|| data.select(&val_rows));

    // The statistics are those of what the transforms give (docs/format.md §3.1).
    let mut xs = train_set.x.clone();
    unbound_rows(&config.x_transform, &mut xs, data.x_dim);
    let x_norm = Standardization::of_rows(&xs, data.x_dim);
    x_norm.apply(&mut xs);
    let y_norm = if data.y_dim > 0 {
        let mut transformed = train_set.y.clone();
        prepare_y(
            config.y_transform,
            &Standardization::identity(data.y_dim),
            &mut transformed,
        );
        Standardization::of_rows(&transformed, data.y_dim)
    } else {
        Standardization::identity(0)
    };
    let mut ys = train_set.y.clone();
    prepare_y(config.y_transform, &y_norm, &mut ys);
    let (xd, yd) = (data.x_dim, data.y_dim);
    if let Some(task) = config.fresh_noise
        && (!task.reobserves() || (task.x_dim(), task.y_dim()) != (xd, yd))
    {
        return Err(Error::Argument(
            "fresh noise needs a task that re-observes x (the msi tasks) and data of its widths",
        ));
    }
    let n = train_set.len();
    let inn_config = match &config.objective {
        Objective::Inn(c) => Some(c),
        Objective::MaxLikelihood => None,
    };
    let inn_dims = inn_config.map(|c| InnDims::new(c, xd, yd));
    if let Some(d) = inn_dims
        && (d.dim < d.x || d.dim < d.z + d.y)
    {
        return Err(Error::Dims(format!(
            "INN width {} is below x ({}) or z + y ({} + {})",
            d.dim, d.x, d.z, d.y
        )));
    }
    let layout = match inn_dims {
        Some(d) => Layout::Inn {
            x: d.x,
            pad_x: d.pad_x(),
            z: d.z,
            pad_zy: d.pad_zy(),
            y: d.y,
        },
        None => Layout::Cinn { x: xd, y: yd },
    };

    let mut chain = match inn_dims {
        Some(d) => Chain::<f32>::new(chain_spec(config, d.dim, 0), config.seed)?,
        None => Chain::<f32>::new(chain_spec(config, xd, yd), config.seed)?,
    };
    {
        let init_rows = config.batch.min(n).max(2);
        match inn_dims {
            Some(d) => {
                let mut state: Vec<f32> = xs[..init_rows * xd]
                    .chunks_exact(xd)
                    .flat_map(|r| {
                        r.iter()
                            .copied()
                            .chain(core::iter::repeat_n(0.0, d.pad_x()))
                    })
                    .collect();
                chain.data_init(&mut state, None);
            }
            None => {
                let mut state = xs[..init_rows * xd].to_vec();
                let cond = (yd > 0).then(|| &ys[..init_rows * yd]);
                chain.data_init(&mut state, cond);
            }
        }
    }
    let mut adam = Adam::new(config.adam, chain.params().len());
    let mut history = Vec::new();
    let mut best: Option<(f64, Vec<f32>, usize)> = None;
    let mut first_epoch = 0;
    if config.resume
        && let Some(path) = &config.checkpoint
        && path.exists()
    {
        let ck = checkpoint::load(path, chain.params().len())?;
        chain.params_mut().copy_from_slice(&ck.params);
        adam.m = ck.adam_m;
        adam.v = ck.adam_v;
        adam.step = ck.adam_step;
        first_epoch = ck.epoch;
        if let Some(b) = ck.best_params {
            best = Some((ck.best_nll, b, ck.best_epoch));
        }
    }

    let iters = config
        .iterations_per_epoch
        .unwrap_or_else(|| n.div_ceil(config.batch));
    let mut since_best = 0usize;
    for epoch in first_epoch..config.epochs {
        let started = Instant::now();
        let lr = config.schedule.lr(config.lr, epoch, config.epochs);
        // The first epoch trains on the data's own y, every later one on fresh noise.
        if let Some(task) = config.fresh_noise
            && epoch > 0
        {
            ys = reobserve(task, &train_set.x, config.seed, epoch, config.threads);
            prepare_y(config.y_transform, &y_norm, &mut ys);
        }
        // A fresh, epoch-keyed shuffle: resuming replays the same batches.
        let mut rng = Rng::new(config.seed, 1000 + epoch as u64);
        let mut noise_rng = Rng::new(config.seed, 500_000 + epoch as u64);
        let ramp = inn::ramp(epoch, config.epochs);
        let mut perm = rng.permutation(n);
        let mut cursor = 0;
        let mut loss_sum = 0.0;
        let mut bx = Vec::with_capacity(config.batch * xd);
        let mut by = Vec::with_capacity(config.batch * yd);
        for _ in 0..iters {
            if cursor + config.batch > n {
                rng.shuffle(&mut perm);
                cursor = 0;
            }
            let rows = &perm[cursor..(cursor + config.batch).min(n)];
            cursor += rows.len();
            bx.clear();
            by.clear();
            for &r in rows {
                bx.extend_from_slice(&xs[r * xd..(r + 1) * xd]);
                by.extend_from_slice(&ys[r * yd..(r + 1) * yd]);
            }
            let (loss, mut grads) = match (inn_config, inn_dims) {
                (Some(ic), Some(dims)) => {
                    let noise = InnNoise::draw(ic, dims, rows.len(), &mut noise_rng);
                    let (losses, g) = inn::inn_gradient(
                        &chain,
                        ic,
                        dims,
                        &bx,
                        &by,
                        &noise,
                        if ic.ramp { ramp } else { 1.0 },
                        config.threads,
                    );
                    (losses.total(), g.into_iter().map(f64::from).collect())
                }
                _ => objective::minibatch_gradient(
                    &chain,
                    &bx,
                    (yd > 0).then_some(by.as_slice()),
                    config.threads,
                    config.store_activations,
                ),
            };
            if !loss.is_finite() {
                return Err(Error::Argument(
                    "the training loss is not finite: lower the learning rate or the clamp",
                ));
            }
            config.clip.apply(&mut grads);
            adam.step(chain.params_mut(), &grads, lr);
            loss_sum += loss;
        }
        let seconds = started.elapsed().as_secs_f64();
        let prep = Prep {
            x_transform: &config.x_transform,
            x_norm: &x_norm,
            y_transform: config.y_transform,
            y_norm: &y_norm,
        };
        let validation_nll = val_set.as_ref().filter(|_| inn_config.is_none()).map(|v| {
            let rows = nll_raw(&chain, &prep, v, config.threads);
            rows.iter().sum::<f64>() / rows.len() as f64
        });
        let report = EpochReport {
            epoch: epoch + 1,
            epochs: config.epochs,
            train_loss: loss_sum / iters as f64,
            validation_nll,
            iterations_per_second: iters as f64 / seconds.max(1e-9),
            lr,
            seconds,
        };
        let score = validation_nll.unwrap_or(report.train_loss);
        if best.as_ref().is_none_or(|b| score < b.0) {
            best = Some((score, chain.params().to_vec(), epoch + 1));
            since_best = 0;
        } else {
            since_best += 1;
        }
        progress(&report);
        history.push(report);
        if let Some(path) = &config.checkpoint {
            let b = best.as_ref().expect("set above");
            let ck = Checkpoint {
                epoch: epoch + 1,
                params: chain.params().to_vec(),
                adam_m: adam.m.clone(),
                adam_v: adam.v.clone(),
                adam_step: adam.step,
                best_nll: b.0,
                best_epoch: b.2,
                best_params: Some(b.1.clone()),
            };
            let options = TrainedModel {
                chain: chain.clone(),
                layout,
                x_norm: x_norm.clone(),
                y_norm: y_norm.clone(),
                x_transform: config.x_transform.clone(),
                y_transform: config.y_transform,
                x_names: config.x_names.clone(),
                x_units: config.x_units.clone(),
                history: Vec::new(),
                best_epoch: epoch + 1,
            }
            .export_options();
            checkpoint::save(path, &chain, &options, &ck)?;
        }
        if config.patience.is_some_and(|p| since_best >= p) {
            break;
        }
    }
    let best_epoch = match best {
        Some((_, params, e))
            if config.patience.is_some() || (val_set.is_some() && inn_config.is_none()) =>
        {
            chain.params_mut().copy_from_slice(&params);
            e
        }
        _ => history.last().map_or(0, |r| r.epoch),
    };
    Ok(TrainedModel {
        chain,
        layout,
        x_norm,
        y_norm,
        x_transform: config.x_transform.clone(),
        y_transform: config.y_transform,
        x_names: config.x_names.clone(),
        x_units: config.x_units.clone(),
        history,
        best_epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::Labelling;
    use crate::tasks::msi::{MSI_BANDS, MSI_SNR, msi_bands};

    #[test]
    fn reobserved_noise_is_keyed_by_seed_and_epoch_not_by_threads() {
        let task = Task::MsiOximetry;
        let data = task.simulate(3 * REOBSERVE_CHUNK + 5, 1, 0);
        let y = reobserve(task, &data.x, 1, 3, 1);
        assert_eq!(y, reobserve(task, &data.x, 1, 3, 2));
        assert_ne!(y, reobserve(task, &data.x, 1, 4, 1));
        assert_ne!(y, reobserve(task, &data.x, 2, 3, 1));
        // The same x under new noise: ln(b̃/b)·SNR is standard normal again.
        let eps: Vec<f64> = data
            .x
            .chunks_exact(4)
            .zip(y.chunks_exact(MSI_BANDS))
            .flat_map(|(x, b)| {
                let clean = msi_bands(&x.iter().map(|&v| v as f64).collect::<Vec<_>>());
                (0..MSI_BANDS)
                    .map(|k| MSI_SNR * (b[k] as f64 / clean[k]).ln())
                    .collect::<Vec<_>>()
            })
            .collect();
        let m = eps.iter().sum::<f64>() / eps.len() as f64;
        let v = eps.iter().map(|e| (e - m).powi(2)).sum::<f64>() / eps.len() as f64;
        assert!(
            m.abs() < 0.02 && (v.sqrt() - 1.0).abs() < 0.02,
            "{m} ± {}",
            v.sqrt()
        );
    }

    #[test]
    fn fresh_noise_changes_the_epochs_after_the_first() {
        let config = TrainConfig {
            blocks: 2,
            subnet: SubnetSpec {
                hidden: vec![16],
                ..SubnetSpec::default()
            },
            epochs: 2,
            batch: 200,
            threads: 1,
            seed: 5,
            ..TrainConfig::default()
        };
        let data = Task::MsiOximetry.simulate(2000, 5, 0);
        let fixed = train(&config, &data, |_| {}).unwrap();
        let fresh = TrainConfig {
            fresh_noise: Some(Task::MsiOximetry),
            ..config.clone()
        };
        let a = train(&fresh, &data, |_| {}).unwrap();
        let b = train(&fresh, &data, |_| {}).unwrap();
        // The first epoch sees the data's y; the second new noise, the same on every run.
        let losses =
            |m: &TrainedModel, e: usize| (m.history[e].train_loss, m.history[e].validation_nll);
        assert_eq!(losses(&a, 0), losses(&fixed, 0));
        assert_ne!(a.history[1].train_loss, fixed.history[1].train_loss);
        assert_eq!(a.history[1].train_loss, b.history[1].train_loss);
        // Standardised as the first epoch: the model's y statistics are the data's.
        assert_eq!(a.y_norm, fixed.y_norm);
        // Only a task that re-observes x, with the data's widths.
        for task in [Task::Gmm8(Labelling::Some), Task::MsiOximetryTwoLayer] {
            let wrong = TrainConfig {
                fresh_noise: Some(task),
                ..config.clone()
            };
            assert!(matches!(
                train(&wrong, &data, |_| {}),
                Err(Error::Argument(_))
            ));
        }
    }
}
