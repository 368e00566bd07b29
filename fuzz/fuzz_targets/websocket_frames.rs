//! The WebSocket frame reader of `[detect] websocket = true` on any client bytes in any chunk
//! size: never a panic, and the same messages (unmasked payloads, in order) and the same
//! unreadable frames whether the bytes come whole or in pieces.
#![no_main]
use kevlar_core::MessageScan;
use kevlar_proxy::wsframe::Frames;
use libfuzzer_sys::fuzz_target;

#[derive(Default, PartialEq, Debug)]
struct Seen {
    messages: Vec<Vec<u8>>,
    current: Vec<u8>,
    unreadable: Vec<&'static str>,
}

impl MessageScan for Seen {
    fn data(&mut self, piece: &[u8]) -> Result<(), u16> {
        assert!(!piece.is_empty());
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

fuzz_target!(|data: &[u8]| {
    let [step, rest @ ..] = data else { return };
    let mut whole = Seen::default();
    Frames::default().feed(rest, &mut whole).unwrap();
    let mut pieces = Seen::default();
    let mut f = Frames::default();
    for c in rest.chunks(usize::from(*step).max(1)) {
        f.feed(c, &mut pieces).unwrap();
    }
    assert_eq!(whole, pieces);
});
