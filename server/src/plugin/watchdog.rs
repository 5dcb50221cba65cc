//! CPU budget per plugin callback: a watchdog thread that, when a callback
//! overruns its budget, raises `game.PluginTimeout` inside the running Python
//! code (via `PyThreadState_SetAsyncExc` on the simulation thread).
//!
//! Limits: the exception is delivered at the next bytecode boundary, so a
//! single long C call (e.g. a huge `sum(range(...))`) finishes first.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// The callback currently being timed.
struct Armed {
    seq: u64,
    deadline: Instant,
    thread_ident: u64,
}

#[derive(Default)]
struct Shared {
    armed: Option<Armed>,
    seq: u64,
    fired: Option<u64>,
    /// The watchdog sleeps without a timeout and must be woken for a new deadline.
    idle: bool,
    stop: bool,
}

/// Handle to the watchdog thread of one host.
pub(crate) struct Watchdog {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    budget: Duration,
}

thread_local! {
    static THREAD_IDENT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

fn thread_ident(py: Python<'_>) -> PyResult<u64> {
    if let Some(id) = THREAD_IDENT.with(|c| c.get()) {
        return Ok(id);
    }
    let id: u64 = py
        .import("threading")?
        .getattr("get_ident")?
        .call0()?
        .extract()?;
    THREAD_IDENT.with(|c| c.set(Some(id)));
    Ok(id)
}

impl Watchdog {
    /// Starts the watchdog thread; callbacks get `budget` each.
    pub fn start(budget: Duration) -> std::io::Result<Self> {
        let shared: Arc<(Mutex<Shared>, Condvar)> = Arc::default();
        let s = shared.clone();
        std::thread::Builder::new()
            .name("plugin-watchdog".into())
            .spawn(move || run(&s))?;
        Ok(Self { shared, budget })
    }

    /// Starts timing one callback on the current thread; returns its ticket.
    pub fn arm(&self, py: Python<'_>) -> Option<u64> {
        let ident = thread_ident(py).ok()?;
        let (m, cv) = &*self.shared;
        let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
        s.seq += 1;
        let seq = s.seq;
        s.armed = Some(Armed {
            seq,
            deadline: Instant::now() + self.budget,
            thread_ident: ident,
        });
        // A watchdog already sleeping until an earlier deadline re-checks on its
        // own; waking it on every callback would cost a thread switch each.
        if s.idle {
            s.idle = false;
            cv.notify_one();
        }
        Some(seq)
    }

    /// Stops timing the callback with ticket `seq`. If the watchdog fired for
    /// it, clears a timeout that may still be pending so it cannot hit later code.
    pub fn disarm(&self, py: Python<'_>, seq: Option<u64>) {
        let (m, _) = &*self.shared;
        let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
        if s.armed.as_ref().map(|a| a.seq) == seq {
            s.armed = None;
        }
        if seq.is_some() && s.fired == seq {
            s.fired = None;
            drop(s);
            if let Ok(ident) = thread_ident(py) {
                // SAFETY: GIL held; a NULL exception clears the pending async exception.
                unsafe {
                    pyo3::ffi::PyThreadState_SetAsyncExc(ident as _, std::ptr::null_mut());
                }
            }
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (m, cv) = &*self.shared;
        m.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        cv.notify_one();
    }
}

fn run(shared: &(Mutex<Shared>, Condvar)) {
    let (m, cv) = shared;
    let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if s.stop {
            return;
        }
        let Some(armed) = &s.armed else {
            s.idle = true;
            s = cv.wait(s).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        let now = Instant::now();
        if now < armed.deadline {
            let wait = armed.deadline - now;
            s = cv
                .wait_timeout(s, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        }
        let (seq, ident) = (armed.seq, armed.thread_ident);
        // Lock order is always GIL → mutex: release the mutex before taking the GIL.
        drop(s);
        Python::with_gil(|py| {
            let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
            if s.armed.as_ref().map(|a| a.seq) == Some(seq) {
                s.armed = None;
                s.fired = Some(seq);
                let exc = py.get_type::<super::game::PluginTimeout>();
                // SAFETY: we hold the GIL; `exc` is a valid exception type object.
                unsafe {
                    pyo3::ffi::PyThreadState_SetAsyncExc(ident as _, exc.as_ptr());
                }
            }
        });
        s = m.lock().unwrap_or_else(|e| e.into_inner());
    }
}
