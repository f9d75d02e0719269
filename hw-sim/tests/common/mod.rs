//! Helpers shared by the integration tests: unique temp dirs, deadlines on every await, a control
//! socket client, a host-side serial port, and the binary as a child process.
#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use custos_sim::ControlReply;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::{Child, ChildStdout, Command};
use tokio_serial::SerialPortBuilderExt as _;

/// The longest any single step may take before the test fails (generous: 2 cores, many builds).
pub const STEP: Duration = Duration::from_secs(10);

/// How long a peer must stay quiet for "it did not answer" checks.
pub const QUIET: Duration = Duration::from_millis(300);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("custos_sim=debug")
        .try_init();
}

/// Awaits `fut`, failing the test if it takes longer than [`STEP`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "custos-sim-{label}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A control socket client.
pub struct ControlClient {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
}

impl ControlClient {
    pub async fn connect(path: &Path) -> ControlClient {
        let stream = within("control connect", UnixStream::connect(path))
            .await
            .unwrap();
        let (read, write) = stream.into_split();
        ControlClient {
            lines: BufReader::new(read).lines(),
            write,
        }
    }

    /// Sends one line and returns the raw answer line.
    pub async fn raw(&mut self, line: &str) -> String {
        self.write
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        within("control answer", self.lines.next_line())
            .await
            .unwrap()
            .expect("control socket closed")
    }

    /// Sends one line and returns the parsed answer.
    pub async fn send(&mut self, line: &str) -> ControlReply {
        let answer = self.raw(line).await;
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("answer {answer:?}: {e}"))
    }

    /// Sends one line that must be accepted.
    pub async fn ok(&mut self, line: &str) {
        let reply = self.send(line).await;
        assert!(reply.ok, "{line} refused: {reply:?}");
    }

    /// Sends one line that must be refused; returns the error text.
    pub async fn refused(&mut self, line: &str) -> String {
        let reply = self.send(line).await;
        assert!(!reply.ok, "{line} accepted");
        reply.error.expect("a refusal carries an error")
    }
}

/// Opens the host side of a simulated serial port as custosd would.
pub fn open_host(path: &Path) -> tokio_serial::SerialStream {
    tokio_serial::new(path.to_string_lossy(), 115_200)
        .timeout(Duration::from_millis(100))
        .open_native_async()
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Reads exactly `n` bytes.
pub async fn read_n(stream: &mut (impl AsyncReadExt + Unpin), n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    within("serial read", stream.read_exact(&mut buf))
        .await
        .unwrap();
    buf
}

/// Asserts that nothing arrives within [`QUIET`].
pub async fn assert_quiet(stream: &mut (impl AsyncReadExt + Unpin)) {
    let mut buf = [0u8; 64];
    if let Ok(read) = tokio::time::timeout(QUIET, stream.read(&mut buf)).await {
        let n = read.unwrap();
        panic!("expected silence, got {:02X?}", &buf[..n]);
    }
}

/// The binary under test as a child process; killed if the test fails before `terminate`.
pub struct SimProcess {
    child: Child,
    stdout: Option<Lines<BufReader<ChildStdout>>>,
}

impl SimProcess {
    pub fn spawn(args: &[&str]) -> SimProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_custos-sim"))
            .args(args)
            .env("RUST_LOG", "custos_sim=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = Some(BufReader::new(child.stdout.take().unwrap()).lines());
        SimProcess { child, stdout }
    }

    /// The next stdout line, `None` at end of output.
    pub async fn next_line(&mut self) -> Option<String> {
        let stdout = self.stdout.as_mut().expect("stdout was closed");
        within("child stdout line", stdout.next_line())
            .await
            .unwrap()
    }

    /// Waits for `ready <device> <where>` and returns `<where>`.
    pub async fn ready(&mut self, device: &str) -> String {
        let line = self.next_line().await.expect("exited before ready");
        let prefix = format!("ready {device} ");
        line.strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("not a ready line: {line:?}"))
            .to_owned()
    }

    /// Stops reading stdout: the read end of the pipe is closed.
    pub fn close_stdout(&mut self) {
        self.stdout = None;
    }

    pub fn id(&self) -> u32 {
        self.child.id().expect("child still running")
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends SIGTERM and waits for the exit.
    pub async fn terminate(mut self) -> ExitStatus {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        within("child exit", self.child.wait()).await.unwrap()
    }

    /// Sends SIGINT (Ctrl-C) and waits for the child to exit.
    pub async fn interrupt(mut self) -> ExitStatus {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
        within("child exit", self.child.wait()).await.unwrap()
    }

    /// Waits for the child to exit on its own.
    pub async fn wait(mut self) -> ExitStatus {
        within("child exit", self.child.wait()).await.unwrap()
    }
}
