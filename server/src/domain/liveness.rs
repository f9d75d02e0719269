//! How a device looks from the guard post: silent by the sweep's own rule, else the worst state
//! its readers report.

use serde::Serialize;

use super::sweep::is_silent;

/// A device's state on the guard console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Liveness {
    /// Heartbeats arrive and every reader reports `ok`.
    Ok,
    /// Never heard from since registration.
    Never,
    /// No heartbeat for longer than the supervision interval.
    Silent,
    /// A reader reports `fault`, or the device reports a fault of its own (or the health
    /// document is unreadable: `reader` is `None`).
    Fault {
        /// The faulty reader's name, or the device fault's kind (`outbox_full`).
        reader: Option<String>,
    },
    /// A reader reports `degraded`.
    Degraded {
        /// The degraded reader's name.
        reader: String,
    },
}

impl Liveness {
    /// Green on the console: only a device that reports in and whose readers are all `ok`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Liveness::Ok)
    }
}

/// Judge a device from its last heartbeat (server receive time, Unix ms) and its health
/// document (`{"readers": {"name": {"state": "ok|degraded|fault", ...}}, "faults": [{"kind":
/// "outbox_full", ...}], ...}`): silent by the sweep's own rule ([`is_silent`], the rule that
/// raises `reader_silent`), else the worst reader state, a standing device fault counting as a
/// faulty reader.
///
/// A device that never sent a heartbeat is [`Liveness::Never`] (never green), whether or not
/// the sweep already counts it silent since its registration.
pub fn liveness(
    last_heartbeat_ms: Option<i64>,
    health_json: Option<&str>,
    now_ms: i64,
    supervision_ms: i64,
) -> Liveness {
    let Some(last) = last_heartbeat_ms else {
        return Liveness::Never;
    };
    if is_silent(last, now_ms, supervision_ms) {
        return Liveness::Silent;
    }
    let Some(text) = health_json else {
        return Liveness::Ok;
    };
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else {
        return Liveness::Fault { reader: None };
    };
    let empty = serde_json::Map::new();
    let readers = doc
        .get("readers")
        .and_then(|r| r.as_object())
        .unwrap_or(&empty);
    let state = |name: &str| readers[name].get("state").and_then(|s| s.as_str());
    if let Some(name) = readers
        .keys()
        .find(|n| state(n) != Some("ok") && state(n) != Some("degraded"))
    {
        return Liveness::Fault {
            reader: Some(name.clone()),
        };
    }
    if let Some(fault) = doc
        .get("faults")
        .and_then(|f| f.as_array())
        .and_then(|f| f.first())
    {
        return Liveness::Fault {
            reader: Some(fault["kind"].as_str().unwrap_or("other").to_owned()),
        };
    }
    if let Some(name) = readers.keys().find(|n| state(n) == Some("degraded")) {
        return Liveness::Degraded {
            reader: name.clone(),
        };
    }
    Liveness::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUPERVISION: i64 = 6_000;

    #[test]
    fn liveness_is_silent_after_the_supervision_interval() {
        assert_eq!(liveness(None, None, 10_000, SUPERVISION), Liveness::Never);
        assert_eq!(
            liveness(Some(4_000), None, 10_000, SUPERVISION),
            Liveness::Ok
        );
        assert_eq!(
            liveness(Some(3_999), None, 10_000, SUPERVISION),
            Liveness::Silent
        );
        assert!(liveness(Some(4_000), None, 10_000, SUPERVISION).is_ok());
        assert!(!liveness(None, None, 10_000, SUPERVISION).is_ok());
    }

    /// The console shows a device that reported as silent exactly when the sweep counts it
    /// silent (and would raise `reader_silent`), on both sides of the boundary.
    #[test]
    fn the_console_and_the_sweep_agree_on_silence() {
        use crate::domain::sweep::silent_since;
        let last = 10_000;
        for now in last - 1..=last + SUPERVISION + 2 {
            let console = liveness(Some(last), None, now, SUPERVISION) == Liveness::Silent;
            let sweep = silent_since(Some(last), 0, now, SUPERVISION).is_some();
            assert_eq!(console, sweep, "now = {now}");
        }
    }

    #[test]
    fn the_worst_reader_decides() {
        let doc = |a: &str, b: &str| {
            format!(
                r#"{{"readers":{{"a":{{"state":"{a}"}},"b":{{"state":"{b}"}}}},"outbox_depth":0}}"#
            )
        };
        let at = |json: &str| liveness(Some(9_000), Some(json), 10_000, SUPERVISION);
        assert_eq!(at(&doc("ok", "ok")), Liveness::Ok);
        assert_eq!(
            at(&doc("ok", "degraded")),
            Liveness::Degraded { reader: "b".into() }
        );
        assert_eq!(
            at(&doc("degraded", "fault")),
            Liveness::Fault {
                reader: Some("b".into())
            }
        );
        assert_eq!(
            at(&doc("ok", "melting")),
            Liveness::Fault {
                reader: Some("b".into())
            },
            "an unknown state is not green"
        );
        assert_eq!(at("not json"), Liveness::Fault { reader: None });
        assert_eq!(at(r#"{"readers":{}}"#), Liveness::Ok);
        assert_eq!(at(r#"{"readers":{},"faults":[]}"#), Liveness::Ok);
        let device_fault =
            r#"{"readers":{"a":{"state":"degraded"}},"faults":[{"kind":"outbox_full"}]}"#;
        assert_eq!(
            at(device_fault),
            Liveness::Fault {
                reader: Some("outbox_full".into())
            },
            "a device fault is worse than a degraded reader"
        );
        assert_eq!(
            liveness(Some(0), Some(&doc("ok", "ok")), 10_000, SUPERVISION),
            Liveness::Silent,
            "stale health does not count"
        );
    }
}
