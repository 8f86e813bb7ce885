//! `/openapi.json` is a valid OpenAPI 3 document and lists exactly the
//! routes the app serves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::TestApp;
use serde_json::Value;

/// Every route of api.md implemented so far: (method, path). A route added
/// to the app must be added here, and the document must follow.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/openapi.json"),
    ("POST", "/v1/auth/apple"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/auth/logout"),
    ("GET", "/v1/me"),
    ("DELETE", "/v1/me"),
    ("PUT", "/v1/admin/users/{id}/roles"),
    ("GET", "/v1/me/entries"),
    ("POST", "/v1/contests"),
    ("GET", "/v1/contests"),
    ("GET", "/v1/contests/{id}"),
    ("PATCH", "/v1/contests/{id}"),
    ("POST", "/v1/contests/{id}/open"),
    ("POST", "/v1/contests/{id}/lock"),
    ("POST", "/v1/contests/{id}/cancel"),
    ("POST", "/v1/contests/{id}/settle"),
    ("POST", "/v1/contests/{id}/entries"),
    ("DELETE", "/v1/contests/{id}/entries/me"),
    ("GET", "/v1/contests/{id}/entries"),
    ("GET", "/v1/contests/{id}/entries/me"),
    ("GET", "/ops/actors"),
    ("GET", "/ops/actors/{contest_id}"),
    ("GET", "/metrics"),
    ("POST", "/v1/webhooks/stripe"),
];

async fn document(app: &TestApp) -> Value {
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    res.json().await.unwrap()
}

/// Follows every `$ref` in `value` and fails on one that does not resolve.
fn check_refs(doc: &Value, value: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                let pointer = r.strip_prefix('#').expect("local refs only");
                assert!(doc.pointer(pointer).is_some(), "unresolved $ref {r}");
            }
            map.values().for_each(|v| check_refs(doc, v));
        }
        Value::Array(items) => items.iter().for_each(|v| check_refs(doc, v)),
        _ => {}
    }
}

#[actix_web::test]
async fn the_document_is_valid_openapi_3() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["info"]["title"].is_string());
    assert!(doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().unwrap();
    let mut operation_ids = BTreeSet::new();
    for (path, item) in paths {
        assert!(path.starts_with('/'), "{path}");
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path} has responses");
            let id = op["operationId"].as_str().unwrap();
            assert!(
                operation_ids.insert(id.to_owned()),
                "duplicate operationId {id}"
            );
            // Every path parameter is declared.
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(|c| c == '{' || c == '}');
                let declared = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path"));
                assert!(declared, "{method} {path} declares {name}");
            }
        }
    }
    check_refs(&doc, &doc);
    // utoipa can read back what it wrote.
    let _: utoipa::openapi::OpenApi = serde_json::from_value(doc.clone()).unwrap();
    // The error schema and its closed code set are documented.
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    assert_eq!(codes.len(), contest_backend::error::ErrorCode::ALL.len());
}

#[actix_web::test]
async fn the_document_lists_exactly_the_apps_routes() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, expected);

    // And the app really routes each one: the router's own 404/405 never
    // answers a documented (method, path).
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{id}", &uuid::Uuid::new_v4().to_string())
            .replace("{contest_id}", &uuid::Uuid::new_v4().to_string());
        let res = app
            .client
            .request(method.parse().unwrap(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            !body.contains("no route matches this path"),
            "{method} {path} is not routed: {body}"
        );
    }
}
