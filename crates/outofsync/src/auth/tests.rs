//! Credentials on the wire and in what is shown, and the hosts they go to.

use std::sync::Arc;

use http::{HeaderMap, Method};
use url::Url;

use super::*;

fn hop(url: &str) -> Hop {
    Hop {
        method: Method::GET,
        url: Url::parse(url).unwrap(),
        headers: Arc::new(HeaderMap::new()),
        body: None,
    }
}

#[test]
fn query_credentials_replace_a_parameter_of_the_same_name_and_keep_the_rest_as_written() {
    let credentials = Credentials::new().query("api_key", "s3cret k");
    let sent = credentials.apply(&hop("http://a.test/x?b=%2F&api_key=old&c"));
    assert_eq!(sent.url.as_str(), "http://a.test/x?b=%2F&c&api_key=s3cret+k");
    let masked = credentials.mask("http://a.test/y?api_key=s3cret+k&d=1").unwrap();
    assert_eq!(masked, "http://a.test/y?api_key=REDACTED&d=1");
    assert_eq!(credentials.mask("http://a.test/y?d=1"), None);
}

#[test]
fn header_credentials_are_sensitive_and_debug_shows_only_names() {
    let credentials = Credentials::bearer("t0ken").unwrap().merge(&Credentials::new().query("k", "v"));
    let sent = credentials.apply(&hop("http://a.test/"));
    let value = &sent.headers[http::header::AUTHORIZATION];
    assert!(value.is_sensitive());
    assert_eq!(value, "Bearer t0ken");
    let shown = format!("{credentials:?}");
    assert!(!shown.contains("t0ken") && shown.contains("authorization"), "{shown}");
    assert!(Credentials::bearer("a\nb").is_err());
}

#[test]
fn auth_hosts_match_the_name_and_the_port_when_one_is_given() {
    let url = |u: &str| Url::parse(u).unwrap();
    let any: AuthHost = "API.example.com".parse().unwrap();
    let port: AuthHost = "api.example.com:8443".parse().unwrap();
    let http: AuthHost = "api.example.com:80".parse().unwrap();
    let v6: AuthHost = "[::1]:8080".parse().unwrap();
    assert!(any.covers(&url("https://api.example.com/x")) && any.covers(&url("http://api.example.com:9/")));
    assert!(!any.covers(&url("https://sub.api.example.com/")));
    assert!(
        port.covers(&url("https://api.example.com:8443/")) && !port.covers(&url("https://api.example.com/"))
    );
    assert!(http.covers(&url("http://api.example.com/")) && !http.covers(&url("https://api.example.com/")));
    assert!(v6.covers(&url("http://[::1]:8080/")));
    assert_eq!(AuthHost::of(&url("https://a.test/x")).unwrap().to_string(), "a.test:443");
    assert!("a.test/path".parse::<AuthHost>().is_err() && "user@a.test".parse::<AuthHost>().is_err());
}
