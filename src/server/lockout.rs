//! Slowing down password guessing (RELIABILITY.md "auth"): after 3
//! consecutive failed logins an account, and separately a client address,
//! waits `base` before its next attempt is even checked; each further
//! failure doubles the wait. A success clears the account and the address.
//!
//! Kept in memory, or — when servers share a store (`--store etcd://`) —
//! in the store, so every server sees every failure. In memory a restart
//! forgets every count (the waits are seconds, and a restart costs an
//! attacker more than that). Accounts are keyed by the email as typed
//! (normalized), known or not, so a locked unknown email looks exactly like
//! a locked real one. Addresses are IPv4 addresses and IPv6 /64 networks.
//! Counts are forgotten after `FORGET` without a failure, and the memory
//! table is pruned when it grows. Times are wall-clock durations since the
//! Unix epoch, which every server of a store agrees on.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use parking_lot::Mutex;

use crate::db::Database;
use crate::error::Result;

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

/// What is counted: `account:EMAIL` or `address:IP`.
fn keys(account: &str, address: IpAddr) -> [String; 2] {
    [
        format!("account:{}", account.trim().to_lowercase()),
        format!("address:{}", network(address)),
    ]
}

/// Now, as the lockout measures time.
pub fn now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    failures: u32,
    last_failure: Duration,
    locked_until: Duration,
}

impl Entry {
    /// The entry after one more failure at `now`.
    fn failed(entry: Option<Entry>, base: Duration, now: Duration) -> Entry {
        let mut e = entry.unwrap_or(Entry {
            failures: 0,
            last_failure: now,
            locked_until: now,
        });
        if now.saturating_sub(e.last_failure) >= FORGET {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_failure = now;
        if e.failures >= FREE_ATTEMPTS {
            let doublings = (e.failures - FREE_ATTEMPTS).min(20);
            let wait = base.saturating_mul(1 << doublings).min(MAX_WAIT);
            e.locked_until = now + wait;
        }
        e
    }

    /// 4 + 8 + 8 bytes: failures, then both times in milliseconds.
    fn encode(self) -> Vec<u8> {
        let mut bytes = self.failures.to_be_bytes().to_vec();
        for t in [self.last_failure, self.locked_until] {
            bytes.extend_from_slice(&(t.as_millis() as u64).to_be_bytes());
        }
        bytes
    }

    /// None for bytes that are not an entry (counted from zero again).
    fn decode(bytes: &[u8]) -> Option<Entry> {
        let failures = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
        let millis = |at: usize| {
            let raw: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
            Some(Duration::from_millis(u64::from_be_bytes(raw)))
        };
        Some(Entry {
            failures,
            last_failure: millis(4)?,
            locked_until: millis(12)?,
        })
    }
}

/// Where the counts live.
enum Table {
    Memory(Mutex<HashMap<String, Entry>>),
    /// A store several servers share.
    Shared(Database),
}

/// Failed-login counts per account and per client address.
pub struct Lockout {
    base: Duration,
    table: Table,
}

impl Lockout {
    /// Counts in this process's memory.
    pub fn new(base: Duration) -> Lockout {
        Lockout {
            base,
            table: Table::Memory(Mutex::new(HashMap::new())),
        }
    }

    /// Counts in `db`'s store when other servers share it, else in memory.
    pub fn for_database(base: Duration, db: &Database) -> Lockout {
        if db.shares_store() {
            Lockout {
                base,
                table: Table::Shared(db.clone()),
            }
        } else {
            Self::new(base)
        }
    }

    /// How long the account or the address must still wait, if either is
    /// locked at `now`.
    pub fn wait(&self, account: &str, address: IpAddr, now: Duration) -> Result<Option<Duration>> {
        let mut longest = None;
        for key in keys(account, address) {
            let entry = match &self.table {
                Table::Memory(entries) => entries.lock().get(&key).copied(),
                Table::Shared(db) => db
                    .login_failures(&key)?
                    .and_then(|bytes| Entry::decode(&bytes)),
            };
            let wait = entry.map_or(Duration::ZERO, |e| e.locked_until.saturating_sub(now));
            if !wait.is_zero() {
                longest = longest.max(Some(wait));
            }
        }
        Ok(longest)
    }

    /// A checked attempt failed.
    pub fn failed(&self, account: &str, address: IpAddr, now: Duration) -> Result<()> {
        for key in keys(account, address) {
            match &self.table {
                Table::Memory(entries) => {
                    let mut entries = entries.lock();
                    if entries.len() >= PRUNE_AT {
                        entries.retain(|_, e| now.saturating_sub(e.last_failure) < FORGET);
                    }
                    let next = Entry::failed(entries.get(&key).copied(), self.base, now);
                    entries.insert(key, next);
                }
                Table::Shared(db) => db.update_login_failures(&key, |bytes| {
                    let current = bytes.and_then(Entry::decode);
                    Some(Entry::failed(current, self.base, now).encode())
                })?,
            }
        }
        Ok(())
    }

    /// A checked attempt succeeded.
    pub fn succeeded(&self, account: &str, address: IpAddr) -> Result<()> {
        for key in keys(account, address) {
            match &self.table {
                Table::Memory(entries) => {
                    entries.lock().remove(&key);
                }
                Table::Shared(db) => db.update_login_failures(&key, |_| None)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    /// The in-memory table cannot fail: the tests read plain values.
    impl Lockout {
        fn wait_ok(&self, account: &str, address: IpAddr, now: Duration) -> Option<Duration> {
            self.wait(account, address, now).unwrap()
        }
        fn failed_ok(&self, account: &str, address: IpAddr, now: Duration) {
            self.failed(account, address, now).unwrap()
        }
        fn succeeded_ok(&self, account: &str, address: IpAddr) {
            self.succeeded(account, address).unwrap()
        }
    }

    #[test]
    fn entries_round_trip_through_their_stored_bytes() {
        let e = Entry::failed(
            None,
            Duration::from_secs(5),
            Duration::from_millis(1_700_000_000_123),
        );
        let e = Entry::failed(
            Some(e),
            Duration::from_secs(5),
            Duration::from_millis(1_700_000_000_456),
        );
        assert_eq!(Entry::decode(&e.encode()), Some(e));
        assert_eq!(Entry::decode(&[1, 2, 3]), None);
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn three_failures_lock_the_account_and_the_address_doubling_after() {
        let l = Lockout::new(Duration::from_secs(5));
        let t0 = Duration::from_secs(1_000_000);
        for _ in 0..2 {
            l.failed_ok("ann@x.io", A, t0);
            assert_eq!(l.wait_ok("ann@x.io", A, t0), None);
        }
        l.failed_ok("ann@x.io", A, t0);
        assert_eq!(l.wait_ok("ann@x.io", A, t0), Some(Duration::from_secs(5)));
        // The account from elsewhere, and the address for another account.
        assert_eq!(l.wait_ok(" ANN@x.io", B, t0), Some(Duration::from_secs(5)));
        assert_eq!(l.wait_ok("bob@x.io", A, t0), Some(Duration::from_secs(5)));
        assert_eq!(l.wait_ok("bob@x.io", B, t0), None);
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(l.wait_ok("ann@x.io", A, t1), None);
        l.failed_ok("ann@x.io", B, t1);
        assert_eq!(l.wait_ok("ann@x.io", B, t1), Some(Duration::from_secs(10)));
        l.failed_ok("ann@x.io", B, t1);
        assert_eq!(l.wait_ok("ann@x.io", B, t1), Some(Duration::from_secs(20)));
        // A success clears the account and its address, not the other one.
        l.succeeded_ok("ann@x.io", B);
        assert_eq!(l.wait_ok("ann@x.io", B, t1), None);
        assert_eq!(
            l.wait_ok("bob@x.io", A, t1 - Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64_and_mapped_ipv4_as_ipv4() {
        let l = Lockout::new(Duration::from_secs(5));
        let t0 = Duration::from_secs(1_000_000);
        for i in 0..3u16 {
            let addr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, i));
            l.failed_ok(&format!("user{i}"), addr, t0);
        }
        let same_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
        let other_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert!(l.wait_ok("someone", same_64, t0).is_some());
        assert!(l.wait_ok("someone", other_64, t0).is_none());
        for _ in 0..3 {
            l.failed_ok("v4", A, t0);
        }
        let mapped = IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        assert!(l.wait_ok("someone", mapped, t0).is_some());
    }

    #[test]
    fn counts_are_forgotten_after_an_hour_and_waits_are_capped() {
        let l = Lockout::new(Duration::from_secs(5));
        let t0 = Duration::from_secs(1_000_000);
        l.failed_ok("a", A, t0);
        l.failed_ok("a", A, t0);
        let later = t0 + FORGET;
        l.failed_ok("a", A, later);
        assert_eq!(l.wait_ok("a", A, later), None);
        for _ in 0..100 {
            l.failed_ok("b", B, later);
        }
        assert_eq!(l.wait_ok("b", B, later), Some(MAX_WAIT));
    }
}
