//! Process groups of `--on-trigger` programs: each program leads a group of its own
//! (`process_group(0)`), so that a timeout, a shutdown, or a restart after `kill -9` ends
//! everything it started: SIGTERM to the group, then SIGKILL after the grace period.

use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};

/// Sends `signal` to group `pgid`; whether the group existed.
fn signal_group(pgid: i32, signal: Signal) -> bool {
    match Pid::from_raw(pgid) {
        // pgid 1 is init's group: never.
        Some(pid) if pgid > 1 => kill_process_group(pid, signal).is_ok(),
        _ => false,
    }
}

/// Whether group `pgid` has a live member (zombies aside, which only their parent can reap).
pub fn group_alive(pgid: i32) -> bool {
    let Some(pid) = Pid::from_raw(pgid).filter(|_| pgid > 1) else { return false };
    if test_kill_process_group(pid).is_err() {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        !members(pgid).is_empty()
    }
    #[cfg(not(target_os = "linux"))]
    {
        true
    }
}

/// Every process id in `/proc` (Linux; none elsewhere).
fn pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc").into_iter().flatten().flatten().filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// The process group of `pid` if it is live (not a zombie), from `/proc/PID/stat`.
fn live_group_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp ...`; comm may hold anything, so read after the last ')'.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let (state, _ppid, pgrp) = (fields.next()?, fields.next()?, fields.next()?);
    if state == "Z" { None } else { pgrp.parse().ok() }
}

/// Whether process `pid` runs for `execution_id`: its environment says
/// `CODEPIPELINE_EXECUTION_ID=<id>`, exactly.
fn runs_execution(pid: i32, execution_id: &str) -> bool {
    let needle = format!("CODEPIPELINE_EXECUTION_ID={execution_id}");
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
}

/// The live (not zombie) processes of group `pgid`, from `/proc` (Linux).
pub fn members(pgid: i32) -> Vec<i32> {
    pids().filter(|&pid| live_group_of(pid) == Some(pgid)).collect()
}

/// Ends group `pgid`: SIGTERM, then SIGKILL to whatever is left after `grace`.
pub async fn end_group(pgid: i32, grace: Duration) {
    if !signal_group(pgid, Signal::TERM) {
        return;
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if !group_alive(pgid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if group_alive(pgid) {
        tracing::warn!(pgid, "on-trigger processes still alive after the grace period: SIGKILL");
        signal_group(pgid, Signal::KILL);
    }
}

/// Whether group `pgid` still holds a process of execution `execution_id` (by its
/// environment): a group id recorded by a server that died may since have been reused by an
/// unrelated group, which must not be signalled.
pub fn group_of_execution(pgid: i32, execution_id: &str) -> bool {
    members(pgid).into_iter().any(|pid| runs_execution(pid, execution_id))
}

/// The group of a live process of `execution_id` (by its environment): where a program ran
/// when its server died between starting it and recording its group (Linux; one pass over
/// `/proc`, only for such executions).
pub fn find_group_of_execution(execution_id: &str) -> Option<i32> {
    pids().filter(|&pid| runs_execution(pid, execution_id)).find_map(live_group_of)
}

/// Ends the group a dead server left for `execution_id`, if it is still that execution's: the
/// recorded `pgid`, or, when the server died before recording it, the group found by the
/// execution's environment.
pub async fn end_orphan_group(pgid: Option<i32>, execution_id: &str, grace: Duration) -> bool {
    let Some(pgid) = pgid.or_else(|| find_group_of_execution(execution_id)) else { return false };
    if !group_of_execution(pgid, execution_id) {
        return false;
    }
    tracing::warn!(pgid, execution = execution_id, "ending the on-trigger processes a previous server left");
    end_group(pgid, grace).await;
    true
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt as _;

    #[test]
    fn a_group_is_found_by_the_execution_in_its_environment() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env("CODEPIPELINE_EXECUTION_ID", "3f0c9d52-found-by-environ")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = i32::try_from(child.id()).unwrap();
        // Until the child has called execve, /proc shows the environment it was forked
        // with (this test's, without the id): wait for the exec, not a fixed time.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while find_group_of_execution("3f0c9d52-found-by-environ").is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(find_group_of_execution("3f0c9d52-found-by-environ"), Some(pgid));
        assert!(group_of_execution(pgid, "3f0c9d52-found-by-environ"));
        // A prefix of the id is another execution.
        assert_eq!(find_group_of_execution("3f0c9d52-found-by"), None);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(find_group_of_execution("3f0c9d52-found-by-environ"), None);
    }
}
