//! The page frame (head, top bar with navigation, user box and language switch) and small
//! shared pieces (form errors, times, hidden CSRF field).

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::NAV;
use super::assets;
use super::datetime;
use super::form::encode;
use super::i18n::{self, Key, Lang, t};
use super::session::{CSRF_FIELD, WebSession};
use crate::domain::time::Timestamp;

/// A whole page. `here` is the current path and query (the language switch returns to it);
/// `body_class` names the page for the stylesheet (`guard`, `admin`, `audit`, `login`, ...).
pub fn page(
    lang: Lang,
    session: Option<&WebSession>,
    here: &str,
    title: &str,
    body_class: &str,
    content: Markup,
) -> Markup {
    let face = datetime::current();
    html! {
        (DOCTYPE)
        html lang=(lang.html_tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                @if let Some(session) = session {
                    meta name="csrf-token" content=(session.csrf());
                }
                title { (title) " · Custos" }
                link rel="stylesheet" href=(assets::CSS.href());
                script src=(assets::JS.href()) defer {}
            }
            body class=(body_class) data-tz=[datetime::zone_name(&face.zone)] {
                a.skip href="#main" { (t(lang, Key::SkipToContent)) }
                header.topbar {
                    a.brand href="/" { "Custos" }
                    span.brand-sub { (t(lang, Key::AppName)) }
                    @if let Some(session) = session {
                        nav.mainnav aria-label=(t(lang, Key::MainNav)) {
                            ul {
                                @for item in NAV.iter().filter(|i| session.may(i.roles)) {
                                    li {
                                        a href=(item.path)
                                            aria-current=[here_is(here, item.path).then_some("page")] {
                                            (t(lang, item.label))
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div.topbar-end {
                        @if let Some(session) = session {
                            span.userbox {
                                span.label { (t(lang, Key::SignedInAs)) " " }
                                strong #current-user { (session.username()) }
                                " "
                                span.roles {
                                    @for role in session.roles().to_vec() {
                                        span.role-tag data-role=(role.as_str()) { (t(lang, i18n::role(role))) }
                                    }
                                }
                            }
                            a #change-password href="/account/password" { (t(lang, Key::ChangePasswordTitle)) }
                            " "
                            form.logout method="post" action="/logout" {
                                (csrf_field(session))
                                button #logout-submit type="submit" { (t(lang, Key::Logout)) }
                            }
                        }
                        nav.langswitch aria-label=(t(lang, Key::Language)) {
                            @for other in Lang::ALL {
                                a href={ "/lang/" (other.code()) "?next=" (encode(here)) }
                                    hreflang=(other.html_tag())
                                    data-lang=(other.code())
                                    aria-current=[(other == lang).then_some("true")] {
                                    (other.own_name())
                                }
                            }
                        }
                    }
                }
                main #main { (content) }
            }
        }
    }
}

/// Whether the navigation entry `path` is the current page (or one below it).
fn here_is(here: &str, path: &str) -> bool {
    let here = here.split('?').next().unwrap_or(here);
    here == path
        || here
            .strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A page that only says something (errors, the empty home page).
pub fn message_page(lang: Lang, session: Option<&WebSession>, title: Key, message: &str) -> Markup {
    let here = session.map_or("/", WebSession::path);
    let content = html! {
        section.card.message #message {
            h1 { (t(lang, title)) }
            p { (message) }
            p { a href="/" { (t(lang, Key::BackHome)) } }
        }
    };
    page(lang, session, here, t(lang, title), "message", content)
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(session: &WebSession) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf()); }
}

/// An instant as `<time>`, in the site's zone and the page language's one format
/// ([`datetime`]); `datetime` keeps the exact UTC instant, `data-zone="site"` tells the script
/// the text is final.
pub fn time(at: Timestamp) -> Markup {
    html! {
        time datetime=(at.to_string()) data-zone="site" { (datetime::format_current(at)) }
    }
}

/// A stored RFC 3339 text (audit entries, signed heads) as [`time`]; kept as it is when it
/// does not parse (the trail shows what it holds).
pub fn time_text(text: &str) -> Markup {
    match text.parse::<Timestamp>() {
        Ok(at) => time(at),
        Err(_) => html! { (text) },
    }
}

/// The error summary of a form (nothing if there are no errors).
pub fn form_errors(lang: Lang, errors: &[(&'static str, Key)]) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.form-errors role="alert" {
                p { strong { (t(lang, Key::FormHasErrors)) } }
                ul {
                    @for (field, key) in errors {
                        li data-field=(field) { (t(lang, *key)) }
                    }
                }
            }
        }
    }
}

/// The message under a field, if the field has an error.
pub fn field_error(lang: Lang, errors: &[(&'static str, Key)], field: &str) -> Markup {
    html! {
        @for (f, key) in errors.iter().filter(|(f, _)| *f == field) {
            p.field-error data-field=(f) { (t(lang, *key)) }
        }
    }
}

/// Whether `field` has an error (for `aria-invalid`).
pub fn invalid(errors: &[(&'static str, Key)], field: &str) -> Option<&'static str> {
    errors.iter().any(|(f, _)| *f == field).then_some("true")
}

/// A JSON value for a `<script type="application/json">` data block: `<`, `>` and `&` are
/// escaped so that the text can never close the element or start markup.
pub fn json_block(id: &str, value: &serde_json::Value) -> Markup {
    let text = value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    html! { script type="application/json" id=(id) { (PreEscaped(text)) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn navigation_matches_the_page_and_pages_below_it() {
        assert!(here_is("/admin/users", "/admin/users"));
        assert!(here_is("/admin/users?created=x", "/admin/users"));
        assert!(here_is("/audit/x", "/audit"));
        assert!(!here_is("/auditx", "/audit"));
        assert!(!here_is("/", "/guard"));
    }

    #[test]
    fn json_blocks_cannot_close_their_element() {
        let block = json_block("x", &serde_json::json!({"a": "</script><b>&"})).into_string();
        assert!(!block.contains("</script><b>"), "{block}");
        assert!(block.ends_with("</script>"));
        let inner = block
            .trim_start_matches(r#"<script type="application/json" id="x">"#)
            .trim_end_matches("</script>");
        let back: serde_json::Value = serde_json::from_str(inner).unwrap();
        assert_eq!(back["a"], "</script><b>&");
    }
}
