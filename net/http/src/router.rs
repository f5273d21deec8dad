//! Routing by method and path pattern, with path parameters, `404` and
//! `405` with `Allow`.

use crate::message::{Request, Response};
use crate::serve::call;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::future::Future;
use core::ops::Range;
use core::pin::Pin;

/// Routes requests to handlers by method and path pattern:
///
/// ```
/// use unikernel_http::{Request, Response, Router};
///
/// let router = Router::new()
///     .get("/", async |_req| Response::text("200 OK", "hello\n"))
///     .get("/kv/{key}", async |req| Response::text("200 OK", req.param("key").unwrap_or("")));
/// # let _ = router;
/// ```
///
/// Patterns are matched segment by segment against the path (the query
/// aside): `{name}` matches any one non-empty segment, a final `{*name}`
/// the rest of the path; [`Request::param`] gives what they matched, as
/// sent. Routes are tried in order. A `GET` route answers `HEAD` too (the
/// server sends no body). A path no route matches gets `404`, a method no
/// route of a matching path takes gets `405` with `Allow`.
///
/// Handlers get the body read in full (within `max_body` and the budget),
/// except those added with [`Router::streaming`], which read it themselves.
/// Serve a router with [`crate::serve_streaming`]:
/// `serve_streaming(conn, &server, async |req| router.handle(req).await)`.
#[derive(Default)]
pub struct Router<'a> {
    routes: Vec<Route<'a>>,
}

struct Route<'a> {
    method: &'static str,
    pattern: &'static str,
    buffered: bool,
    handler: Box<dyn Handler + 'a>,
}

/// A handler with its future boxed, so that routes can hold different ones.
trait Handler {
    fn call(&self, req: Request) -> Pin<Box<dyn Future<Output = Response> + '_>>;
}

impl<H: AsyncFn(Request) -> Response> Handler for H {
    fn call(&self, req: Request) -> Pin<Box<dyn Future<Output = Response> + '_>> {
        Box::pin(self(req))
    }
}

impl<'a> Router<'a> {
    /// A router without routes: every request gets `404`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `method` requests whose path matches `pattern` to `handler`,
    /// with their body read in full first.
    pub fn route(
        self,
        method: &'static str,
        pattern: &'static str,
        handler: impl AsyncFn(Request) -> Response + 'a,
    ) -> Self {
        self.add(method, pattern, true, handler)
    }

    /// [`Router::route`], but `handler` reads the body itself
    /// ([`Request::read_body`]): for uploads larger than `max_body`.
    pub fn streaming(
        self,
        method: &'static str,
        pattern: &'static str,
        handler: impl AsyncFn(Request) -> Response + 'a,
    ) -> Self {
        self.add(method, pattern, false, handler)
    }

    /// A `GET` (and `HEAD`) route.
    pub fn get(self, pattern: &'static str, handler: impl AsyncFn(Request) -> Response + 'a) -> Self {
        self.route("GET", pattern, handler)
    }

    /// A `PUT` route.
    pub fn put(self, pattern: &'static str, handler: impl AsyncFn(Request) -> Response + 'a) -> Self {
        self.route("PUT", pattern, handler)
    }

    /// A `POST` route.
    pub fn post(self, pattern: &'static str, handler: impl AsyncFn(Request) -> Response + 'a) -> Self {
        self.route("POST", pattern, handler)
    }

    /// A `DELETE` route.
    pub fn delete(self, pattern: &'static str, handler: impl AsyncFn(Request) -> Response + 'a) -> Self {
        self.route("DELETE", pattern, handler)
    }

    fn add(
        mut self,
        method: &'static str,
        pattern: &'static str,
        buffered: bool,
        handler: impl AsyncFn(Request) -> Response + 'a,
    ) -> Self {
        self.routes.push(Route { method, pattern, buffered, handler: Box::new(handler) });
        self
    }

    /// Answers `req` with the first route that matches it.
    pub async fn handle(&self, mut req: Request) -> Response {
        let mut allow = String::new();
        for route in &self.routes {
            let Some(params) = matches(route.pattern, req.uri_path()) else { continue };
            let method = req.method.as_str();
            if method == route.method || (method == "HEAD" && route.method == "GET") {
                req.set_params(params);
                if !route.buffered {
                    return route.handler.call(req).await;
                }
                return match req.buffer_body().await {
                    Ok(()) => call(&async |req| route.handler.call(req).await, req).await,
                    Err(refusal) => refusal,
                };
            }
            for method in [route.method].into_iter().chain((route.method == "GET").then_some("HEAD")) {
                if !allow.split(", ").any(|m| m == method) {
                    if !allow.is_empty() {
                        allow.push_str(", ");
                    }
                    allow.push_str(method);
                }
            }
        }
        if allow.is_empty() {
            Response::text("404 Not Found", "not found\n")
        } else {
            Response::text("405 Method Not Allowed", "method not allowed\n").with_header("Allow", allow)
        }
    }
}

/// Where `pattern`'s parameters are in `path`, if it matches.
fn matches(pattern: &'static str, path: &str) -> Option<Vec<(&'static str, Range<usize>)>> {
    let mut params = Vec::new();
    let mut rest = path.strip_prefix('/')?;
    let mut at = 1;
    let mut segments = pattern.strip_prefix('/')?.split('/').peekable();
    while let Some(segment) = segments.next() {
        if let Some(name) = segment.strip_prefix("{*").and_then(|s| s.strip_suffix('}'))
            && segments.peek().is_none()
        {
            params.push((name, at..path.len()));
            return Some(params);
        }
        let (value, tail) = match rest.split_once('/') {
            Some((value, tail)) if segments.peek().is_some() => (value, Some(tail)),
            _ if segments.peek().is_some() => return None,
            _ => (rest, None),
        };
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if !value.is_empty() && !value.contains('/') => params.push((name, at..at + value.len())),
            _ if segment == value => {}
            _ => return None,
        }
        at += value.len() + 1;
        rest = tail.unwrap_or("");
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_whole_segments_and_capture_parameters() {
        let at = |pattern, path| {
            matches(pattern, path).map(|p| p.into_iter().map(|(n, r)| (n, &path[r])).collect::<Vec<_>>())
        };
        assert_eq!(at("/", "/"), Some(vec![]));
        assert_eq!(at("/kv", "/kv"), Some(vec![]));
        assert_eq!(at("/kv", "/kv/"), None);
        assert_eq!(at("/kv", "/kvx"), None);
        assert_eq!(at("/kv/{key}", "/kv/a%20b"), Some(vec![("key", "a%20b")]));
        assert_eq!(at("/kv/{key}", "/kv/"), None);
        assert_eq!(at("/kv/{key}", "/kv/a/b"), None);
        assert_eq!(at("/kv/{key}", "/kv"), None);
        assert_eq!(at("/{a}/x/{b}", "/1/x/22"), Some(vec![("a", "1"), ("b", "22")]));
        assert_eq!(at("/files/{*rest}", "/files/a/b/c"), Some(vec![("rest", "a/b/c")]));
        assert_eq!(at("/files/{*rest}", "/files/"), Some(vec![("rest", "")]));
        assert_eq!(at("/", "relative"), None);
    }
}
