//! CPU and memory of the platform's process, sampled from `/proc` (Linux) once a second, and
//! the machine's CPU model, cores and memory.

use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/<pid>/stat` times: 100 on every mainstream Linux build.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// User plus system CPU time so far, seconds.
    pub cpu_seconds: f64,
    /// Resident memory, MiB.
    pub rss_mib: f64,
}

/// Reads process `pid`; `None` if it is gone or `/proc` says something unexpected.
pub fn read(pid: u32) -> Option<Reading> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Reading {
        cpu_seconds: cpu_seconds(&stat)?,
        rss_mib: rss_mib(&status)?,
    })
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in seconds. The command name
/// (field 2) may hold spaces, so fields are counted after its closing parenthesis.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// `VmRSS` of `/proc/<pid>/status`, in MiB.
fn rss_mib(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU use between two readings, in percent of one core.
pub fn cpu_percent(before: Reading, after: Reading, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    (after.cpu_seconds - before.cpu_seconds).max(0.0) / secs * 100.0
}

/// Samples so far: (seconds since the start, CPU % of one core, RSS MiB).
pub type Samples = std::sync::Arc<std::sync::Mutex<Vec<(f64, f64, f64)>>>;

/// Samples `pid` every second until the returned task is aborted.
pub fn sample_every_second(pid: u32, start: Instant) -> (tokio::task::JoinHandle<()>, Samples) {
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = std::sync::Arc::clone(&samples);
    let task = tokio::spawn(async move {
        let Some(mut last) = read(pid) else { return };
        let mut at = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Some(now) = read(pid) else { return };
            let elapsed = at.elapsed();
            at = Instant::now();
            let cpu = cpu_percent(last, now, elapsed);
            last = now;
            if let Ok(mut samples) = out.lock() {
                samples.push((
                    at.saturating_duration_since(start).as_secs_f64(),
                    cpu,
                    now.rss_mib,
                ));
            }
        }
    });
    (task, samples)
}

/// This machine, e.g. `AMD EPYC 7B13, 2 cores, 23.4 GiB` (Linux `/proc`; `unknown` parts
/// elsewhere).
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    describe_machine(&cpuinfo, &meminfo)
}

fn describe_machine(cpuinfo: &str, meminfo: &str) -> String {
    let field = |line: &str, name: &str| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim().to_owned())
    };
    let model = cpuinfo
        .lines()
        .find_map(|l| field(l, "model name"))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = cpuinfo
        .lines()
        .filter(|l| field(l, "processor").is_some())
        .count();
    let memory = meminfo
        .lines()
        .find_map(|l| field(l, "MemTotal"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or_else(
            || "unknown memory".to_owned(),
            |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
        );
    format!("{model}, {cores} cores, {memory}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_and_memory_lines() {
        let stat = "4242 (receipts (up)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 \
                    40 0 100 2000000 5000 18446744073709551615";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        let status = "Name:\treceipts\nVmPeak:\t  300000 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(rss_mib(status), Some(100.0));
        assert_eq!(cpu_seconds("garbage"), None);
    }

    #[test]
    fn cpu_percent_is_of_one_core() {
        let before = Reading {
            cpu_seconds: 1.0,
            rss_mib: 0.0,
        };
        let after = Reading {
            cpu_seconds: 1.5,
            rss_mib: 0.0,
        };
        assert_eq!(cpu_percent(before, after, Duration::from_secs(1)), 50.0);
    }

    #[test]
    fn describes_the_machine() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\n\
                       model name\t: AMD EPYC 7B13\n";
        let meminfo = "MemTotal:       24541200 kB\nMemFree:        1000 kB\n";
        assert_eq!(
            describe_machine(cpuinfo, meminfo),
            "AMD EPYC 7B13, 2 cores, 23.4 GiB"
        );
        assert_eq!(
            describe_machine("", ""),
            "unknown CPU, 0 cores, unknown memory"
        );
    }

    #[test]
    fn this_process_can_be_read() {
        let me = read(std::process::id()).expect("own /proc entry");
        assert!(me.rss_mib > 0.0);
    }
}
