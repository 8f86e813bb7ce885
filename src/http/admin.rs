//! `/v1/admin/*`: role administration.

use actix_web::{HttpRequest, HttpResponse, put, web};
use serde::Deserialize;
use uuid::Uuid;

use super::views::UserView;
use crate::auth::access::{self, Action, Relation};
use crate::auth::extract::AuthUser;
use crate::auth::roles::{Role, Roles};
use crate::auth::sessions::{self, Granter};
use crate::error::{ApiError, ErrorBody};
use crate::startup::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRolesRequest {
    /// The complete set of roles: any of `organizer`, `ops`, `admin`
    /// (`user` is implied).
    pub roles: Vec<String>,
}

/// Replaces a user's roles (admin only; not one's own).
#[utoipa::path(
    tag = "administration",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the user")),
    request_body = SetRolesRequest,
    responses(
        (status = 200, body = UserView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    )
)]
#[put("/v1/admin/users/{id}/roles")]
pub async fn set_roles(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<SetRolesRequest>,
) -> Result<HttpResponse, ApiError> {
    access::check(&admin.roles, Relation::default(), Action::GrantRoles, false)?;
    let mut roles = Vec::new();
    for name in &body.roles {
        match Role::parse(name) {
            Some(role) => roles.push(role),
            None => {
                return Err(ApiError::validation(&[(
                    "roles",
                    "each role must be one of user, organizer, ops, admin",
                )]));
            }
        }
    }
    let user = sessions::set_roles(
        &state.db,
        Granter::User(admin.id),
        path.into_inner(),
        &Roles::from_roles(roles),
        state.client_ip(&req),
    )
    .await?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}
