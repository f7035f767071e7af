//! What a run found: per door and workload the rate and latencies beside
//! the physical limit's, the load and the machine; printed as a table on
//! the terminal and written whole as JSON (`--json FILE`).

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::error::Result;

/// Rate and latency percentiles of one measured run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Figures {
    pub ops: usize,
    pub per_second: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
}

impl Figures {
    /// From each operation's latency and the wall time of them all.
    pub fn of(latencies: &mut [Duration], elapsed: Duration) -> Figures {
        latencies.sort();
        let at = |q: f64| {
            let n = latencies.len();
            if n == 0 {
                return 0.0;
            }
            let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            latencies[i].as_secs_f64() * 1e6
        };
        Figures {
            ops: latencies.len(),
            per_second: latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_us: at(0.5),
            p99_us: at(0.99),
            p999_us: at(0.999),
        }
    }
}

/// One workload through one door.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub door: String,
    pub workload: String,
    pub what: String,
    pub figures: Figures,
    /// The physical limit doing the same work, in the same run.
    pub limit: Option<Figures>,
    pub limit_name: Option<String>,
    /// This door's rate over the limit's.
    pub ratio: Option<f64>,
    /// TCP only: this rate over the same workload's through OQL in process.
    pub vs_in_process: Option<f64>,
    /// W1 commits acknowledged.
    pub writes: u64,
    /// Answers that disagreed with the direct computation.
    pub wrong: usize,
    /// Mean recall@10 against exact search (Q6).
    pub recall: Option<f64>,
    /// The first few wrong answers or errors.
    pub failures: Vec<String>,
}

/// A load and its limit.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub records: u64,
    pub seconds: f64,
    pub records_per_second: f64,
    /// Raw RocksDB writing the same keys in batches.
    pub raw_keys: u64,
    pub raw_seconds: f64,
    /// Raw time over onedb's.
    pub ratio: f64,
    /// Opening the loaded directory: the search indexes rebuilt from the store.
    pub index_rebuild_seconds: f64,
    /// Things (each a statement) created through OQL, in blocks.
    pub oql_records: u64,
    pub oql_records_per_second: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_bytes: u64,
    pub cpu: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scale: String,
    pub seed: u64,
    pub dataset_hash: String,
    pub clients: usize,
    pub machine: Machine,
    pub commit: String,
    pub date: String,
    pub load: Load,
    pub size_on_disk_bytes: u64,
    pub peak_rss_bytes: u64,
    pub rows: Vec<Row>,
    /// W1 commits acknowledged over every door, and the acting owner's
    /// `owns` edges found afterwards (the owner owned nothing before).
    pub writes_acknowledged: u64,
    pub writes_found: u64,
    pub seconds: f64,
    /// Wrong answers over every row; the run fails when not 0.
    pub checks_failed: usize,
}

impl Report {
    /// The table for people.
    pub fn print(&self, out: &mut dyn Write) -> Result<()> {
        writeln!(
            out,
            "onedb bench --scale {}  seed {}  dataset {}  {}  {} cores, {:.1} GiB, {}",
            self.scale,
            self.seed,
            &self.dataset_hash[..self.dataset_hash.len().min(12)],
            self.date,
            self.machine.cores,
            self.machine.memory_bytes as f64 / (1u64 << 30) as f64,
            self.machine.cpu
        )?;
        let l = &self.load;
        writeln!(
            out,
            "load      {} records in {:.2} s = {:.0} records/s; raw batched writes of the same {} keys {:.2} s ({:.0} %); index rebuild {:.2} s",
            l.records,
            l.seconds,
            l.records_per_second,
            l.raw_keys,
            l.raw_seconds,
            100.0 * l.ratio,
            l.index_rebuild_seconds
        )?;
        writeln!(
            out,
            "load OQL  {} things = {:.0} records/s;  size on disk {:.1} MiB;  peak RSS {:.1} MiB",
            l.oql_records,
            l.oql_records_per_second,
            mib(self.size_on_disk_bytes),
            mib(self.peak_rss_bytes)
        )?;
        writeln!(
            out,
            "\n{:<5} {:<12} {:>10} {:>9} {:>9} {:>9} {:>12} {:>8}  {:<14} check",
            "door",
            "workload",
            "ops/s",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "limit ops/s",
            "ratio",
            "limit"
        )?;
        for r in &self.rows {
            let f = &r.figures;
            let check = match (r.wrong, r.recall) {
                (0, Some(recall)) => format!("ok, recall {recall:.3}"),
                (0, None) => "ok".into(),
                (n, _) => format!("{n} WRONG"),
            };
            writeln!(
                out,
                "{:<5} {:<12} {:>10.0} {:>9.1} {:>9.1} {:>9.1} {:>12} {:>8}  {:<16} {:>7}  {check}",
                r.door,
                r.workload,
                f.per_second,
                f.p50_us,
                f.p99_us,
                f.p999_us,
                r.limit
                    .map_or("-".into(), |l| format!("{:.0}", l.per_second)),
                r.ratio
                    .map_or("-".into(), |x| format!("{:.1} %", 100.0 * x)),
                r.limit_name.as_deref().unwrap_or("-"),
                r.vs_in_process
                    .map_or("-".into(), |x| format!("{:.0} %", 100.0 * x)),
            )?;
        }
        for r in self.rows.iter().filter(|r| !r.failures.is_empty()) {
            for f in &r.failures {
                writeln!(out, "{} {}: {f}", r.door, r.workload)?;
            }
        }
        writeln!(
            out,
            "\n{} W1 commits acknowledged, {} found afterwards",
            self.writes_acknowledged, self.writes_found
        )?;
        writeln!(
            out,
            "{} wrong answers; {:.1} s in all",
            self.checks_failed, self.seconds
        )?;
        Ok(())
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// The machine this runs on (Linux's /proc; unknown elsewhere).
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes: kib_field(&meminfo, "MemTotal:") * 1024,
        cpu: cpuinfo
            .lines()
            .find_map(|l| {
                Some(
                    l.strip_prefix("model name")?
                        .split(':')
                        .nth(1)?
                        .trim()
                        .to_string(),
                )
            })
            .unwrap_or_else(|| "unknown".into()),
    }
}

/// The most resident memory this process has had.
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    kib_field(&status, "VmHWM:") * 1024
}

fn kib_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Bytes of every file under `dir`.
pub fn size_on_disk(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_on_disk(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// The commit this onedb was built from (`ONEDB_COMMIT` at build time), or
/// the one `git` reports in the working directory.
pub fn commit() -> String {
    if let Some(c) = option_env!("ONEDB_COMMIT") {
        return c.to_string();
    }
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn date() -> String {
    crate::model::iso_of(crate::model::now_ms())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_sample() {
        let mut l: Vec<Duration> = (1..=1000).rev().map(Duration::from_micros).collect();
        let f = Figures::of(&mut l, Duration::from_secs(2));
        assert_eq!(f.ops, 1000);
        assert_eq!(f.per_second, 500.0);
        let us = |x: f64| x.round() as u64;
        assert_eq!((us(f.p50_us), us(f.p99_us), us(f.p999_us)), (500, 990, 999));
    }

    #[test]
    fn the_date_is_iso() {
        let d = date();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'), "{d}");
    }
}
