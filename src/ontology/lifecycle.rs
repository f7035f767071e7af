//! The thing lifecycle (ONTOLOGY.md "Things"): the only legal status moves.

use crate::error::{Error, ErrorCode, Result};

pub use crate::model::Status;

/// from → the statuses it may go to. Anything else is `INVALID_TRANSITION`.
pub const TRANSITIONS: &[(Status, &[Status])] = &[
    (Status::Draft, &[Status::Active, Status::Archived]),
    (
        Status::Active,
        &[Status::Published, Status::Inactive, Status::Archived],
    ),
    (Status::Published, &[Status::Active, Status::Archived]),
    (Status::Inactive, &[Status::Active, Status::Archived]),
    (Status::Archived, &[]),
];

impl Status {
    pub fn may_become(self, to: Status) -> bool {
        TRANSITIONS
            .iter()
            .any(|(from, tos)| *from == self && tos.contains(&to))
    }

    /// Ok when the move is legal, `INVALID_TRANSITION` otherwise.
    pub fn check_transition(self, to: Status) -> Result<()> {
        if self.may_become(to) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::InvalidTransition,
                format!("a {} thing cannot become {}", self.as_str(), to.as_str()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_every_status_once() {
        for s in Status::ALL {
            assert_eq!(TRANSITIONS.iter().filter(|(f, _)| *f == s).count(), 1);
            assert_eq!(Status::from_tag(s.tag()), Some(s));
            assert_eq!(Status::parse(s.as_str()), Ok(s));
        }
    }

    #[test]
    fn archived_is_terminal_and_self_moves_are_invalid() {
        for s in Status::ALL {
            assert!(!Status::Archived.may_become(s));
            assert!(!s.may_become(s));
        }
        assert_eq!(
            Status::Draft
                .check_transition(Status::Published)
                .unwrap_err()
                .code,
            ErrorCode::InvalidTransition
        );
    }
}
