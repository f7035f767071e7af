//! Framing: request lines in, with a size limit, and response lines out,
//! through a buffer with a bound. Knows bytes, not requests.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;

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
/// for `stall` while answers wait, the writer gives up.
pub async fn write_lines<W>(
    writer: &mut W,
    lines: &mut UnboundedReceiver<Vec<u8>>,
    max_buffered: usize,
    stall: Duration,
) -> WriteEnd
where
    W: AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut open = true;
    let mut progress = Instant::now();
    loop {
        let pending = buf.len() - start;
        if pending == 0 {
            buf.clear();
            start = 0;
            if !open {
                return match writer.shutdown().await {
                    Ok(()) => WriteEnd::Done,
                    Err(e) => WriteEnd::Failed(e),
                };
            }
        }
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
                Some(line) => {
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
            tx.send(vec![b'x'; 40]).unwrap();
            let started = Instant::now();
            let end = write_lines(&mut server, &mut rx, 1000, Duration::from_millis(100)).await;
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
                tx.send(vec![b'x'; 40]).unwrap();
            }
            let end = write_lines(&mut server, &mut rx, 100, Duration::from_secs(10)).await;
            assert!(matches!(end, WriteEnd::Overflow), "{end:?}");

            let (mut server, mut client) = tokio::io::duplex(16);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            for _ in 0..10 {
                tx.send(vec![b'y'; 40]).unwrap();
            }
            drop(tx);
            let reading = tokio::spawn(async move {
                let mut all = Vec::new();
                client.read_to_end(&mut all).await.unwrap();
                all
            });
            let end = write_lines(&mut server, &mut rx, 1000, Duration::from_secs(10)).await;
            assert!(matches!(end, WriteEnd::Done), "{end:?}");
            drop(server);
            assert_eq!(reading.await.unwrap(), vec![b'y'; 400]);
        });
    }
}
