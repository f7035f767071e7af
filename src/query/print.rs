//! Canonical OQL printing of the AST. (Being written.)
