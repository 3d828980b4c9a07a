//! Digests: schedules, campaigns, per-reader selection, headers, and the
//! delivery engine's unhappy paths.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use std::time::Duration;

use broadsheet::app::Role;
use broadsheet::delivery::BatchOutcome;
use broadsheet::{
    digest::{self, Started},
    domain::LinkPurpose,
};
use support::{Backend, DataFault, Reply, TestApp};

storage_tests!(
    a_digest_reaches_each_consenting_reader_once_with_list_headers,
    a_schedule_fires_once_per_period_and_skips_when_nothing_is_new,
    a_withdrawal_between_enqueue_and_claim_sends_nothing,
    readers_who_stop_qualifying_after_queueing_are_checked_again_at_claim,
    a_digest_consent_granted_but_never_confirmed_gets_no_digest,
    a_hard_bounce_fails_and_suppresses_the_reader,
    a_killed_workers_digest_lease_is_reclaimed,
    digests_are_dkim_signed_over_the_unsubscribe_headers,
    a_refusal_of_our_sender_suppresses_no_reader,
    a_send_that_could_outlast_its_lease_is_handed_back_unsent,
    a_batch_that_outlasts_its_lease_keeps_it_by_renewing,
    readers_of_one_shared_digest_each_get_their_own_links,
    an_operators_template_may_do_more_with_a_readers_values,
    a_server_without_8bitmime_gets_7bit_clean_mail,
    a_server_with_8bitmime_gets_digests_in_8_bit,
    smtp_down_for_half_a_campaign_delivers_each_message_once_after_it_returns,
    a_permanent_refusal_fails_only_its_readers_and_is_never_retried,
    a_stalled_server_times_out_and_the_digest_goes_later,
    faults_at_the_end_of_data_are_retried_or_failed_by_their_code,
    a_pipelined_batch_with_a_refusal_and_a_drop_is_recorded_as_without_pipelining,
    the_claim_walks_the_pending_index_in_due_order,
    the_batch_that_records_the_last_delivery_closes_its_campaign,
);

async fn reader(app: &TestApp, email: &str, digest: bool, topics: &[&str], paused: bool) {
    if digest {
        app.digest_reader(email, "daily", topics, paused).await;
    } else {
        app.confirmed_reader(email, false).await;
    }
}

/// Two articles published an hour ago.
async fn articles(app: &TestApp) {
    articles_at(app, app.clock.now() - chrono::Duration::hours(1)).await;
}

async fn articles_at(app: &TestApp, published: chrono::DateTime<chrono::Utc>) {
    let published = published.to_rfc3339();
    for (slug, category) in [("harbour", "city"), ("ledgers", "history")] {
        app.import_article(&format!(
            "+++\ntitle = \"Story {slug}\"\nslug = \"{slug}\"\ncategories = [\"{category}\"]\npublished_at = \"{published}\"\n+++\nBody.\n"
        ))
        .await;
    }
}

/// Digest readers with these addresses, their account mail delivered, and
/// two new articles: the next "send now" is a campaign to all of them.
pub(crate) async fn campaign_of(app: &TestApp, addresses: &[impl AsRef<str>]) {
    articles(app).await;
    for address in addresses {
        reader(app, address.as_ref(), true, &[], false).await;
    }
    app.drain_outbox().await;
}

/// "Send now" for the daily schedule, as the CLI would.
async fn send_now(app: &TestApp) -> Started {
    app.send_digest_now().await
}

async fn a_digest_reaches_each_consenting_reader_once_with_list_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    articles(&app).await;
    reader(&app, "all@example.com", true, &[], false).await;
    reader(&app, "history@example.com", true, &["history"], false).await;
    reader(&app, "account-only@example.com", false, &[], false).await;
    reader(&app, "paused@example.com", true, &[], true).await;
    app.drain_outbox().await;
    let before = app.received().len();

    let started = send_now(&app).await;
    let Started::Campaign {
        recipients,
        articles,
        ..
    } = started
    else {
        panic!("{started:?}")
    };
    assert_eq!(
        (articles, recipients),
        (2, 2),
        "L-02: consenting, unpaused readers only"
    );
    let outcome = app.drain_outbox().await;
    assert_eq!((outcome.sent, outcome.failed), (2, 0));
    assert_eq!(app.received().len(), before + 2, "E-27: one each");

    let everything = app.last_mail_to("all@example.com");
    let text = everything.text();
    assert!(
        text.contains("Story harbour") && text.contains("Story ledgers"),
        "{text}"
    );
    let history = app.last_mail_to("history@example.com").text();
    assert!(
        history.contains("Story ledgers") && !history.contains("Story harbour"),
        "topics filter"
    );

    let parsed = everything.parsed();
    let header = |name: &str| {
        parsed
            .header_raw(name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    assert!(header("List-Id").ends_with("<digest.localhost>"), "E-13");
    let unsubscribe = header("List-Unsubscribe");
    assert!(
        unsubscribe.starts_with(&format!("<{}/unsubscribe/", app.base_url)),
        "E-01: {unsubscribe}"
    );
    assert_eq!(
        header("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click",
        "E-02"
    );
    assert_eq!(header("Auto-Submitted"), "auto-generated");
    assert!(
        parsed.message_id().is_some() && parsed.body_html(0).is_some(),
        "E-15"
    );
    assert!(
        text.contains("/preferences/") && text.contains("/unsubscribe/"),
        "E-07"
    );

    let status = "SELECT status FROM campaigns";
    assert_eq!(app.text(status).await.as_deref(), Some("done"));
    assert_eq!(app.scalar("SELECT sent FROM campaigns").await, 2);
    let again = send_now(&app).await;
    assert_eq!(
        again,
        Started::NothingNew,
        "these articles were in the first digest"
    );
    app.stop().await;
}

async fn a_schedule_fires_once_per_period_and_skips_when_nothing_is_new(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    reader(&app, "daily@example.com", true, &[], false).await;
    let schedules = app.config.digest.schedules.clone();
    assert!(
        digest::run_due(&app.store, &app.clock, &schedules)
            .await
            .unwrap()
            .is_empty(),
        "first sight: no send"
    );
    let next = schedules[0].next_fire(app.clock.now()).unwrap();
    // Inside the period the next firing covers, whatever the time of day the
    // test runs (an hour ago would fall before it just after 07:00).
    articles_at(&app, next - chrono::Duration::minutes(1)).await;
    app.clock
        .advance((next - app.clock.now()).to_std().unwrap() + Duration::from_secs(1));
    // Two instances firing together create one campaign.
    let (a, b) = tokio::join!(
        digest::run_due(&app.store, &app.clock, &schedules),
        digest::run_due(&app.store, &app.clock, &schedules)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let started: Vec<Started> = a.iter().chain(&b).cloned().collect();
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM campaigns").await, 1);
    let key = app.text("SELECT period_key FROM campaigns").await.unwrap();
    assert_eq!(key, schedules[0].period_key(next));
    app.clock.advance(Duration::from_secs(24 * 3600));
    let quiet = digest::run_due(&app.store, &app.clock, &schedules)
        .await
        .unwrap();
    assert_eq!(quiet, [Started::NothingNew]);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM campaigns").await,
        1,
        "no articles, no campaign"
    );
    app.stop().await;
}

async fn a_withdrawal_between_enqueue_and_claim_sends_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    campaign_of(&app, &["leaving@example.com"]).await;
    let before = app.received().len();
    send_now(&app).await;
    let link = app
        .reader_link("leaving@example.com", LinkPurpose::Unsubscribe)
        .await;
    app.new_browser()
        .post_form(&link, &[("List-Unsubscribe", "One-Click")])
        .await;
    app.drain_outbox().await;
    assert_eq!(app.received().len(), before, "G-10: nothing goes out");
    assert_eq!(
        app.text("SELECT status FROM deliveries").await.as_deref(),
        Some("cancelled")
    );
    assert_eq!(
        app.text("SELECT status FROM campaigns").await.as_deref(),
        Some("done"),
        "nothing is left pending, so the campaign closes"
    );
    app.stop().await;
}

/// One reader's digest, refused at RCPT with `reply`: the app and what
/// delivering it did.
async fn digest_refused_at_rcpt(backend: Backend, reply: &'static str) -> (TestApp, BatchOutcome) {
    let app = TestApp::spawn(backend).await;
    campaign_of(&app, &["refused@example.com"]).await;
    app.smtp
        .as_ref()
        .unwrap()
        .set_rcpt_reply(Reply::Refuse(reply));
    send_now(&app).await;
    let outcome = app.drain_outbox().await;
    (app, outcome)
}

const SUPPRESSED: &str =
    "SELECT COUNT(*) FROM suppressions WHERE reason = 'hard_bounce' AND subscriber_id IS NOT NULL";

/// Readers who stop qualifying after the campaign is queued, by paths that
/// leave their pending delivery in place, get nothing: each is checked again
/// when their delivery is claimed (G-10, E-26).
async fn readers_who_stop_qualifying_after_queueing_are_checked_again_at_claim(backend: Backend) {
    const STAYS: &str = "stays@example.com";
    let app = TestApp::spawn(backend).await;
    let leaving = [
        "paused@example.com",
        "suppressed@example.com",
        "erased@example.com",
        "withdrawn@example.com",
    ];
    campaign_of(&app, &[&leaving[..], &[STAYS]].concat()).await;
    let before = app.received().len();
    let started = send_now(&app).await;
    assert!(
        matches!(started, Started::Campaign { recipients: 5, .. }),
        "{started:?}"
    );
    let now = app.clock.now_ms();
    // Paused in the preference centre, which leaves pending digests alone.
    app.set_preferences(leaving[0], "daily", &[], true).await;
    // Suppressed as a hard bounce of another message suppresses.
    let key = broadsheet::privacy::suppression_key(&app.store, &app.config)
        .await
        .unwrap();
    let suppressed = app.subscriber_id(leaving[1]).await;
    let hash = broadsheet::privacy::suppression_hash(key.as_bytes(), leaving[1]);
    let entry = broadsheet::store::suppressions::NewSuppression {
        email_hash: &hash,
        reason: broadsheet::store::suppressions::Reason::HardBounce,
        subscriber_id: Some(&suppressed),
        event_id: None,
        note: None,
    };
    let mut tx = app.store.begin().await.unwrap();
    broadsheet::store::suppressions::add(&mut tx, &entry, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Erased at their request.
    let erased = app.subscriber_id(leaving[2]).await;
    let by = broadsheet::audit::Actor::cli();
    assert!(
        broadsheet::privacy::erase(&app.store, &app.clock, key.as_bytes(), &erased, Some(&by))
            .await
            .unwrap()
    );
    // A withdrawal recorded without cancelling (as a complaint handler or
    // another instance's import might).
    let withdrawn = app.subscriber_id(leaving[3]).await;
    let wording = app
        .text(&format!(
            "SELECT text_id FROM consent_events WHERE subject = '{withdrawn}' AND purpose = 'newsletter' LIMIT 1"
        ))
        .await
        .unwrap();
    let mut tx = app.store.begin().await.unwrap();
    broadsheet::consent::record_newsletter(
        &mut tx,
        &withdrawn,
        broadsheet::consent::Action::Withdrawn,
        &wording,
        broadsheet::consent::Source::OneClick,
        &broadsheet::consent::Evidence::default(),
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'")
            .await,
        4,
        "only the erasure removed a queued delivery"
    );

    let outcome = app.drain_outbox().await;
    assert_eq!(outcome.sent, 1, "{outcome:?}");
    let digests: Vec<Vec<String>> = app.received()[before..]
        .iter()
        .map(|mail| mail.to.clone())
        .collect();
    assert_eq!(digests, [vec![format!("<{STAYS}>")]]);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'cancelled'")
            .await,
        3
    );
    assert_eq!(
        app.text("SELECT status FROM campaigns").await.as_deref(),
        Some("done")
    );
    app.stop().await;
}

/// A stranger ticked the digest box for someone else's address: the
/// consent is granted but never confirmed, so no digest goes there, both
/// for an address never confirmed and for a confirmed account whose digest
/// was asked for from an emailed link (L-02).
async fn a_digest_consent_granted_but_never_confirmed_gets_no_digest(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    articles(&app).await;
    reader(&app, "reader@example.com", true, &[], false).await;
    assert_eq!(app.sign_up("never@example.com", true).await.status(), 200);
    reader(&app, "account@example.com", false, &[], false).await;
    // The preference centre from an emailed link only asks for confirmation.
    app.set_preferences("account@example.com", "daily", &[], false)
        .await;
    app.drain_outbox().await;
    let latest = |address: &str| {
        format!(
            "SELECT e.action FROM consent_events e JOIN subscribers s ON s.id = e.subject
             WHERE s.email_canonical = '{address}' AND e.purpose = 'newsletter'
             ORDER BY e.created_at DESC, e.id DESC LIMIT 1"
        )
    };
    for address in ["never@example.com", "account@example.com"] {
        assert_eq!(
            app.text(&latest(address)).await.as_deref(),
            Some("granted"),
            "{address}"
        );
    }
    let started = send_now(&app).await;
    assert!(
        matches!(started, Started::Campaign { recipients: 1, .. }),
        "{started:?}"
    );
    app.drain_outbox().await;
    assert_eq!(app.digests_to("reader@example.com").len(), 1);
    for address in ["never@example.com", "account@example.com"] {
        assert!(app.digests_to(address).is_empty(), "{address}");
    }
    app.stop().await;
}

async fn a_hard_bounce_fails_and_suppresses_the_reader(backend: Backend) {
    let (app, outcome) = digest_refused_at_rcpt(backend, "550 5.1.1 no such user").await;
    assert_eq!((outcome.failed, outcome.retried), (1, 0), "E-21");
    assert_eq!(app.scalar(SUPPRESSED).await, 1, "E-24");
    assert_eq!(
        app.text("SELECT status FROM campaigns").await.as_deref(),
        Some("done")
    );
    app.import_article("+++\ntitle = \"Later\"\n+++\nBody.\n")
        .await;
    let next = send_now(&app).await;
    assert!(
        matches!(next, Started::Campaign { recipients: 0, .. }),
        "{next:?}"
    );
    app.stop().await;
}

async fn a_killed_workers_digest_lease_is_reclaimed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    campaign_of(&app, &["patient@example.com"]).await;
    let before = app.received().len();
    send_now(&app).await;
    let now = app.clock.now_ms();
    let lease_ms = i64::try_from(app.config.delivery.lease.as_millis()).unwrap();
    let claimed =
        broadsheet::store::deliveries::claim(&app.store, "killed", now, now + lease_ms, 10)
            .await
            .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        app.drain_outbox().await.claimed,
        0,
        "a live lease is respected"
    );
    app.clock
        .advance(app.config.delivery.lease + Duration::from_secs(1));
    assert_eq!(app.drain_outbox().await.sent, 1);
    assert_eq!(app.received().len(), before + 1);
    app.stop().await;
}

async fn digests_are_dkim_signed_over_the_unsubscribe_headers(backend: Backend) {
    use base64::{Engine as _, engine::general_purpose::STANDARD};
    use ring::signature::KeyPair as _;

    // A throwaway Ed25519 seed (bytes 0..32), and its public key for the
    // DNS record a receiver would look up.
    let seed: Vec<u8> = (0..32).collect();
    let public = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    let public = STANDARD.encode(public.public_key().as_ref());
    let key_dir = tempfile::tempdir().unwrap();
    let key_path = key_dir.path().join("dkim.key");
    std::fs::write(&key_path, STANDARD.encode(&seed)).unwrap();
    let app = TestApp::spawn_with(backend, broadsheet::app::Role::Web, |config| {
        config.dkim.domain = "lordspress.test".into();
        config.dkim.selector = "bs2026".into();
        config.dkim.private_key_path = key_path.clone();
    })
    .await;
    articles(&app).await;
    for address in ["signed@example.com", "sealed@example.com"] {
        reader(&app, address, true, &[], false).await;
    }
    send_now(&app).await;
    app.drain_outbox().await;
    let received = app.received();
    let mut digests = 0;
    for mail in &received {
        let signed = dkim::verify(&mail.data, "bs2026", "lordspress.test", &public).await;
        let signed = signed.unwrap_or_else(|e| panic!("{}: {e}", mail.subject()));
        if mail.parsed().header_raw("List-Id").is_none() {
            continue;
        }
        digests += 1;
        for header in [
            "From",
            "Subject",
            "Date",
            "To",
            "Message-ID",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
        ] {
            assert!(
                signed.iter().any(|h| h.eq_ignore_ascii_case(header)),
                "E-06: {header} not in h={signed:?}"
            );
        }
    }
    assert_eq!(digests, 2, "both digests were checked");

    // A receiver sees through a changed unsubscribe link.
    let digest = app.last_mail_to("signed@example.com");
    let tampered = String::from_utf8(digest.data.clone()).unwrap().replacen(
        "/unsubscribe/",
        "/unsubscribe/0",
        1,
    );
    assert!(
        dkim::verify(tampered.as_bytes(), "bs2026", "lordspress.test", &public)
            .await
            .is_err(),
        "a changed List-Unsubscribe must fail verification"
    );
    app.stop().await;
}

/// DKIM verification as a receiver does it, with the selector's record
/// given here instead of looked up in DNS.
mod dkim {
    use std::{
        borrow::Borrow,
        collections::HashMap,
        hash::Hash,
        sync::{Arc, Mutex},
        time::{Duration, Instant},
    };

    use mail_auth::{
        AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
        common::{parse::TxtRecordParser, verify::DomainKey},
    };

    /// The one TXT record a verification needs.
    struct Records(Mutex<HashMap<Box<str>, Txt>>);

    impl ResolverCache<Box<str>, Txt> for Records {
        fn get<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().get(name).cloned()
        }

        fn remove<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().remove(name)
        }

        fn insert(&self, name: Box<str>, value: Txt, _valid_until: Instant) {
            self.0.lock().unwrap().insert(name, value);
        }
    }

    /// Verifies the message's one DKIM signature against an Ed25519 public
    /// key; returns the header names it signs, as its `h=` tag lists them.
    pub async fn verify(
        raw: &[u8],
        selector: &str,
        domain: &str,
        public_key: &str,
    ) -> Result<Vec<String>, String> {
        let record = format!("v=DKIM1; k=ed25519; p={public_key}");
        let key = DomainKey::parse(record.as_bytes()).map_err(|e| format!("{e:?}"))?;
        let records = Records(Mutex::new(HashMap::new()));
        let name = format!("{selector}._domainkey.{domain}.").to_ascii_lowercase();
        let valid_until = Instant::now() + Duration::from_secs(3600);
        records.insert(name.into(), Txt::DomainKey(Arc::new(key)), valid_until);
        // Never asked: the record above answers the only lookup.
        let resolver = MessageAuthenticator::new_cloudflare().map_err(|e| e.to_string())?;
        let message = AuthenticatedMessage::parse(raw).ok_or("not a message")?;
        let outputs = resolver
            .verify_dkim(Parameters::new(&message).with_txt_cache(&records))
            .await;
        let [output] = outputs.as_slice() else {
            return Err(format!("{} signatures", outputs.len()));
        };
        match output.result() {
            DkimResult::Pass => {}
            other => return Err(format!("{other:?}")),
        }
        let signature = output.signature().ok_or("no signature")?;
        Ok(signature.h.clone())
    }
}

async fn a_refusal_of_our_sender_suppresses_no_reader(backend: Backend) {
    let (app, outcome) =
        digest_refused_at_rcpt(backend, "550 5.1.7 bad sender address syntax").await;
    assert_eq!(outcome.failed, 1);
    assert_eq!(
        app.scalar(SUPPRESSED).await,
        0,
        "E-24: only an unknown mailbox suppresses"
    );
    app.stop().await;
}

/// A batch that takes three leases to send keeps every row by renewing
/// its leases as it goes: nothing is handed back, nothing sent twice. (With
/// no renewal, what is not sent within the first lease is handed back.)
async fn a_batch_that_outlasts_its_lease_keeps_it_by_renewing(backend: Backend) {
    const READERS: usize = 6;
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        config.smtp.timeout = Duration::from_secs(1);
        config.smtp.concurrency = 1;
        config.delivery.lease = Duration::from_secs(2);
    })
    .await;
    articles(&app).await;
    let readers: Vec<String> = (0..READERS)
        .map(|n| format!("long{n}@example.com"))
        .collect();
    for reader in &readers {
        app.sign_up(reader, true).await;
    }
    let smtp = app.smtp.as_ref().unwrap();
    smtp.set_data_delay(Duration::from_millis(700));
    let never = tokio_util::sync::CancellationToken::new();
    // Account mail: the six confirmations, one batch of about four seconds.
    let confirmations = app.worker.deliver_batch(&never).await.unwrap();
    assert_eq!(
        (confirmations.sent, confirmations.released),
        (READERS, 0),
        "{confirmations:?}"
    );
    smtp.set_data_delay(Duration::ZERO);
    for reader in &readers {
        let link = support::link_path(&app.last_mail_to(reader).text(), &app.base_url, "confirm");
        assert_eq!(app.confirm(&link).await.status(), 200);
    }
    app.drain_outbox().await;
    send_now(&app).await;
    smtp.set_data_delay(Duration::from_millis(700));
    let digests = app.worker.deliver_digests(&never).await.unwrap();
    assert_eq!(
        (digests.sent, digests.released),
        (READERS, 0),
        "{digests:?}"
    );
    for reader in &readers {
        assert_eq!(app.digests_to(reader).len(), 1, "{reader}");
    }
    app.stop().await;
}

/// A slow server: each send takes 0.4 s, the lease is 2 s and a send may
/// take 1 s. The batch's leases are lost early (another owner holds the
/// rows, as after a renewal that could not reach the database), so no
/// renewal moves them and a claimed delivery must start within 1 s of its
/// claim. The ones that cannot are handed back unsent and go once the other
/// lease runs out, never twice.
async fn a_send_that_could_outlast_its_lease_is_handed_back_unsent(backend: Backend) {
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        config.smtp.timeout = Duration::from_secs(1);
        config.smtp.concurrency = 1;
        config.delivery.lease = Duration::from_secs(2);
    })
    .await;
    articles(&app).await;
    for n in 0..4 {
        reader(&app, &format!("slow{n}@example.com"), true, &[], false).await;
    }
    app.drain_outbox().await;
    let before = app.received().len();
    send_now(&app).await;
    app.smtp
        .as_ref()
        .unwrap()
        .set_data_delay(Duration::from_millis(400));
    let worker = app.worker.clone();
    let batch = tokio::spawn(async move {
        let never = tokio_util::sync::CancellationToken::new();
        worker.deliver_digests(&never).await.unwrap()
    });
    // Claimed, and the first renewal (after a third of the lease) not yet due.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lost = "UPDATE deliveries SET lease_owner = 'another' WHERE lease_owner IS NOT NULL";
    sqlx::query(lost).execute(app.store.pool()).await.unwrap();
    let outcome = batch.await.unwrap();
    assert!(outcome.released >= 1, "{outcome:?}");
    assert!(outcome.sent < 4, "{outcome:?}");
    app.clock
        .advance(app.config.delivery.lease + Duration::from_secs(1));
    let rest = app.drain_outbox().await;
    assert_eq!(outcome.sent + rest.sent, 4, "{outcome:?} {rest:?}");
    let mut digests: Vec<String> = app.received()[before..]
        .iter()
        .map(|mail| mail.to[0].clone())
        .collect();
    digests.sort();
    digests.dedup();
    assert_eq!(digests.len(), 4, "each reader once");
    assert_eq!(app.received().len(), before + 4, "no digest sent twice");
    app.stop().await;
}

/// Sends a digest to three readers of the same topics and returns, for each,
/// their unsubscribe link path and the text they received.
async fn three_readers_digests(app: &TestApp) -> Vec<(String, String)> {
    articles(app).await;
    let emails = ["a@example.com", "b@example.com", "c@example.com"];
    for email in emails {
        reader(app, email, true, &[], false).await;
    }
    app.drain_outbox().await;
    send_now(app).await;
    assert_eq!(app.drain_outbox().await.sent, 3);
    let mut digests = Vec::new();
    for email in emails {
        let link = app.reader_link(email, LinkPurpose::Unsubscribe).await;
        digests.push((link, app.last_mail_to(email).text()));
    }
    digests
}

/// The digest is rendered once for the readers of one set of topics; each
/// copy still carries that reader's own links, in both parts.
async fn readers_of_one_shared_digest_each_get_their_own_links(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let digests = three_readers_digests(&app).await;
    for (i, (link, text)) in digests.iter().enumerate() {
        assert!(text.contains(link.as_str()), "reader {i}: {text}");
        for (other, _) in digests.iter().filter(|(other, _)| other != link) {
            assert!(
                !text.contains(other.as_str()),
                "reader {i} got another's link"
            );
        }
        assert!(text.contains("Story harbour") && text.contains("Story ledgers"));
    }
    let mail = app.last_mail_to("b@example.com");
    let parsed = mail.parsed();
    let html = parsed.body_html(0).unwrap();
    let own = digests[1].0.replace('/', "&#x2f;");
    assert!(
        html.contains(&own),
        "the HTML part escapes as minijinja does"
    );
    app.stop().await;
}

/// An operator's template that transforms a personal value cannot be
/// rendered once and filled in: each copy is rendered in full instead.
async fn an_operators_template_may_do_more_with_a_readers_values(backend: Backend) {
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("digest.txt"),
        "Subject: News\n\n{% for group in groups %}{% for article in group.articles %}{{ article.title }}\n{% endfor %}{% endfor %}\nLEAVE: {{ unsubscribe_url | upper }}\n",
    )
    .unwrap();
    let dir = templates.path().to_owned();
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        config.mail.templates_dir = Some(dir);
    })
    .await;
    let digests = three_readers_digests(&app).await;
    for (i, (link, text)) in digests.iter().enumerate() {
        let own = format!("LEAVE: {}{}", app.base_url, link).to_uppercase();
        assert!(text.contains(&own), "reader {i}: {text}");
    }
    app.stop().await;
}

/// RFC 6152: 8-bit bodies only to a server that offers 8BITMIME. This one
/// refuses 8-bit data, so every message must arrive 7-bit clean and decode
/// to the same text.
async fn a_server_without_8bitmime_gets_7bit_clean_mail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.smtp.as_ref().unwrap().set_8bitmime(false);
    app.import_article("+++\ntitle = \"Café crème à l'aube\"\n+++\nDéjà vu.\n")
        .await;
    reader(&app, "seven@example.com", true, &[], false).await;
    app.drain_outbox().await;
    send_now(&app).await;
    let outcome = app.drain_outbox().await;
    assert_eq!((outcome.sent, outcome.failed, outcome.retried), (1, 0, 0));
    let received = app.received();
    assert!(received.len() >= 2, "the confirmation and the digest");
    assert!(received.iter().all(|mail| mail.data.is_ascii()));
    let digest = app.last_mail_to("seven@example.com");
    assert!(
        digest.text().contains("Café crème à l'aube"),
        "{}",
        digest.text()
    );
    app.stop().await;
}

/// RFC 6152 the other way: a server that offers 8BITMIME gets the digest
/// in 8-bit, its text as written rather than quoted-printable (which cost
/// 43 % of building a digest, BENCHMARKS.md). The SMTP pool learns of the
/// extension from its first connection, so the digest must ask per message.
async fn a_server_with_8bitmime_gets_digests_in_8_bit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.import_article("+++\ntitle = \"Café crème à l'aube\"\n+++\nDéjà vu.\n")
        .await;
    reader(&app, "eight@example.com", true, &[], false).await;
    app.drain_outbox().await;
    send_now(&app).await;
    assert_eq!(app.drain_outbox().await.sent, 1);
    let digest = app.last_mail_to("eight@example.com");
    let raw = String::from_utf8_lossy(&digest.data);
    assert!(raw.contains("Café crème à l'aube"), "{raw}");
    assert!(raw.contains("Content-Transfer-Encoding: 8bit"), "{raw}");
    app.stop().await;
}

pub(crate) async fn started_campaign(app: &TestApp) -> String {
    match send_now(app).await {
        Started::Campaign { id, .. } => id,
        other => panic!("no campaign: {other:?}"),
    }
}

pub(crate) async fn summary(app: &TestApp, id: &str) -> digest::control::CampaignProgress {
    digest::control::summary(&app.store, &app.clock, id)
        .await
        .unwrap()
        .unwrap()
}

/// How many digests each address received after the first `skip` messages.
fn digests_to(app: &TestApp, skip: usize, address: &str) -> usize {
    let wanted = format!("<{address}>");
    app.received()[skip..]
        .iter()
        .filter(|mail| mail.to.contains(&wanted))
        .count()
}

/// Moves the clock past `due` (milliseconds since the epoch).
pub(crate) fn advance_past(app: &TestApp, due: i64) {
    let wait = u64::try_from(due - app.clock.now_ms()).unwrap_or(0) + 1000;
    app.clock.advance(Duration::from_millis(wait));
}

async fn smtp_down_for_half_a_campaign_delivers_each_message_once_after_it_returns(
    backend: Backend,
) {
    // One connection, so the server goes down after exactly four digests.
    let app = TestApp::spawn_with(backend, Role::Web, |config| config.smtp.concurrency = 1).await;
    let readers: Vec<String> = (0..8).map(|i| format!("reader{i}@example.com")).collect();
    let addresses: Vec<&str> = readers.iter().map(String::as_str).collect();
    campaign_of(&app, &addresses).await;
    let smtp = app.smtp.as_ref().unwrap();
    let before = app.received().len();
    smtp.set_down_after(Some(before + 4));
    let id = started_campaign(&app).await;

    let first = app.drain_outbox().await;
    assert_eq!((first.sent, first.retried, first.failed), (4, 4, 0));
    let status = summary(&app, &id).await;
    assert_eq!(
        (
            status.campaign.sent,
            status.pending,
            status.campaign.retries
        ),
        (4, 4, 4)
    );
    assert_eq!(status.campaign.status, "sending");
    assert!(
        status
            .campaign
            .last_error
            .as_deref()
            .unwrap()
            .contains("421"),
        "{:?}",
        status.campaign.last_error
    );
    let first_wait = status.campaign.next_retry_at.unwrap() - app.clock.now_ms();
    assert!(first_wait > 0, "the retries wait");

    // Still down when they fall due: put back again, for longer.
    advance_past(&app, status.campaign.next_retry_at.unwrap());
    let second = app.drain_outbox().await;
    assert_eq!((second.sent, second.retried), (0, 4));
    let status = summary(&app, &id).await;
    assert_eq!(status.campaign.retries, 8);
    let second_wait = status.campaign.next_retry_at.unwrap() - app.clock.now_ms();
    assert!(
        second_wait >= first_wait,
        "back-off grows: {first_wait} ms, then {second_wait} ms"
    );

    smtp.set_down_after(None);
    advance_past(&app, status.campaign.next_retry_at.unwrap());
    assert_eq!(app.drain_outbox().await.sent, 4);
    let status = summary(&app, &id).await;
    assert_eq!(
        (
            status.campaign.status.as_str(),
            status.campaign.sent,
            status.pending
        ),
        ("done", 8, 0)
    );
    for address in &readers {
        assert_eq!(digests_to(&app, before, address), 1, "{address}");
    }
    app.stop().await;
}

/// Readers whose digests are taken (`kept…`) beside readers a server
/// refuses (`gone…`), interleaved so that refusals fall inside batches.
const KEPT_AND_GONE: [&str; 5] = [
    "kept0@example.com",
    "gone0@example.com",
    "kept1@example.com",
    "gone1@example.com",
    "kept2@example.com",
];

async fn a_permanent_refusal_fails_only_its_readers_and_is_never_retried(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let addresses = KEPT_AND_GONE;
    campaign_of(&app, &addresses).await;
    let before = app.received().len();
    app.smtp
        .as_ref()
        .unwrap()
        .refuse_recipients("gone", "550 5.1.1 no such user");
    let id = started_campaign(&app).await;
    let outcome = app.drain_outbox().await;
    assert_eq!((outcome.sent, outcome.failed, outcome.retried), (3, 2, 0));
    assert_eq!(app.scalar(SUPPRESSED).await, 2, "E-24");

    app.clock.advance(Duration::from_secs(6 * 3600));
    assert_eq!(app.drain_outbox().await.claimed, 0, "never retried");
    assert_eq!(
        app.scalar("SELECT MAX(attempts) FROM deliveries WHERE status = 'failed'")
            .await,
        1
    );
    let status = summary(&app, &id).await;
    assert_eq!(
        (
            status.campaign.status.as_str(),
            status.campaign.sent,
            status.campaign.failed,
            status.campaign.retries
        ),
        ("done", 3, 2, 0)
    );
    for address in addresses {
        let expected = usize::from(address.starts_with("kept"));
        assert_eq!(digests_to(&app, before, address), expected, "{address}");
    }
    app.stop().await;
}

async fn a_stalled_server_times_out_and_the_digest_goes_later(backend: Backend) {
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        config.smtp.timeout = Duration::from_secs(1);
    })
    .await;
    let addresses = ["first@example.com", "second@example.com"];
    campaign_of(&app, &addresses).await;
    let before = app.received().len();
    let smtp = app.smtp.as_ref().unwrap();
    smtp.set_data_fault(Some(DataFault::Stall));
    let id = started_campaign(&app).await;
    // The worker gives up on the silent server instead of waiting for ever.
    let stalled = tokio::time::timeout(Duration::from_secs(30), app.drain_outbox())
        .await
        .expect("the worker does not hang on a stalled server");
    assert_eq!((stalled.sent, stalled.retried), (0, 2));

    smtp.set_data_fault(None);
    advance_past(
        &app,
        summary(&app, &id).await.campaign.next_retry_at.unwrap(),
    );
    assert_eq!(app.drain_outbox().await.sent, 2);
    for address in addresses {
        assert_eq!(digests_to(&app, before, address), 1, "{address}");
    }
    app.stop().await;
}

async fn faults_at_the_end_of_data_are_retried_or_failed_by_their_code(backend: Backend) {
    // Six faults in a row take the one relay out of rotation (its breaker,
    // relays.rs), but with no other to go to, each message still reaches it.
    let app = TestApp::spawn(backend).await;
    campaign_of(&app, &["one@example.com", "two@example.com"]).await;
    let before = app.received().len();
    let smtp = app.smtp.as_ref().unwrap();
    let id = started_campaign(&app).await;
    for transient in [
        DataFault::Drop,
        DataFault::Reply("451 4.3.0 try again later"),
        DataFault::Reply("452 4.3.1 insufficient system storage"),
    ] {
        smtp.set_data_fault(Some(transient));
        let outcome = app.drain_outbox().await;
        assert_eq!((outcome.sent, outcome.retried), (0, 2), "{transient:?}");
        advance_past(
            &app,
            summary(&app, &id).await.campaign.next_retry_at.unwrap(),
        );
    }
    smtp.set_data_fault(Some(DataFault::Reply("554 5.6.0 message refused")));
    let outcome = app.drain_outbox().await;
    assert_eq!((outcome.failed, outcome.retried), (2, 0));
    // A refused message says nothing about the mailbox: nobody is suppressed.
    assert_eq!(app.scalar(SUPPRESSED).await, 0);
    let status = summary(&app, &id).await;
    assert_eq!(
        (
            status.campaign.status.as_str(),
            status.campaign.failed,
            status.campaign.retries
        ),
        ("done", 2, 6)
    );
    assert_eq!(app.received().len(), before, "nothing was kept");
    app.stop().await;
}

/// The same campaign against a server that offers PIPELINING (RFC 2920)
/// and one that does not: two readers refused at RCPT, then the
/// connection dropped in every message's data, then the server back.
/// What is recorded must not depend on how the commands travelled.
async fn a_pipelined_batch_with_a_refusal_and_a_drop_is_recorded_as_without_pipelining(
    backend: Backend,
) {
    let mut records = Vec::new();
    for pipelining in [true, false] {
        let app = TestApp::spawn(backend).await;
        let smtp = app.smtp.as_ref().unwrap();
        smtp.set_pipelining(pipelining);
        let addresses = KEPT_AND_GONE;
        campaign_of(&app, &addresses).await;
        let before = app.received().len();
        smtp.refuse_recipients("gone", "550 5.1.1 no such user");
        smtp.set_data_fault(Some(DataFault::Drop));
        let id = started_campaign(&app).await;
        let dropped = app.drain_outbox().await;
        smtp.set_data_fault(None);
        advance_past(
            &app,
            summary(&app, &id).await.campaign.next_retry_at.unwrap(),
        );
        let resent = app.drain_outbox().await;
        let status = summary(&app, &id).await.campaign;
        for address in addresses {
            let expected = usize::from(address.starts_with("kept"));
            assert_eq!(digests_to(&app, before, address), expected, "{address}");
        }
        // The client pipelined exactly where the server offered it.
        let received = app.received();
        assert!(!received.is_empty());
        assert!(received.iter().all(|mail| mail.pipelined == pipelining));
        records.push((
            (dropped.sent, dropped.failed, dropped.retried),
            (resent.sent, resent.failed, resent.retried),
            (status.status, status.sent, status.failed, status.retries),
            app.scalar(SUPPRESSED).await,
        ));
        app.stop().await;
    }
    let expected = ((0, 2, 3), (3, 0, 0), ("done".to_owned(), 3, 2, 3), 2);
    assert_eq!(records, [expected.clone(), expected]);
}

/// The claim's plan, pinned: with a campaign of 3,000 readers of which
/// 100 are still pending, and fresh statistics, each database walks
/// `deliveries_pending` instead of scanning and sorting every delivery.
async fn the_claim_walks_the_pending_index_in_due_order(backend: Backend) {
    use broadsheet::store::{Backend as Db, deliveries};
    use sqlx::Row as _;

    let app = TestApp::spawn(backend).await;
    let mut csv = String::from("email,name,topics,consented_at,source\n");
    for i in 0..3000 {
        csv.push_str(&format!(
            "reader{i}@example.com,,,2025-03-01T09:30:00Z,test\n"
        ));
    }
    let report = app.import_csv(&csv).await;
    assert_eq!(report.imported, 3000);
    articles(&app).await;
    started_campaign(&app).await;
    sqlx::query(
        "UPDATE deliveries SET status = 'sent' WHERE subscriber_id NOT IN
           (SELECT subscriber_id FROM deliveries ORDER BY subscriber_id LIMIT 100)",
    )
    .execute(app.store.pool())
    .await
    .unwrap();
    app.store
        .analyze(&["deliveries", "campaigns"])
        .await
        .unwrap();

    let claim = deliveries::claim_statement(app.store.backend());
    let (explain, column) = match app.store.backend() {
        Db::Postgres => ("EXPLAIN", "QUERY PLAN"),
        Db::Sqlite => ("EXPLAIN QUERY PLAN", "detail"),
    };
    let now = app.clock.now_ms();
    let plan: Vec<String> = sqlx::query(&format!("{explain} {claim}"))
        .bind("owner")
        .bind(now + 60_000)
        .bind(now)
        .bind(500_i64)
        .fetch_all(app.store.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>(column))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("deliveries_pending"), "{plan}");
    assert!(!plan.contains("Seq Scan on deliveries"), "{plan}");
    app.stop().await;
}

/// A campaign is `done` as soon as the batch recording its last delivery
/// is counted, read from its counters: no claim comes after it here, and
/// none looks at the deliveries. A batch that leaves one pending keeps it
/// `sending`.
async fn the_batch_that_records_the_last_delivery_closes_its_campaign(backend: Backend) {
    use broadsheet::store::campaigns::{BatchCounts, add_counts};

    let app = TestApp::spawn(backend).await;
    campaign_of(&app, &["first@example.com", "second@example.com"]).await;
    let id = started_campaign(&app).await;
    let one_sent = BatchCounts {
        sent: 1,
        ..BatchCounts::default()
    };
    let state = "SELECT status || ' ' || sent || ' ' || CASE WHEN finished_at IS NULL
                 THEN 'open' ELSE 'finished' END FROM campaigns";
    // As the recorder does: the delivery first, then its campaign's counts.
    let record = "UPDATE deliveries SET status = 'sent' WHERE subscriber_id =
                  (SELECT id FROM subscribers WHERE email_canonical = $1)";
    let sent_to =
        |address: &'static str| sqlx::query(record).bind(address).execute(app.store.pool());

    sent_to("first@example.com").await.unwrap();
    add_counts(&app.store, &id, one_sent.clone(), app.clock.now_ms())
        .await
        .unwrap();
    assert_eq!(app.text(state).await.as_deref(), Some("sending 1 open"));

    sent_to("second@example.com").await.unwrap();
    add_counts(&app.store, &id, one_sent, app.clock.now_ms())
        .await
        .unwrap();
    assert_eq!(
        app.text(state).await.as_deref(),
        Some("done 2 finished"),
        "the last batch's counts close the campaign"
    );
    app.stop().await;
}
