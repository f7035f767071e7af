//! The real `onedb` binary run on a data directory, as a user types it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `onedb --data DATA --durability relaxed ARGS…`, with `stdin` fed on a
/// thread (a large input must not block on a full pipe).
pub fn onedb(data: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_onedb"))
        .arg("--data")
        .arg(data)
        .args(["--durability", "relaxed"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn onedb");
    let mut input = child.stdin.take().expect("stdin");
    let bytes = stdin.unwrap_or_default().to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().expect("onedb");
    feeder.join().unwrap();
    out
}

pub fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// The output of a run that must succeed.
pub fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}
