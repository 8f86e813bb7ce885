//! Rate limits (security.md, "Abuse resistance"): per client IP on
//! `/v1/auth/*`, per user on mutations. In memory, per instance: with N
//! instances a client gets at most N times the configured rate, which is
//! what a per-instance limiter can promise without a shared store.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::config::RateLimitSettings;

/// How often one key's rate-limit hits are audited at most.
const AUDIT_EVERY: Duration = Duration::from_secs(60);

pub struct RateLimits {
    auth: DefaultKeyedRateLimiter<IpAddr>,
    mutations: DefaultKeyedRateLimiter<Uuid>,
    last_audited: DashMap<String, Instant>,
}

/// A refusal: retry after this long.
#[derive(Debug, Clone, Copy)]
pub struct Limited {
    pub retry_after: Duration,
    /// Whether this hit should be audited (the first per key and minute, so
    /// a flood cannot turn into a flood of audit rows).
    pub audit: bool,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(rate).allow_burst(burst)
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings) -> Self {
        RateLimits {
            auth: RateLimiter::dashmap(quota(settings.auth_per_minute, settings.auth_burst)),
            mutations: RateLimiter::dashmap(quota(
                settings.mutations_per_minute,
                settings.mutations_burst,
            )),
            last_audited: DashMap::new(),
        }
    }

    pub fn check_auth(&self, ip: IpAddr) -> Result<(), Limited> {
        self.check(&self.auth, ip, format!("ip:{ip}"))
    }

    pub fn check_mutation(&self, user: Uuid) -> Result<(), Limited> {
        self.check(&self.mutations, user, format!("user:{user}"))
    }

    fn check<K: Hash + Eq + Clone>(
        &self,
        limiter: &DefaultKeyedRateLimiter<K>,
        key: K,
        audit_key: String,
    ) -> Result<(), Limited> {
        limiter.check_key(&key).map_err(|not_until| {
            let retry_after = not_until.wait_time_from(DefaultClock::default().now());
            let now = Instant::now();
            let mut audit = false;
            self.last_audited
                .entry(audit_key)
                .and_modify(|last| {
                    if now.duration_since(*last) >= AUDIT_EVERY {
                        *last = now;
                        audit = true;
                    }
                })
                .or_insert_with(|| {
                    audit = true;
                    now
                });
            Limited { retry_after, audit }
        })
    }

    /// Forgets keys whose buckets are full again; called periodically so the
    /// maps do not grow without bound.
    pub fn shrink(&self) {
        self.auth.retain_recent();
        self.mutations.retain_recent();
        self.last_audited
            .retain(|_, last| last.elapsed() < AUDIT_EVERY);
    }
}
