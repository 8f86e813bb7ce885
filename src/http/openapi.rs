//! `GET /openapi.json`, and the route table derived from the same document
//! that tells a wrong method (`405`) from an unknown path (`404`).

use actix_web::{HttpResponse, get, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder};

/// The parts of the document that no handler carries.
pub fn base() -> OpenApi {
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("contest-backend")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Paid contests for the iOS app. Errors follow the schema ErrorBody; \
                     codes are listed in ErrorCode.",
                ))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    "bearer",
                    SecurityScheme::Http(
                        HttpBuilder::new()
                            .scheme(HttpAuthScheme::Bearer)
                            .bearer_format("JWT")
                            .build(),
                    ),
                )
                .build(),
        ))
        .build()
}

/// The generated document, rendered once, and its paths for routing.
pub struct ApiDocs {
    json: String,
    /// (path segments, `{…}` for a parameter; methods in upper case)
    routes: Vec<(Vec<String>, Vec<String>)>,
}

impl ApiDocs {
    pub fn new(doc: &OpenApi) -> Result<Self, serde_json::Error> {
        let json = doc.to_json()?;
        let value: serde_json::Value = serde_json::from_str(&json)?;
        let routes = value
            .get("paths")
            .and_then(|p| p.as_object())
            .map(|paths| {
                paths
                    .iter()
                    .map(|(path, item)| {
                        let segments = path.split('/').map(str::to_owned).collect();
                        let methods = item
                            .as_object()
                            .map(|ops| ops.keys().map(|m| m.to_uppercase()).collect())
                            .unwrap_or_default();
                        (segments, methods)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ApiDocs { json, routes })
    }

    /// The methods documented for the route that matches `path`.
    pub fn methods_for(&self, path: &str) -> Vec<String> {
        let segments: Vec<&str> = path.split('/').collect();
        let mut methods: Vec<String> = self
            .routes
            .iter()
            .filter(|(pattern, _)| {
                pattern.len() == segments.len()
                    && pattern.iter().zip(&segments).all(|(p, s)| {
                        (p.starts_with('{') && p.ends_with('}') && !s.is_empty()) || p == s
                    })
            })
            .flat_map(|(_, m)| m.iter().cloned())
            .collect();
        methods.sort();
        methods.dedup();
        methods
    }
}

/// This document.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "the OpenAPI 3 document of every route", content_type = "application/json"))
)]
#[get("/openapi.json")]
pub async fn document(docs: web::Data<ApiDocs>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(docs.json.clone())
}
