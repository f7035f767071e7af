//! Slowing down password guessing (RELIABILITY.md "auth"): after 3
//! consecutive failed logins an account, and separately a client address,
//! waits `base` before its next attempt is even checked; each further
//! failure doubles the wait. A success clears the account and the address.
//!
//! In memory only: a restart forgets every count (the waits are seconds,
//! and a restart costs an attacker more than that). Accounts are keyed by
//! the email as typed (normalized), known or not, so a locked unknown email
//! looks exactly like a locked real one. Addresses are IPv4 addresses and
//! IPv6 /64 networks. Counts are forgotten after `FORGET` without a
//! failure, and the table is pruned when it grows.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Failures in a row before the first wait.
pub const FREE_ATTEMPTS: u32 = 3;
/// A count with no failure for this long starts again from zero.
const FORGET: Duration = Duration::from_secs(3600);
/// Past this many entries, forgotten ones are dropped.
const PRUNE_AT: usize = 100_000;
/// The longest wait, however many failures.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// The address a client is counted under: IPv4 as is (also when mapped
/// into IPv6), IPv6 by its /64, which one host commonly has whole.
fn network(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Instant,
}

/// Failed-login counts per account and per client address.
#[derive(Debug)]
pub struct Lockout {
    base: Duration,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Lockout {
    pub fn new(base: Duration) -> Lockout {
        Lockout {
            base,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, address: IpAddr) -> [Key; 2] {
        [
            Key::Account(account.trim().to_lowercase()),
            Key::Address(network(address)),
        ]
    }

    /// How long the account or the address must still wait, if either is
    /// locked at `now`.
    pub fn wait(&self, account: &str, address: IpAddr, now: Instant) -> Option<Duration> {
        let entries = self.entries.lock();
        Self::keys(account, address)
            .iter()
            .filter_map(|k| entries.get(k))
            .map(|e| e.locked_until.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
            .max()
    }

    /// A checked attempt failed.
    pub fn failed(&self, account: &str, address: IpAddr, now: Instant) {
        let mut entries = self.entries.lock();
        if entries.len() >= PRUNE_AT {
            entries.retain(|_, e| now.saturating_duration_since(e.last_failure) < FORGET);
        }
        for key in Self::keys(account, address) {
            let entry = entries.entry(key).or_insert(Entry {
                failures: 0,
                last_failure: now,
                locked_until: now,
            });
            if now.saturating_duration_since(entry.last_failure) >= FORGET {
                entry.failures = 0;
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure = now;
            if entry.failures >= FREE_ATTEMPTS {
                let doublings = (entry.failures - FREE_ATTEMPTS).min(20);
                let wait = self.base.saturating_mul(1 << doublings).min(MAX_WAIT);
                entry.locked_until = now + wait;
            }
        }
    }

    /// A checked attempt succeeded.
    pub fn succeeded(&self, account: &str, address: IpAddr) {
        let mut entries = self.entries.lock();
        for key in Self::keys(account, address) {
            entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn three_failures_lock_the_account_and_the_address_doubling_after() {
        let l = Lockout::new(Duration::from_secs(5));
        let t0 = Instant::now();
        for _ in 0..2 {
            l.failed("ann@x.io", A, t0);
            assert_eq!(l.wait("ann@x.io", A, t0), None);
        }
        l.failed("ann@x.io", A, t0);
        assert_eq!(l.wait("ann@x.io", A, t0), Some(Duration::from_secs(5)));
        // The account from elsewhere, and the address for another account.
        assert_eq!(l.wait(" ANN@x.io", B, t0), Some(Duration::from_secs(5)));
        assert_eq!(l.wait("bob@x.io", A, t0), Some(Duration::from_secs(5)));
        assert_eq!(l.wait("bob@x.io", B, t0), None);
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(l.wait("ann@x.io", A, t1), None);
        l.failed("ann@x.io", B, t1);
        assert_eq!(l.wait("ann@x.io", B, t1), Some(Duration::from_secs(10)));
        l.failed("ann@x.io", B, t1);
        assert_eq!(l.wait("ann@x.io", B, t1), Some(Duration::from_secs(20)));
        // A success clears the account and its address, not the other one.
        l.succeeded("ann@x.io", B);
        assert_eq!(l.wait("ann@x.io", B, t1), None);
        assert_eq!(
            l.wait("bob@x.io", A, t1 - Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64_and_mapped_ipv4_as_ipv4() {
        let l = Lockout::new(Duration::from_secs(5));
        let t0 = Instant::now();
        for i in 0..3u16 {
            let addr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, i));
            l.failed(&format!("user{i}"), addr, t0);
        }
        let same_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
        let other_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert!(l.wait("someone", same_64, t0).is_some());
        assert!(l.wait("someone", other_64, t0).is_none());
        for _ in 0..3 {
            l.failed("v4", A, t0);
        }
        let mapped = IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        assert!(l.wait("someone", mapped, t0).is_some());
    }

    #[test]
    fn counts_are_forgotten_after_an_hour_and_waits_are_capped() {
        let l = Lockout::new(Duration::from_secs(5));
        let t0 = Instant::now();
        l.failed("a", A, t0);
        l.failed("a", A, t0);
        let later = t0 + FORGET;
        l.failed("a", A, later);
        assert_eq!(l.wait("a", A, later), None);
        for _ in 0..100 {
            l.failed("b", B, later);
        }
        assert_eq!(l.wait("b", B, later), Some(MAX_WAIT));
    }
}
