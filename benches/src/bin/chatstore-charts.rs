//! Cost curves: for each workload of the benchmark, chatstore's and
//! SQLite's median against the number of messages, one SVG per workload,
//! from result files of several scales (`chatstore-bench --json`).
//!
//! ```sh
//! cargo run --release -p chatstore-bench --bin chatstore-charts -- \
//!     --out benches/results/charts tiny.json small.json medium.json
//! ```
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use plotters::prelude::*;
use serde_json::Value;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(about = "SVG cost curves from chatstore-bench result files")]
struct Args {
    /// Directory for the SVG files (created when absent).
    #[arg(long)]
    out: PathBuf,
    /// Result files (`chatstore-bench --json`), one per scale.
    #[arg(required = true)]
    results: Vec<PathBuf>,
}

/// One workload's points: messages -> (chatstore, sqlite) medians.
#[derive(Debug, Default)]
struct Curve {
    unit: String,
    points: BTreeMap<u64, (f64, f64)>,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("chatstore-charts: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let mut curves: BTreeMap<String, Curve> = BTreeMap::new();
    for file in &args.results {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let messages = v["messages"]
            .as_u64()
            .ok_or_else(|| format!("{}: no \"messages\" count", file.display()))?;
        for r in v["results"].as_array().into_iter().flatten() {
            let (Some(w), Some(c), Some(s)) = (
                r["workload"].as_str(),
                r["chatstore"].as_f64(),
                r["sqlite"].as_f64(),
            ) else {
                continue;
            };
            let curve = curves.entry(w.to_string()).or_default();
            curve.unit = r["unit"].as_str().unwrap_or("").to_string();
            curve.points.insert(messages, (c, s));
        }
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    for (workload, curve) in &curves {
        if curve.points.len() < 2 {
            continue;
        }
        let path = args.out.join(format!("{workload}.svg"));
        draw(&path, workload, curve).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

fn draw(
    path: &std::path::Path,
    workload: &str,
    curve: &Curve,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (560, 360)).into_drawing_area();
    root.fill(&WHITE)?;
    let xs: Vec<f64> = curve.points.keys().map(|&m| m as f64).collect();
    let ys = curve.points.values().flat_map(|&(c, s)| [c, s]);
    let (lo, hi) = ys.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (lo, hi) = ((lo / 2.0).max(1e-3), hi * 2.0);
    let x0 = xs[0] / 2.0;
    let x1 = xs[xs.len() - 1] * 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{workload} ({})", unit(&curve.unit)),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d((x0..x1).log_scale(), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(4)
        .y_labels(6)
        .x_desc("messages in the store")
        .y_desc(format!("median, {}", unit(&curve.unit)))
        .x_label_formatter(&|x| human(*x))
        .y_label_formatter(&|y| human(*y))
        .draw()?;
    let series = [("chatstore", BLUE, 0usize), ("SQLite", RED, 1usize)];
    for (name, color, i) in series {
        let pts: Vec<(f64, f64)> = curve
            .points
            .iter()
            .map(|(&m, &(c, s))| (m as f64, if i == 0 { c } else { s }))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The result files' units as a reader writes them.
fn unit(u: &str) -> &str {
    match u {
        "us" => "µs",
        other => other,
    }
}

/// 1200 -> "1.2k", 3000000 -> "3M", 0.5 -> "0.5".
fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_people_write_them() {
        assert_eq!(human(1_200.0), "1.2k");
        assert_eq!(human(3_000_000.0), "3M");
        assert_eq!(human(0.5), "0.5");
        assert_eq!(unit("us"), "µs");
    }

    #[test]
    fn a_chart_per_workload_with_two_scales() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, messages: u64, c: f64| {
            let p = dir.path().join(name);
            let v = serde_json::json!({"messages": messages, "results": [
                {"workload": "page1", "unit": "us", "chatstore": c, "sqlite": c * 10.0},
                {"workload": "only_here", "unit": "us", "chatstore": 1.0, "sqlite": 2.0}
            ]});
            std::fs::write(&p, v.to_string()).unwrap();
            p
        };
        let mut results = vec![file("a.json", 1_000, 5.0), file("b.json", 100_000, 6.0)];
        let out = dir.path().join("charts");
        run(&Args {
            out: out.clone(),
            results: results.clone(),
        })
        .unwrap();
        let svg = std::fs::read_to_string(out.join("page1.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("chatstore") && svg.contains("SQLite"));
        // A workload of one scale is no curve.
        assert!(out.join("only_here.svg").exists());
        results.truncate(1);
        let out1 = dir.path().join("one");
        run(&Args {
            out: out1.clone(),
            results,
        })
        .unwrap();
        assert!(!out1.join("page1.svg").exists());
    }
}
