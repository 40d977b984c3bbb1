//! Proxies as curl users run them, through real proxies nobody here wrote: tinyproxy (HTTP
//! forwarding, `CONNECT`, Basic authentication) and Dante (SOCKS5), in front of a real nginx.
//! Every test checks that the request really went through the proxy (its log), and that the
//! proxy's credentials stay out of records and logs.

use serde_json::Value;

use crate::support::nginx::{Listener, Nginx};
use crate::support::proxy::Proxy;
use crate::support::{outofsync, records};

/// Runs `fetch` on `urls` with `args` and `env`; the records and stderr.
fn fetch(urls: &[String], args: &[&str], env: &[(&str, &str)]) -> (Vec<Value>, String) {
    let mut command = outofsync();
    command
        .args(["fetch", "-q", "--retries", "0", "-c", "4"])
        .args(args)
        .args(urls)
        .envs(env.iter().copied());
    let output = command.output().unwrap();
    (records(&output.stdout), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn all_ok(records: &[Value]) -> bool {
    !records.is_empty() && records.iter().all(|r| r["ok"] == true)
}

#[test]
fn http_and_https_go_through_an_http_proxy_forwarded_and_tunnelled() {
    let (Some(nginx), Some(proxy)) = (Nginx::start(), Proxy::tinyproxy(None)) else { return };
    let plain: Vec<String> = (0..5).map(|i| nginx.url(Listener::H1, &format!("/small.json?i={i}"))).collect();
    let (records, stderr) = fetch(&plain, &["--proxy", &proxy.url("http", None)], &[]);
    assert!(all_ok(&records), "{records:?} {stderr}");
    let log = proxy.log();
    assert_eq!(log.matches("Request (file descriptor").count(), 5, "forwarded, one by one: {log}");
    assert!(log.contains(&format!("GET {}", plain[0])), "in absolute form: {log}");

    // https: a CONNECT tunnel, then TLS (and HTTP/2 by ALPN) with nginx itself.
    let tls: Vec<String> =
        (0..5).map(|i| nginx.url(Listener::TlsH2, &format!("/small.json?i={i}"))).collect();
    let mut args = nginx.args(Listener::TlsH2);
    args.extend(["--proxy".to_owned(), proxy.url("http", None)]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (records, stderr) = fetch(&tls, &args, &[]);
    assert!(all_ok(&records), "{records:?} {stderr}");
    assert!(records.iter().all(|r| r["http"] == "2"), "{records:?}");
    let port = nginx.port(Listener::TlsH2);
    assert!(proxy.log().contains(&format!("CONNECT localhost:{port}")), "{}", proxy.log());
}

#[test]
fn proxy_credentials_are_sent_and_shown_nowhere() {
    let (Some(nginx), Some(proxy)) = (Nginx::start(), Proxy::tinyproxy(Some(("ann", "pr0xy-s3cret")))) else {
        return;
    };
    let http = nginx.url(Listener::H1, "/small.json");
    let https = nginx.url(Listener::TlsH1, "/small.json");
    let tls_args = nginx.args(Listener::TlsH1);
    let with = |proxy_url: &str| {
        let mut args: Vec<&str> = tls_args.iter().map(String::as_str).collect();
        args.extend(["-vv", "--proxy", proxy_url]);
        fetch(&[http.clone(), https.clone()], &args, &[])
    };
    // Without credentials: tinyproxy answers 407 to the forwarded request, and refuses the tunnel.
    let (records, _) = with(&proxy.url("http", None));
    let refused = records.iter().find(|r| r["url"] == https.as_str()).unwrap();
    assert_eq!(refused["error"]["kind"], "connect", "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("407"), "{refused}");
    assert_eq!(records.iter().find(|r| r["url"] == http.as_str()).unwrap()["status"], 407);

    let (records, stderr) = with(&proxy.url("http", Some(("ann", "pr0xy-s3cret"))));
    assert!(all_ok(&records), "{records:?} {stderr}");
    let seen = format!("{records:?}{stderr}");
    assert!(!seen.contains("pr0xy-s3cret"), "the password appears: {seen}");
}

#[test]
fn the_environment_names_the_proxy_as_curl_reads_it_and_noproxy_and_an_empty_proxy_bypass_it() {
    let (Some(nginx), Some(proxy)) = (Nginx::start(), Proxy::tinyproxy(None)) else { return };
    let url = nginx.url(Listener::H1, "/small.json");
    let through = |args: &[&str], env: &[(&str, &str)]| {
        let before = proxy.log().matches("Request (file descriptor").count();
        let (records, stderr) = fetch(std::slice::from_ref(&url), args, env);
        assert!(all_ok(&records), "{records:?} {stderr}");
        proxy.log().matches("Request (file descriptor").count() > before
    };
    let proxy_url = proxy.url("http", None);
    for name in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
        assert!(through(&[], &[(name, &proxy_url)]), "{name}");
    }
    assert!(!through(&[], &[("https_proxy", &proxy_url)]), "an https proxy is not for http://");
    assert!(!through(&[], &[("http_proxy", &proxy_url), ("no_proxy", "127.0.0.1")]), "no_proxy");
    assert!(!through(&[], &[("http_proxy", &proxy_url), ("NO_PROXY", "127.0.0.0/8")]), "a CIDR range");
    assert!(!through(&["--noproxy", "*"], &[("http_proxy", &proxy_url)]), "--noproxy");
    assert!(!through(&["--proxy", ""], &[("http_proxy", &proxy_url)]), "--proxy \"\" uses none");
    assert!(!through(&[], &[]), "no proxy named, none used");
}

#[test]
fn socks5_resolves_here_and_socks5h_lets_the_proxy_resolve() {
    let (Some(nginx), Some(proxy)) = (Nginx::start(), Proxy::dante()) else { return };
    for scheme in ["socks5", "socks5h"] {
        let urls = [nginx.url(Listener::H1, "/small.json"), nginx.url(Listener::TlsH2, "/small.json")];
        let mut args = nginx.args(Listener::TlsH2);
        args.extend(["--proxy".to_owned(), proxy.url(scheme, None)]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let before = proxy.log().matches("tcp/connect").count();
        let (records, stderr) = fetch(&urls, &args, &[]);
        assert!(all_ok(&records), "{scheme}: {records:?} {stderr}");
        assert!(proxy.log().matches("tcp/connect").count() >= before + 2, "{scheme}: {}", proxy.log());
    }
}

#[test]
fn a_proxy_that_cannot_work_is_a_usage_error_and_one_that_is_down_a_connect_record() {
    let refused =
        outofsync().args(["fetch", "--proxy", "ftp://user:hunter2@proxy.test", "http://a.test/"]).output();
    let refused = refused.unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("scheme") && !stderr.contains("hunter2"), "{stderr}");

    let closed = format!("127.0.0.1:{}", crate::support::ports::lease());
    let (records, _) =
        fetch(&["http://127.0.0.1:9/x".to_owned()], &["--proxy", &format!("http://u:hunter2@{closed}")], &[]);
    let r = &records[0];
    assert_eq!(r["error"]["kind"], "connect", "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains("the proxy") && !message.contains("hunter2"), "{message}");
}
