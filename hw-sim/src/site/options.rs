//! What [`Site::build`](super::Site::build) is asked to build: sizes, seed and the server's and
//! daemons' settings. Plain data, apart from the machinery that builds from it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What [`Site::build`](super::Site::build) builds.
#[derive(Debug, Clone)]
pub struct SiteOptions {
    /// Where everything goes (wiped first; see the [`site`](super) docs).
    pub data_dir: PathBuf,
    /// The first port tried on 127.0.0.1 (then up to 20 more, then any free port); 0 = any
    /// free port at once. Ignored when [`SiteOptions::listen`] is given.
    pub listen_from: u16,
    /// Exactly this address for the server (port 0: a free one), or fail.
    pub listen: Option<SocketAddr>,
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
    /// Alert notifications: the server's `[smtp]` (no host: no e-mail).
    pub smtp: custos_server::config::Smtp,
    /// Alert notifications: the server's `[[webhooks]]`.
    pub webhooks: Vec<custos_server::config::Webhook>,
    /// The notifier's timing (`[notifications]`).
    pub notifications: custos_server::config::Notifications,
}

impl SiteOptions {
    /// The demo's site: two gates, two cabinets, a desk, 20 people, 100 carriers, from port
    /// 8080, with the server's and daemons' defaults.
    pub fn demo(data_dir: impl Into<PathBuf>) -> SiteOptions {
        SiteOptions {
            data_dir: data_dir.into(),
            listen_from: 8080,
            listen: None,
            gates: 2,
            cabinets: 2,
            desk: true,
            seed: SeedOptions::default(),
            server: ServerTuning::default(),
            daemon: DaemonTuning::default(),
            smtp: custos_server::config::Smtp::default(),
            webhooks: Vec::new(),
            notifications: custos_server::config::Notifications::default(),
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
