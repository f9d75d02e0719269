//! `custos-sim bench` as BENCHMARKS.md runs it, shortened to a smoke test: one gate for three
//! seconds (one unauthorised passage) in a debug build. The figures are not checked (a debug
//! build on a shared machine); the report's shape and the loss accounting are.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::TempDir;
use serde_json::Value;

/// The longest the run may take (building the site in a debug build on a loaded machine).
const LIMIT: Duration = Duration::from_secs(240);

fn latency_is_summary(v: &Value, what: &str) {
    let count = v["count"].as_u64().unwrap_or_else(|| panic!("{what}: {v}"));
    for key in ["p50_ms", "p90_ms", "p99_ms", "max_ms"] {
        assert_eq!(v[key].is_f64(), count > 0, "{what}.{key}: {v}");
    }
    if count > 0 {
        let (p50, p99, max) = (
            v["p50_ms"].as_f64().unwrap(),
            v["p99_ms"].as_f64().unwrap(),
            v["max_ms"].as_f64().unwrap(),
        );
        assert!(0.0 <= p50 && p50 <= p99 && p99 <= max, "{what}: {v}");
    }
}

#[test]
fn one_gate_for_three_seconds_loses_and_duplicates_nothing() {
    let dir = TempDir::new("bench");
    let json = dir.join("bench.json");
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_custos-sim"))
        .args(["bench", "--gates", "1", "--seconds", "3", "--json"])
        .arg(&json)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .output()
        .expect("custos-sim runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(started.elapsed() < LIMIT, "took {:?}", started.elapsed());
    assert!(stdout.contains("Site load"), "{stdout}");
    assert!(stdout.contains("LOST / DUPLICATED"), "{stdout}");

    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(report["command"].as_str().unwrap().contains("bench"));
    assert!(report["date"].as_str().unwrap().ends_with('Z'));
    assert!(report["machine"]["cpus"].as_u64().unwrap() >= 1);
    assert!(report["daemon"].is_null(), "no --daemon");
    let runs = report["site_load"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(r["gates"], 1);

    // The first passage of gate 0 is unauthorised (see site_load): it alarms and reaches the
    // guard's screen.
    let passages = &r["passages"];
    let total = passages["total"].as_u64().unwrap();
    let unauthorised = passages["unauthorised"].as_u64().unwrap();
    assert!(total >= 1 && unauthorised >= 1, "{passages}");
    assert_eq!(
        total,
        unauthorised + passages["authorised"].as_u64().unwrap()
    );
    for key in [
        "passage_to_coil",
        "daemon_passage_to_coil",
        "passage_to_screen",
    ] {
        latency_is_summary(&r[key], key);
    }
    assert_eq!(r["passage_to_coil"]["count"].as_u64(), Some(unauthorised));
    assert_eq!(r["passage_to_screen"]["count"].as_u64(), Some(unauthorised));
    assert_eq!(r["alarms"]["false_alarm"], 0);

    let loss = &r["loss"];
    assert_eq!(loss["lost"], 0, "{loss}");
    assert_eq!(loss["duplicated"], 0, "{loss}");
    assert_eq!(loss["recognised"].as_u64(), Some(total), "{loss}");
    assert_eq!(
        loss["server"]["stored_once"].as_u64(),
        Some(total),
        "{loss}"
    );
    assert_eq!(loss["server"]["unexpected"], 0, "{loss}");
    assert_eq!(loss["outbox_left"], 0, "{loss}");

    assert!(
        r["ingest"]["events"].as_u64().unwrap() >= 1,
        "{}",
        r["ingest"]
    );
    assert!(r["cpu"]["process"]["cpu_seconds"].as_f64().unwrap() > 0.0);
    assert!(!r["cpu"]["threads"].as_array().unwrap().is_empty());
    let memory = &r["memory"];
    assert!(memory["peak_rss_kib"].as_u64().unwrap() >= memory["rss_kib"].as_u64().unwrap());
}
