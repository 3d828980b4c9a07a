//! HTTP requests the service makes to addresses others chose (an editor's
//! feed, an admin's webhook endpoint), S-04-safe: http(s) only, and every
//! connection's address checked after DNS, redirects included, so a name
//! cannot rebind to an inside address.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    redirect,
};

use crate::domain::{Reach, check_url};

/// A client whose every connection, and each of at most `redirects`
/// redirects, stays within `reach`; `role` is named in the user agent.
pub fn guarded_client(
    reach: Reach,
    role: &str,
    timeout: Duration,
    redirects: usize,
) -> anyhow::Result<reqwest::Client> {
    let checked = reach.clone();
    reqwest::Client::builder()
        // Through a proxy, only the proxy's name would be resolved (and
        // checked): the target's own host must be.
        .no_proxy()
        .timeout(timeout)
        .user_agent(format!("Broadsheet/{} ({role})", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(CheckingResolver { reach }))
        .redirect(if redirects == 0 {
            // A redirect is then an answer like any other (a 3xx).
            redirect::Policy::none()
        } else {
            redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= redirects {
                    return attempt.error(format!("more than {redirects} redirects"));
                }
                match check_url(attempt.url(), &checked) {
                    Ok(()) => attempt.follow(),
                    Err(reason) => attempt.error(format!("redirect refused: {reason}")),
                }
            })
        })
        .build()
        .with_context(|| format!("cannot set up the {role} client"))
}

/// Resolves names with the system resolver and keeps the addresses within
/// reach only.
struct CheckingResolver {
    reach: Reach,
}

impl Resolve for CheckingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let reach = self.reach.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| reach.allows(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}
