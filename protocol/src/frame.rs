//! Length-prefixed framing: a frame is a 4-byte big-endian length followed by
//! a postcard-encoded message of that many bytes (at most [`MAX_FRAME`]).
//!
//! Datagrams carry one postcard-encoded message with no prefix.

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ProtocolError;
use crate::limits::{FRAME_PIECE_KEEP_MIN, FRAME_PIECES_KEPT_MAX, MAX_DATAGRAM, MAX_FRAME};
use crate::messages::{Validate, check_asset_chunk};

/// Bytes in the length prefix.
pub const PREFIX_LEN: usize = 4;

/// Encodes a message body (no prefix) and checks it against the frame limit,
/// so a sender learns of an oversize message before it hits the wire.
pub fn encode_body<M: Serialize + Validate>(msg: &M) -> Result<Vec<u8>, ProtocolError> {
    msg.validate()?;
    let body = postcard::to_stdvec(msg).map_err(|e| ProtocolError::Malformed {
        what: M::WHAT,
        reason: e.to_string(),
    })?;
    if body.len() > MAX_FRAME {
        return Err(ProtocolError::FrameTooLarge {
            len: body.len(),
            max: MAX_FRAME,
        });
    }
    Ok(body)
}

/// The length prefix of a frame body of `len` bytes, refused past the
/// frame limit so no length is ever cut to fit the prefix.
fn prefix(len: usize) -> Result<[u8; PREFIX_LEN], ProtocolError> {
    match u32::try_from(len) {
        Ok(n) if len <= MAX_FRAME => Ok(n.to_be_bytes()),
        _ => Err(ProtocolError::FrameTooLarge {
            len,
            max: MAX_FRAME,
        }),
    }
}

/// Encodes a message as one complete frame (prefix + body).
pub fn encode_frame<M: Serialize + Validate>(msg: &M) -> Result<Vec<u8>, ProtocolError> {
    let body = encode_body(msg)?;
    let mut out = Vec::with_capacity(PREFIX_LEN + body.len());
    out.extend_from_slice(&prefix(body.len())?);
    out.extend_from_slice(&body);
    Ok(out)
}

/// The bytes that come before the data in the frame of one `AssetBundle`
/// chunk: `header ++ data` is exactly `encode_frame(&AssetBundle { .. data })`.
/// A sender writes the header and then the chunk straight from the one shared
/// copy of the bundle, so no transfer copies bundle bytes.
pub fn asset_chunk_header(
    plugin_id: u16,
    sha256: [u8; 32],
    len: u64,
    chunk_id: u32,
    data_len: usize,
) -> Result<Vec<u8>, ProtocolError> {
    check_asset_chunk(len, chunk_id, data_len)?;
    let empty = crate::ServerMsg::AssetBundle {
        plugin_id,
        sha256,
        len,
        chunk_id,
        data: Vec::new(),
    };
    let mut body = postcard::to_stdvec(&empty).map_err(|e| ProtocolError::Malformed {
        what: "server message",
        reason: e.to_string(),
    })?;
    // The empty data encodes as its length, a single 0 byte, at the very end:
    // replace it with the real length (a LEB128 varint, as postcard writes it).
    body.pop();
    let mut n = data_len;
    loop {
        let byte = u8::try_from(n & 0x7f).unwrap_or_default();
        n >>= 7;
        if n == 0 {
            body.push(byte);
            break;
        }
        body.push(byte | 0x80);
    }
    let total = body.len() + data_len;
    if total > MAX_FRAME {
        return Err(ProtocolError::FrameTooLarge {
            len: total,
            max: MAX_FRAME,
        });
    }
    let mut out = Vec::with_capacity(PREFIX_LEN + body.len());
    out.extend_from_slice(&prefix(total)?);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes and validates one frame body (without its prefix).
pub fn decode_frame<M: DeserializeOwned + Validate>(body: &[u8]) -> Result<M, ProtocolError> {
    if body.len() > MAX_FRAME {
        return Err(ProtocolError::FrameTooLarge {
            len: body.len(),
            max: MAX_FRAME,
        });
    }
    decode_body(body)
}

fn decode_body<M: DeserializeOwned + Validate>(body: &[u8]) -> Result<M, ProtocolError> {
    let (msg, rest) =
        postcard::take_from_bytes::<M>(body).map_err(|e| ProtocolError::Malformed {
            what: M::WHAT,
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(ProtocolError::TrailingBytes {
            what: M::WHAT,
            extra: rest.len(),
        });
    }
    msg.validate()?;
    Ok(msg)
}

/// Encodes a message as one datagram, refusing one over [`MAX_DATAGRAM`].
pub fn encode_datagram<M: Serialize + Validate>(msg: &M) -> Result<Vec<u8>, ProtocolError> {
    let body = encode_body(msg)?;
    if body.len() > MAX_DATAGRAM {
        return Err(ProtocolError::DatagramTooLarge {
            len: body.len(),
            max: MAX_DATAGRAM,
        });
    }
    Ok(body)
}

/// Decodes and validates one datagram.
pub fn decode_datagram<M: DeserializeOwned + Validate>(data: &[u8]) -> Result<M, ProtocolError> {
    if data.len() > MAX_DATAGRAM {
        return Err(ProtocolError::DatagramTooLarge {
            len: data.len(),
            max: MAX_DATAGRAM,
        });
    }
    decode_body(data)
}

/// Reads the length prefix and checks it before anything is allocated.
fn frame_len(prefix: [u8; PREFIX_LEN]) -> Result<usize, ProtocolError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(ProtocolError::FrameTooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    Ok(len)
}

/// Reads one frame from an async stream. `Ok(None)` is a clean end of stream
/// between frames; an end inside a frame is [`ProtocolError::Truncated`].
pub async fn read_frame<M, R>(reader: &mut R) -> Result<Option<M>, ProtocolError>
where
    M: DeserializeOwned + Validate,
    R: AsyncRead + Unpin,
{
    match read_frame_body(reader).await? {
        Some(body) => decode_body(&body).map(Some),
        None => Ok(None),
    }
}

/// Reads one frame's body (its prefix checked before anything is
/// allocated), without zeroing the buffer first. `Ok(None)` is a clean end of
/// stream between frames; an end inside a frame is [`ProtocolError::Truncated`].
pub async fn read_frame_body<R>(reader: &mut R) -> Result<Option<Vec<u8>>, ProtocolError>
where
    R: AsyncRead + Unpin,
{
    let mut prefix = [0u8; PREFIX_LEN];
    let mut got = 0;
    while got < PREFIX_LEN {
        let n = reader.read(&mut prefix[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(ProtocolError::Truncated {
                got,
                expected: PREFIX_LEN,
            });
        }
        got += n;
    }
    let len = frame_len(prefix)?;
    let mut body = Vec::with_capacity(len);
    while body.len() < len {
        let want = len - body.len();
        // `take` keeps `read_buf` from reading past this frame.
        let n = (&mut *reader).take(want as u64).read_buf(&mut body).await?;
        if n == 0 {
            return Err(ProtocolError::Truncated {
                got: body.len(),
                expected: len,
            });
        }
    }
    Ok(Some(body))
}

/// One `AssetBundle` chunk as read off a bundle stream, its data left in the
/// pieces it arrived in, so a receiver copies bundle bytes only into its own
/// store. Built only by [`decode_asset_chunk`] and
/// [`decode_asset_chunk_parts`], so it passed the same checks as a decoded
/// `ServerMsg::AssetBundle`.
#[derive(Debug)]
pub struct AssetChunk {
    /// The plugin whose bundle this is.
    pub plugin_id: u16,
    /// The bundle's SHA-256, as announced.
    pub sha256: [u8; 32],
    /// The whole bundle's length.
    pub len: u64,
    /// Index of this chunk (offset = `chunk_id * CHUNK_SIZE`).
    pub chunk_id: u32,
    data: Vec<Bytes>,
}

impl AssetChunk {
    /// The chunk's bytes, in the pieces they arrived in (in order).
    pub fn data(&self) -> &[Bytes] {
        &self.data
    }

    /// How many bytes the chunk holds.
    pub fn data_len(&self) -> usize {
        self.data.iter().map(Bytes::len).sum()
    }
}

/// The longest `AssetBundle` header postcard writes: the variant and four
/// integers as varints (u32, u16, u64, u32, usize), and the 32 hash bytes.
const MAX_CHUNK_HEADER: usize = 5 + 3 + 32 + 10 + 5 + 10;

/// Copies the first bytes of `pieces` (in order) into `out`, as many as
/// both hold; returns how many.
fn copy_front(pieces: &[Bytes], out: &mut [u8]) -> usize {
    let mut got = 0;
    for p in pieces {
        let n = p.len().min(out.len() - got);
        out[got..got + n].copy_from_slice(&p[..n]);
        got += n;
        if got == out.len() {
            break;
        }
    }
    got
}

/// Decodes a frame body from a bundle stream as
/// `decode_frame::<ServerMsg>` would, without copying an `AssetBundle`'s
/// data out of it. `Ok(None)`: a valid message that is not a chunk.
pub fn decode_asset_chunk(body: Vec<u8>) -> Result<Option<AssetChunk>, ProtocolError> {
    decode_asset_chunk_parts(vec![Bytes::from(body)])
}

/// [`decode_asset_chunk`] for a frame body in the pieces it arrived in (as
/// [`FramePieces`] cuts it): only the header is copied out to be read.
pub fn decode_asset_chunk_parts(parts: Vec<Bytes>) -> Result<Option<AssetChunk>, ProtocolError> {
    let malformed = |reason: String| ProtocolError::Malformed {
        what: "bundle chunk",
        reason,
    };
    let total: usize = parts.iter().map(Bytes::len).sum();
    if total > MAX_FRAME {
        return Err(ProtocolError::FrameTooLarge {
            len: total,
            max: MAX_FRAME,
        });
    }
    let mut head = [0u8; MAX_CHUNK_HEADER];
    let got = copy_front(&parts, &mut head);
    let head = &head[..got];
    // postcard writes the variant and every integer as a varint, and the
    // data as its length then its bytes: `asset_chunk_header` builds the
    // same layout, and the tests hold both to `encode_frame`.
    let (variant, _) =
        postcard::take_from_bytes::<u32>(head).map_err(|e| malformed(e.to_string()))?;
    if variant != asset_bundle_variant()? {
        return decode_frame::<crate::ServerMsg>(&parts.concat()).map(|_| None);
    }
    let ((_, plugin_id, sha256, len, chunk_id, data_len), rest) =
        postcard::take_from_bytes::<(u32, u16, [u8; 32], u64, u32, usize)>(head)
            .map_err(|e| malformed(e.to_string()))?;
    let header_len = head.len() - rest.len();
    let follows = total - header_len;
    if follows != data_len {
        return Err(malformed(format!(
            "its data says {data_len} bytes but {follows} follow"
        )));
    }
    check_asset_chunk(len, chunk_id, data_len)?;
    let mut skip = header_len;
    let data = parts
        .into_iter()
        .filter_map(|mut p| {
            if skip >= p.len() {
                skip -= p.len();
                return None;
            }
            // `skip < p.len()`, so no piece kept here is empty.
            let data = p.split_off(skip);
            skip = 0;
            Some(data)
        })
        .collect();
    Ok(Some(AssetChunk {
        plugin_id,
        sha256,
        len,
        chunk_id,
        data,
    }))
}

/// The variant index postcard writes for `ServerMsg::AssetBundle`.
fn asset_bundle_variant() -> Result<u32, ProtocolError> {
    static VARIANT: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    let found = VARIANT.get_or_init(|| {
        let empty = crate::ServerMsg::AssetBundle {
            plugin_id: 0,
            sha256: [0; 32],
            len: 0,
            chunk_id: 0,
            data: Vec::new(),
        };
        let body = postcard::to_stdvec(&empty).ok()?;
        postcard::take_from_bytes::<u32>(&body).ok().map(|(v, _)| v)
    });
    found.ok_or(ProtocolError::Malformed {
        what: "bundle chunk",
        reason: "cannot encode an AssetBundle".into(),
    })
}

/// Writes one frame to an async stream.
pub async fn write_frame<M, W>(writer: &mut W, msg: &M) -> Result<(), ProtocolError>
where
    M: Serialize + Validate,
    W: AsyncWrite + Unpin,
{
    let frame = encode_frame(msg)?;
    writer.write_all(&frame).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::CHUNK_SIZE;

    #[test]
    fn a_chunk_read_in_place_is_the_decoded_message() {
        for (plugin_id, len, chunk_id, data_len) in [
            (1u16, 5u64, 0u32, 5usize),
            (300, 100_000, 1, CHUNK_SIZE),
            (u16::MAX, 100_000, 3, 100_000 - 3 * CHUNK_SIZE),
            (7, 200, 0, 127),
            (7, 200, 0, 128),
            (0, 0, 0, 0),
        ] {
            let data: Vec<u8> = (0..data_len).map(|i| (i * 7).to_le_bytes()[0]).collect();
            let sha256 = [plugin_id.to_le_bytes()[0] ^ 0x5a; 32];
            let msg = crate::ServerMsg::AssetBundle {
                plugin_id,
                sha256,
                len,
                chunk_id,
                data: data.clone(),
            };
            let body = encode_body(&msg).unwrap();
            let c = decode_asset_chunk(body).unwrap().expect("a chunk");
            assert_eq!(
                (c.plugin_id, c.sha256, c.len, c.chunk_id),
                (plugin_id, sha256, len, chunk_id)
            );
            assert_eq!(c.data().concat(), data);
        }
    }

    /// A bundle stream read in pieces of any size, never more than
    /// `wanted` at a time: every frame comes back whole, in order, and
    /// nothing past the current frame is ever held.
    #[test]
    fn frames_cut_from_pieces_are_the_frames_sent() {
        let bodies: Vec<Vec<u8>> = (0..5usize)
            .map(|i| {
                let data: Vec<u8> = (0..i * 700 + 3)
                    .map(|b| (b * 31 + i).to_le_bytes()[0])
                    .collect();
                encode_body(&crate::ServerMsg::AssetBundle {
                    plugin_id: 2,
                    sha256: [2; 32],
                    len: 10_000,
                    chunk_id: 0,
                    data,
                })
                .unwrap()
            })
            .collect();
        let mut stream = Vec::new();
        for b in &bodies {
            stream.extend_from_slice(&u32::try_from(b.len()).unwrap().to_be_bytes());
            stream.extend_from_slice(b);
        }
        for piece in [1usize, 3, 4, 5, 64, 1000, 100_000] {
            let mut frames = FramePieces::default();
            let (mut at, mut got) = (0, Vec::new());
            loop {
                if let Some(body) = frames.next_frame().unwrap() {
                    got.push(body.concat());
                    continue;
                }
                if at == stream.len() {
                    break;
                }
                let n = frames.wanted().min(piece).min(stream.len() - at);
                frames.push(Bytes::copy_from_slice(&stream[at..at + n]));
                at += n;
                let frame_max = bodies.iter().map(Vec::len).max().unwrap() + PREFIX_LEN;
                assert!(frames.buffered() <= frame_max, "piece {piece}");
            }
            frames.finish().unwrap();
            assert_eq!(got, bodies, "piece {piece}");
        }
    }

    /// A peer cannot make the receiver hold a large receive buffer per byte:
    /// a frame sent as one-byte pieces of big packets comes back copied, and
    /// of large pieces only the first `FRAME_PIECES_KEPT_MAX` per frame are
    /// kept as they arrived.
    #[test]
    fn small_pieces_and_pieces_past_the_kept_limit_are_copied_not_held() {
        let big = Bytes::from(vec![7u8; 64 * 1024]);
        let within = |p: &Bytes| {
            let (start, end) = (big.as_ptr() as usize, big.as_ptr() as usize + big.len());
            (start..end).contains(&(p.as_ptr() as usize))
        };
        let body_len = 40 * 1024;
        let mut frames = FramePieces::default();
        frames.push(Bytes::copy_from_slice(
            &u32::try_from(body_len).unwrap().to_be_bytes(),
        ));
        assert!(frames.next_frame().unwrap().is_none());
        for i in 0..body_len {
            frames.push(big.slice(i..=i));
        }
        let body = frames.next_frame().unwrap().unwrap();
        assert_eq!(body.concat().len(), body_len);
        assert!(!body.iter().any(within), "a one-byte piece was kept");

        // Large pieces: the first two of the frame are kept, the third copied.
        let piece = FRAME_PIECE_KEEP_MIN + 100;
        frames.push(Bytes::copy_from_slice(
            &u32::try_from(3 * piece).unwrap().to_be_bytes(),
        ));
        assert!(frames.next_frame().unwrap().is_none());
        for i in 0..3 {
            frames.push(big.slice(i * piece..(i + 1) * piece));
        }
        let body = frames.next_frame().unwrap().unwrap();
        assert_eq!(body.concat(), big.slice(..3 * piece).to_vec());
        let kept: Vec<bool> = body.iter().map(within).collect();
        assert_eq!(kept, [true, true, false]);
        assert_eq!(FRAME_PIECES_KEPT_MAX, 2, "the assertion above counts two");
        // The next frame may keep two again.
        frames.push(Bytes::copy_from_slice(
            &u32::try_from(piece).unwrap().to_be_bytes(),
        ));
        frames.push(big.slice(..piece));
        let body = frames.next_frame().unwrap().unwrap();
        assert!(body.iter().all(within));
        frames.finish().unwrap();
    }

    #[test]
    fn a_stream_cut_inside_a_frame_or_announcing_too_much_is_refused() {
        let mut frames = FramePieces::default();
        frames.push(Bytes::from_static(&[0, 0]));
        assert!(frames.next_frame().unwrap().is_none());
        assert!(matches!(
            frames.finish(),
            Err(ProtocolError::Truncated {
                got: 2,
                expected: PREFIX_LEN
            })
        ));
        frames.push(Bytes::from_static(&[0, 9, 1, 2, 3]));
        assert!(frames.next_frame().unwrap().is_none());
        assert!(matches!(
            frames.finish(),
            Err(ProtocolError::Truncated {
                got: 3,
                expected: 9
            })
        ));
        let mut huge = FramePieces::default();
        huge.push(Bytes::copy_from_slice(
            &(u32::try_from(MAX_FRAME).unwrap() + 1).to_be_bytes(),
        ));
        assert!(matches!(
            huge.next_frame(),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn a_chunk_read_in_place_is_checked_like_the_decoded_message() {
        let chunk = |len: u64, chunk_id: u32, data: Vec<u8>| {
            // Encoded without the sender's checks, as a hostile server could.
            postcard::to_stdvec(&crate::ServerMsg::AssetBundle {
                plugin_id: 1,
                sha256: [1; 32],
                len,
                chunk_id,
                data,
            })
            .unwrap()
        };
        // Another valid message is not a chunk.
        let other = encode_body(&crate::ServerMsg::AnnouncementsDone).unwrap();
        assert!(decode_asset_chunk(other).unwrap().is_none());
        for (body, why) in [
            (chunk(10, 1, vec![0; 4]), "beyond"),
            (chunk(u64::MAX, 0, vec![0; 4]), "AssetBundle.len"),
            (
                chunk(1 << 20, 0, vec![0; CHUNK_SIZE + 1]),
                "AssetBundle.data",
            ),
            (vec![0xff; 3], "bundle chunk"),
        ] {
            let err = decode_asset_chunk(body.clone()).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
            // The whole-message decoder refuses the same bodies.
            assert!(decode_frame::<crate::ServerMsg>(&body).is_err());
        }
        // Data shorter or longer than its length says.
        let mut cut = chunk(100, 0, vec![1; 50]);
        cut.pop();
        assert!(decode_asset_chunk(cut).is_err());
        let mut long = chunk(100, 0, vec![1; 50]);
        long.push(0);
        assert!(decode_asset_chunk(long).is_err());
    }

    #[tokio::test]
    async fn frame_bodies_are_read_whole_one_after_another() {
        let a = encode_frame(&crate::ServerMsg::AnnouncementsDone).unwrap();
        let b = encode_frame(&crate::ServerMsg::AssetBundle {
            plugin_id: 2,
            sha256: [2; 32],
            len: 3,
            chunk_id: 0,
            data: vec![1, 2, 3],
        })
        .unwrap();
        let mut wire = [a.clone(), b.clone()].concat();
        let mut r = &wire[..];
        assert_eq!(
            read_frame_body(&mut r).await.unwrap().unwrap(),
            a[PREFIX_LEN..]
        );
        assert_eq!(
            read_frame_body(&mut r).await.unwrap().unwrap(),
            b[PREFIX_LEN..]
        );
        assert!(read_frame_body(&mut r).await.unwrap().is_none());
        wire.pop();
        let mut r = &wire[..];
        read_frame_body(&mut r).await.unwrap();
        assert!(matches!(
            read_frame_body(&mut r).await,
            Err(ProtocolError::Truncated { .. })
        ));
    }

    #[test]
    fn asset_chunk_header_plus_data_is_the_encoded_frame() {
        for (len, chunk_id, data_len) in [
            (5u64, 0u32, 5usize),
            (100_000, 1, CHUNK_SIZE),
            (100_000, 3, 100_000 - 3 * CHUNK_SIZE),
            (200, 0, 127),
            (200, 0, 128),
            (0, 0, 0),
        ] {
            let data: Vec<u8> = (0..data_len).map(|i| i.to_le_bytes()[0]).collect();
            let msg = crate::ServerMsg::AssetBundle {
                plugin_id: 300,
                sha256: [0xa5; 32],
                len,
                chunk_id,
                data: data.clone(),
            };
            let mut ours = asset_chunk_header(300, [0xa5; 32], len, chunk_id, data_len).unwrap();
            ours.extend_from_slice(&data);
            assert_eq!(
                ours,
                encode_frame(&msg).unwrap(),
                "{len} {chunk_id} {data_len}"
            );
        }
        assert!(asset_chunk_header(1, [0; 32], 10, 0, 11).is_err());
        assert!(asset_chunk_header(1, [0; 32], 10_000_000, 0, CHUNK_SIZE + 1).is_err());
    }
}

/// Cuts frames out of a stream read in pieces (QUIC stream chunks): each
/// frame body comes back in pieces. Large pieces are kept as they arrived, so
/// bundle bytes are not copied on the way to the store; small ones, and any
/// past [`FRAME_PIECES_KEPT_MAX`] per frame, are copied, since a kept piece
/// holds its whole receive buffer (see [`FRAME_PIECE_KEEP_MIN`]). Reading at
/// most [`FramePieces::wanted`] bytes at a time, it holds at most one frame,
/// whose length prefix is checked before anything past it is read.
#[derive(Debug, Default)]
pub struct FramePieces {
    pending: std::collections::VecDeque<Bytes>,
    /// Small pieces copied since the last kept one; logically after `pending`.
    copied: BytesMut,
    /// Bytes in `pending` and `copied`.
    have: usize,
    /// Pieces kept as they arrived since the last frame was cut.
    kept: usize,
    /// The current frame's body length, once its prefix is read.
    body_len: Option<usize>,
}

impl FramePieces {
    /// How many more bytes the current frame needs (at least 1): read no
    /// more than this, so nothing past the frame is held.
    pub fn wanted(&self) -> usize {
        let need = self.body_len.unwrap_or(PREFIX_LEN);
        need.saturating_sub(self.have).max(1)
    }

    /// Bytes held and not yet returned in a frame (a read prefix included).
    pub fn buffered(&self) -> usize {
        self.have + self.body_len.map_or(0, |_| PREFIX_LEN)
    }

    /// Adds a piece read off the stream: kept as it is when large and the
    /// frame has kept fewer than [`FRAME_PIECES_KEPT_MAX`], else copied.
    pub fn push(&mut self, piece: Bytes) {
        if piece.is_empty() {
            return;
        }
        self.have += piece.len();
        if piece.len() >= FRAME_PIECE_KEEP_MIN && self.kept < FRAME_PIECES_KEPT_MAX {
            self.flush_copied();
            self.kept += 1;
            self.pending.push_back(piece);
        } else {
            self.copied.extend_from_slice(&piece);
        }
    }

    /// The next complete frame body, if the pieces so far hold one; a
    /// length prefix over [`MAX_FRAME`] is an error.
    pub fn next_frame(&mut self) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let len = match self.body_len {
            Some(len) => len,
            None => {
                if self.have < PREFIX_LEN {
                    return Ok(None);
                }
                let mut prefix = [0u8; PREFIX_LEN];
                copy_front(&self.take(PREFIX_LEN), &mut prefix);
                let len = frame_len(prefix)?;
                self.body_len = Some(len);
                len
            }
        };
        if self.have < len {
            return Ok(None);
        }
        self.body_len = None;
        let body = self.take(len);
        self.kept = self.pending.len();
        Ok(Some(body))
    }

    /// At the end of the stream: fine between frames, [`ProtocolError::Truncated`] inside one.
    pub fn finish(&self) -> Result<(), ProtocolError> {
        match (self.body_len, self.have) {
            (None, 0) => Ok(()),
            (None, got) => Err(ProtocolError::Truncated {
                got,
                expected: PREFIX_LEN,
            }),
            (Some(expected), got) => Err(ProtocolError::Truncated { got, expected }),
        }
    }

    /// Moves the copied bytes to the back of `pending` (no copy).
    fn flush_copied(&mut self) {
        if !self.copied.is_empty() {
            self.pending.push_back(self.copied.split().freeze());
        }
    }

    /// Takes the first `n` (at most `have`) bytes off the held pieces.
    fn take(&mut self, n: usize) -> Vec<Bytes> {
        self.flush_copied();
        let mut out = Vec::new();
        let mut left = n;
        while left > 0 {
            let Some(mut p) = self.pending.pop_front() else {
                break;
            };
            if p.len() > left {
                let rest = p.split_off(left);
                self.pending.push_front(rest);
            }
            left -= p.len();
            self.have -= p.len();
            out.push(p);
        }
        out
    }
}

/// Incremental decoder for callers that receive bytes in arbitrary pieces
/// (and for the fuzz harness): push bytes, pull complete messages. It cuts
/// frames with [`FramePieces`], as the bundle streams do.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    frames: FramePieces,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes. The buffer never holds more than one prefix
    /// plus one maximal frame plus this push, because [`Self::next`] refuses
    /// an oversize prefix before waiting for its body.
    pub fn push(&mut self, data: &[u8]) {
        self.frames.push(Bytes::copy_from_slice(data));
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.frames.buffered()
    }

    /// Returns the next complete message, `Ok(None)` if more bytes are needed.
    /// After an error the stream is unusable; the caller closes the connection.
    #[allow(
        clippy::should_implement_trait,
        reason = "fallible and generic over the message type, so not an Iterator"
    )]
    pub fn next<M: DeserializeOwned + Validate>(&mut self) -> Result<Option<M>, ProtocolError> {
        match self.frames.next_frame()? {
            Some(body) => decode_body(&body.concat()).map(Some),
            None => Ok(None),
        }
    }
}
