//! Gate rules: the verdict on a passage, the alerts it raises, and tag-clone suspicion.
//!
//! # Exits ([`removal_check`])
//! A carrier may leave through a gate (direction `out`) only while it is `out` on a sign-out in
//! state `out` that has `may_leave`, before that sign-out's due time, and, when badges were
//! read in the passage, with the borrower's badge among them (a borrower without a badge is not
//! badge-checked). The rule itself is [`exit::check`] in `custos-protocol`, the same function a
//! gate deciding offline applies to the policy the server signed ([`GatePolicy::decide`]);
//! here each sign-out with `may_leave` of a carrier that is `out` is one permit
//! ([`ActiveSignout::permit`]), just as the policy lists it, so the server and the gate agree
//! (tested below); in particular a sign-out allows leaving while `now < due_at` (exclusive),
//! and no longer once the borrower's training or commitment has run out ([`permit_until_ms`]:
//! an expired person's badge authorises no exit; the refusal is then `signout_expired`).
//! The reason of a refusal: `unauthorized_removal` (no sign-out that lets it leave),
//! `signout_expired`, `borrower_absent`, `badge_missing`; each raises an `unauthorized_removal`
//! alert (critical) and the gate sounds and locks.
//!
//! # Badges ([`badge_required`])
//! For the carrier levels in the `[gate] badge_required` setting (default TS and S), "no badge
//! read" is not the benefit of the doubt: the borrower's badge must be read, or the exit is
//! refused with `badge_missing` (a borrower hiding or leaving behind their badge while someone
//! else carries the document out is exactly what this catches). It applies to every sign-out
//! whose borrower has a badge a gate can read. Why "a gate that has a badge reader" is decided
//! this way: staff badges are UHF tags read by the very antennas that read the carriers (a
//! gate has no separate badge reader; EM4100 cards are desk scanners), so every gate reads a
//! UHF badge; what the server knows is whose badge is gate-readable (`people.badge_tag` as an
//! EPC). A borrower without one cannot be checked at any gate, so requiring it would make
//! their sign-outs unusable rather than safer; a site that wants every TS/S exit
//! badge-checked issues gate-readable badges to everyone cleared for those levels. The flag is
//! computed here ([`badge_required`]) for both the server's verdict ([`ActiveSignout::permit`])
//! and each gate policy entry (`service::policy`), and [`exit::check`] applies it on both
//! sides.
//!
//! "Now" is the server's receive time: a passage uploaded late (from an offline backlog) is
//! judged against the sign-outs as they are when it arrives. Failing secure, a late upload can
//! only raise an alarm that a timely one would not have; the daemon's own local verdict (with
//! its signed policy) governed the moment itself.
//!
//! # Levels ([`clearance_violation`])
//! A carrier entering a zone (the inside zone for `in`, the outside zone for `out`) whose level
//! is classified but below the carrier's raises `clearance_violation` and sounds the gate
//! (without locking). A public zone is never a clearance violation (leaving to the public side
//! is what the exit rule judges), and a carrier that is allowed to leave on a current sign-out
//! is carried under that approval and is exempt.
//!
//! # Unknown tags
//! An EPC that is neither a carrier tag nor a person's badge raises `unknown_tag` (low) and
//! does not sound the gate: the server cannot tell a foreign tag (a transit card) from an
//! unregistered carrier, and the guard reviews it.
//!
//! # Clones ([`clone_suspected`])
//! The same tag seen at two different devices closer in time than anyone can walk between them
//! (`tag_clone_min_travel_secs`, default 30 s) raises `tag_clone_suspected`; device clocks are
//! assumed synchronised (NTP) to well within that. It does not change the verdict: the server
//! cannot tell which sighting is the copy.
//!
//! No alert detail ever holds a carrier title: control number and level identify the carrier.
//!
//! [`GatePolicy::decide`]: custos_protocol::uplink::GatePolicy::decide

use custos_protocol::epc::Epc;
use custos_protocol::uplink::exit::{self, Permit};
use custos_protocol::uplink::{AlarmReason, Direction};
use serde_json::json;

use super::alert::{AlertKind, NewAlert, cause};
use super::ingest::is_removal;
use super::level::{Level, ZoneLevel};
use super::time::Date;

/// A sign-out in state `out` that covers a carrier (not yet returned from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSignout {
    /// The sign-out.
    pub signout_id: i64,
    /// Whether the carrier may leave the secure area on it.
    pub may_leave: bool,
    /// Due time (Unix ms).
    pub due_at_ms: i64,
    /// The borrower.
    pub borrower_id: i64,
    /// The borrower's badge, if they have one a gate can read.
    pub borrower_badge: Option<Epc>,
    /// The last day the borrower's training and commitment hold
    /// ([`Certificates::valid_through`]); `None`: never certified.
    ///
    /// [`Certificates::valid_through`]: super::person::Certificates::valid_through
    pub borrower_valid_through: Option<Date>,
}

/// Until when a permit for a borrower certified through `borrower_valid_through` lets a carrier
/// leave (Unix ms, exclusive): its due time, or the end of the borrower's last certified day
/// (midnight UTC after it, as [`Timestamp::date`] counts days) if that comes first; a
/// borrower never certified has no time at all ([`i64::MIN`]). So an expired person's badge
/// authorises no exit, and the same bound is the `until_ms` of the gate policy's entry
/// (`service::policy`): a gate deciding offline on an older policy refuses from the same
/// instant, and the next policy drops the entry.
///
/// [`Timestamp::date`]: super::time::Timestamp::date
pub fn permit_until_ms(due_at_ms: i64, borrower_valid_through: Option<Date>) -> i64 {
    borrower_valid_through.map_or(i64::MIN, |last| {
        due_at_ms.min(last.plus_days(1).start_unix_ms())
    })
}

/// Whether a permit for a carrier of `level` requires its borrower's badge to be read at a
/// gate, given the levels that require one (`[gate] badge_required`) and whether the borrower
/// has a badge a gate can read (see the [module docs](self#badges-badge_required)).
pub fn badge_required(required_levels: &[Level], level: Level, borrower_has_badge: bool) -> bool {
    borrower_has_badge && required_levels.contains(&level)
}

impl ActiveSignout {
    /// This sign-out as a permit of the exit rule, for a carrier of `level`: until its due
    /// time or the end of the borrower's certification ([`permit_until_ms`]), for the
    /// borrower's badge (no badge check if they have none), required if
    /// [`badge_required`] says so. Whether it counts at all is [`CarrierAtGate`]'s business
    /// (see `permits`).
    pub fn permit(&self, required_levels: &[Level], level: Level) -> Permit<'_, i64> {
        Permit {
            id: self.signout_id,
            until_ms: permit_until_ms(self.due_at_ms, self.borrower_valid_through),
            borrower_badges: self.borrower_badge.as_slice(),
            badge_required: badge_required(required_levels, level, self.borrower_badge.is_some()),
        }
    }
}

/// A carrier whose tag was read at a gate, with what the rules need to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierAtGate {
    /// The carrier.
    pub carrier_id: i64,
    /// The tag read.
    pub epc: Epc,
    /// Its control number (shown to guards instead of the title).
    pub control_no: String,
    /// Its level.
    pub level: Level,
    /// Whether the carrier's state is `out`.
    pub out: bool,
    /// The sign-outs in state `out` that cover it.
    pub signouts: Vec<ActiveSignout>,
    /// For a carrier `dispatched` through the courier channel (机要传递): the end of its
    /// dispatch window (Unix ms). It may pass a gate until then, with no badge check (the
    /// courier carries it sealed); after it the exit alarms like any other.
    pub dispatch_until_ms: Option<i64>,
}

/// The permit id a dispatch window answers with (sign-out ids are positive).
pub const DISPATCH_PERMIT: i64 = 0;

/// A person whose badge was read in the passage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadgeHolder {
    /// The person.
    pub person_id: i64,
    /// Their name (for the guard).
    pub name: String,
    /// The highest level they are cleared for (their clearance, at most their category's);
    /// `None` for a person who has departed (cleared for nothing).
    pub clearance: Option<Level>,
}

/// The gate: its device id and the levels of its two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate<'a> {
    /// The device id.
    pub device_id: &'a str,
    /// The secure side.
    pub inside: ZoneLevel,
    /// The other side.
    pub outside: ZoneLevel,
    /// The carrier levels whose exits need the borrower's badge read (`[gate] badge_required`).
    pub badge_required: &'a [Level],
}

/// One passage, resolved against the register.
#[derive(Debug, Clone, Copy)]
pub struct Passage<'a> {
    /// The gate's reader name.
    pub reader: &'a str,
    /// The direction.
    pub direction: Direction,
    /// Carrier tags read (each carrier once).
    pub carriers: &'a [CarrierAtGate],
    /// EPCs that are neither a carrier's nor a person's.
    pub unknown: &'a [Epc],
    /// Every badge EPC read in the passage.
    pub badges: &'a [Epc],
    /// The people those badges belong to.
    pub holders: &'a [BadgeHolder],
    /// When the device saw it (Unix ms).
    pub at_ms: i64,
    /// When the server judges it (Unix ms).
    pub now_ms: i64,
}

/// The outcome of [`judge`].
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// Alerts to raise, in order.
    pub alerts: Vec<NewAlert>,
    /// The alarm of the verdict, if any: its reason and the index in `alerts` of its alert.
    pub alarm: Option<(AlarmReason, usize)>,
}

/// The permits of the exit rule `carrier` holds: its sign-outs with `may_leave`, and none at
/// all unless the carrier's state is `out` (a carrier not `out` never leaves, whatever rows
/// say). These are the sign-outs the gate policy lists for it (`store::policy`).
fn permits<'a>(
    carrier: &'a CarrierAtGate,
    required_levels: &'a [Level],
) -> impl Iterator<Item = Permit<'a, i64>> {
    let dispatch = carrier.dispatch_until_ms.map(|until_ms| Permit {
        id: DISPATCH_PERMIT,
        until_ms,
        borrower_badges: &[],
        badge_required: false,
    });
    carrier
        .signouts
        .iter()
        .filter(|s| carrier.out && s.may_leave)
        .map(|s| s.permit(required_levels, carrier.level))
        .chain(dispatch)
}

/// Whether `carrier` may leave now, given the levels that require a badge and the badges read:
/// `Ok(signout_id)` of the sign-out that allows it, or the alarm reason: [`exit::check`] over
/// the carrier's permits.
pub fn removal_check(
    carrier: &CarrierAtGate,
    required_levels: &[Level],
    badges: &[Epc],
    now_ms: i64,
) -> Result<i64, AlarmReason> {
    exit::check(permits(carrier, required_levels), badges, now_ms)
}

/// Whether a sign-out that lets `carrier` leave is still before its due time at `now_ms` but
/// no longer current because its borrower's certification ended ([`permit_until_ms`]).
fn borrower_expired(carrier: &CarrierAtGate, now_ms: i64) -> bool {
    carrier.out
        && carrier.signouts.iter().any(|s| {
            s.may_leave
                && now_ms < s.due_at_ms
                && permit_until_ms(s.due_at_ms, s.borrower_valid_through) <= now_ms
        })
}

/// Whether the carrier is carried under a current sign-out that lets it leave (badges aside).
fn carried_under_signout(carrier: &CarrierAtGate, now_ms: i64) -> bool {
    permits(carrier, &[]).any(|p| p.is_current(now_ms))
}

/// The zone a passage enters: the inside for `in`, the outside for `out`.
pub fn destination(gate: &Gate<'_>, direction: Direction) -> ZoneLevel {
    match direction {
        Direction::In => gate.inside,
        Direction::Out => gate.outside,
    }
}

/// Whether a carrier of `level` entering `zone` violates its level: the zone is classified and
/// below the carrier's level, and the carrier is not carried under a sign-out that lets it
/// leave.
pub fn clearance_violation(zone: ZoneLevel, level: Level, carried_under_signout: bool) -> bool {
    matches!(zone, ZoneLevel::Classified(_)) && !zone.admits(level) && !carried_under_signout
}

fn reason_name(reason: AlarmReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "other".to_owned())
}

/// Judge a passage: the alerts it raises and the verdict's alarm.
///
/// The verdict alarms for the first carrier (in the order read) that may not leave; failing
/// that, for the first clearance violation. Unknown tags raise `unknown_tag` only.
pub fn judge(gate: &Gate<'_>, p: &Passage<'_>) -> Judgement {
    let holder_names: Vec<&str> = p.holders.iter().map(|h| h.name.as_str()).collect();
    let first_holder = p.holders.first().map(|h| h.person_id);
    let mut alerts = Vec::new();
    let mut removal: Option<(AlarmReason, usize)> = None;
    let mut clearance: Option<(AlarmReason, usize)> = None;
    let dest = destination(gate, p.direction);
    for c in p.carriers {
        let base = |kind: AlertKind| {
            let mut a = NewAlert::new(
                kind,
                cause(
                    kind,
                    &[
                        ("carrier", &c.carrier_id.to_string()),
                        ("device", gate.device_id),
                    ],
                ),
                p.at_ms,
            );
            a.carrier_id = Some(c.carrier_id);
            a.device_id = Some(gate.device_id.to_owned());
            a
        };
        let detail = |extra: serde_json::Value| {
            let mut d = json!({
                "control_no": c.control_no,
                "level": c.level,
                "direction": p.direction.as_str(),
                "gate": gate.device_id,
                "reader": p.reader,
                "tag": c.epc.to_string(),
            });
            if !holder_names.is_empty() {
                d["badge_holders"] = json!(holder_names);
            }
            if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
                d.extend(extra.clone());
            }
            d
        };
        if p.direction == Direction::Out {
            if let Err(reason) = removal_check(c, gate.badge_required, p.badges, p.now_ms) {
                let mut a = base(AlertKind::UnauthorizedRemoval);
                a.person_id = first_holder.or_else(|| {
                    c.signouts
                        .iter()
                        .find(|s| s.may_leave)
                        .map(|s| s.borrower_id)
                });
                let mut extra = json!({ "reason": reason_name(reason) });
                if reason == AlarmReason::SignoutExpired && borrower_expired(c, p.now_ms) {
                    // Not the loan's time that ran out but the borrower's training or
                    // commitment: say so, or the officer looks for the wrong cause.
                    extra["borrower_certification_expired"] = json!(true);
                }
                a.detail = detail(extra);
                alerts.push(a);
                removal.get_or_insert((reason, alerts.len() - 1));
            }
        }
        if clearance_violation(dest, c.level, carried_under_signout(c, p.now_ms)) {
            let mut a = base(AlertKind::ClearanceViolation);
            a.person_id = first_holder;
            a.detail = detail(json!({ "zone_level": dest.code() }));
            alerts.push(a);
            clearance.get_or_insert((AlarmReason::ClearanceViolation, alerts.len() - 1));
        }
    }
    for (a, _) in person_violations(gate, p) {
        alerts.push(a);
        clearance.get_or_insert((AlarmReason::ClearanceViolation, alerts.len() - 1));
    }
    for epc in p.unknown {
        let hex = epc.to_string();
        let mut a = NewAlert::new(
            AlertKind::UnknownTag,
            cause(AlertKind::UnknownTag, &[("tag", &hex)]),
            p.at_ms,
        );
        a.device_id = Some(gate.device_id.to_owned());
        a.detail = json!({
            "tag": hex,
            "gate": gate.device_id,
            "reader": p.reader,
            "direction": p.direction.as_str(),
        });
        alerts.push(a);
    }
    debug_assert!(removal.is_none_or(|(r, _)| is_removal(r)));
    Judgement {
        alerts,
        alarm: removal.or(clearance),
    }
}

/// People whose badge was read entering a classified zone above their clearance (#12): one
/// `clearance_violation` each, naming the person (never a carrier).
fn person_violations(gate: &Gate<'_>, p: &Passage<'_>) -> Vec<(NewAlert, i64)> {
    let ZoneLevel::Classified(zone) = destination(gate, p.direction) else {
        return Vec::new();
    };
    if p.direction != Direction::In {
        return Vec::new();
    }
    p.holders
        .iter()
        .filter(|h| h.clearance.is_none_or(|c| c < zone))
        .map(|h| {
            let kind = AlertKind::ClearanceViolation;
            let id = h.person_id.to_string();
            let mut a = NewAlert::new(
                kind,
                cause(kind, &[("person", &id), ("device", gate.device_id)]),
                p.at_ms,
            );
            a.person_id = Some(h.person_id);
            a.device_id = Some(gate.device_id.to_owned());
            a.detail = json!({
                "badge_holders": [h.name],
                "person_clearance": h.clearance,
                "zone_level": zone.code(),
                "direction": p.direction.as_str(),
                "gate": gate.device_id,
                "reader": p.reader,
            });
            (a, h.person_id)
        })
        .collect()
}

/// Whether a tag last seen at `previous` (device, Unix ms) and now seen at `device` at `at_ms`
/// suggests a clone: a different device, closer in time than `min_travel_ms` (in either
/// order: uploads from different devices may arrive out of order). `min_travel_ms <= 0`
/// disables the check.
pub fn clone_suspected(
    previous: Option<(&str, i64)>,
    device: &str,
    at_ms: i64,
    min_travel_ms: i64,
) -> bool {
    match previous {
        Some((prev_device, prev_at)) => {
            prev_device != device
                && min_travel_ms > 0
                && prev_at.abs_diff(at_ms) < min_travel_ms.unsigned_abs()
        }
        None => false,
    }
}

/// The detail of an unauthorised-removal alert once its carrier turned back at the gate
/// (`None` when it already says so, or is not an object): the attempt stays on record, and
/// the guard's banner can say the carrier did not leave. `at` is the turn's RFC 3339 time.
pub fn turned_back_detail(detail: &serde_json::Value, at: &str) -> Option<serde_json::Value> {
    let object = detail.as_object()?;
    if object
        .get("turned_back")
        .and_then(serde_json::Value::as_bool)
        == Some(true)
    {
        return None;
    }
    let mut marked = object.clone();
    marked.insert("turned_back".to_owned(), json!(true));
    marked.insert("turned_back_at".to_owned(), json!(at));
    Some(serde_json::Value::Object(marked))
}

/// The `tag_clone_suspected` alert (one live alert per tag).
pub fn clone_alert(
    epc: &Epc,
    carrier_id: Option<i64>,
    previous: (&str, i64),
    device: &str,
    at_ms: i64,
) -> NewAlert {
    let hex = epc.to_string();
    let mut a = NewAlert::new(
        AlertKind::TagCloneSuspected,
        cause(AlertKind::TagCloneSuspected, &[("tag", &hex)]),
        at_ms,
    );
    a.carrier_id = carrier_id;
    a.device_id = Some(device.to_owned());
    a.detail = json!({
        "tag": hex,
        "previous_device": previous.0,
        "previous_at_ms": previous.1,
        "device": device,
        "at_ms": at_ms,
        "interval_ms": previous.1.abs_diff(at_ms),
    });
    a
}

#[cfg(test)]
mod tests {
    use custos_protocol::uplink::{AllowedCarrier, GatePolicy};

    use super::*;
    use crate::domain::alert::Severity;

    const NOW: i64 = 1_767_225_600_000;
    const HOUR: i64 = 3_600_000;

    fn epc(n: u8) -> Epc {
        Epc::new(&[0x34, 0x74, 0x25, 0x7B, 0xF4, 0, 0, 0, 0, 0, 0x16, n]).unwrap()
    }
    fn alice() -> Epc {
        Epc::new(&[0xE2, 0, 0x0A, 0x11]).unwrap()
    }
    fn bob() -> Epc {
        Epc::new(&[0xE2, 0, 0x0B, 0x0B]).unwrap()
    }

    fn signout(id: i64, may_leave: bool, due: i64, badge: Option<Epc>) -> ActiveSignout {
        ActiveSignout {
            signout_id: id,
            may_leave,
            due_at_ms: due,
            borrower_id: 100 + id,
            borrower_badge: badge,
            borrower_valid_through: Date::from_ymd(2099, 12, 31),
        }
    }

    fn carrier(id: i64, level: Level, out: bool, signouts: Vec<ActiveSignout>) -> CarrierAtGate {
        CarrierAtGate {
            carrier_id: id,
            epc: epc(id as u8),
            control_no: format!("CUS-{id}"),
            level,
            out,
            signouts,
            dispatch_until_ms: None,
        }
    }

    #[test]
    fn a_dispatched_carrier_passes_within_its_window_and_alarms_after() {
        let dispatched = CarrierAtGate {
            dispatch_until_ms: Some(NOW + HOUR),
            ..carrier(1, Level::TopSecret, false, vec![])
        };
        assert_eq!(
            removal_check(&dispatched, &[Level::TopSecret], &[], NOW),
            Ok(DISPATCH_PERMIT)
        );
        assert_eq!(
            removal_check(&dispatched, &[Level::TopSecret], &[], NOW + HOUR),
            Err(AlarmReason::SignoutExpired)
        );
        let in_storage = carrier(1, Level::TopSecret, false, vec![]);
        assert_eq!(
            removal_check(&in_storage, &[], &[], NOW),
            Err(AlarmReason::UnauthorizedRemoval)
        );
    }

    const S: ZoneLevel = ZoneLevel::Classified(Level::Secret);
    const TS: ZoneLevel = ZoneLevel::Classified(Level::TopSecret);

    fn gate(inside: ZoneLevel, outside: ZoneLevel) -> Gate<'static> {
        Gate {
            device_id: "gate-1",
            inside,
            outside,
            badge_required: &[],
        }
    }

    fn passage<'a>(
        direction: Direction,
        carriers: &'a [CarrierAtGate],
        badges: &'a [Epc],
        holders: &'a [BadgeHolder],
        unknown: &'a [Epc],
    ) -> Passage<'a> {
        Passage {
            reader: "uhf-main",
            direction,
            carriers,
            unknown,
            badges,
            holders,
            at_ms: NOW - 500,
            now_ms: NOW,
        }
    }

    #[test]
    fn a_carrier_without_a_signout_may_not_leave() {
        let c = [carrier(1, Level::Secret, false, vec![])];
        let holders = [BadgeHolder {
            person_id: 7,
            name: "Li Wei".into(),
            clearance: Some(Level::TopSecret),
        }];
        let j = judge(
            &gate(S, ZoneLevel::Public),
            &passage(Direction::Out, &c, &[bob()], &holders, &[]),
        );
        assert_eq!(j.alarm, Some((AlarmReason::UnauthorizedRemoval, 0)));
        assert_eq!(j.alerts.len(), 1);
        let a = &j.alerts[0];
        assert_eq!(a.kind, AlertKind::UnauthorizedRemoval);
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.cause, "unauthorized_removal:carrier:1:device:gate-1");
        assert_eq!((a.carrier_id, a.person_id), (Some(1), Some(7)));
        assert_eq!(a.detail["control_no"], "CUS-1");
        assert_eq!(a.detail["level"], "S");
        assert_eq!(a.detail["direction"], "out");
        assert_eq!(a.detail["gate"], "gate-1");
        assert_eq!(a.detail["badge_holders"], json!(["Li Wei"]));
        assert_eq!(a.detail["reason"], "unauthorized_removal");
        assert_eq!(a.at_ms, NOW - 500);
    }

    #[test]
    fn a_person_entering_above_their_clearance_is_a_violation() {
        let holder = |id, clearance| BadgeHolder {
            person_id: id,
            name: format!("P{id}"),
            clearance,
        };
        let holders = [
            holder(1, Some(Level::TopSecret)),
            holder(2, Some(Level::Secret)),
            holder(3, None),
        ];
        let g = gate(TS, ZoneLevel::Public);
        let j = judge(&g, &passage(Direction::In, &[], &[bob()], &holders, &[]));
        let people: Vec<_> = j.alerts.iter().map(|a| a.person_id).collect();
        assert_eq!(
            people,
            [Some(2), Some(3)],
            "cleared for less than TS, or departed"
        );
        let a = &j.alerts[0];
        assert_eq!(a.kind, AlertKind::ClearanceViolation);
        assert_eq!(a.cause, "clearance_violation:person:2:device:gate-1");
        assert_eq!(a.detail["zone_level"], "TS");
        assert_eq!(a.carrier_id, None);
        assert_eq!(j.alarm, Some((AlarmReason::ClearanceViolation, 0)));
        // Leaving, or entering a zone they are cleared for: nothing.
        let j = judge(&g, &passage(Direction::Out, &[], &[bob()], &holders, &[]));
        assert!(j.alerts.is_empty());
        let s_zone = gate(S, ZoneLevel::Public);
        let j = judge(
            &s_zone,
            &passage(Direction::In, &[], &[bob()], &holders[..2], &[]),
        );
        assert!(j.alerts.is_empty());
    }

    #[test]
    fn an_authorised_exit_is_allowed() {
        let c = [carrier(
            1,
            Level::Secret,
            true,
            vec![signout(5, true, NOW + HOUR, Some(alice()))],
        )];
        let g = gate(S, ZoneLevel::Public);
        // The borrower's badge among others.
        let j = judge(
            &g,
            &passage(Direction::Out, &c, &[bob(), alice()], &[], &[]),
        );
        assert_eq!(
            j,
            Judgement {
                alerts: vec![],
                alarm: None
            }
        );
        // No badge read at all: no badge check.
        assert_eq!(removal_check(&c[0], &[], &[], NOW), Ok(5));
    }

    #[test]
    fn a_required_badge_must_be_read_for_ts_and_s() {
        let levels = [Level::TopSecret, Level::Secret];
        let g = Gate {
            badge_required: &levels,
            ..gate(TS, ZoneLevel::Public)
        };
        let alices = [alice()];
        let holders = [BadgeHolder {
            person_id: 100,
            name: "Alice".into(),
            clearance: Some(Level::TopSecret),
        }];
        for level in [Level::TopSecret, Level::Secret] {
            let c = [carrier(
                1,
                level,
                true,
                vec![signout(5, true, NOW + HOUR, Some(alice()))],
            )];
            // Signed out to Alice, no badge read at all: refused, alarm and alert.
            let j = judge(&g, &passage(Direction::Out, &c, &[], &[], &[]));
            assert_eq!(j.alarm, Some((AlarmReason::BadgeMissing, 0)), "{level}");
            assert_eq!(j.alerts[0].kind, AlertKind::UnauthorizedRemoval);
            assert_eq!(j.alerts[0].detail["reason"], "badge_missing");
            assert!(is_removal(AlarmReason::BadgeMissing));
            // Her badge read: allowed.
            let j = judge(&g, &passage(Direction::Out, &c, &alices, &holders, &[]));
            assert_eq!(j.alarm, None, "{level}");
        }
        // A C carrier is not in the setting: no badge read still leaves.
        let c = [carrier(
            1,
            Level::Confidential,
            true,
            vec![signout(5, true, NOW + HOUR, Some(alice()))],
        )];
        assert_eq!(
            judge(&g, &passage(Direction::Out, &c, &[], &[], &[])).alarm,
            None
        );
        // A borrower without a gate-readable badge cannot be badge-checked.
        let c = carrier(
            1,
            Level::TopSecret,
            true,
            vec![signout(5, true, NOW + HOUR, None)],
        );
        assert_eq!(removal_check(&c, &levels, &[], NOW), Ok(5));
        assert!(badge_required(&levels, Level::TopSecret, true));
        assert!(!badge_required(&levels, Level::TopSecret, false));
        assert!(!badge_required(&levels, Level::Confidential, true));
        assert!(!badge_required(&[], Level::TopSecret, true));
    }

    #[test]
    fn refusals_name_the_nearest_miss() {
        let c = carrier(
            1,
            Level::Secret,
            true,
            vec![signout(5, true, NOW + HOUR, Some(alice()))],
        );
        assert_eq!(
            removal_check(&c, &[], &[bob()], NOW),
            Err(AlarmReason::BorrowerAbsent)
        );
        // Due time is exclusive, as in the gate policy.
        let due_now = carrier(1, Level::Secret, true, vec![signout(5, true, NOW, None)]);
        assert_eq!(removal_check(&due_now, &[], &[], NOW - 1), Ok(5));
        assert_eq!(
            removal_check(&due_now, &[], &[], NOW),
            Err(AlarmReason::SignoutExpired)
        );
        // A sign-out without may_leave does not let it leave.
        let inside_only = carrier(
            1,
            Level::Secret,
            true,
            vec![signout(5, false, NOW + HOUR, None)],
        );
        assert_eq!(
            removal_check(&inside_only, &[], &[], NOW),
            Err(AlarmReason::UnauthorizedRemoval)
        );
        // A carrier whose state is not `out` never leaves, whatever rows say.
        let stale = carrier(
            1,
            Level::Secret,
            false,
            vec![signout(5, true, NOW + HOUR, None)],
        );
        assert_eq!(
            removal_check(&stale, &[], &[], NOW),
            Err(AlarmReason::UnauthorizedRemoval)
        );
        // A borrower without a readable badge is not badge-checked.
        let no_badge = carrier(
            1,
            Level::Secret,
            true,
            vec![signout(5, true, NOW + HOUR, None)],
        );
        assert_eq!(removal_check(&no_badge, &[], &[bob()], NOW), Ok(5));
    }

    #[test]
    fn wrong_badge_alarms_and_locks() {
        let c = [carrier(
            1,
            Level::Secret,
            true,
            vec![signout(5, true, NOW + HOUR, Some(alice()))],
        )];
        let j = judge(
            &gate(S, ZoneLevel::Public),
            &passage(Direction::Out, &c, &[bob()], &[], &[]),
        );
        assert_eq!(j.alarm, Some((AlarmReason::BorrowerAbsent, 0)));
        assert!(is_removal(AlarmReason::BorrowerAbsent));
        // Without a badge holder, the borrower is the person concerned.
        assert_eq!(j.alerts[0].person_id, Some(105));
        assert_eq!(j.alerts[0].detail["reason"], "borrower_absent");
        assert!(j.alerts[0].detail.get("badge_holders").is_none());
    }

    #[test]
    fn entering_a_lower_classified_zone_is_a_clearance_violation() {
        let ts = [carrier(2, Level::TopSecret, false, vec![])];
        // In: from the public side into an S zone.
        let j = judge(
            &gate(S, ZoneLevel::Public),
            &passage(Direction::In, &ts, &[], &[], &[]),
        );
        assert_eq!(j.alarm, Some((AlarmReason::ClearanceViolation, 0)));
        assert_eq!(
            j.alerts[0].cause,
            "clearance_violation:carrier:2:device:gate-1"
        );
        assert_eq!(j.alerts[0].detail["zone_level"], "S");
        // Out: from a TS vault into an S corridor: both a removal and a violation; the removal
        // is the verdict.
        let j = judge(&gate(TS, S), &passage(Direction::Out, &ts, &[], &[], &[]));
        assert_eq!(j.alerts.len(), 2);
        assert_eq!(j.alarm, Some((AlarmReason::UnauthorizedRemoval, 0)));
        assert_eq!(j.alerts[1].kind, AlertKind::ClearanceViolation);
        // Carried out on a current sign-out: neither.
        let signed = [carrier(
            2,
            Level::TopSecret,
            true,
            vec![signout(5, true, NOW + HOUR, None)],
        )];
        let j = judge(
            &gate(TS, S),
            &passage(Direction::Out, &signed, &[], &[], &[]),
        );
        assert_eq!(j.alarm, None);
        assert!(j.alerts.is_empty());
        // Public is never a clearance violation; an admitting zone neither.
        assert!(!clearance_violation(
            ZoneLevel::Public,
            Level::TopSecret,
            false
        ));
        assert!(!clearance_violation(S, Level::Secret, false));
        assert!(!clearance_violation(S, Level::Confidential, false));
        assert!(clearance_violation(S, Level::TopSecret, false));
        assert!(!clearance_violation(S, Level::TopSecret, true));
    }

    #[test]
    fn an_s_carrier_coming_in_is_fine() {
        let c = [carrier(1, Level::Secret, false, vec![])];
        let j = judge(
            &gate(S, ZoneLevel::Public),
            &passage(Direction::In, &c, &[], &[], &[]),
        );
        assert_eq!(j.alarm, None);
        assert!(j.alerts.is_empty());
    }

    #[test]
    fn unknown_tags_alert_low_without_alarm() {
        let unknown = [epc(0xEE)];
        let j = judge(
            &gate(S, ZoneLevel::Public),
            &passage(Direction::Out, &[], &[], &[], &unknown),
        );
        assert_eq!(j.alarm, None);
        assert_eq!(j.alerts.len(), 1);
        assert_eq!(j.alerts[0].kind, AlertKind::UnknownTag);
        assert_eq!(j.alerts[0].severity, Severity::Low);
        assert_eq!(
            j.alerts[0].cause,
            "unknown_tag:tag:3474257BF4000000000016EE"
        );
    }

    #[test]
    fn the_first_refused_carrier_is_the_verdict() {
        let cs = [
            carrier(
                1,
                Level::Secret,
                true,
                vec![signout(5, true, NOW + HOUR, None)],
            ),
            carrier(
                2,
                Level::Secret,
                true,
                vec![signout(6, true, NOW - 1, None)],
            ),
            carrier(3, Level::Secret, false, vec![]),
        ];
        let j = judge(
            &gate(S, ZoneLevel::Public),
            &passage(Direction::Out, &cs, &[], &[], &[]),
        );
        assert_eq!(j.alerts.len(), 2);
        assert_eq!(j.alarm, Some((AlarmReason::SignoutExpired, 0)));
        assert_eq!(j.alerts[0].carrier_id, Some(2));
        assert_eq!(j.alerts[1].carrier_id, Some(3));
    }

    #[test]
    fn detail_never_holds_a_title() {
        // The type has no title to leak; the detail keys are fixed.
        let c = [carrier(1, Level::Confidential, false, vec![])];
        let j = judge(
            &gate(S, ZoneLevel::Public),
            &passage(Direction::Out, &c, &[], &[], &[]),
        );
        let keys: Vec<&String> = j.alerts[0].detail.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "control_no",
                "direction",
                "gate",
                "level",
                "reader",
                "reason",
                "tag"
            ]
        );
    }

    #[test]
    fn clones_need_two_devices_close_in_time() {
        let min = 30_000;
        assert!(!clone_suspected(None, "gate-1", NOW, min));
        assert!(!clone_suspected(
            Some(("gate-1", NOW - 1)),
            "gate-1",
            NOW,
            min
        ));
        assert!(clone_suspected(
            Some(("cab-1", NOW - 29_999)),
            "gate-1",
            NOW,
            min
        ));
        assert!(!clone_suspected(
            Some(("cab-1", NOW - 30_000)),
            "gate-1",
            NOW,
            min
        ));
        // Out of order: the earlier sighting arrives second.
        assert!(clone_suspected(
            Some(("cab-1", NOW + 5_000)),
            "gate-1",
            NOW,
            min
        ));
        // Disabled.
        assert!(!clone_suspected(Some(("cab-1", NOW)), "gate-1", NOW, 0));
        let a = clone_alert(&epc(1), Some(1), ("cab-1", NOW - 5_000), "gate-1", NOW);
        assert_eq!(a.cause, "tag_clone_suspected:tag:3474257BF400000000001601");
        assert_eq!(a.detail["interval_ms"], 5_000);
        assert_eq!(a.severity, Severity::High);
    }

    /// Both sides call the one exit rule ([`exit::check`]); what could still differ is how each
    /// maps its records to permits. This checks that the server's mapping of sign-outs
    /// ([`permits`]) and the policy's mapping of its entries (`AllowedCarrier::permit`) agree
    /// for every carrier that is `out`: same "may leave", same reason. Exhaustive over up to two
    /// sign-outs, each with or without `may_leave`, due before, at or after now, with no badge
    /// or one of two; every set of those two badges read. The policy holds exactly the
    /// `may_leave` sign-outs with their due time and borrower badge, as `store::policy` issues
    /// it, and `badge_required` as `service::policy` sets it; with and without the carrier's
    /// level requiring a badge.
    #[test]
    fn server_rule_agrees_with_the_gate_policy() {
        let tag = Epc::new(&[0x99]).unwrap();
        let mut options = Vec::new();
        for may_leave in [false, true] {
            for due in [NOW - 1, NOW, NOW + 1] {
                for badge in [None, Some(alice()), Some(bob())] {
                    options.push((may_leave, due, badge));
                }
            }
        }
        let mut cases: Vec<Vec<(bool, i64, Option<Epc>)>> = vec![vec![]];
        for a in &options {
            cases.push(vec![*a]);
            for b in &options {
                cases.push(vec![*a, *b]);
            }
        }
        let badge_sets = [vec![], vec![alice()], vec![bob()], vec![alice(), bob()]];
        let mut checked = 0;
        for required in [&[][..], &[Level::Secret][..]] {
            for rows in &cases {
                let signouts: Vec<ActiveSignout> = rows
                    .iter()
                    .enumerate()
                    .map(|(i, (may_leave, due, badge))| signout(i as i64, *may_leave, *due, *badge))
                    .collect();
                let c = CarrierAtGate {
                    epc: tag,
                    ..carrier(1, Level::Secret, true, signouts.clone())
                };
                let policy = GatePolicy {
                    device_id: "gate-1".into(),
                    version: 1,
                    issued_at_ms: NOW - HOUR,
                    valid_until_ms: NOW + HOUR,
                    allowed: signouts
                        .iter()
                        .filter(|s| s.may_leave)
                        .map(|s| AllowedCarrier {
                            epc: tag,
                            until_ms: permit_until_ms(s.due_at_ms, s.borrower_valid_through),
                            borrower_badges: s.borrower_badge.into_iter().collect(),
                            badge_required: badge_required(
                                required,
                                Level::Secret,
                                s.borrower_badge.is_some(),
                            ),
                        })
                        .collect(),
                    badges: vec![],
                };
                for badges in &badge_sets {
                    let server = removal_check(&c, required, badges, NOW).err();
                    let offline = policy.decide(&[tag], badges, NOW).carriers[0].alarm;
                    assert_eq!(server, offline, "{required:?} {rows:?} {badges:?}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, (1 + 18 + 18 * 18) * 4 * 2);
    }

    /// A borrower's badge authorises exits only through the last day their training and
    /// commitment hold: from midnight (UTC) after it the sign-out no longer lets the carrier
    /// leave, on the server and in the policy entry alike, even if it is due later; a borrower
    /// never certified authorises nothing.
    #[test]
    fn an_expired_borrowers_badge_authorises_no_exit() {
        // NOW is 2026-01-01T00:00:00Z.
        let last_day = Date::from_ymd(2026, 1, 1);
        let midnight = NOW + 24 * HOUR;
        assert_eq!(permit_until_ms(NOW + 48 * HOUR, last_day), midnight);
        assert_eq!(
            permit_until_ms(NOW + HOUR, last_day),
            NOW + HOUR,
            "due first"
        );
        assert_eq!(permit_until_ms(NOW + HOUR, None), i64::MIN);
        let alices = [alice()];
        let mut s = signout(1, true, NOW + 48 * HOUR, Some(alice()));
        s.borrower_valid_through = last_day;
        let c = carrier(1, Level::Secret, true, vec![s.clone()]);
        let policy = |s: &ActiveSignout| GatePolicy {
            device_id: "gate-1".into(),
            version: 1,
            issued_at_ms: NOW - HOUR,
            valid_until_ms: NOW + 72 * HOUR,
            allowed: vec![AllowedCarrier {
                epc: c.epc,
                until_ms: permit_until_ms(s.due_at_ms, s.borrower_valid_through),
                borrower_badges: alices.to_vec(),
                badge_required: true,
            }],
            badges: vec![],
        };
        let required = [Level::Secret];
        for (at, expected) in [
            (midnight - 1, None),
            (midnight, Some(AlarmReason::SignoutExpired)),
        ] {
            assert_eq!(removal_check(&c, &required, &alices, at).err(), expected);
            let offline = policy(&s).decide(&[c.epc], &alices, at).carriers[0].alarm;
            assert_eq!(offline, expected, "the gate agrees at {at}");
        }
        // The alert says why: the borrower, not the loan's time.
        let g = gate(ZoneLevel::Classified(Level::TopSecret), ZoneLevel::Public);
        let j = judge(
            &g,
            &Passage {
                now_ms: midnight,
                at_ms: midnight,
                ..passage(Direction::Out, std::slice::from_ref(&c), &alices, &[], &[])
            },
        );
        assert_eq!(j.alerts[0].detail["reason"], "signout_expired");
        assert_eq!(j.alerts[0].detail["borrower_certification_expired"], true);
        let due = carrier(1, Level::Secret, true, vec![signout(2, true, NOW, None)]);
        let j = judge(
            &g,
            &Passage {
                now_ms: NOW,
                ..passage(Direction::Out, std::slice::from_ref(&due), &[], &[], &[])
            },
        );
        assert!(
            j.alerts[0]
                .detail
                .get("borrower_certification_expired")
                .is_none(),
            "a loan past due is just that"
        );
        // Training never recorded: no exit at all.
        s.borrower_valid_through = None;
        let c = carrier(1, Level::Secret, true, vec![s.clone()]);
        assert_eq!(
            removal_check(&c, &required, &alices, NOW).err(),
            Some(AlarmReason::SignoutExpired)
        );
        assert_eq!(
            policy(&s).decide(&[c.epc], &alices, NOW).carriers[0].alarm,
            Some(AlarmReason::SignoutExpired)
        );
    }

    #[test]
    fn a_turned_back_removal_keeps_its_facts_and_says_so_once() {
        let detail = json!({"gate": "gate-1", "direction": "out"});
        let marked = turned_back_detail(&detail, "2026-03-01T08:00:05Z").unwrap();
        assert_eq!(marked["gate"], "gate-1");
        assert_eq!(marked["turned_back"], true);
        assert_eq!(marked["turned_back_at"], "2026-03-01T08:00:05Z");
        assert_eq!(turned_back_detail(&marked, "2026-03-01T08:00:09Z"), None);
        assert_eq!(turned_back_detail(&json!(null), "x"), None);
    }
}
