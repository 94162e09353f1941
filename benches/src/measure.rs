//! Timing, memory and disk measurements.

use std::path::Path;
use std::time::Instant;

/// Median and p99 of a sample, in microseconds.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) struct Stat {
    /// Median.
    pub median: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// Time one workload may take: slow workloads (a scan of millions of rows)
/// stop sampling here, after at least [`MIN_SAMPLES`].
pub(crate) const BUDGET_SECS: f64 = 20.0;
/// The fewest samples a workload gets, whatever the budget.
pub(crate) const MIN_SAMPLES: usize = 5;

/// Times `f` `n` times (after one warm-up call), or fewer once
/// [`BUDGET_SECS`] are spent (never fewer than [`MIN_SAMPLES`]).
pub(crate) fn time(n: usize, mut f: impl FnMut()) -> Stat {
    f();
    let mut t: Vec<f64> = Vec::with_capacity(n);
    let mut spent = 0.0;
    while t.len() < n && (t.len() < MIN_SAMPLES || spent < BUDGET_SECS * 1e6) {
        let s = Instant::now();
        f();
        let us = s.elapsed().as_secs_f64() * 1e6;
        spent += us;
        t.push(us);
    }
    note_anon();
    stat(&mut t)
}

/// Median and p99 of samples in microseconds.
pub(crate) fn stat(t: &mut [f64]) -> Stat {
    t.sort_by(|a, b| a.total_cmp(b));
    let n = t.len().max(1);
    Stat {
        median: t.get(n / 2).copied().unwrap_or(0.0),
        p99: t
            .get(((n as f64 * 0.99) as usize).min(n - 1))
            .copied()
            .unwrap_or(0.0),
    }
}

/// Peak resident set size of this process, in bytes (Linux).
pub(crate) fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Anonymous resident memory of this process now (`RssAnon`: the heap and
/// stacks, not pages of mapped files such as an LMDB map), in bytes.
pub(crate) fn rss_anon() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("RssAnon:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

static MAX_ANON: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Samples [`rss_anon`]; returns the largest sample so far.
pub(crate) fn note_anon() -> u64 {
    let now = rss_anon();
    MAX_ANON
        .fetch_max(now, std::sync::atomic::Ordering::Relaxed)
        .max(now)
}

/// Bytes under a path.
pub(crate) fn disk_bytes(p: &Path) -> u64 {
    if p.is_file() {
        return p.metadata().map_or(0, |m| m.len());
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| disk_bytes(&e.path())).sum())
        .unwrap_or(0)
}
