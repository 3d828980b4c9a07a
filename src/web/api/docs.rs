//! `GET /api/docs`: the OpenAPI document as a page of the site, drawn on
//! the server from the same document as `/api/openapi.json`. No viewer
//! script from a CDN (nothing third-party runs on our pages, and it works
//! offline and without JavaScript).

use serde::Serialize;
use serde_json::Value;

/// One operation, as the page lists it.
#[derive(Debug, Serialize)]
struct Operation {
    method: String,
    path: String,
    summary: String,
    description: String,
    parameters: Vec<Field>,
    body: Option<Content>,
    responses: Vec<Answer>,
}

/// A request's or an answer's body: its media type and schema.
#[derive(Debug, Serialize)]
struct Content {
    media: String,
    kind: String,
    /// A schema of the document's own, listed on the page (`#schema-…`).
    named: bool,
}

impl Content {
    fn of(content: &Value) -> Option<Self> {
        let (media, body) = content.as_object()?.iter().next()?;
        Some(Self {
            media: media.clone(),
            kind: kind(&body["schema"]),
            named: body["schema"]["$ref"].is_string(),
        })
    }
}

/// A parameter or a schema's property.
#[derive(Debug, Serialize)]
struct Field {
    name: String,
    /// Where a parameter goes (path, query, header); empty for properties.
    place: String,
    kind: String,
    required: bool,
    description: String,
}

#[derive(Debug, Serialize)]
struct Answer {
    status: String,
    description: String,
    body: Option<Content>,
}

#[derive(Debug, Serialize)]
struct Section {
    tag: String,
    description: String,
    operations: Vec<Operation>,
}

#[derive(Debug, Serialize)]
struct Schema {
    name: String,
    description: String,
    fields: Vec<Field>,
}

/// What `admin/api_docs.html` shows: the document's sections by tag, and
/// its schemas.
#[derive(Debug, Serialize)]
pub struct Reference {
    title: String,
    description: String,
    sections: Vec<Section>,
    schemas: Vec<Schema>,
}

impl Reference {
    pub fn of(document: &utoipa::openapi::OpenApi) -> Self {
        let document = serde_json::to_value(document).unwrap_or_default();
        let mut sections: Vec<Section> = document["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|tag| Section {
                tag: text(tag, "name"),
                description: text(tag, "description"),
                operations: Vec::new(),
            })
            .collect();
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for method in ["get", "post", "put", "patch", "delete"] {
                let operation = &item[method];
                if operation.is_null() {
                    continue;
                }
                let tag = operation["tags"][0].as_str().unwrap_or("");
                section_for(&mut sections, tag)
                    .operations
                    .push(Operation::of(method, path, operation));
            }
        }
        sections.retain(|section| !section.operations.is_empty());
        let schemas = document["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, schema)| Schema {
                name: name.clone(),
                description: text(schema, "description"),
                fields: properties(schema),
            })
            .collect();
        Self {
            title: text(&document["info"], "title"),
            description: text(&document["info"], "description"),
            sections,
            schemas,
        }
    }
}

/// The section of `tag`, added at the end if the document lists no such tag.
fn section_for<'a>(sections: &'a mut Vec<Section>, tag: &str) -> &'a mut Section {
    let index = match sections.iter().position(|s| s.tag == tag) {
        Some(index) => index,
        None => {
            sections.push(Section {
                tag: tag.to_owned(),
                description: String::new(),
                operations: Vec::new(),
            });
            sections.len() - 1
        }
    };
    &mut sections[index]
}

impl Operation {
    fn of(method: &str, path: &str, operation: &Value) -> Self {
        Self {
            method: method.to_uppercase(),
            path: path.to_owned(),
            summary: text(operation, "summary"),
            description: text(operation, "description"),
            parameters: parameters(operation),
            body: Content::of(&operation["requestBody"]["content"]),
            responses: operation["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(status, answer)| Answer {
                    status: status.clone(),
                    description: text(answer, "description"),
                    body: Content::of(&answer["content"]),
                })
                .collect(),
        }
    }
}

/// A text field of `value`, or "".
fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or("").to_owned()
}

fn parameters(operation: &Value) -> Vec<Field> {
    operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|parameter| Field {
            name: text(parameter, "name"),
            place: text(parameter, "in"),
            kind: kind(&parameter["schema"]),
            required: parameter["required"].as_bool().unwrap_or(false),
            description: text(parameter, "description"),
        })
        .collect()
}

fn properties(schema: &Value) -> Vec<Field> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, property)| Field {
            name: name.clone(),
            place: String::new(),
            kind: kind(property),
            required: required.contains(&name.as_str()),
            description: text(property, "description"),
        })
        .collect()
}

/// A schema in a few words: `Article`, `array of Article`, `string
/// (date-time)`, `integer or null`.
fn kind(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    if let Some(choices) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        return choices.iter().map(kind).collect::<Vec<_>>().join(" or ");
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        return format!("one of {}", values.join(", "));
    }
    let types: Vec<String> = match &schema["type"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let words: Vec<String> = types
        .iter()
        .map(|name| match name.as_str() {
            "array" => format!("array of {}", kind(&schema["items"])),
            other => match schema["format"].as_str() {
                Some(format) if other != "null" => format!("{other} ({format})"),
                _ => other.to_owned(),
            },
        })
        .collect();
    if words.is_empty() {
        "any".into()
    } else {
        words.join(" or ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_told_in_words() {
        let of = |text: &str| kind(&serde_json::from_str(text).expect("json"));
        assert_eq!(
            of(r##"{"$ref": "#/components/schemas/Article"}"##),
            "Article"
        );
        assert_eq!(
            of(r##"{"type": "array", "items": {"$ref": "#/components/schemas/Tag"}}"##),
            "array of Tag"
        );
        assert_eq!(
            of(r#"{"type": ["string", "null"], "format": "date-time"}"#),
            "string (date-time) or null"
        );
        assert_eq!(
            of(r#"{"type": "string", "enum": ["a", "b"]}"#),
            "one of a, b"
        );
        assert_eq!(of("{}"), "any");
    }
}
