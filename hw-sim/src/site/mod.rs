//! A simulated site in one process: the server, the simulated readers and gate I/O modules, and
//! one daemon per device, wired through the real paths. `custos-sim demo` plays a working day on
//! it; a load benchmark builds one with many gates.
//!
//! # What [`Site::build`] starts
//! - the server (`custos_server`), in-process, on `127.0.0.1:<port>`: its data directory
//!   `<data_dir>/server/` is initialised (database, signing key, first administrator) and it is
//!   launched with [`custos_server::launch`] on the first free port from
//!   [`SiteOptions::listen_from`] (up to 20 ports further, then any free port);
//! - per gate: a simulated 0xA0 UHF reader on a pty (`<data_dir>/links/<id>-uhf`, antennas 1-2
//!   inside, 3-4 outside) and a simulated Modbus TCP gate I/O module on `127.0.0.1:0`; per
//!   cabinet: a simulated 0xA0 reader whose four antennas are its shelves; for the desk: a
//!   simulated barcode scanner. Each has a control socket under `<data_dir>/control/`;
//! - per device: a fresh Ed25519 key, the device registered through the HTTP API with the admin
//!   login (gate: inside and outside zone; cabinet, desk: zone), a `custosd.toml` under
//!   `<data_dir>/devices/<id>/`, and the daemon started in-process with
//!   [`custos_daemon::app::start_with`]: real serial reader driver on the pty, real Modbus
//!   client, real signed HTTP uplink to the in-process server whose key it pins;
//! - the seed ([`SeedOptions`]): one account per role with generated passwords, zones of every
//!   level, people of the three categories, carriers of every kind and level with GIAI-96 EPC
//!   and `CU` barcode labels. Everything but the passwords comes from a seeded RNG, so two
//!   builds with the same seed register the same site. Carriers with a home cabinet are put on
//!   its shelves (the simulated reader's field) before its daemon starts, so the first count
//!   finds them all.
//!
//! Seeding goes through the HTTP API, with the logins of the roles a person would use (the
//! security officer registers people, the custodian carriers): the server's capability types
//! cannot be had any other way, which is the point of them.
//!
//! # The data directory is reset at every build
//! A build wipes what a previous build left in `data_dir` and starts afresh, so a scenario
//! always meets the state it expects (a second run on `./custos-demo/` is a new day one, not
//! the leftovers of the last one). To make that safe, a build marks the directory with a file
//! ([`MARKER`]) and refuses to wipe a non-empty directory without it, or one whose control
//! sockets still answer (another site is running there).
//!
//! # Stopping
//! [`Site::shutdown`] stops, in order: the daemons (each flushes its outbox to the still-running
//! server), the simulated devices (which removes their pty links and control sockets), the
//! server (which signs the audit chain head).
//!
//! # Where things are
//! This file holds [`Site`]: building it, steering it, stopping it. Beside it: `options` (what to
//! build), `seed` (accounts, zones, people and carriers), `api` (the HTTP client), `device`
//! ([`SiteDevice`] and its daemon's configuration) and `control_client` (the control sockets).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use custos_daemon::keys::{DeviceKey, PublicKey};
use custos_protocol::epc::Epc;
use custos_server::AppState;
use custos_server::domain::time::Timestamp;
use custos_server::keys::{KEY_FILE, ServerKey};
use custos_server::store::{DB_FILE, Store, StoreOptions};
use serde_json::json;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::barcode::{BarcodeScanner, Terminator};
use crate::gate_io::{CoilChange, GateIo as SimGateIo, run_gate_io};
use crate::llrp_reader::{GpoChange, LlrpReader, run_llrp_reader};
use crate::reader::{Protocol, SimReader};
use crate::uhf_reader::UhfReaderDevice;
use crate::{ControlSocket, PtyLink, SimError, run_serial_device};

mod api;
mod control_client;
mod device;
mod options;
mod seed;

pub use api::{ApiClient, HttpError};
pub use control_client::ControlClient;
pub use device::{DeviceRole, MIN_DWELL, PASSAGE_GAP, SiteDevice};
pub use options::{DaemonTuning, SeedOptions, ServerTuning, SiteOptions};
pub use seed::{
    COMPANY_PREFIX, Category, Level, Login, SeedCarrier, SeedPerson, SeedRng, Seeded, ZONES, Zone,
    badge_epc, carrier_epc,
};

use control_client::Endpoint;
use device::{ANTENNAS, DaemonToml, daemon_toml};
use seed::generate_password;

/// The file that marks a directory as a site's, so that a build may wipe it.
pub const MARKER: &str = ".custos-site";

/// How many ports past [`SiteOptions::listen_from`] are tried before any free port.
const PORT_TRIES: u16 = 20;

/// The longest a build waits for the cabinets' first counts to reach the server.
const FIRST_COUNT_WAIT: Duration = Duration::from_secs(60);

/// Why a site could not be built or steered.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// The data directory could not be prepared.
    #[error("{}", path.display())]
    Dir {
        /// The path.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The data directory holds something that is not a site's: it is not wiped.
    #[error(
        "{} is not empty and was not made by a site (no {MARKER} in it): refusing to wipe it; \
         choose another --data-dir",
        .0.display()
    )]
    NotASiteDir(PathBuf),
    /// Another site is running on the data directory.
    #[error("{}: a site is running there (its control socket {} answers)", dir.display(), socket.display())]
    InUse {
        /// The data directory.
        dir: PathBuf,
        /// The live socket.
        socket: PathBuf,
    },
    /// The server's data directory could not be initialised.
    #[error("cannot initialise the server's data directory")]
    Init(#[from] custos_server::cli::InitError),
    /// The server's database did not open.
    #[error("cannot open the server's database")]
    Store(#[from] custos_server::store::StoreError),
    /// The server's key did not load.
    #[error("cannot load the server's key")]
    ServerKey(#[from] custos_server::keys::KeyError),
    /// No port to listen on (or not the one asked for).
    #[error("cannot listen there")]
    Listen(#[source] std::io::Error),
    /// A simulated device could not start.
    #[error("a simulated device failed")]
    Sim(#[from] SimError),
    /// A request to the server failed.
    #[error("a request to the server failed")]
    Http(#[from] HttpError),
    /// A device key could not be made.
    #[error("cannot make a device key")]
    DeviceKey(#[from] custos_daemon::keys::KeyError),
    /// A daemon configuration was refused.
    #[error("a daemon configuration was refused")]
    DaemonConfig(#[from] custos_daemon::config::ConfigError),
    /// A daemon did not start.
    #[error("daemon {id} did not start")]
    Daemon {
        /// The device.
        id: String,
        /// What failed.
        #[source]
        source: custos_daemon::app::RunError,
    },
    /// A control socket could not be reached.
    #[error("control socket {}", path.display())]
    Control {
        /// The socket.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A simulated device refused a control op.
    #[error("control socket {}: op refused: {error}", path.display())]
    ControlRefused {
        /// The socket.
        path: PathBuf,
        /// The device's answer.
        error: String,
    },
    /// The site has no such device, or the device cannot do this.
    #[error("{0}")]
    NoSuchDevice(String),
    /// An EPC could not be encoded.
    #[error("epc: {0}")]
    Epc(String),
    /// A server answer lacked what it should hold.
    #[error("unexpected answer: {0}")]
    Answer(String),
    /// The server stopped with an error.
    #[error("the server stopped with an error")]
    Server(#[from] custos_server::LaunchError),
}

/// A running site. Stop it with [`Site::shutdown`].
#[derive(Debug)]
pub struct Site {
    data_dir: PathBuf,
    wiped: bool,
    addr: SocketAddr,
    url: String,
    state: AppState,
    alerts: Option<broadcast::Receiver<i64>>,
    logins: Vec<Login>,
    seeded: Seeded,
    devices: Vec<SiteDevice>,
    sims: Vec<JoinHandle<Result<(), SimError>>>,
    forwarders: Vec<JoinHandle<()>>,
    sim_stop: watch::Sender<bool>,
    server_stop: watch::Sender<bool>,
    server: Option<JoinHandle<Result<(), custos_server::LaunchError>>>,
}

/// Prepares `dir`: creates it, or wipes what a previous site left in it. `true` if wiped.
fn prepare_dir(dir: &Path) -> Result<bool, SiteError> {
    let dir_err = |path: &Path| {
        let path = path.to_owned();
        move |source| SiteError::Dir { path, source }
    };
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(dir_err(dir))?;
            Ok(false)
        }
        Err(e) => Err(dir_err(dir)(e)),
        Ok(mut entries) => {
            if entries.next().is_none() {
                return Ok(false);
            }
            if !dir.join(MARKER).is_file() {
                return Err(SiteError::NotASiteDir(dir.to_owned()));
            }
            if let Ok(sockets) = std::fs::read_dir(dir.join("control")) {
                for socket in sockets.flatten() {
                    let path = socket.path();
                    if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                        return Err(SiteError::InUse {
                            dir: dir.to_owned(),
                            socket: path,
                        });
                    }
                }
            }
            for entry in std::fs::read_dir(dir).map_err(dir_err(dir))?.flatten() {
                let path = entry.path();
                let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
                let removed = if is_dir {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.map_err(dir_err(&path))?;
            }
            Ok(true)
        }
    }
}

/// Binds 127.0.0.1 on the first free port from `from` (0: any free port).
async fn bind_from(from: u16) -> Result<tokio::net::TcpListener, SiteError> {
    if from != 0 {
        for port in from..=from.saturating_add(PORT_TRIES) {
            match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
                Ok(listener) => return Ok(listener),
                Err(e) => tracing::debug!(port, "cannot listen: {e}"),
            }
        }
    }
    tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(SiteError::Listen)
}

/// A device's simulated hardware, as started.
struct Hardware {
    reader_link: PathBuf,
    reader_control: PathBuf,
    io: Option<(SocketAddr, PathBuf, broadcast::Sender<CoilChange>)>,
    /// An LLRP portal's reader: its address, and its GPO changes as coil changes.
    llrp: Option<(SocketAddr, broadcast::Sender<CoilChange>)>,
}

/// The gate whose reader is an LLRP portal reader (`custos-sim llrp-reader`, in process) with
/// the alarm light and sounder on its GPOs 1 and 2, instead of a serial reader and a Modbus
/// gate I/O module: the demo's day runs through both kinds of gate.
pub const LLRP_GATE: &str = "gate-west";

impl Site {
    /// Builds and starts the site (see the module docs).
    ///
    /// # Errors
    /// Whatever failed first; what had started is stopped again.
    pub async fn build(options: SiteOptions) -> Result<Site, SiteError> {
        let wiped = prepare_dir(&options.data_dir)?;
        let dir_err = |path: &Path| {
            let path = path.to_owned();
            move |source| SiteError::Dir { path, source }
        };
        std::fs::write(
            options.data_dir.join(MARKER),
            "made by custos-sim; wiped at the next start\n",
        )
        .map_err(dir_err(&options.data_dir))?;
        let data_dir =
            std::fs::canonicalize(&options.data_dir).map_err(dir_err(&options.data_dir))?;
        for sub in ["links", "control", "devices"] {
            std::fs::create_dir_all(data_dir.join(sub)).map_err(dir_err(&data_dir.join(sub)))?;
        }

        // The server.
        let mut config = custos_server::config::Config {
            data_dir: data_dir.join("server"),
            ..custos_server::config::Config::default()
        };
        config.cabinet_removal_grace_ms =
            u64::try_from(options.server.cabinet_removal_grace.as_millis()).unwrap_or(u64::MAX);
        config.sweep_interval_ms =
            u64::try_from(options.server.sweep_interval.as_millis()).unwrap_or(u64::MAX);
        config.tag_clone_min_travel_secs = options.server.tag_clone_min_travel_secs;
        config.supervision_interval_secs = options.server.supervision_interval_secs;
        config.smtp = options.smtp.clone();
        config.webhooks = options.webhooks.clone();
        config.notifications = options.notifications;
        let admin = Login {
            role: "admin",
            username: "admin".into(),
            password: generate_password(),
        };
        custos_server::cli::initialise(&config.data_dir, &admin.username, admin.password.clone())
            .await?;
        let key = ServerKey::load(&config.data_dir.join(KEY_FILE))?;
        let server_key = PublicKey::from_bytes(key.public_key());
        let store = Store::open(
            &config.data_dir.join(DB_FILE),
            StoreOptions {
                create: false,
                write_batch_max: config.write_batch_max,
                read_connections: config.read_connections,
            },
        )
        .await?;
        let state = AppState::new(store, key, custos_server::Settings::from(&config));
        let alerts = state.alerts().subscribe();
        let listener = match options.listen {
            Some(addr) => tokio::net::TcpListener::bind(addr)
                .await
                .map_err(SiteError::Listen)?,
            None => bind_from(options.listen_from).await?,
        };
        let addr = listener.local_addr().map_err(SiteError::Listen)?;
        let (server_stop, server_stop_rx) = watch::channel(false);
        let server = tokio::spawn(custos_server::launch(listener, state.clone(), async move {
            let mut rx = server_stop_rx;
            let _ = rx.wait_for(|stop| *stop).await;
        }));
        tracing::info!(%addr, "server running");

        let mut site = Site {
            data_dir,
            wiped,
            addr,
            url: format!("http://{addr}/"),
            state,
            alerts: Some(alerts),
            logins: vec![admin],
            seeded: Seeded::default(),
            devices: Vec::new(),
            sims: Vec::new(),
            forwarders: Vec::new(),
            sim_stop: watch::channel(false).0,
            server_stop,
            server: Some(server),
        };
        match site.populate(&options, server_key).await {
            Ok(()) => Ok(site),
            Err(e) => {
                if let Err(stop) = site.shutdown().await {
                    tracing::warn!("stopping the half-built site: {stop}");
                }
                Err(e)
            }
        }
    }

    /// Everything after the server runs: accounts, zones, devices, seed, daemons.
    async fn populate(
        &mut self,
        options: &SiteOptions,
        server_key: PublicKey,
    ) -> Result<(), SiteError> {
        let api = self.api();
        let admin = &self.logins[0];
        let admin = api.login(&admin.username, &admin.password).await?;
        for zone in ZONES {
            admin
                .post(
                    "/api/v1/zones",
                    &json!({"id": zone.id, "name": zone.name, "level": zone.level}),
                )
                .await?;
        }
        for (role, username) in [
            ("security_officer", "officer1"),
            ("security_officer", "officer2"),
            ("custodian", "custodian"),
            // A second custodian: a transfer is signed for by someone other than the sender.
            ("custodian", "custodian2"),
            ("guard", "guard"),
            ("auditor", "auditor"),
        ] {
            // An account the admin creates must set its own password at its first sign-in
            // (the admin never knows the password an officer approves with): the site does
            // that at once, and keeps only the final password.
            let initial = generate_password();
            admin
                .post("/api/v1/users", &account_body(role, username, &initial))
                .await?;
            let login = Login {
                role,
                username: username.to_owned(),
                password: generate_password(),
            };
            api.login(username, &initial)
                .await?
                .post(
                    "/api/v1/session/password",
                    &json!({"old": initial, "new": login.password}),
                )
                .await?;
            self.logins.push(login);
        }

        // Devices: hardware first (a cabinet's shelves are filled before its daemon starts).
        let mut plan: Vec<(String, DeviceRole)> = Vec::new();
        for i in 0..options.gates {
            let id = match i {
                0 => "gate-east".to_owned(),
                1 => "gate-west".to_owned(),
                _ => format!("gate-{}", i + 1),
            };
            plan.push((id, DeviceRole::Gate));
        }
        for i in 0..options.cabinets {
            plan.push((format!("cabinet-{}", i + 1), DeviceRole::Cabinet));
        }
        if options.desk {
            plan.push(("desk-1".to_owned(), DeviceRole::Desk));
        }
        for (n, (id, role)) in plan.into_iter().enumerate() {
            let (inside_zone, outside_zone, zone) = match role {
                DeviceRole::Gate => (
                    Some(if n % 2 == 0 { "registry" } else { "office" }),
                    Some("lobby"),
                    None,
                ),
                DeviceRole::Cabinet => {
                    let k = n - options.gates;
                    (
                        None,
                        None,
                        Some(if k % 2 == 0 { "vault" } else { "registry" }),
                    )
                }
                DeviceRole::Desk => (None, None, Some("registry")),
            };
            let hw = self.start_hardware(&id, role).await?;
            let device_dir = self.data_dir.join("devices").join(&id);
            std::fs::create_dir_all(&device_dir).map_err(|source| SiteError::Dir {
                path: device_dir.clone(),
                source,
            })?;
            let key_path = device_dir.join("device.key");
            let key = DeviceKey::generate(&key_path)?;
            let mut body =
                json!({"id": id, "kind": role.kind(), "public_key": key.public_key().to_string()});
            if let (Some(inside), Some(outside)) = (inside_zone, outside_zone) {
                body["inside_zone"] = json!(inside);
                body["outside_zone"] = json!(outside);
            }
            if let Some(zone) = zone {
                body["zone"] = json!(zone);
            }
            admin.post("/api/v1/devices", &body).await?;
            let config_path = device_dir.join("custosd.toml");
            let toml = daemon_toml(DaemonToml {
                id: &id,
                role,
                server: &format!("http://{}", self.addr),
                server_key,
                key_path: &key_path,
                dir: &device_dir,
                link: &hw.reader_link,
                io_addr: hw.io.as_ref().map(|(a, _, _)| *a),
                llrp: hw.llrp.as_ref().map(|(a, _)| *a),
                tuning: options.daemon,
            });
            std::fs::write(&config_path, toml).map_err(|source| SiteError::Dir {
                path: config_path.clone(),
                source,
            })?;
            let (io_addr, io_control, coils) = match hw.io {
                Some((a, c, tx)) => (Some(a), Some(c), Some(tx)),
                None => (None, None, hw.llrp.as_ref().map(|(_, tx)| tx.clone())),
            };
            self.devices.push(SiteDevice {
                id,
                role,
                inside_zone,
                outside_zone,
                zone,
                reader: Endpoint::new(hw.reader_control.clone()),
                reader_link: hw.reader_link,
                reader_control: hw.reader_control,
                io_addr,
                io_control,
                llrp_addr: hw.llrp.map(|(a, _)| a),
                config_path,
                coils,
                shelves: Mutex::new(vec![
                    Vec::new();
                    if role == DeviceRole::Cabinet {
                        usize::from(ANTENNAS)
                    } else {
                        0
                    }
                ]),
                last_passage: tokio::sync::Mutex::new(None),
                daemon: Mutex::new(None),
            });
        }

        self.seed(&api, options.seed).await?;
        for carrier in &self.seeded.carriers {
            if let Some(home) = &carrier.home {
                if let Some(cabinet) = self.device(home) {
                    cabinet.shelve(carrier.epc).await?;
                }
            }
        }
        for device in &self.devices {
            device.start_daemon().await?;
        }
        self.wait_for_first_counts(&api).await
    }

    /// Waits until the server has taken every cabinet's first count: every carrier on its
    /// shelves was last seen there. Before that, a carrier issued and then taken from its
    /// cabinet would look "returned" to the server when the first count lists it.
    async fn wait_for_first_counts(&self, api: &ApiClient) -> Result<(), SiteError> {
        let shelved: Vec<(String, Vec<Epc>)> = self
            .with_role(DeviceRole::Cabinet)
            .map(|d| (d.id.clone(), d.shelf_contents()))
            .filter(|(_, tags)| !tags.is_empty())
            .collect();
        if shelved.is_empty() {
            return Ok(());
        }
        let custodian = self.session(api, "custodian").await?;
        let deadline = Instant::now() + FIRST_COUNT_WAIT;
        loop {
            // One page of the largest size: the register is paged (100 a page by default).
            let list = custodian.get("/api/v1/carriers?limit=500").await?;
            let seen_at: HashMap<&str, &str> = list
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| Some((c["id"].as_str()?, c["last_seen"]["device_id"].as_str()?)))
                .collect();
            let counted = shelved.iter().all(|(cabinet, tags)| {
                tags.iter().all(|epc| {
                    self.seeded
                        .carrier_by_epc(epc)
                        .is_some_and(|c| seen_at.get(c.id.as_str()) == Some(&cabinet.as_str()))
                })
            });
            if counted {
                tracing::info!("every cabinet's first count is in");
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(SiteError::Answer(format!(
                    "the cabinets' first counts did not reach the server within {FIRST_COUNT_WAIT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Starts a device's simulated reader (and a gate's I/O module).
    async fn start_hardware(&mut self, id: &str, role: DeviceRole) -> Result<Hardware, SiteError> {
        let links = self.data_dir.join("links");
        let control = self.data_dir.join("control");
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let suffix = if role == DeviceRole::Desk {
            "scanner"
        } else {
            "uhf"
        };
        let reader_link = links.join(format!("{id}-{suffix}"));
        let reader_control = control.join(format!("{id}-{suffix}.sock"));
        if role == DeviceRole::Gate && id == LLRP_GATE {
            let llrp = self.start_llrp_reader(&reader_control).await?;
            return Ok(Hardware {
                reader_link: PathBuf::new(),
                reader_control,
                io: None,
                llrp: Some(llrp),
            });
        }
        let pty = PtyLink::open(&reader_link)?;
        let socket = ControlSocket::bind(&reader_control)?;
        let stop = stopped(self.sim_stop.subscribe());
        let task = match role {
            DeviceRole::Desk => tokio::spawn(run_serial_device(
                BarcodeScanner::new(Terminator::Cr, None),
                pty,
                Some(socket),
                stop,
            )),
            DeviceRole::Gate | DeviceRole::Cabinet => tokio::spawn(run_serial_device(
                UhfReaderDevice::new(SimReader::new(Protocol::A0, 1)),
                pty,
                Some(socket),
                stop,
            )),
        };
        self.sims.push(task);
        let io = if role == DeviceRole::Gate {
            let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .map_err(|source| SimError::Listen {
                    addr: "127.0.0.1:0".into(),
                    source,
                })?;
            let addr = listener.local_addr().map_err(|source| SimError::Listen {
                addr: "127.0.0.1:0".into(),
                source,
            })?;
            let io_control = control.join(format!("{id}-io.sock"));
            let socket = ControlSocket::bind(&io_control)?;
            let (tx, mut rx) = mpsc::unbounded_channel::<CoilChange>();
            let (coils, _) = broadcast::channel(256);
            let forward = coils.clone();
            self.forwarders.push(tokio::spawn(async move {
                while let Some(change) = rx.recv().await {
                    let _ = forward.send(change);
                }
            }));
            self.sims.push(tokio::spawn(run_gate_io(
                listener,
                SimGateIo::default(),
                Some(socket),
                tx,
                stopped(self.sim_stop.subscribe()),
            )));
            Some((addr, io_control, coils))
        } else {
            None
        };
        Ok(Hardware {
            reader_link,
            reader_control,
            io,
            llrp: None,
        })
    }

    /// Starts an LLRP portal reader controlled through `control`: its address, and its GPO
    /// changes as the coil changes of a gate I/O module (GPO 1 → coil 0, the alarm light;
    /// GPO 2 → coil 1, the sounder), so the scenario watches both kinds of gate alike.
    async fn start_llrp_reader(
        &mut self,
        control: &Path,
    ) -> Result<(SocketAddr, broadcast::Sender<CoilChange>), SiteError> {
        let listen = |source| SimError::Listen {
            addr: "127.0.0.1:0".into(),
            source,
        };
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(listen)?;
        let addr = listener.local_addr().map_err(listen)?;
        let socket = ControlSocket::bind(control)?;
        let (tx, mut rx) = mpsc::unbounded_channel::<GpoChange>();
        let (coils, _) = broadcast::channel(256);
        let forward = coils.clone();
        self.forwarders.push(tokio::spawn(async move {
            while let Some(change) = rx.recv().await {
                let coil = change.gpo.saturating_sub(1);
                let _ = forward.send(CoilChange {
                    coil,
                    value: change.value,
                });
            }
        }));
        let mut stop = self.sim_stop.subscribe();
        self.sims.push(tokio::spawn(run_llrp_reader(
            listener,
            LlrpReader::new(),
            Some(socket),
            tx,
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        )));
        Ok((addr, coils))
    }

    /// A logged-in client for one of the site's accounts.
    ///
    /// # Errors
    /// [`SiteError::NoSuchDevice`] for an unknown username, [`HttpError`] if the login fails.
    pub async fn session(&self, api: &ApiClient, username: &str) -> Result<ApiClient, SiteError> {
        let login = self
            .logins
            .iter()
            .find(|l| l.username == username)
            .ok_or_else(|| SiteError::NoSuchDevice(format!("no account {username}")))?;
        Ok(api.login(&login.username, &login.password).await?)
    }

    /// A client of the server, not logged in.
    #[must_use]
    pub fn api(&self) -> ApiClient {
        ApiClient::new(&format!("http://{}", self.addr))
    }

    /// `http://127.0.0.1:PORT/`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's state (store, alert hub, metrics, clock).
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The server's current time.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.state.now()
    }

    /// The alert hub subscription made before any device started, so no alert is missed; `None`
    /// once taken.
    pub fn take_alerts(&mut self) -> Option<broadcast::Receiver<i64>> {
        self.alerts.take()
    }

    /// The accounts: admin, two security officers, custodian, guard, auditor.
    #[must_use]
    pub fn logins(&self) -> &[Login] {
        &self.logins
    }

    /// What the seed registered.
    #[must_use]
    pub fn seeded(&self) -> &Seeded {
        &self.seeded
    }

    /// Every device, gates first, then cabinets, then the desk.
    #[must_use]
    pub fn devices(&self) -> &[SiteDevice] {
        &self.devices
    }

    /// One device by id.
    #[must_use]
    pub fn device(&self, id: &str) -> Option<&SiteDevice> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// The devices with this role.
    pub fn with_role(&self, role: DeviceRole) -> impl Iterator<Item = &SiteDevice> {
        self.devices.iter().filter(move |d| d.role == role)
    }

    /// The data directory (absolute).
    #[must_use]
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether the build wiped what a previous site had left in the data directory.
    #[must_use]
    pub fn was_wiped(&self) -> bool {
        self.wiped
    }

    /// Stops everything (see the module docs) and removes the links and control sockets.
    ///
    /// # Errors
    /// The server stopped with an error (e.g. the audit head could not be signed).
    pub async fn shutdown(mut self) -> Result<(), SiteError> {
        for device in &self.devices {
            device.stop_daemon().await;
        }
        self.sim_stop.send_replace(true);
        for sim in self.sims.drain(..) {
            match sim.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("simulated device stopped with an error: {e}"),
                Err(e) => tracing::warn!("simulated device task failed: {e}"),
            }
        }
        for forwarder in self.forwarders.drain(..) {
            let _ = forwarder.await;
        }
        self.server_stop.send_replace(true);
        let served = match self.server.take() {
            Some(server) => match server.await {
                Ok(result) => result.map_err(SiteError::from),
                Err(e) => Err(SiteError::Answer(format!("server task failed: {e}"))),
            },
            None => Ok(()),
        };
        for sub in ["links", "control"] {
            // Empty by now (each device removed its own); a leftover is a bug worth a warning.
            if let Err(e) = std::fs::remove_dir(self.data_dir.join(sub)) {
                tracing::warn!("{sub}: {e}");
            }
        }
        served
    }
}

/// A new account's body: a privileged account (security officer, auditor) is linked to a
/// person of its own, registered with the account (separation of duties per person).
fn account_body(role: &str, username: &str, password: &str) -> serde_json::Value {
    let mut body = json!({"username": username, "password": password, "roles": [role]});
    if matches!(role, "admin" | "security_officer" | "auditor") {
        body["new_person"] = json!({"name": username, "department": "保密办", "category": "core"});
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_directory_is_not_wiped() {
        let dir = std::env::temp_dir().join(format!("custos-site-prep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!prepare_dir(&dir).unwrap(), "created");
        std::fs::write(dir.join("precious.txt"), "x").unwrap();
        assert!(matches!(prepare_dir(&dir), Err(SiteError::NotASiteDir(_))));
        assert!(dir.join("precious.txt").exists());
        std::fs::write(dir.join(MARKER), "").unwrap();
        assert!(prepare_dir(&dir).unwrap(), "wiped");
        assert!(!dir.join("precious.txt").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
