//! Charts as plain data (`Chart`), built by `report::chart_data` (and `bench::chart` for bench
//! files) and drawn by `crate::render` with plotters, so the core builds without plotters.
//!
//! Colours are the Okabe–Ito palette (Okabe & Ito 2008, "Color Universal Design"),
//! distinguishable with every common form of colour blindness; lines also differ by marker
//! shape, and reference lines are dashed and labelled.

use crate::error::{Error, Result};
use std::path::Path;

/// Line colours in order, as indices into the renderer's Okabe–Ito palette: high-contrast
/// members first (yellow last: weak on white).
pub const LINE_ORDER: [usize; 7] = [4, 5, 2, 0, 6, 1, 3];

/// The file format, from the output path's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Svg,
    Png,
}

impl ImageFormat {
    pub fn from_path(path: &Path) -> Result<ImageFormat> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("svg") => Ok(ImageFormat::Svg),
            Some("png") => Ok(ImageFormat::Png),
            _ => Err(Error::invalid(
                "output file",
                path.display(),
                "a path ending in .svg or .png (the extension picks the format)",
            )),
        }
    }
}

/// A horizontal (value-axis) reference: a GPU's memory, the usable memory of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct RefLine {
    pub label: String,
    pub value: f64,
}

/// A point marked on a line chart (e.g. where a GPU runs out of memory).
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    /// Position on the x axis in index space (0 = first x value; fractions lie between values).
    pub x: f64,
    pub y: f64,
    /// Index of the series whose colour it takes.
    pub series: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    /// One value per category / x position; `None` leaves a gap.
    pub values: Vec<Option<f64>>,
}

/// Horizontal bars: stacked (segments of one total) or grouped (one bar per series).
#[derive(Clone, Debug, PartialEq)]
pub struct Bars {
    pub categories: Vec<String>,
    pub series: Vec<Series>,
    pub stacked: bool,
    pub value_title: String,
    /// Vertical reference lines at these values.
    pub refs: Vec<RefLine>,
    /// Text at the end of each bar (stacked: per category; grouped: per series and category).
    pub labels: Vec<Vec<String>>,
    /// Colour index per series (into [`PALETTE`]).
    pub colors: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Lines {
    /// Labels of the x positions (evenly spaced).
    pub x_values: Vec<String>,
    pub x_title: String,
    pub y_title: String,
    pub series: Vec<Series>,
    pub refs: Vec<RefLine>,
    pub markers: Vec<Marker>,
    /// Legend text for the markers.
    pub marker_label: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    /// Drawn beside the point (e.g. the plan's rank).
    pub label: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scatter {
    pub x_title: String,
    pub y_title: String,
    pub series: Vec<(String, Vec<Point>)>,
    /// Vertical reference lines.
    pub refs: Vec<RefLine>,
    /// Extra legend lines (e.g. the top plans spelled out).
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Bars(Bars),
    Lines(Lines),
    Scatter(Scatter),
    /// Bar panels side by side, each with its own title.
    Panels(Vec<(String, Bars)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub title: String,
    pub subtitle: Vec<String>,
    pub width: u32,
    pub height: u32,
    pub body: Body,
}

impl Chart {
    /// Every text a reader sees: title, subtitle, axis titles, categories and series names
    /// (used by tests and to size nothing else).
    pub fn texts(&self) -> Vec<String> {
        let mut t = vec![self.title.clone()];
        t.extend(self.subtitle.iter().cloned());
        let bars = |b: &Bars, t: &mut Vec<String>| {
            t.extend(b.categories.iter().cloned());
            t.extend(b.series.iter().map(|s| s.name.clone()));
            t.push(b.value_title.clone());
            t.extend(b.refs.iter().map(|r| r.label.clone()));
        };
        match &self.body {
            Body::Bars(b) => bars(b, &mut t),
            Body::Lines(l) => {
                t.extend([l.x_title.clone(), l.y_title.clone()]);
                t.extend(l.series.iter().map(|s| s.name.clone()));
                t.extend(l.refs.iter().map(|r| r.label.clone()));
            }
            Body::Scatter(s) => {
                t.extend([s.x_title.clone(), s.y_title.clone()]);
                t.extend(s.series.iter().map(|(n, _)| n.clone()));
                t.extend(s.refs.iter().map(|r| r.label.clone()));
                t.extend(s.notes.iter().cloned());
            }
            Body::Panels(p) => {
                for (title, b) in p {
                    t.push(title.clone());
                    bars(b, &mut t);
                }
            }
        }
        t
    }
}

/// Three significant digits (`0.00213`, `38.6`, `1250`): throughput and time labels.
pub fn sig3(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(ImageFormat::from_path(Path::new("a/mem.SVG")).unwrap(), ImageFormat::Svg);
        assert_eq!(ImageFormat::from_path(Path::new("mem.png")).unwrap(), ImageFormat::Png);
        let err = ImageFormat::from_path(Path::new("mem.jpg")).unwrap_err().to_string();
        assert!(err.contains("mem.jpg"), "{err}");
    }

    #[test]
    fn three_significant_digits() {
        assert_eq!(sig3(0.002134), "0.00213");
        assert_eq!(sig3(38.6449), "38.6");
        assert_eq!(sig3(1250.4), "1250");
    }
}
