//! What an evaluation costs: peak bytes allocated (a counting global allocator) and time as a
//! multiple of serde_json's `IgnoredAny` skip of the same body. A test binary that wants it
//! includes this file (`#[path = "common/meter.rs"] mod meter;`): it installs the allocator.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn grow(by: isize) {
    LIVE.with(|l| {
        l.set(l.get() + by);
        PEAK.with(|p| p.set(p.get().max(l.get())));
    });
}

// SAFETY: forwards every call unchanged to the system allocator; the counters are const-initialised
// thread-local Cells, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        grow(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grow(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f`; returns its result, the peak bytes it had allocated at once on this thread, and the
/// time it took.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, Duration) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let started = Instant::now();
    let out = f();
    let elapsed = started.elapsed();
    let peak = PEAK.with(Cell::get) - base;
    (out, peak.max(0) as usize, elapsed)
}

/// The floor: how long serde_json takes to validate and skip `body` (`IgnoredAny`), the fastest
/// of five runs, over at least 1 KiB of work (the work budget's own floor: a body under 1 KiB is
/// skipped as many times as make 1 KiB).
pub fn skip_time(body: &str) -> Duration {
    let repeats = 1024usize.div_ceil(body.len().max(1)).max(1);
    (0..5)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..repeats {
                let _ = std::hint::black_box(serde_json::from_str::<serde::de::IgnoredAny>(body));
            }
            started.elapsed()
        })
        .min()
        .unwrap()
}
