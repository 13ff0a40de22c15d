//! Once the database could not write to disk, every answer is a 503 saying so, `/health`
//! included, until the server has stopped (and its supervisor restarted it from what is
//! on disk). What was written but never became durable is then readable nowhere.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{ContentType, Header, Status};
use rocket::{Request, Response};
use std::io::Cursor;

use crate::http::error::UNWRITABLE;
use crate::http::AppState;

/// Replaces every response with the 503 once the database has failed. Attached before
/// the request fairing, so that the log and metrics see the 503.
pub struct Unwritable;

#[rocket::async_trait]
impl Fairing for Unwritable {
    fn info(&self) -> Info {
        Info {
            name: "503 once the database cannot write",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let Some(state) = req.rocket().state::<AppState>() else {
            return;
        };
        if state.db.failure().is_none() {
            return;
        }
        let body = serde_json::json!({ "detail": UNWRITABLE }).to_string();
        *res = Response::build()
            .status(Status::ServiceUnavailable)
            .header(ContentType::JSON)
            .header(Header::new("Retry-After", "5"))
            .header(Header::new("Cache-Control", "no-store"))
            .sized_body(body.len(), Cursor::new(body))
            .finalize();
    }
}
