//! The lab's self-contained HTML page: the note's table with the evidence, the measurements, and
//! three charts drawn as inline SVG by plotters (its SVG backend only, so the text is SVG `<text>`
//! that the browser lays out — no font files, no bitmap code).
//!
//! Figures, each one `<svg>` with every engine in it:
//! - `throughput`: `io` requests per second against requests in flight (log–log), with the ideal
//!   (in flight ÷ delay) for reference;
//! - `memory`: `io` peak resident memory against requests in flight (log–log);
//! - `cpu`: the `cpu` workload's requests per second, one bar per engine.

use std::fmt::Write as _;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;

use super::engines::EngineKind;
use super::evidence::{self, bytes, count};
use super::report::{conditions, describe, fairness, not_run};
use super::workload::WorkloadKind;
use super::{CellResult, LabReport};

/// The figures of the page, by id, in order.
pub const FIGURES: [&str; 3] = ["throughput", "memory", "cpu"];

const SIZE: (u32, u32) = (760, 440);

/// The colour of an engine, the same in every figure.
fn colour(engine: EngineKind) -> RGBColor {
    match engine {
        EngineKind::Async1 => RGBColor(31, 119, 180),
        EngineKind::AsyncN => RGBColor(23, 190, 207),
        EngineKind::Threads => RGBColor(214, 39, 40),
        EngineKind::Pool => RGBColor(255, 127, 14),
        EngineKind::Hybrid => RGBColor(148, 103, 189),
    }
}

/// The page.
pub fn render(report: &LabReport) -> String {
    let mut page = String::with_capacity(256 * 1024);
    _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>outofsync lab: async or threads?</title><style>{STYLE}</style></head><body>\n\
         <h1>Async or threads? Measured.</h1>\n<p>{} {}</p>\n<p>{}</p>\n",
        escape(&format!(
            "{} cells on {} cores, Linux {}, {} build.",
            report.cells.len(),
            report.machine.cores,
            report.machine.kernel,
            if report.machine.optimized { "release" } else { "debug (numbers not representative)" }
        )),
        escape(&conditions(report)),
        escape(&fairness(report))
    );

    page.push_str(
        "<h2>The note's table, measured</h2>\n<table class=\"claims\"><tr><th>Feature</th>\
                   <th>Async (the note)</th><th>Threads (the note)</th><th>Measured here</th></tr>\n",
    );
    for row in evidence::rows(report) {
        _ = writeln!(
            page,
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}<p class=\"verdict\">{}</p></td></tr>",
            escape(row.feature),
            escape(row.note_async),
            escape(row.note_threads),
            escape(&row.evidence),
            escape(&row.verdict)
        );
    }
    page.push_str("</table>\n<h2>Charts</h2>\n");
    for (id, svg) in FIGURES.iter().zip(charts(report)) {
        _ = writeln!(page, "<figure id=\"{id}\">{svg}</figure>");
    }
    page.push_str("<h2>Every measurement</h2>\n");
    for workload in WorkloadKind::ALL {
        let cells: Vec<&CellResult> =
            report.cells.iter().filter(|c| c.measurement.workload == workload).collect();
        if !cells.is_empty() {
            table(&mut page, report, workload, &cells);
        }
    }
    page.push_str(
        "<p class=\"note\">Counters are deltas over each cell's measured phase, taken inside a fresh worker \
         process (getrusage; VmHWM after clear_refs; peak threads and descriptors sampled). Memory per request in \
         flight is peak growth divided by the most requests the engine had in flight at once. Kernel memory \
         (thread stacks in the kernel, socket buffers) is not in RSS.</p>\n</body></html>\n",
    );
    page
}

/// The SVG of every figure, in the order of [`FIGURES`]. A figure without data says so.
pub fn charts(report: &LabReport) -> Vec<String> {
    let delay_ms = report.plan.io_delay_ms.max(1) as f64;
    vec![
        sweep(
            report,
            "Throughput against requests in flight (io)",
            "requests per second",
            Scale::Log,
            |c| c.measurement.throughput,
            Some(&|n| n * 1000.0 / delay_ms),
        ),
        sweep(
            report,
            "Peak memory against requests in flight (io)",
            "peak resident memory (MiB)",
            Scale::Linear,
            |c| c.measurement.rss_peak as f64 / (1024.0 * 1024.0),
            None,
        ),
        bars(report),
    ]
    .into_iter()
    .map(|svg| {
        svg.unwrap_or_else(|e| {
            format!("<svg xmlns=\"http://www.w3.org/2000/svg\"><text>{}</text></svg>", escape(&e))
        })
    })
    .collect()
}

/// The y axis of a sweep: throughput spans decades, memory is read best from zero.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scale {
    Log,
    Linear,
}

/// One engine's points.
type Series = Vec<(EngineKind, Vec<(f64, f64)>)>;

/// `value` against concurrency (log scale) for every engine on `io`, and the `ideal` line.
fn sweep(
    report: &LabReport,
    caption: &str,
    y_label: &str,
    scale: Scale,
    value: impl Fn(&CellResult) -> f64,
    ideal: Option<&dyn Fn(f64) -> f64>,
) -> Result<String, String> {
    let series: Series = report
        .engines()
        .into_iter()
        .map(|e| {
            let points = report
                .series(e, WorkloadKind::Io)
                .into_iter()
                .map(|c| (c.measurement.concurrency as f64, value(c).max(1e-3)))
                .collect();
            (e, points)
        })
        .collect();
    let xs: Vec<f64> = series.iter().flat_map(|(_, p)| p.iter().map(|&(x, _)| x)).collect();
    let mut ys: Vec<f64> = series.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y)).collect();
    if xs.is_empty() {
        return Err(format!("{caption}: no io measurements"));
    }
    let (x_lo, x_hi) = bounds(&xs);
    let ideal = ideal.map(|f| [(x_lo, f(x_lo)), (x_hi, f(x_hi))]);
    ys.extend(ideal.iter().flatten().map(|&(_, y)| y));
    let (y_lo, y_hi) = bounds(&ys);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut builder = ChartBuilder::on(&root);
        builder.caption(caption, ("sans-serif", 20)).margin(14).x_label_area_size(48).y_label_area_size(78);
        let x = (x_lo / 1.5..x_hi * 1.5).log_scale();
        match scale {
            Scale::Log => {
                let chart = builder
                    .build_cartesian_2d(x, (y_lo / 1.5..y_hi * 1.5).log_scale())
                    .map_err(|e| e.to_string())?;
                draw_sweep(chart, y_label, &series, ideal)?;
            }
            Scale::Linear => {
                let chart = builder.build_cartesian_2d(x, 0.0..y_hi * 1.1).map_err(|e| e.to_string())?;
                draw_sweep(chart, y_label, &series, ideal)?;
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Axes, lines, points and legend of a sweep, whatever the y scale.
fn draw_sweep<'a, 'b: 'a, Y>(
    mut chart: ChartContext<'a, SVGBackend<'b>, Cartesian2d<LogCoord<f64>, Y>>,
    y_label: &str,
    series: &Series,
    ideal: Option<[(f64, f64); 2]>,
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("requests in flight")
        .y_desc(y_label)
        .y_labels(8)
        .x_label_formatter(&|x| count(*x))
        .y_label_formatter(&|y| if *y >= 10.0 || *y == 0.0 { count(*y) } else { format!("{y:.1}") })
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| e.to_string())?;
    if let Some(line) = ideal {
        chart
            .draw_series(DashedLineSeries::new(line, 6, 6, BLACK.mix(0.5).stroke_width(1)))
            .map_err(|e| e.to_string())?
            .label("ideal: in flight ÷ delay")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 22, y)], BLACK.mix(0.5)));
    }
    for (engine, points) in series {
        let style = colour(*engine);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(engine.name())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 22, y)], style.stroke_width(3)));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, style.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())
}

/// One bar per engine: the `cpu` workload's throughput, with its value on top.
fn bars(report: &LabReport) -> Result<String, String> {
    let caption = "CPU-bound work: requests per second (cpu)";
    let values: Vec<(EngineKind, f64)> = report
        .engines()
        .into_iter()
        .filter_map(|e| report.series(e, WorkloadKind::Cpu).first().map(|c| (e, c.measurement.throughput)))
        .collect();
    if values.is_empty() {
        return Err(format!("{caption}: no cpu measurements"));
    }
    let top = values.iter().map(|&(_, v)| v).fold(0.0, f64::max).max(1.0) * 1.2;
    let names: Vec<&str> = values.iter().map(|(e, _)| e.name()).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(78)
            // plotters' segmented 0..n has n + 1 segments; a single bar still needs a range to stand in.
            .build_cartesian_2d((0..values.len().max(2) - 1).into_segmented(), 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("engine")
            .y_desc("requests per second")
            .x_labels(values.len())
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => names.get(*i).map_or(String::new(), |n| (*n).to_owned()),
                _ => String::new(),
            })
            .y_label_formatter(&|y| count(*y))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, &(engine, value)) in values.iter().enumerate() {
            let mut bar = Rectangle::new(
                [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), value)],
                colour(engine).filled(),
            );
            bar.set_margin(0, 0, 18, 18);
            chart.draw_series([bar]).map_err(|e| e.to_string())?;
            chart
                .draw_series([Text::new(
                    count(value),
                    (SegmentValue::CenterOf(i), value + top * 0.02),
                    ("sans-serif", 14).into_font().color(&BLACK).pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Bottom,
                    )),
                )])
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// The smallest and largest of `values` (both positive, for a log scale).
fn bounds(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min).max(1e-3);
    let hi = values.iter().copied().fold(0.0, f64::max).max(lo * 1.01);
    (lo, hi)
}

fn table(page: &mut String, report: &LabReport, workload: WorkloadKind, cells: &[&CellResult]) {
    _ = writeln!(
        page,
        "<h3>{}: {}</h3>\n<table class=\"cells\"><tr><th>asked</th><th>engine</th><th>in flight</th>\
         <th>at the server</th><th>req/s</th>\
         <th>p50 ms</th><th>p99 ms</th><th>peak RSS</th><th>RSS per request in flight</th><th>user s</th>\
         <th>sys s</th><th>voluntary cs</th><th>involuntary cs</th><th>threads</th><th>fds</th><th>ok / records</th></tr>",
        workload.name(),
        escape(&describe(report, workload))
    );
    for c in cells {
        let m = &c.measurement;
        _ = writeln!(
            page,
            "<tr><td>{}</td><td style=\"color:{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td>\
             <td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td></tr>",
            count(m.concurrency as f64),
            css(colour(m.engine)),
            m.engine.name(),
            count(m.totals.in_flight as f64),
            if workload == WorkloadKind::Io { count(c.server_in_flight as f64) } else { "–".into() },
            count(m.throughput),
            m.totals.latency_ms.p50,
            m.totals.latency_ms.p99,
            bytes(m.rss_peak as f64),
            bytes(c.rss_per_in_flight),
            m.usage.user_s,
            m.usage.system_s,
            count(m.usage.voluntary_switches as f64),
            count(m.usage.involuntary_switches as f64),
            count(m.threads as f64),
            count(m.fds as f64),
            count(m.totals.ok as f64),
            count(m.totals.records as f64),
        );
    }
    page.push_str("</table>\n");
    if workload == WorkloadKind::Io {
        for note in not_run(report) {
            _ = writeln!(page, "<p class=\"note\">{}</p>", escape(&note));
        }
    }
}

fn css(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// Text for HTML content and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;\
vertical-align:top;text-align:left}table.cells td{text-align:right}table.cells td:nth-child(2){text-align:left;white-space:nowrap}\
.verdict{margin:.4em 0 0;color:#555;font-style:italic}figure{margin:1em 0}.note{color:#555;font-size:13px}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_makes_text_safe_in_html() {
        assert_eq!(escape(r#"<a href="x">&</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
    }
}
