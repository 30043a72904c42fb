//! What `/v1/agent/host` tells about the machine the agent runs on — OS, kernel, CPUs, memory and the
//! root disk — read from `/proc`, `/etc/os-release` and `statvfs`, in the shape of Consul's answer
//! (gopsutil's field names). A figure that cannot be read is left out and named in `Errors`, as Consul
//! does, rather than failing the whole answer.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// Largest `/proc` or `/etc` file read: these are a few kilobytes; anything bigger is not what we expect.
const PROC_FILE_BYTES_MAX: u64 = 1 << 20;

fn read_small(path: &str) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut text = String::new();
    file.take(PROC_FILE_BYTES_MAX).read_to_string(&mut text).map_err(|e| format!("{path}: {e}"))?;
    Ok(text)
}

/// The host's figures, and the errors met collecting them (`unix_time_ns` is `CollectionTime`).
pub fn collect(unix_time_ns: u128) -> Value {
    let mut errors = Vec::new();
    let mut keep = |result: Result<Value, String>| {
        result.unwrap_or_else(|e| {
            errors.push(e);
            Value::Null
        })
    };
    let memory = keep(read_small("/proc/meminfo").map(|text| memory(&text)));
    let cpu = keep(read_small("/proc/cpuinfo").map(|text| cpus(&text)));
    let host = keep(host());
    let disk = keep(disk("/"));
    json!({
        "Memory": memory,
        "CPU": cpu,
        "Host": host,
        "Disk": disk,
        "CollectionTime": unix_time_ns as u64,
        "Errors": if errors.is_empty() { Value::Null } else { json!(errors) },
    })
}

/// `/proc/meminfo` in bytes, with gopsutil's names for the figures people read.
fn memory(meminfo: &str) -> Value {
    let fields: BTreeMap<&str, u64> = meminfo
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some((name.trim(), kib * 1024))
        })
        .collect();
    let get = |name: &str| fields.get(name).copied().unwrap_or(0);
    let total = get("MemTotal");
    let available = get("MemAvailable");
    let used = total.saturating_sub(available);
    let used_percent = if total == 0 { 0.0 } else { used as f64 * 100.0 / total as f64 };
    json!({
        "total": total,
        "available": available,
        "used": used,
        "usedPercent": used_percent,
        "free": get("MemFree"),
        "buffers": get("Buffers"),
        "cached": get("Cached"),
        "swapTotal": get("SwapTotal"),
        "swapFree": get("SwapFree"),
    })
}

/// One entry per logical CPU of `/proc/cpuinfo`.
fn cpus(cpuinfo: &str) -> Value {
    let mut out = Vec::new();
    for block in cpuinfo.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let fields: BTreeMap<&str, &str> =
            block.lines().filter_map(|line| line.split_once(':').map(|(k, v)| (k.trim(), v.trim()))).collect();
        let text = |name: &str| fields.get(name).copied().unwrap_or("").to_string();
        let number = |name: &str| fields.get(name).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        out.push(json!({
            "cpu": number("processor") as u64,
            "vendorId": text("vendor_id"),
            "family": text("cpu family"),
            "model": text("model"),
            "modelName": text("model name"),
            "coreId": text("core id"),
            "physicalId": text("physical id"),
            "cores": number("cpu cores") as u64,
            "mhz": number("cpu MHz"),
        }));
    }
    Value::Array(out)
}

fn os_release_field<'a>(os_release: &'a str, name: &str) -> &'a str {
    os_release
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
        .map(|v| v.trim_matches('"'))
        .unwrap_or("")
}

fn host() -> Result<Value, String> {
    let hostname = read_small("/proc/sys/kernel/hostname")?.trim().to_string();
    let kernel = read_small("/proc/sys/kernel/osrelease")?.trim().to_string();
    let uptime: f64 = read_small("/proc/uptime")?.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let os_release = read_small("/etc/os-release").unwrap_or_default();
    let procs = std::fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten().filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit())).count()
        })
        .unwrap_or(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    Ok(json!({
        "hostname": hostname,
        "uptime": uptime as u64,
        "bootTime": now.saturating_sub(uptime as u64),
        "procs": procs,
        "os": std::env::consts::OS,
        "platform": os_release_field(&os_release, "ID"),
        "platformVersion": os_release_field(&os_release, "VERSION_ID"),
        "kernelVersion": kernel,
        "kernelArch": std::env::consts::ARCH,
        "cpuCount": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    }))
}

fn disk(path: &str) -> Result<Value, String> {
    let stat = rustix::fs::statvfs(path).map_err(|e| format!("statvfs {path}: {e}"))?;
    let block = stat.f_frsize;
    let total = stat.f_blocks * block;
    let free = stat.f_bavail * block;
    let used = total.saturating_sub(stat.f_bfree * block);
    let used_percent = if used + free == 0 { 0.0 } else { used as f64 * 100.0 / (used + free) as f64 };
    Ok(json!({
        "path": path,
        "total": total,
        "free": free,
        "used": used,
        "usedPercent": used_percent,
        "inodesTotal": stat.f_files,
        "inodesFree": stat.f_ffree,
        "inodesUsed": stat.f_files.saturating_sub(stat.f_ffree),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_read_in_bytes_with_gopsutils_names() {
        let value = memory("MemTotal:  1000 kB\nMemFree:  100 kB\nMemAvailable:  750 kB\n");
        assert_eq!(value["total"], 1_024_000);
        assert_eq!(value["available"], 768_000);
        assert_eq!(value["used"], 256_000);
        assert_eq!(value["usedPercent"], 25.0);
    }

    #[test]
    fn each_logical_cpu_is_one_entry() {
        let value = cpus("processor\t: 0\nmodel name\t: X\ncpu MHz\t: 2000.0\n\nprocessor\t: 1\nmodel name\t: X\n");
        assert_eq!(value.as_array().unwrap().len(), 2);
        assert_eq!(value[1]["cpu"], 1);
        assert_eq!(value[0]["mhz"], 2000.0);
    }

    #[test]
    fn os_release_values_lose_their_quotes() {
        assert_eq!(os_release_field("NAME=\"Debian\"\nID=debian\nVERSION_ID=\"12\"\n", "VERSION_ID"), "12");
        assert_eq!(os_release_field("ID=debian\n", "ID"), "debian");
    }
}
