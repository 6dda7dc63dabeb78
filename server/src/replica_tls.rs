//! TLS between replicas of one server: each presents the same certificate (the Pipeline's TLS
//! Secret, mounted in every pod), so a replica calling another trusts exactly the certificate
//! it presents itself. No CA is needed, and a name check would fail anyway: replicas are
//! called by pod IP, which a public certificate does not name.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::tls::{ReloadingCertificate, provider};

impl ReloadingCertificate {
    /// A rustls client configuration that accepts a server presenting the same end-entity
    /// certificate as this one presents now (offering `alpn`). During a renewal replicas may
    /// briefly present different ones; calls between them fail until both have reloaded.
    #[must_use]
    pub fn client_config_for_replicas(self: &Arc<Self>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let provider = provider();
        let verifier = PresentsOurs {
            certificate: self.clone(),
            algorithms: provider.signature_verification_algorithms,
        };
        let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            // Cannot fail: the provider is rustls' own, with its default versions.
            .expect("ring supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// Trusts a server whose end-entity certificate is ours; its handshake signatures are still
/// checked, so only a holder of our private key passes.
#[derive(Debug)]
struct PresentsOurs {
    certificate: Arc<ReloadingCertificate>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PresentsOurs {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ours = self.certificate.current();
        let ours = ours.end_entity_cert()?;
        if ours.as_ref() == end_entity.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use super::*;
    use crate::tls::CertificateFiles;

    fn certificate(dir: &std::path::Path, name: &str) -> Arc<ReloadingCertificate> {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let files = CertificateFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, cert.cert.pem()).unwrap();
        std::fs::write(&files.key, cert.signing_key.serialize_pem()).unwrap();
        ReloadingCertificate::load(files).unwrap()
    }

    /// A handshake from a client holding `client` to a server presenting `server`: whether it
    /// completes and a byte goes through.
    async fn handshake(
        client: &Arc<ReloadingCertificate>,
        server: &Arc<ReloadingCertificate>,
    ) -> bool {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let address = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(server.server_config(&[]));
        let serving = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let _ = tls.write_all(b"!").await;
                let _ = tls.shutdown().await;
            }
        });
        let connector = TlsConnector::from(client.client_config_for_replicas(&[]));
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let name = ServerName::IpAddress(address.ip().into());
        let mut byte = [0u8; 1];
        let passed = match connector.connect(name, tcp).await {
            Ok(mut tls) => tls.read_exact(&mut byte).await.is_ok(),
            Err(_) => false,
        };
        serving.await.unwrap();
        passed && byte == *b"!"
    }

    #[tokio::test]
    async fn a_replica_trusts_only_the_certificate_it_presents() {
        let dir = tempfile::tempdir().unwrap();
        let ours = certificate(dir.path(), "whip.example.net");
        let same = ReloadingCertificate::load(ours.files().clone()).unwrap();
        let other = certificate(dir.path(), "other.example.net");
        // Called by IP, which the certificate does not name: still trusted, being ours.
        assert!(handshake(&ours, &same).await);
        assert!(!handshake(&ours, &other).await);
    }
}
