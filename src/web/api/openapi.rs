//! The OpenAPI 3.1 document's frame: its description, the bearer scheme,
//! and the answers every operation shares. The operations come from the
//! handlers themselves (`routes`).

use utoipa::{
    Modify, OpenApi,
    openapi::{
        ContentBuilder, Ref, Response, ResponseBuilder,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Broadsheet API",
        version = "1",
        description = "Articles, digests, subscribers, the suppression list and figures of a \
            Broadsheet publication. \
            Every call needs `Authorization: Bearer <token>` (`broadsheet token create`). \
            Times are RFC 3339 in UTC (`2026-12-07T09:30:00.000Z`), given and taken. \
            Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`. POSTs accept an \
            `Idempotency-Key` header: a retry with the same key and body gets the first answer."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "articles", description = "Articles, drafts and publishing"),
        (name = "digests", description = "Digest campaigns: start, watch, pause, resume, cancel"),
        (name = "subscribers", description = "Readers, their consents, export and erasure"),
        (name = "suppressions", description = "Addresses never mailed again: list, add, remove (admin tokens)"),
        (name = "webhooks", description = "Endpoints that hear of readers' and campaigns' events, signed (admin tokens)"),
        (name = "stats", description = "Figures")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Answers any operation may give, said once here rather than on each
/// handler: 400 (a malformed query, body or text), 429 (the per-token
/// limit, or too many wrong tokens from the caller's address) and 503 (the
/// database cannot be reached); with a body, 413 and 415 too. An
/// operation's own description of an answer is kept.
pub fn with_shared_answers(mut document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let (every, with_body) = shared_answers();
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let shared = every.iter().chain(
                with_body
                    .iter()
                    .filter(|_| operation.request_body.is_some()),
            );
            for (status, answer) in shared {
                operation
                    .responses
                    .responses
                    .entry((*status).into())
                    .or_insert_with(|| answer.clone().into());
            }
        }
    }
    document
}

/// Answers by status.
type Answers<const N: usize> = [(&'static str, Response); N];

/// The shared answers by status: those of every operation, and those of
/// operations with a body.
fn shared_answers() -> (Answers<3>, Answers<2>) {
    let answer = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    let every = [
        (
            "400",
            answer("A malformed query parameter or body, or text that cannot be stored."),
        ),
        (
            "429",
            answer(
                "Too many requests for this token, or too many calls with wrong tokens from \
                 this address; see Retry-After.",
            ),
        ),
        (
            "503",
            answer("The database cannot be reached just now; see Retry-After."),
        ),
    ];
    let with_body = [
        (
            "413",
            answer("The body is larger than this operation takes."),
        ),
        (
            "415",
            answer("The body is not of the documented content type."),
        ),
    ];
    (every, with_body)
}
