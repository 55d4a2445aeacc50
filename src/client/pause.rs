//! CLIENT PAUSE / UNPAUSE: holding clients' commands for a while.
//!
//! While a pause is on, commands it covers (every command for `ALL`; for `WRITE`, the
//! commands that write or may propagate, PUBLISH and SPUBLISH included, as in Redis) are
//! not run: the connection stops reading its pipeline, waits until the pause ends and
//! then runs the held command. Checking costs one relaxed atomic load per command.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::sync::LockExt;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum PauseMode {
    Off = 0,
    Write = 1,
    All = 2,
}

#[derive(Default)]
pub struct Pause {
    mode: AtomicU8,
    until: Mutex<Option<Instant>>,
    ended: Notify,
}

impl Pause {
    pub fn mode(&self) -> PauseMode {
        match self.mode.load(Relaxed) {
            0 => PauseMode::Off,
            1 => PauseMode::Write,
            _ => PauseMode::All,
        }
    }

    /// Starts or extends a pause. As in Redis, a new pause never shortens one in effect
    /// nor weakens ALL to WRITE.
    pub fn start(&self, mode: PauseMode, for_: Duration) {
        let mut until = self.until.locked();
        // CLIENT PAUSE bounds the timeout; a far deadline still must not overflow.
        let now = Instant::now();
        let end = now
            .checked_add(for_)
            .unwrap_or(now + Duration::from_secs(u32::MAX as u64));
        *until = Some(until.map_or(end, |u| u.max(end)));
        if mode as u8 > self.mode.load(Relaxed) {
            self.mode.store(mode as u8, Relaxed);
        }
    }

    pub fn stop(&self) {
        *self.until.locked() = None;
        self.mode.store(PauseMode::Off as u8, Relaxed);
        self.ended.notify_waiters();
    }

    /// Ends the pause if its time is up (called from the cron and by waiters).
    pub fn expire(&self) {
        let due = self.until.locked().is_some_and(|u| Instant::now() >= u);
        if due {
            self.stop();
        }
    }

    /// Waits until the pause ends (by UNPAUSE or by its deadline).
    pub async fn wait(&self) {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if self.mode() == PauseMode::Off {
                return;
            }
            let until = *self.until.locked();
            match until {
                Some(u) => {
                    tokio::select! {
                        _ = ended => {}
                        _ = tokio::time::sleep_until(u.into()) => self.expire(),
                    }
                }
                None => ended.await,
            }
        }
    }
}
