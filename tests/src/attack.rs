//! A hostile client for tests and benchmarks: a raw QUIC connection built on
//! the protocol crate that says `Hello` (any name, even one the real client
//! would refuse to send) and then does exactly what its caller tells it —
//! flood requests, never read, lie, or go silent.
#![allow(
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test data: sizes and indices are small and known"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shard_protocol::frame::{read_frame, write_frame};
use shard_protocol::identity::{Fingerprint, Identity, SERVER_NAME};
use shard_protocol::{BundleRequest, ClientMsg, PROTOCOL_VERSION, ServerMsg};

/// An attacking connection.
pub struct Raw {
    _ep: quinn::Endpoint,
    /// The QUIC connection (its stats count bytes both ways).
    pub conn: quinn::Connection,
    send: quinn::SendStream,
    /// The control stream from the server.
    pub recv: quinn::RecvStream,
}

/// A `Hello` frame encoded by hand (postcard: variant 0, length-prefixed
/// name, version), since the protocol crate refuses to encode an invalid name.
pub fn raw_hello(name: &str) -> Vec<u8> {
    let len = u8::try_from(name.len())
        .ok()
        .filter(|n| *n < 128)
        .expect("a short name");
    let version = u8::try_from(PROTOCOL_VERSION)
        .ok()
        .filter(|v| *v < 128)
        .expect("a one-byte version");
    let mut body = vec![0u8, len];
    body.extend_from_slice(name.as_bytes());
    body.push(version);
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

impl Raw {
    /// Connects from `bind` (another loopback address counts as another
    /// source) with a fresh key and says `Hello` as `name`.
    pub async fn connect(
        addr: SocketAddr,
        server_key: Fingerprint,
        bind: &str,
        name: &str,
    ) -> Result<Raw, String> {
        let id = Identity::generate("attacker").map_err(|e| e.to_string())?;
        Raw::connect_as(&id, addr, server_key, bind, name).await
    }

    /// Like [`Raw::connect`] with a given key.
    pub async fn connect_as(
        id: &Identity,
        addr: SocketAddr,
        server_key: Fingerprint,
        bind: &str,
        name: &str,
    ) -> Result<Raw, String> {
        let (cfg, _) = id
            .quic_client_config(Some(server_key))
            .map_err(|e| e.to_string())?;
        let bind: SocketAddr = bind.parse().map_err(|e| format!("{bind}: {e}"))?;
        let mut ep = shard_client::session::client_endpoint(bind).map_err(|e| e.to_string())?;
        ep.set_default_client_config(cfg);
        let conn = ep
            .connect(addr, SERVER_NAME)
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        let (mut send, recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(&raw_hello(name))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Raw {
            _ep: ep,
            conn,
            send,
            recv,
        })
    }

    /// Sends one control message; false once the stream is gone.
    pub async fn send(&mut self, msg: &ClientMsg) -> bool {
        write_frame(&mut self.send, msg).await.is_ok()
    }

    /// The next control frame, `None` once the stream ends or after 10 s.
    pub async fn next(&mut self) -> Option<ServerMsg> {
        match tokio::time::timeout(
            Duration::from_secs(10),
            read_frame::<ServerMsg, _>(&mut self.recv),
        )
        .await
        {
            Ok(Ok(Some(m))) => Some(m),
            _ => None,
        }
    }

    /// Whether the server welcomed us; otherwise how it closed the connection.
    pub async fn welcomed(&mut self) -> Result<(), (u32, String)> {
        match self.next().await {
            Some(ServerMsg::Welcome { .. }) => Ok(()),
            _ => Err(self.closed(Duration::from_secs(30)).await),
        }
    }

    /// Reads control frames until a bundle is announced; the request for it.
    pub async fn announcement(&mut self) -> Option<(BundleRequest, u64)> {
        loop {
            if let ServerMsg::PluginAnnounce {
                plugin_id,
                bundle_sha256,
                bundle_len,
                ..
            } = self.next().await?
            {
                let req = BundleRequest {
                    plugin_id,
                    sha256: bundle_sha256,
                    offset: 0,
                };
                return Some((req, bundle_len));
            }
        }
    }

    /// The close code and reason, waiting up to `wait` for the server to close
    /// (`u32::MAX` and the error text when it closed otherwise or not at all).
    pub async fn closed(&self, wait: Duration) -> (u32, String) {
        match tokio::time::timeout(wait, self.conn.closed()).await {
            Ok(quinn::ConnectionError::ApplicationClosed(c)) => (
                u32::try_from(c.error_code.into_inner()).unwrap_or(u32::MAX),
                String::from_utf8_lossy(&c.reason).into_owned(),
            ),
            Ok(other) => (u32::MAX, other.to_string()),
            Err(_) => (u32::MAX, "still open".into()),
        }
    }

    /// UDP bytes this client received (what the server sent it).
    pub fn bytes_in(&self) -> u64 {
        self.conn.stats().udp_rx.bytes
    }

    /// UDP bytes this client sent.
    pub fn bytes_out(&self) -> u64 {
        self.conn.stats().udp_tx.bytes
    }

    /// Reads every bundle stream the server opens to the end, in the
    /// background; the counter is the number of streams read completely.
    pub fn drain_bundles(&self) -> Arc<AtomicU64> {
        let done = Arc::new(AtomicU64::new(0));
        let count = done.clone();
        let conn = self.conn.clone();
        tokio::spawn(async move {
            while let Ok(mut s) = conn.accept_uni().await {
                let count = count.clone();
                tokio::spawn(async move {
                    if s.read_to_end(16 * 1024 * 1024).await.is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_encoded_hello_matches_the_codec() {
        let ok = ClientMsg::Hello {
            name: "vee".into(),
            protocol_version: PROTOCOL_VERSION,
        };
        assert_eq!(shard_protocol::encode_frame(&ok).unwrap(), raw_hello("vee"));
    }
}
