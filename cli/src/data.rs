//! Arrays in and out of the CLI: `.npy` and `.csv` files chosen by extension, inline
//! comma-separated observations (`--y 1.5,0`), and CSV on standard output.
//!
//! CSV here is plain numbers: one row per line, fields separated by commas (spaces around them
//! are allowed), no header; empty lines and lines starting with `#` (numpy.savetxt's header
//! style) are skipped. Written CSV uses Rust's shortest round-trip form of each f32, so reading
//! it back as float32 gives the same bits.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use innfer::npy;

/// A failure, already phrased for the user.
pub type CliResult<T> = Result<T, String>;

/// The file formats the CLI reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Npy,
    Csv,
}

/// The format named by a path's extension (case-insensitive), if it names one.
pub fn format_of(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "npy" => Some(Format::Npy),
        "csv" => Some(Format::Csv),
        _ => None,
    }
}

/// Where `--output` sends the result: a file in one of the formats, or CSV on stdout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink<'p> {
    Stdout,
    File(&'p Path, Format),
}

impl<'p> Sink<'p> {
    /// `None` or `-` is stdout; otherwise the extension decides (`option` names the flag in
    /// the message when it names neither format).
    pub fn of(path: Option<&'p Path>, option: &str) -> CliResult<Sink<'p>> {
        match path {
            None => Ok(Sink::Stdout),
            Some(p) if p.as_os_str() == "-" => Ok(Sink::Stdout),
            Some(p) => match format_of(p) {
                Some(f) => Ok(Sink::File(p, f)),
                None => Err(format!(
                    "{option} {}: unknown output format (name a .npy or .csv file, or - for CSV on stdout)",
                    p.display()
                )),
            },
        }
    }
}

/// A matrix of f32 read from somewhere: its shape as found (for messages) and its data.
#[derive(Debug)]
pub struct Matrix {
    pub shape: Vec<usize>,
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

/// Reads a `.npy` (any other extension is read as `.npy` too) or a `.csv` file.
pub fn read_file(path: &Path) -> CliResult<Matrix> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    match format_of(path) {
        Some(Format::Csv) => {
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| format!("reading {}: not a UTF-8 text file", path.display()))?;
            parse_csv(text).map_err(|e| format!("reading {}: {e}", path.display()))
        }
        _ => {
            let array =
                npy::parse(&bytes).map_err(|e| format!("reading {}: {e}", path.display()))?;
            let (rows, cols) = array.as_matrix();
            Ok(Matrix {
                shape: array.shape,
                rows,
                cols,
                data: array.data,
            })
        }
    }
}

/// Reads a matrix file and checks it has `width` columns (`what` names the width).
pub fn read_matrix(path: &Path, width: usize, what: &str) -> CliResult<(usize, Vec<f32>)> {
    let m = read_file(path)?;
    if m.cols != width {
        return Err(format!(
            "reading {}: shape {:?} does not match {what} {width}",
            path.display(),
            m.shape
        ));
    }
    Ok((m.rows, m.data))
}

/// One number of a CSV field or inline list; `None` if it is not one.
fn number(field: &str) -> Option<f32> {
    let f = field.trim();
    // Rust accepts "inf", "NaN", "infinity" in any case: so does numpy.loadtxt.
    f.parse::<f32>().ok()
}

/// Parses CSV text into a matrix: every row must have the same number of fields.
pub fn parse_csv(text: &str) -> Result<Matrix, String> {
    let mut data = Vec::new();
    let mut rows = 0usize;
    let mut cols = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut count = 0usize;
        for (j, field) in line.split(',').enumerate() {
            let v = number(field).ok_or_else(|| {
                format!(
                    "line {}, field {}: `{}` is not a number",
                    i + 1,
                    j + 1,
                    field.trim()
                )
            })?;
            data.push(v);
            count += 1;
        }
        match cols {
            None => cols = Some(count),
            Some(c) if c != count => {
                return Err(format!(
                    "line {} has {count} fields, the rows before it have {c}",
                    i + 1
                ));
            }
            Some(_) => {}
        }
        rows += 1;
    }
    let cols = cols.ok_or_else(|| "no rows of numbers (the file is empty)".to_string())?;
    Ok(Matrix {
        shape: vec![rows, cols],
        rows,
        cols,
        data,
    })
}

/// Parses an inline observation `1.5,0,-2e-3`: one row.
pub fn parse_inline(text: &str) -> Result<Vec<f32>, String> {
    if text.trim().is_empty() {
        return Err("empty list of numbers".into());
    }
    text.split(',')
        .enumerate()
        .map(|(j, field)| {
            number(field).ok_or_else(|| {
                if field.trim().is_empty() {
                    format!("value {} is empty", j + 1)
                } else {
                    format!("`{}` (value {}) is not a number", field.trim(), j + 1)
                }
            })
        })
        .collect()
}

/// Whether `--y VALUE` names a file (it exists, or ends in .npy/.csv) rather than numbers.
pub fn names_a_file(value: &str) -> bool {
    let p = Path::new(value);
    p.is_file() || format_of(p).is_some()
}

/// Observations given to `--y`: a file, or comma-separated numbers for one observation.
/// Returns (rows, data) with `width` columns.
pub fn read_observations(value: &str, width: usize) -> CliResult<(usize, Vec<f32>)> {
    if names_a_file(value) {
        return read_matrix(Path::new(value), width, "the model's y_dim");
    }
    let y = parse_inline(value).map_err(|e| {
        format!("--y {value}: {e} (give comma-separated numbers, or a .npy/.csv file)")
    })?;
    if y.len() != width {
        return Err(format!(
            "--y {value}: {} value{}, but the model's y_dim is {width}",
            y.len(),
            if y.len() == 1 { "" } else { "s" }
        ));
    }
    Ok((1, y))
}

/// Writes rows of `cols` numbers as CSV.
pub fn write_csv<W: Write>(mut w: W, cols: usize, data: &[f32]) -> io::Result<()> {
    let mut line = String::new();
    for row in data.chunks(cols.max(1)) {
        line.clear();
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                line.push(',');
            }
            // `{}` is the shortest text that reads back as the same f32 (NaN, inf as words).
            line.push_str(&format!("{v}"));
        }
        line.push('\n');
        w.write_all(line.as_bytes())?;
    }
    w.flush()
}

/// Writes `data` of `shape` (`[rows, cols]` or `[rows]`) to `sink`. `option` names the flag.
pub fn write(sink: &Sink<'_>, shape: &[usize], data: &[f32]) -> CliResult<()> {
    let cols = if shape.len() == 2 { shape[1] } else { 1 };
    match *sink {
        Sink::Stdout => {
            let stdout = io::stdout();
            let lock = BufWriter::new(stdout.lock());
            match write_csv(lock, cols, data) {
                Ok(()) => Ok(()),
                // `innfer sample … | head` is not an error.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(format!("writing to stdout: {e}")),
            }
        }
        Sink::File(path, format) => {
            let fail = |e: io::Error| format!("writing {}: {e}", path.display());
            let file = BufWriter::new(File::create(path).map_err(fail)?);
            match format {
                Format::Npy => npy::write_f32(file, shape, data).map_err(fail),
                Format::Csv => write_csv(file, cols, data).map_err(fail),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_lists() {
        assert_eq!(parse_inline("1.5,0").unwrap(), vec![1.5, 0.0]);
        assert_eq!(
            parse_inline(" -1 , 2e-3 ,inf").unwrap(),
            vec![-1.0, 2e-3, f32::INFINITY]
        );
        assert!(
            parse_inline("1.5,abc")
                .unwrap_err()
                .contains("`abc` (value 2)")
        );
        assert!(
            parse_inline("1,,2")
                .unwrap_err()
                .contains("value 2 is empty")
        );
        assert!(parse_inline("").is_err());
    }

    #[test]
    fn csv_round_trip_is_exact() {
        let data = [0.1f32, -3.4e-20, 1.0 / 3.0, 7.0, f32::MAX, -0.0];
        let mut out = Vec::new();
        write_csv(&mut out, 3, &data).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2);
        let m = parse_csv(&text).unwrap();
        assert_eq!((m.rows, m.cols), (2, 3));
        for (a, b) in m.data.iter().zip(&data) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    #[test]
    fn csv_comments_blank_lines_and_errors() {
        let m = parse_csv("# x0,x1\n1, 2\n\n3,4\n").unwrap();
        assert_eq!(m.shape, vec![2, 2]);
        assert_eq!(m.data, vec![1.0, 2.0, 3.0, 4.0]);
        assert!(
            parse_csv("1,2\n3\n")
                .unwrap_err()
                .contains("line 2 has 1 fields")
        );
        assert!(
            parse_csv("1,2\n3,x\n")
                .unwrap_err()
                .contains("line 2, field 2: `x`")
        );
        assert!(parse_csv("# nothing\n").is_err());
    }

    #[test]
    fn formats_by_extension() {
        assert_eq!(format_of(Path::new("a/b.NPY")), Some(Format::Npy));
        assert_eq!(format_of(Path::new("b.csv")), Some(Format::Csv));
        assert_eq!(format_of(Path::new("b.txt")), None);
        assert_eq!(Sink::of(None, "--output"), Ok(Sink::Stdout));
        assert_eq!(Sink::of(Some(Path::new("-")), "--output"), Ok(Sink::Stdout));
        assert!(
            Sink::of(Some(Path::new("x.txt")), "--output")
                .unwrap_err()
                .contains("x.txt")
        );
        assert!(names_a_file("missing.npy"));
        assert!(names_a_file("missing.CSV"));
        assert!(!names_a_file("1.5,0"));
        assert!(!names_a_file("3"));
    }
}
