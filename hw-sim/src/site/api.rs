//! A small JSON client of the server's HTTP API, used to seed the site and by the demo and the
//! benchmarks. Separate because it knows HTTP and nothing of the simulated hardware.

use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::SiteError;

/// One HTTP request to the server, answer included.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A request to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No answer: connection refused, reset, or timed out.
    #[error("{method} {path}: {reason}")]
    Transport {
        /// The method.
        method: String,
        /// The path.
        path: String,
        /// What happened.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{method} {path}: {status} {body}")]
    Status {
        /// The method.
        method: String,
        /// The path.
        path: String,
        /// The status code.
        status: u16,
        /// The JSON error body (`{"error","message"}`), or `null`.
        body: Value,
    },
}

impl HttpError {
    /// The status, if the server answered.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            HttpError::Transport { .. } => None,
        }
    }

    /// The error body, if the server answered.
    #[must_use]
    pub fn body(&self) -> Option<&Value> {
        match self {
            HttpError::Status { body, .. } => Some(body),
            HttpError::Transport { .. } => None,
        }
    }
}

/// A small JSON client of the server's API, as a user's script would use it: log in, then
/// call `/api/v1/...` with the bearer token.
#[derive(Clone)]
pub struct ApiClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("logged_in", &self.token.is_some())
            .finish()
    }
}

impl ApiClient {
    /// A client of the server at `base` (`http://HOST:PORT`, a trailing slash is ignored),
    /// not logged in.
    #[must_use]
    pub fn new(base: &str) -> ApiClient {
        ApiClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.trim_end_matches('/').to_owned(),
            token: None,
        }
    }

    /// Logs in; the returned client sends the session's bearer token.
    ///
    /// # Errors
    /// [`HttpError`]: 401 for a wrong password.
    pub async fn login(&self, username: &str, password: &str) -> Result<ApiClient, HttpError> {
        let answer = self
            .post(
                "/api/v1/session",
                &json!({"username": username, "password": password}),
            )
            .await?;
        let token = answer["token"]
            .as_str()
            .ok_or_else(|| HttpError::Transport {
                method: "POST".into(),
                path: "/api/v1/session".into(),
                reason: format!("no token in the answer {answer}"),
            })?
            .to_owned();
        Ok(ApiClient {
            token: Some(token),
            ..self.clone()
        })
    }

    /// `GET path`; the JSON answer.
    ///
    /// # Errors
    /// [`HttpError`].
    pub async fn get(&self, path: &str) -> Result<Value, HttpError> {
        self.call(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body; the JSON answer.
    ///
    /// # Errors
    /// [`HttpError`].
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, HttpError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Any request; a success's JSON answer (`null` for an empty body).
    ///
    /// # Errors
    /// [`HttpError::Status`] for a status other than 2xx, [`HttpError::Transport`] otherwise.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, HttpError> {
        let transport = |reason: String| HttpError::Transport {
            method: method.to_string(),
            path: path.to_owned(),
            reason,
        };
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let bytes = match body {
            Some(body) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(bytes))
            .map_err(|e| transport(e.to_string()))?;
        let response = tokio::time::timeout(HTTP_TIMEOUT, async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| transport(e.to_string()))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| transport(e.to_string()))?
                .to_bytes();
            Ok::<_, HttpError>((parts.status, body))
        })
        .await
        .map_err(|_| transport(format!("no answer within {HTTP_TIMEOUT:?}")))??;
        let (status, body) = response;
        let json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        if status.is_success() {
            Ok(json)
        } else {
            Err(HttpError::Status {
                method: method.to_string(),
                path: path.to_owned(),
                status: status.as_u16(),
                body: json,
            })
        }
    }
}

/// The `id` of a creation's answer.
pub(super) fn created_id(answer: &Value, what: &str) -> Result<String, SiteError> {
    answer["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| SiteError::Answer(format!("{what}: no id in {answer}")))
}
