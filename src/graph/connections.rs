//! Connections: typed, directed, time-bounded edges between things and
//! people of one org (a global platform thing may be the `to`). Both
//! directions are indexed; each index entry carries the edge's validity, so
//! an adjacency scan never reads the connection record.

use serde_json::json;

use crate::error::{Error, Result};
use crate::graph::props;
use crate::graph::{Audit, ReadTxn, check_json_size, limits};
use crate::keys::{Direction, Family, Key, Tenant, TenantKey};
use crate::model::{Connection, Dim, Id, Millis, Props, TriggerOn};
use crate::ontology::roles::CUSTOMER_CONNECTION_TYPES;
use crate::ontology::{Grant, TypeKind};
use crate::storage::Scan;

/// What `CONNECT a -[type {metadata}]-> b VALID FROM … UNTIL …` asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewConnection {
    pub from: Option<Id>,
    pub to: Option<Id>,
    pub kind: String,
    pub metadata: Props,
    pub strength: Option<f64>,
    /// Default: now.
    pub valid_from: Option<Millis>,
    pub valid_to: Option<Millis>,
}

/// One adjacency entry, as seen from `node`.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub con: Id,
    pub kind: String,
    pub from: Id,
    pub to: Id,
    pub valid_from: Millis,
    pub valid_to: Option<Millis>,
}

/// The value of an edge index entry: validity, and whether an end was
/// deleted (then the edge is hidden from every query, at any time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EdgeValue {
    pub valid_from: Millis,
    pub valid_to: Option<Millis>,
    pub hidden: bool,
}

impl EdgeValue {
    pub fn of(c: &Connection, hidden: bool) -> EdgeValue {
        EdgeValue {
            valid_from: c.valid_from,
            valid_to: c.valid_to,
            hidden,
        }
    }

    pub fn encode(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(17);
        v.extend_from_slice(&self.valid_from.to_be_bytes());
        v.extend_from_slice(&self.valid_to.unwrap_or(i64::MAX).to_be_bytes());
        v.push(u8::from(self.hidden));
        v
    }

    pub fn decode(bytes: &[u8]) -> Result<EdgeValue> {
        let bad = || Error::corruption("edge index", "value is not 17 bytes");
        if bytes.len() != 17 {
            return Err(bad());
        }
        let from = i64::from_be_bytes(bytes[0..8].try_into().map_err(|_| bad())?);
        let to = i64::from_be_bytes(bytes[8..16].try_into().map_err(|_| bad())?);
        Ok(EdgeValue {
            valid_from: from,
            valid_to: (to != i64::MAX).then_some(to),
            hidden: bytes[16] != 0,
        })
    }

    fn valid_at(self, at: Millis) -> bool {
        !self.hidden && self.valid_from <= at && self.valid_to.is_none_or(|to| at < to)
    }
}

impl ReadTxn<'_> {
    pub(super) fn connect(&mut self, grant: Grant, new: NewConnection) -> Result<Connection> {
        let from = new.from.unwrap_or(self.actor.person);
        let to = new
            .to
            .ok_or_else(|| Error::invalid("a connection needs a target"))?;
        if grant == Grant::FromSelf {
            if from != self.actor.person {
                return Err(Error::forbidden(
                    "customers may connect only from themselves",
                ));
            }
            if !CUSTOMER_CONNECTION_TYPES.contains(&new.kind.as_str()) {
                return Err(Error::forbidden(format!(
                    "customers may connect only with {}",
                    CUSTOMER_CONNECTION_TYPES.join(", ")
                )));
            }
        }
        self.check_type(TypeKind::Connection, &new.kind)?;
        if from == to {
            return Err(Error::invalid("a connection may not join a node to itself"));
        }
        check_json_size("connection metadata", &new.metadata, limits::METADATA_BYTES)?;
        if let Some(s) = new.strength
            && !(0.0..=1.0).contains(&s)
        {
            return Err(Error::invalid(format!(
                "strength must be between 0 and 1, not {s}"
            )));
        }
        let now = self.now();
        let valid_from = new.valid_from.unwrap_or(now);
        if let Some(valid_to) = new.valid_to
            && valid_to <= valid_from
        {
            return Err(Error::invalid(
                "a connection's validity must end after it starts",
            ));
        }
        self.check_endpoint(from, false)?;
        self.check_endpoint(to, true)?;
        let overlapping = self
            .edges_between(from, &new.kind, to)?
            .into_iter()
            .any(|(_, v)| {
                !v.hidden
                    && valid_from < v.valid_to.unwrap_or(i64::MAX)
                    && v.valid_from < new.valid_to.unwrap_or(i64::MAX)
            });
        if overlapping {
            return Err(Error::conflict(format!(
                "{from} is already connected to {to} by {} in that period",
                new.kind
            )));
        }
        self.count_standard("connections", 1)?;
        let connection = Connection {
            id: self.new_id(Dim::Connection),
            from,
            to,
            kind: new.kind,
            metadata: new.metadata,
            strength: new.strength,
            valid_from,
            valid_to: new.valid_to,
            created_at: now,
            ended_at: None,
        };
        let t = self.tenant();
        self.store(t.connection(connection.id), &connection, None)?;
        self.write_edge_entries(&connection, false)?;
        let meta = props([("from", json!(from)), ("to", json!(to))]);
        self.audit(
            Audit::new(
                "connection_created",
                Some(connection.id),
                &connection.kind,
                meta,
            )
            .firing(TriggerOn::Connect),
        );
        Ok(connection)
    }

    pub(super) fn disconnect(
        &mut self,
        grant: Grant,
        from: Id,
        kind: &str,
        to: Id,
    ) -> Result<Vec<Connection>> {
        if grant == Grant::FromSelf
            && (from != self.actor.person || !CUSTOMER_CONNECTION_TYPES.contains(&kind))
        {
            return Err(Error::forbidden(format!(
                "customers may end only their own {} connections",
                CUSTOMER_CONNECTION_TYPES.join(", ")
            )));
        }
        self.check_type(TypeKind::Connection, kind)?;
        let now = self.now();
        let current: Vec<Id> = self
            .edges_between(from, kind, to)?
            .into_iter()
            .filter(|(_, v)| v.valid_at(now))
            .map(|(con, _)| con)
            .collect();
        if current.is_empty() {
            return Err(Error::not_found(format!(
                "no current {kind} connection from {from} to {to}"
            )));
        }
        let mut ended = Vec::new();
        for con in current {
            ended.push(self.end_connection(con, now)?);
        }
        Ok(ended)
    }

    fn end_connection(&mut self, con: Id, now: Millis) -> Result<Connection> {
        let key = self.tenant().connection(con);
        let (mut c, old_len) = self
            .load_for_update::<Connection>(Family::Connection.name(), &key)?
            .ok_or_else(|| Error::corruption("edge index", format!("points at missing {con}")))?;
        c.valid_to = Some(now);
        c.ended_at = Some(now);
        self.store(key, &c, Some(old_len))?;
        self.write_edge_entries(&c, false)?;
        self.count_standard("connections", -1)?;
        let meta = props([("from", json!(c.from)), ("to", json!(c.to))]);
        self.audit(Audit::new("connection_ended", Some(con), &c.kind, meta));
        Ok(c)
    }

    /// On deleting a node: hide its edges from every query and end the open
    /// ones. Returns how many ended. No events: the delete logs one.
    pub(crate) fn hide_edges_of(&mut self, node: Id, now: Millis) -> Result<usize> {
        let mut cons = Vec::new();
        for dir in [Direction::Out, Direction::In] {
            // For update: an edge committed concurrently conflicts with us.
            let prefix = self.tenant().edges(dir, node, None);
            for entry in self.txn.scan_prefix_for_update(&prefix, false)? {
                let (key, _) = entry?;
                if let Key::Tenant(_, TenantKey::Edge { con, .. }) = crate::keys::decode(&key)? {
                    cons.push(con);
                }
            }
        }
        let mut ended = 0;
        for con in cons {
            let key = self.tenant().connection(con);
            let (mut c, old_len) = self
                .load_for_update::<Connection>(Family::Connection.name(), &key)?
                .ok_or_else(|| {
                    Error::corruption("edge index", format!("points at missing {con}"))
                })?;
            if c.ended_at.is_none() {
                c.ended_at = Some(now);
                if c.valid_to.is_none_or(|to| to > now) {
                    c.valid_to = Some(now);
                }
                self.store(key, &c, Some(old_len))?;
                self.count_standard("connections", -1)?;
                ended += 1;
            }
            self.write_edge_entries(&c, true)?;
        }
        Ok(ended)
    }

    fn write_edge_entries(&mut self, c: &Connection, hidden: bool) -> Result<()> {
        for (key, value) in edge_entries(self.tenant(), c, hidden) {
            self.txn.put(key, value)?;
        }
        Ok(())
    }

    /// Every edge `from -[kind]-> to`, with its validity. Read for update:
    /// a concurrent connect or disconnect of the same pair conflicts.
    fn edges_between(&mut self, from: Id, kind: &str, to: Id) -> Result<Vec<(Id, EdgeValue)>> {
        let mut prefix = self.tenant().edges(Direction::Out, from, Some(kind));
        prefix.push(to.dim().tag());
        prefix.extend_from_slice(&to.raw().to_be_bytes());
        let edge = |key: &[u8], value: &[u8]| -> Result<Option<(Id, EdgeValue)>> {
            match crate::keys::decode(key)? {
                Key::Tenant(_, TenantKey::Edge { con, .. }) => {
                    Ok(Some((con, EdgeValue::decode(value)?)))
                }
                _ => Ok(None),
            }
        };
        let mut out = Vec::new();
        if self.created_here(from) || self.created_here(to) {
            // An end is new: only this transaction can have written such
            // an edge, and no other can write one before we commit, so
            // neither the snapshot nor a conflict check is needed.
            for (key, value) in self.txn.scan_prefix_own_writes(&prefix)? {
                out.extend(edge(key, value)?);
            }
            return Ok(out);
        }
        for entry in self.txn.scan_prefix_for_update(&prefix, false)? {
            let (key, value) = entry?;
            out.extend(edge(&key, &value)?);
        }
        Ok(out)
    }

    /// An end of a new connection must be a live node of this org, read for
    /// update so a concurrent delete conflicts. A `to` may be a global thing.
    fn check_endpoint(&mut self, id: Id, may_be_global: bool) -> Result<()> {
        let t = self.tenant();
        if self.created.get(&id) == Some(&t) {
            // Made live by this transaction, in our own writes (which a
            // read for update would not enter into the read set either).
            return Ok(());
        }
        let live = match id.dim() {
            Dim::Thing => {
                let own = self
                    .load_for_update::<crate::model::Thing>(Family::Thing.name(), &t.thing(id))?;
                match own {
                    Some((thing, _)) => thing.deleted_at.is_none(),
                    None if may_be_global && t != Tenant::PLATFORM => self
                        .load::<crate::model::Thing>(
                            Family::Thing.name(),
                            &Tenant::PLATFORM.thing(id),
                        )?
                        .is_some_and(|g| g.deleted_at.is_none()),
                    None => false,
                }
            }
            Dim::Person => self
                .load_shared_for_update::<crate::model::Person>(
                    Family::Person.name(),
                    &t.person(id),
                )?
                .is_some_and(|(p, _)| p.status == crate::model::PersonStatus::Active),
            _ => return Err(Error::invalid(format!("{id} is not a thing or a person"))),
        };
        if live {
            Ok(())
        } else {
            Err(Error::not_found(format!(
                "{id} does not exist in organization {}",
                self.org_label()
            )))
        }
    }

    // ---- reading ----

    pub fn connection(&self, id: Id) -> Result<Option<Connection>> {
        if id.dim() != Dim::Connection {
            return Ok(None);
        }
        let c: Option<Connection> =
            self.load(Family::Connection.name(), &self.tenant().connection(id))?;
        match c {
            // Customers see a connection only when they may see both ends.
            Some(c)
                if !(self.reads_all()
                    || (self.node_visible(c.from)? && self.node_visible(c.to)?)) =>
            {
                Ok(None)
            }
            other => Ok(other),
        }
    }

    /// The edges of `node` in one direction (optionally of one type) valid
    /// at `at`, without reading connection records. Edges to deleted nodes
    /// never appear. Lazy.
    pub fn edges<'s>(
        &'s self,
        node: Id,
        dir: Direction,
        kind: Option<&str>,
        at: Millis,
    ) -> Result<impl Iterator<Item = Result<Edge>> + 's> {
        let scan = self
            .txn
            .scan_prefix(&self.tenant().edges(dir, node, kind), false)?;
        // Customers see only edges whose both ends they may see.
        let filtered = !self.reads_all();
        let node_seen = !filtered || self.node_visible(node)?;
        Ok(Edges {
            txn: self,
            scan,
            at,
            filtered,
            node_seen,
        })
    }
}

/// An adjacency scan: each index entry is looked at in place (lent by the
/// scan, decoded without copying), and only edges it yields are built.
struct Edges<'s, 'a> {
    txn: &'s ReadTxn<'a>,
    scan: Scan<'s>,
    at: Millis,
    filtered: bool,
    node_seen: bool,
}

impl Iterator for Edges<'_, '_> {
    type Item = Result<Edge>;

    fn next(&mut self) -> Option<Result<Edge>> {
        loop {
            let (key, value) = match self.scan.next_ref()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            let v = match EdgeValue::decode(value) {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            };
            if !v.valid_at(self.at) || !self.node_seen {
                continue;
            }
            let k = match crate::keys::decode_edge(key) {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            if self.filtered {
                match self.txn.node_visible(k.other) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
            let (from, to) = if k.dir == Direction::Out {
                (k.node, k.other)
            } else {
                (k.other, k.node)
            };
            return Some(Ok(Edge {
                con: k.con,
                kind: k.kind.to_string(),
                from,
                to,
                valid_from: v.valid_from,
                valid_to: v.valid_to,
            }));
        }
    }
}

/// A connection's two adjacency entries (out from `from`, in to `to`) and
/// their value; `hidden`: an end is deleted, so the edge shows at no time.
pub(crate) fn edge_entries(t: Tenant, c: &Connection, hidden: bool) -> [(Vec<u8>, Vec<u8>); 2] {
    let value = EdgeValue::of(c, hidden).encode();
    [
        (
            t.edge(Direction::Out, c.from, &c.kind, c.to, c.id),
            value.clone(),
        ),
        (t.edge(Direction::In, c.to, &c.kind, c.from, c.id), value),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_values_round_trip() {
        for v in [
            EdgeValue {
                valid_from: 5,
                valid_to: None,
                hidden: false,
            },
            EdgeValue {
                valid_from: -1,
                valid_to: Some(9),
                hidden: true,
            },
        ] {
            assert_eq!(EdgeValue::decode(&v.encode()).unwrap(), v);
        }
        assert!(EdgeValue::decode(&[1, 2, 3]).is_err());
    }

    #[test]
    fn validity_is_half_open_and_hidden_edges_are_never_valid() {
        let v = EdgeValue {
            valid_from: 10,
            valid_to: Some(20),
            hidden: false,
        };
        assert!(!v.valid_at(9) && v.valid_at(10) && v.valid_at(19) && !v.valid_at(20));
        assert!(!EdgeValue { hidden: true, ..v }.valid_at(15));
    }
}
