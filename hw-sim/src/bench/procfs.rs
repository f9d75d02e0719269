//! CPU time and memory of a process and its threads, from `/proc` (Linux).
//!
//! CPU is `utime + stime` of `/proc/PID/stat` (fields 14 and 15, in clock ticks, usually 1/100 s),
//! which for a process includes the threads that have exited. Memory is `VmRSS` (resident now)
//! and `VmHWM` (the peak resident set since the process started) of `/proc/PID/status`.

use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Which process: this one or another by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proc {
    /// `/proc/self`.
    This,
    /// `/proc/PID`.
    Pid(u32),
}

impl Proc {
    fn dir(self) -> String {
        match self {
            Proc::This => "/proc/self".to_owned(),
            Proc::Pid(pid) => format!("/proc/{pid}"),
        }
    }
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let per_sec = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_secs_f64(ticks as f64 / per_sec as f64)
}

/// `utime + stime` in ticks from the text of a `stat` file.
fn stat_ticks(stat: &str) -> io::Result<u64> {
    stat_user_system(stat).map(|(u, s)| u + s)
}

/// `(utime, stime)` in ticks from the text of a `stat` file.
fn stat_user_system(stat: &str) -> io::Result<(u64, u64)> {
    // The command name (field 2) is in parentheses and may hold spaces or parentheses: the
    // fields after it start after the last ')'. utime and stime are fields 14 and 15, i.e. the
    // 12th and 13th after the name.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::other("stat without command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("stat field missing"))
    };
    Ok((field(11)?, field(12)?))
}

/// CPU time (user + system) a process has used so far.
///
/// # Errors
/// `/proc` could not be read (the process is gone).
pub fn cpu(proc: Proc) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("{}/stat", proc.dir()))?;
    stat_ticks(&stat).map(ticks_to_duration)
}

/// CPU time a process has used so far in the kernel (system time).
///
/// # Errors
/// `/proc` could not be read (the process is gone).
pub fn system_cpu(proc: Proc) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("{}/stat", proc.dir()))?;
    stat_user_system(&stat).map(|(_, s)| ticks_to_duration(s))
}

/// CPU time used so far by each live thread of this process, summed by thread name.
///
/// # Errors
/// `/proc/self/task` could not be listed.
pub fn threads_cpu() -> io::Result<BTreeMap<String, (usize, Duration)>> {
    let mut out: BTreeMap<String, (usize, Duration)> = BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task")?.flatten() {
        let path = task.path();
        // A thread may end between the listing and the reads: skip it.
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("stat")),
        ) else {
            continue;
        };
        let Ok(ticks) = stat_ticks(&stat) else {
            continue;
        };
        let entry = out.entry(name.trim().to_owned()).or_default();
        entry.0 += 1;
        entry.1 += ticks_to_duration(ticks);
    }
    Ok(out)
}

/// Resident memory of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// `VmRSS`: resident now, KiB.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident set so far, KiB.
    pub peak_rss_kib: u64,
}

/// Resident memory of a process.
///
/// # Errors
/// `/proc` could not be read, or lacks the fields.
pub fn memory(proc: Proc) -> io::Result<Memory> {
    let status = std::fs::read_to_string(format!("{}/status", proc.dir()))?;
    let kib = |key: &str| -> io::Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("no {key} in status")))
    };
    Ok(Memory {
        rss_kib: kib("VmRSS:")?,
        peak_rss_kib: kib("VmHWM:")?,
    })
}

/// CPU used over a window of wall time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuUse {
    /// CPU seconds (user + system) used in the window.
    pub cpu_seconds: f64,
    /// Of which in the kernel (system time), when measured.
    pub system_seconds: Option<f64>,
    /// Wall seconds of the window.
    pub wall_seconds: f64,
    /// `cpu_seconds / wall_seconds` in percent of one core (200 % = both cores of a 2-core
    /// machine busy).
    pub percent_of_one_core: f64,
}

impl CpuUse {
    /// From CPU and wall time.
    #[must_use]
    pub fn new(cpu: Duration, wall: Duration) -> CpuUse {
        let wall_seconds = wall.as_secs_f64();
        let cpu_seconds = cpu.as_secs_f64();
        CpuUse {
            cpu_seconds: round3(cpu_seconds),
            system_seconds: None,
            wall_seconds: round3(wall_seconds),
            percent_of_one_core: if wall_seconds > 0.0 {
                (cpu_seconds / wall_seconds * 1000.0).round() / 10.0
            } else {
                0.0
            },
        }
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A window over which a process's CPU use is measured.
#[derive(Debug, Clone, Copy)]
pub struct CpuWindow {
    proc: Proc,
    cpu: Duration,
    system: Duration,
    at: Instant,
}

impl CpuWindow {
    /// Starts measuring now.
    ///
    /// # Errors
    /// `/proc` could not be read.
    pub fn start(proc: Proc) -> io::Result<CpuWindow> {
        Ok(CpuWindow {
            proc,
            cpu: cpu(proc)?,
            system: system_cpu(proc)?,
            at: Instant::now(),
        })
    }

    /// What was used since the start.
    ///
    /// # Errors
    /// `/proc` could not be read.
    pub fn finish(&self) -> io::Result<CpuUse> {
        let used = cpu(self.proc)?.saturating_sub(self.cpu);
        let system = system_cpu(self.proc)?.saturating_sub(self.system);
        let mut out = CpuUse::new(used, self.at.elapsed());
        out.system_seconds = Some(round3(system.as_secs_f64()));
        Ok(out)
    }
}

/// How long `fsync` takes in `dir` now: `samples` appends of 100 bytes to a scratch file,
/// each followed by `sync_all`, 10 ms apart. SQLite commits of the server and the daemons'
/// outboxes wait for one or more of these.
///
/// # Errors
/// The scratch file could not be written.
pub fn fsync_latency(dir: &std::path::Path, samples: usize) -> io::Result<Vec<Duration>> {
    use std::io::Write as _;
    let path = dir.join(".fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        file.write_all(&[0x55; 100])?;
        let started = Instant::now();
        file.sync_all()?;
        out.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(out)
}

/// The load averages of `/proc/loadavg` (1, 5, 15 minutes), if readable.
#[must_use]
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_tricky_name() {
        let stat = "1234 (a b) c)) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 1 0";
        assert_eq!(stat_ticks(stat).unwrap(), 325);
        assert_eq!(stat_user_system(stat).unwrap(), (250, 75));
        assert!(stat_ticks("1234 no name").is_err());
        assert!(stat_ticks("1 (x) S 1 2").is_err());
    }

    #[test]
    fn this_process_has_cpu_memory_and_threads() {
        // Burn a little CPU so the counter moves past one tick.
        let window = CpuWindow::start(Proc::This).unwrap();
        let mut x = 0u64;
        let until = Instant::now() + Duration::from_millis(60);
        while Instant::now() < until {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert_ne!(x, 1);
        let used = window.finish().unwrap();
        assert!(used.cpu_seconds > 0.0, "{used:?}");
        assert!(used.wall_seconds >= 0.06);
        let m = memory(Proc::This).unwrap();
        assert!(m.rss_kib > 0 && m.peak_rss_kib >= m.rss_kib, "{m:?}");
        let threads = threads_cpu().unwrap();
        assert!(threads.values().map(|(n, _)| n).sum::<usize>() >= 1);
        assert!(load_average().is_some());
    }

    #[test]
    fn fsync_is_timed_and_the_scratch_file_removed() {
        let dir = std::env::temp_dir().join(format!("custos-fsync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let samples = fsync_latency(&dir, 3).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
    }
}
