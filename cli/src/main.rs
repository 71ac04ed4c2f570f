//! `innfer`: inspect FrEIA models and run forward, inverse and posterior sampling on `.npy` data.

mod npy;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use innfer::{FreiaVariant, Layout, Model, Session};

/// Rows per call when `--batch` is not given.
const DEFAULT_BATCH: usize = 1024;

#[derive(Parser, Debug)]
#[command(
    name = "innfer",
    version,
    about = "Run FrEIA invertible neural networks stored as innfer .safetensors models",
    after_help = "Examples:\n  \
        innfer info model.safetensors\n  \
        innfer forward model.safetensors --input x.npy --cond y.npy --output z.npy --logdet ld.npy\n  \
        innfer sample model.safetensors --y y_obs.npy -n 1000 --seed 7 --output x.npy\n\n\
        Arrays are .npy files (float32 or float64, C order) of shape [rows, width] or [width]."
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
    /// Forward pass z = f(x; cond), with per-row log|det J|.
    #[command(after_help = "Example:\n  \
        innfer forward model.safetensors --input x.npy --output z.npy --logdet logdet.npy\n\n\
        x.npy is [rows, dim] (or [dim] for one row); z.npy is written as float32 [rows, dim] and\n\
        logdet.npy as float32 [rows]. Models with a condition need --cond [rows, cond_dim]\n\
        (a single row [cond_dim] is used for every input row).")]
    Forward(PassArgs),
    /// Inverse pass x = f⁻¹(z; cond), with per-row log|det J| of the inverse.
    #[command(after_help = "Example:\n  \
        innfer inverse model.safetensors --input z.npy --cond y.npy --output x.npy\n\n\
        z.npy is [rows, dim] (or [dim] for one row); x.npy is written as float32 [rows, dim].\n\
        Models with a condition need --cond [rows, cond_dim] (a single row [cond_dim] is used\n\
        for every input row).")]
    Inverse(PassArgs),
    /// Draw N posterior samples of x for each observation y.
    #[command(after_help = "Example:\n  \
        innfer sample model.safetensors --y y_obs.npy -n 1000 --seed 42 --output x.npy\n\n\
        y_obs.npy is [rows, y_dim] (or [y_dim]); x.npy is written as float32 [rows·N, x_dim],\n\
        observation by observation (rows 0..N belong to the first y). The same --seed and\n\
        --stream give the same samples on every run.")]
    Sample(SampleArgs),
}

#[derive(Args, Debug)]
struct PassArgs {
    /// The model (.safetensors in the innfer format).
    model: PathBuf,
    /// Input rows, .npy [rows, dim] or [dim].
    #[arg(long, value_name = "IN.npy")]
    input: PathBuf,
    /// Where to write the output rows (.npy float32 [rows, dim]).
    #[arg(long, value_name = "OUT.npy")]
    output: PathBuf,
    /// Condition rows, .npy [rows, cond_dim] or [cond_dim] (required by conditional models).
    #[arg(long, value_name = "C.npy")]
    cond: Option<PathBuf>,
    /// Where to write the per-row log|det J| (.npy float32 [rows]).
    #[arg(long, value_name = "LD.npy")]
    logdet: Option<PathBuf>,
    /// Most rows per call (the session's maximum batch).
    #[arg(long, default_value_t = DEFAULT_BATCH, value_parser = parse_batch)]
    batch: usize,
}

#[derive(Args, Debug)]
struct SampleArgs {
    /// The model (.safetensors in the innfer format, with layout inn or cinn).
    model: PathBuf,
    /// Observations, .npy [rows, y_dim] or [y_dim].
    #[arg(long, value_name = "Y.npy")]
    y: PathBuf,
    /// Samples per observation.
    #[arg(short = 'n', value_name = "N", value_parser = parse_batch)]
    n: usize,
    /// Seed of the random stream.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stream number: independent streams for the same seed (e.g. one per worker).
    #[arg(long, default_value_t = 0)]
    stream: u64,
    /// Where to write the samples (.npy float32 [rows·N, x_dim]).
    #[arg(long, value_name = "X.npy")]
    output: PathBuf,
    /// Most rows per call (the session's maximum batch); does not change the samples.
    #[arg(long, default_value_t = DEFAULT_BATCH, value_parser = parse_batch)]
    batch: usize,
}

/// A positive count (clap reports anything else as a usage error).
fn parse_batch(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("`{s}` is not a positive integer: {e}")),
    }
}

/// A failure, already phrased for the user (one line, naming the file/option at fault).
type CliResult<T> = Result<T, String>;

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    }
}

fn load_model(path: &Path) -> CliResult<Model> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    Model::from_bytes(&bytes).map_err(|e| format!("loading {}: {e}", path.display()))
}

/// Reads an `.npy` as a matrix with `width` columns (`[width]` is one row).
/// `what` names the width in messages (e.g. "the model's dim").
fn read_matrix(path: &Path, width: usize, what: &str) -> CliResult<(usize, Vec<f32>)> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let array = npy::parse(&bytes).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let (rows, cols) = array.as_matrix();
    if cols != width {
        return Err(format!(
            "reading {}: shape {:?} does not match {what} {width}",
            path.display(),
            array.shape
        ));
    }
    Ok((rows, array.data))
}

fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> CliResult<()> {
    let fail = |e: std::io::Error| format!("writing {}: {e}", path.display());
    let file = File::create(path).map_err(fail)?;
    npy::write_f32(BufWriter::new(file), shape, data).map_err(fail)
}

fn session<'m>(model: &'m Model, rows: usize, batch: usize) -> CliResult<Session<'m, 'static>> {
    // No bigger than needed: a small input does not need a 1024-row arena.
    let max_batch = batch.min(rows).max(1);
    Session::new(model, max_batch)
        .map_err(|e| format!("creating a session for --batch {batch}: {e}"))
}

fn info(path: &Path, batch: usize) -> CliResult<()> {
    let model = load_model(path)?;
    let bytes = Session::arena_bytes(&model, batch).map_err(|e| format!("--batch {batch}: {e}"))?;
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
    line(
        "session memory",
        &format!("{bytes} bytes at --batch {batch}"),
    );
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
    let (rows, input) = read_matrix(&args.input, d, "the model's dim")?;

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
            let (crows, c) = read_matrix(p, cc, "the model's cond_dim")?;
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

    let mut session = session(&model, rows, args.batch)?;
    let chunk = session.max_batch();
    let mut output = vec![0.0f32; input.len()];
    let mut logdet = vec![0.0f32; rows];
    let name = if inverse { "inverse" } else { "forward" };
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
        start = end;
    }

    write_npy(&args.output, &[rows, d], &output)?;
    if let Some(p) = &args.logdet {
        write_npy(p, &[rows], &logdet)?;
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
    let (rows, ys) = read_matrix(&args.y, yd, "the model's y_dim")?;
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
    let mut session = session(&model, total, args.batch)?;
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
    let sampled = if yd == 0 {
        // `sample_batch` cannot tell how many empty observations there are: one call each.
        x.chunks_mut(per_obs)
            .try_for_each(|xs| session.sample(&[], args.n, xs))
    } else {
        session.sample_batch(&ys, args.n, &mut x)
    };
    sampled.map_err(|e| format!("sampling: {e}"))?;
    write_npy(&args.output, &[total, xd], &x)
}
