//! P1: the OQL parser never panics, and whatever it accepts prints as
//! canonical OQL that parses back to the same canonical text.
//!
//! `cargo +nightly fuzz run parse -- -timeout=1 -dict=fuzz/oql.dict`

#![no_main]

use libfuzzer_sys::fuzz_target;
use onedb::query::parser::parse_statement;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(statement) = parse_statement(text) else {
        return;
    };
    let printed = statement.to_string();
    let again = match parse_statement(&printed) {
        Ok(again) => again,
        Err(e) => panic!("{text:?} printed as {printed:?}, which does not parse: {e}"),
    };
    assert_eq!(
        again.to_string(),
        printed,
        "printing {text:?} is not stable"
    );
});
