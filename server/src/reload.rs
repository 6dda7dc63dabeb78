//! Files a server reads again while it runs (certificates, token lists): a Secret mounted in
//! a pod changes in place, and a renewal must not need a restart.

use std::fmt::Display;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use remotemedia_runtime_core::serve::{TokenFileError, Tokens};

use crate::tls::{CertificateError, ReloadingCertificate, TlsFlags};

/// How often the files are read again. A mounted Secret's change reaches the pod within about
/// a minute (the kubelet's sync period); a few seconds more do not matter, and reading two
/// small files costs nothing.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// Calls `reload` every `every` for ever (drop the future, or abort its task, to stop). A
/// change is logged; a failure too, once until it changes, and what was loaded before stays
/// in use.
pub async fn keep_reloading<E: Display>(
    what: &str,
    every: Duration,
    mut reload: impl FnMut() -> Result<bool, E>,
) {
    let mut last_failure: Option<String> = None;
    loop {
        tokio::time::sleep(every).await;
        match reload() {
            Ok(true) => {
                tracing::info!("{what} reloaded");
                last_failure = None;
            }
            Ok(false) => last_failure = None,
            Err(e) => {
                let failure = e.to_string();
                if last_failure.as_ref() != Some(&failure) {
                    tracing::warn!(error = %failure, "{what} not reloaded; the previous one stays");
                    last_failure = Some(failure);
                }
            }
        }
    }
}

/// The tokens in `file`, if one is given, read again every [`RELOAD_EVERY`] from now on (a
/// rotated Secret needs no restart). Call within a tokio runtime.
///
/// # Errors
/// The file cannot be read now or holds no token.
pub fn reloading_tokens(file: Option<&Path>) -> Result<Option<Tokens>, TokenFileError> {
    let tokens = file.map(Tokens::from_file).transpose()?;
    if let Some(watched) = tokens.clone() {
        tokio::spawn(keep_reloading("token file", RELOAD_EVERY, move || {
            watched.reload()
        }));
    }
    Ok(tokens)
}

impl TlsFlags {
    /// The certificate these flags name, read again every [`RELOAD_EVERY`] from now on;
    /// `None` without `--tls-cert`. Call within a tokio runtime.
    ///
    /// # Errors
    /// The files cannot be read or do not hold a usable certificate and key.
    pub fn reloading_certificate(
        &self,
    ) -> Result<Option<Arc<ReloadingCertificate>>, CertificateError> {
        let Some(files) = self.files() else {
            return Ok(None);
        };
        let certificate = ReloadingCertificate::load(files)?;
        let watched = certificate.clone();
        tokio::spawn(keep_reloading("TLS certificate", RELOAD_EVERY, move || {
            watched.reload()
        }));
        Ok(Some(certificate))
    }

    /// The rustls configuration these flags ask for, offering `alpn`, with the certificate
    /// read again every [`RELOAD_EVERY`] from now on; `None` without `--tls-cert`. Call within
    /// a tokio runtime.
    ///
    /// # Errors
    /// The files cannot be read or do not hold a usable certificate and key.
    pub fn reloading_server_config(
        &self,
        alpn: &[&[u8]],
    ) -> Result<Option<Arc<rustls::ServerConfig>>, CertificateError> {
        Ok(self
            .reloading_certificate()?
            .map(|certificate| certificate.server_config(alpn)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn it_reloads_every_period_and_survives_failures() {
        let calls = Arc::new(Mutex::new(0_u32));
        let counted = calls.clone();
        let task = tokio::spawn(keep_reloading(
            "test file",
            Duration::from_secs(2),
            move || {
                let mut n = counted.lock().unwrap();
                *n += 1;
                match *n {
                    2 => Err("half written"),
                    3 => Ok(true),
                    _ => Ok(false),
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert_eq!(*calls.lock().unwrap(), 4, "every 2 s, through a failure");
        task.abort();
    }
}
