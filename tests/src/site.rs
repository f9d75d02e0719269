//! A whole Custos site on this machine, from the real binaries: the server, simulated readers
//! and gate I/O on real ptys and Modbus TCP, and reader daemons, with the register filled in
//! through the HTTP API as an administrator, security officers and a custodian would.
//!
//! # What [`Site::start`] sets up
//! - `custos-server init` (password file) and `serve --config FILE` on a port chosen here (a
//!   listener bound on 127.0.0.1:0 and released), so a restarted server comes back on the same
//!   address; waits for `listening on http://ADDR`.
//! - Accounts (password [`PASSWORD`], admin [`ADMIN_PASSWORD`]): `admin`, `officer` and
//!   `officer2` (security officers), `custodian`, `guard`, `auditor`, each logged in.
//! - Zones `inside` (S), `outside` (public), `vault` (S); devices `gate-1` (gate between
//!   `inside` and `outside`), `cab-1` and `cab-2` (cabinets in `vault`), each with a key pair
//!   from `custosd keygen` registered by its public key.
//! - People ([`ALICE`], [`BOB`], [`CAROL`] with UHF badges, [`DAVE`] whose training expired)
//!   and carriers with GIAI-96 tags ([`Carrier`]): `S-1` … `S-6` (S, home `cab-1`), `TS-1`
//!   (TS, home `cab-1`) and `S-9` (S, home `cab-2`).
//! - With [`SiteOptions::gate`]: `custos-sim uhf-reader --protocol uhf-a0` (inner antennas 1-2,
//!   outer 3-4), `custos-sim gate-io --listen 127.0.0.1:0` (its coil lines collected), and
//!   `custosd run` for `gate-1` with the server key pinned; waits until the daemon holds a gate
//!   policy. With [`SiteOptions::cabinet`]: a second reader and `custosd run` for `cab-1`.
//!
//! How the daemons are observed is in [`crate::rig`].
//!
//! Everything lives in one temporary directory, removed on drop after every process is killed.
//! If the test is failing, the drop prints the last lines of each process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use custos_protocol::epc::{Epc, tds};
use custos_server::domain::time::Timestamp;
use hyper::Method;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::bins::binaries;
use crate::http::{self, AlertStream, Reply};
use crate::proc::{Proc, STEP, poll_some};
use crate::rig::{Control, DaemonTuning, Rig, daemon_config, llrp_gate_config, open_read_only};

/// The first administrator's password.
pub const ADMIN_PASSWORD: &str = "first operator secret";
/// Every other account's password.
pub const PASSWORD: &str = "a long enough password";
/// The password the administrator gives a new account; its holder replaces it with
/// [`PASSWORD`] at the first sign-in, as every new account must.
pub const INITIAL_PASSWORD: &str = "temporary passphrase 1";

/// Alice: important (S), fit to borrow, badge [`ALICE_BADGE`].
pub const ALICE: &str = "alice";
/// Bob: important (S), fit to borrow, badge [`BOB_BADGE`].
pub const BOB: &str = "bob";
/// Carol: core (TS), fit to borrow, badge [`CAROL_BADGE`].
pub const CAROL: &str = "carol";
/// Dave: important (S), training expired in 2020.
pub const DAVE: &str = "dave";
/// Alice's UHF badge.
pub const ALICE_BADGE: &str = "E2801160600002000000A11C";
/// Bob's UHF badge.
pub const BOB_BADGE: &str = "E2801160600002000000B0B0";
/// Carol's UHF badge.
pub const CAROL_BADGE: &str = "E2801160600002000000CA70";

/// GS1 company prefix of the carriers' GIAI-96 tags.
pub const COMPANY_PREFIX: &str = "0614141";
/// The gate's device id.
pub const GATE: &str = "gate-1";
/// The cabinet with a daemon.
pub const CAB1: &str = "cab-1";
/// A registered cabinet without a daemon (a carrier's "other" home).
pub const CAB2: &str = "cab-2";

/// The EPC of a badge constant.
pub fn badge(hex: &str) -> Epc {
    Epc::from_hex(hex).expect("badge constants are valid hex")
}

/// Settings of the server under test (`serve --config`).
#[derive(Debug, Clone, Copy)]
pub struct ServerTuning {
    /// `sweep_interval_ms`.
    pub sweep_interval_ms: u64,
    /// `cabinet_removal_grace_ms`.
    pub cabinet_removal_grace_ms: u64,
    /// `supervision_interval_secs`.
    pub supervision_interval_secs: u64,
}

impl Default for ServerTuning {
    fn default() -> Self {
        ServerTuning {
            sweep_interval_ms: 200,
            cabinet_removal_grace_ms: 1_500,
            supervision_interval_secs: 6,
        }
    }
}

/// What to start.
#[derive(Debug, Clone, Copy, Default)]
pub struct SiteOptions {
    /// The server's settings.
    pub server: ServerTuning,
    /// The daemons' settings.
    pub daemon: DaemonTuning,
    /// Start the gate (reader, gate I/O, daemon).
    pub gate: bool,
    /// Make the gate an LLRP portal: `custos-sim llrp-reader` instead of the serial reader and
    /// the Modbus gate I/O module, the alarm light on the reader's GPO 1 and the sounder on
    /// GPO 2 (its stdout carries the GPO changes).
    pub llrp_gate: bool,
    /// Start cabinet `cab-1` (reader, daemon).
    pub cabinet: bool,
}

/// A registered carrier.
#[derive(Debug, Clone)]
pub struct Carrier {
    /// Its id.
    pub id: String,
    /// Its control number.
    pub control_no: String,
    /// Its level.
    pub level: &'static str,
    /// Its home cabinet.
    pub home: &'static str,
    /// Its GIAI-96 tag.
    pub epc: Epc,
}

/// A registered person.
#[derive(Debug, Clone)]
pub struct Person {
    /// Their id.
    pub id: String,
    /// Their badge, if any.
    pub badge: Option<Epc>,
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The running site. See the module docs.
pub struct Site {
    /// The server's address (the same across restarts).
    pub addr: SocketAddr,
    /// The server, while running.
    pub server: Option<Proc>,
    /// The server's data directory.
    pub server_dir: PathBuf,
    server_config: PathBuf,
    tokens: HashMap<String, String>,
    /// People by name ([`ALICE`], ...).
    pub people: HashMap<&'static str, Person>,
    /// Carriers by control number.
    pub carriers: HashMap<String, Carrier>,
    /// The server's public key (standard base64), as pinned by the daemons.
    pub server_key: String,
    /// Key files of the registered devices, by device id.
    pub keys: HashMap<&'static str, PathBuf>,
    /// The gate, if started.
    pub gate: Option<Rig>,
    /// Cabinet `cab-1`, if started.
    pub cabinet: Option<Rig>,
    options: SiteOptions,
    root: tempfile::TempDir,
}

/// The accounts created at start: (username, roles).
const ACCOUNTS: [(&str, &str); 5] = [
    ("officer", "security_officer"),
    ("officer2", "security_officer"),
    ("custodian", "custodian"),
    ("guard", "guard"),
    ("auditor", "auditor"),
];

impl Site {
    /// Starts a site (see the module docs).
    pub async fn start(options: SiteOptions) -> anyhow::Result<Site> {
        let bins = binaries();
        let root = tempfile::Builder::new().prefix("custos-e2e-").tempdir()?;
        let server_dir = root.path().join("server");
        let password_file = root.path().join("admin.pw");
        std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n"))?;
        std::fs::set_permissions(
            &password_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )?;
        let init = tokio::process::Command::new(&bins.server)
            .arg("init")
            .arg("--data-dir")
            .arg(&server_dir)
            .args(["--admin-user", "admin", "--admin-password-file"])
            .arg(&password_file)
            .env_remove("RUST_LOG")
            .output()
            .await?;
        ensure!(
            init.status.success(),
            "custos-server init failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let server_config = root.path().join("server.toml");
        let s = options.server;
        std::fs::write(
            &server_config,
            format!(
                "data_dir = {dir:?}\nlisten = \"{addr}\"\nlog_filter = \"info\"\n\
                 sweep_interval_ms = {}\ncabinet_removal_grace_ms = {}\n\
                 supervision_interval_secs = {}\ntag_clone_min_travel_secs = 0\n",
                s.sweep_interval_ms,
                s.cabinet_removal_grace_ms,
                s.supervision_interval_secs,
                dir = server_dir.to_str().context("data dir path")?,
            ),
        )?;
        let mut site = Site {
            addr,
            server: None,
            server_dir,
            server_config,
            tokens: HashMap::new(),
            people: HashMap::new(),
            carriers: HashMap::new(),
            server_key: String::new(),
            keys: HashMap::new(),
            gate: None,
            cabinet: None,
            options,
            root,
        };
        site.start_server().await?;
        site.register().await?;
        if options.gate {
            site.gate = Some(site.rig(GATE).await?);
            let gate = site.gate.as_mut().context("gate")?;
            gate.start_daemon().await?;
            gate.wait_policy_held().await?;
        }
        if options.cabinet {
            site.cabinet = Some(site.rig(CAB1).await?);
            site.cabinet
                .as_mut()
                .context("cabinet")?
                .start_daemon()
                .await?;
        }
        Ok(site)
    }

    /// The temporary directory everything lives in.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The options the site was started with.
    pub fn options(&self) -> SiteOptions {
        self.options
    }

    /// Starts `custos-server serve` and waits for its `listening on` line; logs everyone in.
    pub async fn start_server(&mut self) -> anyhow::Result<()> {
        ensure!(self.server.is_none(), "the server is already running");
        let config = self.server_config.to_str().context("config path")?;
        let proc = Proc::spawn(
            "custos-server",
            &binaries().server,
            &["serve", "--config", config],
            &[],
        )?;
        let listening = proc.stdout_line("listening on http://", STEP).await?;
        ensure!(
            listening == self.addr.to_string(),
            "listening on {listening}, expected {}",
            self.addr
        );
        self.server = Some(proc);
        // Log in again everyone who was logged in before a restart.
        let mut users: Vec<String> = self.tokens.drain().map(|(user, _)| user).collect();
        if users.is_empty() {
            users.push("admin".to_owned());
        }
        for user in users {
            let password = if user == "admin" {
                ADMIN_PASSWORD
            } else {
                PASSWORD
            };
            self.login(&user, password).await?;
        }
        Ok(())
    }

    /// SIGTERM to the server; it must stop cleanly.
    pub async fn stop_server(&mut self) -> anyhow::Result<()> {
        let mut proc = self.server.take().context("the server is not running")?;
        let status = proc.terminate(STEP).await?;
        ensure!(status.success(), "custos-server exited with {status}");
        Ok(())
    }

    async fn login(&mut self, user: &str, password: &str) -> anyhow::Result<()> {
        let reply = http::call(
            self.addr,
            Method::POST,
            "/api/v1/session",
            None,
            Some(&json!({"username": user, "password": password})),
        )
        .await?;
        ensure!(
            reply.status == 200,
            "login {user}: {} {}",
            reply.status,
            reply.text()
        );
        let token = reply.json()["token"]
            .as_str()
            .context("login token")?
            .to_owned();
        self.tokens.insert(user.to_owned(), token);
        Ok(())
    }

    /// The bearer token of `user`.
    pub fn token(&self, user: &str) -> anyhow::Result<&str> {
        self.tokens
            .get(user)
            .map(String::as_str)
            .with_context(|| format!("no session for {user}"))
    }

    /// A JSON request as `user` (`None`: anonymous).
    pub async fn call(
        &self,
        user: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Reply> {
        let token = user.map(|u| self.token(u)).transpose()?;
        http::call(self.addr, method, path, token, body.as_ref()).await
    }

    /// A JSON request as `user` that must answer `status`; returns the body.
    pub async fn expect(
        &self,
        user: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> anyhow::Result<Value> {
        let reply = self.call(Some(user), method.clone(), path, body).await?;
        ensure!(
            reply.status == status,
            "{method} {path} as {user}: expected {status}, got {} {}",
            reply.status,
            reply.text()
        );
        Ok(reply.json())
    }

    /// GET as `user`, expecting 200.
    pub async fn get(&self, user: &str, path: &str) -> anyhow::Result<Value> {
        self.expect(user, Method::GET, path, None, 200).await
    }

    /// POST as `user`, expecting `status`.
    pub async fn post(
        &self,
        user: &str,
        path: &str,
        body: Value,
        status: u16,
    ) -> anyhow::Result<Value> {
        self.expect(user, Method::POST, path, Some(body), status)
            .await
    }

    async fn register(&mut self) -> anyhow::Result<()> {
        for (user, role) in ACCOUNTS {
            self.post("admin", "/api/v1/users", account_body(role, user), 201)
                .await?;
            self.login(user, INITIAL_PASSWORD).await?;
            self.post(
                user,
                "/api/v1/session/password",
                json!({"old": INITIAL_PASSWORD, "new": PASSWORD}),
                204,
            )
            .await?;
        }
        for (id, level) in [("inside", "S"), ("outside", "public"), ("vault", "S")] {
            self.post(
                "admin",
                "/api/v1/zones",
                json!({"id": id, "name": id, "level": level}),
                201,
            )
            .await?;
        }
        std::fs::create_dir(self.root().join("keys"))?;
        for (id, placement) in [
            (
                GATE,
                json!({"kind": "gate", "inside_zone": "inside", "outside_zone": "outside"}),
            ),
            (CAB1, json!({"kind": "cabinet", "zone": "vault"})),
            (CAB2, json!({"kind": "cabinet", "zone": "vault"})),
        ] {
            let key_file = self.root().join("keys").join(format!("{id}.key"));
            let public_key = keygen(&key_file).await?;
            let mut body = placement;
            body["id"] = json!(id);
            body["public_key"] = json!(public_key);
            self.post("admin", "/api/v1/devices", body, 201).await?;
            self.keys.insert(id, key_file);
        }
        let key = self
            .call(None, Method::GET, "/api/v1/server-key", None)
            .await?
            .json();
        ensure!(key["algorithm"] == "ed25519", "server key: {key}");
        self.server_key = key["public_key"]
            .as_str()
            .context("server public key")?
            .to_owned();

        for (name, category, badge_hex, training) in [
            (ALICE, "important", Some(ALICE_BADGE), "2099-12-31"),
            (BOB, "important", Some(BOB_BADGE), "2099-12-31"),
            (CAROL, "core", Some(CAROL_BADGE), "2099-12-31"),
            (DAVE, "important", None, "2020-06-30"),
        ] {
            let mut body = json!({
                "name": name, "department": "R&D", "category": category,
                "training_valid_until": training, "commitment_signed_on": "2020-01-01"
            });
            if let Some(b) = badge_hex {
                body["badge_tag"] = json!(b);
            }
            let created = self.post("officer", "/api/v1/people", body, 201).await?;
            let id = created["id"].as_str().context("person id")?.to_owned();
            self.people.insert(
                name,
                Person {
                    id,
                    badge: badge_hex.map(badge),
                },
            );
        }

        let mut specs: Vec<(String, &'static str, &'static str, u64)> = (1..=6)
            .map(|n| (format!("S-{n}"), "S", CAB1, 1000 + n))
            .collect();
        specs.push(("TS-1".to_owned(), "TS", CAB1, 2001));
        specs.push(("S-9".to_owned(), "S", CAB2, 1009));
        for (control_no, level, home, asset) in specs {
            let epc = tds::giai96(0, COMPANY_PREFIX, asset)?;
            let created = self
                .post(
                    "custodian",
                    "/api/v1/carriers",
                    json!({
                        "control_no": control_no, "kind": "paper", "level": level,
                        "title": format!("title of {control_no}"), "owner_unit": "secrecy office",
                        "home_device": home, "copy_no": 1, "copies": 1,
                        "tags": [format!("epc:{epc}")]
                    }),
                    201,
                )
                .await?;
            let id = created["id"].as_str().context("carrier id")?.to_owned();
            self.carriers.insert(
                control_no.clone(),
                Carrier {
                    id,
                    control_no,
                    level,
                    home,
                    epc,
                },
            );
        }
        Ok(())
    }

    /// The carrier with control number `control_no`.
    pub fn carrier(&self, control_no: &str) -> &Carrier {
        self.carriers
            .get(control_no)
            .unwrap_or_else(|| panic!("no carrier {control_no}"))
    }

    /// The person `name`.
    pub fn person(&self, name: &str) -> &Person {
        self.people
            .get(name)
            .unwrap_or_else(|| panic!("no person {name}"))
    }

    /// The gate (started with [`SiteOptions::gate`]).
    pub fn gate(&self) -> &Rig {
        self.gate.as_ref().expect("the site has a gate")
    }

    /// The gate, mutably.
    pub fn gate_mut(&mut self) -> &mut Rig {
        self.gate.as_mut().expect("the site has a gate")
    }

    /// Cabinet `cab-1` (started with [`SiteOptions::cabinet`]).
    pub fn cabinet(&self) -> &Rig {
        self.cabinet.as_ref().expect("the site has a cabinet")
    }

    /// Starts the simulated hardware of `device_id` and writes its daemon configuration.
    async fn rig(&self, device_id: &'static str) -> anyhow::Result<Rig> {
        if device_id == GATE && self.options.llrp_gate {
            return self.llrp_rig(device_id).await;
        }
        let bins = binaries();
        let dir = self.root().join(device_id);
        std::fs::create_dir(&dir)?;
        let link = dir.join("uhf");
        let control = dir.join("uhf.sock");
        let link_arg = link.to_str().context("link path")?;
        let control_arg = control.to_str().context("control path")?;
        let reader = Proc::spawn(
            &format!("uhf-reader {device_id}"),
            &bins.sim,
            &[
                "uhf-reader",
                "--protocol",
                "uhf-a0",
                "--link",
                link_arg,
                "--control",
                control_arg,
            ],
            &[("RUST_LOG", "custos_sim=info")],
        )?;
        let ready = reader.stdout_line("ready uhf-reader ", STEP).await?;
        ensure!(ready == link_arg, "reader ready at {ready}");
        let gate = device_id == GATE;
        let (io, io_addr) = if gate {
            let io_control = dir.join("gate-io.sock");
            let io = Proc::spawn(
                "gate-io",
                &bins.sim,
                &[
                    "gate-io",
                    "--listen",
                    "127.0.0.1:0",
                    "--control",
                    io_control.to_str().context("control path")?,
                ],
                &[("RUST_LOG", "custos_sim=info")],
            )?;
            let addr: SocketAddr = io.stdout_line("ready gate-io ", STEP).await?.parse()?;
            (Some(io), Some(addr))
        } else {
            (None, None)
        };
        let data_dir = dir.join("data");
        let config = dir.join("custosd.toml");
        let key_file = self.keys.get(device_id).context("device key")?;
        std::fs::write(
            &config,
            daemon_config(
                device_id,
                self.addr,
                key_file,
                &data_dir,
                &self.server_key,
                &link,
                io_addr,
                self.options.daemon,
            ),
        )?;
        Ok(Rig {
            device_id,
            reader,
            control: Control::new(control),
            io,
            daemon: None,
            config,
            data_dir,
            epoch: 0,
        })
    }

    /// Starts a simulated LLRP reader for `device_id` (a gate whose alarm is on the reader's
    /// GPOs) and writes its daemon configuration.
    async fn llrp_rig(&self, device_id: &'static str) -> anyhow::Result<Rig> {
        let bins = binaries();
        let dir = self.root().join(device_id);
        std::fs::create_dir(&dir)?;
        let control = dir.join("llrp.sock");
        let reader = Proc::spawn(
            &format!("llrp-reader {device_id}"),
            &bins.sim,
            &[
                "llrp-reader",
                "--listen",
                "127.0.0.1:0",
                "--control",
                control.to_str().context("control path")?,
            ],
            &[("RUST_LOG", "custos_sim=info")],
        )?;
        let addr: SocketAddr = reader
            .stdout_line("ready llrp-reader ", STEP)
            .await?
            .parse()?;
        let data_dir = dir.join("data");
        let config = dir.join("custosd.toml");
        let key_file = self.keys.get(device_id).context("device key")?;
        std::fs::write(
            &config,
            llrp_gate_config(
                device_id,
                self.addr,
                key_file,
                &data_dir,
                &self.server_key,
                addr,
                self.options.daemon,
            ),
        )?;
        Ok(Rig {
            device_id,
            reader,
            control: Control::new(control),
            io: None,
            daemon: None,
            config,
            data_dir,
            epoch: 0,
        })
    }

    /// Connects to the alert stream as the guard.
    pub async fn alert_stream(&self) -> anyhow::Result<AlertStream> {
        AlertStream::connect(self.addr, self.token("guard")?).await
    }

    /// The alerts (newest first) as the guard sees them, filtered by state and kind.
    pub async fn alerts(
        &self,
        state: Option<&str>,
        kind: Option<&str>,
    ) -> anyhow::Result<Vec<Value>> {
        let path = format!(
            "/api/v1/alerts?limit=1000&state={}&kind={}",
            state.unwrap_or(""),
            kind.unwrap_or("")
        );
        let list = self.get("guard", &path).await?;
        Ok(list.as_array().context("an alert list")?.clone())
    }

    /// The guard console's device status (`GET /guard/status.json`, a page: the session
    /// travels as the `custos_session` cookie): the entry of `device_id`.
    pub async fn device_status(&self, device_id: &str) -> anyhow::Result<Value> {
        let cookie = format!("custos_session={}", self.token("guard")?);
        let reply = http::request(
            self.addr,
            Method::GET,
            "/guard/status.json",
            &[("cookie", cookie.as_str())],
            Vec::new(),
        )
        .await?;
        ensure!(
            reply.status == 200,
            "guard status: {} {}",
            reply.status,
            reply.text()
        );
        let status = reply.json();
        status["readers"]
            .as_array()
            .and_then(|r| r.iter().find(|d| d["device_id"] == device_id))
            .cloned()
            .with_context(|| format!("{device_id} not in the guard status: {status}"))
    }

    /// Waits until the guard console shows `device_id` in `state` (`ok`, `fault`, `silent`, ...).
    pub async fn wait_device_state(
        &self,
        device_id: &str,
        state: &str,
        within: Duration,
    ) -> anyhow::Result<Value> {
        poll_some(
            &format!("{device_id} to be {state}"),
            within,
            || async move {
                let status = self.device_status(device_id).await?;
                Ok((status["state"] == state).then_some(status))
            },
        )
        .await
    }

    /// A carrier's history (`GET /carriers/{id}/history`) as the custodian sees it.
    pub async fn history(&self, carrier_id: &str) -> anyhow::Result<Vec<Value>> {
        let list = self
            .get(
                "custodian",
                &format!("/api/v1/carriers/{carrier_id}/history"),
            )
            .await?;
        Ok(list.as_array().context("a history")?.clone())
    }

    /// A carrier as the custodian sees it.
    pub async fn carrier_view(&self, carrier_id: &str) -> anyhow::Result<Value> {
        self.get("custodian", &format!("/api/v1/carriers/{carrier_id}"))
            .await
    }

    /// Requests a sign-out of `carrier_ids` to `borrower` (custodian), has it approved (by
    /// `officer`, and `officer2` when a second approval is needed) and issued; returns its id.
    pub async fn sign_out(
        &self,
        carrier_ids: &[&str],
        borrower: &str,
        may_leave: bool,
        due_in: Duration,
    ) -> anyhow::Result<String> {
        let id = self
            .request_signout(carrier_ids, borrower, may_leave, due_in)
            .await?;
        let path = format!("/api/v1/signouts/{id}/approve");
        let mut state = self.post("officer", &path, json!({}), 200).await?;
        if state["state"] == "requested" {
            state = self.post("officer2", &path, json!({}), 200).await?;
        }
        ensure!(state["state"] == "approved", "after approval: {state}");
        let issued = self
            .post(
                "custodian",
                &format!("/api/v1/signouts/{id}/issue"),
                json!({}),
                200,
            )
            .await?;
        ensure!(issued["state"] == "out", "after issue: {issued}");
        Ok(id)
    }

    /// Requests a sign-out (custodian) due `due_in` from now; returns its id.
    pub async fn request_signout(
        &self,
        carrier_ids: &[&str],
        borrower: &str,
        may_leave: bool,
        due_in: Duration,
    ) -> anyhow::Result<String> {
        let borrower = self.person(borrower).id.clone();
        let created = self
            .post(
                "custodian",
                "/api/v1/signouts",
                json!({
                    "carrier_ids": carrier_ids, "borrower": borrower, "purpose": "review",
                    "due_at": rfc3339_in(due_in)?, "may_leave": may_leave
                }),
                201,
            )
            .await?;
        ensure!(created["state"] == "requested", "new sign-out: {created}");
        Ok(created["id"].as_str().context("sign-out id")?.to_owned())
    }

    /// Opens the server's database read-only.
    pub fn server_db(&self) -> anyhow::Result<rusqlite::Connection> {
        open_read_only(&self.server_dir.join("custos.db"))
    }

    /// What `device_id` last reported in a heartbeat (`device_status.health_json`): its
    /// outbox depth, readers, held policy version; `None` before its first heartbeat.
    pub fn reported_status(&self, device_id: &str) -> anyhow::Result<Option<Value>> {
        let db = self.server_db()?;
        let mut stmt = db.prepare("SELECT health_json FROM device_status WHERE device_id = ?1")?;
        let mut rows = stmt.query([device_id])?;
        match rows.next()? {
            None => Ok(None),
            Some(row) => {
                let text: Option<String> = row.get(0)?;
                Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
            }
        }
    }

    /// Waits until `device_id` reports, in a heartbeat sent after this call, a status for
    /// which `check` holds (see [`Site::reported_status`]); returns that status.
    pub async fn wait_heartbeat(
        &self,
        device_id: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis();
        let since = i64::try_from(since)?;
        let check = &check;
        poll_some(
            &format!("{device_id} to report {what}"),
            STEP,
            || async move {
                Ok(self
                    .reported_status(device_id)?
                    .filter(|s| s["device_at_ms"].as_i64().is_some_and(|t| t >= since) && check(s)))
            },
        )
        .await
    }

    /// Waits until a heartbeat of `device_id` sent after now reports an empty outbox.
    pub async fn wait_outbox_drained(&self, device_id: &str) -> anyhow::Result<()> {
        self.wait_heartbeat(device_id, "an empty outbox", |s| s["outbox_depth"] == 0)
            .await?;
        Ok(())
    }

    /// Per epoch of `device_id`'s stored events: (epoch, count, min seq, max seq).
    pub fn stored_epochs(&self, device_id: &str) -> anyhow::Result<Vec<(u64, u64, u64, u64)>> {
        let db = self.server_db()?;
        let mut stmt = db.prepare(
            "SELECT epoch, count(*), min(seq), max(seq) FROM events WHERE device_id = ?1
             GROUP BY epoch ORDER BY epoch",
        )?;
        let rows = stmt.query_map([device_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Prints the last lines of every process (for a failing test).
    pub fn dump(&self) {
        let mut procs: Vec<&Proc> = self.server.iter().collect();
        for rig in self.gate.iter().chain(self.cabinet.iter()) {
            procs.push(&rig.reader);
            procs.extend(rig.io.iter());
            procs.extend(rig.daemon.iter());
        }
        for proc in procs {
            eprintln!("{}", proc_tail(proc));
        }
    }
}

/// The tail of a process's output without the UHF driver's per-round trace entries.
fn proc_tail(proc: &Proc) -> String {
    let mut out = format!("===== {} (pid {:?})\n", proc.name(), proc.pid());
    for (stream, lines) in [("stdout", &proc.stdout), ("stderr", &proc.stderr)] {
        let lines: Vec<String> = lines
            .tail(2_000)
            .into_iter()
            .filter(|l| !l.contains("\"round end\""))
            .collect();
        out.push_str(&format!("--- {stream}\n"));
        for line in &lines[lines.len().saturating_sub(60)..] {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

impl Drop for Site {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump();
        }
        // Daemons first (they talk to everything else), then the hardware, then the server;
        // the temporary directory goes last, with the struct.
        for rig in self.gate.iter_mut().chain(self.cabinet.iter_mut()) {
            rig.daemon.take();
            rig.io.take();
        }
        self.gate.take();
        self.cabinet.take();
        self.server.take();
    }
}

/// `now + in` as RFC 3339 (whole seconds, rounded up).
pub fn rfc3339_in(within: Duration) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let at = now + within;
    let secs = i64::try_from(at.as_secs() + u64::from(at.subsec_nanos() > 0))?;
    Ok(Timestamp::from_unix(secs)
        .context("time in range")?
        .to_string())
}

/// `custosd keygen --out FILE`; returns the printed public key.
pub async fn keygen(file: &Path) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(&binaries().daemon)
        .arg("keygen")
        .arg("--out")
        .arg(file)
        .env_remove("RUST_LOG")
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "custosd keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Waits until `check` holds for the alerts of `kind` listed with `state` (polling the API
/// every 50 ms); returns that list.
pub async fn wait_alerts(
    site: &Site,
    state: Option<&str>,
    kind: &str,
    within: Duration,
    check: impl Fn(&[Value]) -> bool,
) -> anyhow::Result<Vec<Value>> {
    let end = Instant::now() + within;
    loop {
        let found = site.alerts(state, Some(kind)).await?;
        if check(&found) {
            return Ok(found);
        }
        if Instant::now() >= end {
            bail!("timed out after {within:?} waiting for {kind} alerts; last seen: {found:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The EPCs of carriers, by control number.
pub fn epcs(site: &Site, control_nos: &[&str]) -> Vec<Epc> {
    control_nos.iter().map(|c| site.carrier(c).epc).collect()
}

/// A new account's body: a privileged account (security officer, auditor) names its holder,
/// registered with it on the register of people (duties are kept apart per person).
fn account_body(role: &str, username: &str) -> Value {
    let mut body = json!({"username": username, "password": INITIAL_PASSWORD, "roles": [role]});
    if matches!(role, "admin" | "security_officer" | "auditor") {
        body["new_person"] = json!({"name": username, "department": "保密办", "category": "core"});
    }
    body
}
