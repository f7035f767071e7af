//! Knowledge: labels and text chunks with embeddings, linked to things
//! through the knowledge–thing junction.

use serde_json::json;

use crate::error::{Error, Result};
use crate::graph::props;
use crate::graph::{Audit, ReadTxn, check_text, limits};
use crate::keys::{Family, Key, TenantKey};
use crate::model::codec::decode_knowledge;
use crate::model::{Dim, Id, JunctionRole, Knowledge, KnowledgeKind, Lazy};
use crate::ontology::Grant;

/// The org setting holding the dimension every chunk's embedding must have.
pub(crate) const EMBEDDING_DIM: &str = "embedding_dim";

/// What `CREATE KNOWLEDGE CHUNK|LABEL "text" … FOR x` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct NewKnowledge {
    pub kind: KnowledgeKind,
    pub text: String,
    pub embedding: Option<Vec<f32>>,
    pub labels: Vec<String>,
    pub source: Option<Id>,
    /// Things it is about, each with its junction role.
    pub links: Vec<(Id, JunctionRole)>,
}

impl ReadTxn<'_> {
    pub(super) fn create_knowledge(&mut self, new: NewKnowledge) -> Result<Knowledge> {
        check_text("knowledge text", &new.text, limits::TEXT_BYTES)?;
        if new.labels.len() > limits::LABELS {
            return Err(Error::too_large(format!(
                "at most {} labels",
                limits::LABELS
            )));
        }
        for label in &new.labels {
            check_text("a label", label, limits::LABEL_BYTES)?;
        }
        if let Some(embedding) = &new.embedding {
            self.check_embedding(embedding)?;
        }
        let t = self.tenant();
        let mut things = new.links.clone();
        if let Some(source) = new.source
            && !things.iter().any(|(id, _)| *id == source)
        {
            things.push((source, JunctionRole::ChunkOf));
        }
        for (id, _) in &things {
            let live = id.dim() == Dim::Thing
                && self
                    .load_for_update::<crate::model::Thing>(Family::Thing.name(), &t.thing(*id))?
                    .is_some_and(|(x, _)| x.deleted_at.is_none());
            if !live {
                return Err(Error::not_found(format!(
                    "thing {id} does not exist in organization {}",
                    self.org_label()
                )));
            }
        }
        self.count_standard("knowledge", 1)?;
        let knowledge = Knowledge {
            id: self.new_id(Dim::Knowledge),
            kind: new.kind,
            text: new.text,
            embedding: new.embedding.map(Lazy::from),
            labels: new.labels,
            source: new.source,
            created_at: self.now(),
            deleted_at: None,
        };
        self.store(t.knowledge(knowledge.id), &knowledge, None)?;
        if let Some(source) = knowledge.source {
            self.index(t.knowledge_by_source(source, knowledge.id))?;
        }
        for (thing, role) in &things {
            let role = role.as_str().as_bytes().to_vec();
            self.txn
                .put(t.junction_out(knowledge.id, *thing), role.clone())?;
            self.txn.put(t.junction_in(*thing, knowledge.id), role)?;
        }
        let meta = props([("kind", json!(knowledge.kind.as_str()))]);
        self.audit(Audit::new(
            "entity_created",
            Some(knowledge.id),
            "knowledge",
            meta,
        ));
        Ok(knowledge)
    }

    /// Every chunk of an org has one embedding dimension, fixed by the first.
    fn check_embedding(&mut self, embedding: &[f32]) -> Result<()> {
        if embedding.is_empty() || embedding.len() > limits::EMBEDDING_DIMS {
            return Err(Error::invalid(format!(
                "an embedding has 1 to {} dimensions",
                limits::EMBEDDING_DIMS
            )));
        }
        if embedding.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid("an embedding holds finite numbers only"));
        }
        let key = self.tenant().setting(EMBEDDING_DIM);
        match self.txn.get_for_update(&key)? {
            Some(bytes) => {
                let dim = crate::keys::decode_i64(&bytes)?;
                if dim != embedding.len() as i64 {
                    return Err(Error::invalid(format!(
                        "embeddings in organization {} have {dim} dimensions, not {}",
                        self.org_label(),
                        embedding.len()
                    )));
                }
                Ok(())
            }
            None => self
                .txn
                .put(key, crate::keys::encode_i64(embedding.len() as i64)),
        }
    }

    pub(super) fn delete_knowledge(&mut self, grant: Grant, id: Id) -> Result<()> {
        if grant == crate::ontology::Grant::OwnOnly
            && self.creator_of(id)? != Some(self.actor.person)
        {
            return Err(Error::forbidden(
                "org_user may delete only the knowledge they created",
            ));
        }
        let t = self.tenant();
        let (mut k, old_len) =
            match self.load_for_update::<Knowledge>(Family::Knowledge.name(), &t.knowledge(id))? {
                Some((k, len)) if k.deleted_at.is_none() => (k, len),
                _ => return Err(Error::not_found(format!("knowledge {id} does not exist"))),
            };
        k.deleted_at = Some(self.now());
        self.store(t.knowledge(id), &k, Some(old_len))?;
        if let Some(source) = k.source {
            self.unindex(t.knowledge_by_source(source, id))?;
        }
        for thing in self.things_of_knowledge(id)? {
            self.unindex(t.junction_out(id, thing.0))?;
            self.unindex(t.junction_in(thing.0, id))?;
        }
        self.count_standard("knowledge", -1)?;
        let meta = props([("kind", json!(k.kind.as_str()))]);
        self.audit(Audit::new("entity_deleted", Some(id), "knowledge", meta));
        Ok(())
    }

    // ---- reading ----

    pub fn knowledge(&self, id: Id) -> Result<Option<Knowledge>> {
        if id.dim() != Dim::Knowledge {
            return Ok(None);
        }
        let k = match self.txn.get(&self.tenant().knowledge(id))? {
            Some(bytes) => Some(decode_knowledge(&bytes)?),
            None => None,
        };
        match k {
            Some(k) if k.deleted_at.is_none() && self.may_see_knowledge(&k)? => Ok(Some(k)),
            _ => Ok(None),
        }
    }

    /// Customers see knowledge only when it comes from a thing they may see
    /// (a published or global thing): it is as public as its source.
    fn may_see_knowledge(&self, k: &Knowledge) -> Result<bool> {
        if self.reads_all() {
            return Ok(true);
        }
        match k.source {
            Some(source) => Ok(self.thing(source)?.is_some()),
            None => Ok(false),
        }
    }

    /// Every live knowledge item of the org, by creation.
    pub fn all_knowledge<'s>(&'s self) -> Result<impl Iterator<Item = Result<Knowledge>> + 's> {
        let scan = self
            .txn
            .scan_prefix(&self.tenant().knowledge_all(), false)?;
        Ok(scan.filter_map(move |entry| {
            match entry
                .and_then(|(_, v)| crate::graph::decode::<Knowledge>(Family::Knowledge.name(), &v))
            {
                Ok(k) if k.deleted_at.is_none() => match self.may_see_knowledge(&k) {
                    Ok(true) => Some(Ok(k)),
                    Ok(false) => None,
                    Err(e) => Some(Err(e)),
                },
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            }
        }))
    }

    /// The things a knowledge item is about (the junction), with roles.
    pub fn things_of_knowledge(&self, id: Id) -> Result<Vec<(Id, JunctionRole)>> {
        self.junction(&self.tenant().junctions_of_knowledge(id))
    }

    /// The knowledge about a thing (the junction), with roles.
    pub fn knowledge_of_thing(&self, id: Id) -> Result<Vec<(Id, JunctionRole)>> {
        self.junction(&self.tenant().junctions_of_thing(id))
    }

    fn junction(&self, prefix: &[u8]) -> Result<Vec<(Id, JunctionRole)>> {
        let mut out = Vec::new();
        for entry in self.txn.scan_prefix(prefix, false)? {
            let (key, value) = entry?;
            let role = parse_role(&value)?;
            match crate::keys::decode(&key)? {
                Key::Tenant(_, TenantKey::JunctionOut { thing, .. }) => out.push((thing, role)),
                Key::Tenant(_, TenantKey::JunctionIn { knowledge, .. }) => {
                    out.push((knowledge, role))
                }
                _ => return Err(Error::corruption("junction", "key of another family")),
            }
        }
        if !self.reads_all() {
            // Customers see only the links whose far end they may see.
            let mut visible = Vec::with_capacity(out.len());
            for (id, role) in out {
                if self.node_visible(id)? {
                    visible.push((id, role));
                }
            }
            out = visible;
        }
        Ok(out)
    }

    /// The org's embedding dimension, once a chunk set it.
    pub fn embedding_dim(&self) -> Result<Option<usize>> {
        match self.txn.get(&self.tenant().setting(EMBEDDING_DIM))? {
            Some(bytes) => Ok(Some(crate::keys::decode_i64(&bytes)? as usize)),
            None => Ok(None),
        }
    }
}

pub(crate) fn parse_role(bytes: &[u8]) -> Result<JunctionRole> {
    JunctionRole::ALL
        .into_iter()
        .find(|r| r.as_str().as_bytes() == bytes)
        .ok_or_else(|| Error::corruption("junction", "unknown role"))
}
