//! Child processes whose output is collected line by line, and waits on those lines.
//!
//! Every wait has a deadline and checks a condition on what was printed (a readiness line, a
//! log entry, a coil change); nothing here sleeps for a fixed time. A [`Proc`] is killed
//! (SIGKILL) when dropped, so a failing test leaves no process behind.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use rustix::process::{Pid, Signal, kill_process};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Lines printed by a process (or any other line source), kept in order, with waits on them.
#[derive(Debug, Default)]
pub struct Lines {
    lines: Mutex<Vec<String>>,
    closed: AtomicBool,
    changed: Notify,
}

impl Lines {
    /// A new, empty, open collection.
    pub fn new() -> Arc<Lines> {
        Arc::new(Lines::default())
    }

    /// Appends one line and wakes every waiter.
    pub fn push(&self, line: String) {
        self.lock().push(line);
        self.changed.notify_waiters();
    }

    /// Marks the end of the output (the process closed its stream).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Whether the end of the output was reached.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// How many lines there are so far: a mark for waits on what comes later.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was printed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the lines from index `from` on.
    pub fn since(&self, from: usize) -> Vec<String> {
        let lines = self.lock();
        lines.get(from..).unwrap_or_default().to_vec()
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let lines = self.lock();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the first line at index `from` or later that `matches`; returns its index and
    /// the line. Fails at `deadline`, or when the output ends without such a line.
    pub async fn wait_for(
        &self,
        from: usize,
        deadline: Instant,
        what: &str,
        mut matches: impl FnMut(&str) -> bool,
    ) -> anyhow::Result<(usize, String)> {
        let mut next = from;
        loop {
            // Registered before looking, so a line pushed in between still wakes us.
            let changed = self.changed.notified();
            {
                let lines = self.lock();
                while next < lines.len() {
                    if matches(&lines[next]) {
                        return Ok((next, lines[next].clone()));
                    }
                    next += 1;
                }
            }
            if self.is_closed() {
                bail!("output ended before {what}");
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                bail!("timed out waiting for {what}");
            }
        }
    }

    /// Like [`wait_for`](Self::wait_for), for lines that are JSON objects (others are skipped).
    pub async fn wait_json(
        &self,
        from: usize,
        deadline: Instant,
        what: &str,
        mut matches: impl FnMut(&Value) -> bool,
    ) -> anyhow::Result<(usize, Value)> {
        let (index, line) = self
            .wait_for(from, deadline, what, |line| {
                line.starts_with('{')
                    && serde_json::from_str::<Value>(line).is_ok_and(|v| matches(&v))
            })
            .await?;
        Ok((index, serde_json::from_str(&line)?))
    }

    /// Every line from `from` on that is a JSON object matching `matches`.
    pub fn json_since(&self, from: usize, mut matches: impl FnMut(&Value) -> bool) -> Vec<Value> {
        self.since(from)
            .iter()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| matches(v))
            .collect()
    }
}

/// The longest a single step (a start, a request, a condition) may take before a test fails.
/// Generous: two cores shared with compilers.
pub const STEP: Duration = Duration::from_secs(20);

/// A deadline `within` from now.
pub fn deadline(within: Duration) -> Instant {
    Instant::now() + within
}

fn collect(stream: impl AsyncRead + Unpin + Send + 'static, lines: Arc<Lines>) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            lines.push(line);
        }
        lines.close();
    });
}

/// A running child process with its stdout and stderr collected as [`Lines`].
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    pid: Option<u32>,
    exit: Option<ExitStatus>,
    /// What it printed on stdout.
    pub stdout: Arc<Lines>,
    /// What it printed on stderr.
    pub stderr: Arc<Lines>,
}

impl Proc {
    /// Starts `program` with `args` and extra environment `envs`; `name` labels it in messages.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> anyhow::Result<Proc> {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        let stdout = Lines::new();
        let stderr = Lines::new();
        collect(
            child.stdout.take().context("stdout is piped")?,
            stdout.clone(),
        );
        collect(
            child.stderr.take().context("stderr is piped")?,
            stderr.clone(),
        );
        let pid = child.id();
        Ok(Proc {
            name: name.to_owned(),
            child,
            pid,
            exit: None,
            stdout,
            stderr,
        })
    }

    /// The label given at start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Sends `signal` (if the process has not been reaped yet).
    pub fn signal(&mut self, signal: Signal) -> anyhow::Result<()> {
        if self.exit.is_some() || self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = self
            .pid
            .and_then(|p| i32::try_from(p).ok())
            .and_then(Pid::from_raw)
            .context("process id")?;
        kill_process(pid, signal).with_context(|| format!("signalling {}", self.name))?;
        Ok(())
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.exit.is_none() && matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the exit, at most until `deadline`.
    pub async fn wait(&mut self, deadline: Instant) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        let status = tokio::time::timeout_at(deadline, self.child.wait())
            .await
            .with_context(|| format!("{} did not exit in time", self.name))??;
        self.exit = Some(status);
        Ok(status)
    }

    /// SIGKILL, then waits for the exit.
    pub async fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        self.signal(Signal::KILL)?;
        self.wait(deadline(Duration::from_secs(10))).await
    }

    /// SIGTERM, then waits (up to `within`) for a clean exit.
    pub async fn terminate(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        self.signal(Signal::TERM)?;
        self.wait(deadline(within)).await
    }

    /// Waits for a stdout line starting with `prefix`; returns the rest of the line.
    pub async fn stdout_line(&self, prefix: &str, within: Duration) -> anyhow::Result<String> {
        let what = format!("{}: a stdout line {prefix:?}", self.name);
        let (_, line) = self
            .stdout
            .wait_for(0, deadline(within), &what, |l| l.starts_with(prefix))
            .await
            .with_context(|| self.tail(40))?;
        Ok(line[prefix.len()..].to_owned())
    }

    /// The last `n` lines of each stream, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let mut out = format!("--- {} (pid {:?}) stdout:\n", self.name, self.pid);
        for line in self.stdout.tail(n) {
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str(&format!("--- {} stderr:\n", self.name));
        for line in self.stderr.tail(n) {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.start_kill();
            // Reap it now if it is already gone; otherwise tokio reaps the orphan.
            let _ = self.child.try_wait();
        }
    }
}

/// Polls `check` every 50 ms until it answers `true`; fails after [`STEP`].
pub async fn poll_until<F, Fut>(what: &str, check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    poll_within(what, STEP, check).await
}

/// Polls `check` every 50 ms until it answers `true`; fails after `within`.
pub async fn poll_within<F, Fut>(what: &str, within: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let end = Instant::now() + within;
    loop {
        if check().await? {
            return Ok(());
        }
        if Instant::now() >= end {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` every 50 ms until it answers `Some`; fails after `within`.
pub async fn poll_some<T, F, Fut>(what: &str, within: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let end = Instant::now() + within;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() >= end {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
