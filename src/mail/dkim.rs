//! DKIM signing (E-06), from `[dkim]`: every message is signed over the
//! headers a receiver needs to trust, including the unsubscribe headers.

use anyhow::Context;
use lettre::message::{
    dkim::{
        DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
        DkimSigningKey,
    },
    header::HeaderName,
};

use crate::config::{DkimAlgorithm, DkimConfig as Settings};

/// The headers every signature covers (E-06).
const SIGNED: [&str; 7] = [
    "From",
    "Subject",
    "Date",
    "To",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// The signing configuration, or `None` when `dkim.domain` is empty.
pub fn load(settings: &Settings) -> anyhow::Result<Option<DkimConfig>> {
    if settings.domain.is_empty() {
        return Ok(None);
    }
    let path = &settings.private_key_path;
    let key = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read dkim.private_key_path {}", path.display()))?;
    let algorithm = match settings.algorithm {
        DkimAlgorithm::Rsa => DkimSigningAlgorithm::Rsa,
        DkimAlgorithm::Ed25519 => DkimSigningAlgorithm::Ed25519,
    };
    let key = DkimSigningKey::new(key.trim(), algorithm).map_err(|e| {
        anyhow::anyhow!(
            "dkim.private_key_path {} is not a {:?} key: {e}",
            path.display(),
            settings.algorithm
        )
    })?;
    let headers = SIGNED
        .iter()
        .map(|name| HeaderName::new_from_ascii_str(name))
        .collect();
    let canonicalization = DkimCanonicalization {
        header: DkimCanonicalizationType::Relaxed,
        body: DkimCanonicalizationType::Relaxed,
    };
    Ok(Some(DkimConfig::new(
        settings.selector.clone(),
        settings.domain.clone(),
        key,
        headers,
        canonicalization,
    )))
}
