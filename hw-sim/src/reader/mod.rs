//! Simulated UHF reader modules: pure state machines a driver feeds with host bytes and a
//! virtual clock, and that answer with the bytes the real device would send.
//!
//! - [`model`]: the reader's world (antennas, the tags in their fields, settings, injected
//!   faults), shared by every protocol;
//! - [`a0`]: the 0xA0 protocol (R2000/Indy modules);
//! - [`chafon`]: the CHAFON protocol in its UHFReader18 and UHFReader288 forms;
//! - [`SimReader`]: every front-end behind one type, so a driver (pty, socket) needs no
//!   per-protocol code.
//!
//! Nothing here does I/O or reads a clock: time comes in as milliseconds of any monotonic
//! origin the driver likes, so tests run on a virtual clock.
//!
//! # Driving a reader
//!
//! ```
//! use custos_sim::reader::{Protocol, SimReader};
//!
//! let mut reader = SimReader::new(Protocol::A0, 0x01);
//! let mut out = Vec::new();
//! // Host: get firmware version (vector file, `A0 03 01 72 EA`).
//! reader.handle_input(0, &[0xA0, 0x03, 0x01, 0x72, 0xEA], &mut out);
//! assert_eq!(out, [0xA0, 0x05, 0x01, 0x72, 0x08, 0x01, 0xDF]);
//! ```
//!
//! A driver writes `out` to the link after each [`SimReader::handle_input`], and calls
//! [`SimReader::poll`] at [`SimReader::next_poll_ms`] (if any) for unsolicited output.

pub mod a0;
pub mod chafon;
pub mod model;

use custos_protocol::chafon::InventoryForm;

pub use a0::A0Reader;
pub use chafon::ChafonReader;
pub use model::{
    Antenna, DEFAULT_ANTENNAS, DEFAULT_RSSI, FieldTag, MAX_ANTENNAS, ModelError, ReaderModel,
    ReaderStats,
};

/// The wire protocol a simulated reader speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// The 0xA0 protocol of R2000/Indy modules (`uhf-a0`).
    A0,
    /// The CHAFON protocol, UHFReader18 inventory form: no antenna, no RSSI
    /// (`uhf-chafon18`).
    Chafon18,
    /// The CHAFON protocol, UHFReader288 inventory form: antenna mask and RSSI
    /// (`uhf-chafon288`, also accepted as `uhf-chafon`).
    Chafon288,
}

impl Protocol {
    /// The name used on the command line and in configuration.
    pub const fn name(self) -> &'static str {
        match self {
            Self::A0 => "uhf-a0",
            Self::Chafon18 => "uhf-chafon18",
            Self::Chafon288 => "uhf-chafon288",
        }
    }

    /// The most antennas a reader of this protocol can have.
    pub const fn max_antennas(self) -> u8 {
        match self {
            Self::A0 => MAX_ANTENNAS,
            Self::Chafon18 | Self::Chafon288 => DEFAULT_ANTENNAS,
        }
    }
}

impl core::fmt::Display for Protocol {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A protocol name that is not one of [`Protocol`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown reader protocol {0:?} (expected uhf-a0, uhf-chafon, uhf-chafon18 or uhf-chafon288)"
)]
pub struct UnknownProtocol(pub String);

impl core::str::FromStr for Protocol {
    type Err = UnknownProtocol;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "uhf-a0" => Ok(Self::A0),
            "uhf-chafon18" => Ok(Self::Chafon18),
            // The 288 form carries antenna and RSSI, and the daemon's auto-detecting decoder
            // prefers it: the default for a configuration that only says "uhf-chafon".
            "uhf-chafon" | "uhf-chafon288" => Ok(Self::Chafon288),
            other => Err(UnknownProtocol(other.to_owned())),
        }
    }
}

/// Why a reader could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SimReaderError {
    /// The model has more antennas than the protocol can address.
    #[error("{protocol} readers have at most {max} antennas, asked for {asked}")]
    TooManyAntennas {
        /// The protocol.
        protocol: Protocol,
        /// Its limit.
        max: u8,
        /// The model's antenna count.
        asked: u8,
    },
}

#[derive(Debug, Clone)]
enum FrontEnd {
    A0(A0Reader),
    Chafon(ChafonReader),
}

/// A simulated reader of any [`Protocol`].
#[derive(Debug, Clone)]
pub struct SimReader {
    protocol: Protocol,
    front: FrontEnd,
}

impl SimReader {
    /// A four-antenna reader at bus `address` speaking `protocol`, every field empty.
    pub fn new(protocol: Protocol, address: u8) -> Self {
        let model = ReaderModel::with_address(address);
        Self {
            protocol,
            front: Self::front(protocol, model),
        }
    }

    /// A reader speaking `protocol` over an existing world (e.g. eight antennas for
    /// [`Protocol::A0`]).
    pub fn with_model(protocol: Protocol, model: ReaderModel) -> Result<Self, SimReaderError> {
        let max = protocol.max_antennas();
        if model.antenna_count() > max {
            return Err(SimReaderError::TooManyAntennas {
                protocol,
                max,
                asked: model.antenna_count(),
            });
        }
        Ok(Self {
            protocol,
            front: Self::front(protocol, model),
        })
    }

    fn front(protocol: Protocol, model: ReaderModel) -> FrontEnd {
        match protocol {
            Protocol::A0 => FrontEnd::A0(A0Reader::new(model)),
            Protocol::Chafon18 => {
                FrontEnd::Chafon(ChafonReader::new(model, InventoryForm::Reader18))
            }
            Protocol::Chafon288 => {
                FrontEnd::Chafon(ChafonReader::new(model, InventoryForm::Reader288))
            }
        }
    }

    /// The protocol spoken.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Feeds bytes from the host at time `now_ms`; appends the reader's replies to `out`.
    pub fn handle_input(&mut self, now_ms: u64, input: &[u8], out: &mut Vec<u8>) {
        match &mut self.front {
            FrontEnd::A0(r) => r.handle_input(now_ms, input, out),
            FrontEnd::Chafon(r) => r.handle_input(now_ms, input, out),
        }
    }

    /// Lets time pass up to `now_ms`; appends any unsolicited output to `out`.
    pub fn poll(&mut self, now_ms: u64, out: &mut Vec<u8>) {
        match &mut self.front {
            FrontEnd::A0(r) => r.poll(now_ms, out),
            FrontEnd::Chafon(r) => r.poll(now_ms, out),
        }
    }

    /// When [`poll`](Self::poll) next has something to do, or `None` when only host input
    /// can make the reader speak.
    pub fn next_poll_ms(&self) -> Option<u64> {
        match &self.front {
            FrontEnd::A0(_) => None,
            FrontEnd::Chafon(r) => r.next_poll_ms(),
        }
    }

    /// The reader's world.
    pub fn model(&self) -> &ReaderModel {
        match &self.front {
            FrontEnd::A0(r) => r.model(),
            FrontEnd::Chafon(r) => r.model(),
        }
    }

    /// The reader's world, for the control socket: fields, connections, faults.
    pub fn model_mut(&mut self) -> &mut ReaderModel {
        match &mut self.front {
            FrontEnd::A0(r) => r.model_mut(),
            FrontEnd::Chafon(r) => r.model_mut(),
        }
    }

    /// What the reader has done so far.
    pub fn stats(&self) -> ReaderStats {
        self.model().stats()
    }

    /// Switches scan mode of a CHAFON reader on or off from the simulator's side (as the host's
    /// "set work mode" would); returns `false` for protocols without a scan mode.
    pub fn set_scan(&mut self, now_ms: u64, on: bool) -> bool {
        match &mut self.front {
            FrontEnd::A0(_) => false,
            FrontEnd::Chafon(r) => {
                r.set_scan(now_ms, on);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_round_trip() {
        for p in [Protocol::A0, Protocol::Chafon18, Protocol::Chafon288] {
            assert_eq!(p.name().parse::<Protocol>(), Ok(p));
            assert_eq!(p.to_string(), p.name());
        }
        assert_eq!("uhf-chafon".parse::<Protocol>(), Ok(Protocol::Chafon288));
        assert_eq!(
            "uhf-b0".parse::<Protocol>(),
            Err(UnknownProtocol("uhf-b0".to_owned()))
        );
    }

    #[test]
    fn every_protocol_answers_through_the_one_type() {
        let cases: [(Protocol, u8, &[u8], &[u8]); 3] = [
            // Vector files: A0 firmware version; CHAFON set power 30 (acknowledged with
            // status 0 and no data).
            (
                Protocol::A0,
                0x01,
                &[0xA0, 0x03, 0x01, 0x72, 0xEA],
                &[0xA0, 0x05, 0x01, 0x72, 0x08, 0x01, 0xDF],
            ),
            (
                Protocol::Chafon18,
                0x00,
                &[0x05, 0x00, 0x2F, 0x1E, 0x72, 0x34],
                &[],
            ),
            (
                Protocol::Chafon288,
                0x00,
                &[0x05, 0x00, 0x2F, 0x1E, 0x72, 0x34],
                &[],
            ),
        ];
        for (protocol, address, ask, expected) in cases {
            let mut r = SimReader::new(protocol, address);
            assert_eq!(r.protocol(), protocol);
            let mut out = Vec::new();
            r.handle_input(0, ask, &mut out);
            if expected.is_empty() {
                assert_eq!(&out[..4], &[0x05, 0x00, 0x2F, 0x00], "{protocol}");
            } else {
                assert_eq!(out, expected, "{protocol}");
            }
            assert_eq!(r.stats().commands, 1);
            assert_eq!(r.stats().frames_sent, 1);
            r.model_mut().silence(true);
            out.clear();
            r.handle_input(1, ask, &mut out);
            r.poll(2, &mut out);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn antenna_limits_per_protocol() {
        let eight = ReaderModel::new(1, 8).unwrap();
        assert!(SimReader::with_model(Protocol::A0, eight.clone()).is_ok());
        assert_eq!(
            SimReader::with_model(Protocol::Chafon288, eight).err(),
            Some(SimReaderError::TooManyAntennas {
                protocol: Protocol::Chafon288,
                max: 4,
                asked: 8
            })
        );
    }

    #[test]
    fn only_chafon_readers_have_a_scan_mode() {
        let mut a0 = SimReader::new(Protocol::A0, 1);
        assert!(!a0.set_scan(0, true));
        assert_eq!(a0.next_poll_ms(), None);
        let mut chafon = SimReader::new(Protocol::Chafon18, 0);
        assert!(chafon.set_scan(500, true));
        assert_eq!(chafon.next_poll_ms(), Some(500));
    }
}
