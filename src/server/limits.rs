//! What the server bounds, and by how much (RELIABILITY.md "Limits"):
//! one struct the command line fills and every connection reads.

use std::time::Duration;

use crate::db::MAX_QUEUE;
use crate::error::{Error, Result};
use crate::query::run::QueryLimits;

/// The server's limits; `Default` holds the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes a request line may have, without its newline (`TOO_LARGE`
    /// past it, then the connection closes: framing is lost).
    pub max_line_bytes: usize,
    /// Time budget of each statement of a query (`TIMEOUT` past it).
    pub query_timeout: Duration,
    /// Rows a result may have without LIMIT (`TOO_LARGE` past it).
    pub max_rows: usize,
    /// A connection with nothing in flight that sends no complete request
    /// for this long is closed; so is one whose socket takes none of its
    /// waiting answers for this long.
    pub idle_timeout: Duration,
    /// A connection that has not authenticated this long after it opened
    /// is closed.
    pub auth_timeout: Duration,
    /// Connections served at once; one more gets an error line and is
    /// closed.
    pub max_connections: usize,
    /// Response bytes waiting for a client that does not read them; past
    /// it the connection is closed (one response of any size may wait).
    pub max_output_bytes: usize,
    /// Events one subscription's queue holds; a subscriber further behind
    /// gets `CANCELLED` with `last_seq`, and its subscription ends.
    pub subscription_queue: usize,
    /// Subscriptions open at once on one connection (`LIMIT_REACHED`).
    pub max_subscriptions: usize,
    /// After 3 failed logins an account and a client address wait this
    /// long before their next attempt is checked, doubling per failure.
    pub login_lockout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        let query = QueryLimits::default();
        Limits {
            max_line_bytes: 1 << 20,
            query_timeout: query.timeout,
            max_rows: query.max_rows,
            idle_timeout: Duration::from_secs(300),
            auth_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_output_bytes: 16 << 20,
            subscription_queue: 10_000,
            max_subscriptions: 16,
            login_lockout: Duration::from_secs(5),
        }
    }
}

/// The longest duration a limit takes: time arithmetic stays far from
/// overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// The most connections a server takes.
pub const MAX_CONNECTIONS: usize = 1 << 20;

impl Limits {
    /// Refuses limits the server cannot work with: zero sizes or counts,
    /// durations past a year, more than 2²⁰ connections.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("max-line-bytes", self.max_line_bytes),
            ("max-rows", self.max_rows),
            ("max-connections", self.max_connections),
            ("max-output-bytes", self.max_output_bytes),
            ("subscription-queue", self.subscription_queue),
            ("max-subscriptions", self.max_subscriptions),
        ] {
            if value == 0 {
                return Err(Error::invalid(format!("--{name} must be at least 1")));
            }
        }
        if self.max_connections > MAX_CONNECTIONS {
            return Err(Error::invalid(format!(
                "--max-connections is at most {MAX_CONNECTIONS}"
            )));
        }
        if self.subscription_queue > MAX_QUEUE {
            return Err(Error::invalid(format!(
                "--subscription-queue is at most {MAX_QUEUE}"
            )));
        }
        for (name, value) in [
            ("query-timeout", self.query_timeout),
            ("idle-timeout", self.idle_timeout),
            ("auth-timeout", self.auth_timeout),
            ("login-lockout", self.login_lockout),
        ] {
            if value > MAX_DURATION {
                return Err(Error::invalid(format!("--{name} is at most 365 days")));
            }
        }
        Ok(())
    }

    /// What the runner of a connection is given.
    pub fn query(&self) -> QueryLimits {
        QueryLimits {
            timeout: self.query_timeout,
            max_rows: self.max_rows,
        }
    }
}

/// A duration as the command line takes it: a whole number with a unit,
/// `ms`, `s`, `m` or `h` (`250ms`, `5s`, `2m`); a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || {
        Error::invalid(format!(
            "{text:?} is not a duration: a whole number with ms, s, m or h (e.g. 5s)"
        ))
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => n.checked_mul(60).map(Duration::from_secs).ok_or_else(bad)?,
        "h" => n
            .checked_mul(3600)
            .map(Duration::from_secs)
            .ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if duration > MAX_DURATION {
        return Err(Error::invalid(format!("{text:?} is more than 365 days")));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_or_seconds() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("8760h").unwrap(), MAX_DURATION);
        for bad in [
            "",
            "s",
            "5 days",
            "-1s",
            "1.5s",
            "8761h",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_the_server_cannot_work_with_are_refused() {
        assert!(Limits::default().validate().is_ok());
        let bad = [
            Limits {
                max_line_bytes: 0,
                ..Limits::default()
            },
            Limits {
                max_connections: 0,
                ..Limits::default()
            },
            Limits {
                max_connections: MAX_CONNECTIONS + 1,
                ..Limits::default()
            },
            Limits {
                max_output_bytes: 0,
                ..Limits::default()
            },
            Limits {
                max_rows: 0,
                ..Limits::default()
            },
            Limits {
                subscription_queue: 0,
                ..Limits::default()
            },
            Limits {
                subscription_queue: MAX_QUEUE + 1,
                ..Limits::default()
            },
            Limits {
                max_subscriptions: 0,
                ..Limits::default()
            },
            Limits {
                idle_timeout: MAX_DURATION + Duration::from_secs(1),
                ..Limits::default()
            },
            Limits {
                query_timeout: Duration::MAX,
                ..Limits::default()
            },
        ];
        for limits in bad {
            assert!(limits.validate().is_err(), "{limits:?}");
        }
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let l = Limits::default();
        assert_eq!(l.max_line_bytes, 1024 * 1024);
        assert_eq!(l.query_timeout, Duration::from_secs(5));
        assert_eq!(l.max_rows, 10_000);
        assert_eq!(l.idle_timeout, Duration::from_secs(300));
        assert_eq!(l.auth_timeout, Duration::from_secs(10));
        assert_eq!(l.max_connections, 1024);
        assert_eq!(l.login_lockout, Duration::from_secs(5));
        assert_eq!(l.subscription_queue, 10_000);
        assert_eq!(l.max_subscriptions, 16);
        assert!(
            Limits {
                subscription_queue: MAX_QUEUE,
                ..Limits::default()
            }
            .validate()
            .is_ok()
        );
    }
}
