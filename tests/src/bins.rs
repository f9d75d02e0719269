//! Where the three binaries under test are, and making sure they are built.
//!
//! An integration test of this crate cannot use `CARGO_BIN_EXE_*` of another package, and Cargo
//! builds only the *library* target of a dependency: listing `custos-server`, `custos-daemon` and
//! `custos-sim` under `[dependencies]` orders their libraries before this crate but does not
//! build `custos-server`, `custosd` or `custos-sim` (`cargo test --workspace` happens to build
//! them, because those packages have integration tests of their own; `cargo test -p custos-e2e`
//! does not). So the first test of each test process runs
//!
//! ```text
//! cargo test --workspace --no-run
//! ```
//!
//! with the `cargo` that built the tests (`env!("CARGO")`), into the same target directory and
//! profile as the running test executable, behind a [`OnceLock`] (one build per process; the
//! other tests wait for it). It is the build `cargo test --workspace` (the project's test
//! command) has just done, with the same feature unification (dev-dependencies included), so
//! there it finds everything fresh and takes about a second; `cargo build --bins -p ...` would
//! unify features without the dev-dependencies and compile a second copy of the dependency
//! tree. After `cargo test -p custos-e2e` the first run builds the workspace's tests once.
//!
//! The environment variables Cargo sets for a running test (`CARGO_MANIFEST_DIR`,
//! `CARGO_PKG_*`, ...) are removed for that nested build: some build scripts (ring's) rerun when
//! they change, which would rebuild half the dependency tree on every run, twice.
//!
//! The binaries are then taken from the profile directory (`target/debug/custosd`), or rather
//! from the hashed file in `target/debug/deps/` that it is a hard link of: that name is unique
//! to this checkout (the hash covers the package's path), so another checkout sharing the target
//! directory cannot replace the binary under a running test.
//!
//! Environment:
//! - `CUSTOS_E2E_BIN_DIR=DIR`: use the binaries in `DIR` as they are; build nothing.
//! - `CUSTOS_E2E_NO_BUILD=1`: build nothing; take the binaries next to the test executable.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Paths of the binaries under test.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `custos-server`.
    pub server: PathBuf,
    /// `custosd`.
    pub daemon: PathBuf,
    /// `custos-sim`.
    pub sim: PathBuf,
}

/// The binaries, built on first use (see the module docs). Blocks while the build runs.
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        if let Some(dir) = std::env::var_os("CUSTOS_E2E_BIN_DIR") {
            let dir = PathBuf::from(dir);
            return Binaries {
                server: dir.join("custos-server"),
                daemon: dir.join("custosd"),
                sim: dir.join("custos-sim"),
            };
        }
        let profile_dir = profile_dir();
        if std::env::var_os("CUSTOS_E2E_NO_BUILD").is_none() {
            build(&profile_dir);
        }
        let binaries = Binaries {
            server: locate(&profile_dir, "custos-server"),
            daemon: locate(&profile_dir, "custosd"),
            sim: locate(&profile_dir, "custos-sim"),
        };
        eprintln!("custos-e2e: binaries under test: {binaries:?}");
        binaries
    })
}

/// `target/<profile>`: the test executable lives in its `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable is in a directory");
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps has a parent")
    } else {
        deps
    };
    dir.to_owned()
}

/// Environment variables Cargo sets for a running test, which a nested build must not see.
fn set_by_cargo_for_tests(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(
            name,
            "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

fn build(profile_dir: &Path) {
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory is inside the target directory");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut command = Command::new(env!("CARGO"));
    command
        .args(["test", "--workspace", "--no-run", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(other) => {
            command.args(["--profile", other]);
        }
    }
    let removed: Vec<OsString> = std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| k.to_str().is_some_and(set_by_cargo_for_tests))
        .collect();
    for name in removed {
        command.env_remove(name);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", env!("CARGO")));
    assert!(
        output.status.success(),
        "building the binaries under test failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `profile_dir/name`, or the file in `deps/` it is a hard link of.
fn locate(profile_dir: &Path, name: &str) -> PathBuf {
    let uplifted = profile_dir.join(name);
    let meta = std::fs::metadata(&uplifted).unwrap_or_else(|e| {
        panic!(
            "{} not found ({e}); build it or set CUSTOS_E2E_BIN_DIR",
            uplifted.display()
        )
    });
    let prefix = format!("{}-", name.replace('-', "_"));
    let hashed = std::fs::read_dir(profile_dir.join("deps"))
        .into_iter()
        .flatten()
        .flatten()
        .find(|entry| {
            entry.file_name().to_str().is_some_and(|f| {
                f.starts_with(&prefix) && !f.contains('.') && f.len() > prefix.len()
            }) && entry
                .metadata()
                .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
        });
    hashed.map_or(uplifted, |entry| entry.path())
}
