//! What every PNG figure of the CLI shares: drawing with plotters into an RGB buffer and
//! encoding with `png`, the embedded font, the colours, histograms.
//!
//! Text uses DejaVu Sans embedded in the binary (plotters' `ab_glyph` feature), so the figures
//! look the same on a machine without any system fonts.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

/// Font family name the figures use (registered once with the embedded font).
pub const FONT: &str = "sans-serif";

pub const PRIOR_COLOUR: RGBColor = RGBColor(150, 150, 150);
pub const POSTERIOR_COLOUR: RGBColor = RGBColor(33, 113, 181);
pub const TRUTH_COLOUR: RGBColor = RGBColor(203, 24, 29);

/// Registers the embedded font (once per process).
fn fonts() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let bad = |_| "the embedded DejaVu Sans font cannot be read".to_string();
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(bad)?;
        plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).map_err(bad)
    })
    .clone()
}

/// Any plotters error as a message about `path`.
pub fn draw_err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> String + '_ {
    move |e| format!("drawing {}: {e}", path.display())
}

/// Draws with `draw` on a white `w`×`h` canvas and writes it to `path` as an 8-bit RGB PNG.
pub fn png_figure(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<(), String> {
    fonts()?;
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err(path))?;
        draw(&root)?;
        root.present().map_err(draw_err(path))?;
    }
    let fail = |e: &dyn std::fmt::Display| format!("writing {}: {e}", path.display());
    let file = File::create(path).map_err(|e| fail(&e))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().map_err(|e| fail(&e))?;
    writer.write_image_data(&rgb).map_err(|e| fail(&e))?;
    writer.finish().map_err(|e| fail(&e))
}

/// A density histogram of `values` over [lo, hi) in `bins` bins (values outside are dropped
/// from the bars but still count in the normalisation).
pub fn histogram(values: impl Iterator<Item = f64>, lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let mut counts = vec![0usize; bins];
    let mut total = 0usize;
    let width = (hi - lo) / bins as f64;
    for v in values {
        total += 1;
        if v >= lo && v < hi {
            counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
        }
    }
    let norm = (total.max(1) as f64) * width;
    counts.iter().map(|&c| c as f64 / norm).collect()
}

/// A chart with f64 axes on a bitmap.
pub type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The prior's histogram (grey) and a posterior's (blue) over it, bins of `width` from `lo`,
/// with their legend entries: the bars of every marginal figure.
pub fn prior_and_posterior_bars(
    path: &Path,
    chart: &mut Chart<'_, '_>,
    (lo, width): (f64, f64),
    (prior, prior_label): (&[f64], &str),
    (posterior, posterior_label): (&[f64], String),
) -> Result<(), String> {
    for (h, label, style) in [
        (
            prior,
            prior_label.to_string(),
            PRIOR_COLOUR.mix(0.45).filled(),
        ),
        (
            posterior,
            posterior_label,
            POSTERIOR_COLOUR.mix(0.6).filled(),
        ),
    ] {
        chart
            .draw_series(histogram_bars(h, lo, width, style))
            .map_err(draw_err(path))?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], style));
    }
    Ok(())
}

/// The bars of a histogram with bins of `width` starting at `lo` (empty bins left out).
pub fn histogram_bars(
    h: &[f64],
    lo: f64,
    width: f64,
    style: ShapeStyle,
) -> Vec<Rectangle<(f64, f64)>> {
    h.iter()
        .enumerate()
        .filter(|(_, v)| **v > 0.0)
        .map(|(i, &v)| {
            let x0 = lo + i as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width, v)], style)
        })
        .collect()
}
