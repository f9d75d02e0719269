//! The gate I/O module: relays (coils) that drive the alarm, and inputs that watch the passage.
//!
//! The convention, after Moxa ioLogik E1212-style modules (relays are coils from address 0,
//! inputs are discrete inputs from address 0):
//!
//! | point | address | meaning |
//! |---|---|---|
//! | DO0 | coil 0 | alarm light (energised = on) |
//! | DO1 | coil 1 | sounder / buzzer (energised = sounding) |
//! | DO2 | coil 2 | door lock (energised = locked) |
//! | DO3 | coil 3 | barrier (energised = closed, blocking the passage) |
//! | DI0 | input 0 | inner photo-eye, normally closed |
//! | DI1 | input 1 | outer photo-eye, normally closed |
//! | DI2 | input 2 | door contact, normally closed (closed door = circuit closed) |
//!
//! Inputs are wired normally closed so that a cut wire or a dead sensor reads the same as an
//! interrupted beam or an open door: sabotage looks like activity, never like quiet. The daemon
//! treats a beam that stays "broken" for long as a fault to report, not as "nobody there".
//!
//! Outputs go out as single-coil writes ([`GateIoMap::coil_writes`]); they are idempotent, so the
//! daemon should rewrite the whole [`Outputs`] state periodically as well as on change, because
//! a module that reboots comes back with its relays de-energised.

use super::{AddressRange, CoilWrite, ModbusMapError};

/// The most discrete inputs one Modbus request may read (function 0x02: 1 to 2000).
const MAX_READ_BITS: u16 = 0x07D0;

/// Where each relay and input of the gate I/O module is; `Default` is the convention above.
///
/// Optional points may be absent (`None`, written `false` in a configuration file): an absent
/// coil is never written, an absent input is reported as `None` in [`GateInputs`]. An unfitted
/// normally-closed input must be declared absent, or it reads as a permanently broken beam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields, default)
)]
pub struct GateIoMap {
    /// Alarm light relay (DO0 = coil 0).
    pub alarm_coil: u16,
    /// Sounder / buzzer relay (DO1 = coil 1).
    pub buzzer_coil: u16,
    /// Door lock relay, energised = locked (DO2 = coil 2).
    #[cfg_attr(feature = "serde", serde(with = "super::optional_address"))]
    pub lock_coil: Option<u16>,
    /// Barrier relay, energised = closed (DO3 = coil 3).
    #[cfg_attr(feature = "serde", serde(with = "super::optional_address"))]
    pub barrier_coil: Option<u16>,
    /// Inner (secure side) photo-eye, normally closed (DI0 = input 0).
    #[cfg_attr(feature = "serde", serde(with = "super::optional_address"))]
    pub inner_beam_input: Option<u16>,
    /// Outer (public side) photo-eye, normally closed (DI1 = input 1).
    #[cfg_attr(feature = "serde", serde(with = "super::optional_address"))]
    pub outer_beam_input: Option<u16>,
    /// Door contact, normally closed: closed door = circuit closed (DI2 = input 2).
    #[cfg_attr(feature = "serde", serde(with = "super::optional_address"))]
    pub door_contact_input: Option<u16>,
}

impl Default for GateIoMap {
    fn default() -> Self {
        Self {
            alarm_coil: 0,
            buzzer_coil: 1,
            lock_coil: Some(2),
            barrier_coil: Some(3),
            inner_beam_input: Some(0),
            outer_beam_input: Some(1),
            door_contact_input: Some(2),
        }
    }
}

/// A photo-eye as read from a normally-closed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Beam {
    /// The circuit is closed: the beam reaches the receiver.
    Intact,
    /// The circuit is open: something is in the beam, or the wire is cut, or the sensor is dead.
    Broken,
}

impl Beam {
    /// The beam state from a normally-closed discrete input.
    ///
    /// `true` (circuit closed) means intact. `false` means broken — and a cut wire, an unpowered
    /// sensor or a missing input also read `false`, so they are deliberately indistinguishable
    /// from an object in the beam: fail secure.
    pub fn from_input(input: bool) -> Self {
        if input { Beam::Intact } else { Beam::Broken }
    }
}

/// The door as read from a normally-closed door contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Door {
    /// The contact is closed: the door is shut.
    Closed,
    /// The contact is open: the door is open, or the wire is cut.
    Open,
}

impl Door {
    /// The door state from a normally-closed contact: `true` = closed, `false` = open or cut.
    pub fn from_input(input: bool) -> Self {
        if input { Door::Closed } else { Door::Open }
    }
}

/// One reading of the gate's inputs; `None` for an input the map declares not fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GateInputs {
    /// The inner (secure side) photo-eye.
    pub inner_beam: Option<Beam>,
    /// The outer (public side) photo-eye.
    pub outer_beam: Option<Beam>,
    /// The door contact.
    pub door: Option<Door>,
}

/// The wanted state of the gate's relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Outputs {
    /// Alarm light on.
    pub alarm_light: bool,
    /// Sounder on.
    pub sounder: bool,
    /// Door locked (lock relay energised).
    pub door_locked: bool,
    /// Barrier closed (barrier relay energised).
    pub barrier_closed: bool,
}

impl Outputs {
    /// Everything de-energised: light and sounder off, door unlocked, barrier open.
    pub const IDLE: Outputs = Outputs {
        alarm_light: false,
        sounder: false,
        door_locked: false,
        barrier_closed: false,
    };

    /// Light and sounder on; door locked and barrier closed when `lock_door`.
    pub fn alarm(lock_door: bool) -> Self {
        Outputs {
            alarm_light: true,
            sounder: true,
            door_locked: lock_door,
            barrier_closed: lock_door,
        }
    }
}

/// Up to four single-coil writes, in coil order DO0..DO3 of the map (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoilWrites {
    writes: [CoilWrite; 4],
    len: u8,
}

impl CoilWrites {
    /// The writes to issue, in order.
    pub fn as_slice(&self) -> &[CoilWrite] {
        &self.writes[..usize::from(self.len)]
    }

    fn push(&mut self, coil: u16, value: bool) {
        self.writes[usize::from(self.len)] = CoilWrite { coil, value };
        self.len += 1;
    }
}

impl<'a> IntoIterator for &'a CoilWrites {
    type Item = &'a CoilWrite;
    type IntoIter = core::slice::Iter<'a, CoilWrite>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl GateIoMap {
    /// Checks that no two fitted coils, and no two fitted inputs, share an address, and that
    /// the inputs fit in one Modbus read (2000 inputs).
    pub fn validate(&self) -> Result<(), ModbusMapError> {
        let coils = [
            ("alarm_coil", Some(self.alarm_coil)),
            ("buzzer_coil", Some(self.buzzer_coil)),
            ("lock_coil", self.lock_coil),
            ("barrier_coil", self.barrier_coil),
        ];
        let inputs = [
            ("inner_beam_input", self.inner_beam_input),
            ("outer_beam_input", self.outer_beam_input),
            ("door_contact_input", self.door_contact_input),
        ];
        no_duplicates(&coils)?;
        no_duplicates(&inputs)?;
        match self.input_block() {
            Some(block) if block.count > MAX_READ_BITS => {
                Err(ModbusMapError::BlockSize { field: "inputs" })
            }
            _ => Ok(()),
        }
    }

    /// The discrete inputs to read (function 0x02) for [`decode_inputs`](Self::decode_inputs):
    /// the smallest block holding every fitted input, or `None` if no input is fitted.
    pub fn input_block(&self) -> Option<AddressRange> {
        AddressRange::spanning(
            [
                self.inner_beam_input,
                self.outer_beam_input,
                self.door_contact_input,
            ]
            .into_iter()
            .flatten(),
        )
    }

    /// Decodes discrete inputs read from `start` (as tokio-modbus returns them) into a snapshot.
    ///
    /// The block may be larger than [`input_block`](Self::input_block); every fitted input must
    /// lie inside it.
    pub fn decode_inputs(&self, start: u16, bits: &[bool]) -> Result<GateInputs, ModbusMapError> {
        let block = AddressRange {
            start,
            count: u16::try_from(bits.len()).map_err(|_| ModbusMapError::BlockLength {
                field: "inputs",
                expected: usize::from(MAX_READ_BITS),
                got: bits.len(),
            })?,
        };
        let read = |field: &'static str, address: Option<u16>| -> Result<Option<bool>, _> {
            address
                .map(|address| {
                    block
                        .offset_of(address)
                        .map(|i| bits[i])
                        .ok_or(ModbusMapError::OutsideBlock { field, address })
                })
                .transpose()
        };
        Ok(GateInputs {
            inner_beam: read("inner_beam_input", self.inner_beam_input)?.map(Beam::from_input),
            outer_beam: read("outer_beam_input", self.outer_beam_input)?.map(Beam::from_input),
            door: read("door_contact_input", self.door_contact_input)?.map(Door::from_input),
        })
    }

    /// The single-coil writes that put the relays in the `outputs` state (fitted coils only).
    pub fn coil_writes(&self, outputs: &Outputs) -> CoilWrites {
        let mut w = CoilWrites {
            writes: [CoilWrite {
                coil: 0,
                value: false,
            }; 4],
            len: 0,
        };
        w.push(self.alarm_coil, outputs.alarm_light);
        w.push(self.buzzer_coil, outputs.sounder);
        if let Some(c) = self.lock_coil {
            w.push(c, outputs.door_locked);
        }
        if let Some(c) = self.barrier_coil {
            w.push(c, outputs.barrier_closed);
        }
        w
    }
}

fn no_duplicates(points: &[(&'static str, Option<u16>)]) -> Result<(), ModbusMapError> {
    for (i, (field, a)) in points.iter().enumerate() {
        if a.is_some() && points[..i].iter().any(|(_, b)| b == a) {
            return Err(ModbusMapError::DuplicateAddress { field });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_is_the_published_convention() {
        // modbus.txt: "DO0 alarm light, DO1 sounder, DO2 door lock (energised = locked), DO3
        // barrier. DI0/DI1 photo-eyes ..., DI2 door contact. Reference 00001 = protocol address 0."
        let m = GateIoMap::default();
        assert_eq!(m.alarm_coil, 0);
        assert_eq!(m.buzzer_coil, 1);
        assert_eq!(m.lock_coil, Some(2));
        assert_eq!(m.barrier_coil, Some(3));
        assert_eq!(m.inner_beam_input, Some(0));
        assert_eq!(m.outer_beam_input, Some(1));
        assert_eq!(m.door_contact_input, Some(2));
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(m.input_block(), Some(AddressRange { start: 0, count: 3 }));
    }

    #[test]
    fn normally_closed_inputs_fail_secure() {
        assert_eq!(Beam::from_input(true), Beam::Intact);
        // A cut wire reads false: the same as a broken beam.
        assert_eq!(Beam::from_input(false), Beam::Broken);
        assert_eq!(Door::from_input(true), Door::Closed);
        assert_eq!(Door::from_input(false), Door::Open);
    }

    #[test]
    fn decodes_input_block() {
        let m = GateIoMap::default();
        let got = m.decode_inputs(0, &[true, false, true]).unwrap();
        assert_eq!(
            got,
            GateInputs {
                inner_beam: Some(Beam::Intact),
                outer_beam: Some(Beam::Broken),
                door: Some(Door::Closed)
            }
        );
        // A larger block read from 0 works; one that misses DI2 does not.
        assert!(m.decode_inputs(0, &[true; 8]).is_ok());
        assert_eq!(
            m.decode_inputs(0, &[true, true]),
            Err(ModbusMapError::OutsideBlock {
                field: "door_contact_input",
                address: 2
            })
        );
        assert_eq!(
            m.decode_inputs(1, &[true, true, true]),
            Err(ModbusMapError::OutsideBlock {
                field: "inner_beam_input",
                address: 0
            })
        );
    }

    #[test]
    fn unfitted_inputs_are_none_and_not_read() {
        let m = GateIoMap {
            inner_beam_input: None,
            outer_beam_input: None,
            door_contact_input: Some(5),
            ..GateIoMap::default()
        };
        assert_eq!(m.input_block(), Some(AddressRange { start: 5, count: 1 }));
        let got = m.decode_inputs(5, &[false]).unwrap();
        assert_eq!(
            got,
            GateInputs {
                inner_beam: None,
                outer_beam: None,
                door: Some(Door::Open)
            }
        );
        let none = GateIoMap {
            door_contact_input: None,
            ..m
        };
        assert_eq!(none.input_block(), None);
    }

    #[test]
    fn outputs_become_coil_writes() {
        let m = GateIoMap::default();
        let w = m.coil_writes(&Outputs::alarm(true));
        assert_eq!(
            w.as_slice(),
            &[
                CoilWrite {
                    coil: 0,
                    value: true
                },
                CoilWrite {
                    coil: 1,
                    value: true
                },
                CoilWrite {
                    coil: 2,
                    value: true
                },
                CoilWrite {
                    coil: 3,
                    value: true
                },
            ]
        );
        let w = m.coil_writes(&Outputs::alarm(false));
        assert_eq!(
            w.as_slice()[2],
            CoilWrite {
                coil: 2,
                value: false
            }
        );
        let w = m.coil_writes(&Outputs::IDLE);
        assert!(w.into_iter().all(|c| !c.value));
        let no_barrier = GateIoMap {
            barrier_coil: None,
            lock_coil: Some(7),
            ..m
        };
        let w = no_barrier.coil_writes(&Outputs::alarm(true));
        assert_eq!(w.as_slice().len(), 3);
        assert_eq!(
            w.as_slice()[2],
            CoilWrite {
                coil: 7,
                value: true
            }
        );
    }

    #[test]
    fn duplicate_and_oversized_maps_are_refused() {
        let m = GateIoMap {
            buzzer_coil: 0,
            ..GateIoMap::default()
        };
        assert_eq!(
            m.validate(),
            Err(ModbusMapError::DuplicateAddress {
                field: "buzzer_coil"
            })
        );
        let m = GateIoMap {
            door_contact_input: Some(0),
            ..GateIoMap::default()
        };
        assert_eq!(
            m.validate(),
            Err(ModbusMapError::DuplicateAddress {
                field: "door_contact_input"
            })
        );
        // The same address for a coil and an input is fine: different tables.
        let m = GateIoMap {
            lock_coil: Some(0),
            alarm_coil: 9,
            ..GateIoMap::default()
        };
        assert_eq!(m.validate(), Ok(()));
        let m = GateIoMap {
            door_contact_input: Some(0x1000),
            ..GateIoMap::default()
        };
        assert_eq!(
            m.validate(),
            Err(ModbusMapError::BlockSize { field: "inputs" })
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_defaults_not_fitted_and_unknown_keys() {
        let m: GateIoMap = serde_json::from_str(r#"{"lock_coil": 5}"#).unwrap();
        assert_eq!(
            m,
            GateIoMap {
                lock_coil: Some(5),
                ..GateIoMap::default()
            }
        );
        let m: GateIoMap =
            serde_json::from_str(r#"{"inner_beam_input": false, "outer_beam_input": false}"#)
                .unwrap();
        assert_eq!(m.inner_beam_input, None);
        assert_eq!(m.outer_beam_input, None);
        assert!(serde_json::from_str::<GateIoMap>(r#"{"inner_beam_input": true}"#).is_err());
        assert!(serde_json::from_str::<GateIoMap>(r#"{"alarm": 1}"#).is_err());
        let back: GateIoMap = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }

    proptest! {
        /// Decoding a block built from known input values gives back those values, through the
        /// normally-closed mapping, for any placement of the inputs inside the block.
        #[test]
        fn decode_reads_each_input_at_its_address(
            bits in proptest::collection::vec(any::<bool>(), 64),
            start in 0u16..100,
            picks in proptest::sample::subsequence((0usize..64).collect::<Vec<_>>(), 3).prop_shuffle(),
        ) {
            let addr = |i: usize| start + i as u16;
            let m = GateIoMap {
                inner_beam_input: Some(addr(picks[0])),
                outer_beam_input: Some(addr(picks[1])),
                door_contact_input: Some(addr(picks[2])),
                ..GateIoMap::default()
            };
            let got = m.decode_inputs(start, &bits).unwrap();
            prop_assert_eq!(got.inner_beam, Some(Beam::from_input(bits[picks[0]])));
            prop_assert_eq!(got.outer_beam, Some(Beam::from_input(bits[picks[1]])));
            prop_assert_eq!(got.door, Some(Door::from_input(bits[picks[2]])));
        }
    }
}
