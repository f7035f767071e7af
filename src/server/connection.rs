//! Framing: request lines in, with a size limit, and response lines out,
//! through a buffer with a bound. Knows bytes, not requests.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedReceiver;

/// Feeds' lines are taken only while fewer bytes than this wait for the
/// socket: a client that stops reading leaves them in their own bounded
/// queues, not in the connection's buffer.
const FEED_LOW_WATER: usize = 64 << 10;

/// What the writer is handed, in answer order.
pub enum Out {
    Line(Vec<u8>),
    /// An answer after which a feed's lines may follow (a subscription).
    Start(Vec<u8>, Box<dyn Feed>),
    /// An answer before which the feed with this key stops.
    Stop(Vec<u8>, u64),
}

/// Lines the writer takes on its own, when the socket keeps up, between
/// answers: a subscription's events.
pub trait Feed: Send {
    fn key(&self) -> u64;
    /// Appends its next whole lines to `buf` (some, not all); false once
    /// it has appended its last.
    fn fill(&mut self, buf: &mut Vec<u8>) -> bool;
}

/// What reading the next line found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// `buf` holds one complete line, its newline included.
    Line,
    /// More than the limit arrived without a newline: the request cannot
    /// be found in the stream any more.
    TooLong,
    /// The client closed its side (a line cut short is dropped).
    Eof,
}

/// Reads one line into `buf`, at most `max` bytes before its newline.
///
/// Cancel-safe the way tokio's `read_until` is: bytes read before a
/// cancellation stay in `buf`, and calling again with the same `buf`
/// continues the line.
pub async fn read_line<R>(reader: &mut R, buf: &mut Vec<u8>, max: usize) -> io::Result<Frame>
where
    R: AsyncBufRead + Unpin,
{
    let room = (max + 1).saturating_sub(buf.len()) as u64;
    (&mut *reader).take(room).read_until(b'\n', buf).await?;
    if buf.last() == Some(&b'\n') {
        Ok(Frame::Line)
    } else if buf.len() > max {
        Ok(Frame::TooLong)
    } else {
        // Short of the limit without a newline: the stream ended.
        Ok(Frame::Eof)
    }
}

/// Why the writer stopped.
#[derive(Debug)]
pub enum WriteEnd {
    /// Everything was written and the sending side closed.
    Done,
    /// The client let more than the bound of responses pile up.
    Overflow,
    /// The socket failed.
    Failed(io::Error),
}

/// Writes response lines as they arrive on `lines`, in order, until the
/// channel closes; then shuts the socket's write side down. Lines are
/// taken off the channel while a write is pending, so a client that does
/// not read is noticed: once more than `max_buffered` bytes wait (beyond
/// one response, which may be any size), or the socket has taken nothing
/// for `stall` while answers wait, the writer gives up. Between answers,
/// the feeds started by them add their lines while little waits (`wake`
/// says they have some).
///
/// `written` counts the answers taken off `lines` and written out in full
/// (set whenever nothing waits): the sender may write to the socket
/// itself while it equals what it sent (see `handler::Direct`).
pub async fn write_lines<W>(
    writer: &mut W,
    lines: &mut UnboundedReceiver<Out>,
    wake: &Notify,
    max_buffered: usize,
    stall: Duration,
    written: &AtomicU64,
) -> WriteEnd
where
    W: AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut open = true;
    let mut progress = Instant::now();
    let mut feeds: Vec<Box<dyn Feed>> = Vec::new();
    let mut taken: u64 = 0;
    loop {
        if buf.len() - start < FEED_LOW_WATER && !feeds.is_empty() && open {
            if start > 0 {
                buf.drain(..start);
                start = 0;
            }
            let before = buf.len();
            feeds.retain_mut(|feed| feed.fill(&mut buf));
            if before == 0 && buf.len() > before {
                progress = Instant::now();
            }
        }
        let pending = buf.len() - start;
        if pending == 0 {
            buf.clear();
            start = 0;
            written.store(taken, Ordering::Release);
            if !open {
                return match writer.shutdown().await {
                    Ok(()) => WriteEnd::Done,
                    Err(e) => WriteEnd::Failed(e),
                };
            }
        }
        let feeding = !feeds.is_empty() && pending < FEED_LOW_WATER;
        tokio::select! {
            // Writing first: answers pile up here only while the socket
            // takes no more.
            biased;
            written = writer.write(&buf[start..]), if pending > 0 => match written {
                Ok(0) => return WriteEnd::Failed(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    start += n;
                    progress = Instant::now();
                }
                Err(e) => return WriteEnd::Failed(e),
            },
            () = tokio::time::sleep_until((progress + stall).into()), if pending > 0 => {
                return WriteEnd::Failed(io::ErrorKind::TimedOut.into());
            },
            line = lines.recv(), if open => match line {
                Some(out) => {
                    taken += 1;
                    let line = match out {
                        Out::Line(line) => line,
                        Out::Start(line, feed) => {
                            feeds.push(feed);
                            line
                        }
                        Out::Stop(line, key) => {
                            feeds.retain(|f| f.key() != key);
                            line
                        }
                    };
                    if pending == 0 {
                        progress = Instant::now();
                    }
                    if pending > 0 && pending + line.len() > max_buffered {
                        return WriteEnd::Overflow;
                    }
                    if start > 0 && start >= buf.len() / 2 {
                        buf.drain(..start);
                        start = 0;
                    }
                    buf.extend_from_slice(&line);
                }
                None => open = false,
            },
            () = wake.notified(), if feeding => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncWriteExt, BufReader};

    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn lines_at_and_past_the_limit() {
        block_on(async {
            let input = b"abc\nabcd\nabcde\nxy".to_vec();
            let mut r = BufReader::with_capacity(2, &input[..]);
            let mut buf = Vec::new();
            assert_eq!(read_line(&mut r, &mut buf, 4).await.unwrap(), Frame::Line);
            assert_eq!(buf, b"abc\n");
            buf.clear();
            assert_eq!(read_line(&mut r, &mut buf, 4).await.unwrap(), Frame::Line);
            assert_eq!(buf, b"abcd\n");
            buf.clear();
            assert_eq!(
                read_line(&mut r, &mut buf, 4).await.unwrap(),
                Frame::TooLong
            );
            assert_eq!(buf.len(), 5);
            let mut r = BufReader::new(&b"xy"[..]);
            buf.clear();
            assert_eq!(read_line(&mut r, &mut buf, 4).await.unwrap(), Frame::Eof);
            buf.clear();
            assert_eq!(read_line(&mut r, &mut buf, 4).await.unwrap(), Frame::Eof);
        });
    }

    #[test]
    fn a_line_read_in_pieces_continues_in_the_same_buffer() {
        block_on(async {
            let (mut client, server) = tokio::io::duplex(64);
            let mut r = BufReader::new(server);
            let mut buf = Vec::new();
            client.write_all(b"hel").await.unwrap();
            let first = tokio::time::timeout(
                std::time::Duration::from_millis(20),
                read_line(&mut r, &mut buf, 8),
            )
            .await;
            assert!(first.is_err(), "no newline yet");
            client.write_all(b"lo\n").await.unwrap();
            assert_eq!(read_line(&mut r, &mut buf, 8).await.unwrap(), Frame::Line);
            assert_eq!(buf, b"hello\n");
        });
    }

    #[test]
    fn the_writer_gives_up_when_the_socket_takes_nothing_for_a_while() {
        block_on(async {
            let (mut server, _client) = tokio::io::duplex(16);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            tx.send(Out::Line(vec![b'x'; 40])).unwrap();
            let started = Instant::now();
            let wake = Notify::new();
            let end = write_lines(
                &mut server,
                &mut rx,
                &wake,
                1000,
                Duration::from_millis(100),
                &AtomicU64::new(0),
            )
            .await;
            assert!(
                matches!(&end, WriteEnd::Failed(e) if e.kind() == io::ErrorKind::TimedOut),
                "{end:?}"
            );
            assert!(started.elapsed() >= Duration::from_millis(100));
        });
    }

    #[test]
    fn the_writer_gives_up_on_a_client_that_does_not_read() {
        block_on(async {
            // A pipe that holds 16 bytes and is never read.
            let (mut server, _client) = tokio::io::duplex(16);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            for _ in 0..10 {
                tx.send(Out::Line(vec![b'x'; 40])).unwrap();
            }
            let wake = Notify::new();
            let end = write_lines(
                &mut server,
                &mut rx,
                &wake,
                100,
                Duration::from_secs(10),
                &AtomicU64::new(0),
            )
            .await;
            assert!(matches!(end, WriteEnd::Overflow), "{end:?}");

            let (mut server, mut client) = tokio::io::duplex(16);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            for _ in 0..10 {
                tx.send(Out::Line(vec![b'y'; 40])).unwrap();
            }
            drop(tx);
            let reading = tokio::spawn(async move {
                let mut all = Vec::new();
                client.read_to_end(&mut all).await.unwrap();
                all
            });
            let end = write_lines(
                &mut server,
                &mut rx,
                &wake,
                1000,
                Duration::from_secs(10),
                &AtomicU64::new(0),
            )
            .await;
            assert!(matches!(end, WriteEnd::Done), "{end:?}");
            drop(server);
            assert_eq!(reading.await.unwrap(), vec![b'y'; 400]);
        });
    }

    /// A feed of `left` lines of 100 bytes, then `end`.
    struct Lines {
        left: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Feed for Lines {
        fn key(&self) -> u64 {
            7
        }

        fn fill(&mut self, buf: &mut Vec<u8>) -> bool {
            use std::sync::atomic::Ordering;
            for _ in 0..50 {
                if self.left.load(Ordering::SeqCst) == 0 {
                    buf.extend_from_slice(b"end\n");
                    return false;
                }
                self.left.fetch_sub(1, Ordering::SeqCst);
                buf.extend_from_slice(&[b'e'; 99]);
                buf.push(b'\n');
            }
            true
        }
    }

    #[test]
    fn a_feed_is_taken_only_while_the_socket_keeps_up_and_stops_at_its_stop() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let written = AtomicU64::new(0);
        block_on(async {
            // Never read: the feed keeps what does not fit.
            let (mut server, _client) = tokio::io::duplex(1024);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let left = Arc::new(AtomicUsize::new(10_000));
            let feed = Lines { left: left.clone() };
            tx.send(Out::Start(b"ack\n".to_vec(), Box::new(feed)))
                .unwrap();
            let wake = Notify::new();
            let writing = write_lines(
                &mut server,
                &mut rx,
                &wake,
                1 << 20,
                Duration::from_secs(10),
                &written,
            );
            assert!(
                tokio::time::timeout(Duration::from_millis(300), writing)
                    .await
                    .is_err()
            );
            let taken = 10_000 - left.load(Ordering::SeqCst);
            assert!(taken * 100 <= FEED_LOW_WATER + 1024 + 50 * 100, "{taken}");

            // Read: ack, then the feed's lines, until its stop's answer.
            let (mut server, mut client) = tokio::io::duplex(4096);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let left = Arc::new(AtomicUsize::new(1_000_000));
            tx.send(Out::Start(
                b"ack\n".to_vec(),
                Box::new(Lines { left: left.clone() }),
            ))
            .unwrap();
            let reading = tokio::spawn(async move {
                let mut all = Vec::new();
                client.read_to_end(&mut all).await.unwrap();
                all
            });
            let stopping = async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                tx.send(Out::Stop(b"bye\n".to_vec(), 7)).unwrap();
                tx.send(Out::Line(b"last\n".to_vec())).unwrap();
                drop(tx);
            };
            let (end, ()) = tokio::join!(
                write_lines(
                    &mut server,
                    &mut rx,
                    &wake,
                    1 << 20,
                    Duration::from_secs(10),
                    &written,
                ),
                stopping
            );
            assert!(matches!(end, WriteEnd::Done), "{end:?}");
            drop(server);
            let all = reading.await.unwrap();
            let text = String::from_utf8(all).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines[0], "ack");
            assert_eq!(&lines[lines.len() - 2..], ["bye", "last"]);
            let fed = &lines[1..lines.len() - 2];
            assert!(!fed.is_empty());
            assert!(
                fed.iter()
                    .all(|l| l.len() == 99 && l.bytes().all(|b| b == b'e'))
            );
            assert_eq!(fed.len(), 1_000_000 - left.load(Ordering::SeqCst));
        });
    }
}
