//! `broadsheet webhook list|add|enable|disable|remove`: the outgoing
//! webhooks' endpoints from the command line, audited as `cli`.

use clap::Subcommand;

use crate::{
    audit::Actor,
    clock::Clock,
    config::Config,
    privacy::rfc3339,
    store::{Store, webhook_endpoints::EndpointRow},
    webhook_endpoints::WebhookEndpoints,
};

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Every endpoint: id, state, events waiting, address and event types.
    List,
    /// Send events to a URL; prints the endpoint's id, then its secret
    /// (`whsec_…`, shown this once), each on a line of its own.
    Add {
        url: String,
        /// The event types, with commas (all if not given), e.g.
        /// `subscriber.confirmed,subscriber.unsubscribed`.
        #[arg(long, default_value = "")]
        events: String,
        /// What it is for, for the console.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Turn an endpoint back on; the events waiting for it are sent at once.
    Enable { id: String },
    /// Stop sending to an endpoint; new events are not queued for it.
    Disable { id: String },
    /// Remove an endpoint and the events waiting for it.
    Remove { id: String },
}

#[allow(clippy::print_stdout)] // stdout is these commands' interface
pub async fn run(config: &Config, command: WebhookCommand) -> anyhow::Result<()> {
    let store = Store::connect(&config.database).await?;
    store.migrate().await?;
    let endpoints = WebhookEndpoints::new(&store, &Clock::default(), &config.outgoing_webhooks);
    let actor = Actor::cli();
    let done = match command {
        WebhookCommand::List => {
            for endpoint in endpoints.list().await? {
                println!("{}", line(&endpoint));
            }
            Ok(())
        }
        WebhookCommand::Add {
            url,
            events,
            description,
        } => endpoints
            .add(&url, &events, &description, &actor)
            .await?
            .map(|added| println!("{}\n{}", added.endpoint.id, added.secret)),
        WebhookCommand::Enable { id } => endpoints
            .set_enabled(&id, true, &actor)
            .await?
            .map(|endpoint| println!("{}", line(&endpoint))),
        WebhookCommand::Disable { id } => endpoints
            .set_enabled(&id, false, &actor)
            .await?
            .map(|endpoint| println!("{}", line(&endpoint))),
        WebhookCommand::Remove { id } => endpoints
            .remove(&id, &actor)
            .await?
            .map(|()| eprintln!("removed")),
    };
    store.close().await;
    done.map_err(anyhow::Error::from)
}

/// One endpoint on one line; an endpoint that is off says since when and why.
fn line(endpoint: &EndpointRow) -> String {
    let state = if endpoint.enabled == 1 { "on" } else { "off" };
    let mut text = format!(
        "{}  {state:<3}  {:>5} waiting  {}  {}",
        endpoint.id,
        endpoint.pending,
        endpoint.url,
        endpoint.event_types().join(",")
    );
    if let (Some(at), Some(reason)) = (endpoint.disabled_at, &endpoint.disabled_reason) {
        let when = rfc3339(at).unwrap_or_default();
        text.push_str(&format!("\n    off since {when}: {reason}"));
    }
    text
}
