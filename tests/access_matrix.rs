//! api.md's access matrix ("The access matrix"), every cell through HTTP,
//! and the typed matrix (`auth::access::cell`) pinned against the same
//! expected table.
//!
//! [`MATRIX`] is that table written out as data, one entry per (action,
//! caller), in api.md's order, each group headed by the api.md row it
//! mirrors. `—` is spelled out: `Status(401)` for the anonymous caller,
//! `Status(403)` with a token, `Status(404)` where existence must not leak
//! (a draft read by someone who may not see it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use common::{AppleApp, access, assert_error, contest_body, create_contest, open_contest};
use contest_backend::auth::access::{Access, Action, Column, cell};
use reqwest::Method;
use serde_json::{Value, json};

// ------------------------------------------------------------ the table

/// A row of api.md's access matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Row {
    /// list / read non-draft contest
    ReadNonDraft,
    /// read draft contest
    ReadDraft,
    /// create contest
    Create,
    /// edit / open / lock / cancel / settle
    Manage,
    /// join / withdraw own entry
    Enter,
    /// list a contest's entries
    ListEntries,
    /// grant roles
    GrantRoles,
    /// /ops/*, /metrics
    Operate,
    /// /health/*, /openapi.json, webhook
    Public,
}

/// A column of api.md's access matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Caller {
    Anonymous,
    User,
    /// Holds an entry in the contest at hand.
    Entrant,
    /// organizer (own): organizes the contest at hand.
    Own,
    /// organizer (other's): an organizer, not of the contest at hand.
    Other,
    Ops,
    Admin,
}

/// A cell's expected answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// `yes`: a 2xx.
    Yes,
    /// `yes (not self)`: a 2xx on another user, `403 FORBIDDEN` on oneself.
    YesNotSelf,
    /// `401 UNAUTHENTICATED`, `403 FORBIDDEN` or `404 NOT_FOUND`.
    Status(u16),
}

use Caller::{Admin, Anonymous, Entrant, Ops, Other, Own, User};
use Expect::{Status, Yes, YesNotSelf};
use Row::{
    Create, Enter, GrantRoles, ListEntries, Manage, Operate, Public, ReadDraft, ReadNonDraft,
};

/// api.md, "The access matrix", cell by cell (reviewed).
#[rustfmt::skip]
const MATRIX: [(Row, Caller, Expect); 63] = [
    // | list / read non-draft contest | — | yes | yes | yes | yes | yes | yes |
    (ReadNonDraft, Anonymous, Status(401)),
    (ReadNonDraft, User,      Yes),
    (ReadNonDraft, Entrant,   Yes),
    (ReadNonDraft, Own,       Yes),
    (ReadNonDraft, Other,     Yes),
    (ReadNonDraft, Ops,       Yes),
    (ReadNonDraft, Admin,     Yes),
    // | read draft contest | — | 404 | — | yes | 404 | 404 | yes |
    (ReadDraft, Anonymous, Status(401)),
    (ReadDraft, User,      Status(404)),
    // Choice: `—` on a draft is 404 (existence must not leak, as for the
    // user column). An entrant *of a draft* cannot exist: joining needs an
    // open contest and nothing returns to draft. Over HTTP this cell is
    // asked by the entrant of the other contests (so: holding entries
    // elsewhere reveals no draft); the typed cell (Entrant, draft) is
    // pinned to 404 by `the_typed_matrix_is_api_md_table`.
    (ReadDraft, Entrant,   Status(404)),
    (ReadDraft, Own,       Yes),
    (ReadDraft, Other,     Status(404)),
    (ReadDraft, Ops,       Status(404)),
    (ReadDraft, Admin,     Yes),
    // | create contest | — | 403 | 403 | yes | yes | 403 | yes |
    (Create, Anonymous, Status(401)),
    (Create, User,      Status(403)),
    (Create, Entrant,   Status(403)),
    (Create, Own,       Yes),
    (Create, Other,     Yes),
    (Create, Ops,       Status(403)),
    (Create, Admin,     Yes),
    // | edit / open / lock / cancel / settle | — | 403 | 403 | yes | 403 | 403 | yes |
    // Literal 403, also for edit and open, which act on a draft: the table
    // says 403 here, not `—`, although a 403 tells a stranger that the
    // draft exists (api.md's NOT_FOUND line says drafts must not leak).
    (Manage, Anonymous, Status(401)),
    (Manage, User,      Status(403)),
    (Manage, Entrant,   Status(403)),
    (Manage, Own,       Yes),
    (Manage, Other,     Status(403)),
    (Manage, Ops,       Status(403)),
    (Manage, Admin,     Yes),
    // | join / withdraw own entry | — | yes | yes | 403 (no entering one's own contest) | yes | yes | yes |
    (Enter, Anonymous, Status(401)),
    (Enter, User,      Yes),
    (Enter, Entrant,   Yes),
    (Enter, Own,       Status(403)),
    (Enter, Other,     Yes),
    (Enter, Ops,       Yes),
    (Enter, Admin,     Yes),
    // | list a contest's entries | — | 403 | 403 | yes | 403 | 403 | yes |
    (ListEntries, Anonymous, Status(401)),
    (ListEntries, User,      Status(403)),
    (ListEntries, Entrant,   Status(403)),
    (ListEntries, Own,       Yes),
    (ListEntries, Other,     Status(403)),
    (ListEntries, Ops,       Status(403)),
    (ListEntries, Admin,     Yes),
    // | grant roles | — | 403 | 403 | 403 | 403 | 403 | yes (not self) |
    (GrantRoles, Anonymous, Status(401)),
    (GrantRoles, User,      Status(403)),
    (GrantRoles, Entrant,   Status(403)),
    (GrantRoles, Own,       Status(403)),
    (GrantRoles, Other,     Status(403)),
    (GrantRoles, Ops,       Status(403)),
    (GrantRoles, Admin,     YesNotSelf),
    // | /ops/*, /metrics | — | 403 | 403 | 403 | 403 | yes | yes |
    (Operate, Anonymous, Status(401)),
    (Operate, User,      Status(403)),
    (Operate, Entrant,   Status(403)),
    (Operate, Own,       Status(403)),
    (Operate, Other,     Status(403)),
    (Operate, Ops,       Yes),
    (Operate, Admin,     Yes),
    // | /health/*, /openapi.json, webhook | yes | yes | yes | yes | yes | yes | yes |
    (Public, Anonymous, Yes),
    (Public, User,      Yes),
    (Public, Entrant,   Yes),
    (Public, Own,       Yes),
    (Public, Other,     Yes),
    (Public, Ops,       Yes),
    (Public, Admin,     Yes),
];

const ROWS: [Row; 9] = [
    ReadNonDraft,
    ReadDraft,
    Create,
    Manage,
    Enter,
    ListEntries,
    GrantRoles,
    Operate,
    Public,
];

const CALLERS: [Caller; 7] = [Anonymous, User, Entrant, Own, Other, Ops, Admin];

fn expected(row: Row, caller: Caller) -> Expect {
    let found: Vec<Expect> = MATRIX
        .iter()
        .filter(|(r, c, _)| (*r, *c) == (row, caller))
        .map(|(_, _, e)| *e)
        .collect();
    assert_eq!(found.len(), 1, "MATRIX has {row:?} × {caller:?} once");
    found[0]
}

// ------------------------------------------------- the typed matrix, pinned

/// Every `Column` (`caller_of` fails to compile when one is added).
const COLUMNS: [Column; 6] = [
    Column::User,
    Column::Entrant,
    Column::OwnOrganizer,
    Column::OtherOrganizer,
    Column::Ops,
    Column::Admin,
];

/// Every `Action` (`row_of` fails to compile when one is added).
const ACTIONS: [Action; 7] = [
    Action::ReadContest,
    Action::CreateContest,
    Action::ManageContest,
    Action::Enter,
    Action::ListEntries,
    Action::GrantRoles,
    Action::Operate,
];

fn caller_of(column: Column) -> Caller {
    match column {
        Column::User => User,
        Column::Entrant => Entrant,
        Column::OwnOrganizer => Own,
        Column::OtherOrganizer => Other,
        Column::Ops => Ops,
        Column::Admin => Admin,
    }
}

/// api.md distinguishes drafts only when reading; every other row holds
/// for drafts and non-drafts alike.
fn row_of(action: Action, draft: bool) -> Row {
    match action {
        Action::ReadContest if draft => ReadDraft,
        Action::ReadContest => ReadNonDraft,
        Action::CreateContest => Create,
        Action::ManageContest => Manage,
        Action::Enter => Enter,
        Action::ListEntries => ListEntries,
        Action::GrantRoles => GrantRoles,
        Action::Operate => Operate,
    }
}

/// The typed matrix answers every (column, action, draft) as [`MATRIX`]
/// does. Not in the typed matrix, so checked over HTTP only: the anonymous
/// column (the bearer extractor answers 401 before any cell is asked) and
/// the public row (those routes take no caller); "not self" of granting
/// roles is the store's rule, not the matrix's.
#[test]
fn the_typed_matrix_is_api_md_table() {
    // The table itself: every (row, caller) exactly once.
    let cells: HashSet<(Row, Caller)> = MATRIX.iter().map(|(r, c, _)| (*r, *c)).collect();
    assert_eq!(cells.len(), MATRIX.len(), "no (row, caller) twice");
    assert_eq!(MATRIX.len(), ROWS.len() * CALLERS.len(), "every cell");
    for (_, caller, expect) in MATRIX {
        if caller == Anonymous {
            assert!(matches!(expect, Yes | Status(401)), "anonymous: yes or 401");
        }
    }

    let mut compared = 0;
    let mut reached = HashSet::new();
    for column in COLUMNS {
        for action in ACTIONS {
            for draft in [false, true] {
                let (row, caller) = (row_of(action, draft), caller_of(column));
                reached.insert((row, caller));
                let want = match expected(row, caller) {
                    Yes | YesNotSelf => Access::Allow,
                    Status(403) => Access::Forbidden,
                    Status(404) => Access::NotFound,
                    Status(other) => panic!("{row:?} × {caller:?}: {other} is no cell answer"),
                };
                assert_eq!(
                    cell(column, action, draft),
                    want,
                    "cell({column:?}, {action:?}, draft: {draft}) against api.md's {row:?} × {caller:?}"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, COLUMNS.len() * ACTIONS.len() * 2);
    // Every table cell with a token and a typed row was compared.
    let typed: HashSet<(Row, Caller)> = MATRIX
        .iter()
        .filter(|(r, c, _)| *c != Anonymous && *r != Public)
        .map(|(r, c, _)| (*r, *c))
        .collect();
    assert_eq!(reached, typed);
}

// ------------------------------------------------------------ over HTTP

struct Session {
    token: String,
    id: String,
}

/// One app, one session per caller, and the contests the cells share.
struct World {
    app: AppleApp,
    user: Session,
    entrant: Session,
    own: Session,
    other: Session,
    ops: Session,
    admin: Session,
    /// The user whose roles the "grant roles" cells change.
    target: Session,
    /// Open, organized by `own`; `entrant` holds a confirmed entry.
    open_id: String,
    /// Open, organized by `own`; `entrant` holds a confirmed entry. Only
    /// the "join / withdraw" cells use it, so that the other callers stay
    /// strangers to `open_id`.
    join_id: String,
    /// A draft organized by `own`.
    draft_id: String,
}

fn session(value: &Value) -> Session {
    Session {
        token: access(value).to_owned(),
        id: value["user"]["id"].as_str().unwrap().to_owned(),
    }
}

impl World {
    async fn new() -> World {
        let app = AppleApp::spawn().await;
        let user = session(&app.sign_in("user").await);
        let entrant = session(&app.sign_in("entrant").await);
        let own = session(&app.sign_in_with_roles("own", &["organizer"]).await);
        let other = session(&app.sign_in_with_roles("other", &["organizer"]).await);
        let ops = session(&app.sign_in_with_roles("ops", &["ops"]).await);
        let admin = session(&app.sign_in_with_roles("admin", &["admin"]).await);
        let target = session(&app.sign_in("target").await);
        let open_id = open_contest(&app, &own.token, &contest_body()).await;
        let join_id = open_contest(&app, &own.token, &contest_body()).await;
        let draft = create_contest(&app, &own.token, &contest_body()).await;
        let draft_id = draft["id"].as_str().unwrap().to_owned();
        let world = World {
            app,
            user,
            entrant,
            own,
            other,
            ops,
            admin,
            target,
            open_id,
            join_id,
            draft_id,
        };
        world.entrant_joins(&world.open_id).await;
        world.entrant_joins(&world.join_id).await;
        world
    }

    fn session(&self, caller: Caller) -> Option<&Session> {
        match caller {
            Anonymous => None,
            User => Some(&self.user),
            Entrant => Some(&self.entrant),
            Own => Some(&self.own),
            Other => Some(&self.other),
            Ops => Some(&self.ops),
            Admin => Some(&self.admin),
        }
    }

    /// `method path` as `caller`: no `Authorization` header when anonymous.
    async fn send(
        &self,
        caller: Caller,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut req = match self.session(caller) {
            Some(s) => self.app.authed(method, path, &s.token),
            None => self.app.client.request(method, self.app.url(path)),
        };
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await.unwrap()
    }

    /// The organizer (`own`) does something that must succeed with `status`.
    async fn own_does(&self, method: Method, path: &str, body: Option<&Value>, status: u16) {
        let res = self.send(Own, method, path, body).await;
        let got = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert_eq!(got, status, "own: {path}: {text}");
    }

    async fn entrant_joins(&self, contest_id: &str) {
        let res = self
            .send(
                Entrant,
                Method::POST,
                &format!("/v1/contests/{contest_id}/entries"),
                None,
            )
            .await;
        let got = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert_eq!(got, 201, "entrant joins {contest_id}: {text}");
    }

    /// A fresh draft of `own`'s.
    async fn new_draft(&self) -> String {
        let draft = create_contest(&self.app, &self.own.token, &contest_body()).await;
        draft["id"].as_str().unwrap().to_owned()
    }

    /// The contest as its organizer sees it.
    async fn contest(&self, id: &str) -> Value {
        let res = self
            .send(Own, Method::GET, &format!("/v1/contests/{id}"), None)
            .await;
        assert_eq!(res.status(), 200, "own reads {id}");
        res.json().await.unwrap()
    }
}

/// What one request of a cell must answer.
#[derive(Debug, Clone, Copy)]
enum Want {
    Success,
    Refused(u16),
    /// An allowed caller asking for something that may not exist (an actor
    /// that is not active): a 2xx or `404 NOT_FOUND`, never 401/403.
    SuccessOr404,
}

fn want(expect: Expect) -> Want {
    match expect {
        Yes | YesNotSelf => Want::Success,
        Status(status) => Want::Refused(status),
    }
}

fn code_of(status: u16) -> &'static str {
    match status {
        401 => "UNAUTHENTICATED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        other => panic!("{other} is no access answer"),
    }
}

/// The walk's record: cells visited, requests made, answers that differ.
#[derive(Default)]
struct Walk {
    checked: Vec<(Row, Caller)>,
    requests: usize,
    failures: Vec<String>,
}

type CellId = (Row, Caller);

impl Walk {
    fn fail(&mut self, cell: CellId, message: String) {
        self.failures
            .push(format!("{:?} × {:?}: {message}", cell.0, cell.1));
    }

    /// Checks one answer of `cell`; a refusal through `assert_error` (status,
    /// code, request id). `Some((status, body))` when it was a 2xx, whether
    /// wanted or not (so that a step that unexpectedly succeeded is not
    /// done twice).
    async fn check(
        &mut self,
        cell: CellId,
        what: &str,
        res: reqwest::Response,
        want: Want,
    ) -> Option<(u16, String)> {
        self.requests += 1;
        let status = res.status().as_u16();
        let success = (200..300).contains(&status);
        let fits = match want {
            Want::Success => success,
            Want::Refused(s) => status == s,
            Want::SuccessOr404 => success || status == 404,
        };
        if !fits {
            let body = res.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            self.fail(
                cell,
                format!("{what}: answered {status} {body}, expected {want:?}"),
            );
            return success.then_some((status, body));
        }
        if success {
            Some((status, res.text().await.unwrap()))
        } else {
            assert_error(res, status, code_of(status)).await;
            None
        }
    }

    fn expect_eq(&mut self, cell: CellId, what: &str, got: &Value, wanted: &Value) {
        if got != wanted {
            self.fail(cell, format!("{what}: {got}, expected {wanted}"));
        }
    }
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}

fn list_has(body: &str, id: &str) -> bool {
    json_of(body)["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == id)
}

/// `GET /v1/contests/{open}` and `GET /v1/contests`.
async fn read_non_draft(w: &World, walk: &mut Walk, caller: Caller, expect: Expect) {
    let cell = (ReadNonDraft, caller);
    let path = format!("/v1/contests/{}", w.open_id);
    let res = w.send(caller, Method::GET, &path, None).await;
    if let Some((_, body)) = walk.check(cell, "read", res, want(expect)).await {
        walk.expect_eq(cell, "read id", &json_of(&body)["id"], &json!(w.open_id));
    }
    let res = w
        .send(caller, Method::GET, "/v1/contests?limit=100", None)
        .await;
    if let Some((_, body)) = walk.check(cell, "list", res, want(expect)).await
        && !list_has(&body, &w.open_id)
    {
        walk.fail(cell, "list: the open contest is missing".into());
    }
}

/// `GET /v1/contests/{draft}` (200 or 404), and the draft in `GET
/// /v1/contests` exactly when it may be read (a list answers 200 to every
/// signed-in caller; drafts are filtered, not refused).
async fn read_draft(w: &World, walk: &mut Walk, caller: Caller, expect: Expect) {
    let cell = (ReadDraft, caller);
    let path = format!("/v1/contests/{}", w.draft_id);
    let res = w.send(caller, Method::GET, &path, None).await;
    if let Some((_, body)) = walk.check(cell, "read", res, want(expect)).await {
        walk.expect_eq(
            cell,
            "read state",
            &json_of(&body)["state"],
            &json!("draft"),
        );
    }
    let list_want = match expect {
        Status(401) => Want::Refused(401),
        _ => Want::Success,
    };
    let res = w
        .send(caller, Method::GET, "/v1/contests?limit=100", None)
        .await;
    if let Some((_, body)) = walk.check(cell, "list", res, list_want).await {
        let listed = list_has(&body, &w.draft_id);
        if listed != (expect == Yes) {
            walk.fail(
                cell,
                format!("list: draft listed = {listed}, expected {}", expect == Yes),
            );
        }
    }
}

/// `POST /v1/contests`.
async fn create(w: &World, walk: &mut Walk, caller: Caller, expect: Expect) {
    let cell = (Create, caller);
    let res = w
        .send(caller, Method::POST, "/v1/contests", Some(&contest_body()))
        .await;
    if let Some((status, body)) = walk.check(cell, "create", res, want(expect)).await {
        let contest = json_of(&body);
        walk.expect_eq(cell, "create status", &json!(status), &json!(201));
        walk.expect_eq(cell, "created state", &contest["state"], &json!("draft"));
        let id = w.session(caller).map(|s| s.id.clone());
        walk.expect_eq(
            cell,
            "created organizer_id",
            &contest["organizer_id"],
            &json!(id),
        );
    }
}

/// `caller` runs `POST /v1/contests/{id}/{action}`: on success the answer
/// shows `after`; refused, the contest still shows `before` and its
/// organizer runs the action instead, so that the next step finds the
/// state it needs.
#[allow(clippy::too_many_arguments)]
async fn lifecycle_step(
    w: &World,
    walk: &mut Walk,
    caller: Caller,
    expect: Expect,
    id: &str,
    action: &str,
    body: Option<&Value>,
    (before, after): (&str, &str),
) {
    let cell = (Manage, caller);
    let path = format!("/v1/contests/{id}/{action}");
    let res = w.send(caller, Method::POST, &path, body).await;
    match walk.check(cell, action, res, want(expect)).await {
        Some((_, body)) => {
            walk.expect_eq(
                cell,
                &format!("state after {action}"),
                &json_of(&body)["state"],
                &json!(after),
            );
        }
        None => {
            let state = w.contest(id).await["state"].clone();
            walk.expect_eq(
                cell,
                &format!("state after a refused {action}"),
                &state,
                &json!(before),
            );
            w.own_does(Method::POST, &path, body, 200).await;
        }
    }
}

/// Edit, open, lock and settle on a fresh draft of `own`'s, in that order
/// (each step valid in the state the previous one left), and cancel on a
/// fresh open contest: every caller gets contests of its own, so an allowed
/// caller never meets a 409 from the lifecycle.
///
/// The entrant joins each contest as soon as it is open, so from `lock` on
/// it is the entrant of the contest it manages; for `edit` and `open` (a
/// draft) it cannot be one yet (joins need an open contest).
async fn manage(w: &World, walk: &mut Walk, caller: Caller, expect: Expect) {
    let cell = (Manage, caller);
    let id = w.new_draft().await;

    let path = format!("/v1/contests/{id}");
    let res = w
        .send(caller, Method::PATCH, &path, Some(&json!({"title": "x"})))
        .await;
    let edited = walk.check(cell, "edit", res, want(expect)).await.is_some();
    let title = w.contest(&id).await["title"].clone();
    let wanted = if edited { "x" } else { "Friday quiz" };
    walk.expect_eq(cell, "title after edit", &title, &json!(wanted));

    lifecycle_step(
        w,
        walk,
        caller,
        expect,
        &id,
        "open",
        None,
        ("draft", "open"),
    )
    .await;
    if caller == Entrant {
        w.entrant_joins(&id).await;
    }
    lifecycle_step(
        w,
        walk,
        caller,
        expect,
        &id,
        "lock",
        None,
        ("open", "locked"),
    )
    .await;
    let standings = json!({"standings": []});
    lifecycle_step(
        w,
        walk,
        caller,
        expect,
        &id,
        "settle",
        Some(&standings),
        ("locked", "settled"),
    )
    .await;

    let id = open_contest(&w.app, &w.own.token, &contest_body()).await;
    if caller == Entrant {
        w.entrant_joins(&id).await;
    }
    lifecycle_step(
        w,
        walk,
        caller,
        expect,
        &id,
        "cancel",
        None,
        ("open", "cancelled"),
    )
    .await;
}

/// `POST /v1/contests/{join}/entries` then `DELETE …/entries/me` (the
/// refusal is checked on both). The entrant holds a confirmed entry there
/// already: it withdraws it, then enters again (a withdrawn user may join
/// again while the contest is open).
async fn enter(w: &World, walk: &mut Walk, caller: Caller, expect: Expect) {
    let cell = (Enter, caller);
    let entries = format!("/v1/contests/{}/entries", w.join_id);
    let mine = format!("{entries}/me");
    let caller_id = json!(w.session(caller).map(|s| s.id.clone()));
    let steps: [(&str, Method, &str); 2] = if caller == Entrant {
        [
            ("withdraw", Method::DELETE, &mine),
            ("join", Method::POST, &entries),
        ]
    } else {
        [
            ("join", Method::POST, &entries),
            ("withdraw", Method::DELETE, &mine),
        ]
    };
    for (what, method, path) in steps {
        let res = w.send(caller, method, path, None).await;
        let Some((status, body)) = walk.check(cell, what, res, want(expect)).await else {
            continue;
        };
        let body = json_of(&body);
        if what == "join" {
            walk.expect_eq(
                cell,
                "join status (a free contest)",
                &json!(status),
                &json!(201),
            );
            walk.expect_eq(
                cell,
                "joined entry's user",
                &body["entry"]["user_id"],
                &caller_id,
            );
            walk.expect_eq(
                cell,
                "joined entry",
                &body["entry"]["status"],
                &json!("confirmed"),
            );
            walk.expect_eq(
                cell,
                "payment of a free contest",
                &body["payment"],
                &Value::Null,
            );
        } else {
            walk.expect_eq(cell, "withdrawn entry's user", &body["user_id"], &caller_id);
        }
    }
}

/// `GET /v1/contests/{open}/entries`.
async fn list_entries(w: &World, walk: &mut Walk, caller: Caller, expect: Expect) {
    let cell = (ListEntries, caller);
    let path = format!("/v1/contests/{}/entries", w.open_id);
    let res = w.send(caller, Method::GET, &path, None).await;
    if let Some((_, body)) = walk.check(cell, "list entries", res, want(expect)).await {
        let has_entrant = json_of(&body)
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["user_id"] == w.entrant.id);
        if !has_entrant {
            walk.fail(
                cell,
                format!("list entries: no entry of the entrant in {body}"),
            );
        }
    }
}

/// `PUT /v1/admin/users/{target}/roles`; for "yes (not self)" also on the
/// caller's own id, which must be `403 FORBIDDEN` (with `["admin"]`, so that
/// a wrongly accepted self-grant changes nothing for the later cells).
async fn grant_roles(w: &World, walk: &mut Walk, caller: Caller, expect: Expect) {
    let cell = (GrantRoles, caller);
    let path = format!("/v1/admin/users/{}/roles", w.target.id);
    let res = w
        .send(caller, Method::PUT, &path, Some(&json!({"roles": ["ops"]})))
        .await;
    if let Some((_, body)) = walk
        .check(cell, "grant to another user", res, want(expect))
        .await
    {
        walk.expect_eq(
            cell,
            "granted user",
            &json_of(&body)["id"],
            &json!(w.target.id),
        );
    }
    if expect == YesNotSelf {
        let me = &w.session(caller).unwrap().id;
        let path = format!("/v1/admin/users/{me}/roles");
        let res = w
            .send(
                caller,
                Method::PUT,
                &path,
                Some(&json!({"roles": ["admin"]})),
            )
            .await;
        walk.check(cell, "grant to oneself", res, Want::Refused(403))
            .await;
    }
}

/// `GET /ops/actors`, `GET /ops/actors/{open}` (an allowed caller may get
/// 404 when that actor is not active) and `GET /metrics`.
async fn operate(w: &World, walk: &mut Walk, caller: Caller, expect: Expect) {
    let cell = (Operate, caller);
    let res = w.send(caller, Method::GET, "/ops/actors", None).await;
    walk.check(cell, "/ops/actors", res, want(expect)).await;
    let one = match want(expect) {
        Want::Success => Want::SuccessOr404,
        other => other,
    };
    let path = format!("/ops/actors/{}", w.open_id);
    let res = w.send(caller, Method::GET, &path, None).await;
    walk.check(cell, "/ops/actors/{contest_id}", res, one).await;
    let res = w.send(caller, Method::GET, "/metrics", None).await;
    walk.check(cell, "/metrics", res, want(expect)).await;
}

/// `/health/live`, `/health/ready`, `/openapi.json` (with the caller's
/// token when it has one: a bearer header must not get in the way).
async fn public(w: &World, walk: &mut Walk, caller: Caller, expect: Expect) {
    let cell = (Public, caller);
    for path in ["/health/live", "/health/ready", "/openapi.json"] {
        let res = w.send(caller, Method::GET, path, None).await;
        walk.check(cell, path, res, want(expect)).await;
    }
    // The webhook is open to every caller: its Stripe signature, not a
    // token, decides. Unsigned, it is refused as such, never as 401/403.
    let res = w
        .send(
            caller,
            Method::POST,
            "/v1/webhooks/stripe",
            Some(&json!({})),
        )
        .await;
    assert_error(res, 400, "WEBHOOK_SIGNATURE_INVALID").await;
}

#[actix_web::test]
async fn every_cell_of_the_access_matrix_answers_as_api_md_says() {
    let w = World::new().await;
    let mut walk = Walk::default();
    for (row, caller, expect) in MATRIX {
        walk.checked.push((row, caller));
        match row {
            ReadNonDraft => read_non_draft(&w, &mut walk, caller, expect).await,
            ReadDraft => read_draft(&w, &mut walk, caller, expect).await,
            Create => create(&w, &mut walk, caller, expect).await,
            Manage => manage(&w, &mut walk, caller, expect).await,
            Enter => enter(&w, &mut walk, caller, expect).await,
            ListEntries => list_entries(&w, &mut walk, caller, expect).await,
            GrantRoles => grant_roles(&w, &mut walk, caller, expect).await,
            Operate => operate(&w, &mut walk, caller, expect).await,
            Public => public(&w, &mut walk, caller, expect).await,
        }
    }

    // The shared contests went through the walk unchanged.
    assert_eq!(w.contest(&w.open_id).await["state"], "open");
    assert_eq!(w.contest(&w.join_id).await["state"], "open");
    let draft = w.contest(&w.draft_id).await;
    assert_eq!(draft["state"], "draft");
    assert_eq!(draft["title"], "Friday quiz");

    assert!(
        walk.failures.is_empty(),
        "{} answer(s) differ from api.md's access matrix:\n{}",
        walk.failures.len(),
        walk.failures.join("\n")
    );
    // No row silently skipped: every cell of the table was walked, once.
    assert_eq!(walk.checked.len(), MATRIX.len());
    let walked: HashSet<CellId> = walk.checked.iter().copied().collect();
    let table: HashSet<CellId> = MATRIX.iter().map(|(r, c, _)| (*r, *c)).collect();
    assert_eq!(walked, table);
    eprintln!(
        "access matrix: {} cells, {} requests checked",
        walk.checked.len(),
        walk.requests
    );
}
