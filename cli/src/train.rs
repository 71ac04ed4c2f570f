//! `innfer train`: train a cINN for p(x | y) on a built-in simulator or on user data, with a
//! live progress bar, a checkpoint after every epoch and `--resume`; writes a normal innfer
//! model file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use innfer::model::{XTransform, YTransform};
use innfer::tasks::{Dataset, Labelling, Task};
use innfer::train::checkpoint;
use innfer::train::trainer::chain_spec;
use innfer::train::{Chain, EpochReport, SubnetSpec, TrainConfig};

use crate::data::{self, CliResult};

/// The built-in tasks by their command-line names.
pub const TASKS: [(&str, Task); 7] = [
    ("gmm8-all", Task::Gmm8(Labelling::All)),
    ("gmm8-some", Task::Gmm8(Labelling::Some)),
    ("gmm8-none", Task::Gmm8(Labelling::None)),
    ("kinematics", Task::Kinematics),
    ("gaussian-linear", Task::GaussianLinear),
    ("msi-oximetry", Task::MsiOximetry),
    ("msi-oximetry-2l", Task::MsiOximetryTwoLayer),
];

/// Parses a task name (clap value parser): the message lists the names there are.
pub fn parse_task(s: &str) -> Result<Task, String> {
    TASKS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s))
        .map(|&(_, t)| t)
        .ok_or_else(|| {
            let names: Vec<&str> = TASKS.iter().map(|(n, _)| *n).collect();
            format!("unknown task `{s}` (tasks: {})", names.join(", "))
        })
}

/// The command-line name of a task.
pub fn task_name(task: Task) -> &'static str {
    TASKS
        .iter()
        .find(|(_, t)| *t == task)
        .map_or("?", |(n, _)| n)
}

/// The training objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Objective {
    /// cINN maximum likelihood: mean(½‖z‖² − log|det J|).
    Ml,
    /// The bidirectional INN objective of Ardizzone et al. (MMD on [z, y] and on x).
    Inn,
}

/// Everything `innfer train` was asked for.
#[derive(Debug)]
pub struct TrainOptions {
    pub task: Option<Task>,
    pub x: Option<PathBuf>,
    pub y: Option<PathBuf>,
    pub out: PathBuf,
    pub objective: Objective,
    pub blocks: usize,
    pub hidden: usize,
    pub layers: usize,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    pub threads: Option<usize>,
    pub n_train: Option<usize>,
    /// Width of the INN for `--objective inn` (None: the narrowest that holds x and [z, y]).
    pub inn_dim: Option<usize>,
    pub resume: bool,
}

/// Simulations drawn for a built-in task when `--n-train` is not given.
pub const DEFAULT_N_TRAIN: usize = 100_000;

/// Where the checkpoint of a run writing `out` goes: `out` with `.ckpt` appended.
pub fn checkpoint_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".ckpt");
    PathBuf::from(s)
}

/// Reads user data: an x file and a y file (.npy or .csv) with paired rows. A 1-D array is
/// read as a column (one value per row).
pub fn read_dataset(x: &Path, y: &Path) -> CliResult<Dataset> {
    let read = |path: &Path, flag: &str| -> CliResult<(usize, usize, Vec<f32>)> {
        let m = data::read_file(path).map_err(|e| format!("--{flag} {e}"))?;
        let (rows, cols) = if m.shape.len() == 1 {
            (m.data.len(), 1)
        } else {
            (m.rows, m.cols)
        };
        if rows == 0 || cols == 0 {
            return Err(format!(
                "--{flag} {}: no data (shape {:?})",
                path.display(),
                m.shape
            ));
        }
        if let Some(i) = m.data.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "--{flag} {}: row {}, column {} is {} (training data must be finite)",
                path.display(),
                i / cols + 1,
                i % cols + 1,
                m.data[i]
            ));
        }
        Ok((rows, cols, m.data))
    };
    let (xr, xd, xs) = read(x, "x")?;
    let (yr, yd, ys) = read(y, "y")?;
    if xr != yr {
        return Err(format!(
            "--x {} has {xr} rows but --y {} has {yr}: the rows must be paired",
            x.display(),
            y.display()
        ));
    }
    if xr < 2 {
        return Err(format!(
            "--x {}: {xr} row; training needs at least 2",
            x.display()
        ));
    }
    Ok(Dataset {
        x: xs,
        y: ys,
        x_dim: xd,
        y_dim: yd,
    })
}

/// Checks that `out` can be written (its directory exists) before any training.
fn check_out(out: &Path) -> CliResult<()> {
    if out.is_dir() {
        return Err(format!(
            "--out {}: is a directory (name the model file to write)",
            out.display()
        ));
    }
    check_directory(out, "--out")
}

/// Checks that the directory `path` (given by `flag`) is to be written in exists.
pub fn check_directory(path: &Path, flag: &str) -> CliResult<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        return Err(format!(
            "{flag} {}: the directory {} does not exist",
            path.display(),
            parent.display()
        ));
    }
    Ok(())
}

/// The progress display: an indicatif bar over epochs on a terminal, else one line per epoch.
struct EpochProgress {
    bar: Option<ProgressBar>,
}

impl EpochProgress {
    fn new(epochs: usize, first: usize) -> EpochProgress {
        if !std::io::stderr().is_terminal() {
            return EpochProgress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(epochs as u64), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("epoch {pos}/{len} {bar:30} {msg} [{elapsed}, eta {eta}]")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_position(first as u64);
        bar.reset_eta();
        bar.set_message("loss -, val -");
        bar.enable_steady_tick(Duration::from_millis(250));
        EpochProgress { bar: Some(bar) }
    }

    fn epoch(&self, r: &EpochReport) {
        let val = r
            .validation_nll
            .map_or("-".to_string(), |v| format!("{v:.4}"));
        let msg = format!(
            "loss {:.4}, val NLL {val}, {:.0} it/s",
            r.train_loss, r.iterations_per_second
        );
        match &self.bar {
            Some(bar) => {
                bar.set_message(msg);
                bar.set_position(r.epoch as u64);
            }
            None => {
                let eta = r.seconds * (r.epochs - r.epoch) as f64;
                eprintln!(
                    "epoch {}/{}  loss {:.4}  val NLL {val}  {:.0} it/s  {:.1} s  eta {:.0} s",
                    r.epoch, r.epochs, r.train_loss, r.iterations_per_second, r.seconds, eta
                );
            }
        }
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

pub fn run(o: &TrainOptions) -> CliResult<()> {
    check_out(&o.out)?;
    let checkpoint = checkpoint_path(&o.out);
    if o.resume && !checkpoint.is_file() {
        return Err(format!(
            "--resume: no checkpoint {} to continue from (run without --resume to start)",
            checkpoint.display()
        ));
    }
    let (data, source) = match (o.task, &o.x, &o.y) {
        (Some(task), None, None) => {
            let n = o.n_train.unwrap_or(DEFAULT_N_TRAIN);
            if n < 2 {
                return Err(format!(
                    "--n-train {n}: training needs at least 2 simulations"
                ));
            }
            // Stream 0 of the seed: the evaluation draws its test data from other streams.
            let noise = if task.reobserves() {
                ", fresh noise every epoch"
            } else {
                ""
            };
            (
                task.simulate(n, o.seed, 0),
                format!("task {} ({n} simulations{noise})", task_name(task)),
            )
        }
        (None, Some(x), Some(y)) => {
            let mut d = read_dataset(x, y)?;
            if let Some(n) = o.n_train {
                let n = n.min(d.len());
                d = d.select(&(0..n).collect::<Vec<_>>());
            }
            let rows = d.len();
            (
                d,
                format!("{} and {} ({rows} rows)", x.display(), y.display()),
            )
        }
        // clap enforces the combinations; this is a fallback for direct callers.
        _ => return Err("give either --task NAME or both --x FILE and --y FILE".into()),
    };
    let threads = o
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let config = TrainConfig {
        blocks: o.blocks,
        subnet: SubnetSpec {
            hidden: vec![o.hidden; o.layers],
            ..SubnetSpec::default()
        },
        epochs: o.epochs,
        batch: o.batch.min(data.len()),
        lr: o.lr,
        threads,
        seed: o.seed,
        checkpoint: Some(checkpoint.clone()),
        resume: o.resume,
        // A simulator with camera noise shows every epoch fresh noise on the same x.
        fresh_noise: o.task.filter(|t| t.reobserves()),
        // A prior box: the chain models the logit of each parameter in its box, so samples
        // never leave it; raw camera bands enter through their centred log-ratio
        // (docs/format.md §3.1).
        x_transform: o
            .task
            .and_then(|t| t.prior_box())
            .map(|(lo, hi)| {
                lo.iter()
                    .zip(hi)
                    .map(|(&l, &h)| XTransform::logit(l as f32, h as f32))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .map_err(|e| format!("the task's prior box: {e}"))?
            .unwrap_or_default(),
        y_transform: if o.task.is_some_and(|t| t.observes_bands()) {
            YTransform::Clr
        } else {
            YTransform::None
        },
        x_names: labels(o.task, 0),
        x_units: labels(o.task, 1),
        ..TrainConfig::default()
    };
    let config = match o.objective {
        Objective::Ml => config,
        Objective::Inn => config.paper_inn(o.inn_dim.unwrap_or(0)),
    };
    let first = if o.resume {
        resume_epoch(&config, &data, &checkpoint)?
    } else {
        0
    };
    if o.resume && first >= o.epochs {
        eprintln!(
            "innfer: the checkpoint has {first} of --epochs {} epochs done; writing its best parameters",
            o.epochs
        );
    }
    eprintln!(
        "training {} (x {}, y {}; {} {} blocks, hidden {}×{}) on {source}{}",
        match o.objective {
            Objective::Ml => "a cINN by maximum likelihood",
            Objective::Inn => "an INN with the paper's losses",
        },
        data.x_dim,
        data.y_dim,
        o.blocks,
        config.block.freia_name(),
        o.hidden,
        o.layers,
        if o.resume {
            format!(", resuming after epoch {first}")
        } else {
            String::new()
        }
    );
    let progress = EpochProgress::new(o.epochs, first.min(o.epochs));
    let result = innfer::train::train(&config, &data, |r| progress.epoch(r));
    progress.finish();
    let model = result.map_err(|e| {
        if o.resume {
            format!("resuming from {}: {e}", checkpoint.display())
        } else {
            format!("training: {e}")
        }
    })?;
    model
        .save(&o.out)
        .map_err(|e| format!("writing --out {}: {e}", o.out.display()))?;
    let best = model.history.iter().find(|r| r.epoch == model.best_epoch);
    let val = best
        .and_then(|r| r.validation_nll)
        .map_or(String::new(), |v| format!(", validation NLL {v:.4} nats"));
    println!(
        "wrote {} ({} parameters; best epoch {}{val}); checkpoint {}",
        o.out.display(),
        model.chain.params().len(),
        model.best_epoch,
        checkpoint.display()
    );
    Ok(())
}

/// Checks that the checkpoint fits the configured chain (before any output) and returns the
/// number of epochs it has completed.
fn resume_epoch(config: &TrainConfig, data: &Dataset, path: &Path) -> CliResult<usize> {
    let spec = chain_spec(config, data.x_dim, data.y_dim);
    let chain = Chain::<f32>::new(spec, config.seed).map_err(|e| format!("training: {e}"))?;
    let n = chain.params().len();
    match checkpoint::load(path, n) {
        Ok(ck) => Ok(ck.epoch),
        Err(innfer::Error::Dims(_)) => Err(format!(
            "--resume: the checkpoint {} is of another architecture or data width than \
             this run ({n} parameters, x {}, y {}); give the same --blocks, --hidden, --layers and data",
            path.display(),
            data.x_dim,
            data.y_dim
        )),
        Err(e) => Err(format!("--resume: {}: {e}", path.display())),
    }
}

/// The task's parameter names (`which` 0) or units (1), if it gives them.
fn labels(task: Option<Task>, which: usize) -> Vec<String> {
    task.and_then(Task::parameter_labels)
        .map(|l| {
            let list = if which == 0 { l.0 } else { l.1 };
            list.iter().map(|s| s.to_string()).collect()
        })
        .unwrap_or_default()
}
