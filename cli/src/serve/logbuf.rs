//! The log's writer: whoever logs appends its line to one bounded buffer, and one thread
//! writes what gathered to stderr, at most every [`LINGER`].
//!
//! Why not a queue and a thread woken for each line (tracing-appender's non-blocking writer,
//! which this replaces): every started pipeline logs a line, and waking the writer thread for
//! each (a futex wake, a context switch, on a VM an interrupt to the other core) made 17,854
//! context switches in 6 s for 71,115 triggers on Postgres, 3 % of a core; this makes 1,117.
//! Here a line costs its copy into the buffer under a lock; the writer wakes when a line lands
//! in an empty buffer, then waits [`LINGER`] for the lines that follow, and writes them in one
//! call.
//!
//! Bounded: the buffer holds at most [`BUFFER_MAX`] bytes (and the writer at most as much again
//! while it writes). A line that does not fit (stderr is a pipe nobody reads, a log shipper is
//! stuck) is dropped whole and counted, as are the lines of a write that failed; the thread that
//! logs never waits for stderr.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// The most bytes waiting to be written; past it lines are dropped (and counted).
pub(crate) const BUFFER_MAX: usize = 2 * 1024 * 1024;

/// How long the writer lets lines gather once one is waiting: how late a line may appear.
pub(crate) const LINGER: Duration = Duration::from_millis(10);

#[derive(Debug)]
struct State {
    /// The lines waiting, whole.
    lines: Vec<u8>,
    /// The writer waits for a line (so the next line into an empty buffer wakes it).
    idle: bool,
    /// No more lines: the writer writes what waits and ends.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    dropped: AtomicU64,
}

impl Shared {
    fn new() -> Shared {
        // Reserved whole once (pages are touched only as lines fill them): grown by doubling, a
        // full buffer could hold twice its bound in capacity.
        let state = State { lines: Vec::with_capacity(BUFFER_MAX), idle: false, closed: false };
        Shared { state: Mutex::new(state), wake: Condvar::new(), dropped: AtomicU64::new(0) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one line whole, or drops it whole when it does not fit.
    fn append(&self, line: &[u8]) {
        let mut state = self.lock();
        if state.closed || state.lines.len() + line.len() > BUFFER_MAX {
            drop(state);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.lines.extend_from_slice(line);
        if std::mem::take(&mut state.idle) {
            drop(state);
            self.wake.notify_one();
        }
    }
}

/// Hands out the writer of each log line ([`tracing_subscriber::fmt::MakeWriter`]); clones
/// share one buffer.
#[derive(Clone, Debug)]
pub(crate) struct LogWriter {
    shared: Arc<Shared>,
}

impl LogWriter {
    /// How many lines were dropped because the buffer was full (or the log closed).
    pub(crate) fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

/// One event's writer. tracing-subscriber formats an event whole and writes it with one
/// `write_all`, which is one call here: a line is appended or dropped whole.
#[derive(Debug)]
pub(crate) struct Line<'w>(&'w Shared);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for LogWriter {
    type Writer = Line<'w>;

    fn make_writer(&'w self) -> Line<'w> {
        Line(&self.shared)
    }
}

/// The writer thread: [`finish`](Self::finish), or the guard's drop (a panic unwinding past
/// its owner), writes what waits and stops it.
#[derive(Debug)]
pub(crate) struct Guard {
    shared: Arc<Shared>,
    done: Option<std::sync::mpsc::Receiver<()>>,
}

/// How long the guard's drop waits for the waiting lines to be written.
const DROP_WAIT: Duration = Duration::from_secs(2);

impl Guard {
    /// Closes the log and waits, `timeout` at most, until what waited is written (a stuck
    /// stderr holds the writer; past the timeout the caller goes on without it).
    pub(crate) fn finish(mut self, timeout: Duration) {
        self.close(timeout);
    }

    fn close(&mut self, timeout: Duration) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(done) = self.done.take() {
            let _ = done.recv_timeout(timeout);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // A no-op after `finish`.
        self.close(DROP_WAIT);
    }
}

/// Starts the writer thread over `out`. Without a thread (the system refuses one), lines
/// are dropped and counted.
pub(crate) fn start<W: Write + Send + 'static>(out: W) -> (LogWriter, Guard) {
    let shared = Arc::new(Shared::new());
    let (finished, done) = std::sync::mpsc::channel();
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new().name("log-writer".to_owned()).spawn(move || {
            write_lines(&shared, out);
            let _ = finished.send(());
        })
    };
    if let Err(e) = &thread {
        // Said once, here: no log line will.
        eprintln!("codepipeline-webhooks: cannot start the log's writer thread ({e}): log lines are dropped");
        shared.lock().closed = true;
    }
    (LogWriter { shared: shared.clone() }, Guard { shared, done: thread.is_ok().then_some(done) })
}

fn write_lines<W: Write>(shared: &Shared, mut out: W) {
    // Two buffers, swapped: the lines are written outside the lock, and neither buffer is
    // allocated again once it has grown.
    let mut writing = Vec::with_capacity(BUFFER_MAX);
    loop {
        let closed = {
            let mut state = shared.lock();
            while state.lines.is_empty() && !state.closed {
                state.idle = true;
                state = shared.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            if !state.closed {
                // A line is waiting: let the ones that follow it join it.
                drop(state);
                std::thread::sleep(LINGER);
                state = shared.lock();
            }
            std::mem::swap(&mut state.lines, &mut writing);
            state.closed
        };
        write_out(shared, &mut out, &writing);
        writing.clear();
        if closed && shared.lock().lines.is_empty() {
            return;
        }
    }
}

/// Writes `lines` (whole lines) to `out`. A stderr set non-blocking by whoever started the
/// process is waited for; on any other error (stderr closed) the lines not written are
/// counted as dropped, and a line cut by the error is ended, so the next write starts a line.
fn write_out<W: Write>(shared: &Shared, out: &mut W, lines: &[u8]) {
    let mut written = 0;
    while written < lines.len() {
        match out.write(&lines[written..]) {
            Ok(0) => break,
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(LINGER),
            Err(_) => break,
        }
    }
    if written < lines.len() {
        let rest = &lines[written..];
        let lost = rest.iter().filter(|&&b| b == b'\n').count();
        shared.dropped.fetch_add(lost as u64, Ordering::Relaxed);
        if written > 0 && lines[written - 1] != b'\n' {
            let _ = out.write_all(b"\n");
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::MakeWriter as _;

    /// A sink that hands what it is written to the test.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        /// What the sink holds once it holds `bytes` bytes, or when `wait` has passed.
        fn written_within(&self, bytes: usize, wait: Duration) -> Vec<u8> {
            let waited = std::time::Instant::now();
            while self.0.lock().unwrap().len() < bytes && waited.elapsed() < wait {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.0.lock().unwrap().clone()
        }
    }

    fn log(writer: &LogWriter, line: &str) {
        writer.make_writer().write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn every_line_is_written_in_order_and_whole_by_the_finish() {
        let sink = Sink::default();
        let (writer, guard) = start(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        log(&writer, &format!("thread {t} line {i}\n"));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        guard.finish(Duration::from_secs(5));
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 4000);
        for t in 0..4 {
            let mine: Vec<&str> = text.lines().filter(|l| l.starts_with(&format!("thread {t} "))).collect();
            let expected: Vec<String> = (0..1000).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(mine, expected, "thread {t}'s lines whole and in order");
        }
        assert_eq!(writer.dropped(), 0);
    }

    #[test]
    fn a_line_is_written_soon_without_a_finish() {
        let sink = Sink::default();
        let (writer, _guard) = start(sink.clone());
        log(&writer, "one\n");
        assert_eq!(sink.written_within(4, Duration::from_secs(5)), b"one\n");
        // And the next round: the writer went back to waiting, and a line wakes it again.
        log(&writer, "two\n");
        assert_eq!(sink.written_within(8, Duration::from_secs(5)), b"one\ntwo\n");
    }

    #[test]
    fn a_line_after_the_finish_is_dropped_and_counted() {
        let sink = Sink::default();
        let (writer, guard) = start(sink.clone());
        log(&writer, "before\n");
        guard.finish(Duration::from_secs(5));
        log(&writer, "after\n");
        assert_eq!(&sink.0.lock().unwrap()[..], b"before\n");
        assert_eq!(writer.dropped(), 1);
    }

    /// Takes 7 bytes, then fails once (stderr closed under it), then takes everything.
    #[derive(Clone, Default)]
    struct Failing(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut state = self.0.lock().unwrap();
            state.1 += 1;
            match state.1 {
                1 => {
                    let n = buf.len().min(7);
                    state.0.extend_from_slice(&buf[..n]);
                    Ok(n)
                }
                2 => Err(std::io::ErrorKind::BrokenPipe.into()),
                _ => {
                    state.0.extend_from_slice(buf);
                    Ok(buf.len())
                }
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_lines_a_failed_write_loses_are_counted_and_a_cut_line_is_ended() {
        let sink = Failing::default();
        let (writer, guard) = start(sink.clone());
        // One append, so that the three lines are one write whatever the scheduling.
        log(&writer, "aaaa\nbbbb\ncccc\n");
        guard.finish(Duration::from_secs(5));
        // "aaaa\nbb" went out; "bb\n" and "cccc\n" did not: two lines lost, the cut one ended.
        assert_eq!(&sink.0.lock().unwrap().0[..], b"aaaa\nbb\n");
        assert_eq!(writer.dropped(), 2);
    }

    /// A sink that blocks until the test lets it go: stderr as a pipe nobody reads.
    struct Stuck(std::sync::mpsc::Receiver<()>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_stderr_drops_whole_lines_counted_and_never_holds_the_logger() {
        let (release, stuck) = std::sync::mpsc::channel();
        let (writer, guard) = start(Stuck(stuck));
        let line = format!("{}\n", "x".repeat(99));
        let lines = 3 * BUFFER_MAX / line.len();
        // The baseline: as many lines into a sink that takes everything at once.
        let baseline = {
            let (free, guard) = start(std::io::sink());
            let started = std::time::Instant::now();
            for _ in 0..lines {
                log(&free, &line);
            }
            let took = started.elapsed();
            guard.finish(Duration::from_secs(5));
            took
        };
        // On a thread of its own, so that a logger that waited for the sink fails the test
        // instead of hanging it.
        let (logged, all_logged) = std::sync::mpsc::channel();
        {
            let (writer, line) = (writer.clone(), line.clone());
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                for _ in 0..lines {
                    log(&writer, &line);
                }
                let _ = logged.send(started.elapsed());
            });
        }
        let took = all_logged.recv_timeout(Duration::from_secs(60)).expect("logging waited for the stuck sink");
        // Dropping a line costs what keeping it does, or less: no wait for room, however short.
        assert!(
            took < baseline * 10 + Duration::from_millis(250),
            "{lines} lines took {took:?} against a stuck sink, {baseline:?} against a free one"
        );
        // Far more than the buffer holds was logged without waiting for the sink (the writer
        // holds at most one buffer's worth in its write, the buffer at most BUFFER_MAX).
        let dropped = writer.dropped() as usize;
        assert!(dropped >= lines - 2 * BUFFER_MAX / line.len(), "dropped {dropped} of {lines}");
        assert!(writer.shared.lock().lines.len() <= BUFFER_MAX);
        assert_eq!(writer.shared.lock().lines.len() % line.len(), 0, "only whole lines are kept");
        // The finish gives up on a sink that stays stuck.
        let finishing = std::time::Instant::now();
        guard.finish(Duration::from_millis(200));
        assert!(finishing.elapsed() < Duration::from_secs(5));
        drop(release);
    }
}
