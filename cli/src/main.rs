//! `innfer`: inspect FrEIA models, run forward, inverse and posterior sampling on `.npy`/`.csv`
//! data, benchmark a model, and demonstrate the shipped default model with figures.

mod arm;
mod armfig;
mod bench;
mod camera;
mod data;
mod demo;
mod eval;
mod evalfig;
mod gmm8fig;
mod image;
mod mapfig;
mod pack;
mod phantom;
mod plot;
mod progress;
mod train;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};
use innfer::{FreiaVariant, Isa, Layout, Model, Session};

use data::{CliResult, Sink};
use progress::Progress;

/// Counts the heap, for `innfer info`'s memory lines (pack.rs).
#[global_allocator]
static ALLOCATOR: pack::Counting = pack::Counting;

/// Rows per call when `--batch` is not given.
const DEFAULT_BATCH: usize = 1024;

/// The subcommands, for pointing usage errors at the right `--help`.
const COMMANDS: [&str; 11] = [
    "info", "forward", "inverse", "sample", "bench", "demo", "train", "eval", "phantom", "pack",
    "help",
];

#[derive(Parser, Debug)]
#[command(
    name = "innfer",
    version,
    about = "Run FrEIA invertible neural networks stored as innfer .safetensors models",
    after_help = "Examples:\n  \
        innfer demo\n  \
        innfer info model.safetensors\n  \
        innfer forward model.safetensors --input x.npy --cond y.npy --output z.npy --logdet ld.npy\n  \
        innfer sample model.safetensors --y 1.5,0 -n 1000 --seed 7 --output x.npy\n  \
        innfer bench model.safetensors --batch 1,64,1024 --threads 1,2\n  \
        innfer train --task gmm8-some --out gmm8.safetensors --epochs 20\n  \
        innfer eval gmm8.safetensors --task gmm8-some --plot figures\n  \
        innfer phantom --out cube.npy --truth truth.npy\n  \
        innfer pack model.safetensors --target cortex-m4 -o model.bin\n\n\
        Arrays are .npy files (float32 or float64, C order) of shape [rows, width] or [width], or\n\
        .csv files (one row per line, comma-separated numbers, no header; # lines are skipped).\n\
        Outputs are written as .npy (float32) or .csv by the file's extension; - is CSV on stdout."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Describe a model: FrEIA variant, layout, dimensions, blocks, parameters, memory.
    #[command(after_help = "Example:\n  \
        innfer info model.safetensors --batch 256\n\n\
        Prints the chain's blocks and the session memory needed for 256 rows per call.")]
    Info {
        /// The model (.safetensors in the innfer format).
        model: PathBuf,
        /// Rows per call to size the session memory for.
        #[arg(long, default_value_t = 1, value_parser = parse_batch)]
        batch: usize,
    },
    /// Write a model's packed image for a target: flash-ready, read in place (no parsing).
    #[command(after_help = "Example:\n  \
        innfer pack model.safetensors --target cortex-m4 -o model.bin\n\n\
        The image holds everything the model needs, laid out as the target's kernel reads it\n\
        (docs/format.md, \"Packed images\"); C builds the model on it with\n\
        innfer_model_init_static, Rust with Model::from_image, both without allocating, and\n\
        every innfer command takes it in place of the .safetensors file. The target fixes:\n\
        \n  \
        cortex-m4  Cortex-M4F/M7: weights in panels of 8 output columns, the last panel only\n             \
        as wide as the columns left (a 2-output layer stays 2 wide: nothing padded),\n             \
        each weight 8-byte aligned in the image, read with aligned loads by the\n             \
        narrow kernel.\n  \
        portable   the host kernels' layout (for a mapped file on a PC): panels of 16 output\n             \
        columns, zero-padded, two interleaved, each weight 64-byte aligned.\n\n\
        Both compute exactly what the portable kernel computes (innfer sample --isa portable\n\
        reproduces a firmware's samples bit for bit). Place the image at a 4-byte aligned\n\
        address (8 for the weights' own alignment to hold). --storage bf16 or f16 halves the\n\
        weights' bytes (each rounded once; every product still in f32).")]
    Pack {
        /// The model (.safetensors in the innfer format).
        model: PathBuf,
        /// The core the image is laid out for: cortex-m4 (Cortex-M4F/M7) or portable.
        #[arg(long, value_parser = pack::parse_target)]
        target: innfer::model::ImageTarget,
        /// Where to write the image.
        #[arg(short = 'o', long = "output", value_name = "MODEL.bin")]
        output: PathBuf,
        /// How the subnets' weights are stored: f32, bf16 or f16.
        #[arg(long, default_value = "f32", value_parser = pack::parse_storage)]
        storage: innfer::WeightStorage,
    },
    /// Forward pass z = f(x; cond), with per-row log|det J|.
    #[command(after_help = "Example:\n  \
        innfer forward model.safetensors --input x.npy --output z.npy --logdet logdet.npy\n\n\
        x.npy is [rows, dim] (or [dim] for one row); z.npy is written as float32 [rows, dim] and\n\
        logdet.npy as float32 [rows]. Models with a condition need --cond [rows, cond_dim]\n\
        (a single row [cond_dim] is used for every input row). Any of the files may be .csv\n\
        instead; --output - prints CSV to stdout.")]
    Forward(PassArgs),
    /// Inverse pass x = f⁻¹(z; cond), with per-row log|det J| of the inverse.
    #[command(after_help = "Example:\n  \
        innfer inverse model.safetensors --input z.npy --cond y.npy --output x.npy\n\n\
        z.npy is [rows, dim] (or [dim] for one row); x.npy is written as float32 [rows, dim].\n\
        Models with a condition need --cond [rows, cond_dim] (a single row [cond_dim] is used\n\
        for every input row). Any of the files may be .csv instead; --output - prints CSV to\n\
        stdout.")]
    Inverse(PassArgs),
    /// Draw N posterior samples of x for each observation y.
    #[command(after_help = "Examples:\n  \
        innfer sample model.safetensors --y 1.5,0 -n 1000 --seed 42 --output x.npy\n  \
        innfer sample model.safetensors --y y_obs.npy -n 1000 --output x.csv\n  \
        innfer sample model.safetensors --y=-0.5,2 -n 5\n\n\
        --y is a file when the value names an existing file or ends in .npy or .csv: then it\n\
        holds observations [rows, y_dim] (or [y_dim]); otherwise it is one observation written\n\
        as comma-separated numbers. The samples are [rows·N, x_dim], observation by observation\n\
        (rows 0..N belong to the first y), written as float32 .npy or as .csv by --output's\n\
        extension, or printed as CSV (one sample per line) when --output is - or omitted.\n\
        The same --seed and --stream give the same samples on every run.")]
    Sample(SampleArgs),
    /// Measure throughput and latency of sampling and of the inverse pass.
    #[command(after_help = "Example:\n  \
        innfer bench model.safetensors --batch 1,64,1024 --threads 1,2\n  \
        innfer train --task gmm8-some --out gmm8.safetensors --epochs 20\n  \
        innfer eval gmm8.safetensors --task gmm8-some --plot figures\n\n\
        For each operation (sample, if the model has a sampling layout, and inverse), thread\n\
        count and batch size, prints samples per second (rows of all threads together) and\n\
        microseconds per call (per thread), the median of --reps runs of at least --min-time\n\
        seconds each. Build with --release for meaningful numbers.")]
    Bench(BenchArgs),
    /// Sample the shipped models (8-mode Gaussian mixture, inverse-kinematics arm), summarise, and draw figures.
    #[command(after_help = "Example:\n  \
        innfer demo -n 4000 --seed 1 --out figures\n\n\
        Draws N posterior samples for each of the four labels of the embedded mixture model and\n\
        prints, per label, the mean and std of x, how many of the label's modes the samples\n\
        found and the mass in each. Then writes two PNG figures into --out: gmm8_posteriors.png\n\
        (the samples over the true posterior density, one panel per label) and\n\
        gmm8_marginals.png (for x0 and x1, the posterior histogram of --label over the prior\n\
        histogram, with the true values, the label's mode centres, marked).\n\n\
        Then samples the embedded arm model --arm-n times for each of four target points\n\
        y* = f(x_true) of known arms x_true (the first is (1.5, 0)), prints x_true and, per\n\
        parameter, the mean and std next to the exact posterior's, and the mean\n\
        re-simulation error |f(x) - y*|, and writes kinematics_arms.png (the sampled arms\n\
        reaching each target over the exact posterior's, the true arm in red) and\n\
        kinematics_marginals.png (for y* = (1.5, 0), each parameter's posterior histogram\n\
        over the prior histogram, with the exact posterior outlined and the true value marked).")]
    Demo {
        /// Samples per label.
        #[arg(short = 'n', default_value_t = 4000, value_parser = parse_batch)]
        n: usize,
        /// Seed of the random stream.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Directory for the figures (created if missing).
        #[arg(long, value_name = "DIR", default_value = "innfer-demo")]
        out: PathBuf,
        /// The label whose marginals gmm8_marginals.png shows (0-3).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..4))]
        label: u8,
        /// Samples per target point of the arm.
        #[arg(long, value_name = "N", default_value_t = 1000, value_parser = parse_batch)]
        arm_n: usize,
    },
    /// Train a cINN for p(x | y) on a built-in simulator or on paired x/y data.
    #[command(after_help = "Examples:\n  \
        innfer train --task gmm8-some --out gmm8.safetensors --epochs 20 --threads 2\n  \
        innfer train --x params.npy --y observations.csv --out model.safetensors --blocks 6\n  \
        innfer train --task kinematics --out arm.safetensors --epochs 40 --resume\n\n\
        Tasks: gmm8-all, gmm8-some, gmm8-none (the 8-mode Gaussian mixture with one label per\n\
        mode, labels [0,0,0,0,1,1,2,3], or one label for all), kinematics (the 4-D arm on a\n\
        rail, y its 2-D end point), gaussian-linear (10-D), msi-oximetry and msi-oximetry-2l\n\
        (tissue parameters, 4-D or 6-D, from the 8 raw band values of a multispectral\n\
        camera; every epoch after the first re-observes the training parameters with fresh\n\
        camera noise). --n-train simulations are drawn from --seed. User data: --x [rows, x_dim] and --y [rows, y_dim] (.npy or .csv; a 1-D\n\
        array is one column), row i of both files is one pair. x and y are standardised with\n\
        the training data's mean and std, stored in the model, so the model takes raw units.\n\
        10 % of the rows are held out for the validation NLL; the model written is the epoch\n\
        with the best one. After every epoch a checkpoint is written to OUT.ckpt (itself a\n\
        loadable model); --resume continues from it (give the same data and architecture).\n\
        The result is an ordinary innfer model: innfer info, sample, forward, inverse use it.")]
    Train(TrainArgs),
    /// Posterior quality of a model against the exact posteriors of a built-in task.
    #[command(after_help = "Example:\n  \
        innfer eval gmm8.safetensors --task gmm8-some --n-obs 200 --n-samples 1000 --plot figs\n\n\
        Prints: held-out NLL and the KL gap (NLL minus the exact conditional entropy, where it\n\
        has a closed form); over --n-obs observations (x*, y) from the prior predictive with\n\
        --n-samples posterior samples each: the unbiased MMD² (IMQ kernel, h ∈ {0.05, 0.2,\n\
        0.9}, raw x units) against as many exact reference samples, the re-simulation error\n\
        (kinematics), the SBC rank KS p-value and the median calibration error per dimension;\n\
        for the mixtures the mass of every mode per label and the off-mode mass. For the msi\n\
        tasks (y: raw band values) instead of the MMD²: the samples outside the prior box, and\n\
        for the first --n-reference observations against an importance-sampled reference\n\
        posterior the error of the mean in posterior stds, the std ratio and the MMD² in\n\
        box-scaled coordinates. Targets are those of the quality bar (ok/FAIL); small\n\
        --n-obs/--n-samples make them noisy. --plot writes sbc_ranks.png and calibration.png\n\
        into DIR.")]
    Eval(EvalArgs),
    /// Per-pixel posterior maps of a spectral image: mean, std and quantiles of every parameter.
    #[command(after_help = "Example:\n  \
        innfer phantom --out cube.npy --truth truth.npy\n  \
        innfer image models/msi_oximetry.safetensors --cube cube.npy --n 32 --out maps --truth truth.npy\n\n\
        CUBE is (height, width, bands) of white-referenced band values, what the camera gives (a\n\
        model with the clr y transform takes them raw). Every pixel is one observation: --n\n\
        posterior samples each, reduced on the fly (Session::summarize) to the mean, std and the\n\
        5/50/95 % quantiles (exact order statistics). Writes DIR/mean.npy, std.npy (h, w, x_dim),\n\
        quantiles.npy (h, w, 3, x_dim) and one PNG per parameter (posterior mean and std). A pixel\n\
        with a NaN, infinite or non-positive band gets NaN summaries and is counted. With --truth\n\
        (h, w, x_dim): also the error and z-score maps, the RMSE and the calibration over pixels\n\
        (calibration.png). Pixel p uses rows p·n … p·n + n − 1 of the stream of --seed: the same\n\
        maps for any --threads.")]
    Image(ImageArgs),
    /// Write the 256×256 multispectral tissue phantom of the msi-oximetry task and its truth.
    #[command(after_help = "Example:\n  \
        innfer phantom --out cube.npy --truth truth.npy --seed 1 --ratio-map ratio.npy\n\n\
        The scene (docs/tasks.md §phantom): a smooth background of nominal tissue, two arteries\n\
        and two veins with soft edges, and an ischemic disc (radius 31 px, sO2 0.30). Every\n\
        pixel is observed as the msi-oximetry task observes: --out gets float32 [256, 256, 8]\n\
        raw band values (470, 480, 511, 560, 580, 600, 660, 700 nm; multiplicative noise,\n\
        SNR 100), --truth float32 [256, 256, 4] (sO2, vhb, a_mie, b_mie). The scene is fixed;\n\
        --seed draws the camera noise. --ratio-map adds [256, 256], the classical baseline's\n\
        sO2 = α + β·ln(b560/b660) fitted by least squares on simulated nominal tissue.")]
    Phantom {
        /// The band cube to write (.npy, float32 [256, 256, 8]).
        #[arg(long, value_name = "CUBE.npy")]
        out: PathBuf,
        /// The true parameters to write (.npy, float32 [256, 256, 4]).
        #[arg(long, value_name = "TRUTH.npy")]
        truth: PathBuf,
        /// Also write the ratio-map baseline's sO2 (.npy, float32 [256, 256]).
        #[arg(long, value_name = "MAP.npy")]
        ratio_map: Option<PathBuf>,
        /// Seed of the camera noise.
        #[arg(long, default_value_t = innfer::tasks::phantom::PHANTOM_DEFAULT_SEED)]
        seed: u64,
    },
}

#[derive(Args, Debug)]
struct ImageArgs {
    /// The model (.safetensors; a conditional model).
    model: PathBuf,
    /// The spectral cube, .npy (height, width, bands).
    #[arg(long, value_name = "CUBE.npy")]
    cube: PathBuf,
    /// Posterior samples per pixel.
    #[arg(long, default_value_t = 32, value_parser = parse_batch)]
    n: usize,
    /// Seed of the random stream.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Directory for the maps and figures (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The true parameters, .npy (height, width, x_dim): adds error, z-score and calibration.
    #[arg(long, value_name = "TRUTH.npy")]
    truth: Option<PathBuf>,
    /// Threads (default: all cores).
    #[arg(long, value_parser = parse_batch)]
    threads: Option<usize>,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// A built-in simulator: gmm8-all, gmm8-some, gmm8-none, kinematics, gaussian-linear,
    /// msi-oximetry, msi-oximetry-2l.
    #[arg(long, value_name = "NAME", value_parser = train::parse_task,
          conflicts_with_all = ["x", "y"], required_unless_present_any = ["x", "y"])]
    task: Option<innfer::tasks::Task>,
    /// Parameters x of user data, .npy or .csv [rows, x_dim] (with --y).
    #[arg(long, value_name = "X.npy", requires = "y")]
    x: Option<PathBuf>,
    /// Observations y of user data, .npy or .csv [rows, y_dim], paired row by row with --x.
    #[arg(long, value_name = "Y.npy", requires = "x")]
    y: Option<PathBuf>,
    /// The model file to write (.safetensors); the checkpoint goes to OUT.ckpt.
    #[arg(long, value_name = "MODEL.safetensors")]
    out: PathBuf,
    /// Training objective: ml (cINN maximum likelihood) or inn (the bidirectional INN losses).
    #[arg(long, value_enum, default_value_t = train::Objective::Ml)]
    objective: train::Objective,
    /// Coupling blocks: conditional AllInOneBlocks (ml), or GLOW blocks each followed by a
    /// PermuteRandom (inn).
    #[arg(long, default_value_t = 8, value_parser = parse_batch)]
    blocks: usize,
    /// Width of the hidden layers of every subnet.
    #[arg(long, default_value_t = 128, value_parser = parse_batch)]
    hidden: usize,
    /// Hidden layers per subnet (0: every subnet is one Linear layer, so each block's shift
    /// and log-scale are affine in its input: a small model for small data).
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Epochs (passes over the training rows).
    #[arg(long, default_value_t = 20, value_parser = parse_batch)]
    epochs: usize,
    /// Rows per minibatch.
    #[arg(long, default_value_t = 512, value_parser = parse_batch)]
    batch: usize,
    /// Adam's learning rate (ml: cosine-annealed to 1 % over the epochs; inn: constant, with
    /// the paper's Adam betas (0.8, 0.9) and elementwise gradient clipping at 15).
    #[arg(long, default_value_t = 1e-3, value_parser = parse_lr)]
    lr: f64,
    /// Seed of the initialisation, the shuffles and the simulations.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads for the minibatch gradients (default: all cores).
    #[arg(long, value_parser = parse_batch)]
    threads: Option<usize>,
    /// Simulations for a built-in task (default 100000); with --x/--y, use the first N rows.
    #[arg(long, value_name = "N", value_parser = parse_batch)]
    n_train: Option<usize>,
    /// Width of the INN for --objective inn: x is zero-padded to it, and it holds [z, pad, y]
    /// (default: the narrowest that holds x and [z, y], z as wide as x).
    #[arg(long, value_name = "W", value_parser = parse_batch)]
    inn_dim: Option<usize>,
    /// Continue from the checkpoint OUT.ckpt of an earlier run.
    #[arg(long)]
    resume: bool,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// The model (.safetensors, a cINN for the task's x and y).
    model: PathBuf,
    /// The task whose exact posteriors the model is compared with.
    #[arg(long, value_name = "NAME", value_parser = train::parse_task)]
    task: innfer::tasks::Task,
    /// Observations from the prior predictive (for MMD, re-simulation, SBC, calibration).
    #[arg(long, value_name = "K", default_value_t = 200, value_parser = parse_batch)]
    n_obs: usize,
    /// Posterior samples per observation (the mode masses always use 100,000 per label).
    #[arg(long, value_name = "S", default_value_t = 1000, value_parser = parse_batch)]
    n_samples: usize,
    /// Held-out pairs for the NLL and the KL gap.
    #[arg(long, value_name = "N", default_value_t = 20000, value_parser = parse_batch)]
    n_test: usize,
    /// Seed of the test data and of the sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// msi tasks: the first K observations are compared with a reference posterior by
    /// importance sampling (about 0.4 s each for msi-oximetry, 1 s for msi-oximetry-2l).
    #[arg(long, value_name = "K", default_value_t = 16, value_parser = parse_batch)]
    n_reference: usize,
    /// Directory for sbc_ranks.png and calibration.png (created if missing).
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// Also run the classifier two-sample test as sbibm does (10 observations, 10,000 model
    /// samples against 10,000 exact ones each, 5-fold MLP classifier): minutes, not seconds.
    #[arg(long)]
    c2st: bool,
    /// Model and exact samples per observation for --c2st (sbibm: 10,000).
    #[arg(long, default_value_t = 10_000, value_parser = parse_batch)]
    c2st_samples: usize,
}

#[derive(Args, Debug)]
struct PassArgs {
    /// The model (.safetensors in the innfer format).
    model: PathBuf,
    /// Input rows, .npy or .csv, [rows, dim] or [dim].
    #[arg(long, value_name = "IN.npy")]
    input: PathBuf,
    /// Where to write the output rows: .npy (float32 [rows, dim]), .csv, or - for stdout.
    #[arg(long, value_name = "OUT.npy")]
    output: PathBuf,
    /// Condition rows, .npy or .csv, [rows, cond_dim] or [cond_dim] (conditional models only).
    #[arg(long, value_name = "C.npy")]
    cond: Option<PathBuf>,
    /// Where to write the per-row log|det J|: .npy (float32 [rows]), .csv, or - for stdout.
    #[arg(long, value_name = "LD.npy")]
    logdet: Option<PathBuf>,
    /// Most rows per call (the session's maximum batch).
    #[arg(long, default_value_t = DEFAULT_BATCH, value_parser = parse_batch)]
    batch: usize,
    /// Instruction set of the kernels (portable, avx2fma, avx512; default: the best this CPU
    /// has). portable computes what a Cortex-M firmware computes, bit for bit.
    #[arg(long, value_parser = pack::parse_isa)]
    isa: Option<Isa>,
}

#[derive(Args, Debug)]
struct SampleArgs {
    /// The model (.safetensors in the innfer format, with layout inn or cinn).
    model: PathBuf,
    /// Observations: a .npy/.csv file [rows, y_dim], or one observation inline, e.g. 1.5,0.
    #[arg(long, value_name = "Y", allow_hyphen_values = true)]
    y: String,
    /// Samples per observation.
    #[arg(short = 'n', value_name = "N", value_parser = parse_batch)]
    n: usize,
    /// Seed of the random stream.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stream number: independent streams for the same seed (e.g. one per worker).
    #[arg(long, default_value_t = 0)]
    stream: u64,
    /// Where to write the samples: .npy (float32 [rows·N, x_dim]), .csv, or - (the default)
    /// for CSV on stdout.
    #[arg(long, value_name = "X.npy")]
    output: Option<PathBuf>,
    /// Most rows per call (the session's maximum batch); does not change the samples.
    #[arg(long, default_value_t = DEFAULT_BATCH, value_parser = parse_batch)]
    batch: usize,
    /// Instruction set of the kernels (portable, avx2fma, avx512; default: the best this CPU
    /// has). portable computes what a Cortex-M firmware computes, bit for bit.
    #[arg(long, value_parser = pack::parse_isa)]
    isa: Option<Isa>,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// The model (.safetensors in the innfer format).
    model: PathBuf,
    /// Batch sizes (rows per call), comma-separated.
    #[arg(long, value_name = "B,…", value_delimiter = ',', default_value = "1,64,1024", value_parser = parse_batch)]
    batch: Vec<usize>,
    /// Thread counts, comma-separated; each thread runs its own session.
    #[arg(long, value_name = "T,…", value_delimiter = ',', default_value = "1", value_parser = parse_batch)]
    threads: Vec<usize>,
    /// Timed runs per setting (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = parse_batch)]
    reps: usize,
    /// Shortest duration of one timed run, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.1, value_parser = parse_seconds)]
    min_time: f64,
}

/// A positive count (clap reports anything else as a usage error).
fn parse_batch(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("`{s}` is not a positive integer: {e}")),
    }
}

/// A learning rate: positive and finite.
fn parse_lr(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        Ok(_) => Err(format!("`{s}` is not a positive learning rate")),
        Err(e) => Err(format!("`{s}` is not a number: {e}")),
    }
}

/// A duration in seconds, positive and finite.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        Ok(_) => Err(format!("`{s}` is not between 0 and 3600 seconds")),
        Err(e) => Err(format!("`{s}` is not a number: {e}")),
    }
}

/// One line for a usage error: clap's first paragraph, without its `error: ` prefix, joined.
fn usage_error_line(err: &clap::Error) -> String {
    let text = err.to_string();
    let mut parts = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            if parts.is_empty() {
                continue;
            }
            break;
        }
        parts.push(line.strip_prefix("error: ").unwrap_or(line).to_string());
    }
    let command = std::env::args()
        .nth(1)
        .filter(|a| COMMANDS.contains(&a.as_str()) && a != "help");
    let help = match command {
        Some(c) => format!("innfer {c} --help"),
        None => "innfer --help".to_string(),
    };
    format!("{} (see `{help}`)", parts.join(" "))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            // Help and version are not errors; a bare `innfer` prints the help (exit 2).
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                eprintln!("innfer: {}", usage_error_line(&e));
                return ExitCode::from(2);
            }
        },
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("innfer: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> CliResult<()> {
    match cli.command {
        Command::Info { model, batch } => info(&model, batch),
        Command::Forward(args) => pass(&args, false),
        Command::Inverse(args) => pass(&args, true),
        Command::Sample(args) => sample(&args),
        Command::Pack {
            model,
            target,
            output,
            storage,
        } => pack::run(&model, target, storage, &output),
        Command::Image(a) => image::run(
            &load_model(&a.model)?,
            &image::ImageOptions {
                model_path: &a.model,
                cube: &a.cube,
                n: a.n,
                seed: a.seed,
                out: &a.out,
                truth: a.truth.as_deref(),
                threads: a.threads,
            },
        ),
        Command::Bench(args) => {
            let model = load_model(&args.model)?;
            bench::run(
                &bench::BenchOptions {
                    model_path: &args.model,
                    batches: &args.batch,
                    threads: &args.threads,
                    reps: args.reps,
                    min_time: Duration::from_secs_f64(args.min_time),
                },
                &model,
            )
        }
        Command::Demo {
            n,
            seed,
            out,
            label,
            arm_n,
        } => demo::run(n, seed, &out, label as usize, arm_n),
        Command::Train(a) => train::run(&train::TrainOptions {
            task: a.task,
            x: a.x,
            y: a.y,
            out: a.out,
            objective: a.objective,
            blocks: a.blocks,
            hidden: a.hidden,
            layers: a.layers,
            epochs: a.epochs,
            batch: a.batch,
            lr: a.lr,
            seed: a.seed,
            threads: a.threads,
            n_train: a.n_train,
            inn_dim: a.inn_dim,
            resume: a.resume,
        }),
        Command::Phantom {
            out,
            truth,
            ratio_map,
            seed,
        } => phantom::run(&phantom::PhantomOptions {
            out,
            truth,
            ratio_map,
            seed,
        }),
        Command::Eval(a) => eval::run(
            &load_model(&a.model)?,
            &eval::EvalOptions {
                model: a.model,
                settings: innfer::metrics::EvalSettings {
                    task: a.task,
                    n_obs: a.n_obs,
                    n_samples: a.n_samples,
                    n_test: a.n_test,
                    seed: a.seed,
                    n_reference: a.n_reference,
                },
                plot: a.plot,
                c2st: a.c2st.then_some(a.c2st_samples),
            },
        ),
    }
}

/// Loads a model file a tensor at a time (never the whole file in memory).
fn load_model(path: &Path) -> CliResult<Model> {
    Model::from_file(path).map_err(|e| match e {
        // These name the file already.
        innfer::Error::Io { .. } | innfer::Error::Format(_) => e.to_string(),
        _ => format!("loading {}: {e}", path.display()),
    })
}

fn session<'m>(
    model: &'m Model,
    rows: usize,
    batch: usize,
    isa: Option<Isa>,
) -> CliResult<Session<'m, 'static>> {
    // No bigger than needed: a small input does not need a 1024-row arena.
    let max_batch = batch.min(rows).max(1);
    let mut session = Session::new(model, max_batch)
        .map_err(|e| format!("creating a session for --batch {batch}: {e}"))?;
    if let Some(isa) = isa {
        session
            .set_isa(isa)
            .map_err(|e| format!("--isa {}: {e}", isa.name()))?;
    }
    Ok(session)
}

fn info(path: &Path, batch: usize) -> CliResult<()> {
    let (model, peak, resident) = pack::heap_of(|| load_model(path));
    let model = model?;
    let bytes = Session::arena_bytes(&model, batch).map_err(|e| format!("--batch {batch}: {e}"))?;
    let c_bytes = innfer::ffi::session_static_bytes(&model, batch)
        .ok_or_else(|| format!("--batch {batch}: the session would be larger than memory"))?;
    let variant = match model.freia_variant() {
        FreiaVariant::Pypi02 => "0.2 (PyPI)",
        FreiaVariant::Head => "head (git main)",
    };
    let layout = match model.layout() {
        Layout::None => "none (forward/inverse only, no sampling)".to_string(),
        Layout::Inn {
            x,
            pad_x,
            z,
            pad_zy,
            y,
        } => format!("inn (x {x}, pad_x {pad_x}, z {z}, pad_zy {pad_zy}, y {y})"),
        Layout::Cinn { x, y } => format!("cinn (x {x}, y {y})"),
    };
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let (x_norm, y_norm) = model.has_standardization();

    let mut out = String::new();
    let mut line = |k: &str, v: &str| out.push_str(&format!("{k:<16}{v}\n"));
    line("model", &path.display().to_string());
    line("FrEIA", variant);
    if let Some(p) = model.producer() {
        line("producer", p);
    }
    line("layout", &layout);
    line("dim", &model.dim().to_string());
    line("cond_dim", &model.cond_dim().to_string());
    line("parameters", &model.parameter_count().to_string());
    line(
        "standardised",
        &format!("x {}, y {}", yes_no(x_norm), yes_no(y_norm)),
    );
    // Bounds in the kinds' own notation: logit(lower, upper), log(lower).
    let x_transform = if model.x_transform().is_empty() {
        "none".to_string()
    } else {
        model
            .x_transform()
            .iter()
            .map(|t| match (t.lower(), t.upper()) {
                (Some(lo), Some(hi)) => format!("{}({lo}, {hi})", t.kind().name()),
                (Some(lo), None) => format!("{}({lo})", t.kind().name()),
                _ => t.kind().name().to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    line("x transform", &x_transform);
    line("y transform", model.y_transform().name());
    line(
        "session memory",
        &format!(
            "{c_bytes} bytes at --batch {batch} (innfer_session_size: a {bytes}-byte arena, \
             Session::arena_bytes, and the C handle)"
        ),
    );
    line("weights", pack::storage_name(model.weight_storage()));
    for (k, v) in pack::memory_lines(path, Some((peak, resident)), &model) {
        line(&k, &v);
    }
    line("blocks", &model.block_count().to_string());
    let n = model.block_count();
    let index_width = n.saturating_sub(1).to_string().len();
    let kind_width = (0..n)
        .map(|i| model.block_kind(i).unwrap_or("?").len())
        .max()
        .unwrap_or(0);
    for i in 0..n {
        let kind = model.block_kind(i).unwrap_or("?");
        let line = if model.block_takes_condition(i) {
            format!("  {i:>index_width$}  {kind:<kind_width$}  cond")
        } else {
            format!("  {i:>index_width$}  {kind}")
        };
        out.push_str(&line);
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

fn pass(args: &PassArgs, inverse: bool) -> CliResult<()> {
    let model = load_model(&args.model)?;
    let d = model.dim();
    let cc = model.cond_dim();
    // Where the results go, checked before any work.
    let out_sink = Sink::of(Some(&args.output), "--output")?;
    let ld_sink = match &args.logdet {
        Some(p) => Some(Sink::of(Some(p), "--logdet")?),
        None => None,
    };
    if out_sink == Sink::Stdout && ld_sink == Some(Sink::Stdout) {
        return Err("--output - and --logdet -: only one of them can go to stdout".into());
    }
    let (rows, input) = data::read_matrix(&args.input, d, "the model's dim")?;

    // The condition: required iff the model takes one; one row is broadcast to all rows.
    let cond: Option<Vec<f32>> = match (&args.cond, cc) {
        (None, 0) => None,
        (None, _) => {
            return Err(format!(
                "--cond is required: the model takes a condition of width {cc} (cond_dim)"
            ));
        }
        (Some(p), 0) => {
            return Err(format!(
                "--cond {}: the model takes no condition (cond_dim 0)",
                p.display()
            ));
        }
        (Some(p), _) => {
            let (crows, c) = data::read_matrix(p, cc, "the model's cond_dim")?;
            if crows == rows {
                Some(c)
            } else if crows == 1 {
                Some(c.repeat(rows))
            } else {
                return Err(format!(
                    "reading {}: {crows} condition rows for {rows} input rows in {} \
                     (give one row per input row, or a single row for all)",
                    p.display(),
                    args.input.display()
                ));
            }
        }
    };

    let mut session = session(&model, rows, args.batch, args.isa)?;
    let chunk = session.max_batch();
    let mut output = vec![0.0f32; input.len()];
    let mut logdet = vec![0.0f32; rows];
    let name = if inverse { "inverse" } else { "forward" };
    let mut progress = Progress::new(rows as u64, name, "rows");
    let mut start = 0;
    while start < rows {
        let end = (start + chunk).min(rows);
        let (a, b) = (start * d, end * d);
        let c = cond.as_ref().map(|c| &c[start * cc..end * cc]);
        let ld = Some(&mut logdet[start..end]);
        let result = if inverse {
            session.inverse(&input[a..b], c, &mut output[a..b], ld)
        } else {
            session.forward(&input[a..b], c, &mut output[a..b], ld)
        };
        result.map_err(|e| format!("{name} pass on rows {start}..{end}: {e}"))?;
        progress.inc((end - start) as u64);
        start = end;
    }
    progress.finish();

    data::write(&out_sink, &[rows, d], &output)?;
    if let Some(sink) = &ld_sink {
        data::write(sink, &[rows], &logdet)?;
    }
    Ok(())
}

fn sample(args: &SampleArgs) -> CliResult<()> {
    let model = load_model(&args.model)?;
    let layout = model.layout();
    if layout == Layout::None {
        return Err(format!(
            "{}: the model has no sampling layout (innfer.layout = none); use forward/inverse",
            args.model.display()
        ));
    }
    let (xd, yd) = (layout.x_dim(), layout.y_dim());
    let sink = Sink::of(args.output.as_deref(), "--output")?;
    let (rows, ys) = data::read_observations(&args.y, yd)?;
    // x_dim ≥ 1 for every layout, so rows·N fits whenever rows·N·x_dim does.
    let per_obs = args.n.checked_mul(xd).filter(|&p| p > 0);
    let sizes = per_obs
        .and_then(|p| p.checked_mul(rows).map(|len| (p, len)))
        .filter(|&(_, len)| len <= isize::MAX as usize / 4);
    let Some((per_obs, len)) = sizes else {
        return Err(format!(
            "-n {}: {rows} observations × {} samples × x_dim {xd} is too many to hold in memory",
            args.n, args.n
        ));
    };
    let total = rows * args.n;
    let mut session = session(&model, total, args.batch, args.isa)?;
    session.reseed(args.seed, args.stream);
    let mut x = Vec::new();
    x.try_reserve_exact(len).map_err(|_| {
        format!(
            "-n {}: cannot allocate {} bytes for {total} samples",
            args.n,
            len.saturating_mul(4)
        )
    })?;
    x.resize(len, 0.0f32);
    // In chunks of the session's batch, observation by observation: the same numbers as one
    // `sample_batch` call (sample i of the stream is row i, however the calls are split).
    let chunk = session.max_batch();
    let mut progress = Progress::new(total as u64, "sampling", "samples");
    for (o, xs) in x.chunks_mut(per_obs).enumerate() {
        let y = &ys[o * yd..(o + 1) * yd];
        for part in xs.chunks_mut(chunk * xd) {
            let k = part.len() / xd;
            session
                .sample(y, k, part)
                .map_err(|e| format!("sampling observation {o}: {e}"))?;
            progress.inc(k as u64);
        }
    }
    progress.finish();
    data::write(&sink, &[total, xd], &x)
}
