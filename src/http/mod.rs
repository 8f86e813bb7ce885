//! The HTTP layer: thin handlers, one file per resource, plus the pieces
//! every route shares (request id, error schema, extractor configuration).
//!
//! Routes are registered only through [`utoipa_actix_web`]'s `service(…)`, so
//! the OpenAPI document is generated from the very registrations that route
//! requests: a route cannot exist without appearing in `/openapi.json`.

pub mod admin;
pub mod auth;
pub mod client_ip;
pub mod contests;
pub mod edge;
pub mod entries;
pub mod health;
pub mod me;
pub mod openapi;
pub mod ops;
pub mod request_id;
pub mod views;
pub mod webhooks;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::{App, HttpRequest, web};
use utoipa_actix_web::AppExt as _;

use crate::error::{ApiError, ErrorCode};
use crate::startup::AppState;

/// Every route of the service, in one place.
fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(health::live)
        .service(health::ready)
        .service(openapi::document)
        .service(auth::apple)
        .service(auth::refresh)
        .service(auth::logout)
        .service(me::me)
        .service(me::delete_me)
        .service(admin::set_roles)
        .service(entries::my_entries)
        .service(contests::create)
        .service(contests::list)
        .service(contests::read)
        .service(contests::edit)
        .service(contests::open)
        .service(contests::lock)
        .service(contests::cancel)
        .service(contests::settle)
        .service(entries::join)
        .service(entries::withdraw)
        .service(entries::list)
        .service(entries::mine)
        .service(ops::actors)
        .service(ops::actor)
        .service(ops::metrics)
        .service(webhooks::stripe);
}

/// The OpenAPI document of every registered route.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, doc) = App::new()
        .into_utoipa_app()
        .openapi(openapi::base())
        .configure(configure)
        .split_for_parts();
    doc
}

/// The application: `main` and the tests both get it from here (through
/// [`crate::startup::Application::build`]).
pub fn app(
    state: web::Data<AppState>,
    docs: web::Data<openapi::ApiDocs>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.settings.server.body_limit_bytes;
    let edge_config = web::Data::new(edge::EdgeConfig {
        hsts: state.settings.server.hsts,
    });
    let (app, _) = App::new()
        .into_utoipa_app()
        .configure(configure)
        .split_for_parts();
    app.app_data(state)
        .app_data(docs)
        .app_data(edge_config)
        .app_data(
            web::JsonConfig::default()
                .limit(limit)
                .error_handler(|err, _req| json_error(err).into()),
        )
        .app_data(web::PayloadConfig::new(limit))
        .app_data(web::PathConfig::default().error_handler(|err, _req| {
            ApiError::new(ErrorCode::InvalidRequest)
                .with_message(format!("bad path parameter: {err}"))
                .into()
        }))
        .app_data(web::QueryConfig::default().error_handler(|err, _req| {
            ApiError::new(ErrorCode::InvalidRequest)
                .with_message(format!("bad query parameter: {err}"))
                .into()
        }))
        .default_service(web::to(no_route))
        .wrap(actix_web::middleware::from_fn(edge::edge))
}

/// A JSON body that could not be read, mapped onto api.md's codes.
fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { .. }
        | JsonPayloadError::Overflow { .. }
        | JsonPayloadError::Payload(PayloadError::Overflow) => {
            ApiError::new(ErrorCode::PayloadTooLarge)
        }
        JsonPayloadError::ContentType => ApiError::new(ErrorCode::UnsupportedMediaType),
        JsonPayloadError::Deserialize(e) => ApiError::new(ErrorCode::InvalidRequest)
            .with_message(format!("the body is not valid for this route: {e}")),
        other => ApiError::new(ErrorCode::InvalidRequest)
            .with_message(format!("the body could not be read: {other}")),
    }
}

/// No route matched: `405` with `Allow` when the path exists for other
/// methods, `404` otherwise.
async fn no_route(
    req: HttpRequest,
    docs: web::Data<openapi::ApiDocs>,
) -> Result<actix_web::HttpResponse, ApiError> {
    let allowed = docs.methods_for(req.path());
    Err(if allowed.is_empty() {
        ApiError::new(ErrorCode::NotFound).with_message("no route matches this path")
    } else {
        ApiError::new(ErrorCode::MethodNotAllowed).with_allow(allowed.join(", "))
    })
}
