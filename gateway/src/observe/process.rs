//! The `process_*` metrics of the Prometheus client conventions, read from
//! `/proc/self` at scrape time: CPU seconds, resident and virtual memory, open
//! and maximum file descriptors, start time.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What `/proc/self/stat` says, in the units the metrics use.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ProcStat {
    pub cpu_seconds: f64,
    pub start_time_seconds: f64,
    pub virtual_bytes: f64,
    pub resident_bytes: f64,
}

/// Parses `/proc/self/stat` (fields after the parenthesized command name, which
/// may itself contain spaces and parentheses), given the kernel's clock tick
/// rate, page size and boot time.
pub fn parse_stat(stat: &str, ticks_per_second: f64, page_size: f64, boot_time: f64) -> Option<ProcStat> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name; `fields[i]` is field i + 3.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    Some(ProcStat {
        cpu_seconds: (field(14)? + field(15)?) / ticks_per_second,
        start_time_seconds: boot_time + field(22)? / ticks_per_second,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
    })
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

fn open_fds() -> Option<i64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as i64)
}

/// Encodes the `process_*` families (those that can be read).
pub fn encode(encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let page = rustix::param::page_size() as f64;
    let stat = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat(&s, ticks.max(1.0), page, boot_time().unwrap_or(0.0)));
    if let Some(stat) = stat {
        let c = ConstCounter::new(stat.cpu_seconds);
        c.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            c.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                stat.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                stat.virtual_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                stat.start_time_seconds,
            ),
        ] {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
    }
    if let Some(fds) = open_fds() {
        let g = ConstGauge::new(fds);
        g.encode(encoder.encode_descriptor(
            "process_open_fds",
            "Number of open file descriptors",
            None,
            g.metric_type(),
        )?)?;
    }
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if let Some(max) = limit.current {
        let g = ConstGauge::new(max.min(i64::MAX as u64) as i64);
        g.encode(encoder.encode_descriptor(
            "process_max_fds",
            "Maximum number of open file descriptors",
            None,
            g.metric_type(),
        )?)?;
    }
    Ok(())
}

/// The most a soft limit is raised to when the hard limit is "unlimited"
/// (the kernel's default `fs.nr_open`).
const DESCRIPTORS_CAP: u64 = 1 << 20;

/// Raises the soft limit on open descriptors to the hard limit, as Go's
/// runtime does at start: a service manager's default soft limit (1024 on
/// Debian) is far below what `limits.maxConnections` (default 10000) needs,
/// and the hard limit is what the operator granted. Returns the soft limit
/// in force afterwards (`None`: unlimited).
pub fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let want = limit.maximum.unwrap_or(DESCRIPTORS_CAP);
    match limit.current {
        Some(soft) if soft < want => {
            let raised = Rlimit {
                current: Some(want),
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => Some(want),
                Err(_) => Some(soft),
            }
        }
        current => current,
    }
}

/// The fewest descriptors a gateway with `max_connections` client
/// connections needs: one per client connection, and room for upstream
/// connections, listeners, the log and the runtime (busy upstream
/// connections can need as many again).
pub fn descriptors_needed(max_connections: u32) -> u64 {
    u64::from(max_connections) + 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        // A command name with spaces and a parenthesis, as the kernel writes it.
        let stat = "4242 (gate way) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 50 0 0 20 0 3 0 500 104857600 2560 18446744073709551615";
        let got = parse_stat(stat, 100.0, 4096.0, 1_000_000.0).expect("parses");
        assert_eq!(
            got,
            ProcStat {
                cpu_seconds: 2.0,
                start_time_seconds: 1_000_005.0,
                virtual_bytes: 104_857_600.0,
                resident_bytes: 2560.0 * 4096.0,
            }
        );
    }
}
