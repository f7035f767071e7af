//! An org's limits hold for what is imported into it: a record that would
//! pass one (people, things, a thing type, connections, knowledge) is
//! invalid, as a statement creating it would be refused. Storage and the
//! monthly counters are recounted by the loader but not checked here.

use std::collections::{BTreeMap, HashMap};

use crate::model::{Id, Org};

struct Usage {
    slug: String,
    limits: BTreeMap<String, i64>,
    used: HashMap<String, i64>,
}

#[derive(Default)]
pub struct Quotas {
    orgs: HashMap<u128, Usage>,
}

impl Quotas {
    pub fn add_org(&mut self, org: &Org) {
        self.orgs.insert(
            org.id.raw(),
            Usage {
                slug: org.slug.clone(),
                limits: org.limits.clone(),
                used: HashMap::new(),
            },
        );
    }

    /// Whether one more of each of `names` (counters or thing types) fits
    /// the limits of `org` (the platform has none); the reason otherwise.
    pub fn check(&self, org: Option<Id>, names: &[&str]) -> Result<(), String> {
        let Some(usage) = org.and_then(|o| self.orgs.get(&o.raw())) else {
            return Ok(());
        };
        for name in names {
            if let Some(limit) = usage.limits.get(*name).filter(|l| **l >= 0)
                && usage.used.get(*name).copied().unwrap_or(0) + 1 > *limit
            {
                return Err(format!(
                    "organization {}: {name} limit {limit} reached (org limits broken)",
                    usage.slug
                ));
            }
        }
        Ok(())
    }

    /// Counts one more of each of `names`.
    pub fn count(&mut self, org: Option<Id>, names: &[&str]) {
        if let Some(usage) = org.and_then(|o| self.orgs.get_mut(&o.raw())) {
            for name in names {
                *usage.used.entry(name.to_string()).or_default() += 1;
            }
        }
    }
}
