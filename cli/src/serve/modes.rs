//! The pipeline execution modes as pure logic: which execution runs, which waits, and which is
//! superseded, as the AWS user guide ("Set or change the pipeline execution mode") describes them.
//! No I/O, no clock: the service tells the [`Scheduler`] that an execution arrived or finished and
//! does what it answers (start a program, mark an execution Superseded).
//!
//! - `SUPERSEDED` (the default): one execution runs. A newer one waits for it; a still newer one
//!   replaces the waiting one, which becomes Superseded without running. (AWS supersedes at stage
//!   boundaries; the service runs one program per execution, so the whole program is the stage.)
//! - `QUEUED`: one execution runs; the others wait and run first in, first out.
//! - `PARALLEL`: executions run side by side, up to the program concurrency; past it they wait,
//!   first in, first out.

// Not wired yet: the service's execution runner calls it once its store rewrite lands.
#![allow(dead_code)]

use std::collections::VecDeque;

/// A pipeline's execution mode (`executionMode` of its declaration).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExecutionMode {
    /// One runs; a newer one waits and replaces an older waiting one.
    #[default]
    Superseded,
    /// One runs; the others wait, first in, first out.
    Queued,
    /// Up to the concurrency run at once.
    Parallel,
}

impl ExecutionMode {
    /// The mode a declaration names (`executionMode`); absent or unknown: `SUPERSEDED`, AWS's
    /// default (the model check refuses unknown values before a declaration is stored).
    pub fn of_declaration(pipeline: &serde_json::Value) -> Self {
        match pipeline.get("executionMode").and_then(serde_json::Value::as_str) {
            Some("QUEUED") => Self::Queued,
            Some("PARALLEL") => Self::Parallel,
            _ => Self::Superseded,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Superseded => "SUPERSEDED",
            Self::Queued => "QUEUED",
            Self::Parallel => "PARALLEL",
        }
    }
}

/// What the service does when an execution arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrival<Id> {
    /// Whether the new execution starts now (`InProgress`); otherwise it waits (`InProgress`
    /// too, as AWS shows a waiting execution, with nothing running for it yet).
    pub start: bool,
    /// An execution that was waiting and is now `Superseded` (it never runs).
    pub superseded: Option<Id>,
}

/// The executions of one pipeline: those running and those waiting.
#[derive(Clone, Debug)]
pub struct Scheduler<Id> {
    mode: ExecutionMode,
    concurrency: usize,
    running: Vec<Id>,
    waiting: VecDeque<Id>,
}

impl<Id: Clone + PartialEq> Scheduler<Id> {
    /// A scheduler for a pipeline in `mode`; `concurrency` (at least 1) bounds `PARALLEL`.
    pub fn new(mode: ExecutionMode, concurrency: usize) -> Self {
        Self { mode, concurrency: concurrency.max(1), running: Vec::new(), waiting: VecDeque::new() }
    }

    /// The mode.
    pub fn mode(&self) -> ExecutionMode {
        self.mode
    }

    /// How many may run at once in this mode.
    fn slots(&self) -> usize {
        match self.mode {
            ExecutionMode::Superseded | ExecutionMode::Queued => 1,
            ExecutionMode::Parallel => self.concurrency,
        }
    }

    /// A new execution `id` arrived: whether it starts now, and which waiting one it supersedes.
    pub fn arrive(&mut self, id: Id) -> Arrival<Id> {
        if self.running.len() < self.slots() {
            self.running.push(id);
            return Arrival { start: true, superseded: None };
        }
        let superseded = match self.mode {
            // At most one waits: the newest.
            ExecutionMode::Superseded => self.waiting.pop_front(),
            ExecutionMode::Queued | ExecutionMode::Parallel => None,
        };
        self.waiting.push_back(id);
        Arrival { start: false, superseded }
    }

    /// Execution `id` finished (succeeded, failed or stopped): the waiting ones that start now,
    /// oldest first. An `id` that was waiting is dropped from the queue (stopped before it ran).
    pub fn finish(&mut self, id: &Id) -> Vec<Id> {
        if let Some(i) = self.running.iter().position(|r| r == id) {
            self.running.remove(i);
        } else if let Some(i) = self.waiting.iter().position(|w| w == id) {
            self.waiting.remove(i);
            return Vec::new();
        }
        let mut started = Vec::new();
        while self.running.len() < self.slots() {
            let Some(next) = self.waiting.pop_front() else { break };
            self.running.push(next.clone());
            started.push(next);
        }
        started
    }

    /// The executions running, oldest first.
    pub fn running(&self) -> &[Id] {
        &self.running
    }

    /// The executions waiting, in the order they will run.
    pub fn waiting(&self) -> impl Iterator<Item = &Id> {
        self.waiting.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_mode_comes_from_the_declaration_with_aws_s_default() {
        assert_eq!(ExecutionMode::of_declaration(&json!({})), ExecutionMode::Superseded);
        assert_eq!(ExecutionMode::of_declaration(&json!({"executionMode": "QUEUED"})), ExecutionMode::Queued);
        assert_eq!(ExecutionMode::of_declaration(&json!({"executionMode": "PARALLEL"})), ExecutionMode::Parallel);
        assert_eq!(ExecutionMode::of_declaration(&json!({"executionMode": "SUPERSEDED"})).as_str(), "SUPERSEDED");
    }

    #[test]
    fn superseded_runs_one_and_a_newer_replaces_the_waiting_one() {
        let mut s = Scheduler::new(ExecutionMode::Superseded, 4);
        assert_eq!(s.arrive(1), Arrival { start: true, superseded: None });
        assert_eq!(s.arrive(2), Arrival { start: false, superseded: None });
        assert_eq!(s.arrive(3), Arrival { start: false, superseded: Some(2) });
        assert_eq!(s.arrive(4), Arrival { start: false, superseded: Some(3) });
        assert_eq!(s.running(), &[1]);
        assert_eq!(s.finish(&1), vec![4]);
        assert_eq!(s.finish(&4), Vec::<i32>::new());
        assert!(s.running().is_empty());
        assert_eq!(s.arrive(5), Arrival { start: true, superseded: None });
    }

    #[test]
    fn queued_runs_one_at_a_time_first_in_first_out() {
        let mut s = Scheduler::new(ExecutionMode::Queued, 4);
        assert!(s.arrive(1).start);
        for id in [2, 3, 4] {
            assert_eq!(s.arrive(id), Arrival { start: false, superseded: None });
        }
        assert_eq!(s.waiting().copied().collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(s.finish(&1), vec![2]);
        assert_eq!(s.finish(&2), vec![3]);
        // One stopped while it waited never runs.
        assert_eq!(s.finish(&4), Vec::<i32>::new());
        assert_eq!(s.finish(&3), Vec::<i32>::new());
    }

    #[test]
    fn parallel_runs_up_to_the_concurrency() {
        let mut s = Scheduler::new(ExecutionMode::Parallel, 2);
        assert!(s.arrive(1).start);
        assert!(s.arrive(2).start);
        assert_eq!(s.arrive(3), Arrival { start: false, superseded: None });
        assert_eq!(s.arrive(4), Arrival { start: false, superseded: None });
        assert_eq!(s.running(), &[1, 2]);
        assert_eq!(s.finish(&2), vec![3]);
        assert_eq!(s.finish(&1), vec![4]);
        // A concurrency of 0 still runs one.
        let mut one = Scheduler::new(ExecutionMode::Parallel, 0);
        assert!(one.arrive("a").start);
        assert!(!one.arrive("b").start);
    }
}
