//! A run as one self-contained HTML page: its key figures and SVG charts drawn by plotters,
//! inlined, with no script and no external asset.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::summary::{Latency, Summary};

/// Every chart's size, in SVG pixels (it scales down with the page).
const SIZE: (u32, u32) = (900, 340);

/// The series' colours, in order.
const PALETTE: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
];

/// Where the maximum sits on a distribution's "nines" axis: one step past 99.99 %.
const MAX_NINES: f64 = 5.0;

const STYLE: &str = "body { font-family: sans-serif; max-width: 960px; margin: 2em auto; \
padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
svg { max-width: 100%; height: auto; }
.passed { color: #1a7f37; font-weight: bold; }
.failed { color: #c62828; font-weight: bold; }
.note { color: #666; font-style: italic; }";

/// Writes the report of `summary` beside its JSON, as `<same stem>.html`; returns its path.
pub fn write(summary: &Summary, json_path: &Path) -> anyhow::Result<PathBuf> {
    let path = json_path.with_extension("html");
    std::fs::write(&path, html(summary)?)?;
    Ok(path)
}

/// The report of `summary`, one HTML page.
pub fn html(summary: &Summary) -> anyhow::Result<String> {
    let title = format!("Load test: {}, {}", summary.scenario, summary.started_at);
    let mut page = String::new();
    writeln!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n<h1>{}</h1>",
        escape(&title),
        escape(&title),
    )?;
    writeln!(
        page,
        "<p>Started {} on {}.</p>",
        escape(&summary.started_at),
        escape(&summary.machine)
    )?;
    figures(&mut page, summary)?;
    latencies(&mut page, summary)?;
    for chart in charts(summary) {
        chart.section(&mut page)?;
    }
    page.push_str("</body>\n</html>\n");
    Ok(page)
}

/// The key figures, as a table.
fn figures(page: &mut String, summary: &Summary) -> anyhow::Result<()> {
    let v = &summary.verification;
    let verdict = if v.passed() {
        "<span class=\"passed\">PASSED</span>"
    } else {
        "<span class=\"failed\">FAILED</span>"
    };
    let not_once: usize = v.registrations_not_once.values().map(|m| m.len()).sum();
    let verification = format!(
        "{verdict}: {} unfinished, {} polled, {} forged webhooks, {not_once} registrations not \
         exactly once{}",
        v.unfinished.len(),
        v.polled,
        v.forged_webhooks,
        if v.registrations_checked {
            ""
        } else {
            " (registries' counts not read)"
        },
    );
    let platform = match (
        summary.platform_cpu_mean_percent,
        summary.platform_rss_max_mib,
    ) {
        (Some(cpu), Some(rss)) => {
            format!("CPU {cpu:.0} % of a core on average, RSS peak {rss:.0} MiB")
        }
        _ => "not sampled (--pid)".to_owned(),
    };
    let lag = summary
        .lag
        .iter()
        .map(|s| s.lag)
        .reduce(f64::max)
        .map_or_else(
            || "not sampled".to_owned(),
            |peak| format!("peak {peak:.0} messages"),
        );
    let rows = [
        (
            "Schedule",
            escape(&format!(
                "{:.0}/s to {:.0}/s over {:.0} s",
                summary.rate_from, summary.rate_to, summary.duration_s
            )),
        ),
        (
            "Receipts",
            format!(
                "{} sent, {} acknowledged",
                summary.sent, summary.acknowledged
            ),
        ),
        (
            "Rates",
            format!(
                "sent {:.1}/s, acknowledged {:.1}/s, terminal {:.1}/s",
                summary.sent_per_s, summary.acknowledged_per_s, summary.terminal_per_s
            ),
        ),
        ("Errors", escape(&counts(&summary.errors))),
        ("Terminal statuses", escape(&counts(&summary.terminal))),
        ("Verification", verification),
        ("Platform", escape(&platform)),
        ("Consumer lag", lag),
    ];
    page.push_str("<h2>Key figures</h2>\n<table>\n");
    for (name, value) in rows {
        writeln!(page, "<tr><th>{name}</th><td>{value}</td></tr>")?;
    }
    for (name, value) in &summary.findings {
        writeln!(
            page,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            escape(name),
            escape(&value.to_string())
        )?;
    }
    page.push_str("</table>\n");
    Ok(())
}

/// Both latencies' percentiles, as a table.
fn latencies(page: &mut String, summary: &Summary) -> anyhow::Result<()> {
    page.push_str(
        "<table>\n<tr><th>latency (ms)</th><th>n</th><th>p50</th><th>p90</th><th>p99</th>\
         <th>p99.9</th><th>max</th></tr>\n",
    );
    for (name, l) in [
        ("202", &summary.acknowledgement),
        ("submit &rarr; terminal", &summary.end_to_end),
    ] {
        writeln!(
            page,
            "<tr><th>{name}</th><td class=\"n\">{}</td><td class=\"n\">{:.1}</td>\
             <td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td>\
             <td class=\"n\">{:.1}</td></tr>",
            l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
        )?;
    }
    page.push_str("</table>\n");
    Ok(())
}

/// `kind: count, ...`, or `none`.
fn counts(counts: &std::collections::BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line (or filled area) of a chart: (x, y) points.
struct Series {
    label: &'static str,
    points: Vec<(f64, f64)>,
    filled: bool,
}

impl Series {
    fn line(label: &'static str, points: Vec<(f64, f64)>) -> Self {
        Self {
            label,
            points,
            filled: false,
        }
    }
}

/// A chart and the section of the page around it.
struct Chart {
    heading: &'static str,
    /// How to read it, one sentence.
    about: &'static str,
    /// What to say when it has no data.
    empty: &'static str,
    x_desc: &'static str,
    y_desc: &'static str,
    x_labels: usize,
    x_format: fn(&f64) -> String,
    series: Vec<Series>,
}

impl Chart {
    /// A chart over the seconds of the run.
    fn over_time(
        heading: &'static str,
        about: &'static str,
        empty: &'static str,
        y_desc: &'static str,
        series: Vec<Series>,
    ) -> Self {
        Self {
            heading,
            about,
            empty,
            x_desc: "seconds since the start",
            y_desc,
            x_labels: 10,
            x_format: |x| format!("{x:.0}"),
            series,
        }
    }

    /// Its heading, then its SVG or the note that it has no data.
    fn section(&self, page: &mut String) -> anyhow::Result<()> {
        writeln!(page, "<h2>{}</h2>", self.heading)?;
        match self.svg()? {
            Some(svg) => {
                writeln!(page, "<p>{}</p>", self.about)?;
                page.push_str(&svg);
            }
            None => writeln!(page, "<p class=\"note\">No data: {}.</p>", self.empty)?,
        }
        Ok(())
    }

    /// The chart as an `<svg>` element; `None` when no series has a point.
    fn svg(&self) -> anyhow::Result<Option<String>> {
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let (Some(x), Some(y)) = (bounds(points().map(|p| p.0)), bounds(points().map(|p| p.1)))
        else {
            return Ok(None);
        };
        // Every x (seconds, nines) starts at 0.
        let x = (x.0.min(0.0), x.1);
        let x = if x.0 < x.1 { x } else { (x.0, x.0 + 1.0) };
        let y_max = if y.1 > 0.0 { y.1 * 1.05 } else { 1.0 };
        let mut svg = String::new();
        self.plot(&mut svg, x, y_max)?;
        Ok(Some(svg))
    }

    /// Draws the chart over `x` and `0..y_max` into `svg`.
    fn plot(&self, svg: &mut String, x: (f64, f64), y_max: f64) -> anyhow::Result<()> {
        let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(30)
            .x_label_area_size(45)
            .y_label_area_size(75)
            .build_cartesian_2d(x.0..x.1, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .y_desc(self.y_desc)
            .x_labels(self.x_labels)
            .x_label_formatter(&self.x_format)
            .y_label_formatter(&number)
            .label_style(("sans-serif", 17))
            .axis_desc_style(("sans-serif", 18))
            .light_line_style(BLACK.mix(0.04))
            .draw()?;
        for (series, color) in self.series.iter().zip(PALETTE.iter().cycle()) {
            let points = series.points.iter().copied();
            let drawn = if series.filled {
                chart.draw_series(
                    AreaSeries::new(points, 0.0, color.mix(0.25)).border_style(color),
                )?
            } else {
                chart.draw_series(LineSeries::new(points, color.stroke_width(2)))?
            };
            let color = *color;
            drawn.label(series.label).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3))
            });
        }
        // One series is named by the heading and the y axis already.
        if self.series.len() > 1 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font(("sans-serif", 17))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .draw()?;
        }
        root.present()?;
        Ok(())
    }
}

/// A y axis label: fewer decimals as values grow.
fn number(y: &f64) -> String {
    match y.abs() {
        a if a >= 10.0 || a == 0.0 => format!("{y:.0}"),
        a if a >= 1.0 => format!("{y:.1}"),
        _ => format!("{y:.2}"),
    }
}

/// The smallest and largest of `values`, `None` without any.
fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
        })
}

/// Every chart of the report, in order.
fn charts(summary: &Summary) -> Vec<Chart> {
    let per_second = |f: fn(&crate::summary::Second) -> Option<f64>| -> Vec<(f64, f64)> {
        summary
            .seconds
            .iter()
            .enumerate()
            .filter_map(|(n, s)| Some((n as f64, f(s)?)))
            .collect()
    };
    vec![
        Chart::over_time(
            "Throughput",
            "Receipts per second: sent (by intended send time), acknowledged (202s received) \
             and terminal (statuses heard). Terminal below sent means a growing backlog.",
            "no second recorded",
            "receipts / s",
            vec![
                Series::line("sent/s", per_second(|s| Some(s.sent as f64))),
                Series::line(
                    "acknowledged/s",
                    per_second(|s| Some(s.acknowledged as f64)),
                ),
                Series::line("terminal/s", per_second(|s| Some(s.terminal as f64))),
            ],
        ),
        Chart::over_time(
            "202 latency over time",
            "From the intended send time to the 202, of the receipts meant to be sent in each \
             second: p50 and p99.",
            "no 202 received",
            "ms",
            vec![
                Series::line("p50", per_second(|s| s.ack_p50_ms)),
                Series::line("p99", per_second(|s| s.ack_p99_ms)),
            ],
        ),
        Chart::over_time(
            "Submit &rarr; terminal latency over time",
            "From the intended send time to the terminal status, of the receipts meant to be \
             sent in each second: p50 and p99. A rising line is a growing backlog.",
            "no terminal status heard",
            "ms",
            vec![
                Series::line("p50", per_second(|s| s.e2e_p50_ms)),
                Series::line("p99", per_second(|s| s.e2e_p99_ms)),
            ],
        ),
        distribution(
            "202 latency distribution",
            "no 202 received",
            &summary.acknowledgement,
        ),
        distribution(
            "Submit &rarr; terminal latency distribution",
            "no terminal status heard",
            &summary.end_to_end,
        ),
        Chart::over_time(
            "Backlog and consumer lag",
            "Backlog: receipts acknowledged and not yet terminal, at the end of each second. \
             Consumer lag: messages behind the high watermarks, summed over the platform's \
             consumers (from its /metrics, refreshed every few seconds).",
            "no second recorded and no lag read",
            "receipts / messages",
            vec![
                Series {
                    label: "backlog",
                    points: summary
                        .seconds
                        .iter()
                        .enumerate()
                        .map(|(n, s)| ((n + 1) as f64, s.backlog as f64))
                        .collect(),
                    filled: true,
                },
                Series::line(
                    "consumer lag",
                    summary.lag.iter().map(|s| (s.at_s, s.lag)).collect(),
                ),
            ],
        ),
        Chart::over_time(
            "Platform CPU",
            "The platform process's CPU use over each second, in percent of one core.",
            "the platform was not sampled (--pid)",
            "% of a core",
            vec![Series::line(
                "CPU",
                summary
                    .platform
                    .iter()
                    .map(|p| (p.at_s, p.cpu_percent))
                    .collect(),
            )],
        ),
        Chart::over_time(
            "Platform memory",
            "The platform process's resident memory.",
            "the platform was not sampled (--pid)",
            "RSS (MiB)",
            vec![Series::line(
                "RSS",
                summary
                    .platform
                    .iter()
                    .map(|p| (p.at_s, p.rss_mib))
                    .collect(),
            )],
        ),
    ]
}

/// A latency's percentile curve on a "nines" axis (90 %, 99 %, 99.9 %, ... equally spaced).
fn distribution(heading: &'static str, empty: &'static str, latency: &Latency) -> Chart {
    Chart {
        heading,
        about: "The share of receipts (x) that took at most the time on y, over the whole run. \
                Each step right is one more nine; the right end is the maximum.",
        empty,
        x_desc: "percentile",
        y_desc: "ms",
        x_labels: 6,
        x_format: nines_label,
        series: vec![Series::line(
            "latency",
            latency
                .curve
                .iter()
                .map(|p| (nines(p.percentile), p.ms))
                .collect(),
        )],
    }
}

/// Where `percentile` sits on the nines axis: 0 at 0 %, 1 at 90 %, 2 at 99 %, ...
fn nines(percentile: f64) -> f64 {
    let rest = 1.0 - percentile / 100.0;
    if rest <= 10f64.powf(-MAX_NINES) {
        MAX_NINES
    } else {
        -rest.log10()
    }
}

/// The label of a whole number of nines; none between them.
fn nines_label(x: &f64) -> String {
    if (x - x.round()).abs() > 1e-6 {
        return String::new();
    }
    match x.round() as i64 {
        0 => "0%",
        1 => "90%",
        2 => "99%",
        3 => "99.9%",
        4 => "99.99%",
        5 => "max",
        _ => "",
    }
    .to_owned()
}

/// `text` safe in HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use hdrhistogram::Histogram;

    use super::*;
    use crate::summary::{LagSample, ProcessSample, Second};

    fn latency(values_us: impl IntoIterator<Item = u64>) -> Latency {
        let mut histogram = Histogram::<u64>::new(3).expect("histogram");
        for v in values_us {
            histogram.record(v).expect("record");
        }
        Latency::of(&histogram)
    }

    fn with_data() -> Summary {
        let seconds = (0..20u64)
            .map(|n| Second {
                sent: 100,
                acknowledged: 100,
                terminal: 80 + n,
                backlog: 20 * (n + 1),
                ack_p50_ms: Some(5.0 + n as f64),
                ack_p99_ms: Some(20.0 + n as f64),
                e2e_p50_ms: (n < 19).then_some(400.0 + 10.0 * n as f64),
                e2e_p99_ms: (n < 19).then_some(900.0 + 10.0 * n as f64),
            })
            .collect();
        Summary {
            scenario: "steady <&>".to_owned(),
            started_at: "2026-12-02T10:00:00+00:00".to_owned(),
            machine: "AMD EPYC, 2 cores, 23.5 GiB".to_owned(),
            rate_from: 100.0,
            rate_to: 100.0,
            duration_s: 20.0,
            sent: 2_000,
            acknowledged: 2_000,
            terminal: [("ACCEPTED".to_owned(), 1_790)].into(),
            acknowledgement: latency((1..=2_000).map(|n| n * 10)),
            end_to_end: latency((1..=1_790).map(|n| 400_000 + n * 100)),
            seconds,
            sent_per_s: 100.0,
            terminal_per_s: 89.5,
            platform: (1..20)
                .map(|n| ProcessSample {
                    at_s: n as f64,
                    cpu_percent: 150.0,
                    rss_mib: 300.0 + n as f64,
                })
                .collect(),
            platform_rss_max_mib: Some(319.0),
            platform_cpu_mean_percent: Some(150.0),
            lag: (1..20)
                .map(|n| LagSample {
                    at_s: n as f64,
                    lag: 3.0 * n as f64,
                })
                .collect(),
            ..Summary::default()
        }
    }

    #[test]
    fn a_run_with_data_has_every_chart() {
        let page = html(&with_data()).expect("report");
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<title>Load test: steady &lt;&amp;&gt;, 2026-12-02T10:00:00+00:00"));
        assert!(!page.contains("steady <&>"), "the scenario is escaped");
        assert!(page.contains("AMD EPYC, 2 cores"));
        assert_eq!(page.matches("<svg ").count(), 8, "{page}");
        assert_eq!(page.matches("</svg>").count(), 8);
        assert!(!page.contains("No data"));
        // Text is drawn by the SVG backend itself (no font files).
        assert!(page.contains(">\nacknowledged/s\n</text>"), "legend text");
        assert!(page.contains(">\n99.9%\n</text>"), "nines axis");
        assert!(!page.contains("<script"));
        assert!(page.contains("class=\"passed\""));
    }

    #[test]
    fn an_empty_run_has_notes_instead_of_charts() {
        let page = html(&Summary::default()).expect("report");
        assert!(page.contains("<title>Load test: , </title>"));
        assert_eq!(page.matches("<svg").count(), 0);
        assert_eq!(page.matches("<p class=\"note\">No data").count(), 8);
        assert!(page.contains("not sampled (--pid)"));
        assert!(page.ends_with("</html>\n"));
    }

    #[test]
    fn the_report_goes_beside_the_json() {
        let dir = tempfile::tempdir().expect("dir");
        let json = dir.path().join("smoke-20261202T100000Z.json");
        let path = write(&with_data(), &json).expect("written");
        assert_eq!(path, dir.path().join("smoke-20261202T100000Z.html"));
        let page = std::fs::read_to_string(path).expect("read");
        assert!(page.contains("<svg "));
    }

    #[test]
    fn percentiles_sit_on_the_nines_axis() {
        assert_eq!(nines(0.0), 0.0);
        assert!((nines(90.0) - 1.0).abs() < 1e-9);
        assert!((nines(99.9) - 3.0).abs() < 1e-9);
        assert!((nines(99.99) - 4.0).abs() < 1e-9);
        assert_eq!(nines(100.0), MAX_NINES);
        assert_eq!(nines_label(&3.0), "99.9%");
        assert_eq!(nines_label(&2.5), "");
    }

    #[test]
    fn escapes_html() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
    }
}
