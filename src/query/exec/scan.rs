//! Scans: the nodes an access path yields (by id, by type and status, by type, people, all things).

use super::*;
use crate::ontology::Status;

/// A node scan through an index.
pub(super) struct Scan<'c> {
    pub(super) slot: usize,
    pub(super) width: usize,
    pub(super) ctx: &'c Context<'c, 'c>,
    pub(super) nodes: Box<dyn Iterator<Item = Result<Node>> + 'c>,
}

impl<'c> Scan<'c> {
    pub(super) fn new(
        slot: usize,
        access: &'c Access,
        width: usize,
        ctx: &'c Context<'c, 'c>,
        want: Option<usize>,
    ) -> Result<Scan<'c>> {
        let txn = ctx.env.txn;
        // A known row count (a LIMIT right above) is read in one batch.
        let first = want.unwrap_or(crate::graph::FIRST_BATCH);
        let nodes: Box<dyn Iterator<Item = Result<Node>> + 'c> = match access {
            Access::ById { id, label, load } => {
                let value = id.eval(&[], &ctx.env)?;
                let node = match value.as_id() {
                    Ok(id) if *load => load_node(txn, id)?.filter(|n| label_ok(n, label)),
                    Ok(id) if matches!(id.dim(), Dim::Thing | Dim::Person | Dim::Knowledge) => {
                        Some(Node::Bare(id))
                    }
                    _ => None,
                };
                Box::new(node.into_iter().map(Ok))
            }
            Access::ByStatus(kind, status) => {
                let value = status.eval(&[], &ctx.env)?;
                match value.as_str().and_then(|s| Status::parse(s).ok()) {
                    Some(status) => Box::new(
                        txn.things_of_type_first(kind, Some(status), first)?
                            .map(|t| t.map(Node::Thing)),
                    ),
                    None => Box::new(std::iter::empty()),
                }
            }
            Access::ByType(kind) => Box::new(
                txn.things_of_type_first(kind, None, first)?
                    .map(|t| t.map(Node::Thing)),
            ),
            Access::People => Box::new(txn.people()?.into_iter().map(|p| Ok(Node::Person(p)))),
            Access::AllThings => Box::new(txn.all_things()?.map(|t| t.map(Node::Thing))),
        };
        Ok(Scan {
            slot,
            width,
            ctx,
            nodes,
        })
    }
}

impl Operator for Scan<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        self.ctx.check_deadline()?;
        match self.nodes.next().transpose()? {
            Some(node) => {
                let mut row = vec![NULL; self.width];
                row[self.slot] = Val::Node(Arc::new(node));
                Ok(Some(row))
            }
            None => Ok(None),
        }
    }
}

/// A visible, live node by id (thing, person or knowledge).
pub fn load_node(txn: &ReadTxn<'_>, id: Id) -> Result<Option<Node>> {
    Ok(match id.dim() {
        Dim::Thing => txn.thing(id)?.map(Node::Thing),
        Dim::Person => txn.person(id)?.map(Node::Person),
        Dim::Knowledge => txn.knowledge(id)?.map(Node::Knowledge),
        _ => None,
    })
}

/// `load_node` for several ids: things in one batched read (as one hop's
/// far ends mostly are), any other node on its own.
pub fn load_nodes(txn: &ReadTxn<'_>, ids: &[Id]) -> Result<Vec<Option<Node>>> {
    if ids.iter().all(|id| id.dim() == Dim::Thing) {
        let things = txn.things(ids)?;
        return Ok(things.into_iter().map(|t| t.map(Node::Thing)).collect());
    }
    ids.iter().map(|id| load_node(txn, *id)).collect()
}

pub(super) fn label_ok(node: &Node, label: &Option<String>) -> bool {
    label.as_deref().is_none_or(|l| node.label() == l)
}
