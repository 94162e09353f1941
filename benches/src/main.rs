//! `chatstore-bench`: chatstore and SQLite (and SQLite FTS5 for the filters)
//! on the same deterministic data, side by side in one run.
//!
//! ```sh
//! cargo run --release -p chatstore-bench -- --scale medium --json bench.json
//! ```
//!
//! The parent generates the data once, then runs each engine in a child
//! process of its own (so each one's peak RSS is its own), checks that both
//! engines give the same answers, and prints the table.
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run
#![forbid(unsafe_code)]

mod data;
mod engines;
mod measure;
mod processes;

use std::path::PathBuf;
use std::process::Command;

use clap::Parser;
use serde_json::{json, Value};

/// mimalloc: sled allocates per key and the system allocator cost about a
/// quarter of the write path's cycles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(about = "chatstore against SQLite on the same data")]
struct Args {
    /// tiny (CI smoke), small, medium, large.
    #[arg(long, default_value = "small")]
    scale: String,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Dataset seed.
    #[arg(long, default_value_t = 20261122)]
    seed: u64,
    /// Repetitions of each query workload.
    #[arg(long, default_value_t = 300)]
    iterations: usize,
    /// Keep the data and stores here instead of a temporary directory.
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Create chatstore's store without the message-text index (and run
    /// no message-search workload on either engine): the write path and
    /// disk of a store that never searches message text.
    #[arg(long)]
    no_text_index: bool,
    /// chatstore's storage engine: lmdb (the default) or sled.
    #[arg(long, default_value = "lmdb")]
    backend: String,
    /// Internal: run one engine's workloads in this process.
    #[arg(long, hide = true)]
    engine: Option<String>,
}

fn run_engine(args: &Args, engine: &str, dir: &std::path::Path) {
    let q: data::Queries =
        serde_json::from_slice(&std::fs::read(dir.join("queries.json")).unwrap()).unwrap();
    let plan = engines::Plan {
        queries: args.iterations,
        appends: args.iterations * 5,
        durable: (args.iterations / 3).max(5),
        text_index: !args.no_text_index,
    };
    eprintln!("{engine}:");
    let r = match engine {
        "chatstore" => engines::chatstore(
            dir,
            &dir.join("base.jsonl"),
            &dir.join("messages.jsonl"),
            &q,
            &plan,
        ),
        _ => engines::sqlite(
            dir,
            &dir.join("base.jsonl"),
            &dir.join("messages.jsonl"),
            &q,
            &plan,
        ),
    };
    let v: Vec<Value> = r.into_iter().map(|(name, unit, s)| json!({"workload": name, "unit": unit, "median": s.median, "p99": s.p99})).collect();
    std::fs::write(
        dir.join(format!("{engine}.json")),
        serde_json::to_vec(&v).unwrap(),
    )
    .unwrap();
}

fn main() {
    let args = Args::parse();
    if !matches!(args.backend.as_str(), "lmdb" | "sled") {
        eprintln!(
            "chatstore-bench: unknown backend {:?} (lmdb, sled)",
            args.backend
        );
        std::process::exit(2);
    }
    // The children create the store; every later open (the agreement check,
    // the cross-process measurement) finds its backend from its files.
    let Some(scale) = data::Scale::named(&args.scale) else {
        eprintln!(
            "chatstore-bench: unknown scale {:?} (tiny, small, medium, large)",
            args.scale
        );
        std::process::exit(2);
    };
    let tmp;
    let dir = match &args.workdir {
        Some(d) => {
            std::fs::create_dir_all(d).unwrap();
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir().unwrap();
            tmp.path().to_path_buf()
        }
    };
    if let Some(engine) = &args.engine {
        if engine == "owner" {
            processes::own(&dir);
        } else if let Some(e) = engine.strip_prefix("writer-") {
            processes::write_until_killed(&dir, e);
        } else {
            run_engine(&args, engine, &dir);
        }
        return;
    }
    // A kept --workdir holds the previous run's stores: start from none.
    for old in ["chatstore.db", "chatstore.keep"] {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    for old in ["sqlite.db", "sqlite.db-wal", "sqlite.db-shm"] {
        let _ = std::fs::remove_file(dir.join(old));
    }
    eprintln!("generating {} data: {scale:?}", scale.name);
    let mut base = std::io::BufWriter::new(std::fs::File::create(dir.join("base.jsonl")).unwrap());
    let mut msgs =
        std::io::BufWriter::new(std::fs::File::create(dir.join("messages.jsonl")).unwrap());
    let q = data::generate(scale, args.seed, &mut base, &mut msgs).unwrap();
    drop((base, msgs));
    eprintln!("queries: {q:?}");
    std::fs::write(dir.join("queries.json"), serde_json::to_vec(&q).unwrap()).unwrap();
    for engine in ["chatstore", "sqlite"] {
        let _ = std::fs::remove_dir_all(dir.join("chatstore.db"));
        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "--scale",
                &args.scale,
                "--iterations",
                &args.iterations.to_string(),
                "--engine",
                engine,
                "--workdir",
            ])
            .arg(&dir)
            .args(args.no_text_index.then_some("--no-text-index"))
            .env("CHATSTORE_BACKEND", &args.backend)
            .status()
            .unwrap();
        assert!(status.success(), "{engine} run failed");
        if engine == "chatstore" {
            // Keep the chatstore store aside for the agreement check.
            std::fs::rename(dir.join("chatstore.db"), dir.join("chatstore.keep")).unwrap();
        }
    }
    std::fs::rename(dir.join("chatstore.keep"), dir.join("chatstore.db")).unwrap();
    if let Err(e) = engines::agree(&dir, &q) {
        eprintln!("chatstore-bench: the engines disagree: {e}");
        std::process::exit(1);
    }
    let load = |e: &str| -> Vec<Value> {
        serde_json::from_slice(&std::fs::read(dir.join(format!("{e}.json"))).unwrap()).unwrap()
    };
    let (c, s) = (load("chatstore"), load("sqlite"));
    let find = |rows: &[Value], name: &str| rows.iter().find(|r| r["workload"] == name).cloned();
    let mut results = Vec::new();
    println!("chatstore on {}; scale {} ({} members, {} sessions, {} messages); ratio = sqlite / chatstore (higher favours chatstore)", args.backend, scale.name, scale.members, scale.sessions, scale.messages);
    println!(
        "{:<30} {:>6} {:>14} {:>14} {:>14} {:>8} {:>8}",
        "workload", "unit", "chatstore", "sqlite", "sqlite_fts5", "ratio", "fts5"
    );
    for row in &c {
        let name = row["workload"].as_str().unwrap();
        let Some(other) = find(&s, name) else {
            continue;
        };
        let fts = find(&s, &format!("{name}@fts5"));
        let (cm, sm) = (
            row["median"].as_f64().unwrap(),
            other["median"].as_f64().unwrap(),
        );
        let fm = fts.as_ref().and_then(|f| f["median"].as_f64());
        println!(
            "{:<30} {:>6} {:>14.1} {:>14.1} {:>14} {:>7.2}x {:>8}",
            name,
            row["unit"].as_str().unwrap(),
            cm,
            sm,
            fm.map_or("-".into(), |f| format!("{f:.1}")),
            sm / cm,
            fm.map_or("-".into(), |f| format!("{:.2}x", f / cm))
        );
        let mut r = json!({"workload": name, "unit": row["unit"], "chatstore": cm, "sqlite": sm,
            "chatstore_p99": row["p99"], "sqlite_p99": other["p99"]});
        if let Some(f) = fts {
            r["sqlite_fts5"] = f["median"].clone();
            r["sqlite_fts5_p99"] = f["p99"].clone();
        }
        results.push(r);
    }
    let cross = processes::measure(&std::env::current_exe().unwrap(), &dir, &q, args.iterations);
    if let Some(p) = &args.json {
        let v = json!({"scale": scale.name, "members": scale.members, "sessions": scale.sessions, "messages": scale.messages,
            "seed": args.seed, "iterations": args.iterations, "text_index": !args.no_text_index,
            "backend": args.backend,
            "queries": q, "results": results,
            "cross_process": cross});
        std::fs::write(p, serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
    }
}
