//! `onedb bench --scale XS`: the real binary runs the whole benchmark (the
//! CI smoke test: under 2 minutes on 2 cores) and its JSON has every
//! figure, and every answer was right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

#[test]
fn bench_xs_runs_checks_every_answer_and_writes_its_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_onedb"))
        .args(["bench", "--scale", "XS", "--clients", "4", "--json"])
        .arg(&json)
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(took < Duration::from_secs(120), "took {took:?}");

    let report: Json = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["scale"], "XS");
    assert_eq!(report["checks_failed"], 0);
    assert_eq!(report["dataset_hash"].as_str().unwrap().len(), 64);
    for field in ["cores", "memory_bytes", "cpu"] {
        assert!(!report["machine"][field].is_null(), "machine.{field}");
    }
    for field in ["commit", "date"] {
        assert!(report[field].is_string(), "{field}");
    }
    assert!(report["load"]["records"].as_u64().unwrap() > 100_000);
    assert!(report["load"]["records_per_second"].as_f64().unwrap() > 0.0);
    assert!(report["load"]["ratio"].as_f64().unwrap() > 0.0);
    // Every acknowledged W1 is found afterwards.
    let acknowledged = report["writes_acknowledged"].as_u64().unwrap();
    assert!(acknowledged > 1_000, "{acknowledged}");
    assert_eq!(report["writes_found"].as_u64().unwrap(), acknowledged);
    assert!(report["size_on_disk_bytes"].as_u64().unwrap() > 0);
    assert!(report["peak_rss_bytes"].as_u64().unwrap() > 0);

    let rows = report["rows"].as_array().unwrap();
    let workloads = [
        "Q1",
        "Q2",
        "Q3",
        "Q4",
        "Q5 frequent",
        "Q5 rare",
        "Q6",
        "Q7",
        "W1",
        "mixed",
    ];
    for door in ["api", "oql", "tcp"] {
        for w in workloads {
            let row = rows
                .iter()
                .find(|r| r["door"] == door && r["workload"] == w)
                .unwrap_or_else(|| panic!("no row {door} {w}"));
            assert_eq!(row["wrong"], 0, "{row}");
            let f = &row["figures"];
            assert!(f["per_second"].as_f64().unwrap() > 0.0, "{row}");
            assert!(f["p50_us"].as_f64().unwrap() <= f["p99_us"].as_f64().unwrap());
            assert!(f["p99_us"].as_f64().unwrap() <= f["p999_us"].as_f64().unwrap());
            if w != "mixed" {
                assert!(row["ratio"].as_f64().unwrap() > 0.0, "{row}");
            }
        }
        let q6 = rows
            .iter()
            .find(|r| r["door"] == door && r["workload"] == "Q6")
            .unwrap();
        assert!(q6["recall"].as_f64().unwrap() >= 0.8, "{q6}");
    }
    let tcp_q1 = rows
        .iter()
        .find(|r| r["door"] == "tcp" && r["workload"] == "Q1")
        .unwrap();
    assert!(tcp_q1["vs_in_process"].as_f64().unwrap() > 0.0);
    // The table on the terminal says the same.
    assert!(stdout.contains("0 wrong answers"), "{stdout}");
    // The scratch directory is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "bench.json")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn bench_refuses_an_unknown_scale() {
    let out = Command::new(env!("CARGO_BIN_EXE_onedb"))
        .args(["bench", "--scale", "XL"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("XS"));
}
