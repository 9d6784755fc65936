//! A `serve` log file read by the tests: serve writes its log from a thread of its own, so a
//! line lands in the file a moment after it is logged. Each test binary uses what it needs.

#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

/// The log at `path` once it holds `needle` (or as it is after 10 s, for the caller's assertion
/// to show).
pub fn logs_with(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = std::fs::read_to_string(path).unwrap_or_default();
        if logs.contains(needle) || Instant::now() >= deadline {
            return logs;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The log at `path` once it stops growing (two reads 100 ms apart alike, 10 s at most): for
/// an assertion about what it does not hold, so that the last lines logged are in it.
pub fn logs_settled(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = std::fs::read_to_string(path).unwrap_or_default();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = std::fs::read_to_string(path).unwrap_or_default();
        if now.len() == last.len() || Instant::now() >= deadline {
            return now;
        }
        last = now;
    }
}
