//! What an actor counts about itself, readable without messaging it (the
//! registry and `/ops/actors` read these atomics).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{Contest, ContestState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Starting,
    Running,
    /// Stopped after its idle time (it is only a cache).
    Deactivated,
    /// Stopped after a panic; the next message restarts it from Postgres.
    Panicked,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Deactivated => "deactivated",
            Status::Panicked => "panicked",
            Status::Stopped => "stopped",
        }
    }

    fn from_u8(v: u8) -> Status {
        match v {
            1 => Status::Running,
            2 => Status::Deactivated,
            3 => Status::Panicked,
            4 => Status::Stopped,
            _ => Status::Starting,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Status::Starting => 0,
            Status::Running => 1,
            Status::Deactivated => 2,
            Status::Panicked => 3,
            Status::Stopped => 4,
        }
    }
}

#[derive(Debug)]
pub struct ActorStats {
    pub contest_id: Uuid,
    pub activated_at: DateTime<Utc>,
    /// Restarts of this contest's actor before this one started.
    pub restarts: u64,
    state: AtomicU8,
    version: AtomicI64,
    /// Messages sent and not yet taken up.
    pub mailbox: AtomicUsize,
    pub transitions: AtomicU64,
    /// Unix milliseconds of the last accepted transition; 0 for none.
    last_transition_ms: AtomicI64,
    status: AtomicU8,
    /// Test hook: the next command panics.
    pub panic_next: AtomicBool,
}

impl ActorStats {
    pub fn new(contest_id: Uuid, restarts: u64) -> Self {
        ActorStats {
            contest_id,
            activated_at: Utc::now(),
            restarts,
            state: AtomicU8::new(0),
            version: AtomicI64::new(0),
            mailbox: AtomicUsize::new(0),
            transitions: AtomicU64::new(0),
            last_transition_ms: AtomicI64::new(0),
            status: AtomicU8::new(Status::Starting.to_u8()),
            panic_next: AtomicBool::new(false),
        }
    }

    pub fn observe(&self, contest: &Contest) {
        let state = ContestState::ALL
            .iter()
            .position(|s| *s == contest.state)
            .unwrap_or(0) as u8;
        self.state.store(state, Ordering::Relaxed);
        self.version.store(contest.version, Ordering::Relaxed);
    }

    pub fn state(&self) -> ContestState {
        ContestState::ALL
            .get(self.state.load(Ordering::Relaxed) as usize)
            .copied()
            .unwrap_or(ContestState::Draft)
    }

    pub fn version(&self) -> i64 {
        self.version.load(Ordering::Relaxed)
    }

    pub fn touch_transition(&self) {
        self.last_transition_ms
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    pub fn last_transition_at(&self) -> Option<DateTime<Utc>> {
        match self.last_transition_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => DateTime::from_timestamp_millis(ms),
        }
    }

    pub fn status(&self) -> Status {
        Status::from_u8(self.status.load(Ordering::Relaxed))
    }

    pub fn set_status(&self, status: Status) {
        self.status.store(status.to_u8(), Ordering::Relaxed);
    }
}
