//! Bounces and complaints: every email names itself in a tagged return
//! path, and one policy acts on reports from every source.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use broadsheet::config::ImapTls;
use broadsheet::feedback::{Applied, BounceMailbox, Feedback, Kind, MailboxRead, Source};
use support::{Backend, TestApp, imap::ImapServer};

storage_tests!(
    every_email_leaves_from_a_return_path_tagged_with_its_message,
    a_hard_bounce_to_a_digests_tag_suppresses_only_its_reader,
    soft_bounces_of_consecutive_digests_suppress_even_when_reported_out_of_order,
    a_complaint_withdraws_consent_in_the_ledger_and_counts_once,
    a_mailbox_report_without_a_valid_tag_touches_no_one,
    the_bounce_mailbox_is_read_over_imap_and_each_report_counts_once,
    the_bounce_mailbox_is_read_over_tls_or_starttls_only_with_a_trusted_certificate,
    an_address_listed_before_its_reader_signs_up_gets_no_digest,
);

const RETURN_PATH: &str = "bounces@lordspress.test";

pub(crate) async fn app_with_return_path(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, broadsheet::app::Role::Web, |config| {
        config.bounces.return_path = Some(RETURN_PATH.parse().unwrap());
    })
    .await
}

/// A new article an hour old, then "send now": one more digest to every
/// digest reader, delivered.
pub(crate) async fn one_more_digest(app: &TestApp, slug: &str) {
    let published = (app.clock.now() - chrono::Duration::hours(1)).to_rfc3339();
    app.import_article(&format!(
        "+++\ntitle = \"Story {slug}\"\nslug = \"{slug}\"\npublished_at = \"{published}\"\n+++\nBody.\n"
    ))
    .await;
    app.send_digest_now().await;
    app.drain_outbox().await;
}

/// The tags of the digests `address` received, oldest first.
pub(crate) fn digest_tags(app: &TestApp, address: &str) -> Vec<String> {
    let wanted = format!("<{address}>");
    app.received()
        .iter()
        .filter(|mail| mail.to.contains(&wanted))
        .filter(|mail| mail.parsed().header_raw("List-Id").is_some())
        .map(|mail| broadsheet::domain::tag_of(&mail.from).unwrap().to_owned())
        .collect()
}

fn report(kind: Kind, source: Source, tag: Option<&str>, status: &str) -> Feedback {
    Feedback {
        kind,
        source,
        recipient: None,
        return_path: tag.map(str::to_owned),
        status: status.to_owned(),
        detail: "reported".to_owned(),
        event_id: None,
        occurred_at: None,
    }
}

pub(crate) async fn suppressed(app: &TestApp, address: &str) -> Option<String> {
    let id = app.subscriber_id(address).await;
    app.text(&format!(
        "SELECT MAX(reason) FROM suppressions WHERE subscriber_id = '{id}'"
    ))
    .await
}

async fn every_email_leaves_from_a_return_path_tagged_with_its_message(backend: Backend) {
    let app = app_with_return_path(backend).await;
    app.digest_reader("reader@example.com", "daily", &[], false)
        .await;
    one_more_digest(&app, "first").await;
    let mails = app.received();
    assert!(mails.len() >= 3, "confirmation, credentials, digest");
    for mail in &mails {
        let tag = broadsheet::domain::tag_of(&mail.from).unwrap();
        assert!(mail.from.starts_with("bounces+"), "{}", mail.from);
        assert!(mail.from.len() <= 64 + "@lordspress.test".len());
        assert!(
            !mail.from.contains("reader"),
            "the address is not in the tag"
        );
        let header = mail
            .parsed()
            .header_raw("X-Broadsheet-Delivery")
            .unwrap()
            .trim()
            .to_owned();
        assert_eq!(header, tag, "the header carries the same tag");
    }
    let tags: std::collections::HashSet<_> = mails.iter().map(|m| m.from.clone()).collect();
    assert_eq!(tags.len(), mails.len(), "one tag per message");
    app.stop().await;
}

async fn a_hard_bounce_to_a_digests_tag_suppresses_only_its_reader(backend: Backend) {
    let app = app_with_return_path(backend).await;
    for address in ["gone@example.com", "stays@example.com"] {
        app.digest_reader(address, "daily", &[], false).await;
    }
    one_more_digest(&app, "first").await;
    let tag = digest_tags(&app, "gone@example.com").pop().unwrap();
    let bounce = report(Kind::HardBounce, Source::Mailbox, Some(&tag), "5.1.1");
    assert_eq!(
        app.feedbacks.apply(&bounce).await.unwrap(),
        Applied::Stored { suppressed: true }
    );
    assert_eq!(
        suppressed(&app, "gone@example.com").await.as_deref(),
        Some("hard_bounce")
    );
    assert_eq!(suppressed(&app, "stays@example.com").await, None);
    let campaign = app.text("SELECT id FROM campaigns").await;
    assert_eq!(
        app.text("SELECT campaign_id FROM feedback_events").await,
        campaign,
        "the bounce is the campaign's"
    );
    one_more_digest(&app, "second").await;
    assert_eq!(
        digest_tags(&app, "gone@example.com").len(),
        1,
        "never mailed again"
    );
    assert_eq!(digest_tags(&app, "stays@example.com").len(), 2);
    app.stop().await;
}

async fn soft_bounces_of_consecutive_digests_suppress_even_when_reported_out_of_order(
    backend: Backend,
) {
    let app = app_with_return_path(backend).await;
    app.digest_reader("full@example.com", "daily", &[], false)
        .await;
    for slug in ["one", "two", "three"] {
        one_more_digest(&app, slug).await;
    }
    let tags = digest_tags(&app, "full@example.com");
    assert_eq!(tags.len(), 3);
    let soft = |tag: &str| report(Kind::SoftBounce, Source::Mailbox, Some(tag), "4.2.2");
    // The first and the third bounce; the second seems delivered: no run of three.
    for tag in [&tags[0], &tags[2]] {
        let applied = app.feedbacks.apply(&soft(tag)).await.unwrap();
        assert_eq!(applied, Applied::Stored { suppressed: false });
    }
    assert_eq!(suppressed(&app, "full@example.com").await, None);
    // The second one's bounce arrives late: three in a row after all.
    let applied = app.feedbacks.apply(&soft(&tags[1])).await.unwrap();
    assert_eq!(applied, Applied::Stored { suppressed: true });
    assert_eq!(
        suppressed(&app, "full@example.com").await.as_deref(),
        Some("soft_bounces")
    );
    app.stop().await;
}

async fn a_complaint_withdraws_consent_in_the_ledger_and_counts_once(backend: Backend) {
    let app = app_with_return_path(backend).await;
    app.digest_reader("angry@example.com", "daily", &[], false)
        .await;
    one_more_digest(&app, "first").await;
    let tag = digest_tags(&app, "angry@example.com").pop().unwrap();
    let mut complaint = report(Kind::Complaint, Source::Ses, Some(&tag), "abuse");
    complaint.event_id = Some("feedback-1".into());
    let first = app.feedbacks.apply(&complaint).await.unwrap();
    let again = app.feedbacks.apply(&complaint).await.unwrap();
    assert_eq!(first, Applied::Stored { suppressed: true });
    assert_eq!(again, Applied::Duplicate, "the same event twice is one");
    let id = app.subscriber_id("angry@example.com").await;
    assert_eq!(
        app.text(&format!(
            "SELECT source FROM consent_events WHERE subject = '{id}' AND action = 'withdrawn'"
        ))
        .await
        .as_deref(),
        Some("complaint")
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM feedback_events").await, 1);
    assert_eq!(
        suppressed(&app, "angry@example.com").await.as_deref(),
        Some("complaint")
    );
    app.stop().await;
}

/// Anyone can mail the bounce address: a report must carry a tag this
/// instance signed, or it suppresses nobody, whatever address it names.
async fn a_mailbox_report_without_a_valid_tag_touches_no_one(backend: Backend) {
    let app = app_with_return_path(backend).await;
    app.digest_reader("target@example.com", "daily", &[], false)
        .await;
    one_more_digest(&app, "first").await;
    let real = digest_tags(&app, "target@example.com").pop().unwrap();
    let mut forged = real.into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    for tag in [Some(forged.as_str()), None] {
        let mut bounce = report(Kind::HardBounce, Source::Mailbox, tag, "5.1.1");
        bounce.recipient = Some("target@example.com".into());
        assert_eq!(
            app.feedbacks.apply(&bounce).await.unwrap(),
            Applied::Unmatched
        );
    }
    assert_eq!(suppressed(&app, "target@example.com").await, None);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM feedback_events").await, 0);
    app.stop().await;
}

/// A delivery status notification as Postfix writes one, for the message
/// tagged `tag` to `recipient`.
pub(crate) fn dsn(tag: &str, recipient: &str, message_id: &str) -> Vec<u8> {
    format!(
        "Return-Path: <>\r\n\
         From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n\
         To: bounces+{tag}@lordspress.test\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <{message_id}@mx.example.net>\r\n\
         Date: Mon, 7 Dec 2026 03:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         I'm sorry to have to inform you that your message could not be delivered.\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.net\r\n\
         \r\n\
         Final-Recipient: rfc822; {recipient}\r\n\
         Action: failed\r\n\
         Status: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected\r\n\
         \r\n\
         --b1--\r\n"
    )
    .into_bytes()
}

const OUT_OF_OFFICE: &[u8] = b"From: Someone <someone@example.com>\r\n\
To: bounces@lordspress.test\r\n\
Subject: Out of office\r\n\
Auto-Submitted: auto-replied\r\n\
Message-ID: <ooo-1@example.com>\r\n\
\r\n\
I am away until Monday.\r\n";

async fn the_bounce_mailbox_is_read_over_imap_and_each_report_counts_once(backend: Backend) {
    let Some(imap) = ImapServer::start().await else {
        return;
    };
    let app = app_with_return_path(backend).await;
    for address in ["gone@example.com", "stays@example.com"] {
        app.digest_reader(address, "daily", &[], false).await;
    }
    one_more_digest(&app, "first").await;
    let tag = digest_tags(&app, "gone@example.com").pop().unwrap();
    imap.deliver(&dsn(&tag, "gone@example.com", "dsn-1")).await;
    imap.deliver(OUT_OF_OFFICE).await;
    let mailbox = |app: &TestApp| {
        BounceMailbox::new(
            &imap.config(),
            app.store.clone(),
            app.clock.clone(),
            app.feedbacks.clone(),
        )
        .unwrap()
        .unwrap()
    };
    let reader = mailbox(&app);
    let read = reader.read().await.unwrap();
    assert_eq!(
        read,
        MailboxRead {
            messages: 2,
            stored: 1,
            not_reports: 1
        }
    );
    assert_eq!(
        suppressed(&app, "gone@example.com").await.as_deref(),
        Some("hard_bounce")
    );
    assert_eq!(suppressed(&app, "stays@example.com").await, None);
    assert_eq!(
        imap.count("INBOX").await,
        0,
        "every message moved once handled"
    );
    assert_eq!(imap.count("Processed").await, 2);
    // The same bounce delivered again (a relay retrying): read, moved, not counted.
    imap.deliver(&dsn(&tag, "gone@example.com", "dsn-1")).await;
    let again = reader.read().await.unwrap();
    assert_eq!((again.messages, again.stored), (1, 0));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM feedback_events").await, 1);
    // Two instances on one database: one read per poll interval.
    let other_instance = mailbox(&app);
    let (first, second) = tokio::join!(reader.poll_due(), other_instance.poll_due());
    let reads = [first.unwrap(), second.unwrap()];
    assert_eq!(
        reads.iter().filter(|read| read.is_some()).count(),
        1,
        "{reads:?}"
    );
    app.stop().await;
}

/// TLS on its own port and STARTTLS, each trusting the server's
/// certificate through `ca_file`; without it, nothing is read and the
/// message stays for the next time.
async fn the_bounce_mailbox_is_read_over_tls_or_starttls_only_with_a_trusted_certificate(
    backend: Backend,
) {
    let Some(imap) = ImapServer::start_tls().await else {
        return;
    };
    let (tls_port, certificate) = imap.tls.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("imap-ca.pem");
    std::fs::write(&ca_file, certificate).unwrap();
    let app = app_with_return_path(backend).await;
    app.digest_reader("gone@example.com", "daily", &[], false)
        .await;
    one_more_digest(&app, "first").await;
    let tag = digest_tags(&app, "gone@example.com").pop().unwrap();
    let reader = |tls, port, trusted: bool| {
        let mut config = imap.config();
        (config.tls, config.port) = (tls, port);
        if trusted {
            config.ca_file = ca_file.clone();
        }
        BounceMailbox::new(
            &config,
            app.store.clone(),
            app.clock.clone(),
            app.feedbacks.clone(),
        )
        .unwrap()
        .unwrap()
    };
    imap.deliver(&dsn(&tag, "gone@example.com", "tls-1")).await;
    let untrusted = reader(ImapTls::Tls, tls_port, false).read().await;
    assert!(untrusted.is_err(), "a certificate no trusted CA signed");
    assert_eq!(imap.count("INBOX").await, 1, "left for the next read");
    let read = reader(ImapTls::Tls, tls_port, true).read().await.unwrap();
    assert_eq!((read.messages, read.stored), (1, 1));
    imap.deliver(&dsn(&tag, "gone@example.com", "tls-2")).await;
    let read = reader(ImapTls::Starttls, imap.port, true)
        .read()
        .await
        .unwrap();
    assert_eq!(read.messages, 1, "over STARTTLS");
    assert_eq!(
        suppressed(&app, "gone@example.com").await.as_deref(),
        Some("hard_bounce")
    );
    app.stop().await;
}

/// An editor lists an address, or an earlier reader of it bounced; whoever
/// signs up with it later and confirms is still never sent a digest.
async fn an_address_listed_before_its_reader_signs_up_gets_no_digest(backend: Backend) {
    let app = app_with_return_path(backend).await;
    let key = broadsheet::privacy::suppression_key(&app.store, &app.config)
        .await
        .unwrap();
    let hash = broadsheet::privacy::suppression_hash(key.as_bytes(), "listed@example.com");
    let entry = broadsheet::store::suppressions::NewSuppression {
        email_hash: &hash,
        reason: broadsheet::store::suppressions::Reason::Manual,
        subscriber_id: None,
        event_id: None,
        note: Some("asked not to be mailed"),
    };
    let mut tx = app.store.begin().await.unwrap();
    broadsheet::store::suppressions::add(&mut tx, &entry, app.clock.now_ms())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for address in ["listed@example.com", "other@example.com"] {
        app.digest_reader(address, "daily", &[], false).await;
    }
    one_more_digest(&app, "first").await;
    assert!(digest_tags(&app, "listed@example.com").is_empty());
    assert_eq!(digest_tags(&app, "other@example.com").len(), 1);
    assert_eq!(
        suppressed(&app, "listed@example.com").await.as_deref(),
        Some("manual")
    );
    app.stop().await;
}
