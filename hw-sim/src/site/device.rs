//! One device of a running site — its simulated hardware, its daemon, and the gestures that
//! steer them (a passage, a shelf change, a scan) — and the `custosd.toml` it is started from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use custos_daemon::app::{Running, StartOptions, start_with};
use custos_daemon::keys::PublicKey;
use custos_protocol::epc::Epc;
use custos_protocol::uplink::Direction;
use tokio::sync::broadcast;

use super::SiteError;
use super::control_client::{Endpoint, field};
use super::options::DaemonTuning;
use crate::control::ControlOp;
use crate::gate_io::CoilChange;

/// The shortest time a tag stays in one antenna's field during a passage: the gate smoothing
/// needs a few inventory rounds (`min_reads`) to count it present.
pub const MIN_DWELL: Duration = Duration::from_millis(300);

/// The shortest time between the end of one passage and the start of the next at the same
/// gate: the gate smoothing needs its hold-off (1.5 s) to see everyone gone, and the passage gap
/// (2 s) to tell two passages apart.
pub const PASSAGE_GAP: Duration = Duration::from_secs(3);

/// Antennas of every simulated UHF reader (a gate: 1-2 inside, 3-4 outside; a cabinet: four
/// shelves).
pub(super) const ANTENNAS: u8 = 4;

/// What a device of the site is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceRole {
    /// A door with a UHF reader and a gate I/O module.
    Gate,
    /// A cabinet whose UHF reader counts its shelves.
    Cabinet,
    /// A desk with a barcode scanner.
    Desk,
}

impl DeviceRole {
    /// The API's device kind.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            DeviceRole::Gate => "gate",
            DeviceRole::Cabinet => "cabinet",
            DeviceRole::Desk => "desk",
        }
    }
}

/// One device of the site: its simulated hardware, its daemon and where to steer them.
#[derive(Debug)]
pub struct SiteDevice {
    /// Device id, as registered.
    pub id: String,
    /// What it is.
    pub role: DeviceRole,
    /// A gate's secure side.
    pub inside_zone: Option<&'static str>,
    /// A gate's public side.
    pub outside_zone: Option<&'static str>,
    /// A cabinet's or desk's zone.
    pub zone: Option<&'static str>,
    /// The pty link of its reader (UHF reader or scanner).
    pub reader_link: PathBuf,
    /// The reader's control socket.
    pub reader_control: PathBuf,
    /// A gate's I/O module: its Modbus TCP address.
    pub io_addr: Option<SocketAddr>,
    /// A gate's I/O module: its control socket.
    pub io_control: Option<PathBuf>,
    /// An LLRP portal gate's reader: its address (`reader_link` is then empty: no pty; the
    /// alarm is on the reader's GPOs, seen through `subscribe_coils` as coils 0 and 1).
    pub llrp_addr: Option<SocketAddr>,
    /// The daemon's configuration file.
    pub config_path: PathBuf,
    pub(super) reader: Endpoint,
    pub(super) coils: Option<broadcast::Sender<CoilChange>>,
    /// A cabinet's shelves: the tags in each antenna's field.
    pub(super) shelves: Mutex<Vec<Vec<Epc>>>,
    /// Serialises passages at a gate; when the last one ended.
    pub(super) last_passage: tokio::sync::Mutex<Option<Instant>>,
    pub(super) daemon: Mutex<Option<Running>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SiteDevice {
    /// Sends a control op to its reader (UHF reader or scanner).
    ///
    /// # Errors
    /// [`SiteError::Control`] or [`SiteError::ControlRefused`].
    pub async fn reader_op(&self, op: &ControlOp) -> Result<(), SiteError> {
        self.reader.op(op).await
    }

    /// Every coil change of its gate I/O module from now on (`None` for a device without one).
    #[must_use]
    pub fn subscribe_coils(&self) -> Option<broadcast::Receiver<CoilChange>> {
        self.coils.as_ref().map(broadcast::Sender::subscribe)
    }

    /// Someone walks through the gate with `tags` (carriers and badges): they stand `dwell`
    /// (at least [`MIN_DWELL`]) in the field of the antenna on the side they come from, then in
    /// the field of the other side's, then are gone. Waits first until [`PASSAGE_GAP`] has
    /// passed since the previous passage here ended, so the smoothing tells them apart.
    ///
    /// # Errors
    /// [`SiteError::NoSuchDevice`] if this is not a gate; control socket errors.
    pub async fn pass(
        &self,
        direction: Direction,
        tags: &[Epc],
        dwell: Duration,
    ) -> Result<(), SiteError> {
        let (first, second) = gate_sides(direction);
        self.walk_fields(&[first, second], tags, dwell).await
    }

    /// Carries `tags` from the side `direction` starts on into the other side's field, and back
    /// again: a person who turned back (at the alarm, say). The daemon announces (and decides)
    /// the crossing, then reports that the carriers did not pass.
    ///
    /// # Errors
    /// [`SiteError::NoSuchDevice`] if this is not a gate; control socket errors.
    pub async fn turn_back(
        &self,
        direction: Direction,
        tags: &[Epc],
        dwell: Duration,
    ) -> Result<(), SiteError> {
        let (first, second) = gate_sides(direction);
        self.walk_fields(&[first, second, first], tags, dwell).await
    }

    /// Puts `tags` in each antenna's field in turn for `dwell`, after the previous passage's gap.
    async fn walk_fields(
        &self,
        antennas: &[u8],
        tags: &[Epc],
        dwell: Duration,
    ) -> Result<(), SiteError> {
        if self.role != DeviceRole::Gate {
            return Err(SiteError::NoSuchDevice(format!(
                "{} is not a gate",
                self.id
            )));
        }
        let mut last = self.last_passage.lock().await;
        if let Some(ended) = *last {
            tokio::time::sleep_until((ended + PASSAGE_GAP).into()).await;
        }
        let dwell = dwell.max(MIN_DWELL);
        let result = async {
            for &antenna in antennas {
                self.reader_op(&field(antenna, tags)).await?;
                tokio::time::sleep(dwell).await;
                self.reader_op(&field(antenna, &[])).await?;
            }
            Ok(())
        }
        .await;
        *last = Some(Instant::now());
        result
    }

    /// Puts a tag on a cabinet's shelves (the least filled antenna). `false` if it is there.
    ///
    /// # Errors
    /// [`SiteError::NoSuchDevice`] if this is not a cabinet; control socket errors.
    pub async fn shelve(&self, epc: Epc) -> Result<bool, SiteError> {
        let update = {
            let mut shelves = self.cabinet_shelves()?;
            if shelves.iter().any(|s| s.contains(&epc)) {
                return Ok(false);
            }
            let (i, shelf) = shelves
                .iter_mut()
                .enumerate()
                .min_by_key(|(_, s)| s.len())
                .ok_or_else(|| SiteError::NoSuchDevice(format!("{} has no shelves", self.id)))?;
            shelf.push(epc);
            (i, shelf.clone())
        };
        self.send_shelf(update).await?;
        Ok(true)
    }

    /// Takes a tag off a cabinet's shelves. `false` if it was not there.
    ///
    /// # Errors
    /// [`SiteError::NoSuchDevice`] if this is not a cabinet; control socket errors.
    pub async fn unshelve(&self, epc: &Epc) -> Result<bool, SiteError> {
        let update = {
            let mut shelves = self.cabinet_shelves()?;
            let Some((i, shelf)) = shelves
                .iter_mut()
                .enumerate()
                .find(|(_, s)| s.contains(epc))
            else {
                return Ok(false);
            };
            shelf.retain(|t| t != epc);
            (i, shelf.clone())
        };
        self.send_shelf(update).await?;
        Ok(true)
    }

    /// What is on a cabinet's shelves (empty for other devices).
    #[must_use]
    pub fn shelf_contents(&self) -> Vec<Epc> {
        lock(&self.shelves).iter().flatten().copied().collect()
    }

    fn cabinet_shelves(&self) -> Result<std::sync::MutexGuard<'_, Vec<Vec<Epc>>>, SiteError> {
        if self.role != DeviceRole::Cabinet {
            return Err(SiteError::NoSuchDevice(format!(
                "{} is not a cabinet",
                self.id
            )));
        }
        Ok(lock(&self.shelves))
    }

    async fn send_shelf(&self, (i, tags): (usize, Vec<Epc>)) -> Result<(), SiteError> {
        // i < ANTENNAS.
        let antenna = u8::try_from(i + 1).unwrap_or(1);
        self.reader_op(&field(antenna, &tags)).await
    }

    /// Scans a barcode at the desk.
    ///
    /// # Errors
    /// [`SiteError::NoSuchDevice`] if this is not a desk; control socket errors.
    pub async fn scan(&self, text: &str) -> Result<(), SiteError> {
        if self.role != DeviceRole::Desk {
            return Err(SiteError::NoSuchDevice(format!(
                "{} is not a desk",
                self.id
            )));
        }
        self.reader_op(&ControlOp::Scan {
            text: text.to_owned(),
        })
        .await
    }

    /// Calls `f` with the running daemon (`None` while it is stopped).
    pub fn with_daemon<T>(&self, f: impl FnOnce(&Running) -> T) -> Option<T> {
        lock(&self.daemon).as_ref().map(f)
    }

    /// Whether its daemon runs.
    #[must_use]
    pub fn daemon_running(&self) -> bool {
        lock(&self.daemon).is_some()
    }

    /// Stops its daemon (as if its host were switched off cleanly). `false` if it was stopped.
    pub async fn stop_daemon(&self) -> bool {
        let running = lock(&self.daemon).take();
        match running {
            Some(running) => {
                running.stop().await;
                true
            }
            None => false,
        }
    }

    /// Starts its daemon from its configuration file (again). Does nothing if it runs.
    ///
    /// # Errors
    /// The configuration, key or start failed.
    pub async fn start_daemon(&self) -> Result<(), SiteError> {
        if self.daemon_running() {
            return Ok(());
        }
        let config = custos_daemon::config::Config::load(&self.config_path)?;
        let key = config.device_key()?;
        let running = start_with(config, key, StartOptions::default())
            .await
            .map_err(|source| SiteError::Daemon {
                id: self.id.clone(),
                source,
            })?;
        *lock(&self.daemon) = Some(running);
        Ok(())
    }
}

/// The antenna a person walking `direction` meets first, and the one on the far side: inner
/// antennas are 1–2, outer 3–4.
fn gate_sides(direction: Direction) -> (u8, u8) {
    match direction {
        Direction::Out => (1, 3),
        Direction::In => (4, 2),
    }
}

/// What a daemon's configuration file is made from.
pub(super) struct DaemonToml<'a> {
    pub(super) id: &'a str,
    pub(super) role: DeviceRole,
    pub(super) server: &'a str,
    pub(super) server_key: PublicKey,
    pub(super) key_path: &'a Path,
    pub(super) dir: &'a Path,
    pub(super) link: &'a Path,
    pub(super) io_addr: Option<SocketAddr>,
    /// An LLRP portal gate's reader (its alarm light and sounder on GPOs 1 and 2).
    pub(super) llrp: Option<SocketAddr>,
    pub(super) tuning: DaemonTuning,
}

/// The `custosd.toml` of a device (see the daemon's `print-config` for every key).
pub(super) fn daemon_toml(d: DaemonToml<'_>) -> String {
    let path = |p: &Path| toml_str(&p.to_string_lossy());
    let mut out = format!(
        "# custosd configuration written by custos-sim's site builder.\n\
         device_id = {}\nserver = {}\nkey_file = {}\ndata_dir = {}\nserver_public_key = {}\n\n",
        toml_str(d.id),
        toml_str(d.server),
        path(d.key_path),
        path(d.dir),
        toml_str(&d.server_key.to_string()),
    );
    match d.role {
        DeviceRole::Gate if d.llrp.is_some() => out.push_str(&format!(
            "[[readers]]\nname = \"uhf\"\nprotocol = \"llrp\"\naddress = \"{}\"\n\
             inner_antennas = [1, 2]\nouter_antennas = [3, 4]\nalarm_gpo = 1\nsounder_gpo = 2\n\n",
            d.llrp.map(|a| a.to_string()).unwrap_or_default()
        )),
        DeviceRole::Gate => out.push_str(&format!(
            "[[readers]]\nname = \"uhf\"\nprotocol = \"uhf-a0\"\nport = {}\naddress = 1\n\
             inner_antennas = [1, 2]\nouter_antennas = [3, 4]\n\n",
            path(d.link)
        )),
        DeviceRole::Cabinet => out.push_str(&format!(
            "[[readers]]\nname = \"shelves\"\nprotocol = \"uhf-a0\"\nport = {}\naddress = 1\n\
             antennas = [1, 2, 3, 4]\n\n",
            path(d.link)
        )),
        DeviceRole::Desk => out.push_str(&format!(
            "[[readers]]\nname = \"scanner\"\nprotocol = \"barcode\"\nport = {}\n\n",
            path(d.link)
        )),
    }
    if let Some(addr) = d.io_addr {
        out.push_str(&format!(
            "[gate_io]\ntransport = \"tcp\"\naddress = \"{addr}\"\nunit = 1\nalarm_coil = 0\n\
             buzzer_coil = 1\nlock_coil = 2\n\n"
        ));
    }
    out.push_str(&format!(
        "[alarm]\nduration_ms = {}\nlock_door = false\n",
        d.tuning.alarm_duration.as_millis()
    ));
    out
}

/// TOML basic string (quotes added).
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_str(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(toml_str("x\ny"), r#""x\u000Ay""#);
    }

    #[test]
    fn a_daemon_config_parses() {
        let key = PublicKey::from_bytes([7; 32]);
        for (role, io) in [
            (DeviceRole::Gate, Some("127.0.0.1:5020".parse().unwrap())),
            (DeviceRole::Cabinet, None),
            (DeviceRole::Desk, None),
        ] {
            let text = daemon_toml(DaemonToml {
                id: "dev-1",
                role,
                server: "http://127.0.0.1:8080",
                server_key: key,
                key_path: Path::new("/x/device.key"),
                dir: Path::new("/x"),
                link: Path::new("/x/link \"q\""),
                io_addr: io,
                llrp: None,
                tuning: DaemonTuning::default(),
            });
            let config = custos_daemon::config::Config::parse(&text, Path::new("/x/custosd.toml"))
                .unwrap_or_else(|e| panic!("{role:?}: {e}\n{text}"));
            assert_eq!(config.device_id, "dev-1");
            assert_eq!(config.server_public_key, Some(key));
            assert_eq!(config.readers[0].port, Path::new("/x/link \"q\""));
            assert_eq!(config.gate_io.is_some(), role == DeviceRole::Gate);
            let expected = match role {
                DeviceRole::Gate => custos_daemon::config::Role::Gate,
                DeviceRole::Cabinet => custos_daemon::config::Role::Cabinet,
                DeviceRole::Desk => custos_daemon::config::Role::Desk,
            };
            assert_eq!(config.role(), expected);
        }
    }
}
