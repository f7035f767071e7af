//! The protocol lines of a child test process (this test binary run again
//! for one test): each line the child says starts with a mark, and a line
//! cut short by a kill is not a line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::thread::JoinHandle;

/// Reads `child`'s stdout on a thread until it closes; yields the text after
/// `mark` of every complete line that holds it.
pub fn marked_lines(child: &mut Child, mark: &'static str) -> JoinHandle<Vec<String>> {
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                // A line cut by the kill is not an acknowledgment.
                Ok(_) if buf.last() != Some(&b'\n') => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    if let Some((_, line)) = text.split_once(mark) {
                        lines.push(line.trim_end().to_string());
                    }
                }
            }
        }
        lines
    })
}

/// A number the parent passed to the child process in `var`.
pub fn env_u64(var: &str) -> u64 {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set"))
        .parse()
        .unwrap_or_else(|_| panic!("{var} is not a number"))
}
