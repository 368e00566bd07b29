//! The body's bytes as the app's parsers will read them: `Content-Encoding` undone (gzip,
//! deflate, br, stacked in any order), streamed with bounded memory, and the declared charset
//! turned into UTF-8. What cannot be undone is a [`Problem`], which the scanner reports as a
//! finding; it never passes silently.

use std::io::Write;

/// Output allowed per input piece; pieces are small enough that no real stream comes close.
const STEP_CAP: usize = 4 << 20;
/// Compressed input is fed in pieces this long, so one piece's output stays under [`STEP_CAP`].
const PIECE: usize = 512;
/// More decoded bytes than this, or a ratio past [`MAX_RATIO`] beyond 1 MiB, is a bomb.
pub const MAX_DECODED: u64 = 64 << 20;
pub const MAX_RATIO: u64 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// An encoding Kevlar does not know (the app may still read the body).
    UnknownEncoding,
    /// The compressed stream is broken.
    Corrupt,
    /// Decompression expands past the limits.
    Bomb,
}

/// A writer that refuses more than [`STEP_CAP`] bytes before it is drained.
#[derive(Default)]
struct Capped(Vec<u8>);

impl Write for Capped {
    fn write(&mut self, d: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + d.len() > STEP_CAP {
            return Err(std::io::Error::other("decoded output past the step cap"));
        }
        self.0.extend_from_slice(d);
        Ok(d.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Layer {
    /// Every member of a multi-member stream, as Node's gunzip reads them.
    Gzip(flate2::write::MultiGzDecoder<Capped>),
    Zlib(flate2::write::ZlibDecoder<Capped>),
    Raw(flate2::write::DeflateDecoder<Capped>),
    /// `deflate` before its first two bytes: zlib-wrapped (what RFC 9110 means and Node reads) or raw.
    Deflate(Vec<u8>),
    /// `br` before its first byte, which tells the window the stream needs.
    BrStart,
    Br(Box<brotli_decompressor::DecompressorWriter<Capped>>),
}

/// The largest brotli window Kevlar decodes with: 4 MiB, the encoders' default (`lgwin` 22). The
/// window is allocated from the stream's first byte, so a 12-byte body asking for the
/// large-window extension's 1 GiB would otherwise cost that much memory.
const MAX_BR_WINDOW_BITS: u8 = 22;

/// The window bits a brotli stream declares in its first bits (RFC 7932 §9.1); `None` for the
/// reserved pattern that the large-window extension uses.
fn brotli_window_bits(first: u8) -> Option<u8> {
    if first & 1 == 0 {
        return Some(16);
    }
    let n = (first >> 1) & 7;
    if n != 0 {
        return Some(17 + n);
    }
    match (first >> 4) & 7 {
        0 => Some(17),
        1 => None,
        m => Some(8 + m),
    }
}

impl Layer {
    fn write(&mut self, d: &[u8]) -> std::io::Result<()> {
        if let Layer::Deflate(head) = self {
            head.extend_from_slice(d);
            if head.len() < 2 {
                return Ok(());
            }
            let h = std::mem::take(head);
            let zlib = h[0] & 0x0f == 8 && (u16::from(h[0]) << 8 | u16::from(h[1])) % 31 == 0;
            *self = if zlib {
                Layer::Zlib(flate2::write::ZlibDecoder::new(Capped::default()))
            } else {
                Layer::Raw(flate2::write::DeflateDecoder::new(Capped::default()))
            };
            return self.write(&h);
        }
        if let Layer::BrStart = self {
            let Some(&first) = d.first() else { return Ok(()) };
            if brotli_window_bits(first).is_none_or(|b| b > MAX_BR_WINDOW_BITS) {
                return Err(std::io::Error::other("brotli window past the window cap"));
            }
            *self = Layer::Br(Box::new(brotli_decompressor::DecompressorWriter::new(Capped::default(), 4096)));
        }
        match self {
            Layer::Gzip(w) => w.write_all(d),
            Layer::Zlib(w) => w.write_all(d),
            Layer::Raw(w) => w.write_all(d),
            Layer::Br(w) => w.write_all(d),
            Layer::Deflate(_) | Layer::BrStart => Ok(()),
        }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Layer::Gzip(w) => w.try_finish(),
            Layer::Zlib(w) => w.try_finish(),
            Layer::Raw(w) => w.try_finish(),
            Layer::Br(w) => w.close(),
            Layer::BrStart => Ok(()),
            Layer::Deflate(h) if h.is_empty() => Ok(()),
            Layer::Deflate(_) => Err(std::io::Error::other("truncated deflate stream")),
        }
    }

    fn take(&mut self) -> Vec<u8> {
        match self {
            Layer::Gzip(w) => std::mem::take(&mut w.get_mut().0),
            Layer::Zlib(w) => std::mem::take(&mut w.get_mut().0),
            Layer::Raw(w) => std::mem::take(&mut w.get_mut().0),
            Layer::Br(w) => std::mem::take(&mut w.get_mut().0),
            Layer::Deflate(_) | Layer::BrStart => Vec::new(),
        }
    }
}

/// Undoes a `Content-Encoding` list, last applied first.
pub struct Decoder {
    layers: Vec<Layer>,
    total_in: u64,
    total_out: u64,
    failed: Option<Problem>,
}

impl Decoder {
    /// `None` when there is nothing to undo (no header, or only `identity`).
    pub fn new(content_encoding: &str) -> Result<Option<Decoder>, Problem> {
        let mut layers = Vec::new();
        for token in content_encoding.split(',').rev() {
            let t = token.trim().to_ascii_lowercase();
            match t.as_str() {
                "" | "identity" => {}
                "gzip" | "x-gzip" => layers.push(Layer::Gzip(flate2::write::MultiGzDecoder::new(Capped::default()))),
                "deflate" => layers.push(Layer::Deflate(Vec::new())),
                "br" => layers.push(Layer::BrStart),
                _ => return Err(Problem::UnknownEncoding),
            }
        }
        Ok((!layers.is_empty()).then_some(Decoder { layers, total_in: 0, total_out: 0, failed: None }))
    }

    /// Decodes `input`, handing the output to `out` piece by piece.
    pub fn feed(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8])) -> Result<(), Problem> {
        if let Some(p) = self.failed {
            return Err(p);
        }
        self.total_in += input.len() as u64;
        let r = push(&mut self.layers, input, &mut self.total_out, self.total_in, out);
        if let Err(p) = r {
            self.failed = Some(p);
        }
        r
    }

    /// The end of the body: a stream cut short is [`Problem::Corrupt`].
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8])) -> Result<(), Problem> {
        if let Some(p) = self.failed {
            return Err(p);
        }
        let r = finish_all(&mut self.layers, &mut self.total_out, self.total_in, out);
        if let Err(p) = r {
            self.failed = Some(p);
        }
        r
    }
}

fn finish_all(
    layers: &mut [Layer],
    total_out: &mut u64,
    total_in: u64,
    out: &mut dyn FnMut(&[u8]),
) -> Result<(), Problem> {
    let Some((first, rest)) = layers.split_first_mut() else { return Ok(()) };
    first.finish().map_err(|_| Problem::Corrupt)?;
    let produced = first.take();
    push(rest, &produced, total_out, total_in, out)?;
    finish_all(rest, total_out, total_in, out)
}

fn push(
    layers: &mut [Layer],
    data: &[u8],
    total_out: &mut u64,
    total_in: u64,
    out: &mut dyn FnMut(&[u8]),
) -> Result<(), Problem> {
    let Some((first, rest)) = layers.split_first_mut() else {
        *total_out += data.len() as u64;
        if *total_out > MAX_DECODED || (*total_out > 1 << 20 && *total_out > total_in.saturating_mul(MAX_RATIO)) {
            return Err(Problem::Bomb);
        }
        out(data);
        return Ok(());
    };
    for piece in data.chunks(PIECE) {
        if let Err(e) = first.write(piece) {
            let past_cap = e.kind() == std::io::ErrorKind::Other && e.to_string().contains(" cap");
            return Err(if past_cap { Problem::Bomb } else { Problem::Corrupt });
        }
        let produced = first.take();
        if !produced.is_empty() {
            push(rest, &produced, total_out, total_in, out)?;
        }
    }
    Ok(())
}

/// The charsets a body can be declared in that Kevlar turns into UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Latin1,
    Utf16Le,
    Utf16Be,
}

impl Charset {
    /// From a `charset` parameter; `None` for a charset Kevlar cannot read.
    pub fn parse(name: &str) -> Option<Charset> {
        let n = name.trim().trim_matches('"').to_ascii_lowercase();
        Some(match n.as_str() {
            "utf-8" | "utf8" | "us-ascii" | "ascii" => Charset::Utf8,
            "iso-8859-1" | "latin1" | "latin-1" | "iso8859-1" | "windows-1252" | "cp1252" | "l1" => Charset::Latin1,
            "utf-16le" | "utf-16" | "utf16" | "utf16le" => Charset::Utf16Le,
            "utf-16be" | "utf16be" => Charset::Utf16Be,
            _ => return None,
        })
    }
}

/// Turns a stream in `charset` into UTF-8, carrying split code units between chunks.
pub struct Transcoder {
    cs: Charset,
    carry: Vec<u8>,
    /// For `utf-16` without an order: the byte-order mark decides.
    bom_seen: bool,
}

impl Transcoder {
    pub fn new(cs: Charset) -> Transcoder {
        Transcoder { cs, carry: Vec::new(), bom_seen: false }
    }

    pub fn is_identity(&self) -> bool {
        self.cs == Charset::Utf8
    }

    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self.cs {
            Charset::Utf8 => out.extend_from_slice(input),
            Charset::Latin1 => {
                for &b in input {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(char::from(b).encode_utf8(&mut buf).as_bytes());
                }
            }
            Charset::Utf16Le | Charset::Utf16Be => {
                self.carry.extend_from_slice(input);
                if !self.bom_seen && self.carry.len() >= 2 {
                    self.bom_seen = true;
                    match (self.carry[0], self.carry[1]) {
                        (0xff, 0xfe) => {
                            self.cs = Charset::Utf16Le;
                            self.carry.drain(..2);
                        }
                        (0xfe, 0xff) => {
                            self.cs = Charset::Utf16Be;
                            self.carry.drain(..2);
                        }
                        _ => {}
                    }
                }
                let le = self.cs == Charset::Utf16Le;
                let mut units: Vec<u16> = self
                    .carry
                    .chunks_exact(2)
                    .map(|p| if le { u16::from_le_bytes([p[0], p[1]]) } else { u16::from_be_bytes([p[0], p[1]]) })
                    .collect();
                let used = units.len() * 2;
                // A high surrogate at the end waits for its pair.
                let mut keep = self.carry[used..].to_vec();
                if units.last().is_some_and(|u| (0xd800..0xdc00).contains(u)) {
                    let u = units.pop().unwrap_or(0);
                    let b = if le { u.to_le_bytes() } else { u.to_be_bytes() };
                    keep.splice(0..0, b);
                }
                for c in char::decode_utf16(units) {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.unwrap_or('\u{fffd}').encode_utf8(&mut buf).as_bytes());
                }
                self.carry = keep;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn run(enc: &str, data: &[u8]) -> Result<Vec<u8>, Problem> {
        let mut d = Decoder::new(enc)?.unwrap();
        let mut out = Vec::new();
        for c in data.chunks(7) {
            d.feed(c, &mut |b| out.extend_from_slice(b))?;
        }
        d.finish(&mut |b| out.extend_from_slice(b))?;
        Ok(out)
    }

    fn gzip(d: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(d).unwrap();
        e.finish().unwrap()
    }

    fn zlib(d: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(d).unwrap();
        e.finish().unwrap()
    }

    fn raw(d: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(d).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn encodings_come_off_in_order() {
        let body = b"q=1' union select password from users--".repeat(20);
        assert_eq!(run("gzip", &gzip(&body)).unwrap(), body);
        assert_eq!(run("deflate", &zlib(&body)).unwrap(), body);
        assert_eq!(run("deflate", &raw(&body)).unwrap(), body);
        // Applied gzip first, then deflate: undone deflate first.
        assert_eq!(run("gzip, deflate", &zlib(&gzip(&body))).unwrap(), body);
        assert_eq!(run("identity, GZIP", &gzip(&body)).unwrap(), body);
        assert!(Decoder::new("identity").unwrap().is_none());
        assert_eq!(Decoder::new("compress").err(), Some(Problem::UnknownEncoding));
        assert_eq!(run("gzip", b"not gzip at all").err(), Some(Problem::Corrupt));
        let g = gzip(&body);
        assert_eq!(run("gzip", &g[..g.len() / 2]).err(), Some(Problem::Corrupt));
    }

    #[test]
    fn a_bomb_is_a_problem_not_an_allocation() {
        let zeros = vec![0u8; 200 << 20];
        let bomb = gzip(&zeros);
        assert!(bomb.len() < 1 << 20);
        assert_eq!(run("gzip", &bomb).err(), Some(Problem::Bomb));
    }

    #[test]
    fn a_brotli_stream_asking_for_a_huge_window_is_refused_before_any_allocation() {
        // Found by the `body_decode` fuzz target: 9 bytes that made the decoder allocate 512 MiB
        // (the large-window extension's pattern in the first byte).
        assert_eq!(run("br", &[0x11, 0x1d, 0x6b, 0x02, 0x4c, 0, 0x4c, 0, 0]).err(), Some(Problem::Bomb));
        // A standard window past 4 MiB (lgwin 24) too; 22, what encoders use by default, decodes.
        assert_eq!(brotli_window_bits(0x0f), Some(24));
        assert_eq!(run("br", &[0x0f, 0, 0]).err(), Some(Problem::Bomb));
        assert_eq!(brotli_window_bits(0x0b), Some(22));
        assert_eq!(brotli_window_bits(0x00), Some(16));
        assert_eq!(brotli_window_bits(0x21), Some(10));
    }

    #[test]
    fn every_member_of_a_gzip_stream_is_read() {
        // A clean first member and the attack in the second: Node's gunzip reads both.
        let mut two = gzip(b"q=hello&");
        two.extend(gzip(b"r=1%27%20or%20%271%27%3D%271"));
        assert_eq!(run("gzip", &two).unwrap(), b"q=hello&r=1%27%20or%20%271%27%3D%271");
    }

    #[test]
    fn charsets_become_utf8() {
        let mut t = Transcoder::new(Charset::parse("ISO-8859-1").unwrap());
        let mut out = Vec::new();
        t.feed(b"A\xf1adir", &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "Añadir");
        let text: Vec<u8> = "{\"q\":\"1' or 1=1 😀\"}".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let mut t = Transcoder::new(Charset::Utf16Le);
        let mut out = Vec::new();
        for c in text.chunks(3) {
            t.feed(c, &mut out);
        }
        assert_eq!(String::from_utf8(out).unwrap(), "{\"q\":\"1' or 1=1 😀\"}");
        assert!(Charset::parse("koi8-r").is_none());
    }
}
