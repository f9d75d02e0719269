//! The gate policy cache: the last signed [`GatePolicy`] the server issued for this gate, kept
//! in memory for the gate's offline decisions and on disk so that a daemon restarted while the
//! server is down still decides from it.
//!
//! # Trust
//!
//! A policy is used only if it verifies against the pinned server key (`server_public_key`):
//! when fetched (the uplink verifies it over the exact bytes received) and again when the cached
//! file is loaded at start. Without a pin no policy is fetched or loaded: the daemon logs a
//! warning and runs with no policy, so every carrier leaving without a server verdict alarms
//! (fail secure). A cached file that does not verify (tampered, another server's key, another
//! device) is refused with an error and left in place; the next fetch overwrites it.
//!
//! A fetched policy replaces the held one only if its version is higher (the server never
//! re-issues a version), so an old signed policy replayed by a man in the middle cannot bring
//! back a revoked sign-out. Whether the held policy is still valid is decided at each exit by
//! [`GatePolicy::decide`], not here.
//!
//! # When
//!
//! [`PolicyCache::run`] fetches at start, then every `policy_refresh` (default 60 s), at once
//! when asked through the [`PolicyRequests`] handle (a `RefreshPolicy` directive, or an answer
//! reporting a newer version than the one held), and after a failure again after a backoff
//! (1 s doubling up to the refresh period).
//!
//! # File
//!
//! `policy.json` in the data directory: `{"format":1,"signature":"...","body":"<base64>"}`, the
//! body being the HTTP body exactly as received (base64, so no byte can change on the way).
//! It is written atomically: a temporary file in the same directory is written and fsync'ed,
//! renamed over the old one, and the directory fsync'ed, so a power cut leaves either the old or
//! the new policy, never a torn one.

use std::collections::HashSet;
use std::fs::File;
use std::future::Future;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use custos_protocol::epc::Epc;
use custos_protocol::uplink::GatePolicy;
use hyper::body::Bytes;
use tokio::sync::{Notify, watch};

use crate::backoff::Backoff;
use crate::keys::PublicKey;
use crate::uplink::{SignedPolicy, Uplink, UplinkError};

/// The cache file's name inside the data directory.
pub const FILE_NAME: &str = "policy.json";

/// The file layout version written in `format`.
const FORMAT: u32 = 1;

/// The first wait after a failed fetch; it doubles up to the refresh period.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);

/// The policy held now, shared by every task that needs it (`None`: no policy).
pub type CurrentPolicy = watch::Receiver<Option<Arc<SignedPolicy>>>;

/// Reading or writing the cache file failed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read, written, synced or renamed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file (or directory) concerned.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a cached policy (not JSON of the expected shape, bad base64, unknown
    /// format).
    #[error("{}: not a cached policy: {detail}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The policy in the file does not verify against the pinned server key, or is not a
    /// valid policy for this device.
    #[error("{}: cached policy refused: {source}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why.
        source: UplinkError,
    },
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheFile {
    format: u32,
    signature: String,
    body: String,
}

/// Writes `policy` to `path` atomically (temporary file, fsync, rename, fsync of the directory).
pub fn save(path: &Path, policy: &SignedPolicy) -> Result<(), PolicyError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| PolicyError::Io { path, source }
    };
    let file = CacheFile {
        format: FORMAT,
        signature: policy.signature.clone(),
        body: STANDARD.encode(&policy.body),
    };
    // Serialising a struct of strings and an integer cannot fail.
    let mut text = serde_json::to_vec_pretty(&file).map_err(|e| PolicyError::Format {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    text.push(b'\n');
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("json.tmp");
    {
        // 0600: the policy lists the carriers allowed out (issue #9, private data files).
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(&text).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

/// Loads and verifies the policy cached at `path`; `Ok(None)` when there is no file.
pub fn load(
    path: &Path,
    server_key: &PublicKey,
    device_id: &str,
) -> Result<Option<SignedPolicy>, PolicyError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PolicyError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let format = |detail: String| PolicyError::Format {
        path: path.to_owned(),
        detail,
    };
    let file: CacheFile = serde_json::from_slice(&text).map_err(|e| format(e.to_string()))?;
    if file.format != FORMAT {
        return Err(format(format!("unknown format {}", file.format)));
    }
    let body = STANDARD
        .decode(file.body.as_bytes())
        .map_err(|e| format(format!("body: {e}")))?;
    SignedPolicy::verify(Bytes::from(body), file.signature, server_key, device_id)
        .map(Some)
        .map_err(|source| PolicyError::Refused {
            path: path.to_owned(),
            source,
        })
}

/// Whether a fetched policy should replace the one held: only a higher version does.
pub fn supersedes(held: Option<&GatePolicy>, fetched: &GatePolicy) -> bool {
    held.is_none_or(|h| fetched.version > h.version)
}

/// Every badge the policy names (its staff badges and the borrowers of its allowed carriers):
/// what the gate smoothers treat as staff badges rather than carriers.
pub fn badges(policy: &GatePolicy) -> HashSet<Epc> {
    policy
        .allowed
        .iter()
        .flat_map(|a| a.borrower_badges.iter().copied())
        .chain(policy.badges.iter().copied())
        .collect()
}

/// Asks a running [`PolicyCache`] to fetch now. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PolicyRequests(Arc<Notify>);

impl PolicyRequests {
    /// Fetch as soon as possible (several requests before the fetch make one fetch).
    pub fn refresh(&self) {
        self.0.notify_one();
    }
}

/// The task that keeps the policy current. See the module doc.
#[derive(Debug)]
pub struct PolicyCache {
    uplink: Arc<Uplink>,
    epoch: u64,
    path: PathBuf,
    server_key: Option<PublicKey>,
    refresh: Duration,
    current: watch::Sender<Option<Arc<SignedPolicy>>>,
    requests: Arc<Notify>,
}

impl PolicyCache {
    /// A cache for the gate `uplink` speaks for, persisting in `data_dir`, fetching every
    /// `refresh`, verifying with `server_key`. Loads the cached file at once (when a key is
    /// pinned), so the returned receiver holds it before the first fetch.
    pub fn new(
        uplink: Arc<Uplink>,
        epoch: u64,
        data_dir: &Path,
        server_key: Option<PublicKey>,
        refresh: Duration,
    ) -> (PolicyCache, CurrentPolicy, PolicyRequests) {
        let path = data_dir.join(FILE_NAME);
        let cached = match &server_key {
            None => None,
            Some(key) => match load(&path, key, uplink.device_id()) {
                Ok(Some(signed)) => {
                    tracing::info!(
                        version = signed.policy.version,
                        valid_until_ms = signed.policy.valid_until_ms,
                        "cached gate policy loaded"
                    );
                    Some(Arc::new(signed))
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(error = %e, "cached gate policy not used");
                    None
                }
            },
        };
        let (current, current_rx) = watch::channel(cached);
        let requests = Arc::new(Notify::new());
        let cache = PolicyCache {
            uplink,
            epoch,
            path,
            server_key,
            refresh: refresh.max(Duration::from_millis(1)),
            current,
            requests: requests.clone(),
        };
        (cache, current_rx, PolicyRequests(requests))
    }

    /// Fetches until `shutdown` completes (see the module doc). Without a pinned server key it
    /// only waits for shutdown.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        if self.server_key.is_none() {
            tracing::warn!(
                "no server_public_key: no gate policy; exits without a server verdict alarm"
            );
            shutdown.await;
            return;
        }
        let mut backoff = Backoff::new(RETRY_FIRST, self.refresh.max(RETRY_FIRST));
        loop {
            let wait = tokio::select! {
                biased;
                () = &mut shutdown => break,
                result = self.fetch_once() => match result {
                    Ok(()) => {
                        backoff.reset();
                        self.refresh
                    }
                    Err(e) => {
                        let wait = backoff.next_delay();
                        tracing::warn!(error = %e, retry_in = ?wait, "gate policy fetch failed");
                        wait
                    }
                },
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep(wait) => {}
                () = self.requests.notified() => tracing::debug!("gate policy refresh requested"),
            }
        }
        tracing::debug!("policy cache stopped");
    }

    /// One fetch; adopts and persists the answer if it supersedes the policy held.
    async fn fetch_once(&self) -> Result<(), UplinkError> {
        let held = self.current.borrow().clone();
        let have = held.as_ref().map_or(0, |p| p.policy.version);
        let fetched = self.uplink.fetch_policy(self.epoch, have).await?;
        if !supersedes(held.as_deref().map(|p| &p.policy), &fetched.policy) {
            if fetched.policy.version < have {
                tracing::warn!(
                    held = have,
                    fetched = fetched.policy.version,
                    "server sent an older gate policy; keeping the one held"
                );
            }
            return Ok(());
        }
        let version = fetched.policy.version;
        // Persist first: a policy in use must survive a restart. A failure to persist is
        // logged; the policy is still used now.
        if let Err(e) = save(&self.path, &fetched) {
            tracing::error!(error = %e, "gate policy not cached on disk");
        }
        tracing::info!(
            version,
            carriers = fetched.policy.allowed.len(),
            valid_until_ms = fetched.policy.valid_until_ms,
            "gate policy updated"
        );
        self.current.send_replace(Some(Arc::new(fetched)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use custos_protocol::uplink::{AllowedCarrier, SignedKind, signing_bytes};
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair as _};

    use super::*;

    fn server() -> (Ed25519KeyPair, PublicKey) {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let public = PublicKey::from_bytes(pair.public_key().as_ref().try_into().unwrap());
        (pair, public)
    }

    fn policy(version: u64) -> GatePolicy {
        GatePolicy {
            device_id: "gate-1".into(),
            version,
            issued_at_ms: 1_000,
            valid_until_ms: 2_000,
            allowed: vec![AllowedCarrier {
                epc: Epc::from_hex("3474257BF40000000000162E").unwrap(),
                until_ms: 1_500,
                borrower_badges: vec![Epc::from_hex("E20000000000000000000A11").unwrap()],
                badge_required: false,
            }],
            badges: vec![],
        }
    }

    fn signed(pair: &Ed25519KeyPair, policy: &GatePolicy) -> SignedPolicy {
        let body = serde_json::to_vec(policy).unwrap();
        let signature = STANDARD.encode(pair.sign(&signing_bytes(SignedKind::Policy, &body)));
        SignedPolicy {
            policy: policy.clone(),
            body: Bytes::from(body),
            signature,
        }
    }

    #[test]
    fn saved_policy_loads_back_verified() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (pair, key) = server();
        assert!(load(&path, &key, "gate-1").unwrap().is_none());
        let p = signed(&pair, &policy(3));
        save(&path, &p).unwrap();
        assert_eq!(load(&path, &key, "gate-1").unwrap(), Some(p.clone()));
        // Overwriting leaves no temporary file behind.
        let p4 = signed(&pair, &policy(4));
        save(&path, &p4).unwrap();
        assert_eq!(load(&path, &key, "gate-1").unwrap(), Some(p4));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);
    }

    #[test]
    fn tampered_foreign_or_garbled_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (pair, key) = server();
        let p = signed(&pair, &policy(3));
        save(&path, &p).unwrap();
        // Another device's cache, or another server's key.
        assert!(matches!(
            load(&path, &key, "gate-2"),
            Err(PolicyError::Refused { .. })
        ));
        let (_, other) = server();
        assert!(matches!(
            load(&path, &other, "gate-1"),
            Err(PolicyError::Refused { .. })
        ));
        // A carrier's validity pushed back by a day, signature kept.
        let mut forged = policy(3);
        forged.allowed[0].until_ms += 86_400_000;
        let mut file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        file["body"] = STANDARD.encode(serde_json::to_vec(&forged).unwrap()).into();
        std::fs::write(&path, file.to_string()).unwrap();
        let err = load(&path, &key, "gate-1").unwrap_err();
        assert!(matches!(err, PolicyError::Refused { .. }), "{err}");
        assert!(err.to_string().contains("policy.json"), "{err}");
        // Not a cache file at all.
        std::fs::write(&path, b"{\"format\":1}").unwrap();
        assert!(matches!(
            load(&path, &key, "gate-1"),
            Err(PolicyError::Format { .. })
        ));
        file["format"] = 2.into();
        std::fs::write(&path, file.to_string()).unwrap();
        assert!(matches!(
            load(&path, &key, "gate-1"),
            Err(PolicyError::Format { .. })
        ));
    }

    /// Security review (issue 9, gate badge rule): a cached policy whose entry requires the
    /// borrower's badge refuses the exit with no badge read, as the server's verdict does
    /// (`badge_missing`); a cached policy from before the field loads and keeps the old rule.
    #[test]
    fn a_cached_policy_requires_the_badge_the_server_requires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (pair, key) = server();
        let doc = Epc::from_hex("3474257BF40000000000162E").unwrap();
        let alice = Epc::from_hex("E20000000000000000000A11").unwrap();
        let mut p = policy(5);
        p.allowed[0].badge_required = true;
        save(&path, &signed(&pair, &p)).unwrap();
        let cached = load(&path, &key, "gate-1").unwrap().unwrap().policy;
        assert!(cached.allowed[0].badge_required);
        assert_eq!(
            cached.decide(&[doc], &[], 1_200).reason(),
            Some(custos_protocol::uplink::AlarmReason::BadgeMissing)
        );
        assert!(!cached.decide(&[doc], &[alice], 1_200).alarm());

        // Signed bytes as an older server wrote them, without `badge_required`.
        let old = br#"{"device_id":"gate-1","version":4,"issued_at_ms":1000,"valid_until_ms":2000,"allowed":[{"epc":"3474257BF40000000000162E","until_ms":1500,"borrower_badges":["E20000000000000000000A11"]}]}"#;
        let signature = STANDARD.encode(pair.sign(&signing_bytes(SignedKind::Policy, old)));
        let file = serde_json::json!({
            "format": 1,
            "signature": signature,
            "body": STANDARD.encode(old),
        });
        std::fs::write(&path, file.to_string()).unwrap();
        let cached = load(&path, &key, "gate-1").unwrap().unwrap().policy;
        assert_eq!(cached, policy(4));
        assert!(!cached.decide(&[doc], &[], 1_200).alarm());
    }

    #[test]
    fn only_a_higher_version_supersedes() {
        assert!(supersedes(None, &policy(1)));
        assert!(supersedes(Some(&policy(1)), &policy(2)));
        assert!(!supersedes(Some(&policy(2)), &policy(2)));
        assert!(!supersedes(Some(&policy(3)), &policy(2)));
    }

    #[test]
    fn badges_are_the_staff_and_the_borrowers() {
        let borrower = Epc::from_hex("E20000000000000000000A11").unwrap();
        let staff = Epc::from_hex("E20000000000000000000B0B").unwrap();
        let mut p = policy(1);
        assert_eq!(badges(&p), [borrower].into());
        p.badges = vec![staff, borrower];
        assert_eq!(badges(&p), [borrower, staff].into());
    }

    #[tokio::test]
    async fn a_cached_policy_is_loaded_at_start_only_with_a_pin() {
        let dir = tempfile::tempdir().unwrap();
        let (pair, key) = server();
        let p = signed(&pair, &policy(5));
        save(&dir.path().join(FILE_NAME), &p).unwrap();
        let device = {
            let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
            crate::keys::DeviceKey::from_pkcs8(doc.as_ref()).unwrap()
        };
        let uplink = Arc::new(Uplink::new("http://127.0.0.1:9", "gate-1", device, None).unwrap());
        let (_, current, _) = PolicyCache::new(
            uplink.clone(),
            1,
            dir.path(),
            Some(key),
            Duration::from_secs(60),
        );
        assert_eq!(current.borrow().as_deref(), Some(&p));
        let (_, current, _) =
            PolicyCache::new(uplink, 1, dir.path(), None, Duration::from_secs(60));
        assert!(current.borrow().is_none());
    }
}
