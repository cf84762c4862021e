//! Per-IP limits, in memory, per api instance (documented: with N instances behind a balancer a
//! client gets at most N × each limit).
//!
//! * [`FailureLimiter`]: failed admin logins, a sliding one-minute window.
//! * [`RateLimiter`]: public endpoints, GCRA (a token bucket with one timestamp per IP).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct FailureLimiter {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl FailureLimiter {
    pub fn new(max: usize, window: Duration) -> Self {
        FailureLimiter {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` when `ip` already failed `max` times within the window.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut map = self.failures.lock().expect("limiter lock");
        let Some(q) = map.get_mut(&ip) else {
            return Ok(());
        };
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.is_empty() {
            map.remove(&ip);
            return Ok(());
        }
        if q.len() >= self.max {
            let oldest = *q.front().expect("non-empty");
            let wait = self.window.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        Ok(())
    }

    pub fn record_failure(&self, ip: IpAddr, now: Instant) {
        let mut map = self.failures.lock().expect("limiter lock");
        // Bound memory under a spray of addresses: forget windows that have fully passed.
        if map.len() > 100_000 {
            map.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        map.entry(ip).or_default().push_back(now);
    }
}

/// GCRA: `per_minute` requests a minute per IP, with bursts of up to `burst`.
pub struct RateLimiter {
    interval: Duration,
    burst: Duration,
    tat: Mutex<HashMap<IpAddr, Instant>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(60) / per_minute.max(1);
        RateLimiter {
            interval,
            burst: interval * burst.max(1),
            tat: Mutex::new(HashMap::new()),
        }
    }

    /// `per_minute` with bursts of up to a tenth of it (at least 1, at most 60).
    pub fn per_minute(per_minute: u32) -> Self {
        RateLimiter::new(per_minute, (per_minute / 10).clamp(1, 60))
    }

    /// `Err(seconds to wait)` when `ip` is over its limit; otherwise counts the request.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut tat = self.tat.lock().expect("rate limiter lock");
        if tat.len() > 200_000 {
            tat.retain(|_, t| *t > now);
        }
        let current = tat.get(&ip).copied().filter(|t| *t > now).unwrap_or(now);
        let next = current + self.interval;
        if next > now + self.burst {
            let wait = next - (now + self.burst);
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        tat.insert(ip, next);
        Ok(())
    }
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
            assert!(l.check(ip, t0 + Duration::from_secs(i)).is_ok());
            l.record_failure(ip, t0 + Duration::from_secs(i));
        }
        let wait = l.check(ip, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, 50);
        assert!(l.check(other, t0).is_ok(), "other clients are unaffected");
        assert!(l.check(ip, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn gcra_allows_the_burst_then_the_rate() {
        let l = RateLimiter::new(60, 5);
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(l.check(ip, t0).is_ok());
        }
        assert_eq!(l.check(ip, t0), Err(1));
        assert!(l.check("192.0.2.10".parse().unwrap(), t0).is_ok(), "per IP");
        assert!(
            l.check(ip, t0 + Duration::from_secs(1)).is_ok(),
            "one more a second"
        );
        assert!(l.check(ip, t0 + Duration::from_secs(1)).is_err());
    }
}
