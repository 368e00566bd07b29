//! Reads the frames a WebSocket client sends (RFC 6455 §5) as they pass through a tunnel, for
//! `[detect] websocket = true`: the payload of every text and binary message, unmasked, goes to a
//! [`MessageScan`] piece by piece, and the message's end is told. The bytes themselves are relayed
//! unchanged by the caller, and only after `feed` has judged them: a message whose last frame is
//! refused never reaches the app whole. Memory is the frame head (at most 14 bytes) and one
//! piece of unmasked payload.

use kevlar_core::MessageScan;

const OP_CONTINUATION: u8 = 0;
const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;

/// A close frame from Kevlar to the client: 1008, policy violation (server frames are unmasked).
pub const CLOSE_POLICY: &[u8] = &[0x88, 0x02, 0x03, 0xf0];

#[derive(Default)]
pub struct Frames {
    head: [u8; 14],
    head_len: usize,
    /// Payload bytes left in the current frame; `None` while reading a head.
    remaining: Option<u64>,
    key: [u8; 4],
    /// Position in the mask key.
    at: usize,
    /// The current frame carries message data (not a control frame).
    data: bool,
    fin: bool,
    in_message: bool,
    /// A frame could not be read: the rest of the tunnel is relayed as it is, told once.
    lost: bool,
    scratch: Vec<u8>,
}

/// How long a frame head is, from its second byte.
fn head_len(b1: u8) -> usize {
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

impl Frames {
    /// Reads `input`; `Err(status)` when the scanner refused a message (close the tunnel).
    pub fn feed(&mut self, mut input: &[u8], scan: &mut dyn MessageScan) -> Result<(), u16> {
        while !input.is_empty() && !self.lost {
            match self.remaining {
                None => {
                    let need = if self.head_len < 2 { 2 } else { head_len(self.head[1]) };
                    let take = (need - self.head_len).min(input.len());
                    self.head[self.head_len..self.head_len + take].copy_from_slice(&input[..take]);
                    self.head_len += take;
                    input = &input[take..];
                    if self.head_len >= 2 && self.head_len == head_len(self.head[1]) {
                        self.start_frame(scan)?;
                    }
                }
                Some(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    if self.data && n > 0 {
                        self.scratch.clear();
                        self.scratch
                            .extend(input[..n].iter().enumerate().map(|(i, b)| b ^ self.key[(self.at + i) % 4]));
                        scan.data(&self.scratch)?;
                    }
                    self.at = (self.at + n) % 4;
                    input = &input[n..];
                    let left = left - n as u64;
                    self.remaining = Some(left);
                    if left == 0 {
                        self.end_frame(scan)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn start_frame(&mut self, scan: &mut dyn MessageScan) -> Result<(), u16> {
        let (b0, b1) = (self.head[0], self.head[1]);
        let h = &self.head[2..self.head_len];
        let (len, rest) = match b1 & 0x7f {
            126 => (u64::from(u16::from_be_bytes([h[0], h[1]])), &h[2..]),
            127 => (u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]), &h[8..]),
            n => (u64::from(n), h),
        };
        self.key = if b1 & 0x80 != 0 { [rest[0], rest[1], rest[2], rest[3]] } else { [0; 4] };
        self.at = 0;
        self.head_len = 0;
        self.fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0f;
        if b0 & 0x70 != 0 {
            // Compression (RSV1) was not negotiated through Kevlar; any reserved bit is unreadable.
            return self.lose(scan, "websocket_reserved_bits");
        }
        self.data = match opcode {
            OP_TEXT | OP_BINARY if !self.in_message => true,
            OP_CONTINUATION if self.in_message => true,
            8..=10 => false,
            _ => return self.lose(scan, "websocket_bad_frame"),
        };
        if self.data {
            self.in_message = true;
        }
        self.remaining = Some(len);
        if len == 0 {
            self.end_frame(scan)?;
        }
        Ok(())
    }

    fn end_frame(&mut self, scan: &mut dyn MessageScan) -> Result<(), u16> {
        self.remaining = None;
        if self.data && self.fin {
            self.in_message = false;
            scan.end()?;
        }
        Ok(())
    }

    fn lose(&mut self, scan: &mut dyn MessageScan, why: &'static str) -> Result<(), u16> {
        self.lost = true;
        scan.unreadable(why)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Seen {
        messages: Vec<Vec<u8>>,
        current: Vec<u8>,
        unreadable: Vec<&'static str>,
    }

    impl MessageScan for Seen {
        fn data(&mut self, piece: &[u8]) -> Result<(), u16> {
            self.current.extend_from_slice(piece);
            Ok(())
        }
        fn end(&mut self) -> Result<(), u16> {
            self.messages.push(std::mem::take(&mut self.current));
            Ok(())
        }
        fn unreadable(&mut self, why: &'static str) -> Result<(), u16> {
            self.unreadable.push(why);
            Ok(())
        }
    }

    fn frame(fin: bool, opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65536 => {
                f.push(0x80 | 126);
                f.extend((n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend((n as u64).to_be_bytes());
            }
        }
        f.extend(key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    #[test]
    fn messages_come_out_whole_whatever_the_pieces() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let long = vec![b'a'; 70_000];
        let mut wire = frame(true, OP_TEXT, b"{\"q\":\"1' or '1'='1\"}", key);
        wire.extend(frame(false, OP_TEXT, b"select ", key));
        wire.extend(frame(true, 9, b"ping", key)); // a control frame between fragments
        wire.extend(frame(true, OP_CONTINUATION, b"password", key));
        wire.extend(frame(true, OP_BINARY, &long, key));
        wire.extend(frame(true, OP_TEXT, b"", key));
        for step in [1, 2, 3, 7, 100, wire.len()] {
            let mut f = Frames::default();
            let mut s = Seen::default();
            for c in wire.chunks(step) {
                f.feed(c, &mut s).unwrap();
            }
            assert_eq!(s.messages.len(), 4, "step {step}");
            assert_eq!(s.messages[0], b"{\"q\":\"1' or '1'='1\"}");
            assert_eq!(s.messages[1], b"select password");
            assert_eq!(s.messages[2], long);
            assert!(s.messages[3].is_empty());
            assert!(s.unreadable.is_empty());
        }
    }

    #[test]
    fn what_cannot_be_read_is_told() {
        let mut f = Frames::default();
        let mut s = Seen::default();
        let mut compressed = frame(true, OP_TEXT, b"xyz", [1, 2, 3, 4]);
        compressed[0] |= 0x40;
        f.feed(&compressed, &mut s).unwrap();
        assert_eq!(s.unreadable, ["websocket_reserved_bits"]);
        let mut f = Frames::default();
        let mut s = Seen::default();
        f.feed(&frame(true, OP_CONTINUATION, b"orphan", [0; 4]), &mut s).unwrap();
        assert_eq!(s.unreadable, ["websocket_bad_frame"]);
    }
}
