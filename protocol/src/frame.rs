//! Length-prefixed framing: a frame is a 4-byte big-endian length followed by
//! a postcard-encoded message of that many bytes (at most [`MAX_FRAME`]).
//!
//! Datagrams carry one postcard-encoded message with no prefix.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ProtocolError;
use crate::limits::{MAX_DATAGRAM, MAX_FRAME};
use crate::messages::Validate;

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
    let empty = crate::ServerMsg::AssetBundle {
        plugin_id,
        len,
        chunk_id,
        data: Vec::new(),
    };
    empty.validate()?;
    if data_len > crate::limits::CHUNK_SIZE {
        return Err(ProtocolError::FieldTooLong {
            field: "AssetBundle.data",
            len: data_len,
            max: crate::limits::CHUNK_SIZE,
            unit: "bytes",
        });
    }
    let end = u64::from(chunk_id) * crate::limits::CHUNK_SIZE as u64 + data_len as u64;
    if end > len {
        return Err(ProtocolError::InvalidField {
            field: "AssetBundle.chunk_id",
            reason: "chunk lies beyond the announced bundle length",
        });
    }
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
    let mut body = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = reader.read(&mut body[got..]).await?;
        if n == 0 {
            return Err(ProtocolError::Truncated { got, expected: len });
        }
        got += n;
    }
    decode_body(&body).map(Some)
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
