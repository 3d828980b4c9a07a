//! Each fixture is a message as it lands in the bounce mailbox, written
//! after what its MTA or feedback loop sends; the claims are what `parse`
//! makes of it.

use chrono::{DateTime, Utc};

use super::fields::Fields;
use super::{delivery_tag, detail, parse, tag_of};
use crate::feedback::{Feedback, Kind, Source};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../../tests/fixtures/bounces/", $name))
    };
}

/// What a message that is no report gives.
const NOTHING: Vec<Feedback> = Vec::new();

fn at(rfc3339: &str) -> Option<DateTime<Utc>> {
    Some(
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc),
    )
}

#[test]
fn a_postfix_dsn_for_an_unknown_user_is_a_hard_bounce() {
    let expected = Feedback {
        kind: Kind::HardBounce,
        source: Source::Mailbox,
        recipient: Some("reader@example.org".into()),
        return_path: Some("abc123".into()),
        status: "5.1.1".into(),
        detail: "550 5.1.1 <reader@example.org>: Recipient address rejected: \
                 User unknown in local recipient table"
            .into(),
        event_id: Some(
            "<20250106101503.4Yb2Kx0qRbz1xZ@mail.news.example>/reader@example.org".into(),
        ),
        occurred_at: at("2025-01-06T10:15:01Z"),
    };
    assert_eq!(parse(fixture!("postfix-dsn-hard.eml")), vec![expected]);
}

#[test]
fn line_endings_do_not_change_what_a_report_says() {
    let crlf = fixture!("postfix-dsn-hard.eml");
    assert!(
        crlf.windows(2).any(|pair| pair == b"\r\n"),
        "the fixture is CRLF"
    );
    let lf: Vec<u8> = crlf.iter().copied().filter(|&byte| byte != b'\r').collect();
    assert_eq!(parse(&lf), parse(crlf));
}

#[test]
fn a_dsn_reports_only_its_failed_recipients_and_the_original_names_the_delivery() {
    let expected = Feedback {
        kind: Kind::HardBounce,
        source: Source::Mailbox,
        recipient: Some("closed@corp.example".into()),
        // Delivered to `bounces@` without the tag: the returned original's
        // Return-Path still has it.
        return_path: Some("ex456".into()),
        status: "5.2.1".into(),
        detail: "550 5.2.1 The email account that you tried to reach is disabled.".into(),
        event_id: Some(
            "<4c8e9a1b-7f2d-4e6a-9b3c-5d1e0f2a3b4c@EXCH01.corp.example>/closed@corp.example".into(),
        ),
        occurred_at: at("2025-01-07T08:30:05Z"),
    };
    assert_eq!(parse(fixture!("exchange-dsn-hard.eml")), vec![expected]);
}

#[test]
fn a_delayed_dsn_is_a_soft_bounce_dated_by_its_last_attempt() {
    let expected = Feedback {
        kind: Kind::SoftBounce,
        source: Source::Mailbox,
        recipient: Some("slow@slow.example".into()),
        return_path: Some("del789".into()),
        status: "4.4.7".into(),
        detail: "connect to mx.slow.example[198.51.100.7]:25: Connection timed out".into(),
        event_id: Some(
            "<20250108140005.5Zc3Ly1rScz2yA@mail.news.example>/slow@slow.example".into(),
        ),
        occurred_at: at("2025-01-08T13:59:58Z"),
    };
    assert_eq!(parse(fixture!("dsn-delayed.eml")), vec![expected]);
}

#[test]
fn a_dsn_that_failed_on_a_temporary_status_is_a_soft_bounce() {
    let expected = Feedback {
        kind: Kind::SoftBounce,
        source: Source::Mailbox,
        recipient: Some("full@mail.example".into()),
        return_path: Some("full42".into()),
        status: "4.2.2".into(),
        detail: "452 4.2.2 <full@mail.example>... Mailbox full".into(),
        event_id: Some("<202501090612.509CC9xQ012345@relay.mail.example>/full@mail.example".into()),
        // 07:12:09 +0100
        occurred_at: at("2025-01-09T06:12:09Z"),
    };
    assert_eq!(parse(fixture!("dsn-failed-4xx.eml")), vec![expected]);
}

#[test]
fn an_abuse_report_is_a_complaint_about_its_original_recipient() {
    let expected = Feedback {
        kind: Kind::Complaint,
        source: Source::Mailbox,
        recipient: Some("reader@mail.example".into()),
        return_path: Some("arf001".into()),
        status: "abuse".into(),
        detail: "ExampleMail-FBL/2.1".into(),
        event_id: Some("<fbl-7f3a9c@reports.mail.example>/reader@mail.example".into()),
        occurred_at: at("2025-01-09T12:00:00Z"),
    };
    assert_eq!(parse(fixture!("arf-abuse.eml")), vec![expected]);
}

#[test]
fn a_redacted_complaint_is_known_by_our_delivery_header() {
    let expected = Feedback {
        kind: Kind::Complaint,
        source: Source::Mailbox,
        recipient: None,
        return_path: Some("t-xyz".into()),
        status: "abuse".into(),
        detail: "Example-FBL/1.0".into(),
        event_id: Some("<jmrp-2b7e41@fbl.example>".into()),
        // 18:30:00 -0800, the report's date
        occurred_at: at("2025-01-11T02:30:00Z"),
    };
    assert_eq!(parse(fixture!("arf-redacted.eml")), vec![expected]);
}

#[test]
fn a_not_spam_report_is_no_complaint() {
    assert_eq!(parse(fixture!("arf-not-spam.eml")), NOTHING);
}

#[test]
fn a_qmail_notice_gives_each_recipient_its_own_status() {
    let feedback = parse(fixture!("qmail-hard.eml"));
    let event = |recipient: &str| {
        Some(format!(
            "<20250110090000.28213.qmail@mx.qmail.example>/{recipient}"
        ))
    };
    let expected = [
        Feedback {
            kind: Kind::HardBounce,
            source: Source::Mailbox,
            recipient: Some("gone@qmail.example".into()),
            return_path: Some("qm77".into()),
            status: "5.1.1".into(),
            detail: "Sorry, no mailbox here by that name. (#5.1.1)".into(),
            event_id: event("gone@qmail.example"),
            occurred_at: at("2025-01-10T09:00:00Z"),
        },
        Feedback {
            kind: Kind::SoftBounce,
            source: Source::Mailbox,
            recipient: Some("slowpoke@slow.example".into()),
            return_path: Some("qm77".into()),
            status: "4.4.2".into(),
            detail: "Connected to 198.51.100.3 but connection died. (#4.4.2) I'm not going \
                     to try again; this message has been in the queue too long."
                .into(),
            event_id: event("slowpoke@slow.example"),
            occurred_at: at("2025-01-10T09:00:00Z"),
        },
    ];
    assert_eq!(feedback, expected);
}

#[test]
fn an_exim_failure_notice_is_a_hard_bounce() {
    let expected = Feedback {
        kind: Kind::HardBounce,
        source: Source::Mailbox,
        recipient: Some("someone@exim.example".into()),
        return_path: Some("ex99".into()),
        status: "5.1.1".into(),
        detail: "host mail.exim.example [192.0.2.40] SMTP error from remote mail server \
                 after RCPT TO:<someone@exim.example>: 550 5.1.1 <someone@exim.example>: \
                 Recipient address rejected: User unknown"
            .into(),
        event_id: Some("<E1tWxYz-000AbC-0D@mx.exim.example>/someone@exim.example".into()),
        occurred_at: at("2025-01-11T16:20:00Z"),
    };
    assert_eq!(parse(fixture!("exim-hard.eml")), vec![expected]);
}

#[test]
fn an_exim_delay_warning_is_a_soft_bounce() {
    let expected = Feedback {
        kind: Kind::SoftBounce,
        source: Source::Mailbox,
        recipient: Some("busy@busy.example".into()),
        return_path: Some("wait5".into()),
        status: "4.7.1".into(),
        detail: "host mx.busy.example [198.51.100.20] Delay reason: SMTP error from remote \
                 mail server after RCPT TO:<busy@busy.example>: 451 4.7.1 Greylisted, \
                 please try again later"
            .into(),
        event_id: Some("<E1tXaBc-000CdE-1F@mx.exim.example>/busy@busy.example".into()),
        occurred_at: at("2025-01-12T16:20:00Z"),
    };
    assert_eq!(parse(fixture!("exim-delayed.eml")), vec![expected]);
}

#[test]
fn a_mailer_daemon_notice_with_a_5xx_code_is_a_hard_bounce() {
    let expected = Feedback {
        kind: Kind::HardBounce,
        source: Source::Mailbox,
        recipient: Some("nobody@bigmail.example".into()),
        return_path: Some("gen5".into()),
        status: "5.1.1".into(),
        detail: "The error that the other server returned was: 550-5.1.1 The email account \
                 that you tried to reach does not exist. 550 5.1.1 \
                 https://support.bigmail.example/mail/?p=NoSuchUser a1si12345qkb.123 - gsmtp"
            .into(),
        event_id: Some(
            "<5e1a2b3c.0a1b2c3d.0004.0001.GMR@mx.bigmail.example>/nobody@bigmail.example".into(),
        ),
        // 07:45:00 -0800
        occurred_at: at("2025-01-12T15:45:00Z"),
    };
    assert_eq!(
        parse(fixture!("generic-mailer-daemon-5xx.eml")),
        vec![expected]
    );
}

#[test]
fn an_out_of_office_reply_is_not_a_bounce() {
    // Sent from the null return path, and it speaks of 550 messages.
    assert_eq!(parse(fixture!("out-of-office.eml")), NOTHING);
}

#[test]
fn a_reader_writing_550_under_a_bounce_subject_is_not_a_bounce() {
    assert_eq!(parse(fixture!("reader-reply.eml")), NOTHING);
}

#[test]
fn our_own_mail_come_back_is_never_a_report() {
    let raw = fixture!("looped-own-mail.eml");
    assert_eq!(parse(raw), NOTHING);
    // Without our header it would read as a bounce: the header is what
    // keeps it out.
    let text = String::from_utf8_lossy(raw).replace("X-Broadsheet-Delivery: loop1\n", "");
    let kinds: Vec<Kind> = parse(text.as_bytes()).iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [Kind::HardBounce]);
}

#[test]
fn what_is_no_message_at_all_says_nothing() {
    assert_eq!(parse(b""), NOTHING);
    assert_eq!(parse(b"\x00\xff not a message"), NOTHING);
}

#[test]
fn the_tag_is_between_the_first_plus_and_the_at() {
    assert_eq!(tag_of("bounces+abc123@news.example"), Some("abc123"));
    assert_eq!(tag_of("<news+t-1@news.example>"), Some("t-1"));
    assert_eq!(tag_of("Broadsheet <bounces+a+b@news.example>"), Some("a+b"));
    assert_eq!(tag_of("bounces@news.example"), None);
    assert_eq!(tag_of("bounces+@news.example"), None);
    assert_eq!(tag_of("<>"), None);
}

#[test]
fn the_reports_own_recipient_headers_name_the_delivery_before_the_original() {
    let top = Fields::header("To: bounces+to@x.example\nX-Original-To: bounces+first@x.example");
    let original = Fields::header("Return-Path: <bounces+second@x.example>");
    assert_eq!(delivery_tag(&top, Some(&original), None), Some("first"));
    let untagged = Fields::header("To: bounces@x.example");
    assert_eq!(
        delivery_tag(&untagged, Some(&original), None),
        Some("second")
    );
    let ours = Fields::header("Return-Path: <bounces@x.example>\nX-Broadsheet-Delivery: d-9");
    let sender = Some("<bounces+third@x.example>");
    assert_eq!(delivery_tag(&untagged, Some(&ours), sender), Some("third"));
    assert_eq!(delivery_tag(&untagged, Some(&ours), None), Some("d-9"));
}

#[test]
fn a_detail_is_collapsed_and_cut_at_a_character_boundary() {
    assert_eq!(
        detail("  550  5.1.1\n    user\tunknown "),
        "550 5.1.1 user unknown"
    );
    let long = detail(&"é".repeat(400));
    assert_eq!(long.chars().count(), 300);
}
