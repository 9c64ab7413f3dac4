//! Splits the byte stream of an OVSDB connection into JSON messages.
//!
//! OVSDB's JSON-RPC sends messages back to back with no delimiter or
//! length prefix: a message ends where its outermost `{...}` closes. A read
//! may hold part of a message, or several. The framer scans each byte once
//! (tracking nesting depth and whether it is inside a string), so a large
//! message arriving in many reads costs linear time, and only hands a
//! complete message to serde_json.

use serde_json::Value;

use super::OvsdbError;

/// A larger message is refused (and the connection dropped): far above
/// anything kuryr's requests can bring back, small enough to bound memory.
pub const MAX_MESSAGE: usize = 64 << 20;

/// How much a read may bring at once.
pub const READ_SIZE: usize = 16 << 10;

/// Incremental splitter; feed it with [`Framer::buffer`], then take
/// messages with [`Framer::next_message`] until it returns `None`.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Where the message being scanned starts.
    start: usize,
    /// Next byte to scan.
    pos: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Framer {
    /// Where reads append their bytes, with room for a read of
    /// [`READ_SIZE`].
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        self.compact();
        self.buf.reserve(READ_SIZE);
        &mut self.buf
    }

    /// Whether a message has started and not ended (at end of stream:
    /// the peer closed mid-message).
    pub fn in_message(&self) -> bool {
        self.depth > 0
    }

    /// The next complete message, `None` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Value>, OvsdbError> {
        while self.pos < self.buf.len() {
            let b = self.buf[self.pos];
            self.pos += 1;
            if self.depth == 0 {
                self.start_message(b)?;
                continue;
            }
            if self.in_string {
                match b {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return self.take_message().map(Some);
                    }
                }
                _ => {}
            }
        }
        if self.pos - self.start > MAX_MESSAGE {
            return Err(OvsdbError::Protocol(format!(
                "a message longer than {MAX_MESSAGE} bytes"
            )));
        }
        Ok(None)
    }

    /// Between messages: whitespace, or the `{` (or `[`) opening the next.
    fn start_message(&mut self, b: u8) -> Result<(), OvsdbError> {
        match b {
            b'{' | b'[' => {
                self.depth = 1;
                self.start = self.pos - 1;
                Ok(())
            }
            b' ' | b'\t' | b'\r' | b'\n' => {
                self.start = self.pos;
                Ok(())
            }
            other => Err(OvsdbError::Protocol(format!(
                "unexpected byte {:?} between messages",
                char::from(other)
            ))),
        }
    }

    fn take_message(&mut self) -> Result<Value, OvsdbError> {
        let bytes = &self.buf[self.start..self.pos];
        let msg = serde_json::from_slice(bytes).map_err(|e| {
            OvsdbError::Protocol(format!(
                "invalid JSON message ({e}): {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ))
        })?;
        self.start = self.pos;
        Ok(msg)
    }

    /// Drop the bytes of messages already taken.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.pos -= self.start;
            self.start = 0;
        }
    }
}
