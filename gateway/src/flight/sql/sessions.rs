//! Flight sessions (SetSessionOptions, GetSessionOptions, CloseSession): the one option is
//! `catalog`, the catalog statements run in (what ADBC's `adbc.connection.catalog` and the
//! JDBC `catalog` property send). Nothing is held on the server: the options travel in a
//! cookie (`mover_session`) that the client sends back, as a session cookie would. Forging one
//! gives no more than the call header does, so it is not signed; it is bounded, and every
//! catalog in it is checked against the caller's rules when a statement runs.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use mover_proto::flight_sessions::{
    CloseSessionRequest, CloseSessionResult, GetSessionOptionsRequest, GetSessionOptionsResult,
    SessionOptionValue, SetSessionOptionsRequest, SetSessionOptionsResult, close_session_result,
    session_option_value::OptionValue, set_session_options_result,
};
use prost::Message;
use tonic::Status;
use tonic::metadata::{MetadataMap, MetadataValue};

use super::super::service::{MoverService, Stream};
use super::Answer;
use crate::auth::Caller;

/// The Flight session actions, as ListActions shows them.
pub const ACTIONS: [(&str, &str); 3] = [
    (
        "SetSessionOptions",
        "Flight: set session options; `catalog` names the catalog statements run in",
    ),
    ("GetSessionOptions", "Flight: the session's options"),
    (
        "CloseSession",
        "Flight: end the session (its cookie is cleared)",
    ),
];

const COOKIE: &str = "mover_session";
/// A session cookie longer than this is refused: it is a stranger's input.
const MAX_COOKIE_BYTES: usize = 4096;
const CATALOG: &str = "catalog";

/// The session's catalog, if the request carries a session that names one.
pub fn catalog(headers: &MetadataMap) -> Result<Option<String>, Status> {
    Ok(options(headers)?
        .remove(CATALOG)
        .and_then(|v| match v.option_value {
            Some(OptionValue::StringValue(s)) => Some(s),
            _ => None,
        }))
}

/// A session action, if `kind` is one.
pub fn action(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
    kind: &str,
    body: &[u8],
) -> Option<Result<Answer, Status>> {
    let answer = match kind {
        "SetSessionOptions" => set(service, caller, headers, body),
        "GetSessionOptions" => get(headers, body),
        "CloseSession" => close(body),
        _ => return None,
    };
    Some(answer)
}

fn set(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
    body: &[u8],
) -> Result<Answer, Status> {
    let request = SetSessionOptionsRequest::decode(body)
        .map_err(|e| Status::invalid_argument(format!("not a SetSessionOptionsRequest: {e}")))?;
    let mut options = options(headers)?;
    let mut errors = HashMap::new();
    let error = |value: set_session_options_result::ErrorValue| set_session_options_result::Error {
        value: value as i32,
    };
    for (name, value) in request.session_options {
        if name != CATALOG {
            errors.insert(
                name,
                error(set_session_options_result::ErrorValue::InvalidName),
            );
            continue;
        }
        match &value.option_value {
            // Valueless: unset.
            None => {
                options.remove(&name);
            }
            Some(OptionValue::StringValue(catalog))
                if super::visible(service, caller)
                    .iter()
                    .any(|(name, _)| name == catalog) =>
            {
                options.insert(name, value);
            }
            Some(_) => {
                errors.insert(
                    name,
                    error(set_session_options_result::ErrorValue::InvalidValue),
                );
            }
        }
    }
    let result = SetSessionOptionsResult { errors };
    Ok(Answer {
        results: one(result.encode_to_vec()),
        set_cookie: Some(cookie(&options)?),
    })
}

fn get(headers: &MetadataMap, body: &[u8]) -> Result<Answer, Status> {
    GetSessionOptionsRequest::decode(body)
        .map_err(|e| Status::invalid_argument(format!("not a GetSessionOptionsRequest: {e}")))?;
    let result = GetSessionOptionsResult {
        session_options: options(headers)?,
    };
    Ok(Answer {
        results: one(result.encode_to_vec()),
        set_cookie: None,
    })
}

fn close(body: &[u8]) -> Result<Answer, Status> {
    CloseSessionRequest::decode(body)
        .map_err(|e| Status::invalid_argument(format!("not a CloseSessionRequest: {e}")))?;
    let result = CloseSessionResult {
        status: close_session_result::Status::Closed as i32,
    };
    let expired = format!("{COOKIE}=; Max-Age=0")
        .parse()
        .map_err(|_| Status::internal("a cookie that is not a header value"))?;
    Ok(Answer {
        results: one(result.encode_to_vec()),
        set_cookie: Some(expired),
    })
}

fn one(body: Vec<u8>) -> Stream<arrow_flight::Result> {
    futures::stream::iter([Ok(arrow_flight::Result { body: body.into() })]).boxed()
}

/// The options the request's session cookie holds (none without one).
fn options(headers: &MetadataMap) -> Result<HashMap<String, SessionOptionValue>, Status> {
    let bad = |why: &str| Status::invalid_argument(format!("the {COOKIE} cookie {why}"));
    for header in headers.get_all("cookie") {
        let text = header.to_str().map_err(|_| bad("header is not text"))?;
        for pair in text.split(';') {
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            if name != COOKIE || value.is_empty() {
                continue;
            }
            if value.len() > MAX_COOKIE_BYTES {
                return Err(bad("is too long"));
            }
            let bytes = URL_SAFE_NO_PAD
                .decode(value)
                .map_err(|_| bad("is not base64"))?;
            let held = GetSessionOptionsResult::decode(bytes.as_slice())
                .map_err(|_| bad("does not decode"))?;
            return Ok(held.session_options);
        }
    }
    Ok(HashMap::new())
}

/// The `set-cookie` value that holds `options`.
fn cookie(
    options: &HashMap<String, SessionOptionValue>,
) -> Result<MetadataValue<tonic::metadata::Ascii>, Status> {
    let held = GetSessionOptionsResult {
        session_options: options.clone(),
    };
    let value = URL_SAFE_NO_PAD.encode(held.encode_to_vec());
    format!("{COOKIE}={value}; Path=/; HttpOnly")
        .parse()
        .map_err(|_| Status::internal("a cookie that is not a header value"))
}
