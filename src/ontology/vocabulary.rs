//! The type vocabulary of ONTOLOGY.md: thing, connection and event types with
//! their categories. Everything that names a type consults this table.

use std::collections::BTreeMap;

use crate::error::{Error, ErrorCode, Result};

/// The three kinds of type the vocabulary holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TypeKind {
    Thing,
    Connection,
    Event,
}

impl TypeKind {
    pub const ALL: [TypeKind; 3] = [TypeKind::Thing, TypeKind::Connection, TypeKind::Event];

    pub fn as_str(self) -> &'static str {
        match self {
            TypeKind::Thing => "thing",
            TypeKind::Connection => "connection",
            TypeKind::Event => "event",
        }
    }

    pub fn tag(self) -> u8 {
        match self {
            TypeKind::Thing => 1,
            TypeKind::Connection => 2,
            TypeKind::Event => 3,
        }
    }

    pub fn from_tag(tag: u8) -> Option<TypeKind> {
        TypeKind::ALL.into_iter().find(|k| k.tag() == tag)
    }

    pub fn parse(text: &str) -> Result<TypeKind> {
        TypeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{text:?} is not a type kind (thing, connection, event)"
                ))
            })
    }
}

/// (category, types) rows, in ONTOLOGY.md order.
pub const THING_TYPES: &[(&str, &[&str])] = &[
    (
        "core",
        &["creator", "ai_clone", "audience_member", "organization"],
    ),
    (
        "business agents",
        &[
            "strategy_agent",
            "research_agent",
            "marketing_agent",
            "sales_agent",
            "service_agent",
            "design_agent",
            "engineering_agent",
            "finance_agent",
            "legal_agent",
            "intelligence_agent",
        ],
    ),
    (
        "content",
        &[
            "blog_post",
            "video",
            "podcast",
            "social_post",
            "email",
            "course",
            "lesson",
        ],
    ),
    (
        "products",
        &["digital_product", "membership", "consultation", "nft"],
    ),
    ("community", &["community", "conversation", "message"]),
    ("token", &["token", "token_contract"]),
    ("knowledge", &["knowledge_item", "embedding"]),
    (
        "platform",
        &[
            "website",
            "landing_page",
            "template",
            "livestream",
            "recording",
            "media_asset",
        ],
    ),
    (
        "business",
        &[
            "payment",
            "subscription",
            "invoice",
            "metric",
            "insight",
            "prediction",
            "report",
        ],
    ),
    (
        "auth and session",
        &[
            "session",
            "oauth_account",
            "verification_token",
            "password_reset_token",
            "ui_preferences",
        ],
    ),
    (
        "marketing",
        &[
            "notification",
            "email_campaign",
            "announcement",
            "referral",
            "campaign",
            "lead",
        ],
    ),
    (
        "external",
        &["external_agent", "external_workflow", "external_connection"],
    ),
    ("protocol", &["mandate", "product"]),
    // Not in ONTOLOGY.md's enumerated 61, but DESIGN.md's contract example
    // creates `task` things (the original design advertises 66 types).
    ("work", &["task"]),
];

pub const CONNECTION_TYPES: &[(&str, &[&str])] = &[
    ("ownership", &["owns", "created_by"]),
    ("AI", &["clone_of", "trained_on", "powers"]),
    (
        "content",
        &[
            "authored",
            "generated_by",
            "published_to",
            "part_of",
            "references",
        ],
    ),
    (
        "community",
        &["member_of", "following", "moderates", "participated_in"],
    ),
    ("business", &["manages", "reports_to", "collaborates_with"]),
    ("token", &["holds_tokens", "staked_in", "earned_from"]),
    (
        "product",
        &["purchased", "enrolled_in", "completed", "teaching"],
    ),
    (
        "consolidated",
        &[
            "transacted",
            "notified",
            "referred",
            "communicated",
            "delegated",
            "approved",
            "fulfilled",
        ],
    ),
];

pub const EVENT_TYPES: &[(&str, &[&str])] = &[
    (
        "entity lifecycle",
        &[
            "entity_created",
            "entity_updated",
            "entity_deleted",
            "entity_archived",
        ],
    ),
    (
        "user",
        &[
            "user_registered",
            "user_verified",
            "user_login",
            "user_logout",
            "profile_updated",
        ],
    ),
    (
        "authentication",
        &[
            "password_reset_requested",
            "password_reset_completed",
            "email_verification_sent",
            "email_verified",
            "two_factor_enabled",
            "two_factor_disabled",
        ],
    ),
    (
        "organization",
        &[
            "organization_created",
            "organization_updated",
            "user_invited_to_org",
            "user_joined_org",
            "user_removed_from_org",
        ],
    ),
    (
        "dashboard and UI",
        &[
            "dashboard_viewed",
            "settings_updated",
            "theme_changed",
            "preferences_updated",
        ],
    ),
    (
        "AI clone",
        &[
            "clone_created",
            "clone_updated",
            "voice_cloned",
            "appearance_cloned",
        ],
    ),
    (
        "agent",
        &[
            "agent_created",
            "agent_executed",
            "agent_completed",
            "agent_failed",
        ],
    ),
    (
        "token",
        &[
            "token_created",
            "token_minted",
            "token_burned",
            "tokens_purchased",
            "tokens_staked",
            "tokens_unstaked",
            "tokens_transferred",
        ],
    ),
    (
        "course",
        &[
            "course_created",
            "course_enrolled",
            "lesson_completed",
            "course_completed",
            "certificate_earned",
        ],
    ),
    (
        "analytics",
        &[
            "metric_calculated",
            "insight_generated",
            "prediction_made",
            "optimization_applied",
            "report_generated",
        ],
    ),
    (
        "inference",
        &[
            "inference_request",
            "inference_completed",
            "inference_failed",
            "inference_quota_exceeded",
            "inference_revenue_collected",
            "org_revenue_generated",
            "revenue_share_distributed",
        ],
    ),
    (
        "blockchain",
        &[
            "nft_minted",
            "nft_transferred",
            "tokens_bridged",
            "contract_deployed",
            "treasury_withdrawal",
        ],
    ),
    (
        "consolidated",
        &[
            "content_event",
            "payment_event",
            "subscription_event",
            "commerce_event",
            "livestream_event",
            "notification_event",
            "referral_event",
            "communication_event",
            "task_event",
            "mandate_event",
            "price_event",
        ],
    ),
    // The engine's own edge events: written by CONNECT / DISCONNECT only.
    ("engine", &["connection_created", "connection_ended"]),
];

/// Event types only the engine may write (never `EMIT`ted by hand).
pub const ENGINE_ONLY_EVENTS: &[&str] = &["connection_created", "connection_ended"];

/// Category given to types the platform owner adds.
pub const EXTENSION_CATEGORY: &str = "extension";

/// The built-in table plus the platform owner's additions (persisted by the
/// graph layer, loaded into this value).
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    extensions: BTreeMap<(TypeKind, String), String>,
}

impl Vocabulary {
    pub fn builtin() -> Vocabulary {
        Vocabulary::default()
    }

    pub fn with_extensions(
        extensions: impl IntoIterator<Item = (TypeKind, String, String)>,
    ) -> Vocabulary {
        Vocabulary {
            extensions: extensions
                .into_iter()
                .map(|(k, n, c)| ((k, n), c))
                .collect(),
        }
    }

    fn table(kind: TypeKind) -> &'static [(&'static str, &'static [&'static str])] {
        match kind {
            TypeKind::Thing => THING_TYPES,
            TypeKind::Connection => CONNECTION_TYPES,
            TypeKind::Event => EVENT_TYPES,
        }
    }

    /// Every (category, name) of a kind, built-ins first, then additions.
    pub fn types(&self, kind: TypeKind) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Self::table(kind)
            .iter()
            .flat_map(|(cat, names)| names.iter().map(move |n| (cat.to_string(), n.to_string())))
            .collect();
        out.extend(
            self.extensions
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .map(|((_, name), cat)| (cat.clone(), name.clone())),
        );
        out
    }

    /// The category of a known type.
    pub fn category(&self, kind: TypeKind, name: &str) -> Option<String> {
        Self::table(kind)
            .iter()
            .find(|(_, names)| names.contains(&name))
            .map(|(cat, _)| cat.to_string())
            .or_else(|| self.extensions.get(&(kind, name.to_string())).cloned())
    }

    /// How many types the platform owner added.
    pub fn additions(&self) -> usize {
        self.extensions.len()
    }

    pub fn contains(&self, kind: TypeKind, name: &str) -> bool {
        self.category(kind, name).is_some()
    }

    /// Ok for a known type; `UNKNOWN_TYPE` with the closest names otherwise.
    pub fn check(&self, kind: TypeKind, name: &str) -> Result<()> {
        if self.contains(kind, name) {
            return Ok(());
        }
        let names: Vec<String> = self.types(kind).into_iter().map(|(_, n)| n).collect();
        Err(Error::new(
            ErrorCode::UnknownType,
            format!(
                "unknown {} type {name:?}{}",
                kind.as_str(),
                hint(name, &names)
            ),
        ))
    }
}

pub use crate::model::names::hint;

/// Type names, like other identifiers, are lowercase ASCII words.
pub fn is_valid_type_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && name.as_bytes()[0].is_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(table: &[(&str, &[&str])]) -> usize {
        table.iter().map(|(_, names)| names.len()).sum()
    }

    #[test]
    fn vocabulary_matches_ontology_counts() {
        // ONTOLOGY.md's 61, plus `task` from DESIGN.md's example.
        assert_eq!(count(THING_TYPES), 62);
        assert_eq!(count(CONNECTION_TYPES), 31);
        // 72 listed event types plus the engine's two edge events.
        assert_eq!(count(EVENT_TYPES), 74);
    }

    #[test]
    fn names_are_unique_and_valid() {
        for kind in TypeKind::ALL {
            let names: Vec<String> = Vocabulary::builtin()
                .types(kind)
                .into_iter()
                .map(|(_, n)| n)
                .collect();
            let mut sorted = names.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), names.len(), "duplicate {kind:?} type");
            assert!(names.iter().all(|n| is_valid_type_name(n)));
        }
    }

    #[test]
    fn unknown_types_get_a_hint() {
        let v = Vocabulary::builtin();
        let err = v.check(TypeKind::Thing, "cours").unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownType);
        assert!(
            err.message.contains("did you mean course"),
            "{}",
            err.message
        );
        let err = v.check(TypeKind::Connection, "follows").unwrap_err();
        assert!(err.message.contains("following"), "{}", err.message);
        assert!(
            v.check(TypeKind::Thing, "zzzzzz")
                .unwrap_err()
                .message
                .ends_with("\"zzzzzz\"")
        );
    }

    #[test]
    fn extensions_join_the_vocabulary() {
        let v = Vocabulary::with_extensions([(
            TypeKind::Thing,
            "workshop".into(),
            EXTENSION_CATEGORY.into(),
        )]);
        assert!(v.check(TypeKind::Thing, "workshop").is_ok());
        assert!(v.check(TypeKind::Connection, "workshop").is_err());
        assert_eq!(
            v.category(TypeKind::Thing, "workshop").as_deref(),
            Some("extension")
        );
    }
}
