//! The simulated reader's world, shared by every protocol front-end: its antennas and the tags
//! in each antenna's field, the settings a host can change (address, output power), a few
//! sensors (temperature, GPIO inputs), and the faults a test can inject.
//!
//! Nothing here knows a wire format. A front-end ([`super::a0`], [`super::chafon`]) turns host
//! commands into calls on this model and the model's state into reply frames; the control
//! socket of `custos-sim` (see `INTERFACES.md`, "Simulator control") maps its JSON ops onto the
//! methods [`set_field`](ReaderModel::set_field), [`clear`](ReaderModel::clear),
//! [`disconnect`](ReaderModel::disconnect), [`connect`](ReaderModel::connect),
//! [`silence`](ReaderModel::silence), [`inject_garbage`](ReaderModel::inject_garbage) and
//! [`corrupt_next`](ReaderModel::corrupt_next).
//!
//! # Faults
//!
//! Faults act on the reader's *output*, at frame granularity, in `ReaderModel::emit_frame`,
//! which every front-end uses to write a reply:
//! - queued garbage bytes are written just before the next frame (they stay queued while the
//!   reader is silent or has nothing to say);
//! - "corrupt next n" flips every bit of the last byte (the check byte, or the high CRC byte)
//!   of each of the next n frames, so the host's checksum test must reject them;
//! - silence makes the front-ends drop host bytes unread and write nothing at all.

use std::collections::VecDeque;

use custos_protocol::epc::Epc;

/// The antenna count of a reader unless told otherwise.
pub const DEFAULT_ANTENNAS: u8 = 4;

/// The most antennas a simulated reader can have (eight-port readers of the 0xA0 family).
pub const MAX_ANTENNAS: u8 = 8;

/// The RSSI a tag put into a field without its own value is read with: raw 0x4B, about
/// -54 dBm on the 0xA0 family's scale (`value - 129`), the value of the vector file's tag.
pub const DEFAULT_RSSI: u8 = 0x4B;

/// The output power of every antenna at start, in dBm.
pub const DEFAULT_POWER_DBM: u8 = 30;

/// The reader's temperature at start, in degrees Celsius.
pub const DEFAULT_TEMPERATURE_C: i16 = 35;

/// What a control operation on the model got wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// An antenna number outside `1..=count`.
    #[error("antenna {antenna} out of range 1..={count}")]
    NoSuchAntenna {
        /// The antenna number asked for (1-based).
        antenna: u8,
        /// How many antennas the reader has.
        count: u8,
    },
    /// A reader was asked for with no antennas or more than [`MAX_ANTENNAS`].
    #[error("antenna count {0} out of range 1..=8")]
    AntennaCount(u8),
    /// An RSSI above 127 (the 0xA0 family reports seven bits).
    #[error("rssi {0:#04x} above 0x7f")]
    Rssi(u8),
    /// An EPC that is empty or not a whole number of 16-bit words: a Gen2 PC word cannot
    /// announce it, so no reader could report it.
    #[error("epc of {0} bytes is not 1..=31 whole 16-bit words")]
    EpcLength(usize),
}

/// A tag in an antenna's field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldTag {
    /// The tag's EPC.
    pub epc: Epc,
    /// The RSSI the tag is read with, 0..=127 (raw reader units).
    pub rssi: u8,
}

/// One antenna port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Antenna {
    connected: bool,
    power_dbm: u8,
    field: Vec<FieldTag>,
}

impl Antenna {
    fn new() -> Self {
        Self {
            connected: true,
            power_dbm: DEFAULT_POWER_DBM,
            field: Vec::new(),
        }
    }

    /// Whether an antenna is plugged into the port.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The port's RF output power in dBm.
    pub fn power_dbm(&self) -> u8 {
        self.power_dbm
    }

    /// The tags in the antenna's field, connected or not, in the order they were put there.
    pub fn field(&self) -> &[FieldTag] {
        &self.field
    }

    /// The tags the antenna can read right now: its field if connected, nothing otherwise.
    pub fn readable(&self) -> &[FieldTag] {
        if self.connected { &self.field } else { &[] }
    }
}

/// The faults waiting to be applied to the reader's output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Faults {
    garbage: VecDeque<u8>,
    corrupt_frames: u32,
}

/// Counters of what a reader did, for tests and the simulator's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Host commands executed (addressed to this reader and well-formed).
    pub commands: u64,
    /// Host frames or fragments rejected by the decoder (bad checksum, bad length, noise).
    pub malformed: u64,
    /// Well-formed host commands for another reader address, ignored.
    pub foreign_address: u64,
    /// Host bytes thrown away unread while the reader was silent.
    pub silenced_bytes: u64,
    /// Frames written to the host.
    pub frames_sent: u64,
    /// Frames written with a deliberately broken check byte.
    pub corrupted_frames: u64,
    /// Injected garbage bytes written to the host.
    pub garbage_bytes_sent: u64,
}

/// The state of one simulated reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderModel {
    address: u8,
    antennas: Vec<Antenna>,
    temperature_c: i16,
    gpio_inputs: [bool; 2],
    gpio_outputs: [bool; 2],
    silent: bool,
    faults: Faults,
    stats: ReaderStats,
}

impl ReaderModel {
    /// A reader at bus `address` with `antennas` ports (1..=8), all connected, all fields
    /// empty.
    pub fn new(address: u8, antennas: u8) -> Result<Self, ModelError> {
        if !(1..=MAX_ANTENNAS).contains(&antennas) {
            return Err(ModelError::AntennaCount(antennas));
        }
        Ok(Self::build(address, antennas))
    }

    /// A four-port reader at bus `address`.
    pub fn with_address(address: u8) -> Self {
        Self::build(address, DEFAULT_ANTENNAS)
    }

    fn build(address: u8, antennas: u8) -> Self {
        Self {
            address,
            antennas: (0..antennas).map(|_| Antenna::new()).collect(),
            temperature_c: DEFAULT_TEMPERATURE_C,
            gpio_inputs: [false; 2],
            gpio_outputs: [false; 2],
            silent: false,
            faults: Faults::default(),
            stats: ReaderStats::default(),
        }
    }

    /// The reader's bus address.
    pub fn address(&self) -> u8 {
        self.address
    }

    /// Changes the reader's bus address (a host command of some protocols does this).
    pub fn set_address(&mut self, address: u8) {
        self.address = address;
    }

    /// The number of antenna ports.
    pub fn antenna_count(&self) -> u8 {
        // At most MAX_ANTENNAS by construction.
        self.antennas.len() as u8
    }

    /// Antenna `antenna` (1-based).
    pub fn antenna(&self, antenna: u8) -> Result<&Antenna, ModelError> {
        let index = self.index(antenna)?;
        Ok(&self.antennas[index])
    }

    /// Every antenna with its 1-based number.
    pub fn antennas(&self) -> impl Iterator<Item = (u8, &Antenna)> {
        (1..).zip(self.antennas.iter())
    }

    fn index(&self, antenna: u8) -> Result<usize, ModelError> {
        if (1..=self.antenna_count()).contains(&antenna) {
            Ok(usize::from(antenna - 1))
        } else {
            Err(ModelError::NoSuchAntenna {
                antenna,
                count: self.antenna_count(),
            })
        }
    }

    /// Replaces the field of `antenna` (1-based) with `tags`, each read with [`DEFAULT_RSSI`].
    /// A tag listed twice is in the field once.
    pub fn set_field(&mut self, antenna: u8, tags: Vec<Epc>) -> Result<(), ModelError> {
        self.set_field_with_rssi(
            antenna,
            tags.into_iter().map(|epc| (epc, DEFAULT_RSSI)).collect(),
        )
    }

    /// Replaces the field of `antenna` (1-based) with `tags` and their RSSI (0..=127). A tag
    /// listed twice keeps its first RSSI. EPCs must be whole 16-bit words, as on a tag.
    pub fn set_field_with_rssi(
        &mut self,
        antenna: u8,
        tags: Vec<(Epc, u8)>,
    ) -> Result<(), ModelError> {
        let index = self.index(antenna)?;
        if let Some(&(_, rssi)) = tags.iter().find(|(_, rssi)| *rssi > 0x7F) {
            return Err(ModelError::Rssi(rssi));
        }
        if let Some((epc, _)) = tags
            .iter()
            .find(|(epc, _)| epc.is_empty() || epc.len() % 2 != 0)
        {
            return Err(ModelError::EpcLength(epc.len()));
        }
        let mut field: Vec<FieldTag> = Vec::with_capacity(tags.len());
        for (epc, rssi) in tags {
            if !field.iter().any(|t| t.epc == epc) {
                field.push(FieldTag { epc, rssi });
            }
        }
        self.antennas[index].field = field;
        Ok(())
    }

    /// Empties the field of every antenna (connections and settings stay).
    pub fn clear(&mut self) {
        for antenna in &mut self.antennas {
            antenna.field.clear();
        }
    }

    /// Unplugs antenna `antenna` (1-based): its tags stay in its field but cannot be read, and
    /// inventories on it fail the way a real reader's do.
    pub fn disconnect(&mut self, antenna: u8) -> Result<(), ModelError> {
        let index = self.index(antenna)?;
        self.antennas[index].connected = false;
        Ok(())
    }

    /// Plugs antenna `antenna` (1-based) back in.
    pub fn connect(&mut self, antenna: u8) -> Result<(), ModelError> {
        let index = self.index(antenna)?;
        self.antennas[index].connected = true;
        Ok(())
    }

    /// Makes the reader stop answering (`true`: host bytes are dropped unread, nothing is
    /// written) or start again (`false`).
    pub fn silence(&mut self, on: bool) {
        self.silent = on;
    }

    /// Whether the reader is silenced.
    pub fn is_silent(&self) -> bool {
        self.silent
    }

    /// Queues `bytes` to be written to the host just before the next frame.
    pub fn inject_garbage(&mut self, bytes: &[u8]) {
        self.faults.garbage.extend(bytes);
    }

    /// Breaks the checksum of each of the next `n` frames the reader writes (adds to any count
    /// still pending).
    pub fn corrupt_next(&mut self, n: u32) {
        self.faults.corrupt_frames = self.faults.corrupt_frames.saturating_add(n);
    }

    /// Garbage bytes queued and frames still to be corrupted.
    pub fn pending_faults(&self) -> (usize, u32) {
        (self.faults.garbage.len(), self.faults.corrupt_frames)
    }

    /// Sets the output power of antenna 1, 2, .. to `dbm[0]`, `dbm[1]`, ..; values past the
    /// last antenna are ignored.
    pub fn set_powers(&mut self, dbm: &[u8]) {
        for (antenna, &p) in self.antennas.iter_mut().zip(dbm) {
            antenna.power_dbm = p;
        }
    }

    /// Sets the output power of every antenna, in dBm.
    pub fn set_power_all(&mut self, dbm: u8) {
        for antenna in &mut self.antennas {
            antenna.power_dbm = dbm;
        }
    }

    /// The reader's temperature in degrees Celsius.
    pub fn temperature_c(&self) -> i16 {
        self.temperature_c
    }

    /// Sets the reader's temperature in degrees Celsius.
    pub fn set_temperature_c(&mut self, celsius: i16) {
        self.temperature_c = celsius;
    }

    /// The levels of the two input pins (GPIO1, GPIO2 on the 0xA0 family).
    pub fn gpio_inputs(&self) -> [bool; 2] {
        self.gpio_inputs
    }

    /// Sets the levels of the two input pins.
    pub fn set_gpio_inputs(&mut self, levels: [bool; 2]) {
        self.gpio_inputs = levels;
    }

    /// The levels of the two output pins (GPIO3, GPIO4 on the 0xA0 family) as the host last
    /// drove them.
    pub fn gpio_outputs(&self) -> [bool; 2] {
        self.gpio_outputs
    }

    /// Records a host driving output pin `index` (0 or 1).
    pub(crate) fn drive_gpio_output(&mut self, index: usize, level: bool) {
        if let Some(pin) = self.gpio_outputs.get_mut(index) {
            *pin = level;
        }
    }

    /// What the reader has done so far.
    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    pub(crate) fn stats_mut(&mut self) -> &mut ReaderStats {
        &mut self.stats
    }

    /// Writes one frame to `out`, applying pending faults: queued garbage first, then the
    /// frame, its last byte inverted if a corruption is pending. Writes nothing while silent.
    pub(crate) fn emit_frame(&mut self, frame: &[u8], out: &mut Vec<u8>) {
        if self.silent || frame.is_empty() {
            return;
        }
        let garbage = self.faults.garbage.len();
        out.extend(self.faults.garbage.drain(..));
        self.stats.garbage_bytes_sent += garbage as u64;
        let start = out.len();
        out.extend_from_slice(frame);
        if self.faults.corrupt_frames > 0 {
            self.faults.corrupt_frames -= 1;
            self.stats.corrupted_frames += 1;
            // The frame is not empty (checked above), so out has a last byte.
            if let Some(last) = out[start..].last_mut() {
                *last ^= 0xFF;
            }
        }
        self.stats.frames_sent += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epc(hex: &str) -> Epc {
        Epc::from_hex(hex).unwrap()
    }

    #[test]
    fn antennas_are_one_based_and_bounded() {
        let mut m = ReaderModel::with_address(1);
        assert_eq!(m.antenna_count(), 4);
        assert_eq!(
            m.set_field(0, vec![]),
            Err(ModelError::NoSuchAntenna {
                antenna: 0,
                count: 4
            })
        );
        assert_eq!(
            m.disconnect(5),
            Err(ModelError::NoSuchAntenna {
                antenna: 5,
                count: 4
            })
        );
        assert!(m.connect(4).is_ok());
        assert_eq!(ReaderModel::new(1, 0), Err(ModelError::AntennaCount(0)));
        assert_eq!(ReaderModel::new(1, 9), Err(ModelError::AntennaCount(9)));
        let eight = ReaderModel::new(1, 8).unwrap();
        assert_eq!(
            eight.antennas().map(|(n, _)| n).collect::<Vec<_>>(),
            (1..=8).collect::<Vec<u8>>()
        );
        assert_eq!(
            ModelError::NoSuchAntenna {
                antenna: 9,
                count: 8
            }
            .to_string(),
            "antenna 9 out of range 1..=8"
        );
    }

    #[test]
    fn set_field_replaces_dedups_and_clear_empties_all() {
        let mut m = ReaderModel::with_address(1);
        let a = epc("3074257BF7194E4000001A85");
        let b = epc("E2003098881900722140369E");
        m.set_field(2, vec![a, b, a]).unwrap();
        assert_eq!(
            m.antenna(2).unwrap().field(),
            &[
                FieldTag {
                    epc: a,
                    rssi: DEFAULT_RSSI
                },
                FieldTag {
                    epc: b,
                    rssi: DEFAULT_RSSI
                }
            ]
        );
        m.set_field(2, vec![b]).unwrap();
        assert_eq!(m.antenna(2).unwrap().field().len(), 1);
        m.set_field(3, vec![a]).unwrap();
        m.clear();
        assert!(m.antennas().all(|(_, ant)| ant.field().is_empty()));
        assert_eq!(
            m.set_field_with_rssi(1, vec![(a, 0x80)]),
            Err(ModelError::Rssi(0x80))
        );
        assert_eq!(m.set_field(1, vec![epc("")]), Err(ModelError::EpcLength(0)));
        assert_eq!(
            m.set_field(1, vec![a, epc("E20030")]),
            Err(ModelError::EpcLength(3))
        );
        // A refused field leaves the old one in place.
        assert!(m.antenna(1).unwrap().field().is_empty());
        m.set_field(1, vec![epc("3074")]).unwrap();
    }

    #[test]
    fn disconnected_antenna_keeps_its_field_but_reads_nothing() {
        let mut m = ReaderModel::with_address(1);
        let a = epc("3074257BF7194E4000001A85");
        m.set_field(1, vec![a]).unwrap();
        m.disconnect(1).unwrap();
        assert!(!m.antenna(1).unwrap().is_connected());
        assert!(m.antenna(1).unwrap().readable().is_empty());
        assert_eq!(m.antenna(1).unwrap().field().len(), 1);
        m.connect(1).unwrap();
        assert_eq!(m.antenna(1).unwrap().readable().len(), 1);
    }

    #[test]
    fn emit_frame_applies_garbage_then_corruption_once_each() {
        let mut m = ReaderModel::with_address(1);
        m.inject_garbage(&[0x00, 0xFF]);
        m.corrupt_next(1);
        assert_eq!(m.pending_faults(), (2, 1));
        let mut out = Vec::new();
        m.emit_frame(&[0xA0, 0x03, 0x01, 0x72, 0xEA], &mut out);
        assert_eq!(out, [0x00, 0xFF, 0xA0, 0x03, 0x01, 0x72, 0x15]);
        out.clear();
        m.emit_frame(&[0xA0, 0x03, 0x01, 0x72, 0xEA], &mut out);
        assert_eq!(out, [0xA0, 0x03, 0x01, 0x72, 0xEA]);
        assert_eq!(m.pending_faults(), (0, 0));
        let s = m.stats();
        assert_eq!(
            (s.frames_sent, s.corrupted_frames, s.garbage_bytes_sent),
            (2, 1, 2)
        );
    }

    #[test]
    fn silence_writes_nothing_and_keeps_faults_queued() {
        let mut m = ReaderModel::with_address(1);
        m.inject_garbage(&[0x55]);
        m.silence(true);
        let mut out = Vec::new();
        m.emit_frame(&[0xA0, 0x03, 0x01, 0x72, 0xEA], &mut out);
        assert!(out.is_empty());
        assert_eq!(m.pending_faults(), (1, 0));
        m.silence(false);
        m.emit_frame(&[0xA0, 0x03, 0x01, 0x72, 0xEA], &mut out);
        assert_eq!(out[0], 0x55);
    }
}
