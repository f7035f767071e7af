//! API tokens: credentials a person makes for programs (`CREATE TOKEN`),
//! lists (`SHOW TOKENS`) and ends (`REVOKE TOKEN`). A token lives in its
//! owner's home tenant (the platform's, for a platform owner); a platform
//! entry maps its id to that tenant so a login by token finds it. Only the
//! secret's hash is stored; the secret is handed out once, at creation.

use serde_json::json;

use crate::auth;
use crate::error::{Error, ErrorCode, Result};
use crate::graph::events::{Audit, AuditLog};
use crate::graph::{ReadTxn, check_text, limits, props};
use crate::keys::{self, Family, Tenant};
use crate::model::{Dim, Id, Millis, Token};
use crate::ontology::{Action, Grant};
use crate::storage::{PlatformTables, Txn};

/// The ontology's event type for a token's creation and revocation
/// (protocols map to the ontology through metadata, never through new
/// types): `metadata.action` says which.
const TOKEN_EVENT: &str = "settings_updated";

/// What `CREATE TOKEN "name" [EXPIRES t]` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct NewToken {
    pub name: String,
    pub expires_at: Option<Millis>,
}

/// A token just made: the record and its secret, which nothing keeps.
#[derive(Clone, PartialEq)]
pub struct IssuedToken {
    pub token: Token,
    pub secret: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &self.token)
            .field("secret", &"…")
            .finish()
    }
}

/// The tenant an org id (or the platform, for None) keeps its tokens in.
fn home(org: Option<Id>) -> Tenant {
    org.map_or(Tenant::PLATFORM, Tenant::of_org)
}

/// The tenant token `id` lives in, from its platform entry.
fn token_home(txn: &Txn<'_>, id: Id) -> Result<Option<Tenant>> {
    let Some(entry) = txn.get(&keys::token_home(id))? else {
        return Ok(None);
    };
    let raw: [u8; 16] = entry
        .as_slice()
        .try_into()
        .map_err(|_| Error::corruption("token entry", "not 16 bytes"))?;
    Ok(Some(Tenant::from_raw(u128::from_be_bytes(raw))))
}

/// The token `id`, read through a snapshot that may read its home (the
/// engine's platform snapshots: login, session checks).
pub(crate) fn find_token(txn: &Txn<'_>, id: Id) -> Result<Option<Token>> {
    let Some(tenant) = token_home(txn, id)? else {
        return Ok(None);
    };
    match txn.get(&tenant.token(id))? {
        Some(bytes) => Ok(Some(crate::graph::decode(Family::Token.name(), &bytes)?)),
        None => Err(Error::corruption(
            "token entry",
            format!("{id} points at a missing token"),
        )),
    }
}

/// The error every bad token gets, whatever is wrong with it.
pub(crate) fn token_refused() -> Error {
    Error::new(
        ErrorCode::NotAuthenticated,
        "unknown, expired or revoked token",
    )
}

impl ReadTxn<'_> {
    /// A token for the actor. Its home is the actor's own org, whatever org
    /// the session is in (a platform owner's tokens live on the platform).
    pub(super) fn create_token(&mut self, new: NewToken) -> Result<IssuedToken> {
        check_text("a token's name", &new.name, limits::NAME_BYTES)?;
        let now = self.now();
        if new.expires_at.is_some_and(|at| at <= now) {
            return Err(Error::invalid("a token's expiry must be in the future"));
        }
        let id = self.new_id(Dim::Token);
        let (secret, hash) = auth::new_token_secret(&id.to_string());
        let token = Token {
            id,
            name: new.name,
            person: self.actor.person,
            org: self.actor.org,
            hash,
            created_at: now,
            expires_at: new.expires_at,
            revoked_at: None,
        };
        let tenant = home(token.org);
        self.put_token(tenant, &token)?;
        self.txn.put_platform(
            &PlatformTables::grant(),
            keys::token_home(id),
            Some(tenant.raw().to_be_bytes().to_vec()),
        )?;
        let mut meta = props([
            ("action", json!("api_token_created")),
            ("token", json!(id)),
            ("name", json!(token.name)),
        ]);
        if let Some(at) = token.expires_at {
            meta.insert("expiresAt".into(), json!(at));
        }
        self.audit(
            Audit::new(TOKEN_EVENT, Some(token.person), "person", meta)
                .in_log(self.token_log(&token)),
        );
        Ok(IssuedToken { token, secret })
    }

    /// Ends a token: the actor's own, or (org_owner, platform owner) any
    /// of the org's. Others' tokens are NOT_FOUND, as if they did not exist.
    pub(super) fn revoke_token(&mut self, grant: Grant, id: Id) -> Result<Token> {
        let missing = || Error::not_found(format!("no token {id}"));
        if id.dim() != Dim::Token {
            return Err(missing());
        }
        // Only a platform owner reaches into a tenant other than the
        // current one (where its own tokens live).
        let reachable = |home: &Tenant| {
            *home == self.tenant() || self.actor.role == crate::ontology::Role::PlatformOwner
        };
        if !token_home(&self.txn, id)?.is_some_and(|home| reachable(&home)) {
            return Err(missing());
        }
        let Some(token) = find_token(&self.txn, id)? else {
            return Err(missing());
        };
        let own = token.person == self.actor.person;
        let in_scope = own || (grant == Grant::Allow && self.manages_tokens_of(&token));
        if !in_scope {
            return Err(missing());
        }
        let key = home(token.org).token(id);
        let (mut token, _) = self
            .load_for_update::<Token>(Family::Token.name(), &key)?
            .ok_or_else(missing)?;
        if token.revoked_at.is_some() {
            return Err(Error::invalid(format!("token {id} is already revoked")));
        }
        token.revoked_at = Some(self.now());
        self.put_token(home(token.org), &token)?;
        self.access_changed = true;
        let meta = props([
            ("action", json!("api_token_revoked")),
            ("token", json!(id)),
            ("name", json!(token.name)),
        ]);
        self.audit(
            Audit::new(TOKEN_EVENT, Some(token.person), "person", meta)
                .in_log(self.token_log(&token)),
        );
        Ok(token)
    }

    /// Tokens are credentials, not data: they do not count toward the
    /// org's `storage_bytes`.
    fn put_token(&mut self, tenant: Tenant, token: &Token) -> Result<()> {
        let bytes = crate::graph::encode(token)?;
        self.txn.put(tenant.token(token.id), bytes)
    }

    /// Whether an org_owner or platform owner manages `token`: one of the
    /// current org's (the platform's, outside every org).
    fn manages_tokens_of(&self, token: &Token) -> bool {
        token.org == self.org_id()
    }

    /// The log a token's events go to: its home's.
    fn token_log(&self, token: &Token) -> AuditLog {
        match (token.org, self.org_id()) {
            (Some(org), Some(current)) if org == current => AuditLog::Current,
            (None, None) => AuditLog::Current,
            _ => AuditLog::Platform,
        }
    }

    /// `SHOW TOKENS`: the actor's own tokens; for an org_owner (and the
    /// platform owner) every token of the current org. Oldest first.
    pub fn tokens(&self) -> Result<Vec<Token>> {
        let all =
            crate::ontology::roles::grant(self.actor.role, Action::ManageTokens) == Grant::Allow;
        let mut out = Vec::new();
        let mut tenants = vec![self.tenant()];
        if home(self.actor.org) != self.tenant() {
            tenants.push(home(self.actor.org));
        }
        for tenant in tenants {
            for entry in self.txn.scan_prefix(&tenant.tokens(), false)? {
                let (_, value) = entry?;
                let token: Token = crate::graph::decode(Family::Token.name(), &value)?;
                let own = token.person == self.actor.person;
                if own || (all && self.manages_tokens_of(&token)) {
                    out.push(token);
                }
            }
        }
        out.sort_by_key(|t| t.id);
        Ok(out)
    }
}
