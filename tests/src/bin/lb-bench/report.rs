//! The figures a run measured, and the three ways they leave it: a table on
//! standard output, `bench.json`, and `bench.svg` (each comparison as a bar
//! of its ratio, with the target drawn across it).

use std::{fmt::Write as _, path::Path};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::options::Section;

/// A figure, and what it is compared with when the comparison was measured
/// in the same run.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    pub section: Section,
    pub name: String,
    pub value: f64,
    pub unit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared_to: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Anything a reader needs to interpret the value (sample sizes, ...).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// The figure a value is divided by: `ratio = value / reference.value`.
#[derive(Clone, Debug, Serialize)]
pub struct Reference {
    pub name: String,
    pub value: f64,
}

/// What the issue asks of a figure.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "bound")]
pub enum Target {
    RatioAtMost(f64),
    RatioAtLeast(f64),
    ValueAtMost(f64),
}

impl Figure {
    pub fn new(section: Section, name: impl Into<String>, value: f64, unit: &str) -> Self {
        Self {
            section,
            name: name.into(),
            value,
            unit: unit.to_owned(),
            compared_to: None,
            target: None,
            note: String::new(),
        }
    }

    pub fn compared_to(mut self, name: impl Into<String>, value: f64) -> Self {
        self.compared_to = Some(Reference {
            name: name.into(),
            value,
        });
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    pub fn ratio(&self) -> Option<f64> {
        let reference = self.compared_to.as_ref()?;
        (reference.value != 0.0).then(|| self.value / reference.value)
    }

    /// None when there is no target (or no ratio to hold it to).
    pub fn meets_target(&self) -> Option<bool> {
        Some(match self.target? {
            Target::RatioAtMost(bound) => self.ratio()? <= bound,
            Target::RatioAtLeast(bound) => self.ratio()? >= bound,
            Target::ValueAtMost(bound) => self.value <= bound,
        })
    }
}

impl Target {
    fn describe(self) -> String {
        match self {
            Target::RatioAtMost(bound) => format!("<= {bound}x"),
            Target::RatioAtLeast(bound) => format!(">= {bound}x"),
            Target::ValueAtMost(bound) => format!("<= {bound}"),
        }
    }
}

/// Everything one run measured, with what it ran on.
#[derive(Debug, Serialize)]
pub struct Report {
    pub kernel: String,
    pub cpus: usize,
    pub seconds_per_measurement: f64,
    pub quick: bool,
    pub figures: Vec<Figure>,
    /// Measurements this host cannot make, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_measured: Vec<NotMeasured>,
}

/// A part of a section this host cannot run.
#[derive(Debug, Serialize)]
pub struct NotMeasured {
    pub section: Section,
    pub why: String,
}

/// A measurement this host cannot make, and why: the run goes on without
/// it and the report says so, instead of failing as a whole.
#[derive(Debug)]
pub struct HostCannot(pub String);

impl std::fmt::Display for HostCannot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostCannot {}

impl Report {
    pub fn new(seconds_per_measurement: f64, quick: bool) -> Self {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|text| text.trim().to_owned())
            .unwrap_or_default();
        Self {
            kernel,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            seconds_per_measurement,
            quick,
            figures: Vec::new(),
            not_measured: Vec::new(),
        }
    }

    /// Adds a figure and prints it at once, so a long run shows progress.
    pub fn add(&mut self, figure: Figure) {
        eprintln!("  {}", row(&figure).join("  "));
        self.figures.push(figure);
    }

    /// Records (and prints at once) a part of `section` this host cannot run.
    pub fn not_measured(&mut self, section: Section, why: String) {
        eprintln!("  {}  not measured on this host: {why}", section.keyword());
        self.not_measured.push(NotMeasured { section, why });
    }

    pub fn table(&self) -> String {
        let header = ["section", "figure", "value", "vs", "ratio", "target", ""]
            .map(str::to_owned)
            .to_vec();
        let rows: Vec<Vec<String>> = std::iter::once(header)
            .chain(self.figures.iter().map(row))
            .collect();
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|column| {
                rows.iter()
                    .map(|r| r[column].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(column, (cell, &width))| {
                    // Numbers right-aligned, words left-aligned.
                    if column == 2 || column == 4 {
                        format!("{cell:>width$}")
                    } else {
                        format!("{cell:<width$}")
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
        for skipped in &self.not_measured {
            let _ = writeln!(
                out,
                "{}: not measured on this host: {}",
                skipped.section.keyword(),
                skipped.why
            );
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }

    pub fn write_svg(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.svg()).with_context(|| format!("writing {}", path.display()))
    }

    /// One horizontal bar per comparison: its ratio on a log scale, green
    /// when it meets its target, red when not, grey when it has none; the
    /// target is a black tick. Figures without a comparison are listed
    /// under the chart.
    pub fn svg(&self) -> String {
        let (compared, plain): (Vec<&Figure>, Vec<&Figure>) =
            self.figures.iter().partition(|f| f.ratio().is_some());
        let axis = Axis::spanning(&compared);
        let plot_height = compared.len() as f64 * (BAR + GAP);
        let height = TOP + plot_height + 40.0 + plain.len() as f64 * 16.0 + 20.0;
        let width = LABEL_WIDTH + PLOT_WIDTH + 120.0;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">lb bench: ratio to the \
             reference measured in the same run (log scale), kernel {}, {} CPUs</text>\n",
            escape(&self.kernel),
            self.cpus
        );
        axis.draw_decades(&mut svg, plot_height);
        for (index, figure) in compared.iter().enumerate() {
            axis.draw_bar(&mut svg, TOP + index as f64 * (BAR + GAP), figure);
        }
        let one = axis.x(1.0);
        let _ = writeln!(
            svg,
            "<line x1=\"{one:.1}\" y1=\"{:.1}\" x2=\"{one:.1}\" y2=\"{:.1}\" stroke=\"black\"/>",
            TOP - 8.0,
            TOP + plot_height
        );
        list_uncompared(&mut svg, &plain, TOP + plot_height + 30.0);
        svg.push_str("</svg>\n");
        svg
    }
}

// The chart's layout, in SVG user units: labels left of the plot, a bar
// per comparison below the title.
const LABEL_WIDTH: f64 = 430.0;
const PLOT_WIDTH: f64 = 420.0;
const BAR: f64 = 18.0;
const GAP: f64 = 6.0;
const TOP: f64 = 50.0;

/// The chart's horizontal axis: ratios on a log scale, whole decades.
struct Axis {
    low: f64,
    log_low: f64,
    log_high: f64,
}

impl Axis {
    /// 1/100x .. 100x or wider, always including 1x.
    fn spanning(compared: &[&Figure]) -> Self {
        let ratios = compared
            .iter()
            .filter_map(|f| f.ratio())
            .filter(|r| *r > 0.0);
        let (low, high) = ratios.fold((0.01f64, 100.0f64), |(lo, hi), r| (lo.min(r), hi.max(r)));
        Self {
            low,
            log_low: low.log10().floor(),
            log_high: high.log10().ceil(),
        }
    }

    /// Where `ratio` sits.
    fn x(&self, ratio: f64) -> f64 {
        LABEL_WIDTH
            + PLOT_WIDTH * (ratio.max(self.low).log10() - self.log_low)
                / (self.log_high - self.log_low)
    }

    /// A grey line and a label at every decade.
    fn draw_decades(&self, svg: &mut String, plot_height: f64) {
        let mut decade = self.log_low;
        while decade <= self.log_high {
            let ratio = 10f64.powf(decade);
            let at = self.x(ratio);
            let _ = writeln!(
                svg,
                "<line x1=\"{at:.1}\" y1=\"{}\" x2=\"{at:.1}\" y2=\"{:.1}\" stroke=\"#ccc\"/>\
                 <text x=\"{at:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}x</text>",
                TOP - 8.0,
                TOP + plot_height,
                TOP - 12.0,
                format_ratio(ratio)
            );
            decade += 1.0;
        }
    }

    /// `figure`'s label, its bar from 1x to its ratio at height `y`, and its
    /// target's tick.
    fn draw_bar(&self, svg: &mut String, y: f64, figure: &Figure) {
        let ratio = figure.ratio().unwrap_or(1.0);
        let colour = match figure.meets_target() {
            Some(true) => "#3a3",
            Some(false) => "#d33",
            None => "#999",
        };
        let (start, end) = (
            self.x(1.0).min(self.x(ratio)),
            self.x(1.0).max(self.x(ratio)),
        );
        let label = format!(
            "{}: {} vs {}",
            figure.section.keyword(),
            figure.name,
            figure.compared_to.as_ref().map_or("", |r| r.name.as_str())
        );
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{start:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{BAR}\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}x</text>",
            LABEL_WIDTH - 8.0,
            y + BAR - 5.0,
            escape(&label),
            (end - start).max(1.0),
            self.x(ratio).max(self.x(1.0)) + 4.0,
            y + BAR - 5.0,
            format_ratio(ratio)
        );
        if let Some(Target::RatioAtMost(bound) | Target::RatioAtLeast(bound)) = figure.target {
            let at = self.x(bound);
            let _ = writeln!(
                svg,
                "<line x1=\"{at:.1}\" y1=\"{:.1}\" x2=\"{at:.1}\" y2=\"{:.1}\" stroke=\"black\" \
                 stroke-width=\"2\"/>",
                y - 2.0,
                y + BAR + 2.0
            );
        }
    }
}

/// The figures without a comparison, a line each from height `y` down.
fn list_uncompared(svg: &mut String, plain: &[&Figure], mut y: f64) {
    for figure in plain {
        let met = match figure.meets_target() {
            Some(true) => " (target met)",
            Some(false) => " (target MISSED)",
            None => "",
        };
        let _ = writeln!(
            svg,
            "<text x=\"10\" y=\"{y:.1}\">{}: {} = {} {}{met}</text>",
            figure.section.keyword(),
            escape(&figure.name),
            format_value(figure.value),
            escape(&figure.unit)
        );
        y += 16.0;
    }
}

fn row(figure: &Figure) -> Vec<String> {
    let target = figure.target.map(Target::describe).unwrap_or_default();
    let verdict = match figure.meets_target() {
        Some(true) => "ok",
        Some(false) => "MISSED",
        None => "",
    };
    vec![
        figure.section.keyword().to_owned(),
        figure.name.clone(),
        format!("{} {}", format_value(figure.value), figure.unit),
        figure
            .compared_to
            .as_ref()
            .map(|r| format!("{} ({})", r.name, format_value(r.value)))
            .unwrap_or_default(),
        figure
            .ratio()
            .map(|r| format!("{}x", format_ratio(r)))
            .unwrap_or_default(),
        target,
        verdict.to_owned(),
    ]
}

/// Three significant digits, no exponent for everyday magnitudes.
pub fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 || magnitude == 0.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

fn format_ratio(ratio: f64) -> String {
    if ratio >= 10.0 {
        format!("{ratio:.0}")
    } else if ratio >= 0.1 {
        format!("{ratio:.2}")
    } else {
        format!("{ratio:.3}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(value: f64, floor: f64) -> Figure {
        Figure::new(Section::Cost, "DR IPv4 hit", value, "ns/packet")
            .compared_to("reflector", floor)
            .target(Target::RatioAtMost(2.0))
    }

    #[test]
    fn ratio_and_target_follow_the_reference() {
        assert_eq!(cost(60.0, 30.0).ratio(), Some(2.0));
        assert_eq!(cost(60.0, 30.0).meets_target(), Some(true));
        assert_eq!(cost(61.0, 30.0).meets_target(), Some(false));
        let rate = Figure::new(Section::Rate, "DR", 4.0, "Mpps")
            .compared_to("reflector", 10.0)
            .target(Target::RatioAtLeast(0.5));
        assert_eq!(rate.meets_target(), Some(false));
        let apply =
            Figure::new(Section::ControlPlane, "apply", 1.5, "s").target(Target::ValueAtMost(2.0));
        assert_eq!(apply.meets_target(), Some(true));
        assert_eq!(
            Figure::new(Section::Rate, "x", 1.0, "Mpps").meets_target(),
            None
        );
    }

    #[test]
    fn table_aligns_columns_and_marks_missed_targets() {
        let mut report = Report::new(1.0, true);
        report.figures = vec![cost(45.0, 30.0), cost(90.0, 30.0)];
        let table = report.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].contains("1.50x") && lines[1].ends_with("ok"),
            "{table}"
        );
        assert!(
            lines[2].contains("3.00x") && lines[2].ends_with("MISSED"),
            "{table}"
        );
        assert_eq!(lines[1].find("1.50x"), lines[2].find("3.00x"), "{table}");
    }

    #[test]
    fn svg_draws_a_bar_per_comparison_and_lists_the_rest() {
        let mut report = Report::new(1.0, true);
        report.figures = vec![
            cost(45.0, 30.0),
            cost(90.0, 30.0),
            Figure::new(Section::ControlPlane, "lbd RSS", 20.0, "MiB"),
        ];
        let svg = report.svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("fill=\"#3a3\"").count(), 1, "{svg}");
        assert_eq!(svg.matches("fill=\"#d33\"").count(), 1, "{svg}");
        assert!(svg.contains("lbd RSS = 20.0 MiB"), "{svg}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["figures"][0]["target"]["kind"], "ratio_at_most");
    }
}
