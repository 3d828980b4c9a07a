//! The suppression list in the console and the API, for admins only, each
//! change audited; a reader's bounces and suppression on their console page
//! and in their export; bounce and complaint rates on the dashboard and a
//! campaign's page, marked against the limits mailbox providers enforce.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::api::call;
use crate::support;

use std::time::Duration;

use broadsheet::{
    digest::Started,
    editors::Role,
    feedback::{Applied, Feedback, Kind, Source},
};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Backend, TestApp};

storage_tests!(
    admins_add_find_and_remove_suppressions_in_the_console_each_audited,
    an_erased_readers_entry_stays_and_editors_cannot_touch_the_list,
    admin_tokens_list_add_and_remove_suppressions_with_the_documented_statuses,
    a_readers_bounce_shows_on_their_console_page_and_in_their_export,
    the_dashboard_and_the_campaign_mark_a_complaint_rate_over_the_limit,
);

const PAGE: &str = "/admin/suppressions";
const REMOVE: &str = "/admin/suppressions/remove";

async fn audited(app: &TestApp, action: &str) -> i64 {
    app.scalar(&format!(
        "SELECT COUNT(*) FROM audit_log WHERE action = '{action}'"
    ))
    .await
}

/// A new article an hour old, then "send now": one more digest to every
/// digest reader, delivered. Returns the campaign's id.
async fn one_more_digest(app: &TestApp, slug: &str) -> String {
    let published = (app.clock.now() - chrono::Duration::hours(1)).to_rfc3339();
    app.import_article(&format!(
        "+++\ntitle = \"Story {slug}\"\nslug = \"{slug}\"\npublished_at = \"{published}\"\n+++\nBody.\n"
    ))
    .await;
    let Started::Campaign { id, .. } = app.send_digest_now().await else {
        panic!("a campaign starts");
    };
    app.drain_outbox().await;
    id
}

/// A provider's report about `address`, found by the address (providers'
/// webhooks are authenticated, so they need no tag).
fn report(kind: Kind, address: &str, status: &str, event_id: &str) -> Feedback {
    Feedback {
        kind,
        source: Source::Ses,
        recipient: Some(address.to_owned()),
        return_path: None,
        status: status.to_owned(),
        detail: format!("{status} reported by the provider"),
        event_id: Some(event_id.to_owned()),
        occurred_at: None,
    }
}

async fn admins_add_find_and_remove_suppressions_in_the_console_each_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.signed_in_editor("boss@example.com", Role::Admin).await;
    let fields = [("address", "gone@example.com"), ("note", "asked by phone")];
    assert_eq!(admin.submit(PAGE, PAGE, &fields).await.status(), 303);
    let list = admin.get(PAGE).await.text().await.unwrap();
    assert!(
        list.contains("asked by phone") && list.contains("<td>manual</td>"),
        "{list}"
    );
    assert!(list.contains("erased or not a reader"), "no reader has it");
    // Found by the whole address, its domain in any case; another finds nothing.
    let found = admin
        .get("/admin/suppressions?address=gone%40EXAMPLE.com")
        .await;
    assert_eq!(found.status(), 200);
    assert!(found.text().await.unwrap().contains("asked by phone"));
    let other = admin
        .get("/admin/suppressions?address=other%40example.com")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !other.contains("asked by phone") && other.contains("is not on the list"),
        "{other}"
    );
    // Added twice: said so, recorded once.
    let twice = admin.submit(PAGE, PAGE, &fields).await;
    assert_eq!(twice.status(), 200);
    assert!(twice.text().await.unwrap().contains("on the list already"));
    assert_eq!(audited(&app, "suppression.add").await, 1);
    let audit = admin.get("/admin/audit").await.text().await.unwrap();
    assert!(audit.contains("suppression.add") && audit.contains("editor:boss@example.com"));
    assert!(
        !audit.contains("gone@example.com"),
        "the log keeps the hash, not the address"
    );
    // Refusals say why, with a 4xx.
    let long = "x".repeat(501);
    for (address, note, why) in [
        ("not an address", "", "not an email address"),
        ("long@example.com", long.as_str(), "at most 500 characters"),
    ] {
        let fields = [("address", address), ("note", note)];
        let refused = admin.submit(PAGE, PAGE, &fields).await;
        assert_eq!(refused.status(), 422, "{address}");
        assert!(refused.text().await.unwrap().contains(why), "{address}");
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM suppressions").await, 1);
    // Removed and audited; a second time there is nothing to remove.
    let address = [("address", "gone@example.com")];
    assert_eq!(admin.submit(PAGE, REMOVE, &address).await.status(), 303);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM suppressions").await, 0);
    assert_eq!(audited(&app, "suppression.remove").await, 1);
    let again = admin.submit(PAGE, REMOVE, &address).await;
    assert_eq!(again.status(), 404);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("not on the suppression list")
    );
    app.stop().await;
}

async fn an_erased_readers_entry_stays_and_editors_cannot_touch_the_list(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_reader("leaving@example.com", false).await;
    let id = app.subscriber_id("leaving@example.com").await;
    let admin = app.signed_in_editor("boss@example.com", Role::Admin).await;
    let reader = format!("/admin/readers/{id}");
    let erased = admin.submit(&reader, &format!("{reader}/erase"), &[]).await;
    assert_eq!(erased.status(), 303);
    let list = admin.get(PAGE).await.text().await.unwrap();
    assert!(
        list.contains("<td>erased</td>") && !list.contains("leaving@example.com"),
        "{list}"
    );
    assert!(
        !list.contains("Mail this reader again?"),
        "no remove button on an erased entry"
    );
    let address = [("address", "leaving@example.com")];
    let refused = admin.submit(PAGE, REMOVE, &address).await;
    assert_eq!(refused.status(), 409);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("stays suppressed until they sign up again")
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM suppressions WHERE reason = 'erased'")
            .await,
        1
    );
    assert_eq!(audited(&app, "suppression.remove").await, 0);
    // An editor without the admin role neither sees nor changes the list.
    let editor = app.signed_in_editor("ed@example.com", Role::Editor).await;
    assert_eq!(editor.get(PAGE).await.status(), 403);
    for action in [PAGE, REMOVE] {
        let fields = [("address", "someone@example.com")];
        let refused = editor.submit("/admin", action, &fields).await;
        assert_eq!(refused.status(), 403, "{action}");
    }
    let menu = "href=\"/admin/suppressions\"";
    let editors_dashboard = editor.get("/admin").await.text().await.unwrap();
    assert!(!editors_dashboard.contains(menu), "not in an editor's menu");
    let admins_dashboard = admin.get("/admin").await.text().await.unwrap();
    assert!(admins_dashboard.contains(menu), "in an admin's menu");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM suppressions").await, 1);
    app.stop().await;
}

async fn admin_tokens_list_add_and_remove_suppressions_with_the_documented_statuses(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let admin = app.api_token("dpo", Role::Admin).await;
    let editor = app.api_token("writer", Role::Editor).await;
    let list = "/api/v1/suppressions";
    let gone = json!({ "address": "gone@example.com", "note": "bounced at the old host" });
    for (method, path, body) in [
        (Method::GET, list, None),
        (Method::POST, list, Some(gone.clone())),
        (
            Method::DELETE,
            "/api/v1/suppressions/gone%40example.com",
            None,
        ),
    ] {
        let (status, answer) = call(&app, &editor, method.clone(), path, body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{method} {path}"
        );
    }
    let (status, entry) = call(&app, &admin, Method::POST, list, Some(gone.clone())).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(
        (entry["reason"].as_str(), entry["note"].as_str()),
        (Some("manual"), Some("bounced at the old host"))
    );
    assert!(entry["email"].is_null(), "no reader has it");
    let (status, again) = call(&app, &admin, Method::POST, list, Some(gone)).await;
    assert_eq!(status, 200, "listed already");
    assert_eq!(again["created_at"], entry["created_at"]);
    for (body, field) in [
        (json!({ "address": "not an address" }), "address"),
        (
            json!({ "address": "long@example.com", "note": "x".repeat(501) }),
            "note",
        ),
    ] {
        let (status, answer) = call(&app, &admin, Method::POST, list, Some(body)).await;
        assert_eq!(
            (status, answer["error"]["field"].as_str()),
            (422, Some(field)),
            "{answer}"
        );
    }
    // A second entry a second later: newest first, then the cursor.
    app.clock.advance(Duration::from_secs(1));
    let later = json!({ "address": "later@example.com" });
    assert_eq!(
        call(&app, &admin, Method::POST, list, Some(later)).await.0,
        201
    );
    let (status, page) = call(&app, &admin, Method::GET, list, None).await;
    assert_eq!(status, 200);
    let page = page.as_array().unwrap().clone();
    assert_eq!(page.len(), 2);
    assert_eq!(page[1]["email_hash"], entry["email_hash"], "oldest last");
    let before = page[0]["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(before).is_ok(),
        "{before}"
    );
    let path = format!("{list}?before={}", before.replace('+', "%2B"));
    let (_, older) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(older.as_array().unwrap().len(), 1);
    assert_eq!(older[0]["email_hash"], entry["email_hash"]);
    let path = format!("{list}?address=gone%40example.com");
    let (_, found) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["note"], "bounced at the old host");
    let path = format!("{list}?before=yesterday");
    let (status, answer) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (422, Some("before"))
    );
    let path = format!("{list}?address=nope");
    let (status, answer) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (422, Some("address"))
    );
    // Removed once; then it is not listed; a non-address is refused.
    for (address, status) in [
        ("gone%40example.com", 204),
        ("gone%40example.com", 404),
        ("nope", 422),
    ] {
        let path = format!("{list}/{address}");
        let (got, answer) = call(&app, &admin, Method::DELETE, &path, None).await;
        assert_eq!(got, status, "{address}: {answer}");
    }
    // An erased reader's entry stays.
    app.confirmed_reader("leaving@example.com", false).await;
    let id = app.subscriber_id("leaving@example.com").await;
    let erase = format!("/api/v1/subscribers/{id}");
    assert_eq!(
        call(&app, &admin, Method::DELETE, &erase, None).await.0,
        204
    );
    let path = format!("{list}/leaving%40example.com");
    let (status, answer) = call(&app, &admin, Method::DELETE, &path, None).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("erased"))
    );
    // Each change is audited under the token's name.
    let by_token = |action: &str| {
        format!("SELECT COUNT(*) FROM audit_log WHERE actor = 'token:dpo' AND action = '{action}'")
    };
    assert_eq!(app.scalar(&by_token("suppression.add")).await, 2);
    assert_eq!(app.scalar(&by_token("suppression.remove")).await, 1);
    // Every answer is documented.
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let paths = &doc["paths"];
    let documented: [(&str, &str, &[&str]); 3] = [
        ("/api/v1/suppressions", "get", &["200", "401", "403", "422"]),
        (
            "/api/v1/suppressions",
            "post",
            &["200", "201", "401", "403", "422"],
        ),
        (
            "/api/v1/suppressions/{address}",
            "delete",
            &["204", "401", "403", "404", "409", "422"],
        ),
    ];
    for (path, method, statuses) in documented {
        for status in statuses {
            let answer = &paths[path][method]["responses"][status];
            assert!(answer.is_object(), "{method} {path} documents {status}");
        }
    }
    app.stop().await;
}

async fn a_readers_bounce_shows_on_their_console_page_and_in_their_export(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.digest_reader("gone@example.com", "daily", &[], false)
        .await;
    let campaign = one_more_digest(&app, "first").await;
    let bounce = report(Kind::HardBounce, "gone@example.com", "5.1.1", "bounce-1");
    assert_eq!(
        app.feedbacks.apply(&bounce).await.unwrap(),
        Applied::Stored { suppressed: true }
    );
    let id = app.subscriber_id("gone@example.com").await;
    let reader = format!("/admin/readers/{id}");
    let editor = app.signed_in_editor("ed@example.com", Role::Editor).await;
    let page = editor.get(&reader).await.text().await.unwrap();
    for shown in [
        "id=\"suppression\"",
        "hard_bounce",
        "5.1.1 reported by the provider",
        "<td>ses</td>",
        campaign.as_str(),
    ] {
        assert!(
            page.contains(shown),
            "{shown} on the reader's page:\n{page}"
        );
    }
    assert!(
        !page.contains("Take off the suppression list"),
        "for admins only"
    );
    let admin = app.signed_in_editor("boss@example.com", Role::Admin).await;
    let export: Value = admin
        .get(&format!("{reader}/export"))
        .await
        .json()
        .await
        .unwrap();
    let reported = &export["delivery_reports"][0];
    assert_eq!(
        (
            reported["kind"].as_str(),
            reported["status"].as_str(),
            reported["source"].as_str(),
            reported["campaign_id"].as_str(),
        ),
        (
            Some("hard_bounce"),
            Some("5.1.1"),
            Some("ses"),
            Some(campaign.as_str())
        )
    );
    assert!(reported["occurred_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(export["suppression"]["reason"], "hard_bounce");
    // On the list by the reader's address; an admin takes them off it from
    // their page, and the report stays.
    let list = admin.get(PAGE).await.text().await.unwrap();
    assert!(list.contains("gone@example.com") && list.contains("<td>hard_bounce</td>"));
    let address = [("address", "gone@example.com")];
    assert_eq!(admin.submit(&reader, REMOVE, &address).await.status(), 303);
    let page = admin.get(&reader).await.text().await.unwrap();
    assert!(page.contains("Not suppressed.") && page.contains("5.1.1"));
    app.stop().await;
}

async fn the_dashboard_and_the_campaign_mark_a_complaint_rate_over_the_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for address in ["angry@example.com", "content@example.com"] {
        app.digest_reader(address, "daily", &[], false).await;
    }
    let campaign = one_more_digest(&app, "first").await;
    let editor = app.signed_in_editor("ed@example.com", Role::Editor).await;
    let quiet = editor.get("/admin").await.text().await.unwrap();
    assert!(
        !quiet.contains("class=\"over-limit\""),
        "nothing reported yet"
    );
    let complaint = report(Kind::Complaint, "angry@example.com", "abuse", "complaint-1");
    assert_eq!(
        app.feedbacks.apply(&complaint).await.unwrap(),
        Applied::Stored { suppressed: true }
    );
    // Over 30 days every message counts: the digests and the account emails.
    let sent = app
        .scalar(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE status = 'sent')
                  + (SELECT COUNT(*) FROM outbox WHERE status = 'sent')",
        )
        .await;
    let dashboard = editor.get("/admin").await.text().await.unwrap();
    for figure in [
        format!("id=\"count-sent\">{sent}<"),
        "id=\"count-complaints\">1<".to_owned(),
        "id=\"count-hard-bounces\">0<".to_owned(),
        "id=\"complaint-rate\" class=\"over-limit\"".to_owned(),
        "Over the limit".to_owned(),
    ] {
        assert!(dashboard.contains(&figure), "{figure} in:\n{dashboard}");
    }
    assert!(
        !dashboard.contains("id=\"bounce-rate\" class=\"over-limit\""),
        "no bounce"
    );
    // The campaign: one complaint of its two digests.
    let page = editor
        .get(&format!("/admin/campaigns/{campaign}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"campaign-complaints\">1<"), "{page}");
    assert!(page.contains("id=\"complaint-rate\" class=\"over-limit\""));
    assert!(page.contains("50.0 %") || page.contains("50 %"), "{page}");
    app.stop().await;
}
