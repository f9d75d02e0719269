//! Reader devices: registering one with its Ed25519 public key (administrators) and the list
//! (administrators, security officers); revoking one and rotating its key (administrators).
//!
//! # Lifecycle
//! A revoked device (a stolen cabinet controller, a gate taken out of service) is refused at
//! every device endpoint (`device_auth_failed`, with a `device_auth_failed` alert naming it),
//! and lists show it revoked. Revocation is final: the record stays for the history of what
//! the device reported, and replacement hardware is registered under a new id. A key rotation
//! replaces the key at once: from the next request on only the new key verifies. Daemons sign
//! each batch when they send it, so a daemon restarted with its new key delivers its whole
//! outbox backlog under it. Both are audited (`device.revoke`, `device.key_rotate`).
//!
//! The key's encoding and the placement (which zones a kind of device takes) are checked here
//! once; the API and the administrator's form call the same checks.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::{Problem, ServiceError};
use crate::AppState;
use crate::audit::NewEntry;
use crate::auth::capability::{AdminCap, DeviceReaderCap};
use crate::domain::device::{DeviceKind, Placement};
use crate::domain::ids::{DeviceId, ZoneId};
use crate::domain::page::{Page, Sort, SortKey, SortValue, paginate, search_words, words_match};
use crate::domain::time::Timestamp;
use crate::keys;
use crate::service::lists::{ListParams, WORDS_MAX};
use crate::store::devices::{Device, DeviceRow, NewDevice};
use crate::store::{StoreError, Tx};

/// A device registration as submitted.
#[derive(Debug, Clone)]
pub struct DeviceRegistration {
    /// The id the daemon uses.
    pub id: DeviceId,
    /// What the device is.
    pub kind: DeviceKind,
    /// Ed25519 public key as text: standard base64 of 32 bytes.
    pub public_key: String,
    /// A gate's secure side.
    pub inside_zone: Option<ZoneId>,
    /// A gate's other side.
    pub outside_zone: Option<ZoneId>,
    /// The zone of a cabinet or desk.
    pub zone: Option<ZoneId>,
}

/// Decode a public key: standard base64 of exactly 32 bytes, the canonical encoding of an
/// Ed25519 point that is not of small order ([`keys::check_point`]): with a small-order key
/// (`01 00..00`, all zeros) anyone could sign as the device.
pub fn public_key(text: &str) -> Result<[u8; 32], ServiceError> {
    let key = STANDARD
        .decode(text)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| {
            ServiceError::Invalid(vec![Problem {
                field: "public_key",
                code: "invalid",
                message: "public_key must be standard base64 of 32 bytes",
            }])
        })?;
    keys::check_point(&key).map_err(|_| {
        ServiceError::Invalid(vec![Problem {
            field: "public_key",
            code: "weak_key",
            message: "public_key must be a canonical Ed25519 point of large order (small-order and non-canonical keys let anyone sign)",
        }])
    })?;
    Ok(key)
}

/// The placement of a `kind` of device in the zones given ([`ServiceError::Placement`] if they
/// do not fit the kind).
pub fn placement(
    kind: DeviceKind,
    inside_zone: Option<ZoneId>,
    outside_zone: Option<ZoneId>,
    zone: Option<ZoneId>,
) -> Result<Placement, ServiceError> {
    Ok(Placement::new(kind, inside_zone, outside_zone, zone)?)
}

/// Check a registration: the key, then the placement.
pub fn check_registration(input: DeviceRegistration) -> Result<NewDevice, ServiceError> {
    let public_key = public_key(&input.public_key)?;
    let placement = placement(
        input.kind,
        input.inside_zone,
        input.outside_zone,
        input.zone,
    )?;
    Ok(NewDevice {
        id: input.id,
        placement,
        public_key,
    })
}

/// Register a device, with the audit entry. A taken id or key is
/// [`ServiceError::Duplicate`], an unknown zone [`ServiceError::UnknownReference`].
pub async fn register(
    app: &AppState,
    cap: &AdminCap,
    input: DeviceRegistration,
) -> Result<DeviceId, ServiceError> {
    let device = check_registration(input)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| register_in(tx, &actor, &device, at))
        .await
}

fn register_in(
    tx: &mut dyn Tx,
    actor: &str,
    device: &NewDevice,
    at: Timestamp,
) -> Result<DeviceId, ServiceError> {
    tx.insert_device(device, at)?;
    let (inside, outside, zone) = device.placement.columns();
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "device.create",
        subject: format!("device:{}", device.id),
        before: None,
        after: Some(json!({
            "id": device.id,
            "kind": device.placement.kind(),
            "public_key": STANDARD.encode(device.public_key),
            "inside_zone": inside,
            "outside_zone": outside,
            "zone": zone,
        })),
    })?;
    Ok(device.id.clone())
}

/// Revoke device `id` (see "Lifecycle"); the device as it is now. Revoking a revoked device
/// changes nothing and writes no audit entry.
pub async fn revoke(app: &AppState, cap: &AdminCap, id: DeviceId) -> Result<Device, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| revoke_in(tx, &actor, &id, at))
        .await
}

fn revoke_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: &DeviceId,
    at: Timestamp,
) -> Result<Device, ServiceError> {
    let before = tx.device(id)?;
    if before.revoked_at.is_some() {
        return Ok(before);
    }
    tx.revoke_device(id, at.unix().saturating_mul(1000))?;
    let after = tx.device(id)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "device.revoke",
        subject: format!("device:{id}"),
        before: Some(json!({ "revoked_at": null })),
        after: Some(json!({ "revoked_at": after.revoked_at })),
    })?;
    Ok(after)
}

/// Replace the public key of device `id` with `public_key` (checked like a registration's);
/// the device as it is now. See "Lifecycle".
pub async fn rotate_key(
    app: &AppState,
    cap: &AdminCap,
    id: DeviceId,
    public_key: &str,
) -> Result<Device, ServiceError> {
    let key = self::public_key(public_key)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| rotate_key_in(tx, &actor, &id, &key, at))
        .await
}

fn rotate_key_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: &DeviceId,
    key: &[u8; 32],
    at: Timestamp,
) -> Result<Device, ServiceError> {
    let before = tx.device(id)?;
    tx.set_device_key(id, key, at.unix().saturating_mul(1000))?;
    let after = tx.device(id)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "device.key_rotate",
        subject: format!("device:{id}"),
        before: Some(json!({ "public_key": before.public_key })),
        after: Some(json!({ "public_key": after.public_key })),
    })?;
    Ok(after)
}

/// Every device with its last heartbeat, by id (the administrator's page).
pub async fn list_with_heartbeat(
    app: &AppState,
    _cap: &AdminCap,
) -> Result<Vec<DeviceRow>, ServiceError> {
    app.store()
        .query(|tx| Ok(tx.devices_with_heartbeat()?))
        .await
}

/// Every device, by id.
pub async fn list(app: &AppState, _cap: &DeviceReaderCap) -> Result<Vec<Device>, ServiceError> {
    app.store().query(|tx| Ok(tx.devices()?)).await
}

/// The keys the device list may be sorted by (`id` is the text id the administrator chose).
pub const DEVICE_SORT_KEYS: &[SortKey] = &[SortKey::text("id"), SortKey::text("kind")];

/// One page of the devices matching every word of `params.q` in their id, kind, zones' ids or
/// zones' names, in
/// `params.sort` order ([`DEVICE_SORT_KEYS`], by id when absent). A site has tens of devices,
/// so the list is paged in memory. Device ids are text: each sort value ends with the id
/// (after a NUL, which no id contains) so that it is unique and the numeric tie-breaker is
/// not needed.
pub async fn page(
    app: &AppState,
    _cap: &DeviceReaderCap,
    params: &ListParams,
) -> Result<Page<Device>, ServiceError> {
    let (devices, zones) = app
        .store()
        .query(|tx| Ok::<_, ServiceError>((tx.devices()?, zone_names(tx)?)))
        .await?;
    page_of(devices, &zones, params, |d| DeviceFacts {
        id: &d.id,
        kind: d.kind,
        zones: [&d.inside_zone, &d.outside_zone, &d.zone],
    })
}

/// [`page`] for the administrator's page, each device with its last heartbeat: the same
/// parameters, checks, search and sort.
pub async fn page_with_heartbeat(
    app: &AppState,
    _cap: &AdminCap,
    params: &ListParams,
) -> Result<Page<DeviceRow>, ServiceError> {
    let (devices, zones) = app
        .store()
        .query(|tx| Ok::<_, ServiceError>((tx.devices_with_heartbeat()?, zone_names(tx)?)))
        .await?;
    page_of(devices, &zones, params, |d| DeviceFacts {
        id: &d.id,
        kind: d.kind,
        zones: [&d.inside_zone, &d.outside_zone, &d.zone],
    })
}

/// What the device lists search and sort by.
struct DeviceFacts<'a> {
    id: &'a DeviceId,
    kind: DeviceKind,
    /// Inside, outside (gates) and the zone (cabinets, desks).
    zones: [&'a Option<ZoneId>; 3],
}

/// Zone names by zone id: a device is found by the names of its zones as well as their ids.
fn zone_names(tx: &mut dyn Tx) -> Result<HashMap<String, String>, StoreError> {
    Ok(tx
        .zones()?
        .into_iter()
        .map(|z| (z.id.as_str().to_owned(), z.name))
        .collect())
}

/// Check `params`, keep the devices matching the search words (in the id, kind, zone ids or
/// the zones' names in `zones`), sort and page them.
fn page_of<T>(
    devices: Vec<T>,
    zones: &HashMap<String, String>,
    params: &ListParams,
    facts: impl Fn(&T) -> DeviceFacts<'_>,
) -> Result<Page<T>, ServiceError> {
    let default = Sort {
        key: DEVICE_SORT_KEYS[0],
        descending: false,
    };
    let checked = params.check(DEVICE_SORT_KEYS, default)?;
    let words = search_words(checked.q.as_deref().unwrap_or(""), WORDS_MAX);
    let matching = devices
        .into_iter()
        .filter(|d| {
            let f = facts(d);
            let mut fields = vec![f.id.as_str(), f.kind.as_str()];
            for z in f.zones.into_iter().flatten() {
                fields.push(z.as_str());
                fields.extend(zones.get(z.as_str()).map(String::as_str));
            }
            words_match(&words, &fields)
        })
        .collect();
    Ok(paginate(matching, &checked.page, |d, key| {
        let f = facts(d);
        let value = match key {
            "kind" => format!("{}\0{}", f.kind.as_str(), f.id),
            _ => format!("\0{}", f.id),
        };
        (SortValue::Text(value), 0)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::device::PlacementError;
    use crate::store::DeviceRows;
    use crate::store::test_support::MemoryDb;

    fn zone(id: &str) -> Option<ZoneId> {
        Some(ZoneId::new(id).unwrap())
    }

    fn cabinet(id: &str, key: [u8; 32], zone_id: &str) -> DeviceRegistration {
        DeviceRegistration {
            id: DeviceId::new(id).unwrap(),
            kind: DeviceKind::Cabinet,
            public_key: STANDARD.encode(key),
            inside_zone: None,
            outside_zone: None,
            zone: zone(zone_id),
        }
    }

    #[test]
    fn public_keys_must_be_32_bytes_of_standard_base64() {
        let good = keys::test_key(7);
        assert_eq!(public_key(&STANDARD.encode(good)).unwrap(), good);
        // Small-order keys of the finding: the identity `01 00..00` and all zeros.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for weak in [identity, [0; 32]] {
            assert!(matches!(
                public_key(&STANDARD.encode(weak)),
                Err(ServiceError::Invalid(p)) if p[0].code == "weak_key"
            ));
        }
        assert!(public_key(&STANDARD.encode([7; 31])).is_err());
        assert!(public_key(&STANDARD.encode([7; 33])).is_err());
        assert!(public_key("not base64!").is_err());
        assert!(matches!(
            public_key(""),
            Err(ServiceError::Invalid(p)) if p[0].field == "public_key"
        ));
    }

    #[test]
    fn a_device_is_registered_in_known_zones_with_a_key_of_its_own() {
        let db = MemoryDb::custody(Timestamp::from_unix(1_750_000_000).unwrap());
        let at = Timestamp::from_unix(1_750_000_001).unwrap();
        let new = check_registration(cabinet("cab-3", keys::test_key(3), "z")).unwrap();
        register_in(&mut db.tx(), "root", &new, at).unwrap();
        let entry = db.audit().pop().unwrap();
        assert_eq!(
            (entry.action.as_str(), entry.subject.as_str()),
            ("device.create", "device:cab-3")
        );
        assert_eq!(
            entry.after.unwrap()["public_key"],
            STANDARD.encode(keys::test_key(3))
        );
        assert_eq!(
            db.tx()
                .device_kind(&DeviceId::new("cab-3").unwrap())
                .unwrap(),
            Some(DeviceKind::Cabinet)
        );
        let same_key = check_registration(cabinet("cab-4", keys::test_key(3), "z")).unwrap();
        assert!(matches!(
            register_in(&mut db.tx(), "root", &same_key, at),
            Err(ServiceError::Duplicate { .. })
        ));
        let nowhere = check_registration(cabinet("cab-5", keys::test_key(5), "nowhere")).unwrap();
        assert!(matches!(
            register_in(&mut db.tx(), "root", &nowhere, at),
            Err(ServiceError::UnknownReference { what: "zone" })
        ));
    }

    #[test]
    fn revoking_and_rotating_are_audited_and_checked() {
        let db = MemoryDb::custody(Timestamp::from_unix(1_750_000_000).unwrap());
        let at = Timestamp::from_unix(1_750_000_001).unwrap();
        let new = check_registration(cabinet("cab-3", keys::test_key(3), "z")).unwrap();
        register_in(&mut db.tx(), "root", &new, at).unwrap();
        let id = DeviceId::new("cab-3").unwrap();
        let later = Timestamp::from_unix(1_750_000_100).unwrap();
        let rotated = rotate_key_in(&mut db.tx(), "root", &id, &keys::test_key(4), later).unwrap();
        assert_eq!(rotated.public_key, STANDARD.encode(keys::test_key(4)));
        let entry = db.audit().pop().unwrap();
        assert_eq!(entry.action, "device.key_rotate");
        assert_eq!(
            entry.before.unwrap()["public_key"],
            STANDARD.encode(keys::test_key(3))
        );
        let revoked = revoke_in(&mut db.tx(), "root", &id, later).unwrap();
        assert_eq!(revoked.revoked_at, Some(later));
        assert_eq!(db.audit().pop().unwrap().action, "device.revoke");
        let count = db.audit().len();
        // Again: no change, no entry; the first time stays.
        let again = revoke_in(&mut db.tx(), "root", &id, at).unwrap();
        assert_eq!(again.revoked_at, Some(later));
        assert_eq!(db.audit().len(), count);
        let nobody = DeviceId::new("nobody").unwrap();
        assert!(matches!(
            revoke_in(&mut db.tx(), "root", &nobody, at),
            Err(ServiceError::NotFound)
        ));
    }

    #[test]
    fn a_placement_must_fit_the_kind() {
        let mut gate = cabinet("gate-1", keys::test_key(1), "z");
        gate.kind = DeviceKind::Gate;
        gate.zone = None;
        gate.inside_zone = zone("z");
        assert!(matches!(
            check_registration(gate),
            Err(ServiceError::Placement(PlacementError::GateNeedsBothSides))
        ));
    }
}
