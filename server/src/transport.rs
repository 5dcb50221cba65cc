//! The QUIC transport the server offers every connection: idle timeout,
//! stream counts, the send window that the bundle budget leases, and the
//! congestion controller (`congestion` in `server.toml`).
//!
//! Bundles reach players over Wi-Fi and mobile links, where packets are lost
//! at random with no congestion behind the loss. A loss-based controller
//! (Cubic, quinn's default, or NewReno) halves its window at every such loss,
//! and a 5 MB bundle over an 80 ms round trip with 1% loss takes tens of
//! seconds. BBR instead paces at the bottleneck rate and round trip it
//! measures and does not read a random loss as congestion, so it is the default.

use std::sync::Arc;

use serde::Deserialize;
use shard_protocol::limits::BUNDLE_SEND_WINDOW;

use crate::config::ServerConfig;
use crate::tuning;

/// The congestion controller of every connection (`congestion` in `server.toml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Congestion {
    /// BBR: model-based, keeps its rate through random loss (the default).
    #[default]
    Bbr,
    /// Cubic: loss-based (quinn's own default); slows to a crawl on lossy links.
    Cubic,
    /// NewReno: the classic loss-based controller, for comparison.
    NewReno,
}

/// The transport every connection of a server with `cfg` gets.
pub fn server_transport(cfg: &ServerConfig) -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    let idle_ms = u32::try_from(cfg.idle_timeout_secs.saturating_mul(1000)).unwrap_or(u32::MAX);
    transport
        .max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(
            idle_ms,
        ))))
        // The most a connection may have sent and not yet had acknowledged:
        // the unit of the server-wide bundle budget, and at least the
        // bandwidth-delay product of a player's link (see `BUNDLE_SEND_WINDOW`).
        .send_window(BUNDLE_SEND_WINDOW)
        .datagram_receive_buffer_size(Some(tuning::DATAGRAM_BUFFER))
        .datagram_send_buffer_size(tuning::DATAGRAM_BUFFER)
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(0))
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(1));
    match cfg.congestion {
        Congestion::Bbr => {
            let mut bbr = quinn::congestion::BbrConfig::default();
            bbr.initial_window(tuning::BBR_INITIAL_WINDOW);
            transport.congestion_controller_factory(Arc::new(bbr))
        }
        // The loss-based ones keep quinn's defaults: they are there to compare with.
        Congestion::Cubic => transport
            .congestion_controller_factory(Arc::new(quinn::congestion::CubicConfig::default())),
        Congestion::NewReno => transport
            .congestion_controller_factory(Arc::new(quinn::congestion::NewRenoConfig::default())),
    };
    transport
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbr_is_the_default_and_every_controller_parses() {
        assert_eq!(ServerConfig::default().congestion, Congestion::Bbr);
        for (text, want) in [
            ("bbr", Congestion::Bbr),
            ("cubic", Congestion::Cubic),
            ("newreno", Congestion::NewReno),
        ] {
            let cfg = ServerConfig::parse(&format!("congestion = \"{text}\""), "test").unwrap();
            assert_eq!(cfg.congestion, want);
            // Builds for each.
            let _ = server_transport(&cfg);
        }
        let err = ServerConfig::parse("congestion = \"reno\"", "test").unwrap_err();
        assert!(err.to_string().contains("congestion"), "{err}");
    }
}
