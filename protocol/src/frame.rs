//! Length-prefixed framing: a frame is a 4-byte big-endian length followed by
//! a postcard-encoded message of that many bytes (at most [`MAX_FRAME`]).
//!
//! Datagrams carry one postcard-encoded message with no prefix.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ProtocolError;
use crate::limits::{MAX_DATAGRAM, MAX_FRAME};
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
    len: u64,
    chunk_id: u32,
    data_len: usize,
) -> Result<Vec<u8>, ProtocolError> {
    check_asset_chunk(len, chunk_id, data_len)?;
    let empty = crate::ServerMsg::AssetBundle {
        plugin_id,
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
/// frame body it arrived in, so a receiver copies bundle bytes only into its
/// own store. Built only by [`decode_asset_chunk`], so it passed the same
/// checks as a decoded `ServerMsg::AssetBundle`.
#[derive(Debug)]
pub struct AssetChunk {
    /// The plugin whose bundle this is.
    pub plugin_id: u16,
    /// The whole bundle's length.
    pub len: u64,
    /// Index of this chunk (offset = `chunk_id * CHUNK_SIZE`).
    pub chunk_id: u32,
    body: Vec<u8>,
    data_at: usize,
}

impl AssetChunk {
    /// The chunk's bytes.
    pub fn data(&self) -> &[u8] {
        self.body.get(self.data_at..).unwrap_or_default()
    }
}

/// Decodes a frame body from a bundle stream as
/// `decode_frame::<ServerMsg>` would, without copying an `AssetBundle`'s
/// data out of it. `Ok(None)`: a valid message that is not a chunk.
pub fn decode_asset_chunk(body: Vec<u8>) -> Result<Option<AssetChunk>, ProtocolError> {
    let malformed = |reason: String| ProtocolError::Malformed {
        what: "bundle chunk",
        reason,
    };
    // postcard writes the variant and every integer as a varint, and the
    // data as its length then its bytes: `asset_chunk_header` builds the
    // same layout, and the tests hold both to `encode_frame`.
    let (variant, _) =
        postcard::take_from_bytes::<u32>(&body).map_err(|e| malformed(e.to_string()))?;
    if variant != asset_bundle_variant()? {
        return decode_frame::<crate::ServerMsg>(&body).map(|_| None);
    }
    let ((_, plugin_id, len, chunk_id, data_len), data) =
        postcard::take_from_bytes::<(u32, u16, u64, u32, usize)>(&body)
            .map_err(|e| malformed(e.to_string()))?;
    if data.len() != data_len {
        return Err(malformed(format!(
            "its data says {data_len} bytes but {} follow",
            data.len()
        )));
    }
    check_asset_chunk(len, chunk_id, data_len)?;
    let data_at = body.len() - data_len;
    Ok(Some(AssetChunk {
        plugin_id,
        len,
        chunk_id,
        body,
        data_at,
    }))
}

/// The variant index postcard writes for `ServerMsg::AssetBundle`.
fn asset_bundle_variant() -> Result<u32, ProtocolError> {
    static VARIANT: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    let found = VARIANT.get_or_init(|| {
        let empty = crate::ServerMsg::AssetBundle {
            plugin_id: 0,
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
            let msg = crate::ServerMsg::AssetBundle {
                plugin_id,
                len,
                chunk_id,
                data: data.clone(),
            };
            let body = encode_body(&msg).unwrap();
            let c = decode_asset_chunk(body).unwrap().expect("a chunk");
            assert_eq!((c.plugin_id, c.len, c.chunk_id), (plugin_id, len, chunk_id));
            assert_eq!(c.data(), &data[..]);
        }
    }

    #[test]
    fn a_chunk_read_in_place_is_checked_like_the_decoded_message() {
        let chunk = |len: u64, chunk_id: u32, data: Vec<u8>| {
            // Encoded without the sender's checks, as a hostile server could.
            postcard::to_stdvec(&crate::ServerMsg::AssetBundle {
                plugin_id: 1,
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
                len,
                chunk_id,
                data: data.clone(),
            };
            let mut ours = asset_chunk_header(300, len, chunk_id, data_len).unwrap();
            ours.extend_from_slice(&data);
            assert_eq!(
                ours,
                encode_frame(&msg).unwrap(),
                "{len} {chunk_id} {data_len}"
            );
        }
        assert!(asset_chunk_header(1, 10, 0, 11).is_err());
        assert!(asset_chunk_header(1, 10_000_000, 0, CHUNK_SIZE + 1).is_err());
    }
}

/// Incremental decoder for callers that receive bytes in arbitrary pieces
/// (and for the fuzz harness): push bytes, pull complete messages.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
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
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Returns the next complete message, `Ok(None)` if more bytes are needed.
    /// After an error the stream is unusable; the caller closes the connection.
    #[allow(
        clippy::should_implement_trait,
        reason = "fallible and generic over the message type, so not an Iterator"
    )]
    pub fn next<M: DeserializeOwned + Validate>(&mut self) -> Result<Option<M>, ProtocolError> {
        if self.buf.len() < PREFIX_LEN {
            return Ok(None);
        }
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&self.buf[..PREFIX_LEN]);
        let len = frame_len(prefix)?;
        if self.buf.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        let msg = decode_body(&self.buf[PREFIX_LEN..PREFIX_LEN + len]);
        self.buf.drain(..PREFIX_LEN + len);
        msg.map(Some)
    }
}
