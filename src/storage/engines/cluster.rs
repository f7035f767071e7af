//! What the engines on a cluster (etcd, TiKV) share: the store's URL, the
//! layout of onedb's keys under a namespace, a tokio runtime that plain
//! storage threads block on, and scans fetched a chunk at a time.

use std::collections::VecDeque;
use std::future::Future;

use crate::error::{Error, Result};
use crate::storage::engine::EngineCursor;

/// Where a store on a cluster lives: `SCHEME://host:port[,host:port…][/namespace]`
/// (etcd members, or TiKV's placement drivers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub endpoints: Vec<String>,
    /// Every key of the store lives under `namespace/`, so several stores
    /// can share one cluster.
    pub namespace: String,
}

impl ClusterConfig {
    /// Parses `url`, which must start with `scheme://`.
    pub fn parse(url: &str, scheme: &str) -> Result<ClusterConfig> {
        let rest = url
            .strip_prefix(scheme)
            .and_then(|r| r.strip_prefix("://"))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "a {scheme} store is {scheme}://HOST:PORT,…, not {url:?}"
                ))
            })?;
        let (hosts, namespace) = rest.split_once('/').unwrap_or((rest, "onedb"));
        let endpoints: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        let valid_host = |h: &String| {
            h.rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        };
        if endpoints.is_empty() || !endpoints.iter().all(valid_host) {
            return Err(Error::invalid(format!(
                "a {scheme} store names its servers as HOST:PORT,HOST:PORT…, not {hosts:?}"
            )));
        }
        let namespace = namespace.trim_matches('/');
        if namespace.is_empty()
            || !namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(Error::invalid(format!(
                "a {scheme} namespace is letters, digits, '-', '_' and '.', not {namespace:?}"
            )));
        }
        Ok(ClusterConfig {
            endpoints,
            namespace: namespace.to_owned(),
        })
    }

    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/{}", self.endpoints.join(","), self.namespace)
    }
}

/// onedb's keys in a cluster's flat keyspace: `NAMESPACE/S/key`, the
/// space `S` telling data from the engine's own bookkeeping.
pub(crate) struct Keyspace {
    /// `NAMESPACE/`.
    prefix: Vec<u8>,
}

impl Keyspace {
    pub fn new(namespace: &str) -> Keyspace {
        let mut prefix = namespace.as_bytes().to_vec();
        prefix.push(b'/');
        Keyspace { prefix }
    }

    /// `key` in `space`.
    pub fn key(&self, space: u8, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + 2 + key.len());
        k.extend_from_slice(&self.prefix);
        k.push(space);
        k.push(b'/');
        k.extend_from_slice(key);
        k
    }

    /// The end of a range of `space`: an empty upper bound means "to the
    /// end of the space".
    pub fn end(&self, space: u8, upper: &[u8]) -> Vec<u8> {
        if upper.is_empty() {
            let mut k = self.prefix.clone();
            k.push(space);
            k.push(b'/' + 1);
            k
        } else {
            self.key(space, upper)
        }
    }

    /// How many bytes to strip from a stored key to get onedb's key.
    pub fn overhead(&self) -> usize {
        self.prefix.len() + 2
    }

    /// A key of this process's own in the marker space `m`.
    pub fn marker(&self) -> Vec<u8> {
        self.key(b'm', format!("{:032x}", rand::random::<u128>()).as_bytes())
    }
}

/// A small tokio runtime for an async client: storage calls come from plain
/// threads, which block on it.
pub(crate) struct Blocking {
    runtime: tokio::runtime::Runtime,
}

impl Blocking {
    pub fn new(name: &str) -> Result<Blocking> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()?;
        Ok(Blocking { runtime })
    }

    /// Runs `f` on the runtime from any thread (one inside another tokio
    /// runtime hands it over instead of blocking that runtime). None only
    /// if the runtime is shutting down.
    pub fn call<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Some(self.runtime.block_on(f));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv().ok()
    }
}

/// Entries a chunked scan fetches per request.
pub(crate) const CHUNK: usize = 256;

/// An engine whose scans come a chunk at a time.
pub(crate) trait ChunkSource {
    /// Up to `CHUNK` entries in `[lower, upper)` (empty upper: to the end)
    /// at sequence `at`, in key order or reverse, with onedb's keys.
    fn chunk(
        &self,
        lower: &[u8],
        upper: &[u8],
        at: u64,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
}

/// A scan over a snapshot of a `ChunkSource`.
pub(crate) struct ChunkCursor<'a, S: ChunkSource> {
    source: &'a S,
    at: u64,
    /// What is left to visit: narrowed past each chunk.
    lower: Vec<u8>,
    upper: Vec<u8>,
    reverse: bool,
    buf: VecDeque<(Vec<u8>, Vec<u8>)>,
    failed: Option<Error>,
    done: bool,
}

impl<'a, S: ChunkSource> ChunkCursor<'a, S> {
    pub fn new(source: &'a S, at: u64, lower: &[u8], upper: &[u8], reverse: bool) -> Self {
        ChunkCursor {
            source,
            at,
            lower: lower.to_vec(),
            upper: upper.to_vec(),
            reverse,
            buf: VecDeque::new(),
            failed: None,
            done: !upper.is_empty() && lower >= upper,
        }
    }

    fn fill(&mut self) {
        match self
            .source
            .chunk(&self.lower, &self.upper, self.at, self.reverse)
        {
            Ok(chunk) => {
                if chunk.len() < CHUNK {
                    self.done = true;
                }
                if let Some((last, _)) = chunk.last() {
                    if self.reverse {
                        self.upper = last.clone();
                    } else {
                        // The next key after `last`.
                        self.lower = last.clone();
                        self.lower.push(0);
                    }
                }
                self.buf.extend(chunk);
            }
            Err(e) => {
                self.failed = Some(e);
                self.done = true;
            }
        }
    }
}

impl<S: ChunkSource> EngineCursor for ChunkCursor<'_, S> {
    fn peek(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        if self.buf.is_empty() && !self.done {
            self.fill();
        }
        if let Some(e) = &self.failed
            && self.buf.is_empty()
        {
            return Some(Err(e.clone()));
        }
        self.buf
            .front()
            .map(|(k, v)| Ok((k.as_slice(), v.as_slice())))
    }

    fn advance(&mut self) {
        if self.buf.pop_front().is_none() {
            self.failed = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_bad_ones_are_refused() {
        let c = ClusterConfig::parse("etcd://127.0.0.1:2379,10.0.0.2:2379/shop", "etcd").unwrap();
        assert_eq!(c.endpoints, ["127.0.0.1:2379", "10.0.0.2:2379"]);
        assert_eq!(c.namespace, "shop");
        assert_eq!(ClusterConfig::parse(&c.url("etcd"), "etcd").unwrap(), c);
        assert_eq!(
            ClusterConfig::parse("tikv://pd:2379", "tikv")
                .unwrap()
                .namespace,
            "onedb"
        );
        for bad in [
            "etcd://",
            "etcd://host",
            "etcd://h:port",
            "etcd://:2379",
            "etcd://h:1/a b",
            "http://h:1",
            "tikv://h:1",
        ] {
            assert!(ClusterConfig::parse(bad, "etcd").is_err(), "{bad}");
        }
    }

    #[test]
    fn spaces_do_not_overlap_and_an_open_range_ends_at_its_space() {
        let ks = Keyspace::new("ns");
        assert_eq!(ks.key(b'd', b"k"), b"ns/d/k");
        let end = ks.end(b'd', b"");
        assert!(ks.key(b'd', &[0xff; 4]) < end);
        assert!(end <= ks.key(b'e', b""));
        assert_eq!(ks.key(b'd', b"k")[ks.overhead()..], *b"k");
    }
}
