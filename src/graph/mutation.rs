//! Every write the language can say, as data, and the one door they go
//! through: [`WriteTxn::apply`]. It runs ONTOLOGY.md's standard pipeline
//! for all of them:
//! 1. authorize the mutation's action against the permission table;
//! 2. for writes inside an org, check that the org accepts writes;
//! 3. the mutation's own step, given the grant: validate, count usage
//!    against the limits, store the record and its index entries, and
//!    queue the event(s) that record it (`ReadTxn::audit`);
//! 4. log each queued event, in its log;
//! 5. fire the triggers each event names.
//!
//! The typed methods of `WriteTxn` (`create_thing`, `connect`, …) are this
//! door with a typed result.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::graph::{
    IssuedToken, NewConnection, NewKnowledge, NewPerson, NewThing, NewToken, OrgUpdate,
    ThingUpdate, WriteTxn,
};
use crate::model::{
    Connection, Event, Id, Knowledge, Org, Person, Plan, Props, Status, Thing, Token, Trigger,
    TriggerOn,
};
use crate::ontology::{Action, Grant, TypeKind};

/// One write.
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    CreateOrg {
        slug: String,
        name: String,
        plan: Plan,
    },
    UpdateOrg {
        slug: String,
        update: OrgUpdate,
    },
    SetLimits {
        slug: String,
        limits: BTreeMap<String, i64>,
    },
    /// A new thing or connection or event type (platform owner).
    AddType {
        kind: TypeKind,
        name: String,
    },
    /// A person in the transaction's org (or, for a platform owner, none).
    CreatePerson(NewPerson),
    RemovePerson(Id),
    CreateThing(NewThing),
    UpdateThing {
        id: Id,
        update: ThingUpdate,
    },
    SetStatus {
        id: Id,
        status: Status,
    },
    DeleteThing(Id),
    Connect(NewConnection),
    /// Ends the open connections of a type between two nodes.
    Disconnect {
        from: Id,
        kind: String,
        to: Id,
    },
    CreateKnowledge(NewKnowledge),
    DeleteKnowledge(Id),
    Emit {
        kind: String,
        target: Option<Id>,
        metadata: Props,
    },
    CreateTrigger {
        name: String,
        on: TriggerOn,
        kind: String,
        emit: String,
        metadata: Props,
    },
    DropTrigger(String),
    /// An API token for the actor.
    CreateToken(NewToken),
    RevokeToken(Id),
    /// A JSON Schema for a thing type's properties: outside an org the
    /// platform's (every org), inside one the org's.
    DefineSchema {
        kind: String,
        schema: Props,
    },
    DropSchema(String),
}

/// What a mutation wrote.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Org(Org),
    Person(Person),
    Thing(Thing),
    Connection(Connection),
    /// The connections a disconnect ended.
    Ended(Vec<Connection>),
    Knowledge(Knowledge),
    Event(Event),
    Trigger(Trigger),
    /// A new token, with the secret it hands out once.
    IssuedToken(Box<IssuedToken>),
    Token(Token),
    /// A delete or a vocabulary addition: nothing to hand back.
    Done,
}

impl Mutation {
    /// The permission-table action the mutation needs.
    pub fn action(&self) -> Action {
        use Mutation::*;
        match self {
            CreateOrg { .. } | UpdateOrg { .. } | SetLimits { .. } => Action::ManageOrgs,
            AddType { .. } => Action::ExtendVocabulary,
            CreatePerson(_) | RemovePerson(_) => Action::ManagePeople,
            CreateThing(_) => Action::CreateThing,
            UpdateThing { .. } => Action::UpdateThing,
            SetStatus { .. } => Action::ChangeStatus,
            DeleteThing(_) => Action::DeleteThing,
            Connect(_) => Action::Connect,
            Disconnect { .. } => Action::Disconnect,
            CreateKnowledge(_) => Action::WriteKnowledge,
            DeleteKnowledge(_) => Action::DeleteKnowledge,
            Emit { .. } => Action::EmitEvent,
            CreateTrigger { .. } | DropTrigger(_) => Action::ManageTriggers,
            CreateToken(_) | RevokeToken(_) => Action::ManageTokens,
            DefineSchema { .. } | DropSchema(_) => Action::ManageSchemas,
        }
    }

    /// Whether the mutation writes inside the transaction's org, so the
    /// org must accept writes. Org management and vocabulary additions
    /// act on the platform (a suspended org must stay reachable for its
    /// reactivation). Ending a credential is never refused.
    fn writes_in_org(&self) -> bool {
        !matches!(
            self,
            Mutation::CreateOrg { .. }
                | Mutation::UpdateOrg { .. }
                | Mutation::SetLimits { .. }
                | Mutation::AddType { .. }
                | Mutation::RevokeToken(_)
        )
    }
}

impl WriteTxn<'_> {
    /// Runs `mutation` inside this transaction (nothing is stored until
    /// `commit`). See the module docs for the steps.
    pub fn apply(&mut self, mutation: Mutation) -> Result<Applied> {
        let t = &mut self.0;
        // What a failed mutation queued is not this one's.
        t.forget_audits();
        let grant = t.authorize(mutation.action())?;
        if mutation.writes_in_org() {
            t.check_org_writable()?;
        }
        let emits = matches!(mutation, Mutation::Emit { .. });
        let applied = self.perform(grant, mutation)?;
        let event = self.0.record_audits()?;
        match (emits, event) {
            (true, Some(event)) => Ok(Applied::Event(event)),
            (true, None) => Err(Error::invalid("EMIT logged no event")),
            (false, _) => Ok(applied),
        }
    }

    /// Step 3: the mutation's own work.
    fn perform(&mut self, grant: Grant, mutation: Mutation) -> Result<Applied> {
        let t = &mut self.0;
        use Mutation as M;
        Ok(match mutation {
            M::CreateOrg { slug, name, plan } => Applied::Org(t.create_org(&slug, &name, plan)?),
            M::UpdateOrg { slug, update } => Applied::Org(t.update_org(&slug, update)?),
            M::SetLimits { slug, limits } => Applied::Org(t.set_limits(&slug, limits)?),
            M::AddType { kind, name } => {
                t.add_type(kind, &name)?;
                Applied::Done
            }
            M::CreatePerson(new) => Applied::Person(t.create_person(new)?),
            M::RemovePerson(id) => Applied::Person(t.remove_person(id)?),
            M::CreateThing(new) => Applied::Thing(t.create_thing(grant, new)?),
            M::UpdateThing { id, update } => Applied::Thing(t.update_thing(id, update)?),
            M::SetStatus { id, status } => Applied::Thing(t.set_status(id, status)?),
            M::DeleteThing(id) => {
                t.delete_thing(grant, id)?;
                Applied::Done
            }
            M::Connect(new) => Applied::Connection(t.connect(grant, new)?),
            M::Disconnect { from, kind, to } => {
                Applied::Ended(t.disconnect(grant, from, &kind, to)?)
            }
            M::CreateKnowledge(new) => Applied::Knowledge(t.create_knowledge(new)?),
            M::DeleteKnowledge(id) => {
                t.delete_knowledge(grant, id)?;
                Applied::Done
            }
            M::Emit {
                kind,
                target,
                metadata,
            } => {
                // The event itself is the result (`apply`).
                t.emit(&kind, target, metadata)?;
                Applied::Done
            }
            M::CreateTrigger {
                name,
                on,
                kind,
                emit,
                metadata,
            } => Applied::Trigger(t.create_trigger(&name, on, &kind, &emit, metadata)?),
            M::DropTrigger(name) => {
                t.drop_trigger(&name)?;
                Applied::Done
            }
            M::CreateToken(new) => Applied::IssuedToken(Box::new(t.create_token(new)?)),
            M::RevokeToken(id) => Applied::Token(t.revoke_token(grant, id)?),
            M::DefineSchema { kind, schema } => {
                t.define_schema(&kind, schema)?;
                Applied::Done
            }
            M::DropSchema(kind) => {
                t.drop_schema(&kind)?;
                Applied::Done
            }
        })
    }

    pub fn create_org(&mut self, slug: &str, name: &str, plan: Plan) -> Result<Org> {
        let (slug, name) = (slug.to_string(), name.to_string());
        match self.apply(Mutation::CreateOrg { slug, name, plan })? {
            Applied::Org(org) => Ok(org),
            other => Err(mismatch(other)),
        }
    }

    pub fn update_org(&mut self, slug: &str, update: OrgUpdate) -> Result<Org> {
        let slug = slug.to_string();
        match self.apply(Mutation::UpdateOrg { slug, update })? {
            Applied::Org(org) => Ok(org),
            other => Err(mismatch(other)),
        }
    }

    /// `SET LIMITS ON ORG slug {name: n, …}`: counters or thing types; -1 is
    /// unlimited. Lowering a limit below current usage is allowed (new
    /// writes are refused until usage falls).
    pub fn set_limits(&mut self, slug: &str, limits: BTreeMap<String, i64>) -> Result<Org> {
        let slug = slug.to_string();
        match self.apply(Mutation::SetLimits { slug, limits })? {
            Applied::Org(org) => Ok(org),
            other => Err(mismatch(other)),
        }
    }

    /// The platform owner adds a type to the vocabulary; it persists.
    pub fn add_type(&mut self, kind: TypeKind, name: &str) -> Result<()> {
        let name = name.to_string();
        self.apply(Mutation::AddType { kind, name }).map(|_| ())
    }

    pub fn create_person(&mut self, new: NewPerson) -> Result<Person> {
        match self.apply(Mutation::CreatePerson(new))? {
            Applied::Person(p) => Ok(p),
            other => Err(mismatch(other)),
        }
    }

    /// Removes a person: their record stays (status `removed`), their email
    /// is free again, their connections end.
    pub fn remove_person(&mut self, id: Id) -> Result<Person> {
        match self.apply(Mutation::RemovePerson(id))? {
            Applied::Person(p) => Ok(p),
            other => Err(mismatch(other)),
        }
    }

    pub fn create_thing(&mut self, new: NewThing) -> Result<Thing> {
        match self.apply(Mutation::CreateThing(new))? {
            Applied::Thing(t) => Ok(t),
            other => Err(mismatch(other)),
        }
    }

    pub fn update_thing(&mut self, id: Id, update: ThingUpdate) -> Result<Thing> {
        match self.apply(Mutation::UpdateThing { id, update })? {
            Applied::Thing(t) => Ok(t),
            other => Err(mismatch(other)),
        }
    }

    /// Moves a thing through the lifecycle; anything off the table is
    /// `INVALID_TRANSITION`. Archiving logs `entity_archived`.
    pub fn set_status(&mut self, id: Id, status: Status) -> Result<Thing> {
        match self.apply(Mutation::SetStatus { id, status })? {
            Applied::Thing(t) => Ok(t),
            other => Err(mismatch(other)),
        }
    }

    /// Soft delete: the thing and its connections vanish from queries; its
    /// record and events stay. Its open connections end with it.
    pub fn delete_thing(&mut self, id: Id) -> Result<()> {
        self.apply(Mutation::DeleteThing(id)).map(|_| ())
    }

    pub fn connect(&mut self, new: NewConnection) -> Result<Connection> {
        match self.apply(Mutation::Connect(new))? {
            Applied::Connection(c) => Ok(c),
            other => Err(mismatch(other)),
        }
    }

    /// Ends the current connections `from -[kind]-> to` now; history stays.
    pub fn disconnect(&mut self, from: Id, kind: &str, to: Id) -> Result<Vec<Connection>> {
        let kind = kind.to_string();
        match self.apply(Mutation::Disconnect { from, kind, to })? {
            Applied::Ended(ended) => Ok(ended),
            other => Err(mismatch(other)),
        }
    }

    pub fn create_knowledge(&mut self, new: NewKnowledge) -> Result<Knowledge> {
        match self.apply(Mutation::CreateKnowledge(new))? {
            Applied::Knowledge(k) => Ok(k),
            other => Err(mismatch(other)),
        }
    }

    pub fn delete_knowledge(&mut self, id: Id) -> Result<()> {
        self.apply(Mutation::DeleteKnowledge(id)).map(|_| ())
    }

    /// `EMIT type TARGET x {metadata}`: a custom event.
    pub fn emit(&mut self, kind: &str, target: Option<Id>, metadata: Props) -> Result<Event> {
        let kind = kind.to_string();
        match self.apply(Mutation::Emit {
            kind,
            target,
            metadata,
        })? {
            Applied::Event(e) => Ok(e),
            other => Err(mismatch(other)),
        }
    }

    pub fn create_trigger(
        &mut self,
        name: &str,
        on: TriggerOn,
        kind: &str,
        emit: &str,
        metadata: Props,
    ) -> Result<Trigger> {
        let (name, kind, emit) = (name.to_string(), kind.to_string(), emit.to_string());
        match self.apply(Mutation::CreateTrigger {
            name,
            on,
            kind,
            emit,
            metadata,
        })? {
            Applied::Trigger(t) => Ok(t),
            other => Err(mismatch(other)),
        }
    }

    pub fn drop_trigger(&mut self, name: &str) -> Result<()> {
        self.apply(Mutation::DropTrigger(name.to_string()))
            .map(|_| ())
    }

    /// An API token for the acting person; its secret is in the result
    /// and nowhere else.
    pub fn create_token(&mut self, new: NewToken) -> Result<IssuedToken> {
        match self.apply(Mutation::CreateToken(new))? {
            Applied::IssuedToken(issued) => Ok(*issued),
            other => Err(mismatch(other)),
        }
    }

    /// Ends a token at once, also for connections logged in with it.
    pub fn revoke_token(&mut self, id: Id) -> Result<Token> {
        match self.apply(Mutation::RevokeToken(id))? {
            Applied::Token(token) => Ok(token),
            other => Err(mismatch(other)),
        }
    }

    /// `DEFINE SCHEMA kind {…}`: a JSON Schema (draft 2020-12) that every
    /// create and update of a `kind` thing must satisfy from now on.
    pub fn define_schema(&mut self, kind: &str, schema: Props) -> Result<()> {
        let kind = kind.to_string();
        self.apply(Mutation::DefineSchema { kind, schema })
            .map(|_| ())
    }

    pub fn drop_schema(&mut self, kind: &str) -> Result<()> {
        self.apply(Mutation::DropSchema(kind.to_string()))
            .map(|_| ())
    }
}

/// `apply` answered a mutation with another kind of result: a bug in
/// `apply`'s table, reported rather than panicked on.
fn mismatch(applied: Applied) -> Error {
    Error::invalid(format!(
        "internal: unexpected result of a mutation: {applied:?}"
    ))
}
