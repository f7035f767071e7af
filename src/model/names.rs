//! Closed sets of names: enums whose every value has one lowercase name,
//! parsed with a "did you mean" hint (plans, org statuses, roles, thing
//! statuses). The tables that give them meaning (permissions, lifecycle)
//! live in `ontology`; the names are part of the stored records.

use crate::error::{Error, Result};

/// ", did you mean a, b?" for the closest candidates, or "" when none is close.
pub fn hint<S: AsRef<str>>(name: &str, candidates: &[S]) -> String {
    let mut scored: Vec<(f64, &str)> = candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(name, c.as_ref()), c.as_ref()))
        .filter(|(score, _)| *score >= 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let best: Vec<&str> = scored.into_iter().take(3).map(|(_, n)| n).collect();
    if best.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", best.join(", "))
    }
}

/// The value of `all` whose name is `text`; `INVALID_ARGUMENT` naming `what`
/// with a hint otherwise.
fn parse_named<T: Copy>(
    what: &str,
    text: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T> {
    all.iter()
        .copied()
        .find(|v| name(*v) == text)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
            Error::invalid(format!("unknown {what} {text:?}{}", hint(text, &names)))
        })
}

/// Declares a closed set: the enum (serialized by its names), `ALL`,
/// `as_str` and `parse`.
macro_rules! closed_set {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(text: &str) -> Result<$name> {
                parse_named($what, text, &$name::ALL, $name::as_str)
            }
        }
    };
}

closed_set! {
    /// An org's plan (ONTOLOGY.md "Organizations").
    Plan, "plan" {
        Starter = "starter",
        Pro = "pro",
        Enterprise = "enterprise",
    }
}

closed_set! {
    OrgStatus, "org status" {
        Active = "active",
        Trial = "trial",
        Suspended = "suspended",
        Cancelled = "cancelled",
    }
}

impl OrgStatus {
    /// Suspended and cancelled orgs reject writes.
    pub fn accepts_writes(self) -> bool {
        matches!(self, OrgStatus::Active | OrgStatus::Trial)
    }
}

closed_set! {
    /// A person's role; what each may do is `ontology::roles`' table.
    Role, "role" {
        PlatformOwner = "platform_owner",
        OrgOwner = "org_owner",
        OrgUser = "org_user",
        Customer = "customer",
    }
}

closed_set! {
    /// A thing's lifecycle status; the legal moves are `ontology::lifecycle`'s.
    Status, "status" {
        Draft = "draft",
        Active = "active",
        Published = "published",
        Inactive = "inactive",
        Archived = "archived",
    }
}

impl Status {
    /// The byte that stands for the status in index keys.
    pub fn tag(self) -> u8 {
        match self {
            Status::Draft => 1,
            Status::Active => 2,
            Status::Published => 3,
            Status::Inactive => 4,
            Status::Archived => 5,
        }
    }

    pub fn from_tag(tag: u8) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.tag() == tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn every_name_parses_back_and_serializes_as_itself() {
        fn check<T: Copy + PartialEq + std::fmt::Debug + serde::Serialize>(
            all: &[T],
            name: fn(T) -> &'static str,
            parse: fn(&str) -> Result<T>,
        ) {
            for v in all {
                assert_eq!(parse(name(*v)), Ok(*v));
                let json = serde_json::to_string(v).unwrap();
                assert_eq!(json, format!("\"{}\"", name(*v)));
            }
        }
        check(&Plan::ALL, Plan::as_str, Plan::parse);
        check(&OrgStatus::ALL, OrgStatus::as_str, OrgStatus::parse);
        check(&Role::ALL, Role::as_str, Role::parse);
        check(&Status::ALL, Status::as_str, Status::parse);
        for s in Status::ALL {
            assert_eq!(Status::from_tag(s.tag()), Some(s));
        }
    }

    #[test]
    fn an_unknown_name_is_invalid_with_a_hint() {
        let e = Role::parse("org_ownr").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(e.message.contains("unknown role"), "{}", e.message);
        assert!(
            e.message.contains("did you mean org_owner"),
            "{}",
            e.message
        );
        let e = Plan::parse("gold").unwrap_err();
        assert_eq!(e.message, "unknown plan \"gold\"");
    }
}
