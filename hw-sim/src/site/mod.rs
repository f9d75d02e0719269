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

use std::collections::HashMap;
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU8;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use custos_daemon::app::{Running, StartOptions, start_with};
use custos_daemon::keys::{DeviceKey, PublicKey};
use custos_protocol::barcode::CarrierLabel;
use custos_protocol::epc::{Epc, tds};
use custos_protocol::uplink::Direction;
use custos_server::AppState;
use custos_server::domain::time::Timestamp;
use custos_server::keys::{KEY_FILE, ServerKey};
use custos_server::store::{DB_FILE, Store, StoreOptions};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::barcode::{BarcodeScanner, Terminator};
use crate::control::{ControlOp, ControlReply, HexBytes};
use crate::gate_io::{CoilChange, GateIo as SimGateIo, run_gate_io};
use crate::reader::{Protocol, SimReader};
use crate::uhf_reader::UhfReaderDevice;
use crate::{ControlSocket, PtyLink, SimError, run_serial_device};

/// The file that marks a directory as a site's, so that a build may wipe it.
pub const MARKER: &str = ".custos-site";

/// GS1 company prefix of the site's EPCs (carriers and badges; GIAI-96, filter 0).
pub const COMPANY_PREFIX: &str = "0614141";

/// GIAI asset reference of carrier `i` is this plus `i`.
const CARRIER_ASSET_BASE: u64 = 10_000;

/// GIAI asset reference of person `i`'s badge is this plus `i`.
const BADGE_ASSET_BASE: u64 = 90_000;

/// The shortest time a tag stays in one antenna's field during a passage: the gate smoothing
/// needs a few inventory rounds (`min_reads`) to count it present.
pub const MIN_DWELL: Duration = Duration::from_millis(300);

/// The shortest time between the end of one passage and the start of the next at the same
/// gate: the gate smoothing needs its hold-off (1.5 s) to see everyone gone, and the passage gap
/// (2 s) to tell two passages apart.
pub const PASSAGE_GAP: Duration = Duration::from_secs(3);

/// Antennas of every simulated UHF reader (a gate: 1-2 inside, 3-4 outside; a cabinet: four
/// shelves).
const ANTENNAS: u8 = 4;

/// How many ports past [`SiteOptions::listen_from`] are tried before any free port.
const PORT_TRIES: u16 = 20;

/// The longest a build waits for the cabinets' first counts to reach the server.
const FIRST_COUNT_WAIT: Duration = Duration::from_secs(60);

/// One HTTP request to the server, answer included.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// No port to listen on.
    #[error("cannot listen on 127.0.0.1")]
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

// ---------------------------------------------------------------------------------------------
// Options

/// What [`Site::build`] builds.
#[derive(Debug, Clone)]
pub struct SiteOptions {
    /// Where everything goes (wiped first; see the module docs).
    pub data_dir: PathBuf,
    /// The first port tried on 127.0.0.1 (then up to 20 more, then any free port); 0 = any
    /// free port at once.
    pub listen_from: u16,
    /// Gates (each a UHF reader, a gate I/O module and a daemon).
    pub gates: usize,
    /// Cabinets (each a UHF reader and a daemon).
    pub cabinets: usize,
    /// A desk with a barcode scanner and its daemon.
    pub desk: bool,
    /// What to register.
    pub seed: SeedOptions,
    /// Server settings that differ from the defaults.
    pub server: ServerTuning,
    /// Daemon settings that differ from the defaults.
    pub daemon: DaemonTuning,
}

impl SiteOptions {
    /// The demo's site: two gates, two cabinets, a desk, 20 people, 100 carriers, from port
    /// 8080, with the server's and daemons' defaults.
    pub fn demo(data_dir: impl Into<PathBuf>) -> SiteOptions {
        SiteOptions {
            data_dir: data_dir.into(),
            listen_from: 8080,
            gates: 2,
            cabinets: 2,
            desk: true,
            seed: SeedOptions::default(),
            server: ServerTuning::default(),
            daemon: DaemonTuning::default(),
        }
    }
}

/// What to register beyond the accounts and zones (always made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedOptions {
    /// The seed of the RNG that picks names, titles and kinds.
    pub rng_seed: u64,
    /// People on the register (0 = none).
    pub people: usize,
    /// Carriers (0 = none).
    pub carriers: usize,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions {
            rng_seed: 2026,
            people: 20,
            carriers: 100,
        }
    }
}

/// Server settings a site sets (the rest are the server's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerTuning {
    /// How long a carrier may be gone from its cabinet without a sign-out before it is an alert.
    pub cabinet_removal_grace: Duration,
    /// How often the sweeps run (overdue, removals, silent readers).
    pub sweep_interval: Duration,
    /// Same tag at two devices closer than this is a suspected clone (0 = off).
    pub tag_clone_min_travel_secs: u64,
    /// A device quiet for longer is silent.
    pub supervision_interval_secs: u64,
}

impl Default for ServerTuning {
    fn default() -> Self {
        let d = custos_server::config::Config::default();
        ServerTuning {
            cabinet_removal_grace: Duration::from_millis(d.cabinet_removal_grace_ms),
            sweep_interval: Duration::from_millis(d.sweep_interval_ms),
            tag_clone_min_travel_secs: d.tag_clone_min_travel_secs,
            supervision_interval_secs: d.supervision_interval_secs,
        }
    }
}

/// Daemon settings a site sets (the rest are the daemon's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaemonTuning {
    /// How long a local alarm sounds.
    pub alarm_duration: Duration,
}

impl Default for DaemonTuning {
    fn default() -> Self {
        DaemonTuning {
            alarm_duration: Duration::from_secs(10),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The seed

/// A deterministic RNG (SplitMix64): the same seed gives the same site.
#[derive(Debug, Clone)]
pub struct SeedRng(u64);

impl SeedRng {
    /// An RNG starting from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> SeedRng {
        SeedRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: usize) -> usize {
        // usize fits in u64 on every supported target; the result is below n.
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Classification level of a carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// 秘密.
    Confidential,
    /// 机密.
    Secret,
    /// 绝密.
    TopSecret,
}

impl Level {
    /// `TS`, `S`, `C`.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Level::TopSecret => "TS",
            Level::Secret => "S",
            Level::Confidential => "C",
        }
    }

    /// 绝密, 机密, 秘密.
    #[must_use]
    pub fn chinese(self) -> &'static str {
        match self {
            Level::TopSecret => "绝密",
            Level::Secret => "机密",
            Level::Confidential => "秘密",
        }
    }

    /// From `TS`, `S`, `C`.
    #[must_use]
    pub fn from_code(code: &str) -> Option<Level> {
        match code {
            "TS" => Some(Level::TopSecret),
            "S" => Some(Level::Secret),
            "C" => Some(Level::Confidential),
            _ => None,
        }
    }
}

/// Category of a person (涉密人员类别).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// 核心: up to TS.
    Core,
    /// 重要: up to S.
    Important,
    /// 一般: up to C.
    General,
}

impl Category {
    /// The API name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Category::Core => "core",
            Category::Important => "important",
            Category::General => "general",
        }
    }

    /// The highest level they may hold.
    #[must_use]
    pub fn max_level(self) -> Level {
        match self {
            Category::Core => Level::TopSecret,
            Category::Important => Level::Secret,
            Category::General => Level::Confidential,
        }
    }
}

/// One account, with its password in clear (the site made it up and prints it).
#[derive(Clone)]
pub struct Login {
    /// The role, as the API names it.
    pub role: &'static str,
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("role", &self.role)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A registered person.
#[derive(Debug, Clone)]
pub struct SeedPerson {
    /// Server id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Department.
    pub department: String,
    /// Category.
    pub category: Category,
    /// Badge EPC, if issued.
    pub badge: Option<Epc>,
    /// Whether the secrecy training has lapsed.
    pub training_expired: bool,
    /// Whether the confidentiality commitment is signed.
    pub commitment_signed: bool,
}

impl SeedPerson {
    /// Whether an issue to them of a carrier at `level` passes the rules.
    #[must_use]
    pub fn may_borrow(&self, level: Level) -> bool {
        !self.training_expired && self.commitment_signed && level <= self.category.max_level()
    }
}

/// A registered carrier.
#[derive(Debug, Clone)]
pub struct SeedCarrier {
    /// Server id.
    pub id: String,
    /// Control number, e.g. `S-2026-0020`.
    pub control_no: String,
    /// Level.
    pub level: Level,
    /// Kind, as the API names it.
    pub kind: &'static str,
    /// Its UHF tag (GIAI-96).
    pub epc: Epc,
    /// Its barcode label text, e.g. `CUS-2026-0020K`.
    pub label: String,
    /// Its home cabinet, if it has one.
    pub home: Option<String>,
}

/// Everything the seed registered.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    /// People.
    pub people: Vec<SeedPerson>,
    /// Carriers.
    pub carriers: Vec<SeedCarrier>,
}

impl Seeded {
    /// The carrier with this EPC.
    #[must_use]
    pub fn carrier_by_epc(&self, epc: &Epc) -> Option<&SeedCarrier> {
        self.carriers.iter().find(|c| &c.epc == epc)
    }

    /// The person with this id.
    #[must_use]
    pub fn person(&self, id: &str) -> Option<&SeedPerson> {
        self.people.iter().find(|p| p.id == id)
    }

    /// The person with this badge.
    #[must_use]
    pub fn person_by_badge(&self, epc: &Epc) -> Option<&SeedPerson> {
        self.people.iter().find(|p| p.badge.as_ref() == Some(epc))
    }
}

/// A zone of the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    /// Id.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// `TS`, `S`, `C` or `public`.
    pub level: &'static str,
}

/// The site's zones, one per level: the vault (TS), the registry (S), the office (C) and the
/// public lobby.
pub const ZONES: [Zone; 4] = [
    Zone {
        id: "vault",
        name: "绝密室 Vault",
        level: "TS",
    },
    Zone {
        id: "registry",
        name: "机要室 Registry",
        level: "S",
    },
    Zone {
        id: "office",
        name: "办公区 Office",
        level: "C",
    },
    Zone {
        id: "lobby",
        name: "大厅 Lobby",
        level: "public",
    },
];

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗",
];
const GIVEN_NAMES: [&str; 24] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "建华", "文博", "晨", "宇航", "欣然",
];
const DEPARTMENTS: [&str; 6] = [
    "科研一部",
    "科研二部",
    "总体设计部",
    "档案室",
    "综合办公室",
    "信息中心",
];
const PROJECTS: [&str; 8] = [
    "天枢", "北辰", "玄武", "启明", "长庚", "太白", "织女", "河汉",
];
const KINDS: [(&str, &[&str]); 7] = [
    (
        "paper",
        &[
            "总体技术方案",
            "研制任务书",
            "试验大纲",
            "会议纪要",
            "设计图纸",
        ],
    ),
    ("magnetic_disk", &["试验数据磁带", "备份磁盘"]),
    ("optical_disc", &["图纸光盘", "资料光盘"]),
    ("flash", &["数据U盘", "交换存储卡"]),
    ("hard_disk", &["仿真数据硬盘", "移动硬盘"]),
    ("laptop", &["涉密便携机"]),
    ("device", &["涉密相机", "录音笔"]),
];

/// The EPC of carrier `i`.
///
/// # Errors
/// [`SiteError::Epc`] (cannot happen for the site's prefix and small numbers).
pub fn carrier_epc(i: usize) -> Result<Epc, SiteError> {
    giai(CARRIER_ASSET_BASE + i as u64)
}

/// The badge EPC of person `i`.
///
/// # Errors
/// [`SiteError::Epc`] (cannot happen for the site's prefix and small numbers).
pub fn badge_epc(i: usize) -> Result<Epc, SiteError> {
    giai(BADGE_ASSET_BASE + i as u64)
}

fn giai(asset: u64) -> Result<Epc, SiteError> {
    tds::giai96(0, COMPANY_PREFIX, asset).map_err(|e| SiteError::Epc(e.to_string()))
}

/// The person plan of index `i` (the pattern repeats every 20 people): five core, seven
/// important, eight general; one with lapsed training (an important one), one without a
/// signed commitment (a general one), three without a badge.
fn person_plan(i: usize) -> (Category, bool, bool, bool) {
    let k = i % 20;
    let category = match k {
        0..=4 => Category::Core,
        5..=11 => Category::Important,
        _ => Category::General,
    };
    let training_expired = k == 6;
    let commitment_signed = k != 13;
    let badge = !matches!(k, 4 | 11 | 19);
    (category, training_expired, commitment_signed, badge)
}

/// The level of carrier `i` (the pattern repeats every 20): 15 % TS, 40 % S, 45 % C.
fn carrier_level(i: usize) -> Level {
    match i % 20 {
        0..=2 => Level::TopSecret,
        3..=10 => Level::Secret,
        _ => Level::Confidential,
    }
}

/// Eight carriers in ten have a home cabinet (when there are cabinets); the others are kept in
/// the registry's strong room.
fn carrier_homed(i: usize) -> bool {
    i % 5 != 4
}

/// Sixteen random characters for a password (no look-alikes), from the OS's entropy.
fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut seed = [0u8; 8];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .is_ok();
    let mut state = u64::from_le_bytes(seed);
    if !from_os {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        state ^= (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32);
    }
    let mut rng = SeedRng::new(state);
    (0..16).map(|_| char::from(*rng.pick(ALPHABET))).collect()
}

// ---------------------------------------------------------------------------------------------
// HTTP client

/// A request to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No answer: connection refused, reset, or timed out.
    #[error("{method} {path}: {reason}")]
    Transport {
        /// The method.
        method: String,
        /// The path.
        path: String,
        /// What happened.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{method} {path}: {status} {body}")]
    Status {
        /// The method.
        method: String,
        /// The path.
        path: String,
        /// The status code.
        status: u16,
        /// The JSON error body (`{"error","message"}`), or `null`.
        body: Value,
    },
}

impl HttpError {
    /// The status, if the server answered.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            HttpError::Transport { .. } => None,
        }
    }

    /// The error body, if the server answered.
    #[must_use]
    pub fn body(&self) -> Option<&Value> {
        match self {
            HttpError::Status { body, .. } => Some(body),
            HttpError::Transport { .. } => None,
        }
    }
}

/// A small JSON client of the server's API, as a user's script would use it: log in, then
/// call `/api/v1/...` with the bearer token.
#[derive(Clone)]
pub struct ApiClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("logged_in", &self.token.is_some())
            .finish()
    }
}

impl ApiClient {
    /// A client of the server at `base` (`http://HOST:PORT`, a trailing slash is ignored),
    /// not logged in.
    #[must_use]
    pub fn new(base: &str) -> ApiClient {
        ApiClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.trim_end_matches('/').to_owned(),
            token: None,
        }
    }

    /// Logs in; the returned client sends the session's bearer token.
    ///
    /// # Errors
    /// [`HttpError`]: 401 for a wrong password.
    pub async fn login(&self, username: &str, password: &str) -> Result<ApiClient, HttpError> {
        let answer = self
            .post(
                "/api/v1/session",
                &json!({"username": username, "password": password}),
            )
            .await?;
        let token = answer["token"]
            .as_str()
            .ok_or_else(|| HttpError::Transport {
                method: "POST".into(),
                path: "/api/v1/session".into(),
                reason: format!("no token in the answer {answer}"),
            })?
            .to_owned();
        Ok(ApiClient {
            token: Some(token),
            ..self.clone()
        })
    }

    /// `GET path`; the JSON answer.
    ///
    /// # Errors
    /// [`HttpError`].
    pub async fn get(&self, path: &str) -> Result<Value, HttpError> {
        self.call(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body; the JSON answer.
    ///
    /// # Errors
    /// [`HttpError`].
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, HttpError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Any request; a success's JSON answer (`null` for an empty body).
    ///
    /// # Errors
    /// [`HttpError::Status`] for a status other than 2xx, [`HttpError::Transport`] otherwise.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, HttpError> {
        let transport = |reason: String| HttpError::Transport {
            method: method.to_string(),
            path: path.to_owned(),
            reason,
        };
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let bytes = match body {
            Some(body) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(bytes))
            .map_err(|e| transport(e.to_string()))?;
        let response = tokio::time::timeout(HTTP_TIMEOUT, async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| transport(e.to_string()))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| transport(e.to_string()))?
                .to_bytes();
            Ok::<_, HttpError>((parts.status, body))
        })
        .await
        .map_err(|_| transport(format!("no answer within {HTTP_TIMEOUT:?}")))??;
        let (status, body) = response;
        let json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        if status.is_success() {
            Ok(json)
        } else {
            Err(HttpError::Status {
                method: method.to_string(),
                path: path.to_owned(),
                status: status.as_u16(),
                body: json,
            })
        }
    }
}

/// The `id` of a creation's answer.
fn created_id(answer: &Value, what: &str) -> Result<String, SiteError> {
    answer["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| SiteError::Answer(format!("{what}: no id in {answer}")))
}

// ---------------------------------------------------------------------------------------------
// Control sockets

/// A control-socket client: one op per line, one answer per op.
#[derive(Debug)]
pub struct ControlClient {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
}

impl ControlClient {
    /// Connects to the control socket at `path`.
    ///
    /// # Errors
    /// The connect error.
    pub async fn connect(path: &Path) -> std::io::Result<ControlClient> {
        let (read, write) = UnixStream::connect(path).await?.into_split();
        Ok(ControlClient {
            lines: BufReader::new(read).lines(),
            write,
        })
    }

    /// Sends one op; `Ok(Err(reason))` when the device refused it.
    ///
    /// # Errors
    /// The socket failed or closed.
    pub async fn send(&mut self, op: &ControlOp) -> std::io::Result<Result<(), String>> {
        let mut line = serde_json::to_string(op).map_err(std::io::Error::other)?;
        line.push('\n');
        self.write.write_all(line.as_bytes()).await?;
        let answer = self
            .lines
            .next_line()
            .await?
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        let reply: ControlReply = serde_json::from_str(&answer).map_err(std::io::Error::other)?;
        Ok(if reply.ok {
            Ok(())
        } else {
            Err(reply.error.unwrap_or_default())
        })
    }
}

/// A control socket with a lazily connected, reused client.
#[derive(Debug)]
struct Endpoint {
    path: PathBuf,
    client: tokio::sync::Mutex<Option<ControlClient>>,
}

impl Endpoint {
    fn new(path: PathBuf) -> Endpoint {
        Endpoint {
            path,
            client: tokio::sync::Mutex::new(None),
        }
    }

    async fn op(&self, op: &ControlOp) -> Result<(), SiteError> {
        let mut client = self.client.lock().await;
        let io_err = |source| SiteError::Control {
            path: self.path.clone(),
            source,
        };
        // One reconnect: the device may have restarted its socket.
        let mut failures = 0;
        loop {
            let connected = match client.as_mut() {
                Some(c) => c,
                None => client.insert(ControlClient::connect(&self.path).await.map_err(io_err)?),
            };
            match connected.send(op).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(error)) => {
                    return Err(SiteError::ControlRefused {
                        path: self.path.clone(),
                        error,
                    });
                }
                Err(e) => {
                    *client = None;
                    failures += 1;
                    if failures == 2 {
                        return Err(io_err(e));
                    }
                }
            }
        }
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

/// The field op for one antenna.
fn field(antenna: u8, tags: &[Epc]) -> ControlOp {
    ControlOp::Field {
        // Antennas are 1..=ANTENNAS here.
        antenna: NonZeroU8::new(antenna).unwrap_or(NonZeroU8::MIN),
        tags: tags
            .iter()
            .map(|t| HexBytes(t.as_bytes().to_vec()))
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Devices

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
    /// The daemon's configuration file.
    pub config_path: PathBuf,
    reader: Endpoint,
    coils: Option<broadcast::Sender<CoilChange>>,
    /// A cabinet's shelves: the tags in each antenna's field.
    shelves: Mutex<Vec<Vec<Epc>>>,
    /// Serialises passages at a gate; when the last one ended.
    last_passage: tokio::sync::Mutex<Option<Instant>>,
    daemon: Mutex<Option<Running>>,
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

/// A device's simulated hardware, as started.
struct Hardware {
    reader_link: PathBuf,
    reader_control: PathBuf,
    io: Option<(SocketAddr, PathBuf, broadcast::Sender<CoilChange>)>,
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

// ---------------------------------------------------------------------------------------------
// The site

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
        let listener = bind_from(options.listen_from).await?;
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
            ("guard", "guard"),
            ("auditor", "auditor"),
        ] {
            let login = Login {
                role,
                username: username.to_owned(),
                password: generate_password(),
            };
            admin
                .post(
                    "/api/v1/users",
                    &json!({"username": login.username, "password": login.password, "roles": [role]}),
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
                tuning: options.daemon,
            });
            std::fs::write(&config_path, toml).map_err(|source| SiteError::Dir {
                path: config_path.clone(),
                source,
            })?;
            let (io_addr, io_control, coils) = match hw.io {
                Some((a, c, tx)) => (Some(a), Some(c), Some(tx)),
                None => (None, None, None),
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
            let list = custodian.get("/api/v1/carriers").await?;
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
        })
    }

    /// Registers people (as a security officer) and carriers (as the custodian).
    async fn seed(&mut self, api: &ApiClient, options: SeedOptions) -> Result<(), SiteError> {
        let mut rng = SeedRng::new(options.rng_seed);
        let officer = self.session(api, "officer1").await?;
        let custodian = self.session(api, "custodian").await?;
        let now = self.state.now();
        let day = |days: i64| now.plus_secs(days * 86_400).date().to_string();
        let mut names = std::collections::HashSet::new();
        for i in 0..options.people {
            let (category, training_expired, commitment_signed, has_badge) = person_plan(i);
            let name = loop {
                let name = format!("{}{}", rng.pick(&SURNAMES), rng.pick(&GIVEN_NAMES));
                if names.insert(name.clone()) || names.len() >= SURNAMES.len() * GIVEN_NAMES.len() {
                    break name;
                }
            };
            let department = (*rng.pick(&DEPARTMENTS)).to_owned();
            let badge = if has_badge { Some(badge_epc(i)?) } else { None };
            let mut body = json!({
                "name": name,
                "department": department,
                "category": category.name(),
                "training_valid_until": if training_expired { day(-30) } else { day(2 * 365) },
            });
            if let Some(badge) = &badge {
                body["badge_tag"] = json!(badge.to_string());
            }
            if commitment_signed {
                body["commitment_signed_on"] = json!(day(-200));
            }
            let id = created_id(&officer.post("/api/v1/people", &body).await?, "person")?;
            self.seeded.people.push(SeedPerson {
                id,
                name,
                department,
                category,
                badge,
                training_expired,
                commitment_signed,
            });
        }

        let cabinets: Vec<(String, bool)> = self
            .devices
            .iter()
            .filter(|d| d.role == DeviceRole::Cabinet)
            .map(|d| (d.id.clone(), d.zone == Some("vault")))
            .collect();
        let vaults: Vec<&String> = cabinets
            .iter()
            .filter(|(_, v)| *v)
            .map(|(c, _)| c)
            .collect();
        let mut counters: HashMap<Level, u32> = HashMap::new();
        let (mut next_any, mut next_vault) = (0usize, 0usize);
        for i in 0..options.carriers {
            let level = carrier_level(i);
            let (kind, docs) = KINDS[i % KINDS.len()];
            let seq = counters.entry(level).or_default();
            *seq += 1;
            let control_no = format!("{}-2026-{:04}", level.code(), seq);
            let label = CarrierLabel::new(&control_no)
                .map_err(|e| SiteError::Answer(format!("label of {control_no}: {e}")))?
                .to_string();
            let epc = carrier_epc(i)?;
            let title = format!("{}{}", rng.pick(&PROJECTS), rng.pick(docs));
            let home = if carrier_homed(i) && !cabinets.is_empty() {
                if level == Level::TopSecret && !vaults.is_empty() {
                    next_vault += 1;
                    Some(vaults[(next_vault - 1) % vaults.len()].clone())
                } else {
                    next_any += 1;
                    Some(cabinets[(next_any - 1) % cabinets.len()].0.clone())
                }
            } else {
                None
            };
            let mut body = json!({
                "control_no": control_no,
                "kind": kind,
                "level": level.code(),
                "title": title,
                "owner_unit": *rng.pick(&DEPARTMENTS),
                "tags": [format!("epc:{epc}"), format!("barcode:{label}")],
            });
            if level == Level::TopSecret {
                body["copies"] = json!(2);
                body["copy_no"] = json!(1 + *seq % 2);
            }
            if let Some(home) = &home {
                body["home_device"] = json!(home);
            }
            let id = created_id(&custodian.post("/api/v1/carriers", &body).await?, "carrier")?;
            self.seeded.carriers.push(SeedCarrier {
                id,
                control_no,
                level,
                kind,
                epc,
                label,
                home,
            });
        }
        tracing::info!(
            people = self.seeded.people.len(),
            carriers = self.seeded.carriers.len(),
            "seeded"
        );
        Ok(())
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

/// What a daemon's configuration file is made from.
struct DaemonToml<'a> {
    id: &'a str,
    role: DeviceRole,
    server: &'a str,
    server_key: PublicKey,
    key_path: &'a Path,
    dir: &'a Path,
    link: &'a Path,
    io_addr: Option<SocketAddr>,
    tuning: DaemonTuning,
}

/// The `custosd.toml` of a device (see the daemon's `print-config` for every key).
fn daemon_toml(d: DaemonToml<'_>) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_rng_is_deterministic_and_spreads() {
        let a: Vec<u64> = {
            let mut r = SeedRng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = SeedRng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        let mut r = SeedRng::new(8);
        assert_ne!(r.next_u64(), a[0]);
        let mut seen = [false; 7];
        for _ in 0..200 {
            seen[r.below(7)] = true;
        }
        assert!(seen.iter().all(|s| *s), "every value of below(7) comes up");
    }

    #[test]
    fn the_people_plan_has_every_category_and_each_refusal_case() {
        let plans: Vec<_> = (0..20).map(person_plan).collect();
        for c in [Category::Core, Category::Important, Category::General] {
            assert!(plans.iter().any(|p| p.0 == c), "{c:?}");
        }
        assert_eq!(
            plans.iter().filter(|p| p.1).count(),
            1,
            "one lapsed training"
        );
        assert_eq!(
            plans.iter().filter(|p| !p.2).count(),
            1,
            "one without commitment"
        );
        assert_eq!(
            plans.iter().filter(|p| !p.3).count(),
            3,
            "three without badge"
        );
        let levels: Vec<_> = (0..100).map(carrier_level).collect();
        assert_eq!(
            levels.iter().filter(|l| **l == Level::TopSecret).count(),
            15
        );
        assert_eq!(levels.iter().filter(|l| **l == Level::Secret).count(), 40);
        assert_eq!((0..100).filter(|i| carrier_homed(*i)).count(), 80);
    }

    #[test]
    fn epcs_are_giai96_and_distinct() {
        let c = carrier_epc(3).unwrap();
        assert_eq!(
            tds::pure_identity_uri(&c).as_deref(),
            Some("urn:epc:id:giai:0614141.10003")
        );
        assert_ne!(carrier_epc(3).unwrap(), badge_epc(3).unwrap());
    }

    #[test]
    fn passwords_meet_the_policy_and_differ() {
        let a = generate_password();
        assert_eq!(a.chars().count(), 16);
        assert_ne!(a, generate_password());
    }

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
