//! Where a client's HTTP/2 header blocks start and end, read off the frame
//! headers as the connection's bytes pass, for SPEC §7's `readMs` (the time
//! to receive a whole request head). The `h2` crate hands a stream over only
//! once its header block is complete, and nothing else may be sent on the
//! connection while a block is open (RFC 9113 §6.10), so a client that
//! starts a block and stalls would otherwise hold the connection until
//! `idleMs`, where an HTTP/1.1 client stalling in its head is cut after
//! `readMs`.

use std::cell::Cell;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The client connection preface, which comes before the first frame.
const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

/// Follows the frames of one client connection's byte stream.
pub struct HeadWatch {
    /// Preface bytes still to pass.
    preface: Cell<usize>,
    /// The frame header being received, and how many of its bytes are in.
    header: Cell<[u8; FRAME_HEADER_LEN]>,
    have: Cell<usize>,
    /// Payload bytes of the current frame still to pass.
    payload: Cell<usize>,
    /// When the header block being received started, while one is open.
    open_since: Cell<Option<Instant>>,
    /// Woken when a header block opens.
    pub opened: Notify,
}

impl HeadWatch {
    pub fn new() -> Self {
        Self {
            preface: Cell::new(PREFACE_LEN),
            header: Cell::new([0; FRAME_HEADER_LEN]),
            have: Cell::new(0),
            payload: Cell::new(0),
            open_since: Cell::new(None),
            opened: Notify::new(),
        }
    }

    /// When the header block being received started, if one is open.
    pub fn open_since(&self) -> Option<Instant> {
        self.open_since.get()
    }

    /// Takes in the next bytes the client sent, in order. Frame lengths are
    /// not validated here: the `h2` crate reads the same bytes and ends the
    /// connection on any it does not accept.
    pub fn observe(&self, mut bytes: &[u8]) {
        let skip = self.preface.get().min(bytes.len());
        self.preface.set(self.preface.get() - skip);
        bytes = &bytes[skip..];
        while !bytes.is_empty() {
            let payload = self.payload.get();
            if payload > 0 {
                let n = payload.min(bytes.len());
                self.payload.set(payload - n);
                bytes = &bytes[n..];
                continue;
            }
            let (mut header, have) = (self.header.get(), self.have.get());
            let n = (FRAME_HEADER_LEN - have).min(bytes.len());
            header[have..have + n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if have + n < FRAME_HEADER_LEN {
                self.header.set(header);
                self.have.set(have + n);
                return;
            }
            self.have.set(0);
            self.payload
                .set(u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize);
            match (header[3], header[4] & END_HEADERS != 0) {
                (HEADERS | CONTINUATION, true) => self.open_since.set(None),
                (HEADERS, false) if self.open_since.get().is_none() => {
                    self.open_since.set(Some(Instant::now()));
                    self.opened.notify_one();
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: usize) -> Vec<u8> {
        let len = (payload as u32).to_be_bytes();
        let mut f = vec![len[1], len[2], len[3], kind, flags, 0, 0, 0, 1];
        f.resize(FRAME_HEADER_LEN + payload, 0xAA);
        f
    }

    #[test]
    fn a_block_is_open_from_headers_to_end_headers_whatever_the_reads() {
        let mut wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        wire.extend(frame(0x4, 0, 6)); // SETTINGS
        // A block opens with the header of a HEADERS frame without
        // END_HEADERS, and closes with the header of the frame that has it.
        let opens = wire.len() + FRAME_HEADER_LEN;
        wire.extend(frame(HEADERS, 0, 20));
        wire.extend(frame(CONTINUATION, 0, 3));
        let closes = wire.len() + FRAME_HEADER_LEN;
        wire.extend(frame(CONTINUATION, END_HEADERS, 5));
        wire.extend(frame(0x0, 0, 40)); // DATA, whose bytes could look like anything
        wire.extend(frame(HEADERS, END_HEADERS, 7)); // a whole block never opens
        // Fed in pieces of every size: the same states at the same places.
        for piece in 1..=wire.len() {
            let watch = HeadWatch::new();
            let mut fed = 0;
            for chunk in wire.chunks(piece) {
                watch.observe(chunk);
                fed += chunk.len();
                let open = watch.open_since().is_some();
                assert_eq!(open, (opens..closes).contains(&fed), "piece {piece}, fed {fed}");
            }
        }
    }
}
