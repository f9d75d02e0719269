//! Reader devices and where they stand.

use serde::{Deserialize, Serialize};

use super::ids::ZoneId;

/// What a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// A gate (通道门) between two zones.
    Gate,
    /// A cabinet (智能柜) inside one zone.
    Cabinet,
    /// A custodian's desk reader or handheld, optionally tied to a zone.
    Desk,
}

impl DeviceKind {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Gate => "gate",
            DeviceKind::Cabinet => "cabinet",
            DeviceKind::Desk => "desk",
        }
    }

    /// Parse a storage name.
    pub fn from_name(name: &str) -> Option<DeviceKind> {
        match name {
            "gate" => Some(DeviceKind::Gate),
            "cabinet" => Some(DeviceKind::Cabinet),
            "desk" => Some(DeviceKind::Desk),
            _ => None,
        }
    }
}

/// The zones a device is placed in, checked against its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A gate between the secure side (`inside`) and the other side (`outside`).
    Gate {
        /// Secure side.
        inside: ZoneId,
        /// Public (or less secure) side.
        outside: ZoneId,
    },
    /// A cabinet in one zone.
    Cabinet {
        /// The zone the cabinet stands in.
        zone: ZoneId,
    },
    /// A desk, optionally in a zone.
    Desk {
        /// The zone the desk stands in, if any.
        zone: Option<ZoneId>,
    },
}

/// Why a placement does not fit the device kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// A gate needs both `inside_zone` and `outside_zone`.
    #[error("a gate needs inside_zone and outside_zone")]
    GateNeedsBothSides,
    /// A gate's two sides are the same zone.
    #[error("a gate's inside_zone and outside_zone must differ")]
    GateSidesEqual,
    /// A cabinet needs `zone`.
    #[error("a cabinet needs zone")]
    CabinetNeedsZone,
    /// A field that does not apply to this kind was given.
    #[error("{field} does not apply to a {kind}")]
    NotApplicable {
        /// The offending field.
        field: &'static str,
        /// The device kind.
        kind: &'static str,
    },
}

impl Placement {
    /// Check the zone fields given for a device of `kind`.
    pub fn new(
        kind: DeviceKind,
        inside_zone: Option<ZoneId>,
        outside_zone: Option<ZoneId>,
        zone: Option<ZoneId>,
    ) -> Result<Placement, PlacementError> {
        let not_applicable = |field| PlacementError::NotApplicable {
            field,
            kind: kind.as_str(),
        };
        match kind {
            DeviceKind::Gate => {
                if zone.is_some() {
                    return Err(not_applicable("zone"));
                }
                match (inside_zone, outside_zone) {
                    (Some(inside), Some(outside)) if inside == outside => {
                        Err(PlacementError::GateSidesEqual)
                    }
                    (Some(inside), Some(outside)) => Ok(Placement::Gate { inside, outside }),
                    _ => Err(PlacementError::GateNeedsBothSides),
                }
            }
            DeviceKind::Cabinet | DeviceKind::Desk => {
                if inside_zone.is_some() {
                    return Err(not_applicable("inside_zone"));
                }
                if outside_zone.is_some() {
                    return Err(not_applicable("outside_zone"));
                }
                match (kind, zone) {
                    (DeviceKind::Cabinet, Some(zone)) => Ok(Placement::Cabinet { zone }),
                    (DeviceKind::Cabinet, None) => Err(PlacementError::CabinetNeedsZone),
                    (_, zone) => Ok(Placement::Desk { zone }),
                }
            }
        }
    }

    /// The device kind this placement belongs to.
    pub fn kind(&self) -> DeviceKind {
        match self {
            Placement::Gate { .. } => DeviceKind::Gate,
            Placement::Cabinet { .. } => DeviceKind::Cabinet,
            Placement::Desk { .. } => DeviceKind::Desk,
        }
    }

    /// `(inside_zone, outside_zone, zone)` as stored.
    pub fn columns(&self) -> (Option<&ZoneId>, Option<&ZoneId>, Option<&ZoneId>) {
        match self {
            Placement::Gate { inside, outside } => (Some(inside), Some(outside), None),
            Placement::Cabinet { zone } => (None, None, Some(zone)),
            Placement::Desk { zone } => (None, None, zone.as_ref()),
        }
    }

    /// Every zone the placement names.
    pub fn zones(&self) -> Vec<&ZoneId> {
        let (a, b, c) = self.columns();
        [a, b, c].into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(s: &str) -> Option<ZoneId> {
        Some(ZoneId::new(s).unwrap())
    }

    #[test]
    fn a_gate_needs_two_different_sides() {
        let gate = Placement::new(DeviceKind::Gate, z("in"), z("out"), None).unwrap();
        assert_eq!(gate.kind(), DeviceKind::Gate);
        assert_eq!(gate.zones().len(), 2);
        assert_eq!(
            Placement::new(DeviceKind::Gate, z("in"), None, None),
            Err(PlacementError::GateNeedsBothSides)
        );
        assert_eq!(
            Placement::new(DeviceKind::Gate, None, z("out"), None),
            Err(PlacementError::GateNeedsBothSides)
        );
        assert_eq!(
            Placement::new(DeviceKind::Gate, z("a"), z("a"), None),
            Err(PlacementError::GateSidesEqual)
        );
        assert!(matches!(
            Placement::new(DeviceKind::Gate, z("in"), z("out"), z("x")),
            Err(PlacementError::NotApplicable { field: "zone", .. })
        ));
    }

    #[test]
    fn a_cabinet_needs_exactly_a_zone() {
        let cab = Placement::new(DeviceKind::Cabinet, None, None, z("vault")).unwrap();
        assert_eq!(cab.columns(), (None, None, z("vault").as_ref()));
        assert_eq!(
            Placement::new(DeviceKind::Cabinet, None, None, None),
            Err(PlacementError::CabinetNeedsZone)
        );
        assert!(matches!(
            Placement::new(DeviceKind::Cabinet, z("a"), None, z("vault")),
            Err(PlacementError::NotApplicable {
                field: "inside_zone",
                ..
            })
        ));
    }

    #[test]
    fn a_desk_may_have_a_zone() {
        assert_eq!(
            Placement::new(DeviceKind::Desk, None, None, None),
            Ok(Placement::Desk { zone: None })
        );
        assert!(Placement::new(DeviceKind::Desk, None, None, z("office")).is_ok());
        assert!(Placement::new(DeviceKind::Desk, None, z("out"), None).is_err());
    }

    #[test]
    fn kind_names_round_trip() {
        for k in [DeviceKind::Gate, DeviceKind::Cabinet, DeviceKind::Desk] {
            assert_eq!(DeviceKind::from_name(k.as_str()), Some(k));
        }
    }
}
