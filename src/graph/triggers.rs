//! User-defined triggers: on create / update / status / connect of a type,
//! emit an event — inside the same commit as the change that fired them.

use std::sync::Arc;

use serde_json::json;

use crate::error::{Error, Result};
use crate::graph::events::ENGINE_EVENTS;
use crate::graph::{Audit, ReadTxn, check_json_size, limits};
use crate::keys::Family;
use crate::model::{Id, Props, Trigger, TriggerOn};
use crate::ontology::vocabulary::is_valid_type_name;
use crate::ontology::{Action, TypeKind};

impl ReadTxn<'_> {
    /// The org's triggers. Read for update by writers, so a trigger created
    /// concurrently either fires for a change or is ordered after it.
    fn load_triggers(&mut self) -> Result<Arc<Vec<Trigger>>> {
        let tenant = self.tenant();
        if let Some((t, triggers)) = &self.triggers
            && *t == tenant
        {
            // Already in the read set; the snapshot does not change.
            return Ok(triggers.clone());
        }
        let key = tenant.triggers();
        let found = if self.is_writable() {
            self.load_shared_for_update(Family::Triggers.name(), &key)?
        } else {
            self.load_shared(Family::Triggers.name(), &key)?
        };
        let triggers: Arc<Vec<Trigger>> = found.map(|(t, _)| t).unwrap_or_default();
        self.triggers = Some((tenant, triggers.clone()));
        Ok(triggers)
    }

    /// The org's triggers (read-only: not part of the conflict check).
    pub fn triggers(&self) -> Result<Vec<Trigger>> {
        self.authorize(Action::ReadAll)?;
        Ok(self
            .load::<Vec<Trigger>>(Family::Triggers.name(), &self.tenant().triggers())?
            .unwrap_or_default())
    }

    pub(super) fn create_trigger(
        &mut self,
        name: &str,
        on: TriggerOn,
        kind: &str,
        emit: &str,
        metadata: Props,
    ) -> Result<Trigger> {
        if self.org.is_none() {
            return Err(Error::invalid(
                "triggers belong to an organization: USE ORG first",
            ));
        }
        if !is_valid_type_name(name) {
            return Err(Error::invalid(format!(
                "trigger name {name:?} must be a lowercase word"
            )));
        }
        let type_kind = if on == TriggerOn::Connect {
            TypeKind::Connection
        } else {
            TypeKind::Thing
        };
        self.check_type(type_kind, kind)?;
        self.check_type(TypeKind::Event, emit)?;
        if ENGINE_EVENTS.contains(&emit) {
            return Err(Error::invalid(format!(
                "{emit} events are written by the engine only"
            )));
        }
        check_json_size("trigger metadata", &metadata, limits::METADATA_BYTES)?;
        let mut all: Vec<Trigger> = self.load_triggers()?.as_ref().clone();
        if all.iter().any(|t| t.name == name) {
            return Err(Error::conflict(format!("trigger {name} already exists")));
        }
        if all.len() >= limits::TRIGGERS_PER_ORG {
            return Err(Error::too_large(format!(
                "an organization has at most {} triggers",
                limits::TRIGGERS_PER_ORG
            )));
        }
        let trigger = Trigger {
            name: name.to_string(),
            on,
            kind: kind.to_string(),
            emit: emit.to_string(),
            metadata,
            created_at: self.now(),
        };
        all.push(trigger.clone());
        self.save_triggers(&all)?;
        self.audit_trigger_change("created", &trigger);
        Ok(trigger)
    }

    pub(super) fn drop_trigger(&mut self, name: &str) -> Result<()> {
        let mut all: Vec<Trigger> = self.load_triggers()?.as_ref().clone();
        let before = all.len();
        let dropped = all.iter().find(|t| t.name == name).cloned();
        all.retain(|t| t.name != name);
        if all.len() == before {
            return Err(Error::not_found(format!("no trigger named {name}")));
        }
        self.save_triggers(&all)?;
        if let Some(t) = dropped {
            self.audit_trigger_change("dropped", &t);
        }
        Ok(())
    }

    fn save_triggers(&mut self, all: &[Trigger]) -> Result<()> {
        let key = self.tenant().triggers();
        let bytes = crate::graph::encode(&all)?;
        self.triggers = None;
        self.txn.put(key, bytes)
    }

    /// Trigger changes are audited like every other write.
    fn audit_trigger_change(&mut self, action: &str, trigger: &Trigger) {
        let meta = crate::graph::props([
            ("action", json!(action)),
            ("trigger", json!(trigger.name)),
            ("on", json!(trigger.on.as_str())),
            ("type", json!(trigger.kind)),
            ("emit", json!(trigger.emit)),
        ]);
        self.audit(Audit::new("settings_updated", None, "trigger", meta));
    }

    /// Emits the events of every trigger on (`on`, `kind`) for `target`.
    pub(crate) fn fire_triggers(
        &mut self,
        on: TriggerOn,
        kind: &str,
        target: Id,
        entity_type: &str,
    ) -> Result<()> {
        if self.org.is_none() {
            return Ok(());
        }
        let all = self.load_triggers()?;
        for trigger in all.iter().filter(|t| t.on == on && t.kind == kind) {
            let mut metadata = trigger.metadata.clone();
            metadata.insert("trigger".into(), json!(trigger.name));
            self.log(&trigger.emit, Some(target), entity_type, metadata)?;
        }
        Ok(())
    }
}
