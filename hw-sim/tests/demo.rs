//! `custos-sim demo` as a user runs it: the scenario walks carriers through the simulated gate,
//! an unauthorised exit sets the alarm coils, and Ctrl-C (SIGINT) stops it cleanly.

mod common;

use common::{SimProcess, TempDir, init_tracing};

#[tokio::test]
async fn the_demo_alarms_on_an_unauthorised_exit_and_stops_on_sigint() {
    init_tracing();
    let dir = TempDir::new("demo");
    let data = dir.join("site");
    let mut sim = SimProcess::spawn(&[
        "demo",
        "--data-dir",
        data.to_str().unwrap(),
        "--speed",
        "10",
    ]);
    let mut seen = Vec::new();
    let wanted = [
        "crossing OUT: signed out: may leave",
        "crossing in: welcome back",
        "crossing OUT: NOT signed out: UNAUTHORIZED REMOVAL",
        "gate I/O: coil 0 -> ON",
        "alarm on",
    ];
    // The scenario reaches its first unauthorised exit after ~8 s of walking (its pauses never
    // drop below what the gate's smoothing needs); allow for a loaded machine.
    let walk = tokio::time::timeout(std::time::Duration::from_secs(90), async {
        while !wanted
            .iter()
            .all(|w| seen.iter().any(|l: &String| l.contains(w)))
        {
            let line = sim.next_line().await.expect("demo exited early");
            seen.push(line);
        }
    })
    .await;
    assert!(walk.is_ok(), "timed out; output so far: {seen:#?}");
    let status = sim.interrupt().await;
    assert!(status.success(), "{status}; output: {seen:#?}");
    assert!(!data.join("gate-uhf").exists(), "pty link removed");
}
