//! What a player accepts from an asset mirror, written once: the file a
//! mirror serves for a bundle, where its redirects may lead and which
//! answers are refused from their head alone. The client's downloads, the
//! server's `publish-bundles` and its checks of the mirrors all use
//! these, so the checks report exactly what players would refuse.

/// The file name of a bundle on an asset mirror, `<sha256 hex>.bundle`: a
/// mirror serves nothing else (`<mirror><name>`), and the server that
/// publishes and checks it and the client that fetches it name it here.
pub fn bundle_file_name(sha256: &[u8; 32]) -> String {
    format!("{}.bundle", hex::encode(sha256))
}

/// Whether a redirect from a mirror may be followed to `to`: only to a host
/// on the mirror list (same scheme, host and port as one of `mirrors`), so
/// a mirror cannot send players elsewhere. The client's downloads and the
/// server's checks of the mirrors follow exactly these.
pub fn redirect_allowed(mirrors: &[url::Url], to: &url::Url) -> bool {
    let origin = |u: &url::Url| {
        (
            u.scheme().to_owned(),
            u.host_str().unwrap_or_default().to_ascii_lowercase(),
            u.port_or_known_default(),
        )
    };
    let to = origin(to);
    mirrors.iter().any(|m| origin(m) == to)
}

/// Why players refuse a mirror's answer for a bundle, seen from its head
/// alone (status aside), before any byte of its body is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MirrorAnswerProblem {
    /// Compressed on the way (a CDN compressing every answer, or nginx's
    /// `gzip_static always`): its bytes are not the bundle's. The header
    /// comes last, so a long one is what a capped reason loses.
    #[error(
        "the mirror sent the file compressed; bundles are zstd already and must be served as they are: turn compression off for .bundle files (it sent Content-Encoding: {encoding})"
    )]
    Encoded {
        /// The encoding it named.
        encoding: String,
    },
    /// Another length than the bundle's; with `web_page`, the answer was an
    /// HTML page, as a host sends for a file it does not have while
    /// answering 200 (a "soft 404": single-page-app hosting, an S3
    /// website's error document).
    #[error("serves {got} bytes, but the bundle is {expected}{}", if *.web_page { SOFT_404 } else { "" })]
    WrongLength {
        /// The length the answer declares (with a resumed request, what the
        /// download holds plus the rest it declares).
        got: u64,
        /// The bundle's length.
        expected: u64,
        /// The answer's `Content-Type` is `text/html`.
        web_page: bool,
    },
}

/// What a soft 404 adds to [`MirrorAnswerProblem::WrongLength`]'s reason.
const SOFT_404: &str = ": it answered with a web page (Content-Type: text/html), as a host does for a file it does not have; is the bundle uploaded under this name?";

/// Checks the head of a mirror's answer for a bundle of `expected` bytes:
/// `content_encoding` and `content_type` as sent, `length` the whole file's
/// length the answer implies (`None` when it declares none, as a chunked
/// answer). A missing or `identity` encoding and a matching or unknown
/// length pass; the body is still capped and hashed as it arrives.
pub fn check_mirror_answer(
    content_encoding: Option<&[u8]>,
    content_type: Option<&[u8]>,
    length: Option<u64>,
    expected: u64,
) -> Result<(), MirrorAnswerProblem> {
    if let Some(encoding) = content_encoding {
        let encoding = String::from_utf8_lossy(encoding).trim().to_string();
        if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity") {
            return Err(MirrorAnswerProblem::Encoded { encoding });
        }
    }
    match length {
        Some(got) if got != expected => {
            let web_page = content_type.is_some_and(|t| {
                let t = String::from_utf8_lossy(t);
                let t = t.trim_start();
                t.get(..9)
                    .is_some_and(|m| m.eq_ignore_ascii_case("text/html"))
            });
            Err(MirrorAnswerProblem::WrongLength {
                got,
                expected,
                web_page,
            })
        }
        _ => Ok(()),
    }
}

/// How a mirror's answer with another status than 200 or 206 reads in a
/// reason: `HTTP status 404 Not Found`, and for 403 the likely cause, since
/// an S3 bucket (and a CDN in front of one) answers 403, not 404, for a
/// file that was never uploaded.
pub fn status_reason(code: u16, text: Option<&str>) -> String {
    let mut out = format!("HTTP status {code}");
    if let Some(t) = text {
        out.push(' ');
        out.push_str(t);
    }
    if code == 403 {
        out.push_str(" (S3 and a CDN in front of it answer 403 for a file that is not there: is it uploaded, and readable by all?)");
    }
    out
}

/// Why an extra mirror CA file cannot be used.
#[cfg(feature = "identity")]
#[derive(Debug, thiserror::Error)]
pub enum MirrorCaError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Larger than any CA bundle.
    #[error("{path}: larger than {max} bytes; a CA certificate file is a few KiB")]
    TooLarge {
        /// The file.
        path: String,
        /// The limit.
        max: u64,
    },
    /// No certificate in it.
    #[error("{path}: no PEM certificate in it (a block starting -----BEGIN CERTIFICATE-----)")]
    NoCertificate {
        /// The file.
        path: String,
    },
}

/// Reads the extra CA certificate(s) for HTTPS mirrors from `path` (PEM),
/// refusing a file that holds no certificate or is too large, so a wrong
/// file is reported when the player starts instead of as an untrusted
/// mirror later: the one reader for `--mirror-ca` and the C ABI's
/// `"mirror_ca"`, and for the server's `mirror_ca` (its checks of the mirrors).
#[cfg(feature = "identity")]
pub fn read_mirror_ca(path: &std::path::Path) -> Result<Vec<u8>, MirrorCaError> {
    use std::io::Read;
    let shown = || path.display().to_string();
    let read_err = |source| MirrorCaError::Read {
        path: shown(),
        source,
    };
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(crate::limits::MAX_MIRROR_CA_BYTES + 1)
                .read_to_end(&mut pem)
        })
        .map_err(read_err)?;
    if pem.len() as u64 > crate::limits::MAX_MIRROR_CA_BYTES {
        return Err(MirrorCaError::TooLarge {
            path: shown(),
            max: crate::limits::MAX_MIRROR_CA_BYTES,
        });
    }
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    if CertificateDer::pem_slice_iter(&pem).any(|c| c.is_ok()) {
        Ok(pem)
    } else {
        Err(MirrorCaError::NoCertificate { path: shown() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_is_allowed_only_to_a_host_on_the_mirror_list() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        let list = [
            u("https://cdn.example.net/shard/"),
            u("http://10.0.0.2:8080/a/"),
        ];
        assert!(redirect_allowed(
            &list,
            &u("https://CDN.example.net/other/x.bundle")
        ));
        assert!(redirect_allowed(&list, &u("http://10.0.0.2:8080/b")));
        // Another scheme, port or host is another origin.
        assert!(!redirect_allowed(
            &list,
            &u("http://cdn.example.net/shard/x")
        ));
        assert!(!redirect_allowed(&list, &u("http://10.0.0.2/a/x")));
        assert!(!redirect_allowed(&list, &u("https://evil.example/shard/x")));
    }

    #[cfg(feature = "identity")]
    #[test]
    fn a_mirror_ca_file_must_hold_a_certificate_and_be_small() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let cert = rcgen::generate_simple_self_signed(vec!["mirror.test".into()]).unwrap();
        let good = write("ca.pem", cert.cert.pem().as_bytes());
        assert_eq!(read_mirror_ca(&good).unwrap(), cert.cert.pem().as_bytes());
        for (name, bytes) in [
            ("junk.pem", b"junk\n".to_vec()),
            ("empty.pem", Vec::new()),
            ("key.pem", cert.signing_key.serialize_pem().into_bytes()),
        ] {
            let err = read_mirror_ca(&write(name, &bytes)).unwrap_err();
            assert!(
                matches!(err, MirrorCaError::NoCertificate { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
        let huge = write(
            "huge.pem",
            &vec![b'a'; usize::try_from(crate::limits::MAX_MIRROR_CA_BYTES).unwrap() + 1],
        );
        assert!(matches!(
            read_mirror_ca(&huge),
            Err(MirrorCaError::TooLarge { .. })
        ));
        let missing = read_mirror_ca(&dir.path().join("missing.pem")).unwrap_err();
        assert!(matches!(missing, MirrorCaError::Read { .. }), "{missing}");
    }

    #[test]
    fn a_status_reads_with_its_text_and_a_403_with_its_likely_cause() {
        assert_eq!(
            status_reason(404, Some("Not Found")),
            "HTTP status 404 Not Found"
        );
        assert_eq!(status_reason(599, None), "HTTP status 599");
        let s3 = status_reason(403, Some("Forbidden"));
        assert!(s3.starts_with("HTTP status 403 Forbidden (S3"), "{s3}");
        assert!(s3.contains("is it uploaded"), "{s3}");
    }

    #[test]
    fn a_compressed_answer_is_refused_whatever_its_length() {
        let gz = check_mirror_answer(Some(b" gzip "), None, Some(10), 10);
        assert_eq!(
            gz,
            Err(MirrorAnswerProblem::Encoded {
                encoding: "gzip".into()
            })
        );
        assert!(check_mirror_answer(Some(b"identity"), None, Some(10), 10).is_ok());
        assert!(check_mirror_answer(Some(b"IDENTITY"), None, None, 10).is_ok());
        assert!(check_mirror_answer(Some(b""), None, Some(10), 10).is_ok());
    }

    #[test]
    fn another_length_is_refused_and_a_web_page_is_named_as_such() {
        assert!(check_mirror_answer(None, None, Some(10), 10).is_ok());
        // No declared length: the body's cap and hash decide.
        assert!(check_mirror_answer(None, Some(b"text/html"), None, 10).is_ok());
        let short =
            check_mirror_answer(None, Some(b"application/octet-stream"), Some(3), 10).unwrap_err();
        assert_eq!(short.to_string(), "serves 3 bytes, but the bundle is 10");
        let page = check_mirror_answer(None, Some(b"Text/HTML; charset=utf-8"), Some(162), 10)
            .unwrap_err();
        let why = page.to_string();
        assert!(
            why.starts_with("serves 162 bytes, but the bundle is 10: it answered with a web page"),
            "{why}"
        );
        assert!(
            why.ends_with("is the bundle uploaded under this name?"),
            "{why}"
        );
        // Neither a short type nor an invalid one panics.
        assert!(check_mirror_answer(None, Some(b"text"), Some(1), 10).is_err());
        assert!(check_mirror_answer(None, Some(&[0xff, 0xfe]), Some(1), 10).is_err());
    }
}
