//! Per-IP limits, in memory, per api instance (documented: with N instances behind a balancer a
//! client gets at most N × each limit).
//!
//! * [`FailureLimiter`]: failed admin logins, a sliding one-minute window.
//! * [`RateLimiter`]: public endpoints, GCRA (governor's keyed limiter, one state per key).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::Quota;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct FailureLimiter {
    max: usize,
    window: Duration,
    v6_prefix: u8,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// One counted attempt (see [`FailureLimiter::reserve`]).
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    key: IpAddr,
    at: Instant,
}

impl FailureLimiter {
    /// Limits IPv6 clients by their /64 network; see [`FailureLimiter::with_v6_prefix`].
    pub fn new(max: usize, window: Duration) -> Self {
        FailureLimiter {
            max,
            window,
            v6_prefix: crate::client_ip::DEFAULT_V6_PREFIX,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Counts IPv6 clients by their first `prefix` bits (one subscriber's network).
    pub fn with_v6_prefix(mut self, prefix: u8) -> Self {
        self.v6_prefix = prefix;
        self
    }

    /// Counts one attempt of `ip`'s network now, atomically with the check: `Err(seconds to
    /// wait)` when `max` attempts are already counted within the window. The attempt counts as
    /// a failure unless [`FailureLimiter::release`]d (a success).
    pub fn reserve(&self, ip: IpAddr, now: Instant) -> Result<Attempt, u64> {
        let key = crate::client_ip::network(ip, self.v6_prefix);
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bound memory under a spray of addresses: forget windows that have fully passed.
        if map.len() > 100_000 {
            map.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        let q = map.entry(key).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() >= self.max {
            // With a limit of 0 nothing is counted: wait a whole window.
            let wait = q.front().map_or(self.window, |oldest| {
                self.window.saturating_sub(now.duration_since(*oldest))
            });
            return Err(wait.as_secs().max(1));
        }
        q.push_back(now);
        Ok(Attempt { key, at: now })
    }

    /// Takes back an attempt that did not fail.
    pub fn release(&self, attempt: Attempt) {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(q) = map.get_mut(&attempt.key) {
            if let Some(i) = q.iter().position(|t| *t == attempt.at) {
                q.remove(i);
            }
            if q.is_empty() {
                map.remove(&attempt.key);
            }
        }
    }
}

/// GCRA (governor's keyed limiter): `per_minute` requests a minute per key (an IP's network, by
/// default), with bursts of up to `burst`.
pub struct RateLimiter<K = IpAddr, C = DefaultClock>
where
    K: Hash + Eq + Clone,
    C: Clock,
{
    inner: governor::RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    v6_prefix: u8,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self::every(Duration::from_secs(60) / per_minute.max(1), burst)
    }

    /// One request per `interval`, with bursts of up to `burst`.
    pub fn every(interval: Duration, burst: u32) -> Self {
        Self::with_clock(interval, burst, DefaultClock::default())
    }

    /// `per_minute` with bursts of up to a tenth of it (at least 1, at most 60).
    pub fn per_minute(per_minute: u32) -> Self {
        Self::new(per_minute, (per_minute / 10).clamp(1, 60))
    }
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> RateLimiter<K, C> {
    /// The same on another clock (tests move a fake one).
    pub fn with_clock(interval: Duration, burst: u32, clock: C) -> Self {
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(interval.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        RateLimiter {
            inner: governor::RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock,
            v6_prefix: crate::client_ip::DEFAULT_V6_PREFIX,
        }
    }

    /// `Err(seconds to wait)` when `key` is over its limit; otherwise counts the request.
    pub fn check_key(&self, key: K) -> Result<(), u64> {
        // Bound memory under a spray of keys: forget those whose state is back to full.
        if self.inner.len() > 200_000 {
            self.inner.retain_recent();
        }
        self.inner.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs_f64().ceil().max(1.0) as u64
        })
    }
}

impl<C: Clock + Clone> RateLimiter<IpAddr, C> {
    /// Counts IPv6 clients by their first `prefix` bits (one subscriber's network).
    pub fn with_v6_prefix(mut self, prefix: u8) -> Self {
        self.v6_prefix = prefix;
        self
    }

    /// `Err(seconds to wait)` when `ip`'s network is over its limit; otherwise counts it.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.check_key(crate::client_ip::network(ip, self.v6_prefix))
    }
}

/// 429 with `Retry-After` when `ip` is over `limiter`'s rate.
pub fn rate_limit(
    limiter: &RateLimiter,
    ip: std::net::IpAddr,
) -> Result<(), crate::error::ApiError> {
    limiter.check(ip).map_err(|retry_after_secs| {
        metrics::counter!("rate_limited_total").increment(1);
        crate::error::ApiError::RateLimited { retry_after_secs }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_attempt_within_a_minute_is_refused_until_the_window_passes() {
        let l = FailureLimiter::new(10, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(l.reserve(ip, t0 + Duration::from_secs(i)).is_ok());
        }
        let wait = l.reserve(ip, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, 50);
        assert!(l.reserve(other, t0).is_ok(), "other clients are unaffected");
        assert!(l.reserve(ip, t0 + Duration::from_secs(61)).is_ok());
    }

    /// A limit of 0 refuses every attempt with a whole window to wait (it used to panic).
    #[test]
    fn a_limit_of_zero_refuses_without_panicking() {
        let l = FailureLimiter::new(0, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(l.reserve(ip, Instant::now()).unwrap_err(), 60);
    }

    /// The hardening review: 30 concurrent wrong passwords all got 401 before the first 429,
    /// because the check and the count were apart around a 50 ms hash.
    #[test]
    fn concurrent_attempts_are_counted_before_the_password_is_checked() {
        let l = FailureLimiter::new(10, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        // 30 attempts in flight at once: none has finished (failed or succeeded) yet.
        let admitted: Vec<_> = (0..30).filter_map(|_| l.reserve(ip, t0).ok()).collect();
        assert_eq!(admitted.len(), 10);
        // A success gives its attempt back; failures keep theirs.
        l.release(admitted[0]);
        assert!(l.reserve(ip, t0).is_ok());
        assert!(l.reserve(ip, t0).is_err());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_network() {
        let l = FailureLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(l.reserve("2001:db8:66::1".parse().unwrap(), t0).is_ok());
        assert!(l.reserve("2001:db8:66::2".parse().unwrap(), t0).is_ok());
        assert!(l
            .reserve("2001:db8:66:0:ffff::3".parse().unwrap(), t0)
            .is_err());
        assert!(l.reserve("2001:db8:67::1".parse().unwrap(), t0).is_ok());
        let r = RateLimiter::<IpAddr>::new(60, 1);
        assert!(r.check("2001:db8:66::1".parse().unwrap()).is_ok());
        assert!(r.check("2001:db8:66::9".parse().unwrap()).is_err());
        assert!(r.check("192.0.2.1".parse().unwrap()).is_ok());
        assert!(
            r.check("192.0.2.2".parse().unwrap()).is_ok(),
            "IPv4 by address"
        );
    }

    #[test]
    fn gcra_allows_the_burst_then_the_rate() {
        let clock = governor::clock::FakeRelativeClock::default();
        let l = RateLimiter::with_clock(Duration::from_secs(1), 5, clock.clone());
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        for _ in 0..5 {
            assert!(l.check(ip).is_ok());
        }
        assert_eq!(l.check(ip), Err(1));
        assert!(l.check("192.0.2.10".parse().unwrap()).is_ok(), "per IP");
        clock.advance(Duration::from_secs(1));
        assert!(l.check(ip).is_ok(), "one more a second");
        assert!(l.check(ip).is_err());
    }
}
