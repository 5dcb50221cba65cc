//! TLS identities for QUIC: each server and each player owns a key pair and a
//! self-signed certificate; the SHA-256 of the public key (SubjectPublicKeyInfo
//! DER) is its fingerprint — the player id, and what clients pin for servers.
//!
//! Both sides build their rustls/quinn configs here so the trust rules exist
//! once: a server accepts any self-signed client certificate whose possession
//! the TLS handshake proves; a client accepts only the server key it expects.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::ALPN;

/// Server name carried in SNI; the verifiers pin keys, not names.
pub const SERVER_NAME: &str = "shard";

/// Why an identity or TLS configuration could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The key file could not be read or written.
    #[error("identity file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file exists but does not hold a certificate and a private key.
    #[error(
        "identity file {path} is not a shard identity ({reason}); move it away to create a new one"
    )]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Key generation or TLS configuration failed.
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// Why a key fingerprint could not be had: from a certificate or from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    /// The certificate (DER) does not parse as X.509.
    #[error("certificate does not parse: {0}")]
    Certificate(String),
    /// The text is not 64 hex digits.
    #[error("`{0}` is not a key fingerprint (expected 64 hex digits)")]
    NotHex(String),
}

/// A SHA-256 key fingerprint, printed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Fingerprint of a DER certificate: SHA-256 of its SubjectPublicKeyInfo,
    /// so a re-issued certificate for the same key keeps the same identity.
    pub fn of_cert(cert_der: &[u8]) -> Result<Self, FingerprintError> {
        let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|e| FingerprintError::Certificate(e.to_string()))?;
        Ok(Self(
            Sha256::digest(cert.tbs_certificate.subject_pki.raw).into(),
        ))
    }

    /// Parses 64 hex digits (as printed by `whoami` or the server at start).
    pub fn parse(s: &str) -> Result<Self, FingerprintError> {
        let s = s.trim();
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| FingerprintError::NotHex(s.to_owned()))?;
        Ok(Self(out))
    }

    /// Lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// A key pair with its self-signed certificate.
pub struct Identity {
    /// Certificate, DER.
    pub cert: CertificateDer<'static>,
    /// PKCS#8 private key, DER.
    key_der: Vec<u8>,
    /// Fingerprint of `cert`'s public key.
    pub fingerprint: Fingerprint,
    /// The PEM text (certificate then key) this identity is stored as.
    pem: String,
}

impl Identity {
    /// Creates a fresh identity (ECDSA P-256) for `subject`.
    pub fn generate(subject: &str) -> Result<Self, IdentityError> {
        let ck = rcgen::generate_simple_self_signed(vec![subject.to_string()])
            .map_err(|e| IdentityError::Tls(e.to_string()))?;
        let cert = ck.cert.der().clone();
        let fingerprint =
            Fingerprint::of_cert(&cert).map_err(|e| IdentityError::Tls(e.to_string()))?;
        let pem = format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem());
        Ok(Self {
            cert,
            key_der: ck.signing_key.serialize_der(),
            fingerprint,
            pem,
        })
    }

    /// Loads the identity at `path`, creating it (and its folder) on first use.
    /// The file is written atomically with mode 0600 so a crash never leaves
    /// half a key and other users cannot read it.
    pub fn load_or_create(path: &Path, subject: &str) -> Result<(Self, bool), IdentityError> {
        let io = |source| IdentityError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read(path) {
            Ok(bytes) => Ok((Self::from_pem(path, &bytes)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Self::generate(subject)?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let tmp = path.with_extension("tmp");
                write_private(&tmp, id.to_pem().as_bytes()).map_err(io)?;
                std::fs::rename(&tmp, path).map_err(io)?;
                Ok((id, true))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn from_pem(path: &Path, bytes: &[u8]) -> Result<Self, IdentityError> {
        let invalid = |reason: String| IdentityError::Invalid {
            path: path.display().to_string(),
            reason,
        };
        let cert = CertificateDer::pem_slice_iter(bytes)
            .next()
            .ok_or_else(|| invalid("no CERTIFICATE block".into()))?
            .map_err(|e| invalid(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(bytes)
            .map_err(|e| invalid(format!("private key: {e}")))?;
        let fingerprint = Fingerprint::of_cert(&cert).map_err(|e| invalid(e.to_string()))?;
        let pem = String::from_utf8_lossy(bytes).into_owned();
        Ok(Self {
            cert,
            key_der: key.secret_der().to_vec(),
            fingerprint,
            pem,
        })
    }

    /// PEM text holding the certificate and the private key.
    pub fn to_pem(&self) -> &str {
        &self.pem
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_der.clone().into())
    }

    /// QUIC server configuration: presents this identity and requires a client
    /// certificate (any self-signed one; the handshake proves key possession).
    pub fn quic_server_config(&self) -> Result<quinn::ServerConfig, IdentityError> {
        let provider = provider();
        let verifier = Arc::new(AnyClientKey {
            algs: provider.signature_verification_algorithms,
        });
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| IdentityError::Tls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.cert.clone()], self.key())
            .map_err(|e| IdentityError::Tls(e.to_string()))?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|e| IdentityError::Tls(e.to_string()))?;
        Ok(quinn::ServerConfig::with_crypto(Arc::new(quic)))
    }

    /// QUIC client configuration presenting this identity and accepting only a
    /// server whose key matches `pin` (or any key when `pin` is `None`, trust
    /// on first use). The key actually seen is recorded in the returned
    /// [`SeenServerKey`] so the caller can pin it or explain a refusal.
    pub fn quic_client_config(
        &self,
        pin: Option<Fingerprint>,
    ) -> Result<(quinn::ClientConfig, SeenServerKey), IdentityError> {
        let provider = provider();
        let seen = SeenServerKey::default();
        let verifier = Arc::new(PinnedServerKey {
            pin,
            seen: seen.clone(),
            algs: provider.signature_verification_algorithms,
        });
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| IdentityError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(vec![self.cert.clone()], self.key())
            .map_err(|e| IdentityError::Tls(e.to_string()))?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|e| IdentityError::Tls(e.to_string()))?;
        Ok((quinn::ClientConfig::new(Arc::new(quic)), seen))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The handshake-signature half shared by both verifiers: TLS 1.3 only,
/// checked with the provider's algorithms (`self.algs`).
macro_rules! tls13_signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("TLS 1.2 is not offered".into()))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algs.supported_schemes()
        }
    };
}

/// The server key a client saw during its last handshake.
#[derive(Clone, Default, Debug)]
pub struct SeenServerKey(Arc<Mutex<Option<Fingerprint>>>);

impl SeenServerKey {
    /// The fingerprint seen, if a handshake got that far.
    pub fn get(&self) -> Option<Fingerprint> {
        self.0.lock().ok().and_then(|g| *g)
    }
}

/// Client-side verifier: the server's key must equal the pin, if any.
#[derive(Debug)]
struct PinnedServerKey {
    pin: Option<Fingerprint>,
    seen: SeenServerKey,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServerKey {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp =
            Fingerprint::of_cert(end_entity).map_err(|e| rustls::Error::General(e.to_string()))?;
        if let Ok(mut g) = self.seen.0.lock() {
            *g = Some(fp);
        }
        match self.pin {
            Some(pin) if pin != fp => Err(rustls::Error::General(format!(
                "server key {fp} does not match the pinned key {pin}"
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    tls13_signature_checks!();
}

/// Server-side verifier: any well-formed self-signed client certificate; the
/// TLS 1.3 CertificateVerify signature proves the client holds its key.
#[derive(Debug)]
struct AnyClientKey {
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientKey {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Fingerprint::of_cert(end_entity).map_err(|e| rustls::Error::General(e.to_string()))?;
        Ok(ClientCertVerified::assertion())
    }

    tls13_signature_checks!();
}

/// Fingerprint of the certificate a QUIC peer presented, if any.
pub fn peer_fingerprint(conn: &quinn::Connection) -> Option<Fingerprint> {
    let any = conn.peer_identity()?;
    let certs = any.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    Fingerprint::of_cert(certs.first()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_through_its_file_and_keeps_its_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/identity.pem");
        let (a, created) = Identity::load_or_create(&path, "shard-player").unwrap();
        assert!(created);
        let (b, created) = Identity::load_or_create(&path, "shard-player").unwrap();
        assert!(!created);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(
            Fingerprint::parse(&a.fingerprint.to_hex()).unwrap(),
            a.fingerprint
        );
    }

    #[test]
    fn a_corrupt_identity_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.pem");
        std::fs::write(&path, "not a key").unwrap();
        let err = Identity::load_or_create(&path, "x").err().unwrap();
        assert!(err.to_string().contains("not a shard identity"), "{err}");
    }

    #[test]
    fn fingerprint_parse_refuses_non_hex() {
        assert!(Fingerprint::parse("xyz").is_err());
        assert!(Fingerprint::parse(&"ab".repeat(31)).is_err());
    }
}
