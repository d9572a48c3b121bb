//! Drawing `report::chart::Chart` with plotters to SVG or PNG (feature `charts`).
//!
//! Text is drawn with DejaVu Sans embedded in the binary (plotters' `ab_glyph` font path), so
//! charts render the same on a machine with no system fonts. Colours are the Okabe–Ito palette
//! (Okabe & Ito 2008, "Color Universal Design"), distinguishable with every common form of colour
//! blindness; lines also differ by marker shape, and reference lines are dashed and labelled.
//!
//! Every chart has a title, subtitle lines (the assumptions), axis titles with units, and a
//! legend panel to the right of the plot. Category labels (model names, GPUs) are drawn by
//! hand so long names are never cut.

use crate::error::{Error, Result};
use crate::report::chart::*;
use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

/// Okabe–Ito: orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple, and
/// grey for "other".
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xF0, 0xE4, 0x42),
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x99, 0x99, 0x99),
];
/// Okabe–Ito black, for reference lines.
pub const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
const GRID: RGBColor = RGBColor(0xE4, 0xE4, 0xE4);
const MUTED: RGBColor = RGBColor(0x55, 0x55, 0x55);

const FONT: &str = "sans-serif";

/// The mesh style every chart shares: fonts, grid lines and axis colour.
fn house_mesh<'m, 'a, 'b, X, Y, DB>(mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>) -> &'m mut MeshStyle<'a, 'b, X, Y, DB>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    DB: DrawingBackend,
{
    mesh.axis_desc_style((FONT, 17))
        .label_style((FONT, 15))
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .axis_style(MUTED)
}

/// Register the embedded fonts once per process.
fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The DejaVu files are valid TrueType; a failure here is a packaging bug.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Draw the chart as an SVG document.
pub fn to_svg(chart: &Chart) -> Result<String> {
    fonts();
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (chart.width, chart.height)).into_drawing_area();
        draw(&root, chart).map_err(|e| render_error(&e.to_string()))?;
        root.present().map_err(|e| render_error(&e.to_string()))?;
    }
    Ok(buf)
}

/// Draw the chart as a PNG file at `path` (the caller makes it atomic).
pub fn to_png_file(chart: &Chart, path: &Path) -> Result<()> {
    fonts();
    let io = |e: String| Error::Io { path: path.to_path_buf(), message: e };
    let root = BitMapBackend::new(path, (chart.width, chart.height)).into_drawing_area();
    draw(&root, chart).map_err(|e| io(e.to_string()))?;
    root.present().map_err(|e| io(e.to_string()))?;
    Ok(())
}

/// Draw the chart as PNG bytes in memory (RGB, 8 bits), so that a set of files can be staged
/// before any is placed.
pub fn to_png(chart: &Chart) -> Result<Vec<u8>> {
    fonts();
    let (w, h) = (chart.width, chart.height);
    let pixels = (w as usize)
        .checked_mul(h as usize)
        .and_then(|p| p.checked_mul(3))
        .ok_or_else(|| render_error(&format!("a {w}×{h} image is too large")))?;
    let mut rgb = vec![0u8; pixels];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw(&root, chart).map_err(|e| render_error(&e.to_string()))?;
        root.present().map_err(|e| render_error(&e.to_string()))?;
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| render_error(&e.to_string()))?;
        writer.write_image_data(&rgb).map_err(|e| render_error(&e.to_string()))?;
    }
    Ok(out)
}

/// The chart's bytes in the format `path`'s extension names.
pub fn encode(chart: &Chart, path: &Path) -> Result<Vec<u8>> {
    match ImageFormat::from_path(path)? {
        ImageFormat::Svg => Ok(to_svg(chart)?.into_bytes()),
        ImageFormat::Png => to_png(chart),
    }
}

/// Write the chart to `path` in the format its extension names, whole or not at all.
pub fn write(chart: &Chart, path: &Path) -> Result<()> {
    crate::fsio::check_output(path)?;
    crate::fsio::write_atomic(path, &encode(chart, path)?)
}

/// Write a chart or report text whole or not at all (`crate::fsio`).
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    crate::fsio::write_atomic(path, text.as_bytes())
}

/// A file another library writes (PNG encoder), placed whole or not at all (`crate::fsio`).
pub fn write_atomic_with(path: &Path, produce: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    crate::fsio::write_atomic_with(path, produce)
}

fn render_error(message: &str) -> Error {
    Error::Io { path: "<chart>".into(), message: format!("drawing failed: {message}") }
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn text_style(size: u32, color: &'static RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(color).pos(Pos::new(h, v))
}

fn bold_style(size: u32, color: &'static RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from((FONT, size, FontStyle::Bold).into_font()).color(color).pos(Pos::new(h, v))
}

/// Text on a white box, so reference lines and grid do not run through it.
fn boxed_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    at: (i32, i32),
    style: TextStyle,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (w, h) = area.estimate_text_size(text, &style).unwrap_or((text.len() as u32 * 8, 14));
    let (w, h) = (w as i32, h as i32);
    // Anchored left-centre.
    area.draw(&Rectangle::new([(at.0 - 3, at.1 - h / 2 - 2), (at.0 + w + 3, at.1 + h / 2 + 2)], WHITE.filled()))?;
    area.draw(&Text::new(text.to_string(), at, style))?;
    Ok(())
}

fn text_width<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str, style: &TextStyle) -> u32 {
    area.estimate_text_size(text, style).map(|(w, _)| w).unwrap_or((text.chars().count() as u32) * 9)
}

/// A legend entry.
enum Mark {
    Box(RGBColor),
    Line(RGBColor, usize),
    Dashed(RGBColor),
    Dot(RGBColor),
    Point(RGBColor, usize),
}

fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    shape: usize,
    color: &RGBColor,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let style = color.filled();
    match shape % 4 {
        0 => area.draw(&Circle::new(at, 5, style))?,
        1 => area.draw(&TriangleMarker::new(at, 7, style))?,
        2 => area.draw(&Rectangle::new([(at.0 - 5, at.1 - 5), (at.0 + 5, at.1 + 5)], style))?,
        _ => area.draw(&Cross::new(at, 6, color.stroke_width(3)))?,
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, title: &str, entries: &[(String, Mark)]) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut y = 20;
    area.draw(&Text::new(title.to_string(), (10, y), bold_style(16, &INK, HPos::Left, VPos::Center)))?;
    y += 30;
    for (label, mark) in entries {
        let c = (22, y);
        match mark {
            Mark::Box(color) => {
                area.draw(&Rectangle::new([(12, y - 8), (32, y + 8)], color.filled()))?;
                area.draw(&Rectangle::new([(12, y - 8), (32, y + 8)], INK.stroke_width(1)))?;
            }
            Mark::Line(color, shape) => {
                area.draw(&PathElement::new(vec![(8, y), (36, y)], color.stroke_width(3)))?;
                draw_marker(area, c, *shape, color)?;
            }
            Mark::Dashed(color) => {
                for x in [8, 20, 32] {
                    area.draw(&PathElement::new(vec![(x, y), (x + 6, y)], color.stroke_width(2)))?;
                }
            }
            Mark::Dot(color) => {
                area.draw(&Circle::new(c, 7, INK.filled()))?;
                area.draw(&Circle::new(c, 5, color.filled()))?;
            }
            Mark::Point(color, shape) => draw_marker(area, c, *shape, color)?,
        }
        area.draw(&Text::new(label.clone(), (44, y), text_style(16, &INK, HPos::Left, VPos::Center)))?;
        y += 28;
    }
    Ok(())
}

/// Title and subtitle; returns the height used.
fn draw_header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &Chart,
) -> std::result::Result<i32, Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    root.draw(&Text::new(chart.title.clone(), (20, 24), bold_style(24, &INK, HPos::Left, VPos::Center)))?;
    let mut y = 52;
    for line in &chart.subtitle {
        root.draw(&Text::new(line.clone(), (20, y), text_style(15, &MUTED, HPos::Left, VPos::Center)))?;
        y += 21;
    }
    Ok(y + 4)
}

fn legend_width<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, labels: &[String]) -> u32 {
    let style = text_style(16, &INK, HPos::Left, VPos::Center);
    labels.iter().map(|l| text_width(root, l, &style) + 60).max().unwrap_or(120).clamp(150, 420)
}

/// A "nice" upper bound and the number format for an axis up to `max`.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    for m in [1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0] {
        if m * mag >= max * 1.04 {
            return m * mag;
        }
    }
    10.0 * mag
}

/// A tick label: as many decimals as a tenth of the axis span needs (0–6).
fn axis_label(v: f64, max: f64) -> String {
    let step = (max / 10.0).abs();
    let decimals = if step > 0.0 && step.is_finite() { (-step.log10()).ceil().clamp(0.0, 6.0) as usize } else { 0 };
    let s = format!("{v:.decimals$}");
    if decimals > 0 {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let top = draw_header(root, chart)?;
    let (_, body) = root.split_vertically(top);
    match &chart.body {
        Body::Bars(b) => {
            let names: Vec<String> =
                b.series.iter().map(|s| s.name.clone()).chain(b.refs.iter().map(|r| r.label.clone())).collect();
            let lw = legend_width(root, &names);
            let (plot, legend) = body.split_horizontally(chart.width - lw);
            draw_bars(&plot, b)?;
            draw_legend(&legend, if b.stacked { "terms" } else { "series" }, &bar_legend(b))?;
        }
        Body::Panels(panels) => {
            let names: Vec<String> = panels.iter().flat_map(|(_, b)| b.series.iter().map(|s| s.name.clone())).collect();
            let lw = legend_width(root, &names);
            let (plot, legend) = body.split_horizontally(chart.width - lw);
            // Panels stacked top to bottom, each as tall as its rows need.
            let weights: Vec<u32> = panels.iter().map(|(_, b)| b.categories.len().max(1) as u32 + 2).collect();
            let total: u32 = weights.iter().sum();
            let height = plot.dim_in_pixel().1;
            let mut rest = plot;
            for (i, (title, b)) in panels.iter().enumerate() {
                let h = (height as u64 * weights[i] as u64 / total.max(1) as u64) as u32;
                let (this, next) =
                    if i + 1 < panels.len() { rest.split_vertically(h) } else { (rest.clone(), rest.clone()) };
                this.draw(&Text::new(title.clone(), (20, 12), bold_style(17, &INK, HPos::Left, VPos::Center)))?;
                let (_, inner) = this.split_vertically(26);
                draw_bars(&inner, b)?;
                rest = next;
            }
            if let Some((_, b)) = panels.first() {
                draw_legend(&legend, "series", &bar_legend(b))?;
            }
        }
        Body::Lines(l) => {
            let mut entries: Vec<(String, Mark)> = l
                .series
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.clone(), Mark::Line(PALETTE[LINE_ORDER[i % LINE_ORDER.len()]], i)))
                .collect();
            entries.extend(l.refs.iter().map(|r| (r.label.clone(), Mark::Dashed(INK))));
            if !l.markers.is_empty() {
                entries.push((l.marker_label.clone(), Mark::Dot(WHITE)));
            }
            let names: Vec<String> = entries.iter().map(|(n, _)| n.clone()).collect();
            let lw = legend_width(root, &names);
            let (plot, legend) = body.split_horizontally(chart.width - lw);
            draw_lines(&plot, l)?;
            draw_legend(&legend, "legend", &entries)?;
        }
        Body::Scatter(s) => {
            let mut entries: Vec<(String, Mark)> = s
                .series
                .iter()
                .enumerate()
                .map(|(i, (n, _))| (n.clone(), Mark::Point(PALETTE[LINE_ORDER[i % LINE_ORDER.len()]], i)))
                .collect();
            entries.extend(s.refs.iter().map(|r| (r.label.clone(), Mark::Dashed(INK))));
            let names: Vec<String> = entries.iter().map(|(n, _)| n.clone()).collect();
            let lw = legend_width(root, &names);
            // Notes (long lines such as plan descriptions) run under the plot, full width.
            let notes_h = if s.notes.is_empty() { 0 } else { 16 + 22 * s.notes.len() as u32 };
            let (upper, lower) = body.split_vertically(body.dim_in_pixel().1.saturating_sub(notes_h));
            let (plot, legend) = upper.split_horizontally(chart.width - lw);
            draw_scatter(&plot, s)?;
            draw_legend(&legend, "legend", &entries)?;
            for (i, n) in s.notes.iter().enumerate() {
                lower.draw(&Text::new(
                    n.clone(),
                    (20, 8 + 22 * i as i32),
                    text_style(15, &INK, HPos::Left, VPos::Top),
                ))?;
            }
        }
    }
    Ok(())
}

fn bar_legend(b: &Bars) -> Vec<(String, Mark)> {
    let mut e: Vec<(String, Mark)> = b
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), Mark::Box(PALETTE[b.colors.get(i).copied().unwrap_or(i) % 8])))
        .collect();
    e.extend(b.refs.iter().map(|r| (r.label.clone(), Mark::Dashed(INK))));
    e
}

/// Horizontal bars, categories top to bottom, labels drawn at the left.
fn draw_bars<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, b: &Bars) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let n = b.categories.len().max(1);
    let label_style = text_style(15, &INK, HPos::Right, VPos::Center);
    let label_w = b.categories.iter().map(|c| text_width(area, c, &label_style)).max().unwrap_or(60) + 24;
    let totals: Vec<f64> = (0..b.categories.len())
        .map(|i| {
            let vals = b.series.iter().filter_map(|s| s.values.get(i).copied().flatten());
            if b.stacked {
                vals.sum()
            } else {
                vals.fold(0.0, f64::max)
            }
        })
        .collect();
    let data_max = totals.iter().copied().fold(0.0, f64::max);
    let ref_max = b.refs.iter().map(|r| r.value).fold(0.0, f64::max);
    // Leave room for the value labels at the end of the longest bar.
    let x_max = nice_max(data_max.max(ref_max) * 1.12);
    let mut chart = ChartBuilder::on(area)
        .margin_top(28)
        .margin_right(24)
        .margin_bottom(8)
        .x_label_area_size(58)
        .y_label_area_size(label_w)
        .build_cartesian_2d(0f64..x_max, 0f64..n as f64)?;
    house_mesh(&mut chart.configure_mesh())
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(8)
        .x_label_formatter(&|v| axis_label(*v, x_max))
        .x_desc(b.value_title.clone())
        .draw()?;
    // Row i is drawn from the top.
    let row = |i: usize| (n - 1 - i) as f64;
    let groups = if b.stacked { 1 } else { b.series.len().max(1) };
    let pad = 0.16;
    let slot = (1.0 - 2.0 * pad) / groups as f64;
    let mut value_labels: Vec<(String, (i32, i32), bool)> = Vec::new();
    for i in 0..b.categories.len() {
        let y0 = row(i);
        let mut x = 0.0;
        for (k, s) in b.series.iter().enumerate() {
            let Some(v) = s.values.get(i).copied().flatten() else {
                // A missing value still gets its label (e.g. "n/a") where its bar would start.
                if let Some(text) = b.labels.get(k).and_then(|l| l.get(i)).filter(|_| !b.stacked) {
                    let top = y0 + 1.0 - pad - k as f64 * slot;
                    let (px, py) = chart.backend_coord(&(0.0, top - slot * 0.46));
                    let at = (px + 6 - area.get_base_pixel().0, py - area.get_base_pixel().1);
                    value_labels.push((text.clone(), at, false));
                }
                continue;
            };
            let color = PALETTE[b.colors.get(k).copied().unwrap_or(k) % 8];
            let (ya, yb, xa, xb) = if b.stacked {
                (y0 + pad, y0 + 1.0 - pad, x, x + v)
            } else {
                let top = y0 + 1.0 - pad - k as f64 * slot;
                (top - slot * 0.92, top, 0.0, v)
            };
            if xb > xa {
                chart.draw_series(std::iter::once(Rectangle::new([(xa, ya), (xb, yb)], color.filled())))?;
                chart.draw_series(std::iter::once(Rectangle::new([(xa, ya), (xb, yb)], WHITE.stroke_width(1))))?;
            }
            if !b.stacked {
                if let Some(text) = b.labels.get(k).and_then(|l| l.get(i)) {
                    let (px, py) = chart.backend_coord(&(v, (ya + yb) / 2.0));
                    let at = (px + 6 - area.get_base_pixel().0, py - area.get_base_pixel().1);
                    value_labels.push((text.clone(), at, false));
                }
            }
            x += v;
        }
        if b.stacked {
            if let Some(text) = b.labels.first().and_then(|l| l.get(i)) {
                let (px, py) = chart.backend_coord(&(x, y0 + 0.5));
                let at = (px + 6 - area.get_base_pixel().0, py - area.get_base_pixel().1);
                value_labels.push((text.clone(), at, true));
            }
        }
        let (px, py) = chart.backend_coord(&(0.0, y0 + 0.5));
        area.draw(&Text::new(
            b.categories[i].clone(),
            (px - 10 - area.get_base_pixel().0, py - area.get_base_pixel().1),
            label_style.clone(),
        ))?;
    }
    // Labels above the plot, centred on their line; a label that would overlap the previous one
    // goes one row higher.
    let mut refs: Vec<&RefLine> = b.refs.iter().collect();
    refs.sort_by(|a, b| a.value.total_cmp(&b.value));
    let mut row_ends: Vec<i32> = Vec::new();
    let ref_style = text_style(13, &INK, HPos::Center, VPos::Bottom);
    for r in refs {
        chart.draw_series(DashedLineSeries::new(
            vec![(r.value, 0.0), (r.value, n as f64)],
            7,
            5,
            INK.stroke_width(2),
        ))?;
        let (px, py) = chart.backend_coord(&(r.value, n as f64));
        let w = text_width(area, &r.label, &ref_style) as i32;
        let (left, right) = (px - w / 2, px + w / 2);
        let row = row_ends.iter().position(|end| left > end + 8).unwrap_or(row_ends.len());
        if row == row_ends.len() {
            row_ends.push(right);
        } else {
            row_ends[row] = right;
        }
        let at = (px - area.get_base_pixel().0, py - 6 - 16 * row as i32 - area.get_base_pixel().1);
        area.draw(&Text::new(r.label.clone(), at, ref_style.clone()))?;
    }
    for (text, at, bold) in value_labels {
        let style = if bold {
            bold_style(14, &INK, HPos::Left, VPos::Center)
        } else {
            text_style(13, &INK, HPos::Left, VPos::Center)
        };
        boxed_text(area, &text, at, style)?;
    }
    Ok(())
}

fn draw_lines<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, l: &Lines) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let n = l.x_values.len().max(1);
    let data_max = l.series.iter().flat_map(|s| s.values.iter().flatten().copied()).fold(0.0, f64::max);
    let ref_max = l.refs.iter().map(|r| r.value).fold(0.0, f64::max);
    let y_max = nice_max(data_max.max(ref_max));
    let x_max = (n - 1).max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(24)
        .margin_left(12)
        .x_label_area_size(64)
        .y_label_area_size(78)
        .build_cartesian_2d(-0.25f64..x_max + 0.25, 0f64..y_max)?;
    house_mesh(&mut chart.configure_mesh())
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(8)
        .y_label_formatter(&|v| axis_label(*v, y_max))
        .x_desc(l.x_title.clone())
        .y_desc(l.y_title.clone())
        .draw()?;
    let base = area.get_base_pixel();
    for (i, x) in l.x_values.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64, 0.0));
        chart.draw_series(std::iter::once(PathElement::new(vec![(i as f64, 0.0), (i as f64, y_max)], GRID)))?;
        area.draw(&Text::new(
            x.clone(),
            (px - base.0, py + 10 - base.1),
            text_style(15, &INK, HPos::Center, VPos::Top),
        ))?;
    }
    // Labels sit on their line at the left; one too close to the previous label moves right.
    let mut refs: Vec<&RefLine> = l.refs.iter().collect();
    refs.sort_by(|a, b| a.value.total_cmp(&b.value));
    let mut last: Option<(i32, i32)> = None; // (y, x offset) of the previous label
    let ref_style = text_style(13, &INK, HPos::Left, VPos::Center);
    for r in refs {
        chart.draw_series(DashedLineSeries::new(
            vec![(-0.25, r.value), (x_max + 0.25, r.value)],
            7,
            5,
            INK.stroke_width(2),
        ))?;
        let (px, py) = chart.backend_coord(&(-0.2, r.value));
        let shift = match last {
            Some((y, shift)) if (y - py).abs() < 16 => shift + 260,
            _ => 0,
        };
        last = Some((py, shift));
        boxed_text(area, &r.label, (px + shift - base.0, py - 12 - base.1), ref_style.clone())?;
    }
    for (k, s) in l.series.iter().enumerate() {
        let color = PALETTE[LINE_ORDER[k % LINE_ORDER.len()]];
        // Consecutive present values form a segment.
        let mut seg: Vec<(f64, f64)> = Vec::new();
        let mut segments = Vec::new();
        for (i, v) in s.values.iter().enumerate() {
            match v {
                Some(v) => seg.push((i as f64, *v)),
                None => segments.push(std::mem::take(&mut seg)),
            }
        }
        segments.push(seg);
        for seg in segments.into_iter().filter(|s| !s.is_empty()) {
            chart.draw_series(LineSeries::new(seg.clone(), color.stroke_width(3)))?;
            for p in seg {
                let at = chart.backend_coord(&p);
                draw_marker(area, (at.0 - base.0, at.1 - base.1), k, &color)?;
            }
        }
    }
    for m in &l.markers {
        let color = PALETTE[LINE_ORDER[m.series % LINE_ORDER.len()]];
        let at = chart.backend_coord(&(m.x, m.y));
        let at = (at.0 - base.0, at.1 - base.1);
        area.draw(&Circle::new(at, 8, INK.filled()))?;
        area.draw(&Circle::new(at, 5, color.filled()))?;
    }
    Ok(())
}

fn draw_scatter<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &Scatter) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let pts = || s.series.iter().flat_map(|(_, p)| p.iter());
    let x_max = nice_max(pts().map(|p| p.x).chain(s.refs.iter().map(|r| r.value)).fold(0.0, f64::max));
    // Step times of good plans are close together: zoom the time axis onto them.
    let (y_lo, y_hi) = pts().fold((f64::MAX, 0f64), |(lo, hi), p| (lo.min(p.y), hi.max(p.y)));
    let (y_min, y_max) = if y_hi <= 0.0 {
        (0.0, 1.0)
    } else {
        let span = (y_hi - y_lo).max(y_hi * 0.02);
        ((y_lo - span * 0.15).max(0.0), y_hi + span * 0.25)
    };
    let mut chart = ChartBuilder::on(area)
        .margin(24)
        .margin_left(12)
        .x_label_area_size(64)
        .y_label_area_size(78)
        .build_cartesian_2d(0f64..x_max, y_min..y_max)?;
    let y_span = y_max - y_min;
    house_mesh(&mut chart.configure_mesh())
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&|v| axis_label(*v, x_max))
        .y_label_formatter(&|v| {
            if y_span < 0.5 {
                format!("{v:.3}")
            } else if y_span < 5.0 {
                format!("{v:.2}")
            } else {
                format!("{v:.1}")
            }
        })
        .x_desc(s.x_title.clone())
        .y_desc(s.y_title.clone())
        .draw()?;
    let base = area.get_base_pixel();
    for r in &s.refs {
        chart.draw_series(DashedLineSeries::new(
            vec![(r.value, y_min), (r.value, y_max)],
            7,
            5,
            INK.stroke_width(2),
        ))?;
        let (px, py) = chart.backend_coord(&(r.value, y_max));
        area.draw(&Text::new(
            r.label.clone(),
            (px - 6 - base.0, py + 6 - base.1),
            text_style(13, &INK, HPos::Right, VPos::Top),
        ))?;
    }
    for (k, (_, points)) in s.series.iter().enumerate() {
        let color = PALETTE[LINE_ORDER[k % LINE_ORDER.len()]];
        for p in points {
            let at = chart.backend_coord(&(p.x, p.y));
            let at = (at.0 - base.0, at.1 - base.1);
            draw_marker(area, at, k, &color)?;
            if !p.label.is_empty() {
                area.draw(&Text::new(
                    p.label.clone(),
                    (at.0 + 8, at.1 - 6),
                    text_style(13, &INK, HPos::Left, VPos::Bottom),
                ))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_bounds_cover_the_data() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(95.0), 100.0);
        assert_eq!(nice_max(80.0), 100.0);
        assert_eq!(nice_max(3.1), 3.5);
        assert!(nice_max(123.0) >= 123.0 * 1.04);
    }

    #[test]
    fn labels_keep_the_digits_that_differ() {
        assert_eq!(axis_label(50.0, 200.0), "50");
        assert_eq!(axis_label(2.5, 4.0), "2.5");
        assert_eq!(axis_label(2.0, 4.0), "2");
        assert_eq!(axis_label(0.002, 0.01), "0.002");
    }
}
