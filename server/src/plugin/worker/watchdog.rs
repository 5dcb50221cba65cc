//! The CPU budget of one callback, inside the worker: a watchdog thread that
//! raises `game.PluginTimeout` in plugin code that overran its budget (via
//! `PyThreadState_SetAsyncExc`). Arming and disarming are plain atomic stores,
//! so the guarded call stays close to a bare Python call.
//!
//! The exception lands at the next bytecode boundary: a single long C call
//! (`3**(10**7)`) finishes first. That case, and plugin code that catches
//! the exception and carries on, are the server's to end: it kills a worker
//! that has not answered by budget plus grace.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pyo3::prelude::*;

/// Odd while a callback runs; each arm and disarm adds one.
static SEQ: AtomicU64 = AtomicU64::new(0);
/// The armed sequence number the watchdog fired for (0 = none).
static FIRED: AtomicU64 = AtomicU64::new(0);
/// `threading.get_ident()` of the thread that runs callbacks.
static MAIN_IDENT: AtomicU64 = AtomicU64::new(0);
/// Callbacks the armed delivery may run: its budget is this many budgets.
static CALLBACKS: AtomicU64 = AtomicU64::new(1);

/// Starts the watchdog thread for callbacks of `budget`, run on the calling thread.
pub(crate) fn start(py: Python<'_>, budget: Duration) -> PyResult<()> {
    let ident: u64 = py
        .import("threading")?
        .getattr("get_ident")?
        .call0()?
        .extract()?;
    MAIN_IDENT.store(ident, Ordering::SeqCst);
    let step = (budget / 5).max(Duration::from_millis(1));
    std::thread::Builder::new()
        .name("plugin-watchdog".into())
        .spawn(move || watch(budget, step))
        .map(drop)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("watchdog thread: {e}")))
}

/// Marks a callback as running; returns its ticket for [`disarm`]. Only the
/// callback thread writes `SEQ`, so a plain store (no locked instruction)
/// is enough; the GIL orders it against the watchdog's check.
#[inline]
pub(crate) fn arm(callbacks: u32) -> u64 {
    CALLBACKS.store(u64::from(callbacks.max(1)), Ordering::Relaxed);
    let seq = SEQ.load(Ordering::Relaxed) + 1;
    SEQ.store(seq, Ordering::Release);
    seq
}

/// Whether the watchdog fired for `ticket` (its budget is spent).
#[inline]
pub(crate) fn fired(ticket: u64) -> bool {
    FIRED.load(Ordering::Acquire) == ticket
}

/// Marks the callback `ticket` as finished and clears a timeout that was
/// raised for it but not yet delivered, so it cannot hit later code.
#[inline]
pub(crate) fn disarm(ticket: u64) {
    SEQ.store(ticket + 1, Ordering::Release);
    if FIRED.load(Ordering::Acquire) == ticket {
        FIRED.store(0, Ordering::SeqCst);
        let ident = MAIN_IDENT.load(Ordering::SeqCst);
        // SAFETY: the caller holds the GIL (the wrapper runs with it); a NULL
        // exception clears the pending asynchronous exception of that thread.
        unsafe {
            pyo3::ffi::PyThreadState_SetAsyncExc(thread_id(ident), std::ptr::null_mut());
        }
    }
}

/// A thread ident as the C API takes it: CPython's `unsigned long`, declared
/// signed by pyo3, so the same bits reinterpreted rather than converted.
fn thread_id(ident: u64) -> std::ffi::c_long {
    std::ffi::c_long::from_ne_bytes(ident.to_ne_bytes())
}

fn watch(budget: Duration, step: Duration) {
    let mut seen = 0u64;
    let mut armed_for = Duration::ZERO;
    loop {
        std::thread::sleep(step);
        let s = SEQ.load(Ordering::SeqCst);
        if s.is_multiple_of(2) {
            seen = s;
            continue;
        }
        if s != seen {
            seen = s;
            armed_for = Duration::ZERO;
            continue;
        }
        armed_for += step;
        let limit = budget * u32::try_from(CALLBACKS.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
        if armed_for < limit || FIRED.load(Ordering::SeqCst) == s {
            continue;
        }
        Python::with_gil(|py| {
            // With the GIL held here the callback thread cannot disarm, so
            // the check and the raise see the same callback.
            if SEQ.load(Ordering::SeqCst) == s {
                FIRED.store(s, Ordering::SeqCst);
                let exc = py.get_type::<super::game::PluginTimeout>();
                let ident = MAIN_IDENT.load(Ordering::SeqCst);
                // SAFETY: GIL held; `exc` is a valid exception type object.
                unsafe {
                    pyo3::ffi::PyThreadState_SetAsyncExc(thread_id(ident), exc.as_ptr());
                }
            }
        });
    }
}
