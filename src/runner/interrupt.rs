//! Ctrl-C during a run. The first press stops sending new calls and lets the calls in flight
//! finish, so every call already paid for lands in the journal and a rerun resumes without
//! sending it again; the second press, or a press while no run is sending, quits at once with
//! exit code 130 (128 + SIGINT, what a shell reports for a process it interrupted).
//!
//! The handlers are process-wide, installed on the first interruptible run, and built from
//! signal-hook's safe flag actions (run in order on each Ctrl-C): exit with 130 if "quit" is
//! armed; raise "stop"; arm "quit". While a run is sending, "quit" starts disarmed, so the first
//! press only stops; between runs it stays armed, so a press quits as it always did.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Exit code of an interrupted run.
pub const EXIT_CODE: u8 = 130;

static RUNNING: AtomicUsize = AtomicUsize::new(0);

struct Flags {
    stop: Arc<AtomicBool>,
    quit: Arc<AtomicBool>,
}

static FLAGS: OnceLock<Option<Flags>> = OnceLock::new();

/// Marks a run as sending while it lives; [`Watch::stop_requested`] says whether Ctrl-C asked
/// it to stop.
pub struct Watch {
    flags: Option<&'static Flags>,
}

impl Watch {
    /// Watches for Ctrl-C when `interruptible` (the command line); otherwise never stops (tests,
    /// library use).
    pub fn new(interruptible: bool) -> Watch {
        let flags = if interruptible {
            FLAGS.get_or_init(install).as_ref()
        } else {
            None
        };
        if let Some(f) = flags {
            RUNNING.fetch_add(1, Ordering::SeqCst);
            f.stop.store(false, Ordering::SeqCst);
            f.quit.store(false, Ordering::SeqCst);
        }
        Watch { flags }
    }

    pub fn stop_requested(&self) -> bool {
        self.flags.is_some_and(|f| f.stop.load(Ordering::SeqCst))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(f) = self.flags
            && RUNNING.fetch_sub(1, Ordering::SeqCst) == 1
        {
            f.quit.store(true, Ordering::SeqCst);
        }
    }
}

#[cfg(unix)]
fn install() -> Option<Flags> {
    use signal_hook::consts::SIGINT;
    use signal_hook::flag;
    let flags = Flags {
        stop: Arc::new(AtomicBool::new(false)),
        quit: Arc::new(AtomicBool::new(true)),
    };
    let registered = flag::register_conditional_shutdown(SIGINT, i32::from(EXIT_CODE), Arc::clone(&flags.quit))
        .and_then(|_| flag::register(SIGINT, Arc::clone(&flags.stop)))
        .and_then(|_| flag::register(SIGINT, Arc::clone(&flags.quit)));
    match registered {
        Ok(_) => Some(flags),
        Err(e) => {
            eprintln!("warning: cannot watch for Ctrl-C ({e}); an interrupted run resumes from its journal");
            None
        }
    }
}

/// Elsewhere Ctrl-C keeps its default: the process ends, and the journal still holds every call
/// that had finished.
#[cfg(not(unix))]
fn install() -> Option<Flags> {
    None
}
