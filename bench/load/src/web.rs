//! The webmail load: each client logs in once through the login form, as a
//! browser does, then asks again and again for the first page of INBOX's
//! message list, or for one message's page (a different one each time).
//! Two applications: Satchel's webmail, and Roundcube on the reference
//! Dovecot. Every answer is checked (status and a marker of the page).

use std::time::Instant;

use anyhow::{Context, bail, ensure};

use crate::Target;
use crate::stats::Stats;
use crate::wire::Conn;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum App {
    Satchel,
    Roundcube,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Page {
    List,
    Message,
}

pub struct Plan {
    pub target: Target,
    pub app: App,
    pub page: Page,
    /// Messages in INBOX: message pages ask for UIDs 1..=this.
    pub messages: u32,
    pub client: usize,
}

pub async fn client(plan: Plan, deadline: Instant, stats: &Stats) {
    while Instant::now() < deadline {
        match session(&plan, deadline, stats).await {
            Ok(()) => stats.round(),
            Err(e) => {
                stats.error(format!("web {}: {e:#}", plan.target.user));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn session(p: &Plan, deadline: Instant, stats: &Stats) -> anyhow::Result<()> {
    let mut http = Http::new(&p.target.addr);
    let started = Instant::now();
    let pages = match p.app {
        App::Satchel => satchel_login(&mut http, &p.target).await?,
        App::Roundcube => roundcube_login(&mut http, &p.target).await?,
    };
    stats.op("login", started.elapsed());
    // Spread the clients over the mailbox, then walk it.
    let mut uid = (p.client as u32 * 997) % p.messages.max(1) + 1;
    while Instant::now() < deadline {
        let started = Instant::now();
        match p.page {
            Page::List => {
                let r = http.get(&pages.list, &pages.headers).await?;
                ensure!(r.status == 200, "list answered {}", r.status);
                ensure!(
                    contains(&r.body, pages.list_marker),
                    "the list page has no rows"
                );
                stats.op("list", started.elapsed());
            }
            Page::Message => {
                let path = pages.message.replace("{uid}", &uid.to_string());
                let r = http.get(&path, &[]).await?;
                ensure!(r.status == 200, "{path} answered {}", r.status);
                ensure!(
                    contains(&r.body, pages.message_marker),
                    "{path} shows no message"
                );
                stats.op("message", started.elapsed());
                uid = uid % p.messages.max(1) + 1;
            }
        }
    }
    Ok(())
}

/// Where an application's pages are, once logged in.
struct Pages {
    list: String,
    /// `{uid}` stands for the message's UID.
    message: String,
    /// Sent with each list request.
    headers: Vec<(String, String)>,
    list_marker: &'static str,
    message_marker: &'static str,
}

async fn satchel_login(http: &mut Http, t: &Target) -> anyhow::Result<Pages> {
    let form = http.get("/login", &[]).await?;
    let token = between(&form.body, "name=\"csrf\" value=\"", "\"").context("no login token")?;
    let body = format!(
        "address={}&password={}&csrf={token}",
        encode(&t.user),
        encode(&t.password)
    );
    let r = http.post("/login", &body, &[]).await?;
    ensure!(r.status == 303, "login answered {}", r.status);
    let r = http.get("/mail", &[]).await?;
    let inbox = r
        .header("location")
        .context("no INBOX redirect")?
        .to_string();
    Ok(Pages {
        message: format!("{inbox}/{{uid}}"),
        list: inbox,
        headers: Vec::new(),
        list_marker: "<tr class=\"message",
        message_marker: "<article id=\"message\">",
    })
}

async fn roundcube_login(http: &mut Http, t: &Target) -> anyhow::Result<Pages> {
    let form = http.get("/roundcube/", &[]).await?;
    let token = between(&form.body, "name=\"_token\" value=\"", "\"").context("no login token")?;
    let body = format!(
        "_token={token}&_task=login&_action=login&_timezone=UTC&_url=&_user={}&_pass={}",
        encode(&t.user),
        encode(&t.password)
    );
    let r = http.post("/roundcube/?_task=login", &body, &[]).await?;
    ensure!(
        r.status == 302,
        "login answered {}: {}",
        r.status,
        snippet(&r.body)
    );
    let r = http.get("/roundcube/?_task=mail&_mbox=INBOX", &[]).await?;
    ensure!(r.status == 200, "the mail page answered {}", r.status);
    let request = between(&r.body, "\"request_token\":\"", "\"").context("no request token")?;
    Ok(Pages {
        list: "/roundcube/?_task=mail&_action=list&_mbox=INBOX&_page=1&_remote=1".into(),
        message: "/roundcube/?_task=mail&_action=show&_uid={uid}&_mbox=INBOX".into(),
        headers: vec![("X-Roundcube-Request".into(), request)],
        list_marker: "add_message_row",
        message_marker: "id=\"messagebody\"",
    })
}

/// HTTP/1.1 with keep-alive and cookies, enough for two webmails.
struct Http {
    addr: String,
    conn: Option<Conn>,
    cookies: Vec<(String, String)>,
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Http {
    fn new(addr: &str) -> Http {
        Http {
            addr: addr.to_string(),
            conn: None,
            cookies: Vec::new(),
        }
    }

    async fn get(&mut self, path: &str, extra: &[(String, String)]) -> anyhow::Result<Response> {
        self.request("GET", path, None, extra).await
    }

    async fn post(
        &mut self,
        path: &str,
        body: &str,
        extra: &[(String, String)],
    ) -> anyhow::Result<Response> {
        self.request("POST", path, Some(body), extra).await
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
        extra: &[(String, String)],
    ) -> anyhow::Result<Response> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            head.push_str(&format!("Cookie: {}\r\n", jar.join("; ")));
        }
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            head.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        head.push_str("\r\n");
        if let Some(b) = body {
            head.push_str(b);
        }
        if self.conn.is_none() {
            self.conn = Some(Conn::open(&self.addr).await?);
        }
        let conn = self.conn.as_mut().context("no connection")?;
        conn.send(head.as_bytes()).await?;
        let response = read_response(conn).await?;
        if response
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            self.conn = None;
        }
        for (k, v) in &response.headers {
            if !k.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let Some((name, value)) = v.split(';').next().and_then(|c| c.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            self.cookies.retain(|(n, _)| *n != name);
            if !value.is_empty() && value != "deleted" {
                self.cookies.push((name, value));
            }
        }
        Ok(response)
    }
}

async fn read_response(conn: &mut Conn) -> anyhow::Result<Response> {
    let status_line = conn.line().await?;
    let status_line = String::from_utf8_lossy(&status_line);
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let line = conn.line().await?;
        if line.is_empty() {
            break;
        }
        let line = String::from_utf8_lossy(&line);
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let size_line = conn.line().await?;
            let size_text = String::from_utf8_lossy(&size_line);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .with_context(|| format!("bad chunk size {size_text:?}"))?;
            if size == 0 {
                while !conn.line().await?.is_empty() {}
                break;
            }
            body.extend(conn.exact(size).await?);
            conn.line().await?;
        }
    } else if let Some(n) = find("content-length") {
        let n: usize = n.parse().context("bad Content-Length")?;
        body = conn.exact(n).await?;
    } else if status != 204 && status != 304 && !(100..200).contains(&status) {
        bail!("a response with neither Content-Length nor chunks");
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn contains(body: &[u8], marker: &str) -> bool {
    body.windows(marker.len()).any(|w| w == marker.as_bytes())
}

fn between(body: &[u8], start: &str, end: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].to_string())
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
